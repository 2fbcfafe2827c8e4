//! Choosing where tensors live: `cpu`, `cuda` or `cuda:N`.
//!
//! CUDA needs a binary built with `--features cuda`; asking for it from a
//! CPU-only build, or for a GPU the machine lacks, is a clear error.

use candle_core::Device;

/// Why a device could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The text is not a device name.
    #[error("unknown device `{0}`: expected `cpu`, `cuda` or `cuda:N` (N = GPU index)")]
    Unknown(String),
    /// CUDA was asked for but this binary has no CUDA support.
    #[error(
        "device `{0}` needs CUDA, but this ablate binary was built without it; rebuild with \
         `cargo build --release --features cuda` (CUDA toolkit installed) or \
         `scripts/build-cuda.sh` (no toolkit needed)"
    )]
    NotCompiled(String),
    /// The GPU could not be opened.
    #[error("device `{spec}` could not be opened: {message}")]
    Unavailable {
        /// The requested device.
        spec: String,
        /// candle's error.
        message: String,
    },
}

/// A parsed device name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// The CUDA GPU with this index.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda` (GPU 0) or `cuda:N`.
    pub fn parse(text: &str) -> Result<Self, DeviceError> {
        match text.trim() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unknown(text.to_string())),
        }
    }

    /// Opens the device.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(index) => open_cuda(index),
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(index: usize) -> Result<Device, DeviceError> {
    Device::new_cuda(index).map_err(|e| DeviceError::Unavailable {
        spec: format!("cuda:{index}"),
        message: e.to_string(),
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(index: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NotCompiled(format!("cuda:{index}")))
}

/// Parses and opens a device name.
pub fn open_device(text: &str) -> Result<Device, DeviceError> {
    DeviceSpec::parse(text)?.open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(DeviceSpec::parse("cpu"), Ok(DeviceSpec::Cpu));
        assert_eq!(DeviceSpec::parse("cuda"), Ok(DeviceSpec::Cuda(0)));
        assert_eq!(DeviceSpec::parse("cuda:3"), Ok(DeviceSpec::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU"] {
            let error = DeviceSpec::parse(bad).unwrap_err().to_string();
            assert!(
                error.contains(&format!("`{bad}`")) && error.contains("cuda:N"),
                "{error}"
            );
        }
    }

    #[test]
    fn cpu_opens() {
        assert!(open_device("cpu").unwrap().is_cpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build() {
        let error = open_device("cuda:1").unwrap_err().to_string();
        assert!(
            error.contains("cuda:1") && error.contains("--features cuda"),
            "{error}"
        );
    }
}
