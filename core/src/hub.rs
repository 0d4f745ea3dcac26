//! Models from the Hugging Face Hub (`HF_MODEL_ID`, `HF_MODEL_REVISION`, `HF_API_TOKEN`), over
//! `ureq`, into the standard Hugging Face cache layout, so that a cache filled by Python's
//! `huggingface_hub` is reused and the other way round:
//!
//! ```text
//! $HF_HUB_CACHE/models--org--name/blobs/<etag>            file contents
//!                                /snapshots/<commit>/<file> → ../../blobs/<etag>
//!                                /refs/<revision>           the commit the revision points at
//! ```
//!
//! Only what the server needs is fetched: `config.json`, the tokenizer files, and one weight
//! format (safetensors when the repository has them, sharded or not, else `pytorch_model.bin`).
//! Downloads go to `<blob>.incomplete`, resume from it with a `Range` request after an
//! interruption, are checked (size, and sha256 for LFS files) and only then renamed into place.
//! The protocol facts (endpoints and headers) are those of `huggingface_hub`'s `file_download.py`.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::ToolkitError;

/// A secret that never shows in `Debug` output, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where and how to reach the Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// `HF_ENDPOINT` (default `https://huggingface.co`).
    pub endpoint: String,
    /// `HF_API_TOKEN` / `HF_TOKEN`, sent as a bearer token to the endpoint only.
    pub token: Option<Secret>,
    /// `HF_HUB_CACHE` (default `$HF_HOME/hub`, `HF_HOME` default `~/.cache/huggingface`).
    pub cache_dir: PathBuf,
    /// `HF_HUB_OFFLINE=1`: use only the cache.
    pub offline: bool,
    /// Attempts per file (network errors and 5xx), with exponential backoff.
    pub retries: u32,
}

impl HubOptions {
    /// The default endpoint.
    pub const DEFAULT_ENDPOINT: &'static str = "https://huggingface.co";

    /// The cache directory from `HF_HUB_CACHE` / `HF_HOME` values (as `huggingface_hub` does).
    pub fn default_cache_dir(hf_hub_cache: Option<PathBuf>, hf_home: Option<PathBuf>) -> PathBuf {
        if let Some(c) = hf_hub_cache {
            return c;
        }
        let home = hf_home.unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from("/tmp"))
                        .join(".cache")
                });
            base.join("huggingface")
        });
        home.join("hub")
    }
}

/// A model repository at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubModel {
    /// `org/name`.
    pub id: String,
    /// Branch, tag or commit (`HF_MODEL_REVISION`, default `main`).
    pub revision: String,
    /// How to reach the Hub.
    pub options: HubOptions,
}

fn hub_error(message: String) -> ToolkitError {
    ToolkitError::model_load(message)
}

fn valid_repo_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// A relative path inside a repository: no `..`, no absolute paths, no backslashes.
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('\\') || name.contains('\0') {
        return None;
    }
    let p = Path::new(name);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| p.to_path_buf())
}

fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit())
}

/// `"abc"`, `W/"abc"` → `abc`.
fn clean_etag(v: &str) -> String {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Files the server may need, besides the weights.
const SUPPORT_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "preprocessor_config.json",
];

impl HubModel {
    fn repo_dir(&self) -> PathBuf {
        self.options
            .cache_dir
            .join(format!("models--{}", self.id.replace('/', "--")))
    }

