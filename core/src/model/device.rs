//! The device seam: one place chooses where every model family runs (`HF_DEVICE`).
//!
//! `cpu` runs on our CPU kernels (candle's CPU backend for DeBERTa-v2); `cuda` on candle's CUDA
//! backend, for the families that have a CUDA implementation, in a build with the `cuda` feature;
//! `neuron` (AWS Inferentia/Trainium) is accepted and refused at start with a clear message until
//! a backend exists (`docs/neuron.md` says how one would plug in here). `auto` (the default) picks
//! CUDA when the build has it, a GPU is present and the family runs there, else the CPU.

use candle_core::Device;

use super::family::Family;
use crate::error::ToolkitError;

/// Whether this build runs models on a GPU when one is present (the `cuda` feature).
pub const CUDA_BUILD: bool = cfg!(feature = "cuda");

/// The device asked for (`HF_DEVICE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA where the build, the machine and the family allow it, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA GPU; a start-up error where it cannot be used.
    Cuda,
    /// AWS Neuron (Inferentia, Trainium): not available yet, a start-up error.
    Neuron,
}

impl std::str::FromStr for DeviceChoice {
    type Err = ToolkitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda),
            "neuron" | "inf2" | "trn1" => Ok(DeviceChoice::Neuron),
            other => Err(ToolkitError::Config(format!(
                "HF_DEVICE={other:?} is not a device; use auto, cpu, cuda or neuron"
            ))),
        }
    }
}

/// The device `family` runs on under `choice`.
pub fn select(choice: DeviceChoice, family: Family) -> Result<Device, ToolkitError> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Neuron => Err(ToolkitError::Config(
            "HF_DEVICE=neuron: this build has no Neuron backend yet (see docs/neuron.md); use cpu or cuda".into(),
        )),
        DeviceChoice::Cuda => {
            if !family.runs_on_cuda() {
                return Err(ToolkitError::Config(format!(
                    "HF_DEVICE=cuda: {family} models run on the CPU kernels only in this build; unset HF_DEVICE or set it to cpu"
                )));
            }
            if !CUDA_BUILD {
                return Err(ToolkitError::Config(
                    "HF_DEVICE=cuda: this binary was built without the `cuda` feature; rebuild with --features cuda or use cpu".into(),
                ));
            }
            cuda().ok_or_else(|| {
                ToolkitError::Config("HF_DEVICE=cuda: no usable CUDA device".into())
            })
        }
        DeviceChoice::Auto => {
            if CUDA_BUILD && family.runs_on_cuda() {
                if let Some(d) = cuda() {
                    return Ok(d);
                }
                tracing::warn!("built with `cuda` but no CUDA device is usable; running on the CPU");
            }
            Ok(Device::Cpu)
        }
    }
}

fn cuda() -> Option<Device> {
    #[cfg(feature = "cuda")]
    {
        Device::new_cuda(0).ok()
    }
    #[cfg(not(feature = "cuda"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_refuse_what_cannot_run() {
        assert_eq!("".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda);
        assert_eq!(
            "neuron".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Neuron
        );
        assert_eq!("tpu".parse::<DeviceChoice>().unwrap_err().status(), 500);
        assert!(select(DeviceChoice::Cpu, Family::Bert).unwrap().is_cpu());
        assert!(select(DeviceChoice::Auto, Family::Llama).unwrap().is_cpu());
        let e = select(DeviceChoice::Neuron, Family::Bert).unwrap_err();
        assert!(e.to_string().contains("docs/neuron.md"), "{e}");
        let e = select(DeviceChoice::Cuda, Family::T5).unwrap_err();
        assert!(e.to_string().contains("CPU kernels"), "{e}");
        if !CUDA_BUILD {
            let e = select(DeviceChoice::Cuda, Family::Bert).unwrap_err();
            assert!(e.to_string().contains("without the `cuda` feature"), "{e}");
        }
    }
}
