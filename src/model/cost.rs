//! What a ResNet costs per image, counted from its layer shapes: the
//! floating-point operations of a forward pass and of a training step, the
//! parameters, and the activations a training step keeps and an inference
//! pass holds at once.
//!
//! FLOPs are two per multiply-add of the convolutions and the linear head,
//! the work their GEMMs do, so that FLOPs per second compare with a GEMM's
//! GFLOP/s. Element-wise layers (batch norm, ReLU, max pooling, the residual
//! add, the global average) cost a few operations per activation, well under
//! 1% of ResNet-18's convolutions, and are not counted. A training step is
//! the forward pass, the weight gradient of every convolution and of the
//! head (as many multiply-adds as the forward pass) and the input gradient
//! of every layer but the stem, whose input (the image) needs none: close to
//! three forward passes.

use super::resnet::{ResNetConfig, IN_CHANNELS};

/// A layer's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Square convolution without bias.
    Conv {
        /// Side of the square kernel.
        kernel: usize,
        /// Stride in both directions.
        stride: usize,
        /// Zero padding on every side.
        padding: usize,
    },
    /// Batch norm (with ReLU where the model applies one).
    BatchNorm,
    /// The stem's 3x3 max pool, stride 2, padding 1.
    MaxPool,
    /// A block's residual add and ReLU.
    ResidualAdd,
    /// Global average pool over the last feature map.
    GlobalPool,
    /// The linear head.
    Linear,
}

/// One layer with its input and output shapes `(channels, height, width)`
/// for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// torchvision's module name (`conv1`, `layer2.0.downsample.0`, `fc`).
    pub name: String,
    /// What the layer computes.
    pub kind: LayerKind,
    /// Input shape.
    pub input: [usize; 3],
    /// Output shape.
    pub output: [usize; 3],
}

impl Layer {
    /// Multiply-adds per image (convolutions and the head; 0 otherwise).
    pub fn multiply_adds(&self) -> u64 {
        let [in_ch, ..] = self.input;
        match self.kind {
            LayerKind::Conv { kernel, .. } => {
                self.output_elements() * (in_ch * kernel * kernel) as u64
            }
            LayerKind::Linear => self.output_elements() * in_ch as u64,
            _ => 0,
        }
    }

    /// Activations the layer outputs per image.
    pub fn output_elements(&self) -> u64 {
        self.output.iter().map(|&d| d as u64).product()
    }

    /// Trainable parameters (running statistics are not trainable).
    pub fn parameters(&self) -> u64 {
        let [in_ch, ..] = self.input;
        let [out_ch, ..] = self.output;
        match self.kind {
            LayerKind::Conv { kernel, .. } => (out_ch * in_ch * kernel * kernel) as u64,
            LayerKind::BatchNorm => 2 * out_ch as u64,
            LayerKind::Linear => (out_ch * in_ch + out_ch) as u64,
            _ => 0,
        }
    }

    /// Whether the layer's input is the image (its input gradient is not needed).
    fn reads_the_image(&self) -> bool {
        self.name == "conv1"
    }
}

/// Output side of a square map after a window of `kernel` with `stride` and `padding`.
fn out_side(side: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (side + 2 * padding - kernel) / stride + 1
}

/// Every layer of the model for `image_size x image_size` inputs, in
/// forward order: the stem, each block's `conv1`, `bn1`, `conv2`, `bn2`,
/// shortcut (`downsample.0`, `downsample.1`) and residual add, then the
/// global pool and the head.
pub fn layers(config: &ResNetConfig, image_size: usize) -> Vec<Layer> {
    let mut layers = Vec::new();
    let mut push = |name: String, kind: LayerKind, input: [usize; 3], channels: usize| {
        let [_, h, w] = input;
        let output = match kind {
            LayerKind::Conv {
                kernel,
                stride,
                padding,
            } => [
                channels,
                out_side(h, kernel, stride, padding),
                out_side(w, kernel, stride, padding),
            ],
            LayerKind::MaxPool => [channels, out_side(h, 3, 2, 1), out_side(w, 3, 2, 1)],
            LayerKind::GlobalPool | LayerKind::Linear => [channels, 1, 1],
            LayerKind::BatchNorm | LayerKind::ResidualAdd => [channels, h, w],
        };
        layers.push(Layer {
            name,
            kind,
            input,
            output,
        });
        output
    };
    let conv = |kernel, stride, padding| LayerKind::Conv {
        kernel,
        stride,
        padding,
    };
    let widths = config.stage_widths();
    let x = [IN_CHANNELS, image_size, image_size];
    let x = push("conv1".into(), conv(7, 2, 3), x, widths[0]);
    let x = push("bn1".into(), LayerKind::BatchNorm, x, widths[0]);
    let mut x = push("maxpool".into(), LayerKind::MaxPool, x, widths[0]);
    for (stage, (&blocks, &width)) in config.layers.iter().zip(&widths).enumerate() {
        for block in 0..blocks {
            let name = |layer: &str| format!("layer{}.{block}.{layer}", stage + 1);
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let input = x;
            let y = push(name("conv1"), conv(3, stride, 1), input, width);
            let y = push(name("bn1"), LayerKind::BatchNorm, y, width);
            let y = push(name("conv2"), conv(3, 1, 1), y, width);
            let y = push(name("bn2"), LayerKind::BatchNorm, y, width);
            if stride != 1 || input[0] != width {
                let s = push(name("downsample.0"), conv(1, stride, 0), input, width);
                push(name("downsample.1"), LayerKind::BatchNorm, s, width);
            }
            x = push(name("add"), LayerKind::ResidualAdd, y, width);
        }
    }
    let pooled = push("avgpool".into(), LayerKind::GlobalPool, x, x[0]);
    push("fc".into(), LayerKind::Linear, pooled, config.num_classes);
    layers
}

