//! Inference over a set of patches: scores, loss and pooled features.
//!
//! Probabilities and the loss are computed in f64 on the host from the
//! logits, so they do not depend on how candle reduces them.

use crate::data::batch::make_batch;
use crate::data::images::ImageStore;
use crate::model::resnet::ResNet;
use candle_core::{Device, Tensor};

/// Scores and mean loss of a model on some patches.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Probability of the positive class, one per evaluated patch, in input order.
    pub scores: Vec<f64>,
    /// Mean cross-entropy over the evaluated patches.
    pub loss: f64,
}

/// Runs the model in evaluation mode on `indices` of `store`, in batches.
///
/// `positive[i]` is the label of store index `i`.
pub fn evaluate(
    model: &ResNet,
    store: &ImageStore,
    positive: &[bool],
    indices: &[usize],
    batch_size: usize,
    device: &Device,
) -> candle_core::Result<Evaluation> {
    let mut scores = Vec::with_capacity(indices.len());
    let mut loss_sum = 0.0;
    for chunk in indices.chunks(batch_size.max(1)) {
        let images = make_batch(store, chunk, None, device)?;
        let logits = model.forward_t(&images, false)?;
        let logits: Vec<Vec<f32>> = logits.to_dtype(candle_core::DType::F32)?.to_vec2()?;
        for (row, &index) in logits.iter().zip(chunk) {
            let (l0, l1) = (row[0] as f64, row[1] as f64);
            let max = l0.max(l1);
            let log_sum = max + ((l0 - max).exp() + (l1 - max).exp()).ln();
            let target = if positive[index] { l1 } else { l0 };
            loss_sum += log_sum - target;
            scores.push((l1 - log_sum).exp());
        }
    }
    let loss = if indices.is_empty() { f64::NAN } else { loss_sum / indices.len() as f64 };
    Ok(Evaluation { scores, loss })
}

/// Globally average-pooled penultimate features of `indices`, one row per patch.
pub fn embed(
    model: &ResNet,
    store: &ImageStore,
    indices: &[usize],
    batch_size: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mut parts = Vec::new();
    for chunk in indices.chunks(batch_size.max(1)) {
        let images = make_batch(store, chunk, None, device)?;
        parts.push(model.forward_features(&images, false)?);
    }
    Tensor::cat(&parts, 0)
}