    /// Makes sure the model's files are in the cache and returns its snapshot directory.
    pub fn fetch(&self) -> Result<PathBuf, ToolkitError> {
        if !valid_repo_id(&self.id) {
            return Err(hub_error(format!(
                "HF_MODEL_ID {:?} is not a repository id like \"org/name\"",
                self.id
            )));
        }
        if self.revision.is_empty() || safe_relative(&self.revision).is_none() {
            return Err(hub_error(format!(
                "HF_MODEL_REVISION {:?} is not a valid revision",
                self.revision
            )));
        }
        if self.options.offline {
            return self.cached().ok_or_else(|| {
                hub_error(format!(
                    "HF_HUB_OFFLINE is set and {}@{} is not in the cache {}; download it once online (serve --download-only) or unset HF_HUB_OFFLINE",
                    self.id,
                    self.revision,
                    self.options.cache_dir.display()
                ))
            });
        }
        let client = Client::new(&self.options);
        let info = match client.model_info(&self.id, &self.revision) {
            Ok(info) => info,
            Err(Fetch::Network(why)) => {
                // like huggingface_hub: an unreachable Hub falls back to the cache
                return match self.cached() {
                    Some(dir) => {
                        tracing::warn!(model = %self.id, error = %why, "the Hub is unreachable; using the cached snapshot");
                        Ok(dir)
                    }
                    None => Err(hub_error(format!(
                        "cannot reach the Hub at {} ({why}) and {}@{} is not in the cache {}",
                        self.options.endpoint,
                        self.id,
                        self.revision,
                        self.options.cache_dir.display()
                    ))),
                };
            }
            Err(Fetch::Refused(e)) => return Err(e),
        };
        let files = select_files(&info.siblings)
            .map_err(|e| hub_error(format!("{}@{}: {e}", self.id, self.revision)))?;
        let repo = self.repo_dir();
        let snapshot = repo.join("snapshots").join(&info.sha);
        let mut weights = files.clone();
        // a sharded safetensors checkpoint: fetch the index first, then its shards
        if files.iter().any(|f| f == "model.safetensors.index.json") {
            let index = self.download(&client, &info.sha, "model.safetensors.index.json")?;
            for shard in shard_names(&index)? {
                if !weights.contains(&shard) {
                    weights.push(shard);
                }
            }
        }
        for f in &weights {
            self.download(&client, &info.sha, f)?;
        }
        if self.revision != info.sha {
            let r = repo.join("refs").join(&self.revision);
            if let Some(parent) = r.parent() {
                fs::create_dir_all(parent).map_err(|e| io_err(&r, e))?;
            }
            write_atomic(&r, info.sha.as_bytes())?;
        }
        tracing::info!(model = %self.id, revision = %self.revision, commit = %info.sha, dir = %snapshot.display(), "model files ready");
        Ok(snapshot)
    }

    /// The cached snapshot of the revision, if complete enough to load.
    fn cached(&self) -> Option<PathBuf> {
        let repo = self.repo_dir();
        let commit = if is_commit(&self.revision) {
            self.revision.clone()
        } else {
            fs::read_to_string(repo.join("refs").join(&self.revision))
                .ok()?
                .trim()
                .to_owned()
        };
        if !is_commit(&commit) {
            return None;
        }
        let snap = repo.join("snapshots").join(commit);
        snap.join("config.json").is_file().then_some(snap)
    }

