//! The function's configuration: its routes (`HF_ROUTES`, `HF_ROUTES_FILE`, or
//! `SAGEMAKER_ENDPOINT_NAME` + `HF_TASK`) and the proxy's own settings, read once at start-up.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use hf_inference_core::{schema, Task, TaskSpec, ToolkitError};
use hf_inference_host::Location;
use serde::Deserialize;

/// A configuration the function cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A route or the routing table is not valid.
    #[error("{0}")]
    Routes(String),
    /// `HF_ROUTES_FILE` could not be read.
    #[error("HF_ROUTES_FILE {path}: {source}")]
    RoutesFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The model of the in-process routes could not be loaded.
    #[error("the local model: {0}")]
    Model(#[from] ToolkitError),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Routes(message.into())
}

/// The proxy's settings (every one also an environment variable).
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// The routing table as JSON: `{"name": {"endpoint": "...", "task": "...",
    /// "target_variant"?, "local"?, "validate_response"?, "async_input_path"?,
    /// "async_output_path"?, "async_failure_path"?}}`; `POST /{name}/invocations`.
    #[arg(long, env = "HF_ROUTES")]
    pub routes: Option<String>,

    /// A file holding the routing table (when HF_ROUTES is unset).
    #[arg(long, env = "HF_ROUTES_FILE")]
    pub routes_file: Option<PathBuf>,

    /// The endpoint behind `POST /invocations` (with HF_TASK).
    #[arg(long, env = "SAGEMAKER_ENDPOINT_NAME")]
    pub endpoint_name: Option<String>,

    /// The task whose schema `POST /invocations` requests are checked against.
    #[arg(long, env = "HF_TASK")]
    pub endpoint_task: Option<String>,

    /// The production variant `POST /invocations` goes to (default: SageMaker's weights).
    #[arg(long, env = "SAGEMAKER_TARGET_VARIANT")]
    pub target_variant: Option<String>,

    /// Seconds one call to SageMaker may take (and, by default, one in-process request).
    #[arg(long, env = "HF_PROXY_TIMEOUT_SECONDS", default_value_t = 60)]
    pub proxy_timeout: u64,

    /// Stream responses as they are written (a function URL with InvokeMode RESPONSE_STREAM);
    /// otherwise bodies are buffered.
    #[arg(long, env = "HF_PROXY_RESPONSE_STREAM", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub response_stream: bool,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ProxyArgs {
    /// The routes: `HF_ROUTES` (or `HF_ROUTES_FILE`) plus the single route of
    /// `SAGEMAKER_ENDPOINT_NAME` + `HF_TASK` at `POST /invocations`.
    pub fn routes(&self) -> Result<Routes, ConfigError> {
        let json = match (non_empty(&self.routes), &self.routes_file) {
            (Some(j), _) => Some(j.to_owned()),
            (None, Some(path)) if !path.as_os_str().is_empty() => Some(
                std::fs::read_to_string(path).map_err(|source| ConfigError::RoutesFile {
                    path: path.clone(),
                    source,
                })?,
            ),
            _ => None,
        };
        let mut routes = match json {
            Some(j) => Routes::parse(&j)?,
            None => Routes::default(),
        };
        if let Some(endpoint) = non_empty(&self.endpoint_name) {
            let task = non_empty(&self.endpoint_task).ok_or_else(|| {
                invalid("SAGEMAKER_ENDPOINT_NAME needs HF_TASK (the task whose schema requests are checked against)")
            })?;
            routes.0.insert(
                String::new(),
                Route {
                    task: task_of(task)?,
                    target: Target::Endpoint {
                        name: endpoint.to_owned(),
                        variant: non_empty(&self.target_variant).map(str::to_owned),
                    },
                    validate_response: false,
                },
            );
        }
        if routes.0.is_empty() {
            return Err(invalid(
                "no routes: set SAGEMAKER_ENDPOINT_NAME and HF_TASK, or HF_ROUTES",
            ));
        }
        Ok(routes)
    }
}

/// Where a route sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SageMaker endpoint (and optionally one of its variants).
    Endpoint {
        /// The endpoint's name.
        name: String,
        /// `TargetVariant`; `None`: SageMaker's weights (a client's header may choose).
        variant: Option<String>,
    },
    /// The model packaged with the function (`HF_MODEL_DIR`, or `HF_MODEL_ID`), run in-process
    /// (cargo feature `local`).
    Local,
    /// An asynchronous SageMaker endpoint: the body is written under `input`, sent with
    /// `InvokeEndpointAsync` (202), and its result read back from `output` or `failure` (the
    /// endpoint's S3OutputPath / S3FailurePath) by `GET .../results`.
    AsyncEndpoint {
        /// The endpoint's name.
        name: String,
        /// Where request bodies are written.
        input: Location,
        /// The endpoint's output prefix.
        output: Location,
        /// The endpoint's failure prefix.
        failure: Location,
    },
}

