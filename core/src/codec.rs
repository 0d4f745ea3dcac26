//! Request decoding by `Content-Type` and response encoding by `Accept`.
//!
//! The Python toolkit matches both headers as exact, case-sensitive strings, so
//! `application/json; charset=utf-8` or `Application/JSON` fail there. We parse them as media
//! types (RFC 9110): case-insensitive type, parameters allowed, `Accept` lists with q-values.
//! Decoding yields the JSON document the toolkit would have built (`{"inputs": ...}` for CSV).

use serde_json::{Map, Value};

use crate::error::ToolkitError;

/// A request body format we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// `application/json`.
    Json,
    /// `text/csv` with a header row.
    Csv,
    /// `application/jsonlines`: one request object per line, each answered on its own line
    /// (SageMaker batch transform and asynchronous inference).
    JsonLines,
    /// A body no codec decodes (an image, audio, an `.npy` array), handed to the pipeline as it
    /// is with its media type: one the pipeline listed as taking raw.
    Binary(&'static str),
}

/// A response format we produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `application/json`.
    Json,
    /// `text/csv` (only for a list of flat objects).
    Csv,
    /// `application/x-npy` (only for numeric arrays).
    Npy,
    /// `application/jsonlines`: one JSON document per line.
    JsonLines,
    /// `text/event-stream`: generated tokens as Server-Sent Events (generation tasks).
    EventStream,
}

impl ResponseFormat {
    /// The `Content-Type` of a response in this format. The toolkit echoes the Accept value; we
    /// send the canonical type (with the charset for text).
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseFormat::Json => "application/json",
            ResponseFormat::Csv => "text/csv",
            ResponseFormat::Npy => "application/x-npy",
            ResponseFormat::JsonLines => "application/jsonlines",
            ResponseFormat::EventStream => "text/event-stream",
        }
    }
}

/// The raw media types an image task takes: the toolkit's list, and `image/jpg`, which the
/// toolkit refuses by mistake. The one list: image pipelines return it from
/// `Pipeline::raw_media_types`, and [`crate::task::Task::raw_media_types`] gives it for image
/// tasks to hosts without the engine (the Lambda proxy).
pub const IMAGE_MEDIA_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/tiff",
    "image/bmp",
    "image/gif",
    "image/webp",
    "image/x-image",
];

/// The header SageMaker passes `InvokeEndpoint`'s `CustomAttributes` in.
pub const CUSTOM_ATTRIBUTES: &str = "x-amzn-sagemaker-custom-attributes";

/// Parameters for a raw body (an image file has no room for them), from the request's query
/// string (`?candidate_labels=cat,dog&top_k=2`, URL-encoded) and its custom attributes
/// (`candidate_labels=cat,dog;top_k=2`, pairs separated by `;`, values may be percent-encoded);
/// the custom attributes win where both name a key. A value that parses as JSON (a number,
/// `true`, a list) is taken as that, anything else as text. `None` when neither gives a pair.
/// Pipelines keep only the keys that are their task's parameters, so attributes meant for
/// something else (a trace id) are ignored.
pub fn raw_parameters(
    custom_attributes: Option<&str>,
    query: Option<&str>,
) -> Option<Map<String, Value>> {
    let value =
        |v: &str| serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    let mut out = Map::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            if !k.is_empty() {
                out.insert(k.into_owned(), value(&v));
            }
        }
    }
    if let Some(attrs) = custom_attributes {
        for pair in attrs.split(';') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let k = k.trim();
            if k.is_empty() {
                continue;
            }
            let v = percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy();
            out.insert(k.to_owned(), value(&v));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The request media types every pipeline reads.
pub const SUPPORTED_REQUEST: &str = "application/json, text/csv, application/jsonlines";
const SUPPORTED_ACCEPT: &str =
    "application/json, text/csv, application/x-npy, application/jsonlines";

/// The names JSON Lines goes by.
fn is_json_lines(essence: &str) -> bool {
    matches!(
        essence,
        "application/jsonlines"
            | "application/x-jsonlines"
            | "application/jsonl"
            | "application/x-ndjson"
            | "application/ndjson"
    )
}

/// Splits a media type into its lower-cased essence and its parameters.
fn parse_media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    (essence, params)
}

