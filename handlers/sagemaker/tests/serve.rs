//! The real `serve` binary: start-up, health, an invocation, limits, and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(envs: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_serve"));
    cmd.arg("serve")
        .env_clear()
        .env("SAGEMAKER_BIND_TO_PORT", "0")
        .env("HF_BIND_ADDRESS", "127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, addr }
}

/// One HTTP/1.1 request; returns (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn wait_healthy(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _) = http(addr, "GET", "/ping", &[], b"");
        if status == 200 {
            return;
        }
        assert_eq!(status, 503, "/ping must be 503 while loading");
        assert!(Instant::now() < deadline, "the model never became healthy");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_text_classification_then_drains_on_sigterm() {
    let dir = fixture("text-classification");
    let mut server = start(&[
        ("HF_TASK", "text-classification"),
        ("HF_MODEL_DIR", dir.to_str().unwrap()),
    ]);
    wait_healthy(&server.addr);
    let (status, body) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        br#"{"inputs": "I love this"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        ["negative", "neutral", "positive"].contains(&v[0]["label"].as_str().unwrap()),
        "{body}"
    );
    let (status, body) = http(&server.addr, "GET", "/execution-parameters", &[], b"");
    assert_eq!(status, 200);
    assert!(body.contains("\"MaxPayloadInMB\":6"), "{body}");

    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn infers_the_task_and_enforces_the_payload_limit() {
    let dir = fixture("feature-extraction-tiny");
    // no HF_TASK: BertModel → feature-extraction
    let server = start(&[
        ("HF_MODEL_DIR", dir.to_str().unwrap()),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1"),
    ]);
    wait_healthy(&server.addr);
    let (status, body) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        br#"{"inputs": "hi"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("[[["), "{body}");
    let big = vec![b' '; 1024 * 1024 + 1];
    let (status, body) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        &big,
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"code\":413"), "{body}");
}

fn run_to_exit(envs: &[(&str, &str)]) -> (bool, String) {
    let mut server = start(envs);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.success(), err)
}

#[test]
fn bad_configuration_fails_fast_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_serve"))
        .env_clear()
        .env("HF_TASK", "audio-classification")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audio-classification") && err.contains("not implemented"),
        "{err}"
    );

    let (ok, err) = run_to_exit(&[
        ("HF_TASK", "feature-extraction"),
        ("HF_MODEL_DIR", "/nonexistent/model"),
    ]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/model"), "{err}");
}

/// A model.tar.gz with a `code/` folder (the Python toolkit's inference.py hooks) stops the
/// container at start with the reason, instead of serving the model without the code.
#[test]
fn a_custom_code_folder_is_refused_at_start() {
    let base = std::env::temp_dir().join(format!("hfi-serve-code-{}", std::process::id()));
    let model = base.join("model");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(model.join("code")).unwrap();
    for f in std::fs::read_dir(fixture("text-classification")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), model.join(f.file_name())).unwrap();
    }
    std::fs::write(
        model.join("code/inference.py"),
        "def predict_fn(data, model): ...\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_serve"))
        .arg("serve")
        .env_clear()
        .env("SAGEMAKER_BASE_DIR", &base)
        .env("SAGEMAKER_BIND_TO_PORT", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&model.join("code").display().to_string())
            && err.contains("Remove code/ from model.tar.gz"),
        "{err}"
    );
    // without it, the same directory serves
    std::fs::remove_dir_all(model.join("code")).unwrap();
    let server = start(&[("SAGEMAKER_BASE_DIR", base.to_str().unwrap())]);
    wait_healthy(&server.addr);
    drop(server);
    std::fs::remove_dir_all(&base).unwrap();
}

/// HF_MODEL_ID through the environment, served from a Hugging Face cache laid out as
/// huggingface_hub lays it out, with HF_HUB_OFFLINE=1 (no network); and --download-only.
#[test]
fn serves_a_hub_model_from_the_hf_cache_offline() {
    let home = std::env::temp_dir().join(format!("hfi-serve-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let repo = home.join("hub/models--org--tiny");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    for (i, f) in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors",
    ]
    .iter()
    .enumerate()
    {
        let blob = repo.join("blobs").join(format!("blob{i}"));
        std::fs::copy(fixture("feature-extraction-tiny").join(f), &blob).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/blob{i}"), snap.join(f)).unwrap();
    }
    let home_s = home.to_str().unwrap();
    let env = [
        ("HF_MODEL_ID", "org/tiny"),
        ("HF_HOME", home_s),
        ("HF_HUB_OFFLINE", "1"),
        ("HF_TASK", "feature-extraction"),
        ("HF_API_TOKEN", "hf_secret_value"),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_serve"))
        .arg("--download-only")
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        snap.to_str().unwrap()
    );

    let mut server = start(&env);
    wait_healthy(&server.addr);
    let (status, body) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        br#"{"inputs": "hi"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let _ = server.child.kill();
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        !err.contains("hf_secret_value"),
        "the token leaked into the log"
    );

    let help = Command::new(env!("CARGO_BIN_EXE_serve"))
        .arg("--help")
        .env("HF_API_TOKEN", "hf_secret_value")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("HF_API_TOKEN") && !help.contains("hf_secret_value"),
        "{help}"
    );
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

