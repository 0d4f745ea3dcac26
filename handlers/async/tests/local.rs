//! The handler over the local filesystem: folder runs, SQS and direct-invocation events, failure
//! bodies, notifications in SageMaker's shape, idempotent redelivery and poison inputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hf_inference_async::notify::Topic;
use hf_inference_async::storage::{
    BoxFuture, Head, LocalStore, Object, ObjectStore, StorageError, Stores,
};
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

/// An object store over local files that reports every object with one content type, as S3
/// reports an object's `Content-Type` metadata whatever its key.
struct Typed(&'static str);

impl ObjectStore for Typed {
    fn get<'a>(
        &'a self,
        at: &'a Location,
        limit: u64,
    ) -> BoxFuture<'a, Result<Object, StorageError>> {
        Box::pin(async move {
            let mut o = LocalStore.get(at, limit).await?;
            o.content_type = Some(self.0.to_owned());
            Ok(o)
        })
    }

    fn put<'a>(
        &'a self,
        at: &'a Location,
        body: bytes::Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        LocalStore.put(at, body, content_type)
    }

    fn head<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Head, StorageError>> {
        LocalStore.head(at)
    }

    fn list<'a>(
        &'a self,
        prefix: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<Location>, StorageError>> {
        LocalStore.list(prefix)
    }
}

fn image_service() -> InferenceService {
    let (dir, task) = hf_inference_tests::fixture_model("image-classification");
    let opts = LoadOptions::local(dir, Some(task.parse().unwrap()));
    InferenceService::new(
        load_pipeline(&opts).unwrap(),
        Runtime::new(RuntimeOptions::default()).unwrap(),
    )
}

/// Image inputs are answered as the container answers them: a local file's type from its
/// extension, else the job's `ContentType` or the object's own (S3 metadata); the answers are
/// the toolkit's (the golden file's) within 1e-4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_inputs_are_answered_as_the_toolkit_answers_them() {
    let goldens = hf_inference_tests::goldens("image-classification");
    let golden = |case: &str| {
        goldens
            .iter()
            .find(|g| g.case == case)
            .unwrap_or_else(|| panic!("no golden {case}"))
            .clone()
    };
    let (png, jpeg) = (golden("raw/image-png"), golden("raw/image-jpeg"));
    let root = tempdir("images");
    let input = root.join("in");
    std::fs::write(input.join("teapot.png"), png.request_bytes()).unwrap();
    std::fs::write(input.join("teapot-2.JPG"), jpeg.request_bytes()).unwrap();
    std::fs::write(input.join("teapot-3.jpeg"), jpeg.request_bytes()).unwrap();
    std::fs::write(input.join("garbage.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let handler = Handler::new(image_service(), Arc::new(Stores::default()), args(&root));
    let outcomes = handler
        .run_prefix(&Location::File(input.clone()))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    let at_parity = |file: &str, g: &hf_inference_tests::Golden| {
        let body = std::fs::read(root.join("out").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e} ({outcomes:?})"));
        let verdict = hf_inference_tests::judge(g, 200, Some("application/json"), &body);
        assert_eq!(
            verdict,
            hf_inference_tests::Verdict::Pass,
            "{file}: {}",
            String::from_utf8_lossy(&body)
        );
    };
    at_parity("teapot.out", &png);
    at_parity("teapot-2.out", &jpeg);
    at_parity("teapot-3.out", &jpeg);
    let bad = read_json(&root.join("failed/garbage-error.out"));
    assert_eq!(bad["code"], 400, "{bad}");
    let notes = notifications(&root);
    let content_type = |id: &str| {
        notes
            .iter()
            .find(|n| n["inferenceId"] == id)
            .map(|n| n["requestParameters"]["contentType"].clone())
    };
    assert_eq!(content_type("teapot"), Some(json!("image/png")));
    assert_eq!(content_type("teapot-2"), Some(json!("image/jpeg")));

    // no extension: the job's ContentType says
    std::fs::write(input.join("upload"), png.request_bytes()).unwrap();
    let job = json!({
        "InputLocation": input.join("upload").display().to_string(),
        "InferenceId": "by-job",
        "ContentType": "image/png",
    });
    let answer = handler.handle_event(job, None).await.unwrap();
    assert_eq!(answer["status"], "Completed", "{answer}");
    at_parity("by-job.out", &png);

    // no extension, no job type: the object's own Content-Type (S3 metadata) says
    std::fs::write(input.join("object"), jpeg.request_bytes()).unwrap();
    let s3_like = Handler::new(image_service(), Arc::new(Typed("image/jpeg")), args(&root));
    let job = json!({"InputLocation": input.join("object").display().to_string()});
    let answer = s3_like.handle_event(job, None).await.unwrap();
    assert_eq!(answer["status"], "Completed", "{answer}");
    at_parity("object.out", &jpeg);

    // a type the task does not take is refused as the container refuses it
    std::fs::write(input.join("text"), png.request_bytes()).unwrap();
    let job = json!({
        "InputLocation": input.join("text").display().to_string(),
        "ContentType": "text/plain",
    });
    let answer = handler.handle_event(job, None).await.unwrap();
    assert_eq!(answer["status"], "Failed", "{answer}");
    assert_eq!(read_json(&root.join("failed/text-error.out"))["code"], 415);
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

/// A zero-shot image job takes its labels from the job's `CustomAttributes`, and answers as the
/// JSON request with the same labels does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_job_takes_its_parameters_from_custom_attributes() {
    let (dir, task) = hf_inference_tests::fixture_model("zero-shot-image-classification");
    let opts = LoadOptions::local(dir, Some(task.parse().unwrap()));
    let service = InferenceService::new(
        load_pipeline(&opts).unwrap(),
        Runtime::new(RuntimeOptions::default()).unwrap(),
    );
    let goldens = hf_inference_tests::goldens("zero-shot-image-classification");
    let with_labels = goldens
        .iter()
        .find(|g| g.case == "json/base64-params")
        .unwrap();
    let png = goldens.iter().find(|g| g.case == "raw/image-png").unwrap();
    let root = tempdir("zero-shot-images");
    std::fs::write(root.join("in/cat.png"), png.request_bytes()).unwrap();
    let handler = Handler::new(service, Arc::new(Stores::default()), args(&root));
    let job = |id: &str, attrs: Option<&str>| {
        json!({
            "InputLocation": format!("file://{}/in/cat.png", root.display()),
            "InferenceId": id,
            "CustomAttributes": attrs,
        })
    };
    handler
        .handle_event(job("labelled", Some("candidate_labels=cat,dog,car")), None)
        .await
        .unwrap();
    let got = read_json(&root.join("out/labelled.out"));
    let want: Value = serde_json::from_slice(&with_labels.response_bytes()).unwrap();
    let close = |a: &Value, b: &Value| {
        a["label"] == b["label"]
            && (a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-4
    };
    let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().zip(want).all(|(a, b)| close(a, b)),
        "{got:?} vs {want:?}"
    );
    // without labels the job fails for good, saying how to send them
    handler
        .handle_event(job("unlabelled", None), None)
        .await
        .unwrap();
    let failed = read_json(&root.join("failed/unlabelled-error.out"));
    assert_eq!(failed["code"], 400);
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("candidate_labels"),
        "{failed}"
    );
}