/// Per-image costs of a model at one input size (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelCost {
    /// FLOPs of one forward pass.
    pub forward_flops: u64,
    /// FLOPs of one training step (forward, weight and input gradients).
    pub training_flops: u64,
    /// Trainable parameters.
    pub parameters: u64,
    /// Activations a training step keeps for its backward pass: the image
    /// and every layer's output up to the global pool.
    pub training_activations: u64,
    /// Most activations an inference pass holds at once: those of the
    /// largest block (its input and every output inside it), or of the
    /// stem. Batch norm is folded into the convolutions in inference, so
    /// its outputs do not count.
    pub inference_activations: u64,
}

impl ModelCost {
    /// Counts the costs of `config` at `image_size x image_size`.
    pub fn of(config: &ResNetConfig, image_size: usize) -> Self {
        let layers = layers(config, image_size);
        let image = (IN_CHANNELS * image_size * image_size) as u64;
        let mut cost = ModelCost {
            forward_flops: 0,
            training_flops: 0,
            parameters: 0,
            training_activations: image,
            inference_activations: 0,
        };
        // Activations of the current block (or the stem), with its input.
        let mut block = image;
        let mut block_name = "";
        for layer in &layers {
            let flops = 2 * layer.multiply_adds();
            let input_gradient = if layer.reads_the_image() { 0 } else { flops };
            cost.forward_flops += flops;
            cost.training_flops += 2 * flops + input_gradient;
            cost.parameters += layer.parameters();
            if matches!(layer.kind, LayerKind::GlobalPool | LayerKind::Linear) {
                continue;
            }
            cost.training_activations += layer.output_elements();
            let name = block_prefix(&layer.name);
            if name != block_name {
                cost.inference_activations = cost.inference_activations.max(block);
                let [c, h, w] = layer.input;
                block = (c * h * w) as u64;
                block_name = name;
            }
            if layer.kind != LayerKind::BatchNorm {
                block += layer.output_elements();
            }
        }
        cost.inference_activations = cost.inference_activations.max(block);
        cost
    }
}

