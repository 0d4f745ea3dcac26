//! Shared helpers of the cross-crate tests: the golden records recorded from the Python toolkit,
//! the parity rules they are judged by (the same as `../shared/reference/compare_golden.py
//! --parity`), and an in-process router over the fixture models.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

/// The fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One recorded request/response pair (`record.py`'s JSONL line).
#[derive(Debug, Clone, Deserialize)]
pub struct Golden {
    /// The golden file's name.
    pub task: String,
    /// The HF_TASK the toolkit ran.
    pub hf_task: String,
    /// The case name, e.g. `bad/inputs-int`.
    pub case: String,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// `Content-Type` sent, if any.
    pub request_content_type: Option<String>,
    /// The body (see `request_body_encoding`).
    pub request_body: Option<String>,
    /// `utf-8`, `base64` or `elided`.
    pub request_body_encoding: Option<String>,
    /// `Accept` sent, if any.
    pub accept: Option<String>,
    /// The toolkit's status.
    pub status: u16,
    /// The toolkit's `Content-Type`.
    pub response_content_type: Option<String>,
    /// The toolkit's body.
    pub response_body: Option<String>,
    /// `utf-8` or `base64`.
    pub response_body_encoding: Option<String>,
}

impl Golden {
    /// The request body bytes (the elided 7 MB probe is rebuilt as `replay.py` does).
    pub fn request_bytes(&self) -> Vec<u8> {
        let body = self.request_body.clone().unwrap_or_default();
        match self.request_body_encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default(),
            Some("elided") => {
                let mut s = String::with_capacity(7_000_020);
                s.push_str("{\"inputs\": \"");
                for _ in 0..3_500_000 {
                    s.push_str("a ");
                }
                s.push_str("\"}");
                s.into_bytes()
            }
            _ => body.into_bytes(),
        }
    }

    /// The JSON document a `POST|PUT /invocations` request hands its pipeline: its JSON or CSV
    /// body decoded by the server's own codecs. `None` for other requests (other routes, other
    /// content types, JSON Lines, bodies the codecs refuse).
    pub fn request_document(&self) -> Option<Value> {
        use hf_inference_core::codec::{self, RequestFormat};
        if self.path != "/invocations" || !matches!(self.method.as_str(), "POST" | "PUT") {
            return None;
        }
        let format = codec::request_format(self.request_content_type.as_deref()).ok()?;
        if !matches!(format, RequestFormat::Json | RequestFormat::Csv) {
            return None;
        }
        codec::decode(format, &self.request_bytes()).ok()
    }

    /// The golden response body bytes.
    pub fn response_bytes(&self) -> Vec<u8> {
        let body = self.response_body.clone().unwrap_or_default();
        match self.response_body_encoding.as_deref() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default(),
            _ => body.into_bytes(),
        }
    }
}

/// `fixtures/golden/<name>.jsonl`.
pub fn golden_path(name: &str) -> PathBuf {
    fixtures().join("golden").join(format!("{name}.jsonl"))
}

/// Reads `fixtures/golden/<name>.jsonl`.
pub fn goldens(name: &str) -> Vec<Golden> {
    let path = golden_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// The verdict on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Same answer within tolerance.
    Pass,
    /// We answer 2xx where the toolkit failed with a 4xx.
    Improved,
    /// We refuse with a 4xx what the toolkit wrongly accepted on a `bad/` or `quirk/` case.
    Stricter,
    /// A difference, with the reason.
    Fail(String),
}

/// Absolute tolerance for scores.
pub const SCORE_TOL: f64 = 1e-4;
/// Minimum cosine similarity for embedding rows.
pub const COS_MIN: f64 = 0.9999;

fn floats(v: &Value) -> Option<Vec<f64>> {
    let a = v.as_array()?;
    if a.len() < 8 {
        return None;
    }
    // integers (token ids) are compared exactly, never as a vector
    a.iter()
        .map(|x| if x.is_f64() { x.as_f64() } else { None })
        .collect()
}

/// Compares a golden JSON value with ours: same structure, floats within [`SCORE_TOL`], rows of
/// eight or more floats by cosine.
pub fn parity_close(a: &Value, b: &Value, path: &str) -> Option<String> {
    if let Some(fa) = floats(a) {
        let Some(fb) = floats(b).filter(|fb| fb.len() == fa.len()) else {
            return Some(format!("{path}: vector length differs"));
        };
        let na = fa.iter().map(|x| x * x).sum::<f64>().sqrt();
        let nb = fb.iter().map(|x| x * x).sum::<f64>().sqrt();
        if na == 0.0 || nb == 0.0 {
            let ok = fa.iter().zip(&fb).all(|(x, y)| (x - y).abs() <= SCORE_TOL);
            return (!ok).then(|| format!("{path}: zero vector mismatch"));
        }
        let cos = fa.iter().zip(&fb).map(|(x, y)| x * y).sum::<f64>() / (na * nb);
        return (cos < COS_MIN).then(|| format!("{path}: cosine {cos:.6} < {COS_MIN}"));
    }
    match (a, b) {
        (Value::String(x), Value::String(y))
            if x.starts_with(PNG_B64) && y.starts_with(PNG_B64) =>
        {
            png_close(x, y).map(|e| format!("{path}: {e}"))
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            ((x - y).abs() > SCORE_TOL).then(|| format!("{path}: {x} != {y}"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: list of {} vs {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| parity_close(p, q, &format!("{path}[{i}]")))
        }
        (Value::Object(x), Value::Object(y)) => {
            let (mut kx, mut ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            kx.sort();
            ky.sort();
            if kx != ky {
                return Some(format!("{path}: keys {kx:?} vs {ky:?}"));
            }
            x.iter()
                .find_map(|(k, v)| parity_close(v, &y[k], &format!("{path}.{k}")))
        }
        _ => (a != b).then(|| format!("{path}: {a} != {b}")),
    }
}

/// The base64 of the PNG signature: segmentation masks are base64 PNG strings.
pub const PNG_B64: &str = "iVBORw0KGgo";
/// The share of mask pixels that must agree (a boundary pixel may flip on a near-tie).
pub const PNG_MIN_AGREE: f64 = 0.995;

fn decode_png(b64: &str) -> Result<image::DynamicImage, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("not base64: {e}"))?;
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| format!("not a PNG: {e}"))
}

