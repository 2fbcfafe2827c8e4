//! Which epoch's weights a run keeps, and saving them atomically.

use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which epoch's weights training ends with, as named in experiment files
/// (`training.checkpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Checkpoint {
    /// The epoch with the lowest validation loss (the paper's method; the
    /// earliest such epoch on ties).
    #[default]
    BestValidLoss,
    /// The last epoch: what the reference implementation tested, since its
    /// test step discarded the best checkpoint it loaded.
    LastEpoch,
}

impl Checkpoint {
    /// Name as written in experiment files.
    pub fn name(self) -> &'static str {
        match self {
            Checkpoint::BestValidLoss => "best-valid-loss",
            Checkpoint::LastEpoch => "last-epoch",
        }
    }
}

/// Writes every variable of `varmap` (running statistics included) to a
/// safetensors file with torchvision names, atomically.
pub fn save_checkpoint(varmap: &VarMap, path: &Path) -> candle_core::Result<()> {
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = {
        let data = varmap.data().lock().expect("varmap lock");
        data.iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect()
    };
    crate::io::write_atomic_with(path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
    })?;
    Ok(())
}
