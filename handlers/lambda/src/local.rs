//! In-process routes (cargo feature `local`): the model packaged with the function, loaded with
//! the same variables as every host (model source, limits, runtime), answering as the container
//! does.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use hf_inference_core::codec::{self, ResponseFormat};
use hf_inference_core::{InferenceService, ToolkitError};
use hf_inference_host::{load_service, LimitsArgs, ModelArgs, RuntimeArgs, RuntimeDefaults};
use hf_inference_http::answer_response;

use crate::config::{ConfigError, Routes};
use crate::error::ProxyError;
use crate::proxy::Call;

/// Where Lambda puts a model packaged with the function, when no variable says otherwise.
const LAMBDA_MODEL_DIR: &str = "/var/task/model";

/// Loads the model of the in-process routes, if any: the model variables as every host reads
/// them (HF_MODEL_DIR, HF_MODEL_ID, ...; default /var/task/model), the routes' task, the limits,
/// and the runtime (default two threads, 16 queued, the proxy's timeout).
pub(crate) async fn load(
    routes: &Routes,
    model: &ModelArgs,
    limits: &LimitsArgs,
    runtime: &RuntimeArgs,
    timeout: Duration,
) -> Result<Option<InferenceService>, ConfigError> {
    let Some(task) = routes.local_task() else {
        return Ok(None);
    };
    let mut model = model.clone().with_default_dir(LAMBDA_MODEL_DIR);
    model.task = Some(task.id().to_owned());
    let load = model.load_options(limits)?;
    let threads = runtime.num_threads;
    let runtime = runtime.options(RuntimeDefaults {
        workers: 2,
        queue_capacity: 16,
        timeout_secs: timeout.as_secs(),
    });
    hf_inference_host::configure_threads(threads);
    let service = tokio::task::spawn_blocking(move || load_service(&load, runtime))
        .await
        .map_err(|e| ToolkitError::Internal(format!("the model loader stopped: {e}")))??;
    Ok(Some(service))
}

/// Runs a checked request on the local model.
pub(crate) async fn invoke(local: Option<&InferenceService>, call: Call) -> Response {
    let Some(service) = local else {
        return ProxyError::from(ToolkitError::Internal(
            "the local model is not loaded".into(),
        ))
        .into_response();
    };
    // negotiated before the body was read: this cannot fail here
    let response_format =
        codec::response_format_for(call.format, call.accept()).unwrap_or(ResponseFormat::Json);
    let raw_parameters = match call.format {
        codec::RequestFormat::Binary(_) => {
            codec::raw_parameters(call.header(codec::CUSTOM_ATTRIBUTES), None)
        }
        _ => None,
    };
    match service
        .invoke_body_with(call.format, response_format, call.body, raw_parameters)
        .await
    {
        Ok(answer) => answer_response(answer),
        Err(e) => ProxyError::from(e).into_response(),
    }
}