/// Compares two base64 PNG masks as `compare_golden.py` does: same size and mode, and at least
/// [`PNG_MIN_AGREE`] of the pixels equal, whatever the encoders' compression choices.
pub fn png_close(golden: &str, ours: &str) -> Option<String> {
    let (a, b) = match (decode_png(golden), decode_png(ours)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => return Some(format!("golden mask: {e}")),
        (_, Err(e)) => return Some(format!("our mask: {e}")),
    };
    if (a.width(), a.height(), a.color()) != (b.width(), b.height(), b.color()) {
        return Some(format!(
            "mask {}x{} {:?} vs {}x{} {:?}",
            a.width(),
            a.height(),
            a.color(),
            b.width(),
            b.height(),
            b.color()
        ));
    }
    let (pa, pb) = (a.into_bytes(), b.into_bytes());
    let same = pa.iter().zip(&pb).filter(|(x, y)| x == y).count();
    let agree = same as f64 / pa.len().max(1) as f64;
    (agree < PNG_MIN_AGREE).then(|| format!("masks agree on {:.2}% of pixels", agree * 100.0))
}

/// Whether a CSV cell of the toolkit's (a PIL image's repr, which it writes into CSV for a
/// segmentation mask) and ours (the mask as a base64 PNG) describe the same image size and mode.
fn pil_repr_matches_png(golden: &str, ours: &str) -> bool {
    let Some(rest) = golden.strip_prefix("<PIL.Image.Image image mode=") else {
        return false;
    };
    let mut words = rest.split([' ', '=']);
    let (Some(mode), Some("size"), Some(size)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    decode_png(ours).is_ok_and(|img| {
        let our_mode = match img.color() {
            image::ColorType::L8 => "L",
            image::ColorType::Rgb8 => "RGB",
            _ => "?",
        };
        our_mode == mode && size == format!("{}x{}", img.width(), img.height())
    })
}

fn mask(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "modelUrl" || k == "id" || k == "startTime" {
                    *x = Value::String("<volatile>".into());
                } else {
                    mask(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

/// A `.npy` body: its dtype (`descr`) and, for the numeric dtypes `compare_golden.py` reads,
/// its shape and values (floats as JSON floats, integers as JSON integers, booleans as booleans).
pub struct Npy {
    /// The dtype, e.g. `<f8`, or `|O` for a pickled object array.
    pub descr: String,
    /// Shape and values; `None` for a dtype that is not numeric or a Fortran-order array.
    pub data: Option<(Vec<usize>, Vec<Value>)>,
}

/// Parses a `.npy` body (format version 1 or 2) as `compare_golden.py`'s `npy_parse` does.
pub fn parse_npy(bytes: &[u8]) -> Option<Npy> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return None;
    }
    let (hlen, start) = if bytes[6] == 1 {
        (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10)
    } else {
        let b = bytes.get(8..12)?;
        (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen)?).ok()?;
    let field = |key: &str| -> Option<&str> {
        let rest = header.split(&format!("'{key}':")).nth(1)?.trim_start();
        Some(rest)
    };
    let descr = field("descr")?
        .strip_prefix('\'')?
        .split('\'')
        .next()?
        .to_owned();
    let fortran = field("fortran_order").is_some_and(|f| f.starts_with("True"));
    let shape: Vec<usize> = field("shape")?
        .strip_prefix('(')?
        .split(')')
        .next()?
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let size = match descr.as_str() {
        "<f8" | "<i8" | "<u8" => 8,
        "<f4" | "<i4" | "<u4" => 4,
        "|b1" => 1,
        _ => 0,
    };
    if size == 0 || fortran {
        return Some(Npy { descr, data: None });
    }
    let n: usize = shape.iter().product();
    let body = bytes.get(start + hlen..)?;
    if body.len() < n * size {
        return None;
    }
    let values = body[..n * size]
        .chunks_exact(size)
        .map(|c| {
            let mut b8 = [0u8; 8];
            b8[..size].copy_from_slice(c);
            let mut b4 = [0u8; 4];
            b4.copy_from_slice(&b8[..4]);
            match descr.as_str() {
                "<f8" => Value::from(f64::from_le_bytes(b8)),
                "<f4" => Value::from(f64::from(f32::from_le_bytes(b4))),
                "<i8" => Value::from(i64::from_le_bytes(b8)),
                "<i4" => Value::from(i32::from_le_bytes(b4)),
                "<u8" => Value::from(u64::from_le_bytes(b8)),
                "<u4" => Value::from(u32::from_le_bytes(b4)),
                _ => Value::Bool(c[0] != 0),
            }
        })
        .collect();
    Some(Npy {
        descr,
        data: Some((shape, values)),
    })
}

/// Compares two `.npy` bodies as `compare_golden.py`'s `npy_close`: same shape, rows of eight or
/// more by cosine, shorter ones value by value (any float width).
fn npy_close(golden: &[u8], ours: &[u8]) -> Option<String> {
    let Some((gsh, gv)) = parse_npy(golden).and_then(|n| n.data) else {
        return Some("golden .npy unreadable or not numeric".into());
    };
    let Some((osh, ov)) = parse_npy(ours).and_then(|n| n.data) else {
        return Some("not a numeric .npy".into());
    };
    if gsh != osh {
        return Some(format!(".npy shape {gsh:?} vs {osh:?}"));
    }
    let last = gsh.last().copied().unwrap_or(1);
    if last >= 8 {
        gv.chunks(last)
            .zip(ov.chunks(last))
            .enumerate()
            .find_map(|(i, (a, b))| {
                parity_close(&Value::from(a.to_vec()), &Value::from(b.to_vec()), "")
                    .map(|e| format!(".npy row {i}{e}"))
            })
    } else {
        parity_close(&Value::from(gv), &Value::from(ov), ".npy")
    }
}

/// Compares two CSV bodies as `compare_golden.py`'s `csv_close`: the same rows of the same
/// cells (RFC 4180 quoting), numbers within [`SCORE_TOL`]. One refinement: where the toolkit
/// wrote a PIL image's repr into a cell (a segmentation mask under `Accept: text/csv`) and we
/// write the mask as a base64 PNG, the cell agrees when the size and mode agree.
fn csv_close(golden: &str, ours: &str) -> Option<String> {
    let rows = |s: &str| -> Result<Vec<Vec<String>>, String> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(s.as_bytes())
            .records()
            .map(|r| {
                r.map(|r| r.iter().map(str::to_owned).collect())
                    .map_err(|e| e.to_string())
            })
            .collect()
    };
    let (ra, rb) = match (rows(golden), rows(ours)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) => return Some(format!("golden CSV unreadable: {e}")),
        (_, Err(e)) => return Some(format!("our CSV unreadable: {e}")),
    };
    if ra.len() != rb.len() {
        return Some(format!("CSV rows {} vs {}", ra.len(), rb.len()));
    }
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        if x.len() != y.len() {
            return Some(format!("CSV row {i}: {} vs {} cells", x.len(), y.len()));
        }
        for (u, v) in x.iter().zip(y) {
            let numeric = matches!((u.trim().parse::<f64>(), v.trim().parse::<f64>()),
                (Ok(p), Ok(q)) if (p - q).abs() <= SCORE_TOL);
            if u != v && !numeric && !pil_repr_matches_png(u, v) {
                return Some(format!("CSV row {i}: {u:?} vs {v:?}"));
            }
        }
    }
    None
}

