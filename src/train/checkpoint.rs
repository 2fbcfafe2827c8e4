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
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
