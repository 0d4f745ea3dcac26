//! Image requests through the container's router on the ViT fixture: the limits a client cannot
//! get past (images per request, pixels declared in a header), and raw bodies that must never
//! crash the server.

use axum::body::Body;
use base64::Engine as _;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn post(app: &axum::Router, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let req = axum::http::Request::post("/invocations")
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The golden file's PNG (a 64x48 picture).
fn png() -> Vec<u8> {
    let g = hf_inference_tests::goldens("image-classification")
        .into_iter()
        .find(|g| g.case == "raw/image-png")
        .expect("the golden PNG case");
    g.request_bytes()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header declares `w x h` RGB pixels, with a few bytes of pixel data.
fn declared_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    for (kind, data) in [
        (&b"IHDR"[..], &ihdr[4..]),
        (b"IDAT", &[0x78u8, 0x9c, 0x03, 0x00][..]),
        (b"IEND", &[]),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend(data);
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_holds_at_most_64_images_whatever_it_asks_for() {
    let app = hf_inference_tests::router_for("image-classification");
    let b64 = base64::engine::general_purpose::STANDARD.encode(png());
    let body = |n: usize| {
        serde_json::to_vec(
            &serde_json::json!({"inputs": vec![b64.clone(); n], "parameters": {"top_k": 1}}),
        )
        .unwrap()
    };
    let (status, v) = post(&app, "application/json", body(64)).await;
    assert_eq!(status, 200, "{v}");
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 64);
    assert!(answers
        .iter()
        .all(|a| a.as_array().is_some_and(|l| l.len() == 1)));
    for n in [65, 130] {
        let (status, v) = post(&app, "application/json", body(n)).await;
        assert_eq!(status, 400, "{n} images: {v}");
        assert!(v["message"].as_str().unwrap().contains("64"), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_declaring_too_many_pixels_is_refused_before_it_is_decoded() {
    let app = hf_inference_tests::router_for("image-classification");
    // 100k x 100k from an 80-byte file: refused from the header, in no time and no memory
    let (status, v) = post(&app, "image/png", declared_png(100_000, 100_000)).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("HF_MAX_IMAGE_PIXELS"),
        "{v}"
    );
    // the same through JSON
    let b64 = base64::engine::general_purpose::STANDARD.encode(declared_png(100_000, 100_000));
    let body = serde_json::to_vec(&serde_json::json!({ "inputs": b64 })).unwrap();
    let (status, v) = post(&app, "application/json", body).await;
    assert_eq!(status, 400, "{v}");
    // a header that lies about a small size is a clean 400 too (the data is not there)
    let (status, v) = post(&app, "image/png", declared_png(40, 30)).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["type"], "ValidationError", "{v}");
    // and the server still answers
    let (status, v) = post(&app, "image/png", png()).await;
    assert_eq!(status, 200, "{v}");
}