/// The media type of a `Content-Type` value: lower case, parameters dropped.
pub fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|m| !m.is_empty())
}

/// The keys of a JSON object, of each object in a list, recursively: the shape of a `/models`
/// description without its values (MMS describes its Python workers; we describe ours).
fn key_set(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                out.push(p.clone());
                key_set(x, &p, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| key_set(x, &format!("{path}[]"), out)),
        _ => {}
    }
}

/// Judges our answer against a golden record with `compare_golden.py --parity`'s rules and
/// verdicts (`parity_record`), plus three checks of our own:
/// - the response's media type equals the toolkit's wherever the statuses agree in class;
/// - an "improved" answer (2xx where the toolkit answered 4xx) to `/invocations` must be a body
///   the task's response schema accepts;
/// - `GET /models` and `/models/model` are compared by status and key set (their values
///   describe MMS's Python workers, or ours).
pub fn judge(g: &Golden, status: u16, content_type: Option<&str>, body: &[u8]) -> Verdict {
    let verdict = judge_body(g, status, content_type, body);
    if !matches!(verdict, Verdict::Pass | Verdict::Improved) {
        return verdict;
    }
    let (gm, om) = (
        media_type(g.response_content_type.as_deref()),
        media_type(content_type),
    );
    let same_class = g.status / 100 == status / 100;
    if same_class && gm.is_some() && gm != om {
        return Verdict::Fail(format!(
            "Content-Type {om:?}, the toolkit's {gm:?} (status {status})"
        ));
    }
    verdict
}

fn judge_body(g: &Golden, status: u16, content_type: Option<&str>, body: &[u8]) -> Verdict {
    let is_err_body = |st: u16| {
        serde_json::from_slice::<Value>(body).ok().is_some_and(|v| {
            v.get("code").and_then(Value::as_u64) == Some(u64::from(st))
                && v.get("type").is_some()
                && v.get("message").is_some()
        })
    };
    let snippet = || String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
    let gs = g.status;
    if g.method == "GET" && g.path.starts_with("/models") {
        if status != gs {
            return Verdict::Fail(format!("status {status}, golden {gs}: {}", snippet()));
        }
        let (Ok(a), Ok(b)) = (
            serde_json::from_slice::<Value>(&g.response_bytes()),
            serde_json::from_slice::<Value>(body),
        ) else {
            return Verdict::Fail(format!("a /models body that is not JSON: {}", snippet()));
        };
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        key_set(&a, "$", &mut ka);
        key_set(&b, "$", &mut kb);
        ka.sort();
        ka.dedup();
        kb.sort();
        kb.dedup();
        return if ka == kb {
            Verdict::Pass
        } else {
            Verdict::Fail(format!("/models keys {ka:?} vs ours {kb:?}"))
        };
    }
    if (200..300).contains(&gs) {
        if (400..500).contains(&status)
            && (g.case.starts_with("bad/") || g.case.starts_with("quirk/"))
            && is_err_body(status)
        {
            return Verdict::Stricter;
        }
        let gb = g.response_bytes();
        let gm = media_type(g.response_content_type.as_deref());
        let pickled = gm.as_deref() == Some("application/x-npy")
            && parse_npy(&gb).is_some_and(|n| n.descr == "|O");
        if pickled && status == 406 && is_err_body(status) {
            return Verdict::Stricter;
        }
        if !(200..300).contains(&status) {
            return Verdict::Fail(format!("status {status}, golden {gs}: {}", snippet()));
        }
        let parsed = (
            serde_json::from_slice::<Value>(&gb),
            serde_json::from_slice::<Value>(body),
        );
        let why = match parsed {
            (Ok(mut a), Ok(mut b)) => {
                mask(&mut a);
                mask(&mut b);
                parity_close(&a, &b, "$")
            }
            _ if gb == body => None,
            _ => match gm.as_deref() {
                Some("text/csv") => csv_close(
                    &String::from_utf8_lossy(&gb),
                    &String::from_utf8_lossy(body),
                ),
                Some("application/x-npy") => npy_close(&gb, body),
                _ => Some(format!(
                    "non-JSON body differs: {:?} vs {:?}",
                    String::from_utf8_lossy(&gb[..gb.len().min(80)]),
                    String::from_utf8_lossy(&body[..body.len().min(80)])
                )),
            },
        };
        why.map_or(Verdict::Pass, Verdict::Fail)
    } else if gs == 404 || gs == 413 {
        if status == gs {
            Verdict::Pass
        } else {
            Verdict::Fail(format!("status {status}, golden {gs}"))
        }
    } else if (400..500).contains(&gs) {
        if (200..300).contains(&status) {
            improved_body(g, content_type, body)
        } else if !(400..500).contains(&status) {
            Verdict::Fail(format!(
                "status {status} where the golden is a client error {gs}"
            ))
        } else if !is_err_body(status) {
            Verdict::Fail(format!(
                "error body is not {{code,type,message}}: {}",
                snippet()
            ))
        } else {
            Verdict::Pass
        }
    } else if status == gs {
        Verdict::Pass
    } else {
        // a toolkit 500 ("Worker died.") answered with our 4xx is a difference, as in
        // compare_golden.py: pin it as excluded, with the reason, where it is deliberate
        Verdict::Fail(format!("status {status}, golden {gs}: {}", snippet()))
    }
}

/// An answer where the toolkit refused: improved only when it is a well-formed answer, a JSON
/// body the task's response schema accepts (CSV and `.npy` where the request asked for them).
fn improved_body(g: &Golden, content_type: Option<&str>, body: &[u8]) -> Verdict {
    let media = media_type(content_type);
    let task = g
        .hf_task
        .parse::<hf_inference_core::TaskSpec>()
        .map(|s| s.task);
    match media.as_deref() {
        Some("application/json") => {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return Verdict::Fail("an improved answer that is not JSON".into());
            };
            if g.path == "/invocations" {
                let Ok(task) = task else {
                    return Verdict::Fail(format!("golden task {:?} unknown", g.hf_task));
                };
                if let Err(e) = hf_inference_core::schema::validate_response(task, &v) {
                    return Verdict::Fail(format!("an improved answer off the schema: {e}"));
                }
            }
            Verdict::Improved
        }
        Some(m)
            if g.accept
                .as_deref()
                .and_then(|a| media_type(Some(a)))
                .as_deref()
                == Some(m) =>
        {
            if body.is_empty() {
                Verdict::Fail("an improved answer with an empty body".into())
            } else {
                Verdict::Improved
            }
        }
        m => Verdict::Fail(format!("an improved answer of type {m:?}")),
    }
}

