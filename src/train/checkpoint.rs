//! Saving model weights atomically.

use candle_nn::VarMap;
use std::path::Path;

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
