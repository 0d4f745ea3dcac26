//! The model a host serves, its limits and its runtime, from the environment (cargo feature
//! `engine`), and the one function that turns them into a ready [`InferenceService`].

use std::path::PathBuf;
use std::time::Duration;

use hf_inference_core::hub::{HubModel, HubOptions, Secret};
use hf_inference_core::model::ModelSource;
use hf_inference_core::{
    load_pipeline, InferenceService, LoadOptions, Runtime, RuntimeOptions, TaskSpec, ToolkitError,
};

/// SageMaker's base directory when `SAGEMAKER_BASE_DIR` is unset.
const DEFAULT_BASE_DIR: &str = "/opt/ml";

/// Where the model comes from and which task it serves: the toolkit's model variables, the same
/// in every host that loads a model.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Where the model runs: auto (CUDA where the build, a GPU and the model family allow it,
    /// else the CPU), cpu, cuda, or neuron (refused at start until a backend exists; see
    /// docs/neuron.md).
    #[arg(long, env = "HF_DEVICE", default_value = "auto")]
    pub device: String,

    /// The pipeline task (text-classification, sentiment-analysis, feature-extraction, ...).
    /// Unset: inferred from config.json `architectures`.
    #[arg(long, env = "HF_TASK")]
    pub task: Option<String>,

    /// The model directory. Default: $SAGEMAKER_BASE_DIR/model.
    #[arg(long, env = "HF_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,

    /// SageMaker's base directory (default /opt/ml); the model is read from its `model`
    /// subdirectory.
    #[arg(long, env = "SAGEMAKER_BASE_DIR")]
    pub base_dir: Option<PathBuf>,

    /// A Hugging Face Hub model id (`org/name`) to download at start-up when no model directory
    /// is given (HF_MODEL_DIR).
    #[arg(long, env = "HF_MODEL_ID")]
    pub model_id: Option<String>,

    /// The Hub revision: a branch, tag or commit.
    #[arg(long, env = "HF_MODEL_REVISION", default_value = "main")]
    pub model_revision: String,

    /// A Hub token for private and gated models (sent to the Hub only; never logged).
    #[arg(long, env = "HF_API_TOKEN", hide_env_values = true, value_parser = secret)]
    pub api_token: Option<Secret>,

    /// Read when HF_API_TOKEN is unset, as huggingface_hub does.
    #[arg(long, env = "HF_TOKEN", hide_env_values = true, value_parser = secret)]
    pub hf_token: Option<Secret>,

    /// The Hub endpoint.
    #[arg(long, env = "HF_ENDPOINT", default_value = HubOptions::DEFAULT_ENDPOINT)]
    pub hf_endpoint: String,

    /// The Hugging Face home; the cache is $HF_HOME/hub (default ~/.cache/huggingface/hub).
    #[arg(long, env = "HF_HOME")]
    pub hf_home: Option<PathBuf>,

    /// The Hub cache directory (overrides $HF_HOME/hub).
    #[arg(long, env = "HF_HUB_CACHE")]
    pub hf_hub_cache: Option<PathBuf>,

    /// Use only the cache, never the network (1/true/yes).
    #[arg(long, env = "HF_HUB_OFFLINE", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub hub_offline: bool,

    /// The host's own model directory when no variable names one (see [`Self::with_default_dir`]).
    #[arg(skip)]
    default_dir: Option<PathBuf>,
}

fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

