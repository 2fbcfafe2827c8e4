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

/// Element types of [`output_buffer`]: plain numbers, which have no drop
/// glue and for which writing a value never reads the old one. Sealed, so
/// that no other type (`bool`, references, anything with a niche or a
/// destructor) can be used there.
pub(crate) trait Plain: Copy + sealed::Sealed {}

mod sealed {
    /// Implemented only for the types below.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u32 {}
}

impl Plain for f32 {}
impl Plain for u32 {}

/// A vector of `len` elements that are not initialised, for a kernel that
/// writes every element before anything reads it.
///
/// Skips the zero fill: for eval-mode forward passes that fill was about a
/// quarter of the time (a full extra pass over every output, or the page
/// faults of fresh memory). This is the same uninitialised-output pattern
/// candle's own CPU kernels use.
///
/// # Safety
/// The caller must write all `len` elements before reading any of them
/// (through the vector, a slice of it, or anything it is moved into). Only
/// writes may touch the vector until then; dropping it is fine.
#[allow(clippy::uninit_vec)]
pub(crate) unsafe fn output_buffer<T: Plain>(len: usize) -> Vec<T> {
    let mut buffer = Vec::with_capacity(len);
    // SAFETY: the capacity is `len`. The elements stay uninitialised until
    // the caller writes them, which it must do before any read (this
    // function's contract), so no uninitialised value is ever read: `T` is
    // a plain number (sealed `Plain`), so storing into an element does not
    // read or drop the old bytes, and dropping the vector reads none.
    unsafe { buffer.set_len(len) };
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_buffers_hold_what_was_written() {
        // SAFETY: every element is written before the vectors are read.
        let (mut floats, mut indices) = unsafe { (output_buffer(1000), output_buffer(1000)) };
        for (i, (f, u)) in floats.iter_mut().zip(indices.iter_mut()).enumerate() {
            *f = i as f32 * 0.5;
            *u = i as u32;
        }
        assert_eq!(floats.len(), 1000);
        assert!(floats.iter().enumerate().all(|(i, &f)| f == i as f32 * 0.5));
        assert!(indices.iter().enumerate().all(|(i, &u)| u == i as u32));
        // A buffer dropped before being written reads nothing.
        // SAFETY: nothing reads it.
        drop(unsafe { output_buffer::<f32>(1 << 20) });
    }
}
