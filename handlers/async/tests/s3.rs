//! The handler against a real S3 API served locally by moto (PyPI `moto[server]`, installed by
//! infra/ci/check.sh, which exports HF_TEST_MOTO_DIR): S3 events, SQS messages, poison inputs,
//! redelivery and SNS notifications. Without moto it fails under CI (CI=true) and skips with a notice elsewhere.

use std::sync::Arc;

use hf_inference_async::notify::Topic;
use hf_inference_async::storage::Stores;
use hf_inference_async::{AsyncArgs, Handler, Location};
use hf_inference_core::{load_pipeline, InferenceService, LoadOptions, Runtime, RuntimeOptions};
use serde_json::{json, Value};

async fn body_of(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    let o = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    let b = o.body.collect().await.ok()?.into_bytes();
    Some(String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_events_sqs_messages_and_sns_against_a_local_s3_api() {
    let Some(moto) =
        hf_inference_tests::Moto::start("s3_events_sqs_messages_and_sns_against_a_local_s3_api")
    else {
        return;
    };
    let url = moto.url();
    // this test binary holds only this test: the environment is ours to set
    std::env::set_var("AWS_ENDPOINT_URL", &url);
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");

    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    let sns = aws_sdk_sns::Client::new(&shared);
    let bucket = "hf-async-demo";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let topic = sns.create_topic().name("done").send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let put = |key: &'static str, body: &'static str, ct: &'static str| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .content_type(ct)
                .body(body.as_bytes().to_vec().into())
                .send()
                .await
                .unwrap();
        }
    };
    put(
        "inputs/review 1.json",
        r#"{"inputs": "I love this"}"#,
        "application/json",
    )
    .await;
    put(
        "inputs/batch-7.jsonl",
        "{\"inputs\": \"a\"}\n{\"inputs\": \"b\"}\n",
        "application/jsonlines",
    )
    .await;
    put("inputs/poison.json", "{\"inputs\": ", "application/json").await;

    let dir = hf_inference_tests::fixtures().join("models/text-classification");
    let pipeline = load_pipeline(&LoadOptions::local(
        dir,
        Some("text-classification".parse().unwrap()),
    ))
    .unwrap();
    let service = InferenceService::new(pipeline, Runtime::new(RuntimeOptions::default()).unwrap());
    let expected = service
        .invoke(
            Some("application/json"),
            None,
            br#"{"inputs": "I love this"}"#.to_vec(),
        )
        .await
        .unwrap();
    let args = AsyncArgs {
        output: Some("s3://hf-async-demo/outputs/".parse::<Location>().unwrap()),
        failure: Some("s3://hf-async-demo/failures/".parse::<Location>().unwrap()),
        content_type: "application/json".into(),
        accept: None,
        max_input_mb: 16,
        success_topic: Some(Topic::Sns(topic_arn.clone())),
        error_topic: Some(Topic::Sns(topic_arn)),
        endpoint_name: None,
    };
    let handler = Handler::new(service, Arc::new(Stores::default()), args);

    // the sample S3 event (a form-encoded key) and the sample SQS job, aimed at our objects
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut s3_event: Value =
        serde_json::from_str(&std::fs::read_to_string(events.join("s3-put.json")).unwrap())
            .unwrap();
    s3_event["Records"][0]["s3"]["object"]["key"] = json!("inputs/review+1.json");
    let answer = handler.handle_event(s3_event.clone(), None).await.unwrap();
    assert_eq!(answer["outcomes"][0]["status"], "Completed", "{answer}");
    // the id is the file name plus the event's ETag prefix
    let out = body_of(&s3, bucket, "outputs/review-1-01234567.out")
        .await
        .unwrap();
    assert_eq!(out.as_bytes(), expected.body.as_slice());

    let sqs: Value =
        serde_json::from_str(&std::fs::read_to_string(events.join("sqs-job.json")).unwrap())
            .unwrap();
    let answer = handler.handle_event(sqs.clone(), None).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let lines = body_of(&s3, bucket, "outputs/batch-7.out").await.unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");

    // an upload without a content type (S3 says binary/octet-stream): the extension decides
    s3.put_object()
        .bucket(bucket)
        .key("inputs/plain.jsonl")
        .body(b"{\"inputs\": \"x\"}\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let job = json!({"Records": [{"messageId": "p", "eventSource": "aws:sqs",
        "body": json!({"InputLocation": "s3://hf-async-demo/inputs/plain.jsonl"}).to_string()}]});
    assert_eq!(
        handler.handle_event(job, None).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    let plain = body_of(&s3, bucket, "outputs/plain.out").await.unwrap();
    assert_eq!(plain.lines().count(), 1, "{plain}");
    assert!(body_of(&s3, bucket, "failures/plain-error.out")
        .await
        .is_none());

    // a folder marker and our own results are not inputs
    let markers = json!({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": "inputs/"}}},
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": "outputs/review-1-01234567.out"}}}]});
    assert_eq!(
        handler.handle_event(markers, None).await.unwrap(),
        json!({"outcomes": []})
    );

    // a poison input ends in the failure location, once
    let poison = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": "inputs/poison.json"}}}]});
    let answer = handler.handle_event(poison.clone(), None).await.unwrap();
    assert_eq!(answer["outcomes"][0]["status"], "Failed", "{answer}");
    let err: Value = serde_json::from_str(
        &body_of(&s3, bucket, "failures/poison-error.out")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(err["code"], 400);
    let again = handler.handle_event(poison, None).await.unwrap();
    assert_eq!(again["outcomes"][0]["status"], "Skipped", "{again}");

    // redelivery of a finished job recomputes nothing
    let again = handler.handle_event(s3_event, None).await.unwrap();
    assert_eq!(again["outcomes"][0]["status"], "Skipped", "{again}");

    // a folder run over the S3 prefix: everything is already done
    let all = handler
        .run_prefix(&"s3://hf-async-demo/inputs/".parse::<Location>().unwrap())
        .await
        .unwrap();
    assert_eq!(all.len(), 4, "{all:?}");

    // storage that does not exist: retried, not failed
    let lost = json!({"Records": [{"messageId": "x", "eventSource": "aws:sqs",
        "body": json!({"InputLocation": "s3://no-such-bucket/in.json"}).to_string()}]});
    let answer = handler.handle_event(lost, None).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "x"}]})
    );

    // image inputs on an image task: the object's Content-Type says (or, for an upload that
    // gave none, the extension), and the answers are the toolkit's
    let goldens = hf_inference_tests::goldens("image-classification");
    let golden = |case: &str| goldens.iter().find(|g| g.case == case).unwrap().clone();
    let (png, jpeg) = (golden("raw/image-png"), golden("raw/image-jpeg"));
    s3.put_object()
        .bucket(bucket)
        .key("images/teapot")
        .content_type("image/png")
        .body(png.request_bytes().into())
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(bucket)
        .key("images/teapot-2.jpg")
        .body(jpeg.request_bytes().into())
        .send()
        .await
        .unwrap();
    let (dir, task) = hf_inference_tests::fixture_model("image-classification");
    let pipeline = load_pipeline(&LoadOptions::local(dir, Some(task.parse().unwrap()))).unwrap();
    let images = Handler::new(
        InferenceService::new(pipeline, Runtime::new(RuntimeOptions::default()).unwrap()),
        Arc::new(Stores::default()),
        AsyncArgs {
            success_topic: None,
            error_topic: None,
            ..handler_args()
        },
    );
    let job = json!({"Records": [
        {"messageId": "i1", "eventSource": "aws:sqs",
         "body": json!({"InputLocation": "s3://hf-async-demo/images/teapot"}).to_string()},
        {"messageId": "i2", "eventSource": "aws:sqs",
         "body": json!({"InputLocation": "s3://hf-async-demo/images/teapot-2.jpg"}).to_string()}]});
    assert_eq!(
        images.handle_event(job, None).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    for (key, g) in [
        ("outputs/teapot.out", &png),
        ("outputs/teapot-2.out", &jpeg),
    ] {
        let body = body_of(&s3, bucket, key)
            .await
            .unwrap_or_else(|| panic!("{key} was not written"));
        let verdict = hf_inference_tests::judge(g, 200, Some("application/json"), body.as_bytes());
        assert_eq!(verdict, hf_inference_tests::Verdict::Pass, "{key}: {body}");
    }
}

/// The test's settings, without its topics.
fn handler_args() -> AsyncArgs {
    AsyncArgs {
        output: Some("s3://hf-async-demo/outputs/".parse::<Location>().unwrap()),
        failure: Some("s3://hf-async-demo/failures/".parse::<Location>().unwrap()),
        content_type: "application/json".into(),
        accept: None,
        max_input_mb: 16,
        success_topic: None,
        error_topic: None,
        endpoint_name: None,
    }
}
