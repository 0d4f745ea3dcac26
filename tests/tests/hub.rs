//! The Hub client against a local fake Hub (no network): the file API the real Hub serves
//! (`/api/models/{id}/revision/{rev}`, `/{id}/resolve/{rev}/{file}` with `X-Repo-Commit`, `ETag`,
//! `X-Linked-Etag`/`X-Linked-Size` and a redirect for LFS files), tokens, revisions, the cache
//! layout, offline use, resumed downloads, checksums and hostile file names.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hf_inference_core::hub::{HubModel, HubOptions, Secret};
use hf_inference_core::model::ModelSource;
use hf_inference_core::{load_pipeline, LoadOptions};
use hf_inference_tests::fixtures;
use sha2::Digest;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKEN: &str = "hf_test_token_123";
const SHARD: &str = "model-00001-of-00001.safetensors";

#[derive(Default)]
struct Log {
    requests: Vec<(String, String, Option<String>, Option<String>)>, // method, path, auth, range
    cut_done: bool,
}

struct FakeHub {
    addr: String,
    log: Arc<Mutex<Log>>,
}

fn sha256_hex(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn model_files() -> HashMap<String, Vec<u8>> {
    let dir = fixtures().join("models/feature-extraction-tiny");
    [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors",
    ]
    .iter()
    .map(|f| ((*f).to_owned(), std::fs::read(dir.join(f)).unwrap()))
    .collect()
}

impl FakeHub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Log::default()));
        let files = Arc::new(model_files());
        let l2 = Arc::clone(&log);
        // the "CDN" is another origin (as cdn-lfs.huggingface.co is): same server, named localhost
        let cdn = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, files, cdn) = (Arc::clone(&l2), Arc::clone(&files), cdn.clone());
                std::thread::spawn(move || handle(stream, &log, &files, &cdn));
            }
        });
        Self { addr, log }
    }

    fn options(&self, cache: &Path, token: Option<&str>) -> HubOptions {
        HubOptions {
            endpoint: self.addr.clone(),
            token: token.map(Secret::new),
            cache_dir: cache.to_path_buf(),
            offline: false,
            retries: 4,
        }
    }
}

fn respond(
    s: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    send_body: bool,
) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let _ = s.write_all(out.as_bytes());
    if send_body {
        let _ = s.write_all(body);
    }
}

