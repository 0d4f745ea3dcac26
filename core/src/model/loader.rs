//! Finding a model's files (separate from building the model).
//!
//! The toolkit serves `$SAGEMAKER_BASE_DIR/model` (default `/opt/ml/model`): `config.json`, the
//! tokenizer files, and the weights as `model.safetensors` (or shards listed in
//! `model.safetensors.index.json`) or the older `pytorch_model.bin`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::error::ToolkitError;

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory on local disk (`/opt/ml/model`, `HF_MODEL_DIR`).
    LocalDir(PathBuf),
    /// A Hugging Face Hub repository (`HF_MODEL_ID`), downloaded into the Hugging Face cache.
    Hub(crate::hub::HubModel),
}

/// The weights of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    /// One or more safetensors files (memory-mapped).
    Safetensors(Vec<PathBuf>),
    /// A PyTorch pickle (`pytorch_model.bin`).
    Pytorch(PathBuf),
}

/// The resolved files of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The model directory.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// `tokenizer.json`, when present.
    pub tokenizer: Option<PathBuf>,
    /// `tokenizer_config.json`, when present.
    pub tokenizer_config: Option<PathBuf>,
    /// The weights.
    pub weights: Weights,
}

impl ModelSource {
    /// Resolves the files of the model.
    pub fn resolve(&self) -> Result<ModelFiles, ToolkitError> {
        match self {
            ModelSource::LocalDir(dir) => resolve_dir(dir),
            ModelSource::Hub(model) => resolve_dir(&model.fetch()?),
        }
    }
}

fn existing(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    p.is_file().then_some(p)
}

fn resolve_dir(dir: &Path) -> Result<ModelFiles, ToolkitError> {
    if !dir.is_dir() {
        return Err(ToolkitError::model_load(format!(
            "model directory {} does not exist; put the model there (SageMaker extracts model.tar.gz to $SAGEMAKER_BASE_DIR/model) or point HF_MODEL_DIR at it",
            dir.display()
        )));
    }
    let config = existing(dir, "config.json").ok_or_else(|| {
        ToolkitError::model_load(format!(
            "{} has no config.json; save the model with `save_pretrained`",
            dir.display()
        ))
    })?;
    let weights = if let Some(p) = existing(dir, "model.safetensors") {
        Weights::Safetensors(vec![p])
    } else if let Some(index) = existing(dir, "model.safetensors.index.json") {
        Weights::Safetensors(shards(dir, &index)?)
    } else if let Some(p) = existing(dir, "pytorch_model.bin") {
        Weights::Pytorch(p)
    } else {
        return Err(ToolkitError::model_load(format!(
            "{} has no weights: expected model.safetensors, model.safetensors.index.json or pytorch_model.bin",
            dir.display()
        )));
    };
    Ok(ModelFiles {
        dir: dir.to_path_buf(),
        config,
        tokenizer: existing(dir, "tokenizer.json"),
        tokenizer_config: existing(dir, "tokenizer_config.json"),
        weights,
    })
}

fn shards(dir: &Path, index: &Path) -> Result<Vec<PathBuf>, ToolkitError> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|e| {
        ToolkitError::model_load_with(format!("cannot read {}", index.display()), e)
    })?;
    let idx: Index = serde_json::from_str(&text)
        .map_err(|e| ToolkitError::model_load_with(format!("invalid {}", index.display()), e))?;
    let mut files: Vec<String> = idx.weight_map.into_values().collect();
    files.sort();
    files.dedup();
    files
        .into_iter()
        .map(|f| {
            let name = Path::new(&f);
            if name.components().count() != 1 {
                return Err(ToolkitError::model_load(format!(
                    "{}: shard name {f:?} must be a plain file name",
                    index.display()
                )));
            }
            existing(dir, &f).ok_or_else(|| {
                ToolkitError::model_load(format!(
                    "shard {f} listed in {} is missing",
                    index.display()
                ))
            })
        })
        .collect()
}

/// Opens the weights as f32 on the CPU (what the CPU kernels pack from).
pub fn open_weights(files: &ModelFiles) -> Result<VarBuilder<'static>, ToolkitError> {
    var_builder(files, DType::F32, &Device::Cpu)
}

/// Opens the weights for candle.
#[allow(unsafe_code)]
pub(crate) fn var_builder(
    files: &ModelFiles,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>, ToolkitError> {
    match &files.weights {
        Weights::Safetensors(paths) => {
            // SAFETY: the files are memory-mapped read-only; candle validates the safetensors
            // header and every tensor's bounds before use. Modifying a model file while the server
            // runs is undefined behaviour, as for every mmap-based loader (the SageMaker model
            // directory is written once, before the container starts).
            unsafe { VarBuilder::from_mmaped_safetensors(paths, dtype, device) }.map_err(|e| {
                ToolkitError::model_load_with(
                    format!(
                        "cannot read the safetensors weights in {}",
                        files.dir.display()
                    ),
                    e,
                )
            })
        }
        Weights::Pytorch(path) => VarBuilder::from_pth(path, dtype, device).map_err(|e| {
            ToolkitError::model_load_with(format!("cannot read {}", path.display()), e)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hfi-loader-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn missing_pieces_are_named() {
        let e = ModelSource::LocalDir("/nonexistent/model".into())
            .resolve()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/model"), "{e}");
        let d = tmpdir("noconfig");
        assert!(ModelSource::LocalDir(d.clone())
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("config.json"));
        std::fs::write(d.join("config.json"), "{}").unwrap();
        assert!(ModelSource::LocalDir(d.clone())
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("model.safetensors"));
        std::fs::write(d.join("pytorch_model.bin"), "x").unwrap();
        let f = ModelSource::LocalDir(d.clone()).resolve().unwrap();
        assert_eq!(f.weights, Weights::Pytorch(d.join("pytorch_model.bin")));
        assert_eq!(f.tokenizer, None);
    }

    #[test]
    fn corrupt_weights_are_a_load_error() {
        let d = tmpdir("corrupt");
        std::fs::write(d.join("config.json"), "{}").unwrap();
        std::fs::write(d.join("model.safetensors"), b"not safetensors").unwrap();
        let f = ModelSource::LocalDir(d).resolve().unwrap();
        let e = var_builder(&f, DType::F32, &Device::Cpu).err().unwrap();
        assert_eq!(e.status(), 500);
        assert!(e.to_string().contains("safetensors"));
    }
}
