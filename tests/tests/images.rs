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

async fn post_with(
    app: &axum::Router,
    uri: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = axum::http::Request::post(uri).header("content-type", content_type);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn labels_of(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["label"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_shot_labels_come_with_a_raw_image_in_custom_attributes_or_the_query() {
    for fixture in [
        "zero-shot-image-classification",
        "siglip-zero-shot-image-classification",
    ] {
        zero_shot_labels_with_a_raw_image(fixture).await;
    }
}

async fn zero_shot_labels_with_a_raw_image(fixture: &str) {
    let app = hf_inference_tests::router_for(fixture);
    // what the JSON form answers (the golden's request) is the reference
    let b64 = base64::engine::general_purpose::STANDARD.encode(png());
    let json = serde_json::to_vec(&serde_json::json!({
        "inputs": b64, "parameters": {"candidate_labels": ["cat", "dog", "car"]}
    }))
    .unwrap();
    let (status, want) = post(&app, "application/json", json).await;
    assert_eq!(status, 200, "{fixture}: {want}");
    assert_eq!(labels_of(&want).len(), 3);
    // the toolkit cannot take labels with a raw body; we take them from the custom attributes
    let attrs = [(
        "x-amzn-sagemaker-custom-attributes",
        "trace=abc-123;candidate_labels=cat,dog,car",
    )];
    let (status, got) = post_with(&app, "/invocations", "image/png", &attrs, png()).await;
    assert_eq!(status, 200, "{fixture}: {got}");
    assert_eq!(got, want, "{fixture}");
    // or from the query string
    let (status, got) = post_with(
        &app,
        "/invocations?candidate_labels=cat%2Cdog%2Ccar",
        "image/png",
        &[],
        png(),
    )
    .await;
    assert_eq!(status, 200, "{fixture}: {got}");
    assert_eq!(got, want, "{fixture}");
    // a template too; a different template gives different scores
    let attrs = [(
        "x-amzn-sagemaker-custom-attributes",
        "candidate_labels=cat,dog;hypothesis_template=a%20picture%20of%20a%20{}",
    )];
    let (status, got) = post_with(&app, "/invocations", "image/png", &attrs, png()).await;
    assert_eq!(status, 200, "{fixture}: {got}");
    let mut labels = labels_of(&got);
    labels.sort_unstable();
    assert_eq!(labels, vec!["cat", "dog"]);
    // the JSON form of the same template answers the same
    let json = serde_json::to_vec(&serde_json::json!({
        "inputs": b64, "parameters": {"candidate_labels": ["cat", "dog"], "hypothesis_template": "a picture of a {}"}
    }))
    .unwrap();
    let (status, want) = post(&app, "application/json", json).await;
    assert_eq!(status, 200, "{fixture}: {want}");
    assert_eq!(got, want, "{fixture}");
    // without labels: a 400 saying how to send them
    let (status, v) = post(&app, "image/png", png()).await;
    assert_eq!(status, 400, "{fixture}: {v}");
    assert!(
        v["message"].as_str().unwrap().contains("custom attribute"),
        "{fixture}: {v}"
    );
    // a parameter of the wrong type in the attributes is a 400 too
    let attrs = [(
        "x-amzn-sagemaker-custom-attributes",
        "candidate_labels=cat;hypothesis_template=5",
    )];
    let (status, v) = post_with(&app, "/invocations", "image/png", &attrs, png()).await;
    assert_eq!(status, 400, "{fixture}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_threshold_comes_with_a_raw_image_and_boxes_are_integers() {
    let app = hf_inference_tests::router_for("object-detection");
    let attrs = [("x-amzn-sagemaker-custom-attributes", "threshold=0")];
    let (status, all) = post_with(&app, "/invocations", "image/png", &attrs, png()).await;
    assert_eq!(status, 200, "{all}");
    // threshold 0 keeps every detection token (5)
    assert_eq!(all.as_array().unwrap().len(), 5, "{all}");
    let (status, default) = post(&app, "image/png", png()).await;
    assert_eq!(status, 200, "{default}");
    assert!(default.as_array().unwrap().len() < 5, "{default}");
    for d in all.as_array().unwrap() {
        let b = &d["box"];
        for k in ["xmin", "ymin", "xmax", "ymax"] {
            assert!(b[k].is_i64(), "{d}");
        }
        assert!(d["score"].as_f64().unwrap() > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_a_4xx_from_every_new_image_task() {
    for fixture in [
        "image-segmentation",
        "maskformer-image-segmentation",
        "object-detection",
        "zero-shot-image-classification",
        "siglip-zero-shot-image-classification",
    ] {
        let app = hf_inference_tests::router_for(fixture);
        let attrs = [("x-amzn-sagemaker-custom-attributes", "candidate_labels=a,b")];
        let send = |body: Vec<u8>| {
            let app = app.clone();
            async move { post_with(&app, "/invocations", "image/png", &attrs, body).await }
        };
        // a decompression bomb declared in the header, a header lying about its size, garbage
        // and nothing at all
        for (what, body) in [
            ("bomb", declared_png(100_000, 100_000)),
            ("lying header", declared_png(40, 30)),
            ("garbage", b"\x89PNG\r\n\x1a\nnot really".to_vec()),
            ("empty", Vec::new()),
        ] {
            let (status, v) = send(body).await;
            assert!(
                (400..500).contains(&status) && v["code"] == status,
                "{fixture} {what}: {status} {v}"
            );
        }
        // an extreme shape: 1 pixel high, 5000 wide (YOLOS would resize it to nothing)
        let mut thin = Vec::new();
        image::DynamicImage::from(image::RgbImage::from_pixel(5000, 1, image::Rgb([9, 9, 9])))
            .write_to(
                &mut std::io::Cursor::new(&mut thin),
                image::ImageFormat::Png,
            )
            .unwrap();
        let (status, v) = send(thin).await;
        assert!(
            status == 200 || (400..500).contains(&status),
            "{fixture}: {status} {v}"
        );
        // and the server still answers
        let (status, v) = send(png()).await;
        assert_eq!(status, 200, "{fixture}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segmentation_masks_are_pngs_of_the_input_size_covering_it_once() {
    let app = hf_inference_tests::router_for("image-segmentation");
    let (status, v) = post(&app, "image/png", png()).await;
    assert_eq!(status, 200, "{v}");
    let mut covered = vec![0u8; 64 * 48];
    for seg in v.as_array().unwrap() {
        assert!(seg["score"].is_null(), "{seg}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(seg["mask"].as_str().unwrap())
            .unwrap();
        let mask = image::load_from_memory(&bytes).unwrap();
        assert_eq!(mask.color(), image::ColorType::L8);
        assert_eq!((mask.width(), mask.height()), (64, 48));
        for (c, p) in covered.iter_mut().zip(mask.to_luma8().into_raw()) {
            assert!(p == 0 || p == 255);
            *c += u8::from(p == 255);
        }
    }
    // semantic segmentation labels every pixel exactly once
    assert!(covered.iter().all(|&c| c == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maskformer_panoptic_segments_never_overlap_and_semantic_covers_the_image_once() {
    let app = hf_inference_tests::router_for("maskformer-image-segmentation");
    for (subtask, exactly_once) in [("panoptic", false), ("semantic", true)] {
        let body = serde_json::json!({
            "inputs": base64::engine::general_purpose::STANDARD.encode(png()),
            "parameters": {"subtask": subtask, "threshold": 0.5},
        });
        let (status, v) = post(&app, "application/json", body.to_string().into_bytes()).await;
        assert_eq!(status, 200, "{v}");
        let segments = v.as_array().unwrap();
        assert!(segments.len() >= 2, "{subtask}: {v}");
        let mut covered = vec![0u8; 64 * 48];
        for seg in segments {
            assert_eq!(seg["score"].is_null(), subtask == "semantic", "{seg}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(seg["mask"].as_str().unwrap())
                .unwrap();
            let mask = image::load_from_memory(&bytes).unwrap().to_luma8();
            assert_eq!(mask.dimensions(), (64, 48));
            for (c, p) in covered.iter_mut().zip(mask.into_raw()) {
                *c += u8::from(p == 255);
            }
        }
        if exactly_once {
            assert!(covered.iter().all(|&c| c == 1), "{subtask}");
        } else {
            assert!(
                covered.iter().all(|&c| c <= 1),
                "{subtask}: overlapping segments"
            );
        }
    }
}

#[test]
fn the_kernel_vit_gives_candle_vits_logits() {
    use hf_inference_core::model::image_classifier::ImageClassifier;
    use hf_inference_core::model::kernel_vit::KernelVit;
    use hf_inference_core::model::vit::VitClassifier;
    let (dir, _) = hf_inference_tests::fixture_model("image-classification");
    let files = hf_inference_core::model::ModelSource::LocalDir(dir.clone())
        .resolve()
        .unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.config).unwrap()).unwrap();
    let kernel = KernelVit::load(&files, &config, 5).unwrap();
    let candle = VitClassifier::load(&files, &config, 5, &candle_core::Device::Cpu).unwrap();
    // three different images in one batch, and one alone
    let processor = hf_inference_core::vision::ImageProcessor::load(&dir).unwrap();
    let images: Vec<_> = [(64, 48), (20, 12), (3, 200)]
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| {
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([
                    (x * 7 + i as u32 * 50) as u8,
                    (y * 5) as u8,
                    ((x + y) * 3) as u8,
                ])
            });
            let rgb = hf_inference_core::vision::Image8 {
                width: w as usize,
                height: h as usize,
                channels: 3,
                data: img.into_raw(),
            };
            processor.preprocess(&rgb, 1 << 20).unwrap()
        })
        .collect();
    let (a, b) = (
        kernel.logits(&images).unwrap(),
        candle.logits(&images).unwrap(),
    );
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() < 1e-4, "{x:?} vs {y:?}");
        }
    }
    // an image's logits do not depend on what it is batched with
    let alone = kernel.logits(&images[1..2]).unwrap();
    for (p, q) in alone[0].iter().zip(&a[1]) {
        assert!((p - q).abs() < 1e-5);
    }
    // the images differ, and so do their logits
    assert!(a[0].iter().zip(&a[1]).any(|(p, q)| (p - q).abs() > 1e-3));
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

/// SigLIP's slow tokenizer against the ids transformers' `SiglipTokenizer` gives varied texts
/// (punctuation, Unicode, whitespace, special tokens, `▁`, long texts that truncate, the empty
/// string), recorded by tests/fixtures/record_tokenizer_ids.py: `tokenizer(text)` and the
/// pipeline's `padding="max_length", max_length=64, truncation=True`.
#[test]
fn siglip_tokenizer_matches_transformers() {
    use hf_inference_core::tokenize::siglip::SiglipTokenizer;
    let (dir, _) = hf_inference_tests::fixture_model("siglip-zero-shot-image-classification");
    let files = hf_inference_core::model::ModelSource::LocalDir(dir)
        .resolve()
        .unwrap();
    let tok = SiglipTokenizer::load(&files).unwrap();
    // google's checkpoints (and the fixture) name only input_ids: no attention mask
    assert!(!tok.uses_attention_mask());
    let path = hf_inference_tests::fixtures().join("golden/siglip-tokenizer-ids.json");
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(records.len() >= 20);
    let ids = |v: &serde_json::Value| -> Vec<u32> { serde_json::from_value(v.clone()).unwrap() };
    let mut truncated = 0;
    for r in &records {
        let text = r["text"].as_str().unwrap();
        let plain = tok.encode(text, None).unwrap();
        assert_eq!(plain.ids, ids(&r["ids"]), "tokenizer({text:?})");
        let padded = tok.encode(text, Some(64)).unwrap();
        assert_eq!(padded.ids, ids(&r["pipeline_ids"]), "padded {text:?}");
        let real = plain.ids.len().min(64);
        assert_eq!(padded.attention_mask.iter().sum::<u32>() as usize, real);
        truncated += usize::from(plain.ids.len() > 64);
    }
    assert!(truncated >= 2, "the records must hold texts that truncate");
}

/// SigLIP's text tower masks the padding's keys when the tokenizer gives an attention mask
/// (`model_input_names` naming it) and attends to everything when not (google's checkpoints), as
/// transformers' `SiglipModel` does: logits recorded from it both ways by
/// tests/fixtures/record_tokenizer_ids.py.
#[test]
fn siglip_attention_mask_follows_model_input_names() {
    use hf_inference_core::model::siglip::Siglip;
    use hf_inference_core::tokenize::siglip::SiglipTokenizer;
    let (dir, _) = hf_inference_tests::fixture_model("siglip-zero-shot-image-classification");
    let files = hf_inference_core::model::ModelSource::LocalDir(dir.clone())
        .resolve()
        .unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.config).unwrap()).unwrap();
    let model = Siglip::load(&files, &config, &candle_core::Device::Cpu).unwrap();
    let tok = SiglipTokenizer::load(&files).unwrap();
    let path = hf_inference_tests::fixtures().join("golden/siglip-masked-logits.json");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(rec["image_png_base64"].as_str().unwrap())
        .unwrap();
    let rgb = hf_inference_core::vision::decode_rgb(&png, 1 << 20).unwrap();
    let processor = hf_inference_core::vision::ImageProcessor::load(&dir).unwrap();
    let pixels = [processor.preprocess(&rgb, 1 << 20).unwrap()];
    let (ids, masks): (Vec<_>, Vec<_>) = rec["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let e = tok.encode(t.as_str().unwrap(), Some(64)).unwrap();
            (e.ids, e.attention_mask)
        })
        .unzip();
    let masked = model.logits_per_image(&pixels, &ids, Some(&masks)).unwrap();
    let unmasked = model.logits_per_image(&pixels, &ids, None).unwrap();
    for (ours, key) in [(&masked, "masked"), (&unmasked, "unmasked")] {
        let want: Vec<Vec<f32>> = serde_json::from_value(rec[key].clone()).unwrap();
        assert_eq!(ours.len(), want.len());
        for (a, b) in ours[0].iter().zip(&want[0]) {
            assert!(
                (a - b).abs() < 1e-4,
                "{key}: {:?} vs {:?}",
                ours[0],
                want[0]
            );
        }
    }
    // the mask matters for every text shorter than 64 tokens
    assert!((masked[0][0] - unmasked[0][0]).abs() > 0.1);
}

/// SigLIP pads every label to 64 tokens, so the request's token budget (HF_MAX_REQUEST_TOKENS,
/// 16,384 by default) holds 256 labels; more is a 4xx that says why, before the model runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siglip_labels_count_64_tokens_each_against_the_request_budget() {
    let app = hf_inference_tests::router_for("siglip-zero-shot-image-classification");
    let b64 = base64::engine::general_purpose::STANDARD.encode(png());
    let ask = |n: usize| {
        let labels: Vec<String> = (0..n).map(|i| format!("l{i}")).collect();
        serde_json::to_vec(&serde_json::json!({
            "inputs": b64, "parameters": {"candidate_labels": labels}
        }))
        .unwrap()
    };
    let (status, v) = post(&app, "application/json", ask(256)).await;
    assert_eq!(status, 200, "{v}");
    let scores: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 256);
    // sigmoids, best first: each in (0, 1), not summing to 1
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    assert!(scores.iter().all(|&s| s > 0.0 && s < 1.0));
    assert!(scores.iter().sum::<f64>() > 2.0);
    let (status, v) = post(&app, "application/json", ask(257)).await;
    assert!((400..500).contains(&status), "{status} {v}");
    assert!(v["message"].as_str().unwrap().contains("64 tokens"), "{v}");
}

/// A SigLIP checkpoint whose tokenizer cannot be SiglipTokenizer's is refused at start with a
/// message that names what is wrong: another tokenizer class, no spiece.model.
#[test]
fn siglip_tokenizer_files_that_cannot_serve_are_refused_at_start() {
    use hf_inference_core::tokenize::siglip::SiglipTokenizer;
    let model = "siglip-zero-shot-image-classification";
    let src = hf_inference_tests::fixtures().join("models").join(model);
    let dir = std::env::temp_dir().join(format!("hfi-{model}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors", "spiece.model"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("tokenizer_config.json")).unwrap()).unwrap();
    cfg["tokenizer_class"] = "T5Tokenizer".into();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_vec(&cfg).unwrap(),
    )
    .unwrap();
    let load = || {
        let files = hf_inference_core::model::ModelSource::LocalDir(dir.clone())
            .resolve()
            .unwrap();
        SiglipTokenizer::load(&files).unwrap_err().to_string()
    };
    assert!(load().contains("T5Tokenizer"), "{}", load());
    std::fs::remove_file(dir.join("tokenizer_config.json")).unwrap();
    std::fs::remove_file(dir.join("spiece.model")).unwrap();
    assert!(load().contains("spiece.model"), "{}", load());
    std::fs::write(dir.join("spiece.model"), b"\x0a\x05garbage").unwrap();
    assert!(load().contains("SentencePiece"), "{}", load());
    std::fs::remove_dir_all(&dir).unwrap();
}