/// `layer2.0` of `layer2.0.conv1`; the empty string for the stem's layers.
fn block_prefix(name: &str) -> &str {
    match name.match_indices('.').nth(1) {
        Some((second_dot, _)) if name.starts_with("layer") => &name[..second_dot],
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::build_seeded;
    use crate::model::resnet::trainable_vars;
    use candle_core::{DType, Device, Tensor};

    /// ResNet-10 of width 2 with 2 classes.
    fn tiny() -> ResNetConfig {
        ResNetConfig {
            layers: vec![1, 1, 1, 1],
            base_width: 2,
            num_classes: 2,
        }
    }

    #[test]
    fn flops_of_a_tiny_model_match_a_hand_count() {
        // 8 x 8 input. Multiply-adds = out channels x out pixels x in
        // channels x kernel area:
        //   conv1 7x7/2: 8 -> 4 px    2 x 16 x 3 x 49 = 4704   (maxpool: 4 -> 2 px)
        //   layer1.0 (2 px)           2 x 4 x 2 x 9   =  144, twice
        //   layer2.0 (2 -> 1 px)      4 x 1 x 2 x 9 = 72, 4 x 1 x 4 x 9 = 144, 1x1: 4 x 2 = 8
        //   layer3.0 (1 px)           8 x 4 x 9 = 288, 8 x 8 x 9 = 576, 1x1: 8 x 4 = 32
        //   layer4.0 (1 px)           16 x 8 x 9 = 1152, 16 x 16 x 9 = 2304, 1x1: 16 x 8 = 128
        //   fc                        2 x 16 = 32
        let multiply_adds = 4704 + 2 * 144 + (72 + 144 + 8) + (288 + 576 + 32);
        let multiply_adds = multiply_adds + (1152 + 2304 + 128) + 32;
        assert_eq!(multiply_adds, 9728);
        let cost = ModelCost::of(&tiny(), 8);
        assert_eq!(cost.forward_flops, 2 * 9728);
        // Forward, weight gradient and input gradient, except the stem's
        // input gradient.
        assert_eq!(cost.training_flops, 3 * 2 * 9728 - 2 * 4704);
        // Weights: the convolutions above without the pixels, batch norm
        // weight and bias per channel (stem 2, blocks 2 + 2, 4 + 4 + 4, ...),
        // head 16 x 2 + 2.
        let conv = 2 * 3 * 49 + 2 * (2 * 2 * 9) + (4 * 2 * 9 + 4 * 4 * 9 + 4 * 2);
        let conv = conv + (8 * 4 * 9 + 8 * 8 * 9 + 8 * 4) + (16 * 8 * 9 + 16 * 16 * 9 + 16 * 8);
        let norm = 2 * (2 + 2 * 2 + 3 * 4 + 3 * 8 + 3 * 16);
        assert_eq!(cost.parameters, (conv + norm + 16 * 2 + 2) as u64);
    }

    #[test]
    fn activations_of_a_tiny_model_match_a_hand_count() {
        let cost = ModelCost::of(&tiny(), 8);
        // Image 3 x 8 x 8 = 192; stem conv and bn 2 x 16 each, pool 2 x 4;
        // layer1: four 2 x 4 maps and the add; layer2-4: 1-pixel maps, seven
        // per block of their width (conv and bn twice, shortcut conv and bn,
        // add).
        let stem = 192 + 32 + 32 + 8;
        let training = stem + 5 * 8 + 7 * 4 + 7 * 8 + 7 * 16;
        assert_eq!(cost.training_activations, training);
        // Inference (batch norm folded) holds the stem (image, conv, pool:
        // 232) at most; the largest block is layer4 (input 8 + four 16-wide
        // maps: two convolutions, the shortcut and the add = 72).
        assert_eq!(cost.inference_activations, 232);
        let wide = ModelCost::of(
            &ResNetConfig {
                base_width: 64,
                ..tiny()
            },
            8,
        );
        // layer4 of width 512 (input 256 + 4 x 512) outgrows the stem
        // (192 + 64 x 16 + 64 x 4).
        assert_eq!(wide.inference_activations, 256 + 4 * 512);
    }

    #[test]
    fn shapes_and_parameters_agree_with_the_built_model() -> candle_core::Result<()> {
        for (name, size) in [("resnet18", 64), ("resnet10-w16", 37), ("resnet34", 32)] {
            let config = ResNetConfig::from_name(name, 2).unwrap();
            let (model, varmap) = build_seeded(&config, 0, &Device::Cpu)?;
            let counted: usize = trainable_vars(&varmap).iter().map(|v| v.elem_count()).sum();
            let cost = ModelCost::of(&config, size);
            assert_eq!(cost.parameters, counted as u64, "{name}");
            // The last map before the global pool has the model's final size.
            let layers = layers(&config, size);
            let last = &layers[layers.len() - 3];
            let x = Tensor::zeros((1, 3, size, size), DType::F32, &Device::Cpu)?;
            let features = model.forward_features(&x, false)?;
            assert_eq!(features.dims(), [1, last.output[0]], "{name}");
            assert_eq!(last.output[1], crate::model::resnet::final_spatial(size));
        }
        Ok(())
    }

    #[test]
    fn resnet18_at_224_px_costs_what_torchvision_counts() {
        // torchvision's resnet18 (1000 classes) at 224 px: 1,814,073,344
        // multiply-adds (output elements x input channels x kernel area of
        // every Conv2d and Linear, summed by forward hooks) and 11,689,512
        // parameters (`sum(p.numel() for p in model.parameters())`; running
        // statistics are buffers). torchvision documents 1.81 GFLOPS.
        let config = ResNetConfig::from_name("resnet18", 1000).unwrap();
        let cost = ModelCost::of(&config, 224);
        assert_eq!(cost.forward_flops, 2 * 1_814_073_344);
        assert_eq!(cost.parameters, 11_689_512);
    }
}