/// Which decoder a `Content-Type` header selects.
pub fn request_format(content_type: Option<&str>) -> Result<RequestFormat, ToolkitError> {
    request_format_for(content_type, &[])
}

/// Which decoder a `Content-Type` header selects for a pipeline that also takes the raw media
/// types `raw_types` (their essences, lower case): those are [`RequestFormat::Binary`].
pub fn request_format_for(
    content_type: Option<&str>,
    raw_types: &'static [&'static str],
) -> Result<RequestFormat, ToolkitError> {
    let supported = || {
        if raw_types.is_empty() {
            SUPPORTED_REQUEST.to_owned()
        } else {
            format!("{SUPPORTED_REQUEST}, {}", raw_types.join(", "))
        }
    };
    let unsupported = |ct: &str| ToolkitError::UnsupportedContentType {
        content_type: ct.to_owned(),
        supported: supported(),
    };
    let Some(raw) = content_type else {
        return Err(unsupported("None (no Content-Type header)"));
    };
    let (essence, params) = parse_media_type(raw);
    if let Some((_, charset)) = params.iter().find(|(k, _)| k == "charset") {
        if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
            return Err(ToolkitError::UnsupportedContentType {
                content_type: raw.to_owned(),
                supported: format!("{} (charset utf-8 only)", supported()),
            });
        }
    }
    match essence.as_str() {
        "application/json" => Ok(RequestFormat::Json),
        "text/csv" => Ok(RequestFormat::Csv),
        e if is_json_lines(e) => Ok(RequestFormat::JsonLines),
        e => match raw_types.iter().find(|r| **r == e) {
            Some(r) => Ok(RequestFormat::Binary(r)),
            None => Err(unsupported(raw)),
        },
    }
}

/// Which encoder an `Accept` header selects: the highest-q media range we can produce; a missing
/// header, `*/*` or `application/*` mean JSON.
pub fn response_format(accept: Option<&str>) -> Result<ResponseFormat, ToolkitError> {
    response_format_or(accept, ResponseFormat::Json)
}

/// The response format for a request: as [`response_format`], except that a JSON Lines request
/// is answered in JSON Lines when the client does not ask for something specific.
pub fn response_format_for(
    request: RequestFormat,
    accept: Option<&str>,
) -> Result<ResponseFormat, ToolkitError> {
    let default = match request {
        RequestFormat::JsonLines => ResponseFormat::JsonLines,
        _ => ResponseFormat::Json,
    };
    response_format_or(accept, default)
}

fn response_format_or(
    accept: Option<&str>,
    default: ResponseFormat,
) -> Result<ResponseFormat, ToolkitError> {
    let Some(raw) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(default);
    };
    let mut best: Option<(f32, usize, ResponseFormat)> = None;
    for (pos, range) in raw.split(',').enumerate() {
        let (essence, params) = parse_media_type(range);
        let q = params
            .iter()
            .find(|(k, _)| k == "q")
            .and_then(|(_, v)| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let format = match essence.as_str() {
            "*/*" | "application/*" => default,
            "application/json" => ResponseFormat::Json,
            "text/csv" | "text/*" => ResponseFormat::Csv,
            "text/event-stream" => ResponseFormat::EventStream,
            "application/x-npy" => ResponseFormat::Npy,
            e if is_json_lines(e) => ResponseFormat::JsonLines,
            _ => continue,
        };
        // highest q wins; on a tie the first listed
        if best.is_none_or(|(bq, _, _)| q > bq) {
            best = Some((q, pos, format));
        }
    }
    best.map(|(_, _, f)| f)
        .ok_or_else(|| ToolkitError::UnsupportedAccept {
            accept: raw.to_owned(),
            reason: String::new(),
            supported: SUPPORTED_ACCEPT.to_owned(),
        })
}

/// Decodes a request body into the JSON document the pipeline reads.
pub fn decode(format: RequestFormat, body: &[u8]) -> Result<Value, ToolkitError> {
    match format {
        RequestFormat::Json => decode_json(body),
        RequestFormat::Csv => decode_csv(body),
        RequestFormat::JsonLines => Err(ToolkitError::Validation(
            "a JSON Lines body holds one request per line; it is answered line by line, not decoded as one document".into(),
        )),
        RequestFormat::Binary(media_type) => Err(ToolkitError::Validation(format!(
            "a {media_type} body is read by the pipeline as it is, not decoded as a JSON document"
        ))),
    }
}