    /// Downloads one file of the commit into the cache (if not there yet); returns its snapshot
    /// path.
    fn download(&self, client: &Client, commit: &str, name: &str) -> Result<PathBuf, ToolkitError> {
        let rel = safe_relative(name).ok_or_else(|| {
            hub_error(format!(
                "the Hub listed an unsafe file name {name:?}; refusing it"
            ))
        })?;
        let repo = self.repo_dir();
        let link = repo.join("snapshots").join(commit).join(&rel);
        if link.is_file() {
            return Ok(link);
        }
        let meta = client.head(&self.id, commit, name)?;
        if !meta
            .etag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            || meta.etag.is_empty()
        {
            return Err(hub_error(format!(
                "the Hub sent an invalid ETag for {name}"
            )));
        }
        let blob = repo.join("blobs").join(&meta.etag);
        if !blob.is_file() {
            fs::create_dir_all(repo.join("blobs")).map_err(|e| io_err(&blob, e))?;
            let mut attempt = 0;
            loop {
                attempt += 1;
                match client.fetch_to(&meta, &blob) {
                    Ok(()) => break,
                    Err(Fetch::Network(why)) if attempt < self.options.retries.max(1) => {
                        let wait = Duration::from_millis(250 << attempt.min(6));
                        tracing::warn!(file = name, attempt, error = %why, "download interrupted; resuming");
                        std::thread::sleep(wait);
                    }
                    Err(Fetch::Network(why)) => {
                        return Err(hub_error(format!(
                            "downloading {name} failed after {attempt} attempts: {why}"
                        )))
                    }
                    Err(Fetch::Refused(e)) => return Err(e),
                }
            }
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        // snapshots/<commit>/<a/b> → ../../(../)blobs/<etag>
        let depth = rel.components().count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(&meta.etag);
        let _ = fs::remove_file(&link);
        #[cfg(unix)]
        let linked = std::os::unix::fs::symlink(&target, &link);
        #[cfg(not(unix))]
        let linked: std::io::Result<()> = Err(std::io::Error::other("no symlinks"));
        if linked.is_err() {
            fs::copy(&blob, &link).map_err(|e| io_err(&link, e))?;
        }
        Ok(link)
    }
}

fn io_err(path: &Path, e: std::io::Error) -> ToolkitError {
    ToolkitError::model_load_with(format!("cannot write {}", path.display()), e)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ToolkitError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data).map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

fn shard_names(index: &Path) -> Result<Vec<String>, ToolkitError> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = fs::read_to_string(index).map_err(|e| io_err(index, e))?;
    let idx: Index = serde_json::from_str(&text)
        .map_err(|e| ToolkitError::model_load_with(format!("invalid {}", index.display()), e))?;
    let mut names: Vec<String> = idx.weight_map.into_values().collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Picks the files to download from the repository listing.
fn select_files(siblings: &[String]) -> Result<Vec<String>, String> {
    let has = |f: &str| siblings.iter().any(|s| s == f);
    if !has("config.json") {
        return Err("the repository has no config.json".into());
    }
    let mut files: Vec<String> = SUPPORT_FILES
        .iter()
        .filter(|f| has(f))
        .map(|f| (*f).to_owned())
        .collect();
    // a slow SentencePiece tokenizer: SiglipTokenizer has no fast class, so transformers reads
    // spiece.model even beside a tokenizer.json
    if has("spiece.model") {
        files.push("spiece.model".into());
    }
    if has("model.safetensors") {
        files.push("model.safetensors".into());
    } else if has("model.safetensors.index.json") {
        files.push("model.safetensors.index.json".into());
    } else if has("pytorch_model.bin") {
        files.push("pytorch_model.bin".into());
    } else {
        return Err("no supported weight file: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin".into());
    }
    Ok(files)
}

/// Why a request failed: worth retrying (network) or final (a clear error).
enum Fetch {
    Network(String),
    Refused(ToolkitError),
}

struct ModelInfo {
    sha: String,
    siblings: Vec<String>,
}

struct FileMeta {
    etag: String,
    size: Option<u64>,
    /// Where the bytes are (the redirect target for LFS files).
    url: String,
    name: String,
}

struct Client {
    endpoint: String,
    token: Option<Secret>,
    no_redirects: ureq::Agent,
    redirects: ureq::Agent,
}

impl Client {
    fn new(opts: &HubOptions) -> Self {
        let build = |redirects: u32| {
            ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_redirects(redirects)
                    .timeout_connect(Some(Duration::from_secs(10)))
                    .timeout_recv_response(Some(Duration::from_secs(30)))
                    .timeout_recv_body(Some(Duration::from_secs(60)))
                    .user_agent("hf-inference-rs")
                    .build(),
            )
        };
        Self {
            endpoint: opts.endpoint.trim_end_matches('/').to_owned(),
            token: opts.token.clone(),
            no_redirects: build(0),
            redirects: build(10),
        }
    }

    fn auth(&self, url: &str) -> Option<String> {
        // the token goes to the Hub only, never to a CDN it redirects to
        let t = self.token.as_ref()?;
        url.starts_with(&format!("{}/", self.endpoint))
            .then(|| format!("Bearer {}", t.expose()))
    }

