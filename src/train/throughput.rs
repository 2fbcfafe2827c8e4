//! Measuring training speed: images per second of full Adam steps on seeded
//! random input. Used by `ablate plan` for its time estimate and by the
//! training-throughput benchmark.

use crate::model::init::build_seeded;
use crate::model::resnet::{trainable_vars, ResNetConfig};
use crate::seed;
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand_distr::{Distribution, StandardNormal};
use std::time::Instant;

/// Images per second of `steps` training steps (after `warmup` unmeasured ones).
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
    let mut optimizer = AdamW::new(trainable_vars(&varmap), params)?;
    let mut rng = seed::stream(0, "throughput-input", &[]);
    let values: Vec<f32> = (0..batch * 3 * image_size * image_size)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let images = Tensor::from_vec(values, (batch, 3, image_size, image_size), device)?;
    let labels = Tensor::new(
        (0..batch as u32).map(|i| i % 2).collect::<Vec<u32>>(),
        device,
    )?;
    let mut step = || -> candle_core::Result<()> {
        let logits = network.forward_t(&images, true)?;
        optimizer.backward_step(&candle_nn::loss::cross_entropy(&logits, &labels)?)
    };
    for _ in 0..warmup {
        step()?;
    }
    let started = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    Ok((batch * steps) as f64 / started.elapsed().as_secs_f64().max(1e-9))
}
