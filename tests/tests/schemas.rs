//! The request schemas (`schemas/<task>/request.schema.json`, the wire contract) and the Rust
//! request types the pipelines deserialise into cannot drift apart: every golden request that
//! passes its task's schema deserialises into the task's type.

use std::collections::BTreeMap;

use hf_inference_core::pipeline::question_answering::normalize_request;
use hf_inference_core::types::feature_extraction::FeatureExtractionRequest;
use hf_inference_core::types::fill_mask::FillMaskRequest;
use hf_inference_core::types::image_classification::ImageClassificationRequest;
use hf_inference_core::types::image_segmentation::ImageSegmentationRequest;
use hf_inference_core::types::object_detection::ObjectDetectionRequest;
use hf_inference_core::types::question_answering::QuestionAnsweringRequest;
use hf_inference_core::types::table_question_answering::TableQuestionAnsweringRequest;
use hf_inference_core::types::text_classification::TextClassificationRequest;
use hf_inference_core::types::token_classification::TokenClassificationRequest;
use hf_inference_core::types::zero_shot_classification::ZeroShotClassificationRequest;
use hf_inference_core::types::zero_shot_image_classification::ZeroShotImageClassificationRequest;
use hf_inference_core::{schema, Task, TaskSpec};
use hf_inference_tests::{goldens, FIXTURES, MINILM_GOLDEN};
use serde_json::Value;

