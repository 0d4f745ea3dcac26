//! The handler over the local filesystem: folder runs, SQS and direct-invocation events, failure
//! bodies, notifications in SageMaker's shape, idempotent redelivery and poison inputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hf_inference_async::notify::Topic;
use hf_inference_async::storage::Stores;
use hf_inference_async::{AsyncArgs, Handler, Location, Outcome};
use hf_inference_core::{load_pipeline, InferenceService, LoadOptions, Runtime, RuntimeOptions};
use serde_json::{json, Value};

fn service() -> InferenceService {
    let dir = hf_inference_tests::fixtures().join("models/text-classification");
    let opts = LoadOptions::local(dir, Some("text-classification".parse().unwrap()));
    let pipeline = load_pipeline(&opts).unwrap();
    InferenceService::new(pipeline, Runtime::new(RuntimeOptions::default()).unwrap())
}

fn args(root: &Path) -> AsyncArgs {
    AsyncArgs {
        output: Some(Location::File(root.join("out"))),
        failure: Some(Location::File(root.join("failed"))),
        content_type: "application/json".into(),
        accept: None,
        max_input_mb: 1,
        success_topic: Some(Topic::File(root.join("notifications.jsonl"))),
        error_topic: Some(Topic::File(root.join("notifications.jsonl"))),
        endpoint_name: Some("demo".into()),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hf-async-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("in")).unwrap();
    d
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn notifications(root: &Path) -> Vec<Value> {
    std::fs::read_to_string(root.join("notifications.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_inputs_becomes_outputs_failures_and_notifications() {
    let root = tempdir("folder");
    let input = root.join("in");
    std::fs::write(input.join("good.json"), r#"{"inputs": "I love this"}"#).unwrap();
    std::fs::write(input.join("bad.json"), r#"{"inputs": 1}"#).unwrap();
    std::fs::write(
        input.join("lines.jsonl"),
        "{\"inputs\": \"a\"}\n{\"inputs\": false}\n{\"inputs\": [\"b\", \"c\"]}\n",
    )
    .unwrap();
    std::fs::write(
        input.join("big.json"),
        format!("{{\"inputs\": \"{}\"}}", "a".repeat(2 << 20)),
    )
    .unwrap();
    let svc = service();
    let expected = svc
        .invoke(
            Some("application/json"),
            None,
            br#"{"inputs": "I love this"}"#.to_vec(),
        )
        .await
        .unwrap();
    let handler = Handler::new(svc, Arc::new(Stores::default()), args(&root));
    let outcomes = handler
        .run_prefix(&Location::File(input.clone()))
        .await
        .unwrap();
    let status = |id: &str| {
        outcomes
            .iter()
            .find_map(|o| match o {
                Outcome::Completed { inference_id, .. } if inference_id == id => Some("Completed"),
                Outcome::Failed { inference_id, .. } if inference_id == id => Some("Failed"),
                _ => None,
            })
            .unwrap_or("missing")
    };
    assert_eq!(
        (
            status("good"),
            status("bad"),
            status("lines"),
            status("big")
        ),
        ("Completed", "Failed", "Completed", "Failed"),
        "{outcomes:?}"
    );
    assert_eq!(
        std::fs::read(root.join("out/good.out")).unwrap(),
        expected.body
    );
    let bad = read_json(&root.join("failed/bad-error.out"));
    assert_eq!(bad["code"], 400, "{bad}");
    assert_eq!(read_json(&root.join("failed/big-error.out"))["code"], 413);
    // JSON Lines in, JSON Lines out
    let lines = std::fs::read_to_string(root.join("out/lines.out")).unwrap();
    let lines: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["code"], 400);
    assert_eq!(lines[2].as_array().map(Vec::len), Some(2));

    let notes = notifications(&root);
    assert_eq!(notes.len(), 4, "{notes:#?}");
    let good = notes.iter().find(|n| n["inferenceId"] == "good").unwrap();
    assert_eq!(good["invocationStatus"], "Completed");
    assert_eq!(good["eventSource"], "aws:sagemaker");
    assert_eq!(good["eventName"], "InferenceResult");
    assert_eq!(good["requestParameters"]["endpointName"], "demo");
    assert_eq!(good["requestParameters"]["contentType"], "application/json");
    assert!(good["responseParameters"]["outputLocation"]
        .as_str()
        .unwrap()
        .ends_with("/out/good.out"));
    let bad = notes.iter().find(|n| n["inferenceId"] == "bad").unwrap();
    assert_eq!(bad["invocationStatus"], "Failed");
    assert!(
        bad["failureReason"].as_str().unwrap().contains("inputs"),
        "{bad}"
    );
    assert!(bad["responseParameters"]["failureLocation"]
        .as_str()
        .unwrap()
        .ends_with("/failed/bad-error.out"));

    // redelivery: nothing recomputed, nothing re-notified
    std::fs::write(root.join("out/good.out"), b"kept").unwrap();
    let again = handler.run_prefix(&Location::File(input)).await.unwrap();
    assert!(
        again.iter().all(|o| matches!(o, Outcome::Skipped { .. })),
        "{again:?}"
    );
    assert_eq!(std::fs::read(root.join("out/good.out")).unwrap(), b"kept");
    assert_eq!(notifications(&root).len(), 4);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_and_direct_events() {
    let root = tempdir("events");
    let input = root.join("in/review.json");
    std::fs::write(&input, r#"{"inputs": ["so good", "so bad"]}"#).unwrap();
    let handler = Handler::new(service(), Arc::new(Stores::default()), args(&root));

    let job = json!({"InputLocation": format!("file://{}", input.display()), "InferenceId": "r/1", "Accept": "application/jsonlines"});
    let event = json!({"Records": [
        {"messageId": "m1", "eventSource": "aws:sqs", "body": job.to_string()},
        {"messageId": "m2", "eventSource": "aws:sqs", "body": "not json"},
        {"messageId": "m3", "eventSource": "aws:sqs", "body": json!({"InputLocation": format!("file://{}/in/missing.json", root.display())}).to_string()},
        {"messageId": "m4", "eventSource": "aws:sqs", "body": json!({"Event": "s3:TestEvent"}).to_string()},
    ]});
    let answer = handler.handle_event(event, None).await.unwrap();
    // nothing to retry: m1 done, m2 unusable (dropped), m3's input is missing (failed for good)
    assert_eq!(answer, json!({"batchItemFailures": []}));
    // the id is made file-safe; Accept JSON Lines gives one answer per input
    let out = std::fs::read_to_string(root.join("out/r-1.out")).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    let missing = read_json(&root.join("failed/missing-error.out"));
    assert_eq!(missing["code"], 400);
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{missing}"
    );

    // a redelivered message is not recomputed, but its notification is sent again (the
    // first one may be what failed)
    let before = notifications(&root).len();
    std::fs::write(root.join("out/r-1.out"), "kept").unwrap();
    let again = json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs", "body": job.to_string()}]});
    assert_eq!(
        handler.handle_event(again, None).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    assert_eq!(
        std::fs::read_to_string(root.join("out/r-1.out")).unwrap(),
        "kept"
    );
    let notes = notifications(&root);
    assert_eq!(notes.len(), before + 1);
    assert_eq!(notes.last().unwrap()["inferenceId"], "r-1");
    assert_eq!(notes.last().unwrap()["invocationStatus"], "Completed");

    // a direct invocation with its own output location
    let direct = json!({
        "InputLocation": input.display().to_string(),
        "OutputLocation": root.join("elsewhere/result.json").display().to_string(),
    });
    let answer = handler.handle_event(direct, None).await.unwrap();
    assert_eq!(answer["status"], "Completed", "{answer}");
    assert_eq!(
        read_json(&root.join("elsewhere/result.json"))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(handler
        .handle_event(json!({"hello": 1}), None)
        .await
        .is_err());

    // an SQS message whose storage is unreachable is handed back for redelivery
    let unreachable = json!({"Records": [{"messageId": "m9", "eventSource": "aws:sqs",
        "body": json!({"InputLocation": input.display().to_string(), "OutputLocation": "/proc/forbidden/x.out"}).to_string()}]});
    let answer = handler.handle_event(unreachable, None).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m9"}]})
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The sample events in the repository (for `cargo lambda invoke --data-file`) are events the
/// handler understands.
#[test]
fn sample_events_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    for name in ["s3-put.json", "sqs-job.json", "job.json"] {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        assert!(
            v.get("Records").is_some() || v.get("InputLocation").is_some(),
            "{name}"
        );
    }
}
