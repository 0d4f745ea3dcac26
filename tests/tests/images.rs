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

/// A copy of a convolutional fixture whose image processor neither resizes nor crops, so that
/// images reach the network at their own size.
fn unresized_copy(model: &str) -> std::path::PathBuf {
    let src = hf_inference_tests::fixtures().join("models").join(model);
    let dir = std::env::temp_dir().join(format!("hfi-unresized-{model}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut pre: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("preprocessor_config.json")).unwrap())
            .unwrap();
    pre["do_resize"] = false.into();
    pre["do_center_crop"] = false.into();
    std::fs::write(
        dir.join("preprocessor_config.json"),
        serde_json::to_vec(&pre).unwrap(),
    )
    .unwrap();
    dir
}

/// A `w × h` PNG, its colours shifted by `seed`.
fn png_of(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = |a: u32| ((a + seed * 61) % 256) as u8;
        image::Rgb([v(x * 7), v(y * 13), v((x + y) * 5)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convolutional_classifiers_take_images_of_any_size_in_one_request() {
    for model in [
        "convnext-image-classification",
        "convnextv2-image-classification",
        "resnet-image-classification",
        "mobilenet-v2-image-classification",
        "mobilenet-v1-image-classification",
    ] {
        let dir = unresized_copy(model);
        let app = hf_inference_tests::router_for_dir(&dir, "image-classification");
        let b64 =
            |(w, h), seed| base64::engine::general_purpose::STANDARD.encode(png_of(w, h, seed));
        // a batch of four sizes (equal sizes run together) answers as each image alone does
        let sizes = [(40, 33), (64, 48), (40, 33), (37, 71), (41, 33), (40, 33)];
        let inputs: Vec<String> = (0..).zip(sizes).map(|(i, s)| b64(s, i)).collect();
        let batch = serde_json::json!({ "inputs": inputs });
        let (status, v) = post(
            &app,
            "application/json",
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{model}: {v}");
        for (i, (w, h)) in (0..).zip(sizes) {
            let (status, alone) = post(&app, "image/png", png_of(w, h, i)).await;
            assert_eq!(status, 200, "{model}: {alone}");
            // the same labels in the same order; the scores as close as a batched forward
            // pass (other matrix blockings) allows
            let (batched, alone) = (v[i as usize].as_array().unwrap(), alone.as_array().unwrap());
            assert_eq!(batched.len(), alone.len(), "{model}: image {i}");
            for (a, b) in batched.iter().zip(alone) {
                assert_eq!(a["label"], b["label"], "{model}: image {i}");
                let (a, b) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
                assert!((a - b).abs() < 1e-5, "{model}: image {i}: {a} vs {b}");
            }
        }
        // an image smaller than the network's convolutions is a client error, not a crash
        // (ConvNeXt's 4x4 patchify stem; MobileNet and ResNet pad every convolution)
        let (status, v) = post(&app, "image/png", png_of(2, 3, 0)).await;
        if model.starts_with("convnext") {
            assert_eq!(status, 400, "{model}: {v}");
            assert!(v.to_string().contains("too small"), "{model}: {v}");
        } else {
            assert_eq!(status, 200, "{model}: {v}");
        }
        let (status, _) = post(&app, "image/png", png()).await;
        assert_eq!(status, 200, "{model}: still serving");
        std::fs::remove_dir_all(&dir).ok();
    }
}