fn handle(mut s: TcpStream, log: &Mutex<Log>, files: &HashMap<String, Vec<u8>>, cdn: &str) {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("").to_owned(),
    );
    let (mut auth, mut range) = (None, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or(("", ""));
        match k.to_ascii_lowercase().as_str() {
            "authorization" => auth = Some(v.trim().to_owned()),
            "range" => range = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    log.lock()
        .unwrap()
        .requests
        .push((method.clone(), path.clone(), auth.clone(), range.clone()));
    let head = method == "HEAD";
    let not_found = |s: &mut TcpStream, code: &str| {
        respond(
            s,
            "404 Not Found",
            &[("X-Error-Code", code.to_owned())],
            b"{\"error\":\"not found\"}",
            !head,
        )
    };

    // the CDN: LFS blobs by sha256, Range supported, no auth expected
    if let Some(rest) = path.strip_prefix("/cdn/") {
        let (repo, sha) = rest.split_once('/').unwrap_or(("", ""));
        let Some(mut body) = files.values().find(|b| sha256_hex(b) == sha).cloned() else {
            return not_found(&mut s, "EntryNotFound");
        };
        if repo == "badsha" {
            body[100] ^= 0xff;
        }
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
            .unwrap_or(0);
        if repo == "cut" && !log.lock().unwrap().cut_done {
            // announce the whole file, send half, hang up
            log.lock().unwrap().cut_done = true;
            respond(
                &mut s,
                "200 OK",
                &[("Content-Length", body.len().to_string())],
                &body[..body.len() / 2],
                true,
            );
            return;
        }
        if start > 0 {
            let cr = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
            return respond(
                &mut s,
                "206 Partial Content",
                &[("Content-Range", cr)],
                &body[start..],
                !head,
            );
        }
        return respond(&mut s, "200 OK", &[], &body, !head);
    }

    let (repo_path, rest) = if let Some(r) = path.strip_prefix("/api/models/") {
        (r.to_owned(), "api")
    } else {
        (path.trim_start_matches('/').to_owned(), "resolve")
    };
    let repo = repo_path.split('/').nth(1).unwrap_or("").to_owned();
    if !repo_path.starts_with("org/")
        || !["tiny", "private", "cut", "badsha", "evil", "sharded"].contains(&repo.as_str())
    {
        return not_found(&mut s, "RepoNotFound");
    }
    if repo == "private" && auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return respond(
            &mut s,
            "401 Unauthorized",
            &[],
            b"{\"error\":\"unauthorized\"}",
            !head,
        );
    }
    if rest == "api" {
        // /api/models/org/<repo>/revision/<rev>
        let rev = repo_path.rsplit('/').next().unwrap_or("");
        if !["main", "v1", COMMIT].contains(&rev) {
            return not_found(&mut s, "RevisionNotFound");
        }
        let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
        names.extend(["README.md", "tf_model.h5"]);
        if repo == "evil" || repo == "sharded" {
            names.retain(|n| *n != "model.safetensors");
            names.push("model.safetensors.index.json");
        }
        if repo == "sharded" {
            names.push(SHARD);
        }
        let siblings: Vec<String> = names
            .iter()
            .map(|n| format!("{{\"rfilename\":\"{n}\"}}"))
            .collect();
        let body = format!(
            "{{\"id\":\"org/{repo}\",\"sha\":\"{COMMIT}\",\"siblings\":[{}]}}",
            siblings.join(",")
        );
        return respond(
            &mut s,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
            true,
        );
    }
    // /org/<repo>/resolve/<commit>/<file>
    let segs: Vec<&str> = repo_path.splitn(5, '/').collect();
    let (rev, file) = (
        segs.get(3).copied().unwrap_or(""),
        segs.get(4).copied().unwrap_or(""),
    );
    if rev != COMMIT {
        return not_found(&mut s, "RevisionNotFound");
    }
    if file == "model.safetensors.index.json" && repo == "evil" {
        let body =
            br#"{"metadata":{},"weight_map":{"a":"../../../../escaped.safetensors"}}"#.to_vec();
        let etag = format!("\"{}\"", &sha256_hex(&body)[..40]);
        return respond(
            &mut s,
            "200 OK",
            &[("ETag", etag), ("X-Repo-Commit", COMMIT.into())],
            &body,
            !head,
        );
    }
    if file == "model.safetensors.index.json" && repo == "sharded" {
        let body = format!(r#"{{"metadata":{{}},"weight_map":{{"a":"{SHARD}","b":"{SHARD}"}}}}"#)
            .into_bytes();
        let etag = format!("\"{}\"", &sha256_hex(&body)[..40]);
        return respond(
            &mut s,
            "200 OK",
            &[("ETag", etag), ("X-Repo-Commit", COMMIT.into())],
            &body,
            !head,
        );
    }
    let file = if file == SHARD && repo == "sharded" {
        "model.safetensors"
    } else {
        file
    };
    let Some(body) = files.get(file) else {
        return not_found(&mut s, "EntryNotFound");
    };
    if file.ends_with(".safetensors") {
        let sha = sha256_hex(body);
        return respond(
            &mut s,
            "302 Found",
            &[
                ("Location", format!("{cdn}/cdn/{repo}/{sha}")),
                ("X-Linked-Etag", format!("\"{sha}\"")),
                ("X-Linked-Size", body.len().to_string()),
                ("X-Repo-Commit", COMMIT.into()),
                ("Content-Length", "0".into()),
            ],
            b"",
            false,
        );
    }
    // a regular git file: ETag is the git blob id (40 hex)
    let etag = format!("\"{}\"", &sha256_hex(body)[..40]);
    respond(
        &mut s,
        "200 OK",
        &[("ETag", etag), ("X-Repo-Commit", COMMIT.into())],
        body,
        !head,
    );
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hfi-hub-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn model(hub: &FakeHub, cache: &Path, id: &str, rev: &str, token: Option<&str>) -> HubModel {
    HubModel {
        id: id.into(),
        revision: rev.into(),
        options: hub.options(cache, token),
    }
}

#[test]
fn downloads_into_the_hf_cache_layout_and_serves_from_it() {
    let hub = FakeHub::start();
    let cache = tmp("layout");
    let m = model(&hub, &cache, "org/tiny", "v1", None);
    let snap = m.fetch().unwrap();
    let repo = cache.join("models--org--tiny");
    assert_eq!(snap, repo.join("snapshots").join(COMMIT));
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/v1")).unwrap(),
        COMMIT
    );
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "model.safetensors",
    ] {
        let p = snap.join(f);
        assert!(
            std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{f}"
        );
        let target = std::fs::read_link(&p).unwrap();
        assert!(target.starts_with("../../blobs"), "{}", target.display());
        assert_eq!(
            std::fs::read(&p).unwrap(),
            std::fs::read(fixtures().join("models/feature-extraction-tiny").join(f)).unwrap()
        );
    }
    assert!(
        !snap.join("README.md").exists() && !snap.join("tf_model.h5").exists(),
        "only the needed files"
    );
    let sha = sha256_hex(&std::fs::read(snap.join("model.safetensors")).unwrap());
    assert!(
        repo.join("blobs").join(&sha).is_file(),
        "LFS blobs are named by their sha256"
    );

    // the server loads it through ModelSource::Hub
    let mut opts = LoadOptions::local("/unused", Some("feature-extraction".parse().unwrap()));
    opts.source = ModelSource::Hub(m.clone());
    let p = load_pipeline(&opts).unwrap();
    p.run_json(serde_json::json!({"inputs": "hello"})).unwrap();

    // a second fetch downloads nothing
    let before = hub.log.lock().unwrap().requests.len();
    m.fetch().unwrap();
    let after: Vec<_> = hub.log.lock().unwrap().requests[before..]
        .iter()
        .map(|r| r.1.clone())
        .collect();
    assert!(after.iter().all(|p| p.starts_with("/api/")), "{after:?}");

    // offline: no network at all (the endpoint is a closed port), the cache answers
    let mut offline = m.clone();
    offline.options.offline = true;
    offline.options.endpoint = "http://127.0.0.1:9".into();
    assert_eq!(offline.fetch().unwrap(), snap);
    // and a dead network with a cache falls back to it too
    let mut dead = m;
    dead.options.endpoint = "http://127.0.0.1:9".into();
    dead.options.retries = 1;
    assert_eq!(dead.fetch().unwrap(), snap);
    let mut missing = model(&hub, &tmp("offline-empty"), "org/tiny", "main", None);
    missing.options.offline = true;
    assert!(missing
        .fetch()
        .unwrap_err()
        .to_string()
        .contains("HF_HUB_OFFLINE"));
}

