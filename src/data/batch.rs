//! Turning stored patches into model input tensors.
//!
//! A batch is `(N, 3, H, W)` f32, each channel normalised with the ImageNet
//! mean and standard deviation (`(v / 255 - mean) / std`), as the pretrained
//! backbones expect. Augmentation, when asked for, runs per sample in parallel.
//!
//! Reproducibility: the `d`-th draw of an epoch (its position in the
//! epoch's sample order) is augmented with the stream
//! `seed::stream(seed, "augment", &[epoch, d])`. Its result depends only on
//! (seed, epoch, draw position, patch): not on the number of threads. A
//! patch drawn twice in one epoch (class-balanced sampling draws with
//! replacement) gets two different augmentations.

use super::augment::AugmentConfig;
use super::images::ImageStore;
use crate::seed;
use candle_core::{Device, Tensor};
use image::RgbImage;
use rayon::prelude::*;

/// ImageNet per-channel mean (RGB), in 0..1 units.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet per-channel standard deviation (RGB), in 0..1 units.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Which augmentation stream a batch draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AugmentSeed {
    /// Root seed of the training run.
    pub seed: u64,
    /// Epoch number (a new augmentation of every patch each epoch).
    pub epoch: u64,
    /// Position in the epoch's sample order of the batch's first sample.
    pub first_draw: u64,
}

/// The normalised value of every 8-bit level, per channel (computed in f64,
/// then rounded once to f32).
fn normalisation_table() -> [[f32; 256]; 3] {
    let mut table = [[0f32; 256]; 3];
    for (c, row) in table.iter_mut().enumerate() {
        let (mean, std) = (f64::from(IMAGENET_MEAN[c]), f64::from(IMAGENET_STD[c]));
        for (v, out) in row.iter_mut().enumerate() {
            *out = ((v as f64 / 255.0 - mean) / std) as f32;
        }
    }
    table
}

/// Writes `img` normalised, channel-major (`3 x H x W`), into `out`
/// (length `3 * width * height`).
pub fn normalize_into(img: &RgbImage, out: &mut [f32]) {
    normalize_with(&normalisation_table(), img, out);
}

fn normalize_with(table: &[[f32; 256]; 3], img: &RgbImage, out: &mut [f32]) {
    let plane = img.width() as usize * img.height() as usize;
    assert_eq!(
        out.len(),
        3 * plane,
        "output buffer must hold 3 x H x W values"
    );
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = table[c][px[c] as usize];
        }
    }
}

/// Builds the f32 `(N, 3, H, W)` batch of store images `indices` (in that
/// order), augmented if `augment` is given (see the module header for the
/// random streams). Fails if an index is out of range or the tensor cannot be
/// created on `device`.
pub fn make_batch(
    store: &ImageStore,
    indices: &[usize],
    augment: Option<(&AugmentConfig, AugmentSeed)>,
    device: &Device,
) -> candle_core::Result<Tensor> {
    if let Some(&bad) = indices.iter().find(|&&i| i >= store.len()) {
        candle_core::bail!(
            "batch index {bad} is out of range: the image store holds {} images",
            store.len()
        );
    }
    let size = store.size() as usize;
    let sample_len = 3 * size * size;
    let table = normalisation_table();
    let mut data = vec![0f32; indices.len() * sample_len];
    data.par_chunks_mut(sample_len)
        .zip(indices.par_iter())
        .enumerate()
        .for_each(|(position, (out, &index))| {
            let img = store.get(index);
            match augment {
                Some((cfg, s)) => {
                    let draw = s.first_draw + position as u64;
                    let mut rng = seed::stream(s.seed, "augment", &[s.epoch, draw]);
                    normalize_with(&table, &super::augment::augment(img, cfg, &mut rng), out);
                }
                None => normalize_with(&table, img, out),
            }
        });
    Tensor::from_vec(data, (indices.len(), 3, size, size), device)
}

