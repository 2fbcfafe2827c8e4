//! Fast CPU training kernels for the layers that dominate a ResNet step:
//! 2-D convolution, training-mode batch normalization (optionally fused with
//! the ReLU after it) and ReLU.
//!
//! candle computes a convolution's input gradient with a naive transposed
//! convolution and batch norm's backward pass as a chain of generic
//! element-wise ops, which makes CPU training several times slower than the
//! forward pass suggests. The ops here are candle custom ops with their own
//! backward passes: convolutions lower to im2col/col2im and the `gemm` crate
//! (the GEMM candle itself uses), except thin ones, which run direct
//! register-tiled kernels on CPUs with AVX-512 (`direct_conv`); batch norm
//! reads and writes each tensor as few times as its closed form allows.
//!
//! The entry points are drop-in replacements: [`conv2d`] matches
//! `x.conv2d(&w, padding, stride, 1, 1)`, [`batch_norm_train`] the textbook
//! batch-norm formula, [`batch_norm_relu_train`] that formula followed by
//! `relu`, and [`relu`] `x.relu()`. On CUDA the convolution keeps candle's
//! forward pass but computes its gradients as GEMMs (see `conv2d_portable`);
//! elsewhere, and for dtypes other than f32, the ops fall back to candle's
//! own so the same model code runs everywhere.

mod batch_norm;
mod conv2d;
mod conv2d_portable;
mod cpu;
mod direct_conv;
mod gemm;
mod geometry;
mod im2col;
mod lanes;
mod max_pool;
mod relu;
mod scratch;
#[cfg(test)]
pub(crate) mod testing;
mod winograd;

pub use batch_norm::{
    batch_norm_eval, batch_norm_eval_affine, batch_norm_relu_eval, batch_norm_relu_train,
    batch_norm_train, running_stats_update,
};
pub use conv2d::{conv2d, conv2d_bn_eval};
pub use gemm::square_matmul;
pub use geometry::ConvGeometry;
pub(crate) use max_pool::max_pool2d_cpu;
pub use relu::{add_relu, relu};
pub use winograd::set_enabled as set_winograd;

/// Errors of the fast ops: shapes and layouts they cannot handle.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The convolution's input and weight shapes do not fit together.
    #[error(
        "conv2d: input shape {input:?} and weight shape {weight:?} (stride {stride}, padding \
         {padding}) do not form a convolution: {reason}; pass an NCHW input and a [out, in, kh, kw] \
         weight with in equal to the input's channels and kernels no larger than the padded input"
    )]
    ConvShape {
        /// Input dims as given.
        input: Vec<usize>,
        /// Weight dims as given.
        weight: Vec<usize>,
        /// Stride as given.
        stride: usize,
        /// Padding as given.
        padding: usize,
        /// What exactly is wrong.
        reason: &'static str,
    },
    /// Batch-norm input and parameter shapes do not fit together.
    #[error(
        "batch_norm: input shape {input:?} with gamma shape {gamma:?} and beta shape {beta:?}: \
         {reason}; pass an [N, C, ...] input with at least two elements per channel and [C] \
         gamma and beta"
    )]
    BatchNormShape {
        /// Input dims as given.
        input: Vec<usize>,
        /// Gamma dims as given.
        gamma: Vec<usize>,
        /// Beta dims as given.
        beta: Vec<usize>,
        /// What exactly is wrong.
        reason: &'static str,
    },
    /// A kernel received a tensor that is not contiguous f32; the public
    /// wrappers make their inputs contiguous, so this is an internal misuse.
    #[error("{op}: operand {operand} must be a contiguous f32 tensor; call .contiguous() first")]
    Layout {
        /// The op that rejected the operand.
        op: &'static str,
        /// Which operand (e.g. "input", "weight").
        operand: &'static str,
    },
}

impl From<OpsError> for candle_core::Error {
    fn from(e: OpsError) -> Self {
        candle_core::Error::wrap(e)
    }
}