/// One configured route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The task whose schema requests are validated against.
    pub task: Task,
    /// Where they go.
    pub target: Target,
    /// Also validate successful JSON responses against the response schema (502 if they fail).
    pub validate_response: bool,
}

/// A route as `HF_ROUTES` writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    #[serde(default)]
    endpoint: Option<String>,
    task: String,
    #[serde(default)]
    target_variant: Option<String>,
    #[serde(default)]
    local: bool,
    #[serde(default)]
    validate_response: bool,
    #[serde(default)]
    async_input_path: Option<String>,
    #[serde(default)]
    async_output_path: Option<String>,
    #[serde(default)]
    async_failure_path: Option<String>,
}

/// The routing table: `""` is `POST /invocations`, any other name `POST /{name}/invocations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(pub BTreeMap<String, Route>);

fn task_of(name: &str) -> Result<Task, ConfigError> {
    let spec: TaskSpec = name
        .parse()
        .map_err(|e: ToolkitError| invalid(e.to_string()))?;
    schema::ensure_available(spec.task).map_err(|_| {
        invalid(format!(
            "task {name:?} has no JSON Schema in this build; tasks with schemas: {}",
            Task::implemented_list()
        ))
    })?;
    Ok(spec.task)
}

impl RouteSpec {
    fn target(self, name: &str) -> Result<Target, ConfigError> {
        let variant = match self.target_variant.as_deref().map(str::trim) {
            Some("") => return Err(invalid(format!("route {name:?}: target_variant is empty"))),
            v => v.map(str::to_owned),
        };
        let paths = (
            self.async_input_path.as_deref(),
            self.async_output_path.as_deref(),
            self.async_failure_path.as_deref(),
        );
        match (self.local, self.endpoint) {
            (false, Some(e)) if paths != (None, None, None) => {
                let (Some(i), Some(o), Some(f)) = paths else {
                    return Err(invalid(format!(
                        "route {name:?}: an asynchronous route needs async_input_path, async_output_path and async_failure_path"
                    )));
                };
                if variant.is_some() {
                    return Err(invalid(format!(
                        "route {name:?}: InvokeEndpointAsync takes no target_variant"
                    )));
                }
                let s3 = |what: &str, v: &str| match v.parse::<Location>() {
                    Ok(l @ Location::S3 { .. }) => Ok(l),
                    _ => Err(invalid(format!(
                        "route {name:?}: {what} must be an s3:// prefix"
                    ))),
                };
                Ok(Target::AsyncEndpoint {
                    name: e.trim().to_owned(),
                    input: s3("async_input_path", i)?,
                    output: s3("async_output_path", o)?,
                    failure: s3("async_failure_path", f)?,
                })
            }
            (true, None) if variant.is_none() => Ok(Target::Local),
            (false, Some(e)) if !e.trim().is_empty() => Ok(Target::Endpoint {
                name: e.trim().to_owned(),
                variant,
            }),
            _ => Err(invalid(format!(
                "route {name:?}: give either \"endpoint\" or \"local\": true"
            ))),
        }
    }
}

impl Routes {
    /// Parses `{"name": {"endpoint": "...", "task": "...", "target_variant"?, "local"?,
    /// "validate_response"?}, ...}`.
    pub fn parse(json: &str) -> Result<Self, ConfigError> {
        let specs: BTreeMap<String, RouteSpec> = serde_json::from_str(json)
            .map_err(|e| invalid(format!("HF_ROUTES is not valid: {e}")))?;
        let mut routes = BTreeMap::new();
        for (name, spec) in specs {
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid_name {
                return Err(invalid(format!(
                    "route name {name:?}: use letters, digits, '-', '_' or '.'"
                )));
            }
            let task = task_of(&spec.task)?;
            let validate_response = spec.validate_response;
            let target = spec.target(&name)?;
            routes.insert(
                name,
                Route {
                    task,
                    target,
                    validate_response,
                },
            );
        }
        let local: HashSet<Task> = routes
            .values()
            .filter(|r| r.target == Target::Local)
            .map(|r| r.task)
            .collect();
        if local.len() > 1 {
            return Err(invalid(
                "local routes run the one model packaged with the function: give them one task",
            ));
        }
        Ok(Routes(routes))
    }

    /// Whether any route runs the model in-process.
    pub fn needs_model(&self) -> bool {
        self.0.values().any(|r| r.target == Target::Local)
    }

    /// The task of the in-process routes, if any.
    pub fn local_task(&self) -> Option<Task> {
        self.0
            .values()
            .find(|r| r.target == Target::Local)
            .map(|r| r.task)
    }

    /// Whether any route calls SageMaker (synchronous or asynchronous endpoints).
    pub fn needs_client(&self) -> bool {
        self.0.values().any(|r| r.target != Target::Local)
    }
}
