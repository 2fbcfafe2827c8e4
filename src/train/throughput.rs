//! Measuring training speed: images per second of full Adam steps on seeded
//! random input. Used by `ablate plan` for its time estimate and by the
//! training-throughput benchmark.

use crate::model::init::build_seeded;
use crate::model::resnet::{trainable_vars, ResNetConfig};
use crate::seed;
use crate::train::adam::Adam;
use candle_core::{Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW};
use rand_distr::{Distribution, StandardNormal};
use std::time::Instant;

/// Images per second of `steps` training steps (after `warmup` unmeasured ones).
///
/// Each step is a full Adam step (forward in training mode, cross-entropy,
/// backward, update); the clock starts and stops on a synchronized device, so
/// asynchronous GPU work is counted.
pub fn training_images_per_second(
    model: &ResNetConfig,
    image_size: usize,
    batch: usize,
    warmup: usize,
    steps: usize,
    device: &Device,
) -> candle_core::Result<f64> {
    let (network, varmap) = build_seeded(model, 0, device)?;
    let params = ParamsAdamW {
        lr: 1e-4,
        weight_decay: 0.0,
        ..ParamsAdamW::default()
    };
    let mut optimizer = Adam::new(trainable_vars(&varmap), params)?;
    let images = random_images(batch, image_size, device)?;
    let labels = Tensor::new(
        (0..batch as u32).map(|i| i % 2).collect::<Vec<u32>>(),
        device,
    )?;
    let mut step = || -> candle_core::Result<()> {
        let logits = network.forward_t(&images, true)?;
        optimizer.backward_step(&candle_nn::loss::cross_entropy(&logits, &labels)?)
    };
    timed(batch, warmup, steps, device, &mut step)
}

/// Images per second of inference: eval-mode forward passes, as the pool
/// embedding and evaluation run them.
pub fn inference_images_per_second(
    model: &ResNetConfig,
    image_size: usize,
    batch: usize,
    warmup: usize,
    steps: usize,
    device: &Device,
) -> candle_core::Result<f64> {
    let (network, _varmap) = build_seeded(model, 0, device)?;
    let images = random_images(batch, image_size, device)?;
    let mut step = || -> candle_core::Result<()> {
        network.forward_t(&images, false)?;
        Ok(())
    };
    timed(batch, warmup, steps, device, &mut step)
}

/// A seeded batch of standard-normal images `[batch, 3, size, size]`.
fn random_images(batch: usize, image_size: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mut rng = seed::stream(0, "throughput-input", &[]);
    let values: Vec<f32> = (0..batch * 3 * image_size * image_size)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_vec(values, (batch, 3, image_size, image_size), device)
}

/// Runs `warmup` then `steps` calls of `step` and returns `batch * steps`
/// over the seconds the measured calls took, device work included.
fn timed(
    batch: usize,
    warmup: usize,
    steps: usize,
    device: &Device,
    step: &mut dyn FnMut() -> candle_core::Result<()>,
) -> candle_core::Result<f64> {
    for _ in 0..warmup {
        step()?;
    }
    device.synchronize()?;
    let started = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    device.synchronize()?;
    Ok((batch * steps) as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_speeds_are_positive_and_finite() {
        let model = ResNetConfig::from_name("resnet10-w4", 2).unwrap();
        for speed in [
            training_images_per_second(&model, 16, 2, 0, 1, &Device::Cpu).unwrap(),
            inference_images_per_second(&model, 16, 2, 0, 1, &Device::Cpu).unwrap(),
        ] {
            assert!(speed.is_finite() && speed > 0.0, "{speed}");
        }
    }
}
