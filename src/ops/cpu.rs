//! Access to the raw f32 data of CPU tensors inside custom ops.
//!
//! Custom ops receive a storage and a layout; every kernel here works on
//! dense row-major slices, so this is the single place that checks for that
//! and turns the pair into a slice.

use super::OpsError;
use candle_core::{CpuStorage, Layout, Result};

/// The dense f32 slice that `layout` describes in `storage`.
///
/// Fails (rather than copying) when the data is not contiguous f32: the
/// public wrappers make every operand contiguous before calling an op.
pub(crate) fn dense_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &'static str,
    operand: &'static str,
) -> Result<&'a [f32]> {
    let err = || OpsError::Layout { op, operand };
    let data = match storage {
        CpuStorage::F32(data) => data.as_slice(),
        _ => return Err(err().into()),
    };
    let (start, end) = layout.contiguous_offsets().ok_or_else(err)?;
    Ok(&data[start..end])
}

/// The number of threads candle's CPU kernels use, for sizing parallel work.
pub(crate) fn num_threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}
