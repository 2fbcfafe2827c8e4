//! A trainable ResNet family (BasicBlock: ResNet-10/18/34) with torchvision's
//! structure and parameter names.
//!
//! The module tree and every parameter name are torchvision's
//! (`conv1.weight`, `bn1.running_var`, `layer2.0.downsample.0.weight`,
//! `fc.bias`, ...), so a torchvision state dict exported to safetensors loads
//! name by name (see [`crate::model::pretrained`]). Only the base width
//! (torchvision: 64) and the blocks per stage are configurable, which gives the
//! narrow CPU variants used for fast ablations.
//!
//! Structure: conv 7x7/2 (pad 3, no bias), BatchNorm, ReLU, max pool 3x3/2
//! (pad 1), four stages of BasicBlocks with widths `base * (1, 2, 4, 8)`
//! (stages 2-4 start with stride 2 and a 1x1 conv + BatchNorm shortcut),
//! global average pool, linear head.
//!
//! BatchNorm and the convolutions run on the fast CPU ops of [`crate::ops`] (`eps = 1e-5`, `momentum = 0.1`). In train mode it
//! normalises with the biased batch variance and updates the running mean and
//! the unbiased (`n / (n - 1)`) running variance in place, exactly PyTorch's
//! rule; the running statistics live in the model's `VarMap` under their
//! torchvision names (they are `Var`s but never receive gradients, see
//! [`trainable_vars`]).
//!
//! Inputs must be square: candle's conv backward fails when height and width
//! differ in parity at stride 2, and square inputs keep every intermediate map
//! square.
//!
//! Known difference from PyTorch: candle's ReLU passes the gradient at an
//! input of exactly 0 (PyTorch does not). Pre-activations are BatchNorm
//! outputs, so exact zeros practically never occur.

use super::layers::{conv_norm, Conv, Norm};
use candle_core::{Result, Tensor, Var};
use candle_nn::{Linear, Module, ModuleT, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use super::pool;

/// BatchNorm epsilon, as in torchvision.
pub const BN_EPS: f64 = 1e-5;
/// BatchNorm running-statistics momentum, as in torchvision.
pub const BN_MOMENTUM: f64 = 0.1;
/// Input channels (RGB).
pub const IN_CHANNELS: usize = 3;

/// Blocks per stage for each supported depth (BasicBlock only).
const DEPTHS: [(usize, [usize; 4]); 3] =
    [(10, [1, 1, 1, 1]), (18, [2, 2, 2, 2]), (34, [3, 4, 6, 3])];

/// Named architectures accepted by [`ResNetConfig::from_name`] besides the
/// general pattern `resnet{10|18|34}[-w{width}]`.
pub const KNOWN_NAMES: [&str; 5] = [
    "resnet18",
    "resnet34",
    "resnet10-w16",
    "resnet10-w32",
    "resnet18-w32",
];

/// Architecture of a BasicBlock ResNet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// BasicBlocks per stage; exactly four stages (ResNet-18: `[2, 2, 2, 2]`).
    pub layers: Vec<usize>,
    /// Channels of the stem and the first stage; stages have
    /// `base_width * (1, 2, 4, 8)` channels (torchvision: 64).
    pub base_width: usize,
    /// Outputs of the linear head.
    pub num_classes: usize,
}

/// Invalid ResNet name or configuration.
#[derive(Debug, thiserror::Error)]
pub enum ResNetConfigError {
    /// The name is neither a known name nor of the form `resnet{depth}-w{width}`.
    #[error(
        "unknown model name {name:?}; known names: {known}, or the pattern \
         resnet{{10|18|34}}-w{{width}} (e.g. resnet18-w16)",
        known = KNOWN_NAMES.join(", ")
    )]
    UnknownName {
        /// The name that was asked for.
        name: String,
    },
    /// A field of the configuration is out of range.
    #[error("invalid ResNet config: {field} = {value}: {fix}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// The offending value, printed.
        value: String,
        /// What a valid value looks like.
        fix: &'static str,
    },
}

