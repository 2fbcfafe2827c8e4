//! The ResNet's convolution and batch-norm layers, on the fast CPU ops of
//! [`crate::ops`] (which fall back to candle's own ops on other devices).
//!
//! Parameter names and semantics are torchvision's: `weight` of a bias-free
//! convolution; `weight`, `bias`, `running_mean`, `running_var` of a batch
//! norm whose running statistics update in train mode with momentum 0.1 and
//! the unbiased batch variance, as PyTorch does.

use crate::ops;
use candle_core::{Module, ModuleT, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

/// A bias-free square 2-D convolution.
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor,
    stride: usize,
    padding: usize,
}

impl Conv {
    /// `weight` of shape `[out, in, kernel, kernel]`, initialised by the
    /// builder (the model's seeded init overwrites it).
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let bound = 1.0 / ((in_ch * kernel * kernel) as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let weight = vb.get_with_hints((out_ch, in_ch, kernel, kernel), "weight", init)?;
        Ok(Self {
            weight,
            stride,
            padding,
        })
    }
}

/// `norm(conv(x))`, with ReLU when `relu`: in training mode the two layers
/// in sequence; in inference mode on the CPU (f32) one fused op with the
/// batch norm folded into the convolution's output pass (bit-identical
/// values; the batch-norm parameters then get no gradient, as usual in
/// inference mode).
pub fn conv_norm(conv: &Conv, norm: &Norm, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
    if !train && x.device().is_cpu() {
        let affine = ops::batch_norm_eval_affine(
            &norm.weight,
            &norm.bias,
            norm.running_mean.as_tensor(),
            norm.running_var.as_tensor(),
            norm.eps,
        )?;
        if let Some(y) =
            ops::conv2d_bn_eval(x, &conv.weight, conv.stride, conv.padding, affine, relu)?
        {
            return Ok(y);
        }
    }
    norm.forward(&x.apply(conv)?, train, relu)
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(x, &self.weight, self.stride, self.padding)
    }
}

/// Batch normalisation over `N x C x H x W` with running statistics.
#[derive(Debug, Clone)]
pub struct Norm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

impl Norm {
    /// A batch norm of `channels` with torchvision's defaults for `eps` and `momentum` given.
    pub fn new(channels: usize, eps: f64, momentum: f64, vb: VarBuilder) -> Result<Self> {
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
        Ok(Self {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            // The builder hands out the VarMap's own variables, so updates land in the map.
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            eps,
            momentum,
        })
    }
}

impl Norm {
    /// `relu(bn(x))` when `relu`, else `bn(x)`; batch statistics and a
    /// running-statistics update in train mode, running statistics otherwise.
    pub fn forward(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if !train {
            let (mean, var) = (self.running_mean.as_tensor(), self.running_var.as_tensor());
            return match relu {
                true => ops::batch_norm_relu_eval(x, &self.weight, &self.bias, mean, var, self.eps),
                false => ops::batch_norm_eval(x, &self.weight, &self.bias, mean, var, self.eps),
            };
        }
        let (y, mean, var) = match relu {
            true => ops::batch_norm_relu_train(x, &self.weight, &self.bias, self.eps)?,
            false => ops::batch_norm_train(x, &self.weight, &self.bias, self.eps)?,
        };
        let count = x.elem_count() / x.dim(1)?;
        let (new_mean, new_var) = ops::running_stats_update(
            self.running_mean.as_tensor(),
            self.running_var.as_tensor(),
            &mean,
            &var,
            count,
            self.momentum,
        )?;
        self.running_mean.set(&new_mean)?;
        self.running_var.set(&new_var)?;
        Ok(y)
    }
}

impl ModuleT for Norm {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward(x, train, false)
    }
}