#[test]
fn tokens_are_required_sent_to_the_hub_only() {
    let hub = FakeHub::start();
    let cache = tmp("token");
    let e = model(&hub, &cache, "org/private", "main", None)
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(e.contains("HF_API_TOKEN") && e.contains("401"), "{e}");
    let e = model(&hub, &cache, "org/private", "main", Some("hf_wrong"))
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused") && !e.contains("hf_wrong"), "{e}");
    model(&hub, &cache, "org/private", "main", Some(TOKEN))
        .fetch()
        .unwrap();
    let log = hub.log.lock().unwrap();
    for (_, path, auth, _) in &log.requests {
        if path.starts_with("/cdn/") {
            assert_eq!(auth, &None, "the token must not go to the CDN");
        }
    }
}

#[test]
fn unknown_repos_and_revisions_are_clear_errors() {
    let hub = FakeHub::start();
    let cache = tmp("notfound");
    let e = model(&hub, &cache, "org/nope", "main", None)
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(e.contains("not found") && e.contains("HF_MODEL_ID"), "{e}");
    let e = model(&hub, &cache, "org/tiny", "no-such-branch", None)
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(e.contains("revision not found"), "{e}");
    let e = model(&hub, &cache, "../etc", "main", None)
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(e.contains("repository id"), "{e}");
}

#[test]
fn an_interrupted_download_resumes() {
    let hub = FakeHub::start();
    let cache = tmp("resume");
    let snap = model(&hub, &cache, "org/cut", "main", None)
        .fetch()
        .unwrap();
    let got = std::fs::read(snap.join("model.safetensors")).unwrap();
    let want =
        std::fs::read(fixtures().join("models/feature-extraction-tiny/model.safetensors")).unwrap();
    assert!(got == want, "the resumed file differs");
    let log = hub.log.lock().unwrap();
    assert!(log.cut_done);
    assert!(
        log.requests
            .iter()
            .any(|(_, p, _, r)| p.starts_with("/cdn/cut/")
                && r.as_deref().is_some_and(|r| r.starts_with("bytes="))),
        "no Range request: {:?}",
        log.requests
    );
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("models--org--cut/blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "incomplete"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_corrupt_file_is_rejected_and_removed() {
    let hub = FakeHub::start();
    let cache = tmp("badsha");
    let e = model(&hub, &cache, "org/badsha", "main", None)
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(e.contains("sha256"), "{e}");
    let blobs: Vec<_> = std::fs::read_dir(cache.join("models--org--badsha/blobs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        blobs
            .iter()
            .all(|n| !n.to_string_lossy().ends_with(".incomplete") && n.len() != 64),
        "{blobs:?}"
    );
}

#[test]
fn a_path_traversal_file_name_is_refused() {
    let hub = FakeHub::start();
    let cache = tmp("evil").join("cache");
    let e = model(&hub, &cache, "org/evil", "main", None)
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(e.contains("unsafe file name"), "{e}");
    assert!(!cache.parent().unwrap().join("escaped.safetensors").exists());
    let requested: Vec<_> = hub
        .log
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|r| r.1.clone())
        .collect();
    assert!(
        requested.iter().all(|p| !p.contains("escaped")),
        "{requested:?}"
    );
}

#[test]
fn a_sharded_checkpoint_downloads_its_index_and_shards() {
    let hub = FakeHub::start();
    let cache = tmp("sharded");
    let m = model(&hub, &cache, "org/sharded", "main", None);
    let snap = m.fetch().unwrap();
    assert!(snap.join("model.safetensors.index.json").is_file());
    assert!(snap.join(SHARD).is_file());
    assert!(!snap.join("model.safetensors").exists());
    let mut opts = LoadOptions::local("/unused", Some("feature-extraction".parse().unwrap()));
    opts.source = ModelSource::Hub(m);
    load_pipeline(&opts)
        .unwrap()
        .run_json(serde_json::json!({"inputs": "sharded"}))
        .unwrap();
}