impl ResNetConfig {
    /// Configuration from an architecture name: `resnet18` and `resnet34`
    /// (torchvision, width 64), the CPU variants `resnet10-w16`,
    /// `resnet10-w32`, `resnet18-w32`, and generally
    /// `resnet{10|18|34}[-w{width}]`.
    pub fn from_name(
        name: &str,
        num_classes: usize,
    ) -> std::result::Result<Self, ResNetConfigError> {
        let unknown = || ResNetConfigError::UnknownName {
            name: name.to_string(),
        };
        let rest = name.strip_prefix("resnet").ok_or_else(unknown)?;
        let (depth, width) = match rest.split_once("-w") {
            Some((depth, width)) => (depth, width),
            None => (rest, "64"),
        };
        let depth: usize = parse_plain_number(depth).ok_or_else(unknown)?;
        let base_width: usize = parse_plain_number(width).ok_or_else(unknown)?;
        let layers = DEPTHS
            .iter()
            .find(|(d, _)| *d == depth)
            .map(|(_, layers)| layers.to_vec())
            .ok_or_else(unknown)?;
        let config = Self {
            layers,
            base_width,
            num_classes,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that the configuration describes a buildable network.
    pub fn validate(&self) -> std::result::Result<(), ResNetConfigError> {
        if self.layers.len() != 4 || self.layers.contains(&0) {
            return Err(ResNetConfigError::Invalid {
                field: "layers",
                value: format!("{:?}", self.layers),
                fix: "give four stages with at least one block each, e.g. [2, 2, 2, 2]",
            });
        }
        if self.base_width == 0 {
            return Err(ResNetConfigError::Invalid {
                field: "base_width",
                value: "0".into(),
                fix: "use a positive width (torchvision: 64)",
            });
        }
        if self.num_classes == 0 {
            return Err(ResNetConfigError::Invalid {
                field: "num_classes",
                value: "0".into(),
                fix: "use at least one class",
            });
        }
        Ok(())
    }

    /// Channels of the four stages: `base_width * (1, 2, 4, 8)`.
    pub fn stage_widths(&self) -> [usize; 4] {
        [1, 2, 4, 8].map(|m| self.base_width * m)
    }

    /// Length of the pooled penultimate feature vector (`base_width * 8`;
    /// 512 for ResNet-18).
    pub fn feature_dim(&self) -> usize {
        self.base_width * 8
    }
}

/// Parses a decimal number without sign or leading zeros (so that names map
/// one-to-one to configurations).
fn parse_plain_number(s: &str) -> Option<usize> {
    let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// `conv -> bn -> relu -> conv -> bn`, plus the identity or a 1x1 conv + bn
/// shortcut, then relu (torchvision's `BasicBlock`).
#[derive(Debug, Clone)]
struct BasicBlock {
    conv1: Conv,
    bn1: Norm,
    conv2: Conv,
    bn2: Norm,
    downsample: Option<(Conv, Norm)>,
}

impl BasicBlock {
    fn new(in_ch: usize, out_ch: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let downsample = if stride != 1 || in_ch != out_ch {
            let vb = vb.pp("downsample");
            Some((
                conv(in_ch, out_ch, 1, stride, 0, vb.pp("0"))?,
                batch_norm(out_ch, vb.pp("1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv(in_ch, out_ch, 3, stride, 1, vb.pp("conv1"))?,
            bn1: batch_norm(out_ch, vb.pp("bn1"))?,
            conv2: conv(out_ch, out_ch, 3, 1, 1, vb.pp("conv2"))?,
            bn2: batch_norm(out_ch, vb.pp("bn2"))?,
            downsample,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = conv_norm(&self.conv1, &self.bn1, x, train, true)?;
        let y = conv_norm(&self.conv2, &self.bn2, &y, train, false)?;
        let shortcut = match &self.downsample {
            Some((conv, bn)) => conv_norm(conv, bn, x, train, false)?,
            None => x.clone(),
        };
        crate::ops::add_relu(&y, &shortcut)
    }
}

/// Bias-free square convolution (all ResNet convs are followed by BatchNorm).
fn conv(
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> Result<Conv> {
    Conv::new(in_ch, out_ch, kernel, stride, padding, vb)
}

fn batch_norm(channels: usize, vb: VarBuilder) -> Result<Norm> {
    Norm::new(channels, BN_EPS, BN_MOMENTUM, vb)
}

/// A BasicBlock ResNet with torchvision parameter names.
///
/// Build it with [`crate::model::init::build_seeded`] for reproducible
/// initial weights; [`ResNet::new`] alone uses whatever values the
/// `VarBuilder` provides (candle's unseeded initialisers for a fresh `VarMap`).
#[derive(Debug, Clone)]
pub struct ResNet {
    config: ResNetConfig,
    conv1: Conv,
    bn1: Norm,
    stages: Vec<Vec<BasicBlock>>,
    fc: Linear,
}

impl ResNet {
    /// Creates (or fetches, for a `VarBuilder` over loaded weights) all
    /// parameters under torchvision's names.
    pub fn new(config: &ResNetConfig, vb: VarBuilder) -> Result<Self> {
        config
            .validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let widths = config.stage_widths();
        let conv1 = conv(IN_CHANNELS, widths[0], 7, 2, 3, vb.pp("conv1"))?;
        let bn1 = batch_norm(widths[0], vb.pp("bn1"))?;
        let mut stages = Vec::with_capacity(4);
        let mut in_ch = widths[0];
        for (stage, (&blocks, &width)) in config.layers.iter().zip(&widths).enumerate() {
            let vb_stage = vb.pp(format!("layer{}", stage + 1));
            let mut stage_blocks = Vec::with_capacity(blocks);
            for block in 0..blocks {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                stage_blocks.push(BasicBlock::new(in_ch, width, stride, vb_stage.pp(block))?);
                in_ch = width;
            }
            stages.push(stage_blocks);
        }
        let fc = candle_nn::linear(config.feature_dim(), config.num_classes, vb.pp("fc"))?;
        Ok(Self {
            config: config.clone(),
            conv1,
            bn1,
            stages,
            fc,
        })
    }

    /// The architecture this model was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// Globally average-pooled penultimate features, `N x feature_dim`.
    ///
    /// `x` is `N x 3 x S x S` (square). With `train = true` BatchNorm uses
    /// batch statistics and updates its running statistics.
    ///
    /// With `train = false` (inference: evaluation, embedding) the result is
    /// detached from the parameters: the stem's and every block's output is
    /// cut from the autograd graph, so each activation is freed as soon as
    /// the next layer has read it instead of living until the features are
    /// dropped (for ResNet-18 at 64 px and an evaluation batch of 256 the
    /// kept graph was about 300 MB, on top of the cached blocks of earlier
    /// batches). Nothing differentiates an inference pass.
    pub fn forward_features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        check_input(x, train)?;
        let cut = |x: Tensor| if train { x } else { x.detach() };
        let mut x = cut(conv_norm(&self.conv1, &self.bn1, x, train, true)?);
        x = pool::max_pool2d(&x, 3, 2, 1)?;
        for block in self.stages.iter().flatten() {
            x = cut(block.forward_t(&x, train)?);
        }
        // Block outputs are contiguous, so flattening the spatial axes is free
        // and the mean runs over the contiguous last axis.
        x.flatten_from(2)?.mean(2)
    }

    /// Logits, `N x num_classes` (see [`ResNet::forward_features`] for `x`
    /// and `train`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_features(x, train)?.apply(&self.fc)
    }

    /// Logits from already computed features (`N x feature_dim`), e.g. to get
    /// both features and logits from one forward pass.
    pub fn head(&self, features: &Tensor) -> Result<Tensor> {
        self.fc.forward(features)
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        ResNet::forward_t(self, x, train)
    }
}

/// Spatial size after the stem and the three stride-2 stages: every stride-2
/// op here (7x7/p3, 3x3/p1 conv and pool, 1x1/p0) maps `s` to `(s - 1) / 2 + 1`.
pub(crate) fn final_spatial(size: usize) -> usize {
    (0..5).fold(size, |s, _| (s - 1) / 2 + 1)
}

/// Rejects inputs the network cannot process, with a message that says why.
fn check_input(x: &Tensor, train: bool) -> Result<()> {
    let (n, c, h, w) = x.dims4().map_err(|_| {
        candle_core::Error::Msg(format!(
            "ResNet input must be N x 3 x S x S, got shape {:?}",
            x.dims()
        ))
    })?;
    if c != IN_CHANNELS {
        candle_core::bail!(
            "ResNet input must have {IN_CHANNELS} channels, got shape {:?}",
            x.dims()
        );
    }
    if h != w || h == 0 || n == 0 {
        candle_core::bail!(
            "ResNet input must be a non-empty batch of square images (candle's conv backward \
             fails on non-square maps), got shape {:?}; crop or resize to S x S",
            x.dims()
        );
    }
    let last = final_spatial(h);
    if train && n * last * last < 2 {
        candle_core::bail!(
            "train-mode BatchNorm needs more than one value per channel, but a batch of {n} \
             image(s) of {h}x{w} leaves {last}x{last} in the last stage; use a batch of at \
             least 2 or larger images"
        );
    }
    Ok(())
}

/// The variables an optimizer should update: every variable of `varmap`
/// except BatchNorm running statistics, sorted by name.
///
/// Running statistics are `Var`s (BatchNorm updates them in place) but are not
/// parameters; they never get gradients, and leaving them out also avoids
/// optimizer state for them.
pub fn trainable_vars(varmap: &VarMap) -> Vec<Var> {
    let data = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut named: Vec<(&String, &Var)> = data
        .iter()
        .filter(|(name, _)| !is_running_stat(name))
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.into_iter().map(|(_, var)| var.clone()).collect()
}

/// Whether a parameter name is a BatchNorm running statistic (torchvision
/// buffer names).
pub fn is_running_stat(name: &str) -> bool {
    name.ends_with(".running_mean") || name.ends_with(".running_var")
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn names_map_to_configs() {
        let c = ResNetConfig::from_name("resnet18", 2).expect("resnet18");
        assert_eq!(c.layers, vec![2, 2, 2, 2]);
        assert_eq!((c.base_width, c.num_classes, c.feature_dim()), (64, 2, 512));
        let c = ResNetConfig::from_name("resnet34", 1000).expect("resnet34");
        assert_eq!(c.layers, vec![3, 4, 6, 3]);
        let c = ResNetConfig::from_name("resnet10-w16", 2).expect("resnet10-w16");
        assert_eq!(
            (c.layers.clone(), c.base_width, c.feature_dim()),
            (vec![1, 1, 1, 1], 16, 128)
        );
        let c = ResNetConfig::from_name("resnet18-w32", 2).expect("resnet18-w32");
        assert_eq!((c.layers.clone(), c.base_width), (vec![2, 2, 2, 2], 32));
        let c = ResNetConfig::from_name("resnet34-w8", 3).expect("pattern");
        assert_eq!((c.layers.clone(), c.base_width), (vec![3, 4, 6, 3], 8));
        for name in KNOWN_NAMES {
            assert!(ResNetConfig::from_name(name, 2).is_ok(), "{name}");
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        for bad in [
            "resnet50",
            "resnet18-w0",
            "resnet18-w",
            "resnet-18",
            "vgg16",
            "resnet18-w016",
            "resnet18-w+4",
            "",
        ] {
            let err = ResNetConfig::from_name(bad, 2).expect_err(bad);
            let msg = err.to_string();
            assert!(
                msg.contains("resnet10-w16") || msg.contains("base_width"),
                "{bad}: {msg}"
            );
        }
        let msg = ResNetConfig::from_name("resnet50", 2)
            .expect_err("50")
            .to_string();
        assert!(
            msg.contains("\"resnet50\"") && msg.contains("resnet18, resnet34"),
            "{msg}"
        );
        assert!(ResNetConfig::from_name("resnet18", 0).is_err());
    }

    #[test]
    fn config_serde_is_strict() {
        let c: ResNetConfig =
            serde_json::from_str(r#"{"layers":[1,1,1,1],"base_width":8,"num_classes":2}"#)
                .expect("valid json");
        assert_eq!(c.feature_dim(), 64);
        let bad = serde_json::from_str::<ResNetConfig>(
            r#"{"layers":[1,1,1,1],"base_width":8,"num_classes":2,"depth":10}"#,
        );
        assert!(bad.is_err());
        let three_stages = ResNetConfig {
            layers: vec![1, 1, 1],
            base_width: 8,
            num_classes: 2,
        };
        assert!(three_stages.validate().is_err());
    }

    fn tiny(num_classes: usize) -> (ResNet, VarMap) {
        let config = ResNetConfig {
            layers: vec![2, 1, 1, 1],
            base_width: 4,
            num_classes,
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        (ResNet::new(&config, vb).expect("build"), varmap)
    }

    #[test]
    fn parameter_names_are_torchvision_names() {
        let (_, varmap) = tiny(3);
        let data = varmap.data().lock().expect("lock");
        let shape = |name: &str| data.get(name).map(|v| v.dims().to_vec());
        assert_eq!(shape("conv1.weight"), Some(vec![4, 3, 7, 7]));
        for suffix in ["weight", "bias", "running_mean", "running_var"] {
            assert_eq!(shape(&format!("bn1.{suffix}")), Some(vec![4]));
        }
        assert_eq!(shape("layer1.0.conv1.weight"), Some(vec![4, 4, 3, 3]));
        assert_eq!(shape("layer1.1.bn2.running_var"), Some(vec![4]));
        assert_eq!(shape("layer1.0.downsample.0.weight"), None);
        assert_eq!(shape("layer2.0.conv1.weight"), Some(vec![8, 4, 3, 3]));
        assert_eq!(
            shape("layer2.0.downsample.0.weight"),
            Some(vec![8, 4, 1, 1])
        );
        assert_eq!(shape("layer2.0.downsample.1.running_mean"), Some(vec![8]));
        assert_eq!(shape("layer4.0.conv2.weight"), Some(vec![32, 32, 3, 3]));
        assert_eq!(shape("fc.weight"), Some(vec![3, 32]));
        assert_eq!(shape("fc.bias"), Some(vec![3]));
        // stem 1 conv + 5 bn params, blocks: 5 blocks x (2 convs + 2 bns x 4)
        // + 3 downsamples x (1 conv + 4 bn), head 2.
        assert_eq!(data.len(), 5 + 5 * 10 + 3 * 5 + 2);
    }

    #[test]
    fn inference_features_are_detached_and_training_features_are_not() -> Result<()> {
        let (model, _) = tiny(3);
        let x = Tensor::ones((2, 3, 32, 32), DType::F32, &Device::Cpu)?;
        let eval = model.forward_features(&x, false)?;
        // No graph back to the parameters: the activations were freed.
        assert!(!eval.track_op());
        let train = model.forward_features(&x, true)?;
        assert!(train.track_op());
        // The logits still depend on the head (trainable on features).
        assert!(model.head(&eval)?.track_op());
        Ok(())
    }

    #[test]
    fn output_shapes_and_input_checks() -> Result<()> {
        let (model, _) = tiny(3);
        let x = Tensor::zeros((2, 3, 33, 33), DType::F32, &Device::Cpu)?;
        assert_eq!(model.forward_t(&x, false)?.dims(), &[2, 3]);
        assert_eq!(model.forward_features(&x, true)?.dims(), &[2, 32]);
        let non_square = Tensor::zeros((2, 3, 32, 33), DType::F32, &Device::Cpu)?;
        let msg = model
            .forward_t(&non_square, false)
            .expect_err("non-square")
            .to_string();
        assert!(
            msg.contains("square") && msg.contains("[2, 3, 32, 33]"),
            "{msg}"
        );
        let gray = Tensor::zeros((2, 1, 32, 32), DType::F32, &Device::Cpu)?;
        assert!(model.forward_t(&gray, false).is_err());
        // One 32x32 image ends 1x1 in the last stage: Norm would divide by
        // n - 1 = 0 in train mode; eval mode is fine.
        let single = Tensor::zeros((1, 3, 32, 32), DType::F32, &Device::Cpu)?;
        let msg = model.forward_t(&single, true).expect_err("n=1").to_string();
        assert!(msg.contains("more than one value"), "{msg}");
        assert_eq!(model.forward_t(&single, false)?.dims(), &[1, 3]);
        assert_eq!(
            model
                .forward_t(
                    &Tensor::zeros((1, 3, 40, 40), DType::F32, &Device::Cpu)?,
                    true
                )?
                .dims(),
            &[1, 3]
        );
        Ok(())
    }

    #[test]
    fn final_spatial_follows_the_conv_arithmetic() {
        // 224 -> 112 -> 56 -> 56 -> 28 -> 14 -> 7 (torchvision's resnet18).
        assert_eq!(final_spatial(224), 7);
        // 38 -> 19 -> 10 -> 5 -> 3 -> 2.
        assert_eq!(final_spatial(38), 2);
        assert_eq!(final_spatial(32), 1);
        assert_eq!(final_spatial(1), 1);
    }

    /// Trains a seeded width-4 ResNet-10 for `steps` AdamW steps (lr 1e-2,
    /// no weight decay) in train mode on a fixed batch of four 32x32 images
    /// in which class 1 is brighter; returns the losses and the variables.
    fn train_tiny(steps: usize) -> Result<(Vec<f32>, VarMap)> {
        use candle_nn::Optimizer;
        let config = ResNetConfig {
            layers: vec![1, 1, 1, 1],
            base_width: 4,
            num_classes: 2,
        };
        let (model, varmap) = crate::model::init::build_seeded(&config, 5, &Device::Cpu)?;
        let pixels: Vec<f32> = (0..4 * 3 * 32 * 32)
            .map(|i| {
                let image = i / (3 * 32 * 32);
                let texture = ((i * 7919) % 97) as f32 / 97.0 - 0.5;
                texture + if image % 2 == 1 { 0.5 } else { -0.5 }
            })
            .collect();
        let x = Tensor::from_vec(pixels, (4, 3, 32, 32), &Device::Cpu)?;
        let labels = Tensor::new(&[0u32, 1, 0, 1], &Device::Cpu)?;
        let params = candle_nn::ParamsAdamW {
            lr: 1e-2,
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut opt = candle_nn::AdamW::new(trainable_vars(&varmap), params)?;
        let mut losses = Vec::new();
        for _ in 0..steps {
            let logits = model.forward_t(&x, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
            losses.push(loss.to_scalar::<f32>()?);
            opt.backward_step(&loss)?;
        }
        Ok((losses, varmap))
    }

    fn var_values(varmap: &VarMap, name: &str) -> Result<Vec<f32>> {
        varmap.data().lock().expect("lock")[name]
            .flatten_all()?
            .to_vec1::<f32>()
    }

    #[test]
    fn adamw_steps_change_parameters_and_reduce_loss() -> Result<()> {
        let (_, untrained) = train_tiny(0)?;
        let (losses, trained) = train_tiny(6)?;
        let before = var_values(&untrained, "layer2.0.conv1.weight")?;
        let after = var_values(&trained, "layer2.0.conv1.weight")?;
        let moved = before
            .iter()
            .zip(&after)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(moved > 1e-3, "parameters did not move: {moved}");
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        // Seen: 1.005, 0.400, 0.249, 0.159, 0.082, 0.050.
        assert!(
            losses[5] < 0.5 * losses[0],
            "loss did not decrease: {losses:?}"
        );
        // Train-mode forwards moved the running statistics away from (0, 1).
        let running_var = var_values(&trained, "layer3.0.bn1.running_var")?;
        assert!(running_var.iter().any(|&v| (v - 1.0).abs() > 1e-3));
        Ok(())
    }

    #[test]
    fn training_is_bitwise_reproducible() -> Result<()> {
        let (losses_a, a) = train_tiny(2)?;
        let (losses_b, b) = train_tiny(2)?;
        assert_eq!(
            losses_a.iter().map(|l| l.to_bits()).collect::<Vec<_>>(),
            losses_b.iter().map(|l| l.to_bits()).collect::<Vec<_>>()
        );
        let names: Vec<String> = a.data().lock().expect("lock").keys().cloned().collect();
        for name in names {
            let (va, vb) = (var_values(&a, &name)?, var_values(&b, &name)?);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&va), bits(&vb), "{name}");
        }
        Ok(())
    }

    #[test]
    fn trainable_vars_exclude_running_stats() {
        let (_, varmap) = tiny(2);
        let all = varmap.all_vars().len();
        let trainable = trainable_vars(&varmap);
        // 1 stem bn + 10 block bns + 3 downsample bns, two statistics each.
        assert_eq!(all - trainable.len(), 2 * 14);
    }
}

/// Checks against torchvision outputs recorded by
/// `scripts/make_resnet_fixture.py` (narrow ResNet-18, width 4, 2 classes,
/// randomised weights and running statistics, a 2 x 3 x 38 x 38 input).
#[cfg(test)]
mod torch_reference {
    use super::*;
    use crate::model::init::build_seeded;
    use crate::model::pretrained::load_pretrained;
    use candle_core::{DType, Device};
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/resnet")
            .join(name)
    }

    struct Reference {
        model: ResNet,
        varmap: VarMap,
        io: HashMap<String, Tensor>,
    }

    fn load() -> Reference {
        let config: ResNetConfig = serde_json::from_str(
            &std::fs::read_to_string(fixture("tiny_config.json")).expect("config file"),
        )
        .expect("config json");
        let (model, varmap) = build_seeded(&config, 0, &Device::Cpu).expect("build");
        let report =
            load_pretrained(&varmap, &fixture("tiny.safetensors"), false).expect("load weights");
        assert_eq!(report.loaded.len(), varmap.all_vars().len());
        assert!(report
            .ignored
            .iter()
            .all(|n| n.ends_with("num_batches_tracked")));
        let io = candle_core::safetensors::load(fixture("tiny_io.safetensors"), &Device::Cpu)
            .expect("io file");
        Reference { model, varmap, io }
    }

    /// Largest absolute difference, and the largest magnitude in `expected`.
    fn max_err(got: &Tensor, expected: &Tensor) -> (f32, f32) {
        assert_eq!(got.dims(), expected.dims());
        let err = (got - expected)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("error");
        let scale = expected
            .abs()
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("scale");
        (err, scale)
    }

    fn assert_close(what: &str, got: &Tensor, expected: &Tensor, tol: f32) {
        let (err, scale) = max_err(got, expected);
        eprintln!("{what}: max abs error {err:.3e} (max |ref| {scale:.3e})");
        assert!(
            err <= tol * scale.max(1.0),
            "{what}: max abs error {err} > {tol} x {scale}"
        );
    }

    fn var(varmap: &VarMap, name: &str) -> Tensor {
        varmap.data().lock().expect("lock")[name]
            .as_tensor()
            .clone()
    }

    #[test]
    fn eval_mode_matches_torchvision() {
        let r = load();
        let features = r
            .model
            .forward_features(&r.io["input"], false)
            .expect("features");
        let logits = r.model.head(&features).expect("logits");
        assert_close("eval features", &features, &r.io["eval_features"], 1e-4);
        assert_close("eval logits", &logits, &r.io["eval_logits"], 1e-4);
        let again = r.model.forward_t(&r.io["input"], false).expect("logits");
        assert_close(
            "eval logits via forward_t",
            &again,
            &r.io["eval_logits"],
            1e-4,
        );
    }

    #[test]
    fn train_mode_outputs_running_stats_and_gradients_match_torchvision() {
        let r = load();
        let before = var(&r.varmap, "layer3.0.bn1.running_mean")
            .copy()
            .expect("copy");
        let features = r
            .model
            .forward_features(&r.io["input"], true)
            .expect("features");
        let logits = r.model.head(&features).expect("logits");
        assert_close("train features", &features, &r.io["train_features"], 1e-4);
        assert_close("train logits", &logits, &r.io["train_logits"], 1e-4);

        // One train-mode forward moved every running statistic exactly as
        // torch's (momentum 0.1, unbiased variance).
        let mut checked = 0;
        for (key, expected) in &r.io {
            if let Some(name) = key.strip_prefix("after_train.") {
                assert_close(key, &var(&r.varmap, name), expected, 1e-5);
                checked += 1;
            }
        }
        assert_eq!(checked, 2 * 20);
        let after = var(&r.varmap, "layer3.0.bn1.running_mean");
        assert!(
            max_err(&after, &before).0 > 1e-3,
            "running mean did not move"
        );

        let labels = r.io["labels"].to_dtype(DType::U32).expect("labels");
        let loss = candle_nn::loss::cross_entropy(&logits, &labels).expect("loss");
        assert_close(
            "train loss",
            &loss.reshape(1).expect("reshape"),
            &r.io["train_loss"],
            1e-5,
        );
        let grads = loss.backward().expect("backward");
        let mut checked = 0;
        for (key, expected) in &r.io {
            if let Some(name) = key.strip_prefix("grad.") {
                let grad = grads.get(&var(&r.varmap, name)).expect(name);
                assert_close(key, grad, expected, 1e-4);
                checked += 1;
            }
        }
        assert_eq!(checked, 10);
    }
}