/// Batch transform: SAGEMAKER_BATCH, its parameters echoed by /execution-parameters, and a
/// JSON Lines mini-batch answered line by line through the real binary.
#[test]
fn batch_transform_with_json_lines() {
    let dir = fixture("text-classification");
    let server = start(&[
        ("HF_TASK", "text-classification"),
        ("HF_MODEL_DIR", dir.to_str().unwrap()),
        ("SAGEMAKER_BATCH", "true"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "0"),
        ("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "2"),
        ("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD"),
    ]);
    wait_healthy(&server.addr);
    let (status, body) = http(&server.addr, "GET", "/execution-parameters", &[], b"");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 0})
    );
    let lines = "{\"inputs\": \"I love this\"}\n{\"inputs\": 1}\n{\"inputs\": [\"a\", \"b\"]}\n";
    let (status, body) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/jsonlines")],
        lines.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let out = dechunk(&body);
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 3, "{out}");
    assert!(answers[0][0]["label"].is_string(), "{out}");
    assert_eq!(answers[1]["code"], 400, "{out}");
    assert_eq!(answers[2].as_array().map(Vec::len), Some(2), "{out}");
}

/// HF_MAX_REQUEST_TOKENS bounds a request's tokens: more get 400 (the async handler and the
/// Lambda front-end's in-process routes answer the same under the same variable).
#[test]
fn enforces_the_request_token_limit() {
    let dir = fixture("text-classification");
    let server = start(&[
        ("HF_TASK", "text-classification"),
        ("HF_MODEL_DIR", dir.to_str().unwrap()),
        ("HF_MAX_REQUEST_TOKENS", "8"),
    ]);
    wait_healthy(&server.addr);
    let long = br#"{"inputs": "I love this movie, it is the best film I have seen in years and I would watch it again"}"#;
    let (status, body) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        long,
    );
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "InputTooLong", "{body}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("HF_MAX_REQUEST_TOKENS"),
        "{body}"
    );
    let (status, body) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        br#"{"inputs": "I love it"}"#,
    );
    assert_eq!(status, 200, "{body}");
}

/// `HF_LOG_FORMAT=json` (the default on SageMaker): one JSON line per request with its id, task,
/// status, latency and body sizes, and never the payload.
#[test]
fn writes_one_json_log_line_per_request_without_the_payload() {
    let dir = fixture("text-classification");
    let mut server = start(&[
        ("HF_TASK", "text-classification"),
        ("HF_MODEL_DIR", dir.to_str().unwrap()),
        ("HF_LOG_FORMAT", "json"),
    ]);
    let stderr = server.child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    wait_healthy(&server.addr);
    let body = br#"{"inputs": "a secret payload: zebra-crossing-4711"}"#;
    let (status, answer) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[
            ("Content-Type", "application/json"),
            ("X-Amzn-RequestId", "req-abc-123"),
        ],
        body,
    );
    assert_eq!(status, 200, "{answer}");
    let mut seen = Vec::new();
    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no request line in {seen:#?}"));
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["target"] == "hf_inference::request" {
            break v;
        }
        seen.push(line);
    };
    let f = &line["fields"];
    assert_eq!(f["id"], "req-abc-123", "{line}");
    assert_eq!(f["task"], "text-classification", "{line}");
    assert_eq!(f["status"], 200, "{line}");
    assert_eq!(f["input_bytes"], body.len(), "{line}");
    assert_eq!(f["output_bytes"], answer.len(), "{line}");
    assert!(
        f["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    assert!(line["timestamp"].is_string(), "{line}");
    assert!(
        !line.to_string().contains("zebra"),
        "the payload leaked: {line}"
    );
    for other in &seen {
        assert!(!other.contains("zebra"), "the payload leaked: {other}");
    }
    // a failed request: its error type, still no payload
    let (status, _) = http(
        &server.addr,
        "POST",
        "/invocations",
        &[("Content-Type", "application/json")],
        br#"{"inputs": 4711, "zebra": true}"#,
    );
    assert_eq!(status, 400);
    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a second line");
        if line.contains("hf_inference::request") {
            break line;
        }
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["fields"]["status"], 400, "{line}");
    assert!(v["fields"]["error_type"].is_string(), "{line}");
    assert!(v["fields"]["id"].is_string(), "{line}");
    assert!(!line.contains("zebra"), "the payload leaked: {line}");
}
