//! The `async-handler` binary reads the limits every host reads: under HF_MAX_REQUEST_TOKENS an
//! over-long input fails with the very body `serve` answers (400), written to the failure
//! location.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use clap::Parser;
use hf_inference_host::{load_service, LimitsArgs, ModelArgs};
use hf_inference_http::{router, AppState, HttpSettings};
use http_body_util::BodyExt;
use tower::ServiceExt;

const LONG: &str = r#"{"inputs": "I love this movie, it is the best film I have seen in years and I would watch it again"}"#;

fn model() -> PathBuf {
    hf_inference_tests::fixtures().join("models/text-classification")
}

/// What `serve` answers under the same variables: its router over a service loaded by the
/// shared host crate.
async fn serve_answer(envs: &[(&str, &str)], body: &str) -> (u16, Vec<u8>) {
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        limits: LimitsArgs,
    }
    let mut args = vec!["serve".to_owned()];
    for (k, v) in envs {
        let flag = match *k {
            "HF_TASK" => "--task",
            "HF_MODEL_DIR" => "--model-dir",
            "HF_MAX_REQUEST_TOKENS" => "--max-request-tokens",
            other => panic!("no flag for {other}"),
        };
        args.extend([flag.to_owned(), (*v).to_owned()]);
    }
    let c = Serve::try_parse_from(args).unwrap();
    let load = c.model.load_options(&c.limits).unwrap();
    let service = load_service(&load, hf_inference_core::RuntimeOptions::default()).unwrap();
    let app = router(AppState::ready(HttpSettings::default(), service));
    let req = axum::http::Request::post("/invocations")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("hf-async-limits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_job(root: &Path, envs: &[(&str, &str)], input: &Path) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_async-handler"));
    cmd.env_clear()
        .env("HF_ASYNC_OUTPUT_PATH", root.join("out"))
        .env("HF_ASYNC_FAILURE_PATH", root.join("failed"))
        .arg("job")
        .arg(input);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_long_input_fails_as_serve_answers() {
    let root = tempdir();
    let dir = model();
    let envs = [
        ("HF_TASK", "text-classification"),
        ("HF_MODEL_DIR", dir.to_str().unwrap()),
        ("HF_MAX_REQUEST_TOKENS", "8"),
    ];
    let input = root.join("long.json");
    std::fs::write(&input, LONG).unwrap();
    let outcome = run_job(&root, &envs, &input);
    assert_eq!(outcome["status"], "Failed", "{outcome}");
    let failure = std::fs::read(root.join("failed/long-error.out")).unwrap();

    let (status, served) = serve_answer(&envs, LONG).await;
    assert_eq!(status, 400);
    assert_eq!(
        String::from_utf8_lossy(&failure),
        String::from_utf8_lossy(&served),
        "the same body as serve's"
    );
    let v: serde_json::Value = serde_json::from_slice(&failure).unwrap();
    assert_eq!(v["code"], 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("HF_MAX_REQUEST_TOKENS"),
        "{v}"
    );

    // without the limit the same text succeeds
    let again = root.join("unlimited.json");
    std::fs::write(&again, LONG).unwrap();
    let outcome = run_job(&root, &envs[..2], &again);
    assert_eq!(outcome["status"], "Completed", "{outcome}");
    let _ = std::fs::remove_dir_all(&root);
}