    fn status_error(&self, status: u16, what: &str, headers: &http::HeaderMap) -> Fetch {
        let code = headers
            .get("x-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match status {
            401 | 403 => Fetch::Refused(hub_error(format!(
                "the Hub refused access to {what} ({status}); for a private or gated model set HF_API_TOKEN (or HF_TOKEN) to a token that can read it{}",
                if self.token.is_some() { " (the token given was refused)" } else { "" }
            ))),
            404 if code == "RevisionNotFound" => {
                Fetch::Refused(hub_error(format!("revision not found: {what}; check HF_MODEL_REVISION")))
            }
            404 => Fetch::Refused(hub_error(format!(
                "not found on the Hub: {what}; check HF_MODEL_ID and HF_MODEL_REVISION (a private repository also answers 404 without HF_API_TOKEN)"
            ))),
            s if s >= 500 || s == 429 => Fetch::Network(format!("the Hub answered {s} for {what}")),
            s => Fetch::Refused(hub_error(format!("the Hub answered {s} for {what}"))),
        }
    }

    fn model_info(&self, id: &str, revision: &str) -> Result<ModelInfo, Fetch> {
        let url = format!(
            "{}/api/models/{}/revision/{}",
            self.endpoint,
            id,
            encode_segment(revision)
        );
        let mut req = self.redirects.get(&url);
        if let Some(a) = self.auth(&url) {
            req = req.header("Authorization", a);
        }
        let resp = req.call().map_err(|e| Fetch::Network(e.to_string()))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(self.status_error(status, &format!("{id}@{revision}"), resp.headers()));
        }
        #[derive(serde::Deserialize)]
        struct Sibling {
            rfilename: String,
        }
        #[derive(serde::Deserialize)]
        struct Info {
            sha: String,
            #[serde(default)]
            siblings: Vec<Sibling>,
        }
        let text = resp
            .into_body()
            .read_to_string()
            .map_err(|e| Fetch::Network(e.to_string()))?;
        let info: Info = serde_json::from_str(&text).map_err(|e| {
            Fetch::Refused(hub_error(format!(
                "unexpected answer from the Hub for {id}: {e}"
            )))
        })?;
        if !is_commit(&info.sha) {
            return Err(Fetch::Refused(hub_error(format!(
                "the Hub sent an invalid commit id for {id}"
            ))));
        }
        Ok(ModelInfo {
            sha: info.sha,
            siblings: info.siblings.into_iter().map(|s| s.rfilename).collect(),
        })
    }

    fn head(&self, id: &str, commit: &str, name: &str) -> Result<FileMeta, ToolkitError> {
        let path: Vec<String> = name.split('/').map(encode_segment).collect();
        let url = format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            id,
            commit,
            path.join("/")
        );
        let mut req = self.no_redirects.head(&url);
        if let Some(a) = self.auth(&url) {
            req = req.header("Authorization", a);
        }
        let resp = req
            .call()
            .map_err(|e| hub_error(format!("cannot reach the Hub for {name}: {e}")))?;
        let status = resp.status().as_u16();
        let h = resp.headers();
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if !(200..400).contains(&status) {
            return Err(match self.status_error(status, name, h) {
                Fetch::Refused(e) => e,
                Fetch::Network(why) => hub_error(why),
            });
        }
        let etag = get("x-linked-etag")
            .or_else(|| get("etag"))
            .map(|e| clean_etag(&e))
            .unwrap_or_default();
        let size = get("x-linked-size")
            .or_else(|| get("content-length"))
            .and_then(|s| s.parse().ok());
        let url = match (status, get("location")) {
            (300..=399, Some(loc)) if loc.starts_with("http://") || loc.starts_with("https://") => {
                loc
            }
            (300..=399, Some(loc)) if loc.starts_with('/') => format!("{}{loc}", self.endpoint),
            _ => url,
        };
        Ok(FileMeta {
            etag,
            size,
            url,
            name: name.to_owned(),
        })
    }

    /// Downloads (or resumes) into `<blob>.incomplete`, verifies, renames to `blob`.
    fn fetch_to(&self, meta: &FileMeta, blob: &Path) -> Result<(), Fetch> {
        let part = blob.with_extension("incomplete");
        let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let mut req = self.redirects.get(&meta.url);
        if let Some(a) = self.auth(&meta.url) {
            req = req.header("Authorization", a);
        }
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = req.call().map_err(|e| Fetch::Network(e.to_string()))?;
        let status = resp.status().as_u16();
        let append = match status {
            206 => true,
            200 => false,
            416 => true, // already complete
            s => return Err(self.status_error(s, &meta.name, resp.headers())),
        };
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(&part)
            .map_err(|e| Fetch::Refused(io_err(&part, e)))?;
        if status != 416 {
            let mut reader = resp.into_body().into_reader();
            let mut buf = vec![0u8; 1 << 16];
            let mut done = if append { have } else { 0 };
            let mut next_log = done + (64 << 20);
            loop {
                let n = reader
                    .read(&mut buf)
                    .map_err(|e| Fetch::Network(e.to_string()))?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n])
                    .map_err(|e| Fetch::Refused(io_err(&part, e)))?;
                done += n as u64;
                if done >= next_log {
                    tracing::info!(file = %meta.name, mib = done >> 20, total_mib = meta.size.map(|s| s >> 20), "downloading");
                    next_log += 64 << 20;
                }
            }
        }
        file.flush().map_err(|e| Fetch::Refused(io_err(&part, e)))?;
        drop(file);
        let got = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if let Some(size) = meta.size {
            if got < size {
                return Err(Fetch::Network(format!(
                    "{} ended after {got} of {size} bytes",
                    meta.name
                )));
            }
            if got > size {
                let _ = fs::remove_file(&part);
                return Err(Fetch::Refused(hub_error(format!(
                    "{} is larger than the Hub announced; removed it",
                    meta.name
                ))));
            }
        }
        // LFS files are named by their sha256: check it
        if meta.etag.len() == 64 && meta.etag.chars().all(|c| c.is_ascii_hexdigit()) {
            let digest = sha256_file(&part).map_err(|e| Fetch::Refused(io_err(&part, e)))?;
            if !digest.eq_ignore_ascii_case(&meta.etag) {
                let _ = fs::remove_file(&part);
                return Err(Fetch::Refused(hub_error(format!(
                    "{} does not match its sha256 (expected {}, got {digest}); the corrupt download was removed",
                    meta.name, meta.etag
                ))));
            }
        }
        fs::rename(&part, blob).map_err(|e| Fetch::Refused(io_err(blob, e)))?;
        tracing::info!(file = %meta.name, bytes = got, "downloaded");
        Ok(())
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_repo_id("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(valid_repo_id("gpt2"));
        for bad in ["", "a/b/c", "../x", "a/..", "a b/c", "/abs"] {
            assert!(!valid_repo_id(bad), "{bad}");
        }
        assert!(safe_relative("config.json").is_some());
        assert!(safe_relative("1_Pooling/config.json").is_some());
        for bad in ["../../etc/passwd", "/etc/passwd", "a/../../b", "a\\b", ""] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn picks_one_weight_format() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let f = select_files(&s(&[
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "pytorch_model.bin",
            "tf_model.h5",
            "README.md",
        ]))
        .unwrap();
        assert_eq!(f, ["config.json", "tokenizer.json", "model.safetensors"]);
        let f = select_files(&s(&["config.json", "pytorch_model.bin"])).unwrap();
        assert_eq!(f, ["config.json", "pytorch_model.bin"]);
        // spiece.model for a slow-only SentencePiece tokenizer (SigLIP)
        let f = select_files(&s(&[
            "config.json",
            "spiece.model",
            "tokenizer_config.json",
            "model.safetensors",
        ]))
        .unwrap();
        assert_eq!(
            f,
            [
                "config.json",
                "tokenizer_config.json",
                "spiece.model",
                "model.safetensors"
            ]
        );
        assert!(select_files(&s(&["config.json", "tf_model.h5"]))
            .unwrap_err()
            .contains("weight"));
        assert!(select_files(&s(&["model.safetensors"]))
            .unwrap_err()
            .contains("config.json"));
    }

    #[test]
    fn secrets_do_not_print() {
        let o = HubOptions {
            endpoint: "x".into(),
            token: Some(Secret::new("hf_secret")),
            cache_dir: "/c".into(),
            offline: false,
            retries: 1,
        };
        assert!(!format!("{o:?}").contains("hf_secret"));
        assert_eq!(clean_etag("W/\"abc\""), "abc");
        assert_eq!(encode_segment("refs/pr/1"), "refs%2Fpr%2F1");
    }
}