impl ModelArgs {
    /// Uses `dir` when neither HF_MODEL_DIR, SAGEMAKER_BASE_DIR nor HF_MODEL_ID is given: a host
    /// whose platform puts the model elsewhere than SageMaker does (Lambda: `/var/task/model`).
    pub fn with_default_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.default_dir = Some(dir.into());
        self
    }

    /// The model directory in use: HF_MODEL_DIR, else $SAGEMAKER_BASE_DIR/model, else the host's
    /// default, else /opt/ml/model.
    pub fn model_dir(&self) -> PathBuf {
        if let Some(d) = &self.model_dir {
            return d.clone();
        }
        if let Some(b) = &self.base_dir {
            return b.join("model");
        }
        self.default_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BASE_DIR).join("model"))
    }

    /// Where the model comes from: HF_MODEL_DIR, else HF_MODEL_ID, else the model directory.
    pub fn source(&self) -> ModelSource {
        match (&self.model_dir, &self.model_id) {
            (None, Some(id)) if !id.trim().is_empty() => ModelSource::Hub(HubModel {
                id: id.trim().to_owned(),
                revision: self.model_revision.clone(),
                options: HubOptions {
                    endpoint: self.hf_endpoint.clone(),
                    token: self.api_token.clone().or_else(|| self.hf_token.clone()),
                    cache_dir: HubOptions::default_cache_dir(
                        self.hf_hub_cache.clone(),
                        self.hf_home.clone(),
                    ),
                    offline: self.hub_offline,
                    retries: 5,
                },
            }),
            _ => ModelSource::LocalDir(self.model_dir()),
        }
    }

    /// Where the model is, for logs and `/models`: `endpoint/id@revision` or the directory.
    pub fn location(&self) -> String {
        match self.source() {
            ModelSource::Hub(h) => format!("{}/{}@{}", h.options.endpoint, h.id, h.revision),
            ModelSource::LocalDir(d) => d.display().to_string(),
        }
    }

    /// Downloads the Hub model (HF_MODEL_ID) into the cache and returns its directory: bakes a
    /// model into an image at build time. Blocks; fails without HF_MODEL_ID or with HF_MODEL_DIR.
    pub fn download(&self) -> Result<PathBuf, ToolkitError> {
        match self.source() {
            ModelSource::Hub(model) => model.fetch(),
            ModelSource::LocalDir(_) => Err(ToolkitError::Config(
                "downloading needs HF_MODEL_ID (and no HF_MODEL_DIR)".into(),
            )),
        }
    }

    /// The task given (HF_TASK), checked to be served by this build; `None` when unset.
    pub fn task_spec(&self) -> Result<Option<TaskSpec>, ToolkitError> {
        match &self.task {
            Some(t) if !t.trim().is_empty() => {
                let spec: TaskSpec = t.parse()?;
                spec.ensure_implemented()?;
                Ok(Some(spec))
            }
            _ => Ok(None),
        }
    }

    /// Refuses a model directory that holds a `code/` folder. The Python toolkit runs
    /// `code/inference.py` (its `model_fn`, `input_fn`, `predict_fn`, `output_fn`,
    /// `transform_fn`) and installs `code/requirements.txt`; this server runs no Python, and
    /// serving the model with the built-in pipeline instead would answer something other than
    /// what the code says, so it stops at start with the reason. SageMaker extracts
    /// `model.tar.gz` into the model directory even when HF_MODEL_ID names the model, so the
    /// directory is checked whatever the source.
    pub fn refuse_custom_code(&self) -> Result<(), ToolkitError> {
        let code = self.model_dir().join("code");
        if code.is_dir() {
            return Err(ToolkitError::Config(format!(
                "{} is custom inference code (code/inference.py, code/requirements.txt), which \
                 this server does not run: serving the model without it would not answer what \
                 the code says. Remove code/ from model.tar.gz to serve the model with its \
                 task's built-in pipeline (docs/deploy.md, \"model.tar.gz\")",
                code.display()
            )));
        }
        Ok(())
    }

    /// The load options: the task, the model source and `limits`; refuses custom code
    /// ([`Self::refuse_custom_code`]).
    pub fn load_options(&self, limits: &LimitsArgs) -> Result<LoadOptions, ToolkitError> {
        self.refuse_custom_code()?;
        let mut opts = LoadOptions::local(self.model_dir(), self.task_spec()?);
        opts.source = self.source();
        opts.device = self.device.parse()?;
        limits.apply(&mut opts);
        Ok(opts)
    }
}

/// The per-request limits, the same in every host that runs a model.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitsArgs {
    /// The most tokens one request may carry, all inputs together; more get 400.
    #[arg(long, env = "HF_MAX_REQUEST_TOKENS", default_value_t = 16_384)]
    pub max_request_tokens: usize,

    /// The most sequences run through the model in one forward pass (generation: at most four
    /// times as many sequences share one decoding step).
    #[arg(long, env = "HF_MAX_BATCH_SIZE", default_value_t = 32)]
    pub max_batch_size: usize,

    /// Encoders: the longest a forward pass waits for concurrent requests to join it, in
    /// microseconds (only while several clients are sending; 0: never wait).
    #[arg(long, env = "HF_BATCH_WAIT_US", default_value_t = 2000)]
    pub batch_wait_us: u64,

    /// Generation: the most new tokens one sequence may ask for (max_new_tokens, or max_length
    /// minus the prompt); more get 400.
    #[arg(long, env = "HF_MAX_NEW_TOKENS", default_value_t = 2048)]
    pub max_new_tokens: usize,

    /// Images: the most pixels an image may declare, checked from its header before it is
    /// decoded (Pillow's own bomb limit by default); more get 400.
    #[arg(long, env = "HF_MAX_IMAGE_PIXELS", default_value_t = 89_478_485)]
    pub max_image_pixels: u64,
}