/// One golden file of `fixtures/golden` and the fixture model the toolkit recorded it on: the one
/// table that drives the parity tests (`tests/parity.rs`), the kernel-versus-candle test
/// (`tests/engine.rs`) and the schema-versus-types test (`tests/schemas.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixture {
    /// The golden file, `fixtures/golden/<golden>.jsonl`.
    pub golden: &'static str,
    /// The model folder, `fixtures/models/<model>` (several golden files may share one).
    pub model: &'static str,
    /// The task (`HF_TASK`) the toolkit served it for.
    pub task: &'static str,
    /// What this fixture covers (architecture quirks, the cases it exercises).
    pub note: &'static str,
}

impl Fixture {
    /// The fixture model's folder.
    pub fn model_dir(&self) -> PathBuf {
        fixtures().join("models").join(self.model)
    }

    /// The golden file's path.
    pub fn golden_path(&self) -> PathBuf {
        golden_path(self.golden)
    }

    /// The task, parsed.
    pub fn task(&self) -> hf_inference_core::Task {
        self.task
            .parse::<hf_inference_core::TaskSpec>()
            .unwrap_or_else(|e| panic!("{}: {e}", self.golden))
            .task
    }
}

/// The golden file recorded on the real all-MiniLM-L6-v2, which is not a fixture model: it is
/// fetched by `infra/fetch-minilm.sh` and served from `HF_TEST_MINILM_DIR` (see `parity.rs`).
pub const MINILM_GOLDEN: &str = "feature-extraction-minilm";