/// Class indices as a `u32` tensor of shape `(N,)` (the form candle's
/// cross-entropy expects).
pub fn labels_tensor(labels: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    let values = labels
        .iter()
        .map(|&l| {
            u32::try_from(l)
                .map_err(|_| candle_core::Error::Msg(format!("label {l} does not fit in u32")))
        })
        .collect::<candle_core::Result<Vec<u32>>>()?;
    Tensor::from_vec(values, labels.len(), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::augment;
    use image::Rgb;
    use rand::Rng;

    fn store(n: usize, size: u32) -> ImageStore {
        let images = (0..n)
            .map(|i| {
                let mut rng = seed::stream(9, "test-image", &[i as u64]);
                RgbImage::from_fn(size, size, |_, _| {
                    Rgb([rng.random(), rng.random(), rng.random()])
                })
            })
            .collect();
        ImageStore::from_images(images, size).unwrap()
    }

    #[test]
    fn normalises_a_constant_image_exactly() {
        // (0, 255, 51) -> (0 - 0.485) / 0.229, (1 - 0.456) / 0.224, (0.2 - 0.406) / 0.225
        let img = RgbImage::from_pixel(2, 2, Rgb([0, 255, 51]));
        let store = ImageStore::from_images(vec![img], 2).unwrap();
        let batch = make_batch(&store, &[0, 0], None, &Device::Cpu).unwrap();
        assert_eq!(batch.dims(), &[2, 3, 2, 2]);
        let values = batch.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected = [
            -2.117_903_930_131_f64,
            2.428_571_428_571,
            -0.915_555_555_556,
        ];
        for (i, v) in values.iter().enumerate() {
            let want = expected[(i / 4) % 3];
            assert!(
                (f64::from(*v) - want).abs() < 1e-6,
                "value {i}: {v} vs {want}"
            );
        }
    }

    #[test]
    fn normalize_into_is_channel_major() {
        let img = RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let mut out = [0f32; 6];
        normalize_into(&img, &mut out);
        let (r1, r0) = ((1.0 - 0.485) / 0.229, -0.485 / 0.229);
        let (b0, b1) = (-0.406 / 0.225, (1.0 - 0.406) / 0.225);
        let g0 = -0.456 / 0.224;
        let want = [r1, r0, g0, g0, b0, b1];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn unaugmented_batch_matches_the_store() {
        let s = store(3, 4);
        let batch = make_batch(&s, &[2, 0], None, &Device::Cpu).unwrap();
        let values = batch.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut want = vec![0f32; 2 * 48];
        normalize_into(s.get(2), &mut want[..48]);
        normalize_into(s.get(0), &mut want[48..]);
        assert_eq!(values, want);
    }

    #[test]
    fn augmentation_depends_on_seed_epoch_and_draw_position_only() {
        let s = store(6, 16);
        let cfg = AugmentConfig::default();
        let seed = AugmentSeed {
            seed: 3,
            epoch: 1,
            first_draw: 0,
        };
        let run = |threads: usize, indices: &[usize], seed: AugmentSeed| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| make_batch(&s, indices, Some((&cfg, seed)), &Device::Cpu))
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let one = run(1, &[0, 1, 2, 3, 4, 5], seed);
        let three = run(3, &[0, 1, 2, 3, 4, 5], seed);
        assert_eq!(one, three);
        // Sample 4 alone, drawn at position 4, equals sample 4 in the full batch.
        let plane = 3 * 16 * 16;
        let at_four = AugmentSeed {
            first_draw: 4,
            ..seed
        };
        assert_eq!(run(3, &[4], at_four), one[4 * plane..5 * plane].to_vec());
        // One patch drawn twice gets two augmentations.
        let twice = run(1, &[4, 4], seed);
        assert_ne!(twice[..plane], twice[plane..]);
        // And equals augmenting it directly with its documented stream.
        let mut rng = seed::stream(3, "augment", &[1, 4]);
        let mut want = vec![0f32; plane];
        normalize_into(&augment(s.get(4), &cfg, &mut rng), &mut want);
        assert_eq!(one[4 * plane..5 * plane], want[..]);
        // Another epoch augments differently; no augmentation differs too.
        assert_ne!(
            run(
                1,
                &[4],
                AugmentSeed {
                    epoch: 2,
                    ..at_four
                }
            ),
            want
        );
        let plain = make_batch(&s, &[4], None, &Device::Cpu).unwrap();
        assert_ne!(plain.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
    }

    #[test]
    fn out_of_range_index_is_an_error() {
        let err = make_batch(&store(2, 4), &[0, 2], None, &Device::Cpu).unwrap_err();
        assert!(
            err.to_string().contains("batch index 2 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn empty_batch_has_zero_rows() {
        let batch = make_batch(&store(2, 4), &[], None, &Device::Cpu).unwrap();
        assert_eq!(batch.dims(), &[0, 3, 4, 4]);
    }

    #[test]
    fn labels_become_u32() {
        let t = labels_tensor(&[1, 0, 1], &Device::Cpu).unwrap();
        assert_eq!(t.dtype(), candle_core::DType::U32);
        assert_eq!(t.to_vec1::<u32>().unwrap(), [1, 0, 1]);
    }

    /// Timing check, run with `cargo test --lib data::batch -- --ignored --nocapture`
    /// (meaningful only with optimisations).
    #[test]
    #[ignore]
    fn timing() {
        let cfg = AugmentConfig::default();
        for size in [64u32, 224] {
            let s = store(64, size);
            let indices: Vec<usize> = (0..32).collect();
            for augmented in [false, true] {
                // Best of 5 rounds: the minimum is the least disturbed by other load.
                let mut ms = f64::INFINITY;
                for round in 0..5u64 {
                    let reps = 10u64;
                    let start = std::time::Instant::now();
                    for epoch in 0..reps {
                        let seed = AugmentSeed {
                            seed: round,
                            epoch,
                            first_draw: 0,
                        };
                        let aug = augmented.then_some((&cfg, seed));
                        std::hint::black_box(make_batch(&s, &indices, aug, &Device::Cpu).unwrap());
                    }
                    ms = ms.min(start.elapsed().as_secs_f64() / reps as f64 * 1e3);
                }
                println!("batch of 32 at {size}px, augmented {augmented}: {ms:.2} ms");
            }
        }
    }
}
