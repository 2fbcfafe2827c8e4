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

/// A vector of `len` elements for a kernel that writes every element before
/// anything reads it.
///
/// Skips the zero fill: for eval-mode forward passes that fill was about a
/// quarter of the time (a full extra pass over every output, or the page
/// faults of fresh memory). This is the same uninitialised-output pattern
/// candle's own CPU kernels use.
#[allow(clippy::uninit_vec)]
pub(crate) fn output_buffer<T: Copy>(len: usize) -> Vec<T> {
    let mut buffer = Vec::with_capacity(len);
    // SAFETY: the elements are plain numbers (`T: Copy`, f32 or u32 here)
    // with no drop glue, and every caller overwrites all `len` of them
    // before reading any (see the call sites).
    unsafe { buffer.set_len(len) };
    buffer
}