/// Every golden file on a fixture model: its model folder, its task and what it covers.
pub const FIXTURES: &[Fixture] = &[
    Fixture {
        golden: "feature-extraction-tiny",
        model: "feature-extraction-tiny",
        task: "feature-extraction",
        note: "BERT (`BertModel`, WordPiece with the BERT-uncased vocab): the hidden state of every token.",
    },
    Fixture {
        golden: "xlm-roberta-feature-extraction",
        model: "xlm-roberta-feature-extraction",
        task: "feature-extraction",
        note: "XLM-RoBERTa (`XLMRobertaModel`) with a SentencePiece unigram tokenizer.",
    },
    Fixture {
        golden: "text-classification",
        model: "text-classification",
        task: "text-classification",
        note: "BERT sequence classifier with 3 labels.",
    },
    Fixture {
        golden: "distilbert-text-classification",
        model: "distilbert-text-classification",
        task: "text-classification",
        note: "DistilBERT sequence classifier (dim 16), 2 labels.",
    },
    Fixture {
        golden: "roberta-text-classification",
        model: "roberta-text-classification",
        task: "text-classification",
        note: "RoBERTa (byte-level BPE), 4 labels, `multi_label_classification`: the default function is sigmoid.",
    },
    Fixture {
        golden: "zero-shot-classification",
        model: "zero-shot-classification",
        task: "zero-shot-classification",
        note: "BERT NLI classifier (contradiction/neutral/entailment).",
    },
    Fixture {
        golden: "distilbert-zero-shot-classification",
        model: "distilbert-text-classification",
        task: "zero-shot-classification",
        note: "The DistilBERT classifier: its labels have no \"entail*\", so transformers takes the last class as entailment.",
    },
    Fixture {
        golden: "roberta-zero-shot-classification",
        model: "roberta-text-classification",
        task: "zero-shot-classification",
        note: "The multi-label RoBERTa classifier: its labels have no \"entail*\", so transformers takes the last class as entailment.",
    },
    Fixture {
        golden: "token-classification",
        model: "token-classification",
        task: "token-classification",
        note: "BERT token classifier (CoNLL's 9 labels): windows, `stride` over long texts, every aggregation.",
    },
    Fixture {
        golden: "distilbert-token-classification",
        model: "distilbert-token-classification",
        task: "token-classification",
        note: "DistilBERT token classifier (BERT vocab).",
    },
    Fixture {
        golden: "roberta-token-classification",
        model: "roberta-token-classification",
        task: "token-classification",
        note: "Byte-level BPE: no `##` prefix, so sub-words come from transformers' space heuristic; a 64-token window, so the `long/stride-*` cases run over many windows.",
    },
    Fixture {
        golden: "question-answering",
        model: "question-answering",
        task: "question-answering",
        note: "BERT extractive QA: contexts split into windows, `top_k` across windows, the impossible answer.",
    },
    Fixture {
        golden: "distilbert-question-answering",
        model: "distilbert-question-answering",
        task: "question-answering",
        note: "DistilBERT extractive QA.",
    },
    Fixture {
        golden: "roberta-question-answering",
        model: "roberta-question-answering",
        task: "question-answering",
        note: "RoBERTa-base's 512-token window: the default max_seq_len 384 / doc_stride 128 windowing.",
    },
    Fixture {
        golden: "deberta-v2-token-classification",
        model: "deberta-v2-token-classification",
        task: "token-classification",
        note: "DeBERTa-v3's layout (relative attention over position buckets, SentencePiece): candle's encoder with our heads, on every task that has a DeBERTa head here.",
    },
    Fixture {
        golden: "deberta-v2-question-answering",
        model: "deberta-v2-question-answering",
        task: "question-answering",
        note: "DeBERTa-v3's layout (relative attention over position buckets, SentencePiece) with our QA head.",
    },
    Fixture {
        golden: "table-question-answering",
        model: "table-question-answering",
        task: "table-question-answering",
        note: "The harness's TAPAS (hidden 16, 2 layers, 4 aggregation operators, relative positions, the BERT-uncased vocab without [EMPTY]): the harness's cases (multi-query, sequential, truncation, the form without `inputs`, refusals).",
    },
    Fixture {
        golden: "tapas-wtq-table-question-answering",
        model: "tapas-wtq-table-question-answering",
        task: "table-question-answering",
        note: "WTQ-style TAPAS with an aggregation head set so NONE, SUM, AVERAGE and COUNT each win on a question, [EMPTY] in its 8000-word vocab and a 64-token window: aggregation answers, sequential, drop_rows_to_fit on long tables, numbers, dates, empty cells, unicode, padding, lists of tables, refusals.",
    },
    Fixture {
        golden: "tapas-sqa-table-question-answering",
        model: "tapas-sqa-table-question-answering",
        task: "table-question-answering",
        note: "SQA-style TAPAS: no aggregation head (no `aggregator` key), absolute positions; the same cases, `sequential` conversations carrying the previous answer.",
    },
    Fixture {
        golden: "deberta-v2-text-classification",
        model: "deberta-v2-text-classification",
        task: "text-classification",
        note: "DeBERTa-v3's layout (relative attention over position buckets, SentencePiece) with an NLI classifier head.",
    },
    Fixture {
        golden: "deberta-v2-zero-shot-classification",
        model: "deberta-v2-text-classification",
        task: "zero-shot-classification",
        note: "The DeBERTa-v3 NLI classifier (contradiction/neutral/entailment) serving zero-shot.",
    },
    Fixture {
        golden: "fill-mask",
        model: "fill-mask",
        task: "fill-mask",
        note: "BERT masked LM (decoder tied to the word embeddings), mask `[MASK]`.",
    },
    Fixture {
        golden: "distilbert-fill-mask",
        model: "distilbert-fill-mask",
        task: "fill-mask",
        note: "DistilBERT masked LM (BERT vocab).",
    },
    Fixture {
        golden: "roberta-fill-mask",
        model: "roberta-fill-mask",
        task: "fill-mask",
        note: "RoBERTa's mask token is `<mask>`: the harness's `[MASK]` cases are 400 there, and `bad/roberta-mask-token` is the one that fills a mask.",
    },
    Fixture {
        golden: "text-generation",
        model: "text-generation",
        task: "text-generation",
        note: "GPT-2 (byte-level BPE): greedy, beams, prefixes, stop sequences, token ids, batches.",
    },
    Fixture {
        golden: "summarization",
        model: "summarization",
        task: "summarization",
        note: "T5 with the summarization task parameters of its config (prefix, beams, lengths, n-grams).",
    },
    Fixture {
        golden: "text2text-generation",
        model: "text2text-generation",
        task: "text2text-generation",
        note: "T5 (untied head, SentencePiece with 100 extra ids) on text2text-generation.",
    },
    Fixture {
        golden: "translation-t5",
        model: "translation-t5",
        task: "translation",
        note: "HF_TASK=translation on a T5 with translation_en_to_de parameters: the task resolves to them.",
    },
    Fixture {
        golden: "llama-text-generation",
        model: "llama-text-generation",
        task: "text-generation",
        note: "Llama-3 layout (grouped-query attention, bos added, a chat template with raise_exception).",
    },
    Fixture {
        golden: "qwen2-text-generation",
        model: "qwen2-text-generation",
        task: "text-generation",
        note: "Qwen2 (q/k/v biases, tied head, ChatML, a repetition_penalty default in generation_config.json).",
    },
    Fixture {
        golden: "mistral-text-generation",
        model: "mistral-text-generation",
        task: "text-generation",
        note: "Mistral with an 8-token sliding window, crossed by every long case.",
    },
    Fixture {
        golden: "phi3-text-generation",
        model: "phi3-text-generation",
        task: "text-generation",
        note: "Phi-3 (fused qkv and gate_up projections).",
    },
    Fixture {
        golden: "gemma-text-generation",
        model: "gemma-text-generation",
        task: "text-generation",
        note: "Gemma ((1 + w) RMS norms, scaled embeddings, GeGLU, one key/value head).",
    },
    Fixture {
        golden: "image-classification",
        model: "image-classification",
        task: "image-classification",
        note: "ViT (32x32 input, 8x8 patches, 5 labels): raw PNG, JPEG, BMP, GIF, WebP, TIFF and x-image bodies, base64 and data-URI JSON, batches, top_k, function_to_apply, CSV answers, garbage and empty bodies, image/jpg (refused by the toolkit, served here).",
    },
    Fixture {
        golden: "image-classification-more",
        model: "image-classification",
        task: "image-classification",
        note: "Our image cases on the ViT: greyscale, grey+alpha, RGBA (alpha dropped), palette and 16-bit PNGs; greyscale, CMYK, 4:4:4, 4:2:2, progressive and EXIF-rotated JPEGs; 640x480 JPEG and PNG downscaled (antialiased resampling), a 3x200 image, a 1x1 image (the toolkit crashes), upscaling; an animated GIF (first frame); mixed batches; top_k 0 and past the labels; sigmoid; unknown parameters; truncated and mislabelled bodies.",
    },
    Fixture {
        golden: "deit-image-classification",
        model: "deit-image-classification",
        task: "image-classification",
        note: "DeiT with a teacher (DeiTForImageClassificationWithTeacher: CLS and distillation tokens, logits the mean of both heads), DeiTImageProcessor's 40x40 bicubic resize and 32x32 centre crop: the harness's image cases.",
    },
    Fixture {
        golden: "dinov2-image-classification",
        model: "dinov2-image-classification",
        task: "image-classification",
        note: "DINOv2 (layer scale, the head on CLS and the mean of the patch tokens): a 4x4 position grid resized bicubically to the 5x6 patch grid of BitImageProcessor's 40x48 crop (shortest edge 48): the harness's image cases.",
    },
    Fixture {
        golden: "beit-image-classification",
        model: "beit-image-classification",
        task: "image-classification",
        note: "BEiT with absolute position embeddings, shared and per-layer relative position bias, layer scale and mean pooling; the model's 4x4 window, the processor's 40x40 crop (5x5): both position tables resized on every image: the harness's image cases.",
    },
    Fixture {
        golden: "swin-image-classification",
        model: "swin-image-classification",
        task: "image-classification",
        note: "Swin (4x4 patches, windows of 4, the second block of each stage shifted by 2 with its mask where the grid exceeds a window, patch merging, relative position bias): the harness's image cases.",
    },
    Fixture {
        golden: "deit-image-classification-more",
        model: "deit-image-classification",
        task: "image-classification",
        note: "Our image cases on the DeiT: image modes, JPEG variants, 640x480 images downscaled bicubically, 3x200 and 1x1 images, upscaling, an animated GIF, mixed batches, parameters, bad bodies.",
    },
    Fixture {
        golden: "dinov2-image-classification-more",
        model: "dinov2-image-classification",
        task: "image-classification",
        note: "Our image cases on the DINOv2 (shortest-edge resize and crop: every size reaches the 5x6 grid): image modes, JPEG variants, 640x480 images downscaled bicubically, 3x200 and 1x1 images, upscaling, an animated GIF, mixed batches, parameters, bad bodies.",
    },
    Fixture {
        golden: "beit-image-classification-more",
        model: "beit-image-classification",
        task: "image-classification",
        note: "Our image cases on the BEiT: image modes, JPEG variants, 640x480 images downscaled bicubically, 3x200 and 1x1 images, upscaling, an animated GIF, mixed batches, parameters, bad bodies.",
    },
    Fixture {
        golden: "swin-image-classification-more",
        model: "swin-image-classification",
        task: "image-classification",
        note: "Our image cases on the Swin: image modes, JPEG variants, 640x480 images downscaled bicubically, 3x200 and 1x1 images, upscaling, an animated GIF, mixed batches, parameters, bad bodies.",
    },
    Fixture {
        golden: "convnext-image-classification",
        model: "convnext-image-classification",
        task: "image-classification",
        note: "ConvNeXt (4x4 patchify stem, stages of 2 and 1 blocks: depthwise 7x7, channels-last layer norm, GELU MLP, layer scale; random norms and layer scales) behind a ConvNextImageProcessor below 384 (short side to int(32 / 0.875) = 36, bicubic, a 32x32 centre crop, ImageNet mean and std): the harness's image cases.",
    },
    Fixture {
        golden: "convnext-image-classification-more",
        model: "convnext-image-classification",
        task: "image-classification",
        note: "Our image cases on the ConvNeXt: modes, JPEG variants, 640x480 and 3x200 images through the crop_pct resize and crop, a 1x1 image, upscaling, an animated GIF, parameters, bad bodies.",
    },
    Fixture {
        golden: "convnextv2-image-classification",
        model: "convnextv2-image-classification",
        task: "image-classification",
        note: "ConvNeXt V2 (GRN with transformers' matrix 2-norm over each channel's map, no layer scale) behind a ConvNextImageProcessor at 384 (a plain 384x384 bilinear resize, no crop): the harness's image cases.",
    },
    Fixture {
        golden: "resnet-image-classification",
        model: "resnet-image-classification",
        task: "image-classification",
        note: "ResNet with bottleneck layers downsampling in their first 1x1 (downsample_in_bottleneck), projection shortcuts, random batch-norm statistics, the stem's -inf-padded max pool; ConvNextImageProcessor crop_pct 0.875: the harness's image cases.",
    },
    Fixture {
        golden: "resnet-image-classification-more",
        model: "resnet-image-classification",
        task: "image-classification",
        note: "Our image cases on the bottleneck ResNet.",
    },
    Fixture {
        golden: "resnet-basic-image-classification",
        model: "resnet-basic-image-classification",
        task: "image-classification",
        note: "ResNet with basic layers, downsample_in_first_stage, GELU as hidden_act (the stem and after each residual sum; ReLU inside the layers), multi_label_classification (sigmoid by default); ConvNextImageProcessor crop_pct 0.9, bilinear: the harness's image cases.",
    },
    Fixture {
        golden: "mobilenet-v2-image-classification",
        model: "mobilenet-v2-image-classification",
        task: "image-classification",
        note: "MobileNetV2 (depth multiplier 0.1: make_divisible's minimum depths, the finegrained 1280-channel head; expansion 2; TensorFlow SAME padding, asymmetric at stride 2; ReLU6; batch-norm eps 1e-3) behind a MobileNetV2ImageProcessor (short side 36, 32x32 crop): the harness's image cases.",
    },
    Fixture {
        golden: "mobilenet-v2-image-classification-more",
        model: "mobilenet-v2-image-classification",
        task: "image-classification",
        note: "Our image cases on the MobileNetV2.",
    },
    Fixture {
        golden: "mobilenet-v1-image-classification",
        model: "mobilenet-v1-image-classification",
        task: "image-classification",
        note: "MobileNetV1 (depth multiplier 0.125, 13 depthwise-separable pairs, TensorFlow SAME padding, ReLU6), multi_label_classification (sigmoid by default), a MobileNetV1ImageProcessor: the harness's image cases.",
    },
    Fixture {
        golden: "image-segmentation",
        model: "image-segmentation",
        task: "image-segmentation",
        note: "SegFormer (two encoder blocks, 3 labels, 32x32 input): semantic masks as base64 PNGs compared as pixels, every raw image type, JSON base64 and data URIs, batches, thresholds (unused by semantic segmentation), the panoptic subtask refused, CSV answers (the toolkit writes a PIL repr where we write the mask).",
    },
    Fixture {
        golden: "maskformer-image-segmentation",
        model: "maskformer-image-segmentation",
        task: "image-segmentation",
        note: "MaskFormer on transformers' ResNet backbone (two bottleneck stages, both into the FPN pixel decoder), a 2-layer DETR decoder of 6 queries, 4 labels plus no object; MaskFormerImageProcessor (shortest 32, longest 64, size_divisor 32). The harness's image-segmentation cases (panoptic by default) and ours: every subtask (instance in torch's unsorted topk order) and an unknown one refused, threshold, mask_threshold, overlap_mask_area_threshold, upscaled and tall images, batches of mixed sizes.",
    },
    Fixture {
        golden: "object-detection",
        model: "object-detection",
        task: "object-detection",
        note: "YOLOS (5 detection tokens, 32x32 position grid resized bicubically to the image's patch grid, 3 labels plus N/A): boxes as integers in the input's pixels, threshold (default 0.5, 0.3, 0.0), every raw image type, JSON base64 and data URIs, batches, CSV answers.",
    },
    Fixture {
        golden: "detr-object-detection",
        model: "detr-object-detection",
        task: "object-detection",
        note: "DETR on transformers' ResNet backbone (bottleneck stages of depth 1 and 2, frozen batch norms with random statistics), sine positions over the pixel mask, 1 encoder and 1 decoder layer, 5 object queries, 3 labels plus N/A; DetrImageProcessor (shortest 32, longest 64, a single image padded to its own size): threshold (default 0.5, 0.3, 0.0 shows every query), every raw image type, JSON base64 and data URIs, batches, CSV answers.",
    },
    Fixture {
        golden: "detr-padded-object-detection",
        model: "detr-padded-object-detection",
        task: "object-detection",
        note: "The same DETR with the processor of transformers' fine-tuning guide: a max height/width resize (64x48 -> 40x30) and a pad_size (48x40), so the model sees zeros at the bottom and right and a pixel mask that shapes the sine positions and masks the padding's keys (4 of 5 feature rows, 5 of 6 columns valid). The harness's object-detection cases.",
    },
    Fixture {
        golden: "detr-timm-object-detection",
        model: "detr-timm-object-detection",
        task: "object-detection",
        note: "DETR on a timm backbone (use_timm_backbone: true, as facebook/detr-resnet-50): timm 1.0.15's resnet50 cut by backbone_kwargs to bottleneck stages of depth 1 and 2 (4 and 8 planes, the 64-channel stem), recorded with timm installed beside the toolkit; the transformer, heads and processor as detr-object-detection's. The harness's object-detection cases.",
    },
    Fixture {
        golden: "zero-shot-image-classification",
        model: "zero-shot-image-classification",
        task: "zero-shot-image-classification",
        note: "CLIP (text and vision towers of 2 layers, projection 16, CLIP BPE tokenizer): candidate_labels and hypothesis_template in JSON, batches; requests without labels (every raw body, JSON without parameters) refused with 400 as the toolkit does.",
    },
    Fixture {
        golden: "siglip-zero-shot-image-classification",
        model: "siglip-zero-shot-image-classification",
        task: "zero-shot-image-classification",
        note: "SigLIP (towers of 2 layers, the attention-pooling head, logit_scale and logit_bias set so sigmoid scores spread; the slow SentencePiece SiglipTokenizer from spiece.model alone): the harness's cases plus ours: one, many and duplicate labels, punctuation, unicode, whitespace, case, special tokens and the \u{2581} character in labels, a label truncated at 64 tokens, an empty label, templates (plain, no placeholder, {0} and braces, punctuation only, longer than 64 tokens), a large JPEG, a greyscale PNG, batches, refusals.",
    },
    Fixture {
        golden: "bart-summarization",
        model: "bart-summarization",
        task: "summarization",
        note: "BART (learned positions offset by 2, layernorm_embedding, post-norm, final_logits_bias) with a bart-large-cnn-like generation_config.json: beams, lengths, n-grams, forced BOS and EOS.",
    },
    Fixture {
        golden: "translation",
        model: "translation",
        task: "translation",
        note: "Marian (sinusoidal positions, tied decoder embeddings, final_logits_bias, 4 beams and bad_words_ids in generation_config.json) with its SentencePiece-only tokenizer.",
    },
    Fixture {
        golden: "t5-v1_1-text2text-generation",
        model: "t5-v1_1-text2text-generation",
        task: "text2text-generation",
        note: "T5 v1.1 / flan-T5 layout: gated-GELU feed-forward, untied head, a deeper decoder.",
    },
];

