//! The image classifiers on inputs the goldens do not reach (their processors crop every image
//! to one size): images of other sizes and shapes, run through the fixture models and compared
//! with transformers 4.51's logits for the same pixels (`AutoModelForImageClassification` on the
//! fixture directory, fresh for each model).

use hf_inference_core::model::image_classifier::{self, ImageClassifier};
use hf_inference_core::model::{Family, ModelSource};
use hf_inference_core::vision::PixelValues;

/// Deterministic pixels, exact in float32: `((7c + 3y + 5x) mod 17) / 8 − 1`.
fn pixels(height: usize, width: usize) -> PixelValues {
    let mut data = Vec::with_capacity(3 * height * width);
    for c in 0..3 {
        for y in 0..height {
            for x in 0..width {
                data.push(((c * 7 + y * 3 + x * 5) % 17) as f32 / 8.0 - 1.0);
            }
        }
    }
    PixelValues {
        height,
        width,
        data,
    }
}

fn load(name: &str) -> Box<dyn ImageClassifier> {
    let dir = hf_inference_tests::fixture(name).model_dir();
    let files = ModelSource::LocalDir(dir).resolve().expect("fixture files");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.config).expect("config.json"))
            .expect("config JSON");
    let family = Family::of_config(&config).expect("family");
    image_classifier::load(family, &files, &config, 5, &candle_core::Device::Cpu).expect("model")
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
    }
}

#[test]
fn swin_pads_to_patches_and_windows_and_merges_odd_grids() {
    let m = load("swin-image-classification");
    assert_eq!(m.input_size(), None);
    // 36x44: a 9x11 grid padded to 12x12 windows, merged (odd) to 5x6, shifted windows again
    // padded to 8x8; 30x30: the image padded to 32x32, the second stage one 4x4 window
    let out = m.logits(&[pixels(36, 44), pixels(30, 30)]).expect("logits");
    assert_close(&out[0], &[-0.75315, -0.57156, 0.60124, 0.44298, 0.08919]);
    assert_close(&out[1], &[-0.61678, -0.68578, 0.58632, 0.49104, -0.1003]);
    // 13x50: the second stage's 2x7 grid is smaller than a window (transformers fails too)
    let e = m.logits(&[pixels(13, 50)]).unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
}

#[test]
fn dinov2_follows_the_image_grid_and_batches_by_size() {
    let m = load("dinov2-image-classification");
    assert_eq!(m.input_size(), None);
    let a = [0.24857, -2.57132, 1.99187, 1.33823, 0.78638];
    let b = [-0.04051, -2.43271, 1.73344, 0.45317, 0.75094];
    let out = m
        .logits(&[pixels(40, 56), pixels(16, 24), pixels(40, 56)])
        .expect("logits");
    assert_close(&out[0], &a);
    assert_close(&out[1], &b);
    assert_close(&out[2], &a);
    // smaller than one 8x8 patch: refused
    let e = m.logits(&[pixels(7, 40)]).unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
}

#[test]
fn beit_resizes_its_position_tables_to_the_image_window() {
    let m = load("beit-image-classification");
    let out = m
        .logits(&[pixels(24, 40), pixels(40, 40), pixels(32, 32)])
        .expect("logits");
    assert_close(&out[0], &[0.89374, 0.90521, 0.85287, 0.14212, -0.47622]);
    assert_close(&out[1], &[1.07236, 0.54566, 0.57311, 0.43029, -0.11184]);
    // the configured 4x4 window: the tables as they are (the bias built at load)
    assert_close(&out[2], &[1.09011, 0.34892, 0.43591, 1.00655, -0.13705]);
}

#[test]
fn deit_averages_its_two_heads() {
    let m = load("deit-image-classification");
    assert_eq!(m.input_size(), Some((32, 32)));
    let out = m.logits(&[pixels(32, 32)]).expect("logits");
    assert_close(&out[0], &[-0.24988, -0.02875, -0.34954, 0.09116, 0.10316]);
}