impl LimitsArgs {
    /// Sets the limits on `opts` (each at least 1).
    pub fn apply(&self, opts: &mut LoadOptions) {
        opts.max_request_tokens = self.max_request_tokens.max(1);
        opts.max_batch_size = self.max_batch_size.max(1);
        opts.max_new_tokens = self.max_new_tokens.max(1);
        opts.batch_wait = Duration::from_micros(self.batch_wait_us);
        opts.max_image_pixels = self.max_image_pixels.max(1);
    }
}

/// The inference threads, their queue and the timeout. Unset values take the front-end's own
/// defaults ([`RuntimeDefaults`]), since a container, a batch job and a Lambda function differ.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RuntimeArgs {
    /// Request threads: each decodes, tokenizes and encodes one request at a time, while one
    /// model thread runs the forward passes, merging the sequences of concurrent requests.
    /// Default: serve 4, async-handler 2, lambda-proxy 2.
    #[arg(long, env = "SAGEMAKER_MODEL_SERVER_WORKERS")]
    pub workers: Option<usize>,

    /// Requests that may wait for an inference thread; more get 503 at once.
    /// Default: serve 64, async-handler 64, lambda-proxy 16.
    #[arg(long, env = "HF_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,

    /// Seconds one request (one line of a JSON Lines body, one part of a long input list) may
    /// wait and run before it gets 504. Default: serve 60 (600 under batch transform),
    /// async-handler 3600, lambda-proxy HF_PROXY_TIMEOUT_SECONDS.
    #[arg(long, env = "SAGEMAKER_MODEL_SERVER_TIMEOUT")]
    pub timeout: Option<u64>,

    /// Compute threads one model call splits its work between. Default: one per CPU the
    /// container may use (its cgroup CPU quota rounded down, at least 1), not the host's cores.
    #[arg(long, env = "HF_NUM_THREADS")]
    pub num_threads: Option<usize>,
}

/// A front-end's defaults for [`RuntimeArgs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeDefaults {
    /// Request threads.
    pub workers: usize,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Timeout in seconds.
    pub timeout_secs: u64,
}

impl RuntimeArgs {
    /// The timeout in seconds: SAGEMAKER_MODEL_SERVER_TIMEOUT, else `default`.
    pub fn timeout_secs(&self, default: u64) -> u64 {
        self.timeout.unwrap_or(default)
    }

    /// The runtime options: what is set, else `defaults` (each at least 1).
    pub fn options(&self, defaults: RuntimeDefaults) -> RuntimeOptions {
        RuntimeOptions {
            workers: self.workers.unwrap_or(defaults.workers).max(1),
            queue_capacity: self
                .queue_capacity
                .unwrap_or(defaults.queue_capacity)
                .max(1),
            timeout: Duration::from_secs(self.timeout_secs(defaults.timeout_secs).max(1)),
        }
    }
}

