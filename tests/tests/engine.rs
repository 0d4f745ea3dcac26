//! The CPU kernel encoder against the candle reference implementation, on every fixture
//! architecture and head, for single sequences, ragged batches and masked padding.

use hf_inference_core::model::{self, Family, HeadKind, ModelConfig, ModelSource, TokenSequence};
use hf_inference_core::tokenize::{Padding, TextTokenizer, TokenizeOptions};
use hf_inference_core::Task;
use hf_inference_tests::{fixtures, FIXTURES};

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The (fixture model, head) pairs the CPU kernels run, derived from [`FIXTURES`]: every model
/// folder of an encoder family except DeBERTa-v2 (which runs on candle both ways), with its hidden
/// states, and its sequence classifier too where a fixture serves text or zero-shot
/// classification with it.
fn kernel_cases() -> Vec<(&'static str, HeadKind)> {
    let mut cases: Vec<(&'static str, HeadKind)> = Vec::new();
    for f in FIXTURES {
        let path = f.model_dir().join("config.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let config: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let model_type = config["model_type"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no model_type", path.display()));
        let family = Family::from_model_type(model_type)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if !family.is_encoder() || family == Family::DebertaV2 {
            continue;
        }
        let mut heads = vec![HeadKind::HiddenStates];
        if matches!(
            f.task(),
            Task::TextClassification | Task::ZeroShotClassification
        ) {
            heads.push(HeadKind::SequenceClassification);
        }
        for head in heads {
            if !cases.contains(&(f.model, head)) {
                cases.push((f.model, head));
            }
        }
    }
    cases
}

#[test]
fn kernels_match_candle_on_every_fixture() {
    let cases = kernel_cases();
    // the cases listed by hand before the fixture table drove this test
    for case in [
        ("feature-extraction-tiny", HeadKind::HiddenStates),
        ("xlm-roberta-feature-extraction", HeadKind::HiddenStates),
        ("text-classification", HeadKind::SequenceClassification),
        ("text-classification", HeadKind::HiddenStates),
        (
            "distilbert-text-classification",
            HeadKind::SequenceClassification,
        ),
        (
            "roberta-text-classification",
            HeadKind::SequenceClassification,
        ),
    ] {
        assert!(cases.contains(&case), "{case:?} is not derived: {cases:?}");
    }
    for (name, head) in cases {
        let files = ModelSource::LocalDir(fixtures().join("models").join(name))
            .resolve()
            .unwrap();
        let config = ModelConfig::from_file(&files.config).unwrap();
        let tok = TextTokenizer::load(&files, config.pad_token_id).unwrap();
        let dev = candle_core::Device::Cpu;
        let fast = model::load(&files, &config, head, &dev).unwrap();
        let reference = model::load_candle(&files, &config, head, &dev).unwrap();
        let opts = TokenizeOptions::default();
        let padded = TokenizeOptions {
            padding: Padding::MaxLength,
            max_length: Some(12),
            ..opts
        };
        let mut batch: Vec<TokenSequence> = [
            "Hello world",
            "A considerably longer sentence with more tokens in it.",
            "",
        ]
        .iter()
        .map(|s| tok.encode(s, None, &opts).unwrap())
        .collect();
        batch.push(tok.encode("padded to twelve", None, &padded).unwrap());
        batch.push(tok.encode("first", Some("second"), &opts).unwrap());
        for group in [&batch[..1], &batch[..]] {
            let a = fast.forward(group).unwrap();
            let b = reference.forward(group).unwrap();
            assert_eq!(a.len(), b.len());
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!((x.rows, x.cols), (y.rows, y.cols), "{name} {head:?} #{i}");
                match head {
                    HeadKind::HiddenStates => {
                        for r in 0..x.rows {
                            let c = cosine(x.row(r), y.row(r));
                            assert!(c > 0.99999, "{name} #{i} row {r}: cosine {c}");
                        }
                    }
                    HeadKind::SequenceClassification => {
                        for (p, q) in x.data.iter().zip(&y.data) {
                            assert!((p - q).abs() < 1e-4, "{name} #{i}: {p} vs {q}");
                        }
                    }
                }
            }
        }
        // a sequence alone (its attention heads split between threads) and in the batch (one
        // task per sequence, its rows in other micro-kernel calls): the same numbers exactly
        let together = fast.forward(&batch).unwrap();
        for (i, seq) in batch.iter().enumerate() {
            let alone = fast.forward(std::slice::from_ref(seq)).unwrap();
            assert!(alone[0].data == together[i].data, "{name} {head:?} #{i}");
        }
    }
}