/// Deserialises a schema-valid document as the pipelines do.
fn typed<T: serde::de::DeserializeOwned>(doc: Value) -> Result<(), String> {
    hf_inference_core::types::from_value::<T>(doc)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Question answering's request, after the toolkit's form without `inputs` is moved under it (as
/// the pipeline does before deserialising).
fn question_answering(doc: Value) -> Result<(), String> {
    typed::<QuestionAnsweringRequest>(normalize_request(doc))
}

/// Table question answering's request, after the form without `inputs` is moved under it.
fn table_question_answering(doc: Value) -> Result<(), String> {
    typed::<TableQuestionAnsweringRequest>(
        hf_inference_core::types::table_question_answering::normalize_request(doc),
    )
}

/// What deserialises a document into `task`'s request type; `None` for the generation tasks.
///
/// The generation tasks have no typed request: their pipeline reads the parameters from the JSON
/// document itself. Checking them would mean loading each fixture model and calling
/// `pipeline.run_json(doc)`, which runs the generation too (too slow here; the parity test does
/// it, through the router), so they are skipped.
fn request_type(task: Task) -> Option<fn(Value) -> Result<(), String>> {
    match task {
        Task::FeatureExtraction => Some(typed::<FeatureExtractionRequest>),
        Task::TextClassification => Some(typed::<TextClassificationRequest>),
        Task::FillMask => Some(typed::<FillMaskRequest>),
        Task::ZeroShotClassification => Some(typed::<ZeroShotClassificationRequest>),
        Task::TokenClassification => Some(typed::<TokenClassificationRequest>),
        Task::QuestionAnswering => Some(question_answering),
        Task::TableQuestionAnswering => Some(table_question_answering),
        Task::ImageClassification => Some(typed::<ImageClassificationRequest>),
        Task::ImageSegmentation => Some(typed::<ImageSegmentationRequest>),
        Task::ObjectDetection => Some(typed::<ObjectDetectionRequest>),
        Task::ZeroShotImageClassification => Some(typed::<ZeroShotImageClassificationRequest>),
        Task::TextGeneration
        | Task::Text2TextGeneration
        | Task::Summarization
        | Task::Translation
        | Task::Conversational => None,
        other => panic!("a golden file of {other}: name its request type in request_type()"),
    }
}

#[test]
fn schema_valid_golden_requests_deserialise_into_their_types() {
    let names = FIXTURES.iter().map(|f| f.golden).chain([MINILM_GOLDEN]);
    // per task: (deserialised, refused by the schema)
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut skipped_generation = 0;
    let mut failures = Vec::new();
    for name in names {
        for g in goldens(name) {
            let Some(doc) = g.request_document() else {
                continue;
            };
            let task = g
                .hf_task
                .parse::<TaskSpec>()
                .unwrap_or_else(|e| panic!("{name} {}: {e}", g.case))
                .task;
            let Some(deserialise) = request_type(task) else {
                skipped_generation += 1;
                continue;
            };
            let entry = counts.entry(task.id()).or_default();
            if schema::validate_request(task, &doc).is_err() {
                entry.1 += 1;
                continue;
            }
            match deserialise(doc) {
                Ok(()) => entry.0 += 1,
                Err(e) => failures.push(format!(
                    "{name} {}: valid against schemas/{task}/request.schema.json but not a {task} request: {e}",
                    g.case
                )),
            }
        }
    }
    eprintln!("(deserialised, refused by the schema) per task: {counts:?}; {skipped_generation} generation requests skipped");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // every task with a typed request is exercised, and by more than a handful of requests
    for task in [
        Task::FeatureExtraction,
        Task::TextClassification,
        Task::FillMask,
        Task::ZeroShotClassification,
        Task::TokenClassification,
        Task::QuestionAnswering,
    ] {
        let (checked, refused) = counts.get(task.id()).copied().unwrap_or_default();
        assert!(
            checked >= 20,
            "{task}: only {checked} requests deserialised"
        );
        assert!(refused >= 1, "{task}: the schema refused no golden request");
    }
    // image tasks: most of their goldens are raw image bodies; the JSON ones are few
    for task in [
        Task::ImageClassification,
        Task::ImageSegmentation,
        Task::ObjectDetection,
        Task::ZeroShotImageClassification,
    ] {
        let (checked, refused) = counts.get(task.id()).copied().unwrap_or_default();
        assert!(
            checked >= 3 && refused >= 1,
            "{task}: {checked} deserialised, {refused} refused"
        );
    }
    let total: usize = counts.values().map(|(checked, _)| checked).sum();
    assert!(total >= 400, "only {total} requests deserialised");
}

/// Every property schema under `node`, with its name and whether its object requires it, skipping what only narrows a property
/// documented elsewhere: an `if` (a condition) and the `then`/`else` properties that its object's
/// own `properties` already declare (the sampling bounds of the generation parameters).
fn properties<'a>(node: &'a Value, out: &mut Vec<(String, &'a Value, bool)>) {
    match node {
        Value::Array(items) => items.iter().for_each(|n| properties(n, out)),
        Value::Object(map) => {
            let own = map.get("properties").and_then(Value::as_object);
            let required = |name: &str| {
                map.get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|r| r.iter().any(|n| n == name))
            };
            for (key, sub) in map {
                match key.as_str() {
                    "if" | "examples" | "default" | "const" | "enum" => {}
                    "properties" => {
                        for (name, prop) in sub.as_object().into_iter().flatten() {
                            out.push((name.clone(), prop, required(name)));
                            properties(prop, out);
                        }
                    }
                    "then" | "else" => {
                        for (name, prop) in sub
                            .get("properties")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flatten()
                        {
                            if !own.is_some_and(|o| o.contains_key(name)) {
                                out.push((name.clone(), prop, required(name)));
                            }
                            properties(prop, out);
                        }
                    }
                    _ => properties(sub, out),
                }
            }
        }
        _ => {}
    }
}

/// The request schemas and the shared generation parameters, by file name.
fn request_schemas() -> Vec<(String, Value)> {
    let mut all: Vec<(String, Value)> = schema::SOURCES
        .iter()
        .map(|s| {
            (
                format!("schemas/{}/request.schema.json", s.task),
                serde_json::from_str(s.request).unwrap(),
            )
        })
        .collect();
    all.push((
        "schemas/generation/parameters.schema.json".into(),
        serde_json::from_str(schema::SHARED[0].1).unwrap(),
    ));
    all
}

/// Parameters whose default is the model's (no value the schema could state) or that a request
/// must give; every other parameter states its `default`.
const NO_DEFAULT: &[&str] = &[
    "candidate_labels", // required (zero-shot-classification checks it in the pipeline)
    "max_length",       // the model's (tokenizer's model_max_length)
    "function_to_apply", // the model's problem_type and label count
    "targets",          // absent: the whole vocabulary; null is refused by the pipeline
];

#[test]
fn every_request_property_is_documented_and_its_examples_and_default_validate() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, root) in request_schemas() {
        let mut props = Vec::new();
        properties(&root, &mut props);
        for (name, prop, required) in props {
            checked += 1;
            let at = format!("{file} `{name}`");
            for key in ["title", "description"] {
                if prop
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    problems.push(format!("{at}: no {key}"));
                }
            }
            // the property on its own, with the file's $defs so that its references resolve
            let mut alone = prop.clone();
            if let (Some(o), Some(defs)) = (alone.as_object_mut(), root.get("$defs")) {
                o.insert("$defs".into(), defs.clone());
            }
            let v = match schema::validator(&alone) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("{at}: does not compile alone: {e}"));
                    continue;
                }
            };
            match prop.get("examples").and_then(Value::as_array) {
                Some(ex) if !ex.is_empty() => {
                    for e in ex {
                        if !v.is_valid(e) {
                            problems.push(format!("{at}: example {e} is invalid"));
                        }
                    }
                }
                _ => problems.push(format!("{at}: no examples")),
            }
            match prop.get("default") {
                Some(d) if !v.is_valid(d) => problems.push(format!("{at}: default {d} is invalid")),
                Some(_) => {}
                None => {
                    let envelope = [
                        "inputs",
                        "text",
                        "text_pair",
                        "question",
                        "context",
                        "query",
                        "table",
                        "past_user_inputs",
                        "generated_responses",
                        "role",
                        "content",
                    ];
                    if !required
                        && !envelope.contains(&name.as_str())
                        && !NO_DEFAULT.contains(&name.as_str())
                    {
                        problems.push(format!("{at}: no default"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 150, "only {checked} properties found");
}

/// The response schemas document their answers as the request schemas do their parameters: every
/// property with a title, a description and examples that validate against it (no defaults: an
/// answer has no optional parts).
#[test]
fn every_response_property_is_documented_and_its_examples_validate() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for s in schema::SOURCES {
        let file = format!("schemas/{}/response.schema.json", s.task);
        let root: Value = serde_json::from_str(s.response).unwrap();
        let mut props = Vec::new();
        properties(&root, &mut props);
        for (name, prop, _) in props {
            checked += 1;
            let at = format!("{file} `{name}`");
            for key in ["title", "description"] {
                if prop
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    problems.push(format!("{at}: no {key}"));
                }
            }
            let mut alone = prop.clone();
            if let (Some(o), Some(defs)) = (alone.as_object_mut(), root.get("$defs")) {
                o.insert("$defs".into(), defs.clone());
            }
            let v = match schema::validator(&alone) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("{at}: does not compile alone: {e}"));
                    continue;
                }
            };
            match prop.get("examples").and_then(Value::as_array) {
                Some(ex) if !ex.is_empty() => {
                    for e in ex.iter().filter(|e| !v.is_valid(e)) {
                        problems.push(format!("{at}: example {e} is invalid"));
                    }
                }
                _ => problems.push(format!("{at}: no examples")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // every object of every answer (feature-extraction's are arrays of numbers only)
    assert!(checked >= 45, "only {checked} response properties found");
}

/// A pattern both Python's `re` and ECMAScript (ajv, browsers) compile identically: no inline
/// flags or groups (`(?i:`, `(?P<`), no `\A`/`\Z`, no POSIX classes, no possessive quantifiers.
#[test]
fn every_pattern_is_portable_to_python_and_ecmascript() {
    fn patterns<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
        match node {
            Value::Array(items) => items.iter().for_each(|n| patterns(n, out)),
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("pattern", Value::String(p)) => out.push(p),
                        ("examples" | "default" | "const" | "enum", _) => {}
                        _ => patterns(v, out),
                    }
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    let docs: Vec<Value> = schema::SOURCES
        .iter()
        .flat_map(|s| [s.request, s.response])
        .chain(schema::SHARED.iter().map(|(_, t)| *t))
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    for d in &docs {
        patterns(d, &mut all);
    }
    assert!(all.len() >= 3, "{all:?}");
    for p in all {
        for bad in ["(?", "\\A", "\\Z", "\\z", "[[:", "*+", "++", "?+", "}+"] {
            assert!(
                !p.contains(bad),
                "pattern {p:?} uses {bad:?}, which Python's re or ECMAScript reads differently"
            );
        }
    }
}

/// The documented example requests of each task (its `inputs` example with its `parameters`
/// example) are valid and deserialise into the task's Rust type.
#[test]
fn schema_examples_make_valid_requests_of_the_rust_types() {
    let mut built = 0;
    for s in schema::SOURCES {
        let root: Value = serde_json::from_str(s.request).unwrap();
        let mut props = Vec::new();
        properties(&root, &mut props);
        let first = |name: &str| {
            props
                .iter()
                .find(|(n, p, _)| n == name && p.get("examples").is_some())
                .and_then(|(_, p, _)| p["examples"].as_array())
                .and_then(|a| a.first().cloned())
        };
        let (Some(inputs), Some(parameters)) = (first("inputs"), first("parameters")) else {
            continue; // summarization and translation are text2text-generation's schema
        };
        let doc = serde_json::json!({"inputs": inputs, "parameters": parameters});
        schema::validate_request(s.task, &doc).unwrap_or_else(|e| panic!("{}: {e}", s.task));
        if let Some(deserialise) = request_type(s.task) {
            deserialise(doc).unwrap_or_else(|e| panic!("{}: {e}", s.task));
        }
        built += 1;
    }
    assert!(built >= 12, "only {built} tasks have examples");
}

/// The generation parameters' bounds in the schema are the server's: for edge values of every
/// bounded parameter, with and without sampling, the schema accepts exactly what
/// `GenerationConfig::update` (the server's check) accepts.
#[test]
fn generation_schema_bounds_agree_with_the_server() {
    use hf_inference_core::generate::config::GenerationConfig;
    use serde_json::json;
    let edges = [
        json!(-1),
        json!(0),
        json!(0.5),
        json!(1),
        json!(1.5),
        json!(2),
        json!(32),
        json!(33),
        json!(null),
    ];
    let names = [
        "max_new_tokens",
        "max_length",
        "num_beams",
        "num_return_sequences",
        "top_k",
        "temperature",
        "top_p",
        "typical_p",
        "min_p",
        "repetition_penalty",
        "encoder_repetition_penalty",
        "seed",
        "bos_token_id",
        "decoder_start_token_id",
    ];
    let mut disagree = Vec::new();
    let mut compared = 0;
    for name in names {
        for v in &edges {
            for sampling in [None, Some(true), Some(false)] {
                let mut params = serde_json::Map::new();
                params.insert(name.into(), v.clone());
                if let Some(s) = sampling {
                    params.insert("do_sample".into(), json!(s));
                }
                // num_return_sequences > 1 needs beams or sampling: give both room
                if name == "num_return_sequences" {
                    params.insert("num_beams".into(), json!(32));
                }
                let doc = json!({"inputs": "hi", "parameters": params});
                let schema_ok = schema::validate_request(Task::TextGeneration, &doc).is_ok();
                let server_ok = GenerationConfig::default().update(&params).is_ok();
                compared += 1;
                if schema_ok != server_ok {
                    disagree.push(format!(
                        "{params:?}: schema {}, server {}",
                        if schema_ok { "accepts" } else { "refuses" },
                        if server_ok { "accepts" } else { "refuses" }
                    ));
                }
            }
        }
    }
    assert!(compared > 300);
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

/// Refuses every retrieval: a bundle must resolve with nothing but itself.
struct Nothing;

impl jsonschema::Retrieve for Nothing {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("the bundle refers outside itself: {}", uri.as_str()).into())
    }
}

/// `core/schemas/bundle/` (written by `infra/schemas/bundle.py`, checked up to date by CI) is
/// self-contained and says what the server's schemas say about every golden request and response.
#[test]
fn the_bundle_is_self_contained_and_agrees_with_the_schemas_on_every_golden() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/schemas/bundle");
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; run python3 infra/schemas/bundle.py"));
        serde_json::from_str(&text).unwrap()
    };
    let index = read("index.json");
    let mut validators = BTreeMap::new();
    for s in schema::SOURCES {
        let entry = &index["tasks"][s.task.id()];
        let file = entry["file"]
            .as_str()
            .unwrap_or_else(|| panic!("index.json lists no {}", s.task));
        let bundle = read(file);
        let part = |pointer: &str| {
            let mut root = bundle.clone();
            root["$ref"] = Value::String(pointer.into());
            jsonschema::draft202012::options()
                .with_retriever(Nothing)
                .build(&root)
                .unwrap_or_else(|e| panic!("{file} {pointer}: {e}"))
        };
        let request = part(entry["request"].as_str().unwrap());
        let response = part(entry["response"].as_str().unwrap());
        validators.insert(s.task.id(), (request, response));
    }
    let (mut requests, mut responses, mut refused) = (0, 0, 0);
    let mut disagree = Vec::new();
    for name in FIXTURES.iter().map(|f| f.golden).chain([MINILM_GOLDEN]) {
        for g in goldens(name) {
            let Ok(spec) = g.hf_task.parse::<TaskSpec>() else {
                continue;
            };
            let Some((request, response)) = validators.get(spec.task.id()) else {
                continue;
            };
            if let Some(doc) = g.request_document() {
                let ours = schema::validate_request(spec.task, &doc).is_ok();
                requests += 1;
                refused += usize::from(!ours);
                if request.is_valid(&doc) != ours {
                    disagree.push(format!("{name} {} request", g.case));
                }
            }
            if g.path == "/invocations"
                && g.status == 200
                && g.response_content_type.as_deref() == Some("application/json")
            {
                let Ok(body) = serde_json::from_slice::<Value>(&g.response_bytes()) else {
                    continue;
                };
                responses += 1;
                if response.is_valid(&body) != schema::validate_response(spec.task, &body).is_ok() {
                    disagree.push(format!("{name} {} response", g.case));
                }
            }
        }
    }
    eprintln!("bundle: {requests} requests ({refused} refused), {responses} responses compared");
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    assert!(requests >= 500 && refused >= 20 && responses >= 50);
}