/// Loads the model, warms it up (so that the first request does not pay for lazy set-up) and
/// starts the inference threads. Blocks for as long as loading takes (a Hub download included):
/// call it from a blocking thread in async code.
pub fn load_service(
    load: &LoadOptions,
    runtime: RuntimeOptions,
) -> Result<InferenceService, ToolkitError> {
    // the one call into the engine's loader; every host goes through here
    let pipeline = load_pipeline(load)?;
    pipeline.warm_up()?;
    Ok(InferenceService::new(pipeline, Runtime::new(runtime)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        limits: LimitsArgs,
        #[command(flatten)]
        runtime: RuntimeArgs,
    }

    const DEFAULTS: RuntimeDefaults = RuntimeDefaults {
        workers: 3,
        queue_capacity: 5,
        timeout_secs: 7,
    };

    #[test]
    fn model_directory_order() {
        let c = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(c.model.model_dir(), PathBuf::from("/opt/ml/model"));
        let lambda = c.model.with_default_dir("/var/task/model");
        assert_eq!(lambda.model_dir(), PathBuf::from("/var/task/model"));
        let c = Cli::try_parse_from(["x", "--base-dir", "/b"]).unwrap();
        let m = c.model.with_default_dir("/var/task/model");
        assert_eq!(m.model_dir(), PathBuf::from("/b/model"));
        let c = Cli::try_parse_from(["x", "--model-id", "org/m"]).unwrap();
        let m = c.model.with_default_dir("/var/task/model");
        assert!(matches!(m.source(), ModelSource::Hub(ref h) if h.id == "org/m"));
        assert_eq!(m.location(), "https://huggingface.co/org/m@main");
        let c = Cli::try_parse_from(["x", "--model-dir", "/m"]).unwrap();
        assert!(c.model.download().is_err());
    }

    #[test]
    fn limits_reach_the_load_options() {
        let c = Cli::try_parse_from([
            "x",
            "--task",
            "text-classification",
            "--max-request-tokens",
            "8",
            "--max-batch-size",
            "0",
            "--batch-wait-us",
            "5",
            "--max-new-tokens",
            "9",
            "--max-image-pixels",
            "0",
            "--device",
            "cpu",
        ])
        .unwrap();
        let o = c.model.load_options(&c.limits).unwrap();
        assert_eq!(o.max_image_pixels, 1);
        assert_eq!(o.device, hf_inference_core::model::DeviceChoice::Cpu);
        assert_eq!(o.max_request_tokens, 8);
        assert_eq!(o.max_batch_size, 1);
        assert_eq!(o.batch_wait, Duration::from_micros(5));
        assert_eq!(o.max_new_tokens, 9);
        assert!(o.task.is_some());
        let c = Cli::try_parse_from(["x", "--task", "nope"]).unwrap();
        assert!(c.model.load_options(&c.limits).is_err());
        let c = Cli::try_parse_from(["x", "--device", "tpu"]).unwrap();
        assert!(c.model.load_options(&c.limits).is_err());
    }

    #[test]
    fn a_code_folder_is_refused_at_start() {
        let dir = std::env::temp_dir().join(format!("hfi-host-code-{}", std::process::id()));
        let model = dir.join("model");
        std::fs::create_dir_all(&model).unwrap();
        let args = ["x", "--base-dir", dir.to_str().unwrap(), "--task", "ner"];
        let c = Cli::try_parse_from(args).unwrap();
        assert!(c.model.load_options(&c.limits).is_ok());
        // a file named `code` is not a folder of custom code
        std::fs::write(model.join("code"), b"").unwrap();
        assert!(c.model.load_options(&c.limits).is_ok());
        std::fs::remove_file(model.join("code")).unwrap();
        std::fs::create_dir_all(model.join("code")).unwrap();
        std::fs::write(model.join("code/inference.py"), b"def model_fn(d): ...").unwrap();
        let e = c.model.load_options(&c.limits).unwrap_err().to_string();
        assert!(e.contains(&model.join("code").display().to_string()), "{e}");
        assert!(e.contains("Remove code/ from model.tar.gz"), "{e}");
        // also when the model comes from the Hub: SageMaker still extracts the archive there
        let hub = [
            "x",
            "--base-dir",
            dir.to_str().unwrap(),
            "--model-id",
            "org/m",
        ];
        let c = Cli::try_parse_from(hub).unwrap();
        assert!(c.model.load_options(&c.limits).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn runtime_defaults_are_the_front_ends() {
        let c = Cli::try_parse_from(["x"]).unwrap();
        let o = c.runtime.options(DEFAULTS);
        assert_eq!((o.workers, o.queue_capacity), (3, 5));
        assert_eq!(o.timeout, Duration::from_secs(7));
        let c = Cli::try_parse_from(["x", "--workers", "0", "--queue-capacity", "2"]).unwrap();
        let o = c.runtime.options(DEFAULTS);
        assert_eq!((o.workers, o.queue_capacity), (1, 2));
        let c = Cli::try_parse_from(["x", "--timeout", "90"]).unwrap();
        assert_eq!(c.runtime.timeout_secs(1), 90);
    }
}