fn decode_json(body: &[u8]) -> Result<Value, ToolkitError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ToolkitError::Validation(
            "the request body is empty; send a JSON object such as {\"inputs\": \"...\"}".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ToolkitError::Validation(format!(
            "the request body is not valid JSON ({e}); send a JSON object such as {{\"inputs\": \"...\"}}"
        ))
    })
}

/// The byte ranges of the JSON documents in a body holding several of them separated by
/// whitespace (batch transform's `SplitType=Line` joins records with newlines and still says
/// `application/json`); `None` unless there are at least two and all parse.
pub fn documents(body: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let mut docs = serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>();
    let mut ranges = Vec::new();
    let mut end = 0;
    while let Some(doc) = docs.next() {
        doc.ok()?;
        let start = end
            + body[end..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
        end = docs.byte_offset();
        ranges.push(start..end);
    }
    (ranges.len() >= 2).then_some(ranges)
}

/// The toolkit's CSV rule (`decoder_encoder.decode_csv`): the first line must be a header naming
/// `inputs`, `question` or `context`; an `inputs` column becomes `{"inputs": [values]}`, otherwise
/// every row becomes an object: `{"inputs": [{column: value}, ...]}`.
fn decode_csv(body: &[u8]) -> Result<Value, ToolkitError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ToolkitError::Validation(format!("the CSV body is not valid UTF-8: {e}")))?;
    let first = text.lines().next().unwrap_or("").to_ascii_lowercase();
    if !["question", "context", "inputs"]
        .iter()
        .any(|h| first.contains(h))
    {
        return Err(ToolkitError::Validation(
            "You need to provide the correct CSV with Header columns to use it with the inference toolkit default handler: the first line must be a header naming an `inputs` column (or `question` and `context`)".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| ToolkitError::Validation(format!("invalid CSV header: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ToolkitError::Validation(format!("invalid CSV: {e}")))?;
        rows.push(record);
    }
    if let Some(col) = headers.iter().position(|h| h == "inputs") {
        let values = rows
            .iter()
            .map(|r| Value::String(r.get(col).unwrap_or("").to_owned()))
            .collect();
        return Ok(Value::Object(Map::from_iter([(
            "inputs".to_owned(),
            Value::Array(values),
        )])));
    }
    let objects = rows
        .iter()
        .map(|r| {
            Value::Object(
                headers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        (
                            h.to_owned(),
                            Value::String(r.get(i).unwrap_or("").to_owned()),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    Ok(Value::Object(Map::from_iter([(
        "inputs".to_owned(),
        Value::Array(objects),
    )])))
}

/// Encodes a list of flat JSON objects as CSV the way the toolkit does (`csv.DictWriter` with the
/// first row's keys as header, CRLF line ends, Python `str()` of each value).
pub fn encode_csv(value: &Value) -> Result<Vec<u8>, ToolkitError> {
    let not_tabular = || ToolkitError::UnsupportedAccept {
        accept: "text/csv".into(),
        reason: " for this response: CSV needs a list of flat objects".into(),
        supported: "application/json".into(),
    };
    let rows: Vec<&Map<String, Value>> = match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(Value::as_object)
            .collect::<Option<_>>()
            .ok_or_else(not_tabular)?,
        Value::Object(obj) => vec![obj],
        _ => return Err(not_tabular()),
    };
    let header: Vec<&String> = rows[0].keys().collect();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![]);
    let csv_err = |e: csv::Error| ToolkitError::Internal(format!("CSV encoding failed: {e}"));
    writer
        .write_record(header.iter().map(|h| h.as_bytes()))
        .map_err(csv_err)?;
    for row in rows {
        let mut cells = Vec::with_capacity(header.len());
        for key in &header {
            cells.push(match row.get(*key) {
                None | Some(Value::Null) => String::new(),
                Some(v) => py_str(v).ok_or_else(not_tabular)?,
            });
        }
        writer.write_record(&cells).map_err(csv_err)?;
    }
    writer
        .into_inner()
        .map_err(|e| ToolkitError::Internal(format!("CSV encoding failed: {e}")))
}

/// Python's `str()` of a JSON value, as `csv.DictWriter` writes a cell: a nested value (an
/// object-detection box) as Python's `repr` of the dict or list.
fn py_str(v: &Value) -> Option<String> {
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => py_repr(v),
        scalar => py_scalar(scalar),
    })
}

/// Python's `repr()` of a JSON value (dicts and lists as Python prints them).
fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => py_repr_str(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        scalar => py_scalar(scalar),
    }
}

/// Python's `repr()` of a string: single quotes unless the text holds one and no double quote.
fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str()` of a scalar JSON value.
fn py_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => {
                let mut b = Vec::new();
                crate::json::write_py_float(&mut b, f);
                String::from_utf8(b).unwrap_or_default()
            }
            _ => n.to_string(),
        },
        Value::Null => "None".to_owned(),
        Value::Array(_) | Value::Object(_) => py_repr(v),
    }
}

/// Encodes a nested numeric array as a NumPy `.npy` file (format 1.0, little-endian float64, C
/// order), which is what `np.save(np.array(result))` writes for the toolkit's float lists.
pub fn encode_npy(value: &Value) -> Result<Vec<u8>, ToolkitError> {
    let not_numeric = || ToolkitError::UnsupportedAccept {
        accept: "application/x-npy".into(),
        reason: " for this response: NumPy output needs a rectangular numeric array".into(),
        supported: "application/json".into(),
    };
    // shape from the first element at each depth
    let mut shape = Vec::new();
    let mut cur = value;
    while let Value::Array(items) = cur {
        shape.push(items.len());
        match items.first() {
            Some(first) => cur = first,
            None => break,
        }
    }
    let count: usize = shape.iter().product();
    let mut data = Vec::with_capacity(count * 8);
    fn walk(v: &Value, depth: usize, shape: &[usize], data: &mut Vec<u8>) -> bool {
        match v {
            Value::Array(items) => {
                depth < shape.len()
                    && items.len() == shape[depth]
                    && items.iter().all(|i| walk(i, depth + 1, shape, data))
            }
            Value::Number(n) if depth == shape.len() => match n.as_f64() {
                Some(f) => {
                    data.extend_from_slice(&f.to_le_bytes());
                    true
                }
                None => false,
            },
            _ => false,
        }
    }
    if !walk(value, 0, &shape, &mut data) {
        return Err(not_numeric());
    }
    let shape_str = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_str}, }}");
    // magic(6) + version(2) + header-len(2) + header + '\n' is a multiple of 64
    let total = 10 + header.len() + 1;
    header.extend(std::iter::repeat_n(' ', (64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(
        &u16::try_from(header.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_type_is_parsed_as_a_media_type() {
        assert_eq!(
            request_format(Some("application/json")).unwrap(),
            RequestFormat::Json
        );
        assert_eq!(
            request_format(Some("Application/JSON")).unwrap(),
            RequestFormat::Json
        );
        assert_eq!(
            request_format(Some("application/json; charset=UTF-8")).unwrap(),
            RequestFormat::Json
        );
        assert_eq!(
            request_format(Some("text/csv")).unwrap(),
            RequestFormat::Csv
        );
        for bad in [
            "text/plain",
            "application/octet-stream",
            "application/json; charset=latin-1",
        ] {
            let e = request_format(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 415, "{bad}");
            assert!(e.to_string().contains("application/json"), "{e}");
        }
        assert_eq!(request_format(None).unwrap_err().status(), 415);
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(response_format(None).unwrap(), ResponseFormat::Json);
        assert_eq!(response_format(Some("*/*")).unwrap(), ResponseFormat::Json);
        assert_eq!(
            response_format(Some("text/csv")).unwrap(),
            ResponseFormat::Csv
        );
        assert_eq!(
            response_format(Some("application/x-npy")).unwrap(),
            ResponseFormat::Npy
        );
        assert_eq!(
            response_format(Some("application/json, text/plain;q=0.9")).unwrap(),
            ResponseFormat::Json
        );
        assert_eq!(
            response_format(Some("text/csv;q=0.5, application/json")).unwrap(),
            ResponseFormat::Json
        );
        assert_eq!(
            response_format(Some("application/xml"))
                .unwrap_err()
                .status(),
            406
        );
        assert_eq!(
            response_format(Some("application/json;q=0"))
                .unwrap_err()
                .status(),
            406
        );
    }

    #[test]
    fn several_documents_are_found_even_pretty_printed() {
        let body = b"{\"inputs\": \"a\"}\n{\n  \"inputs\": [1,\n 2]\n}  \n";
        let ranges = documents(body).unwrap();
        assert_eq!(ranges.len(), 2);
        assert_eq!(&body[ranges[0].clone()], b"{\"inputs\": \"a\"}");
        assert!(std::str::from_utf8(&body[ranges[1].clone()])
            .unwrap()
            .starts_with('{'));
        assert!(documents(b"{\"inputs\": 1}").is_none());
        assert!(documents(b"{\"inputs\": 1} x").is_none());
    }

    #[test]
    fn raw_parameters_come_from_the_query_and_the_custom_attributes() {
        let p = raw_parameters(
            Some("candidate_labels=cat,dog; top_k=2;trace;x=%22a%20b%22"),
            Some("top_k=5&hypothesis_template=a+photo+of+%7B%7D&threshold=0.3"),
        )
        .unwrap();
        assert_eq!(p["candidate_labels"], json!("cat,dog"));
        // the custom attributes win over the query
        assert_eq!(p["top_k"], json!(2));
        assert_eq!(p["hypothesis_template"], json!("a photo of {}"));
        assert_eq!(p["threshold"], json!(0.3));
        // percent-encoded JSON text
        assert_eq!(p["x"], json!("a b"));
        assert!(!p.contains_key("trace"));
        assert_eq!(
            raw_parameters(None, Some("labels=[\"a\",\"b\"]")).unwrap()["labels"],
            json!(["a", "b"])
        );
        assert!(raw_parameters(Some("nothing here"), Some("")).is_none());
        assert!(raw_parameters(None, None).is_none());
    }

    #[test]
    fn csv_with_inputs_column() {
        let v = decode(RequestFormat::Csv, b"inputs\nI love this\nI hate this\n").unwrap();
        assert_eq!(v, json!({"inputs": ["I love this", "I hate this"]}));
        let v = decode(RequestFormat::Csv, b"question,context\nwho?,me\n").unwrap();
        assert_eq!(
            v,
            json!({"inputs": [{"question": "who?", "context": "me"}]})
        );
        let e = decode(RequestFormat::Csv, b"I love this\nI hate this\n").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("Header"), "{e}");
    }

    #[test]
    fn json_errors_are_400_with_a_hint() {
        let e = decode(RequestFormat::Json, b"{\"inputs\": \"unterminated").unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("not valid JSON"));
        assert_eq!(
            decode(RequestFormat::Json, b"  ").unwrap_err().status(),
            400
        );
    }

    #[test]
    fn csv_output_like_dictwriter() {
        let v = json!([{"label": "a,b", "score": 0.5}, {"label": "c", "score": 1e-05}]);
        let out = String::from_utf8(encode_csv(&v).unwrap()).unwrap();
        assert_eq!(out, "label,score\r\n\"a,b\",0.5\r\nc,1e-05\r\n");
        assert_eq!(encode_csv(&json!([[1.0]])).unwrap_err().status(), 406);
        assert_eq!(encode_csv(&json!([])).unwrap_err().status(), 406);
        // a nested cell is Python's repr of the dict, as the toolkit's DictWriter writes it
        let v = json!([{"score": 0.5, "box": {"xmin": 1, "ymin": 2}, "tags": ["it's", "a\"b", null, true]}]);
        let out = String::from_utf8(encode_csv(&v).unwrap()).unwrap();
        assert_eq!(
            out,
            "score,box,tags\r\n0.5,\"{'xmin': 1, 'ymin': 2}\",\"[\"\"it's\"\", 'a\"\"b', None, True]\"\r\n"
        );
    }

    #[test]
    fn npy_header_and_data() {
        let out = encode_npy(&json!([[1.0, 2.0], [3.0, 4.5]])).unwrap();
        assert_eq!(&out[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([out[8], out[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&out[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 2)"), "{header}");
        assert_eq!(&out[10 + hlen..10 + hlen + 8], &1.0f64.to_le_bytes());
        assert_eq!(out.len(), 10 + hlen + 32);
        assert_eq!(
            encode_npy(&json!([[1.0], [2.0, 3.0]]))
                .unwrap_err()
                .status(),
            406
        );
        assert_eq!(encode_npy(&json!([{"a": 1}])).unwrap_err().status(), 406);
    }
}
