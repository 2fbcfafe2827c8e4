//! Inference over a set of patches: scores, loss and pooled features.
//!
//! Probabilities and the loss are computed in f64 on the host from the
//! logits, so they do not depend on how candle reduces them.
//!
//! Every pass ends by returning the allocator's parked blocks to the
//! system ([`crate::alloc::release_parked`]): an inference pass's batch
//! differs from the training batch (and the last batch from the others),
//! so its blocks are of sizes the next training steps do not ask for, and
//! inference passes end each epoch (validation), each training (test) and
//! the query (pool). Keeping them would add every pass's working set to the
//! training's.

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
        for (row, &index) in logits_rows(&logits)?.iter().zip(chunk) {
            let (log_p0, log_p1) = log_softmax2(row);
            loss_sum -= if positive[index] { log_p1 } else { log_p0 };
            scores.push(log_p1.exp());
        }
    }
    let loss = if indices.is_empty() {
        f64::NAN
    } else {
        loss_sum / indices.len() as f64
    };
    crate::alloc::release_parked();
    Ok(Evaluation { scores, loss })
}

/// Logits as host rows.
fn logits_rows(logits: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    logits.to_dtype(candle_core::DType::F32)?.to_vec2()
}

/// Log-probabilities of the two classes from a row of two logits, in f64.
fn log_softmax2(row: &[f32]) -> (f64, f64) {
    let (l0, l1) = (f64::from(row[0]), f64::from(row[1]));
    let max = l0.max(l1);
    let log_sum = max + ((l0 - max).exp() + (l1 - max).exp()).ln();
    (l0 - log_sum, l1 - log_sum)
}

/// Pooled features and positive-class probabilities of `indices` from one
/// forward pass per batch.
pub fn embed_and_score(
    model: &ResNet,
    store: &ImageStore,
    indices: &[usize],
    batch_size: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Vec<f64>)> {
    let mut parts = Vec::new();
    let mut scores = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(batch_size.max(1)) {
        let images = make_batch(store, chunk, None, device)?;
        let features = model.forward_features(&images, false)?;
        let logits = model.head(&features)?;
        scores.extend(
            logits_rows(&logits)?
                .iter()
                .map(|row| log_softmax2(row).1.exp()),
        );
        parts.push(features);
    }
    let features = Tensor::cat(&parts, 0)?;
    drop(parts);
    crate::alloc::release_parked();
    Ok((features, scores))
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
    let features = match parts.is_empty() {
        true => Tensor::zeros(
            (0, model.config().feature_dim()),
            candle_core::DType::F32,
            device,
        ),
        false => Tensor::cat(&parts, 0),
    };
    drop(parts);
    crate::alloc::release_parked();
    features
}