/// The fixture line of a golden file.
pub fn fixture(golden_name: &str) -> &'static Fixture {
    FIXTURES
        .iter()
        .find(|f| f.golden == golden_name)
        .unwrap_or_else(|| panic!("no fixture model for golden file {golden_name}"))
}

/// The fixture model and task behind a golden file.
pub fn fixture_model(golden_name: &str) -> (PathBuf, &'static str) {
    let f = fixture(golden_name);
    (f.model_dir(), f.task)
}

/// An in-process router serving a fixture model, ready.
pub fn router_for(golden_name: &str) -> axum::Router {
    let (dir, task) = fixture_model(golden_name);
    router_for_dir(&dir, task)
}

/// An in-process router serving the model in `dir` for `task`, ready.
pub fn router_for_dir(dir: &Path, task: &str) -> axum::Router {
    let opts = hf_inference_core::LoadOptions::local(dir, Some(task.parse().expect("task id")));
    let pipeline = hf_inference_core::load_pipeline(&opts)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let runtime = hf_inference_core::Runtime::new(hf_inference_core::RuntimeOptions::default())
        .expect("runtime");
    let service = hf_inference_core::InferenceService::new(pipeline, runtime);
    let settings = hf_inference_http::HttpSettings {
        model_url: dir.display().to_string(),
        ..Default::default()
    };
    hf_inference_http::router(hf_inference_http::AppState::ready(settings, service))
}