/// The packages' verdicts: (set, golden file, line) -> (Python's, JavaScript's).
type Verdicts = BTreeMap<(String, String, usize), (Option<bool>, Option<bool>)>;

/// The Python and npm packages of `sdk/`, built and installed into fresh environments by
/// `infra/sdk/check.sh` (which CI runs and whose verdicts file it names in
/// `HF_TEST_SDK_VERDICTS`), say valid or invalid exactly as the server's schemas do for every
/// golden JSON request: the repository's, and the reference toolkit's own recordings when
/// check.sh found them ($REF_ROOT/golden, absent from a clean clone). Skipped, loudly, without
/// that file.
#[test]
fn sdk_packages_agree_with_the_server_on_every_golden_request() {
    let Some(path) = std::env::var_os("HF_TEST_SDK_VERDICTS") else {
        eprintln!("warning: HF_TEST_SDK_VERDICTS unset (bash infra/sdk/check.sh writes it); the SDK packages are not compared");
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    // (set, file, line) -> (python, js); set -> its golden folder
    let mut verdicts = Verdicts::new();
    let mut folders: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let set = v["set"].as_str().unwrap_or("repository").to_owned();
        if let Some(dir) = v["dir"].as_str() {
            folders.insert(set.clone(), dir.into());
        }
        let key = (
            set,
            v["file"].as_str().unwrap().to_owned(),
            v["line"].as_u64().unwrap() as usize,
        );
        verdicts.insert(key, (v["python"].as_bool(), v["js"].as_bool()));
    }
    // the repository's goldens, every fixture's (a file the packages skipped is a disagreement)
    let repository: Vec<(String, Vec<hf_inference_tests::Golden>)> = FIXTURES
        .iter()
        .map(|f| f.golden)
        .chain([MINILM_GOLDEN])
        .map(|name| (name.to_owned(), goldens(name)))
        .collect();
    let mut disagree = Vec::new();
    let (total, server_valid) = compare_set("repository", &repository, &verdicts, &mut disagree);
    assert!(
        total >= 500 && server_valid < total,
        "{total} requests, {server_valid} valid"
    );
    // the reference toolkit's recordings, when check.sh found them: every file of the folder
    match folders.get("reference") {
        Some(dir) => {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            files.sort();
            let reference: Vec<(String, Vec<hf_inference_tests::Golden>)> = files
                .iter()
                .map(|p| {
                    let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                    let text = std::fs::read_to_string(p).unwrap();
                    let records = text
                        .lines()
                        .map(|l| {
                            serde_json::from_str(l)
                                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                        })
                        .collect();
                    (name, records)
                })
                .collect();
            let (total, _) = compare_set("reference", &reference, &verdicts, &mut disagree);
            assert!(total > 0, "{}: no JSON golden request", dir.display());
        }
        None => println!(
            "reference goldens: not in the verdicts (check.sh found no $REF_ROOT/golden); only the repository's are compared"
        ),
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

/// Compares the packages' verdicts on one set of golden files with the server's; prints the three
/// counts and returns (JSON requests, valid for the server).
fn compare_set(
    set: &str,
    files: &[(String, Vec<hf_inference_tests::Golden>)],
    verdicts: &Verdicts,
    disagree: &mut Vec<String>,
) -> (usize, usize) {
    let (mut server_valid, mut python_valid, mut js_valid, mut total) = (0, 0, 0, 0);
    for (name, records) in files {
        for (line, g) in records.iter().enumerate() {
            let json = g
                .request_content_type
                .as_deref()
                .and_then(|c| c.split(';').next())
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
            if !json || g.request_body_encoding.as_deref() == Some("elided") {
                continue;
            }
            let Some(doc) = g.request_document() else {
                continue;
            };
            let task = match g.hf_task.parse::<TaskSpec>().map(|s| s.task) {
                Ok(Task::Conversational) => Task::TextGeneration,
                Ok(t) => t,
                Err(_) => continue,
            };
            if schema::SOURCES.iter().all(|s| s.task != task) {
                continue; // a task without schemas (the packages skip it too)
            }
            let server = schema::validate_request(task, &doc).is_ok();
            let (python, js) = verdicts
                .get(&(set.to_owned(), name.clone(), line))
                .copied()
                .unwrap_or_default();
            total += 1;
            server_valid += usize::from(server);
            python_valid += usize::from(python == Some(true));
            js_valid += usize::from(js == Some(true));
            if python != Some(server) || js != Some(server) {
                disagree.push(format!(
                    "{set} {name} line {line} ({}): server {server}, python {python:?}, js {js:?}",
                    g.case
                ));
            }
        }
    }
    println!(
        "{set} goldens: {total} JSON requests valid: server {server_valid}, python {python_valid}, javascript {js_valid}"
    );
    (total, server_valid)
}