/// Sends one golden request through the router; returns status, content type and body.
pub async fn send(router: &axum::Router, g: &Golden) -> (u16, Option<String>, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = axum::http::Request::builder()
        .method(g.method.as_str())
        .uri(g.path.as_str());
    if let Some(ct) = &g.request_content_type {
        req = req.header("content-type", ct);
    }
    if let Some(a) = &g.accept {
        req = req.header("accept", a);
    }
    let bytes = g.request_bytes();
    req = req.header("content-length", bytes.len());
    let req = req.body(axum::body::Body::from(bytes)).expect("request");
    let resp = router
        .clone()
        .oneshot(req)
        .await
        .expect("infallible router");
    let status = resp.status().as_u16();
    let ct = content_type(&resp);
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (status, ct, body)
}

/// A response's `Content-Type`, if it has a readable one.
fn content_type<B>(resp: &axum::http::Response<B>) -> Option<String> {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether this is a CI run (`CI` set to anything but empty, `0` or `false`, as CI runners do):
/// there, a test whose fixture (a service, a model) is missing fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE" | "False"))
}

/// A test that cannot run here because `why` (a missing service or model). Under CI it panics,
/// so the run fails with the cause; elsewhere it says `skipped: <test>: <why>` on the process's
/// stderr (written past the test harness's capture, so `cargo test` shows it) and, where
/// `HF_TEST_SKIP_LOG` names a file, appends the same line there for `infra/ci/check.sh` to list.
/// The caller returns right after.
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    assert!(
        !in_ci(),
        "{test}: {why}; CI=true requires it, so this test fails instead of skipping"
    );
    let line = format!("skipped: {test}: {why}\n");
    // `eprintln!` is captured by libtest and shown only for failing tests; a direct write is not
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(log) = std::env::var_os("HF_TEST_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// A local S3/SNS API (moto's server, installed by `infra/fetch-moto.sh`), stopped when dropped.
pub struct Moto {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Moto {
    /// Starts moto from the packages in `HF_TEST_MOTO_DIR` (which `infra/ci/check.sh` sets) and
    /// waits for it; `None`, with a notice, where it is not installed.
    /// Under CI (see [`in_ci`]) a missing moto fails the calling test instead.
    pub fn start(test: &str) -> Option<Moto> {
        let Ok(pkgs) = std::env::var("HF_TEST_MOTO_DIR") else {
            skip(
                test,
                "moto is not installed (infra/ci/check.sh installs it with infra/fetch-moto.sh and sets HF_TEST_MOTO_DIR)",
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("PYTHONPATH", pkgs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m moto.server");
        let moto = Moto { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(moto)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `data:` events of a Server-Sent Events body, as JSON.
pub fn sse_events(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let data = e
                .strip_prefix("data:")
                .unwrap_or_else(|| panic!("not an SSE data event: {e:?}"));
            serde_json::from_str(data).unwrap_or_else(|err| panic!("{err}: {data}"))
        })
        .collect()
}

/// POSTs a JSON `body` to `path` (with `accept`, if given); returns the status, the
/// `Content-Type` and the body as the chunks it arrived in (a streamed answer has several).
pub async fn post_json(
    router: &axum::Router,
    path: &str,
    body: &Value,
    accept: Option<&str>,
) -> (u16, String, Vec<Vec<u8>>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = axum::http::Request::post(path).header("content-type", "application/json");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = router
        .clone()
        .oneshot(
            req.body(axum::body::Body::from(body.to_string()))
                .expect("a request"),
        )
        .await
        .expect("the router answers");
    let status = resp.status().as_u16();
    let ct = content_type(&resp).unwrap_or_default();
    let mut body = resp.into_body();
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("a body frame").into_data() {
            chunks.push(data.to_vec());
        }
    }
    (status, ct, chunks)
}

/// What a golden file's records are expected to be judged, where not "same": the pinned list
/// `fixtures/golden/<name>.verdicts` beside the golden file. One line per case,
/// `<verdict> <case> <reason>`, verdict `improved`, `stricter` or `excluded` (a difference
/// [`judge`] fails, kept on purpose); `#` starts a comment. Every improved, stricter or failing
/// record must be listed with its verdict, and every listed case must be judged so: a new
/// difference, or one that went away, fails until the list says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The verdict: `improved`, `stricter` or `excluded`.
    pub verdict: String,
    /// The case name.
    pub case: String,
    /// Why.
    pub reason: String,
}

/// `fixtures/golden/<name>.verdicts`.
pub fn pinned_path(name: &str) -> PathBuf {
    fixtures().join("golden").join(format!("{name}.verdicts"))
}

/// Reads a golden file's pinned list (empty when it has none); a malformed line is an error.
pub fn pinned(name: &str) -> Result<Vec<Pinned>, String> {
    let path = pinned_path(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut out: Vec<Pinned> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (Some(verdict), Some(case), Some(reason)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{}:{}: not `<verdict> <case> <reason>`",
                path.display(),
                i + 1
            ));
        };
        if !matches!(verdict, "improved" | "stricter" | "excluded") || reason.trim().is_empty() {
            return Err(format!(
                "{}:{}: the verdict must be improved, stricter or excluded, with a reason",
                path.display(),
                i + 1
            ));
        }
        if out.iter().any(|p| p.case == case) {
            return Err(format!("{}: {case} listed twice", path.display()));
        }
        out.push(Pinned {
            verdict: verdict.to_owned(),
            case: case.to_owned(),
            reason: reason.trim().to_owned(),
        });
    }
    Ok(out)
}

/// The verdicts on one golden file, held against its pinned list.
#[derive(Debug, Default)]
pub struct Tally {
    /// Records judged "same".
    pub same: usize,
    /// Golden 2xx records judged "same" (the file's real answers, not only its refusals).
    pub same_success: usize,
    /// Improved records.
    pub improved: usize,
    /// Stricter records.
    pub stricter: usize,
    /// Excluded (pinned failing) records.
    pub excluded: usize,
    /// What is wrong: unpinned or mispinned verdicts, pinned cases not seen.
    pub problems: Vec<String>,
    seen: Vec<String>,
}

impl Tally {
    /// Counts one verdict, checking it against the pinned list.
    pub fn add(&mut self, name: &str, pins: &[Pinned], g: &Golden, verdict: &Verdict) {
        let pin = pins.iter().find(|p| p.case == g.case);
        self.seen.push(g.case.clone());
        let (word, why) = match verdict {
            Verdict::Pass => {
                self.same += 1;
                if (200..300).contains(&g.status) {
                    self.same_success += 1;
                }
                ("same", String::new())
            }
            Verdict::Improved => {
                self.improved += 1;
                ("improved", String::new())
            }
            Verdict::Stricter => {
                self.stricter += 1;
                ("stricter", String::new())
            }
            Verdict::Fail(why) => ("excluded", why.clone()),
        };
        match pin {
            Some(p) if p.verdict == word => {
                if word == "excluded" {
                    self.excluded += 1;
                    eprintln!("excluded {name} {}: {why} ({})", g.case, p.reason);
                }
            }
            Some(p) => self.problems.push(format!(
                "{name} {}: pinned as {} in {}, judged {word}{}{why}",
                g.case,
                p.verdict,
                pinned_path(name).display(),
                if why.is_empty() { "" } else { ": " },
            )),
            None if word == "same" => {}
            None if word == "excluded" => self.problems.push(format!("{name} {}: {why}", g.case)),
            None => self.problems.push(format!(
                "{name} {}: judged {word}, not in {} (add `{word} {} <reason>` if it is right)",
                g.case,
                pinned_path(name).display(),
                g.case
            )),
        }
    }

    /// Ends the tally: pinned cases that were never judged, and too little real comparison.
    pub fn finish(mut self, name: &str, pins: &[Pinned]) -> Tally {
        for p in pins {
            if !self.seen.contains(&p.case) {
                self.problems.push(format!(
                    "{name} {}: pinned in {} but not in the golden file",
                    p.case,
                    pinned_path(name).display()
                ));
            }
        }
        if self.same < 10 {
            self.problems.push(format!(
                "{name}: too few records compared ({} same)",
                self.same
            ));
        }
        if self.same_success == 0 {
            self.problems.push(format!(
                "{name}: no successful toolkit answer was matched (every success was refused?)"
            ));
        }
        eprintln!(
            "{name}: {} same, {} improved, {} stricter, {} excluded, {} problems",
            self.same,
            self.improved,
            self.stricter,
            self.excluded,
            self.problems.len()
        );
        self
    }
}

/// The README's parity sentence, as the golden files and their pinned lists make it:
/// `replay N recorded requests on M model/task pairs: I improved, S stricter, E excluded`.
pub fn parity_summary() -> String {
    let dir = fixtures().join("golden");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    let stem = p.file_stem()?.to_str()?.to_owned();
                    (p.extension()? == "jsonl").then_some(stem)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let (mut records, mut improved, mut stricter, mut excluded) = (0, 0, 0, 0);
    for name in &names {
        records += goldens(name).len();
        for p in pinned(name).unwrap_or_else(|e| panic!("{e}")) {
            match p.verdict.as_str() {
                "improved" => improved += 1,
                "stricter" => stricter += 1,
                _ => excluded += 1,
            }
        }
    }
    format!(
        "replay {records} recorded requests on {} model/task pairs: {improved} improved, {stricter} stricter, {excluded} excluded",
        names.len()
    )
}
