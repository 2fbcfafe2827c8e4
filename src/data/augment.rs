//! Training-time augmentation of RGB patches.
//!
//! [`augment`] reproduces the reference pipeline (albumentations 1.3.1, run on
//! 8-bit images after resizing to the input size), in the same order:
//!
//! 1. random scale about the centre, factor uniform in `1 ± 0.5`, output size
//!    kept: zooming in crops, zooming out fills the border by reflection
//!    (reference: `ShiftScaleRotate` with shift and rotation 0, p 1);
//! 2. p 0.5: one of transpose / horizontal flip / vertical flip;
//! 3. p 0.8: one of an elastic warp / a rotation by up to ±25 degrees;
//! 4. p 0.2: one of box blur / Gaussian blur / Gaussian noise / median blur;
//! 5. p 0.5: brightness and contrast, each ±0.2.
//!
//! Every step is a small pure function on an [`RgbImage`] (public, so each can
//! be tested and reused); [`augment`] only draws their parameters. Like the
//! reference, each step reads and writes 8-bit images (values rounded and
//! clamped in between). Geometric steps sample bilinearly, with the
//! reflect-101 border (`dcb|abcd|cba`, OpenCV's default) used by every step
//! that reads outside the image.
//!
//! Sizes of the intensity steps (blur kernels 3 to 7 px, noise variance 10 to
//! 50 in 0..255 units) are absolute, as in the reference; geometric amounts
//! are relative to the image side, so they mean the same at 64 and 224 px.
//!
//! The reference's elastic transform (alpha 1, sigma 50 px, alpha_affine 50 px)
//! is in effect a random affine warp: three points a third of the side from the
//! centre move by up to 50 px (at 224 px), while its smoothed displacement
//! field moves pixels by far less than one pixel. [`elastic`] therefore warps
//! by such an affine map plus, optionally (`elastic_alpha > 0`), a smooth field
//! interpolated from a coarse grid of random displacements; the default keeps
//! the reference's behaviour (no visible field).

use image::RgbImage;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Augmentation settings; [`Default`] gives the reference pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Probability of the random scale step (default 1.0).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub scale_p: f32,
    /// Scale factor range `1 ± scale_limit` (default 0.5; must be below 1).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub scale_limit: f32,
    /// Probability of one of transpose / h-flip / v-flip (default 0.5).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub flip_p: f32,
    /// Probability of one of elastic warp / rotation (default 0.8).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub warp_p: f32,
    /// Largest rotation angle in degrees, either direction (default 25).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub rotate_limit: f32,
    /// Elastic warp: largest move of the affine control points, as a fraction
    /// of the image side (default 50/224, the reference's 50 px at 224 px).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub elastic_affine: f32,
    /// Elastic warp: largest displacement of the smooth field, as a fraction of
    /// the image side (default 0: the reference's field is below one pixel).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub elastic_alpha: f32,
    /// Elastic warp: cells per side of the displacement grid (default 4).
    pub elastic_grid: u32,
    /// Probability of one of box blur / Gaussian blur / noise / median blur (default 0.2).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub blur_p: f32,
    /// Largest blur kernel side in pixels, odd, at least 3 (default 7; kernels are 3..=limit, odd).
    pub blur_limit: u32,
    /// Smallest Gaussian noise variance, in 0..255 units squared (default 10).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub noise_var_min: f32,
    /// Largest Gaussian noise variance (default 50).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub noise_var_max: f32,
    /// Probability of the brightness/contrast step (default 0.5).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub brightness_contrast_p: f32,
    /// Brightness shift range `± brightness_limit` of full scale (default 0.2).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub brightness_limit: f32,
    /// Contrast factor range `1 ± contrast_limit` (default 0.2; at most 1).
    #[serde(serialize_with = "crate::setting::shortest_f32")]
    pub contrast_limit: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            scale_p: 1.0,
            scale_limit: 0.5,
            flip_p: 0.5,
            warp_p: 0.8,
            rotate_limit: 25.0,
            elastic_affine: 50.0 / 224.0,
            elastic_alpha: 0.0,
            elastic_grid: 4,
            blur_p: 0.2,
            blur_limit: 7,
            noise_var_min: 10.0,
            noise_var_max: 50.0,
            brightness_contrast_p: 0.5,
            brightness_limit: 0.2,
            contrast_limit: 0.2,
        }
    }
}

/// An augmentation setting outside its valid range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("augment setting `{key}` = {value} is invalid: {expected}")]
pub struct AugmentConfigError {
    /// The setting's name.
    pub key: &'static str,
    /// Its value, as written.
    pub value: String,
    /// The valid range.
    pub expected: &'static str,
}

impl AugmentConfig {
    /// Checks every setting's range ([`augment`] itself never panics, but
    /// out-of-range values would silently mean something else).
    pub fn validate(&self) -> Result<(), AugmentConfigError> {
        let probabilities = [
            ("scale_p", self.scale_p),
            ("flip_p", self.flip_p),
            ("warp_p", self.warp_p),
            ("blur_p", self.blur_p),
            ("brightness_contrast_p", self.brightness_contrast_p),
        ];
        for (key, p) in probabilities {
            check(key, p, (0.0..=1.0).contains(&p), "a probability in [0, 1]")?;
        }
        let s = self.scale_limit;
        check(
            "scale_limit",
            s,
            (0.0..1.0).contains(&s),
            "in [0, 1) (factors stay positive)",
        )?;
        let non_negative = [
            ("rotate_limit", self.rotate_limit),
            ("elastic_affine", self.elastic_affine),
            ("elastic_alpha", self.elastic_alpha),
            ("noise_var_min", self.noise_var_min),
            ("brightness_limit", self.brightness_limit),
        ];
        for (key, v) in non_negative {
            check(key, v, v.is_finite() && v >= 0.0, "a finite number >= 0")?;
        }
        let (lo, hi) = (self.noise_var_min, self.noise_var_max);
        check(
            "noise_var_max",
            hi,
            hi.is_finite() && hi >= lo,
            "finite and >= noise_var_min",
        )?;
        let c = self.contrast_limit;
        check("contrast_limit", c, (0.0..=1.0).contains(&c), "in [0, 1]")?;
        let b = self.blur_limit;
        check("blur_limit", b, b >= 3 && b % 2 == 1, "an odd number >= 3")?;
        let g = self.elastic_grid;
        check("elastic_grid", g, g >= 1, "at least 1")
    }
}

fn check(
    key: &'static str,
    value: impl ToString,
    ok: bool,
    expected: &'static str,
) -> Result<(), AugmentConfigError> {
    if ok {
        Ok(())
    } else {
        Err(AugmentConfigError {
            key,
            value: value.to_string(),
            expected,
        })
    }
}

/// Applies the random pipeline described in the module header; the output has
/// the input's size. All randomness comes from `rng`, drawn in a fixed order,
/// so a seeded stream gives the same result on every machine. Transpose is
/// only drawn for square images (it would change a non-square image's size).
pub fn augment(img: &RgbImage, cfg: &AugmentConfig, rng: &mut impl Rng) -> RgbImage {
    let mut out = img.clone();
    if chance(rng, cfg.scale_p) {
        let factor = uniform(rng, 1.0 - cfg.scale_limit, 1.0 + cfg.scale_limit);
        out = scale(&out, factor);
    }
    if chance(rng, cfg.flip_p) {
        let choices = if out.width() == out.height() { 3 } else { 2 };
        out = match rng.random_range(0..choices) {
            0 => hflip(&out),
            1 => vflip(&out),
            _ => transpose(&out),
        };
    }
    if chance(rng, cfg.warp_p) {
        out = if rng.random::<bool>() {
            let warp = ElasticWarp::sample(out.width(), out.height(), cfg, rng);
            elastic(&out, &warp)
        } else {
            rotate(&out, uniform(rng, -cfg.rotate_limit, cfg.rotate_limit))
        };
    }
    if chance(rng, cfg.blur_p) {
        let kernel = odd_kernel(rng, cfg.blur_limit);
        out = match rng.random_range(0..4) {
            0 => box_blur(&out, kernel),
            1 => gaussian_blur(&out, kernel, opencv_sigma(kernel)),
            2 => {
                let variance = uniform(rng, cfg.noise_var_min, cfg.noise_var_max);
                gaussian_noise(&out, variance.max(0.0).sqrt(), rng)
            }
            _ => median_blur(&out, kernel),
        };
    }
    if chance(rng, cfg.brightness_contrast_p) {
        let contrast = 1.0 + uniform(rng, -cfg.contrast_limit, cfg.contrast_limit);
        let brightness = uniform(rng, -cfg.brightness_limit, cfg.brightness_limit);
        out = brightness_contrast(&out, contrast, brightness);
    }
    out
}

/// `true` with probability `p` (no panic outside [0, 1]: below 0 never, above 1 always).
fn chance(rng: &mut impl Rng, p: f32) -> bool {
    rng.random::<f32>() < p
}

/// Uniform in `[lo, hi)` (no panic on an empty range).
fn uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// A uniformly drawn odd kernel side in `3..=limit`.
fn odd_kernel(rng: &mut impl Rng, limit: u32) -> u32 {
    3 + 2 * rng.random_range(0..=(limit.max(3) - 3) / 2)
}

/// The sigma OpenCV derives for a Gaussian kernel of side `k` when none is given
/// (the reference's `GaussianBlur` passes sigma 0).
pub fn opencv_sigma(k: u32) -> f32 {
    0.3 * ((k as f32 - 1.0) * 0.5 - 1.0) + 0.8
}

// ---------------------------------------------------------------- exact ops

/// Mirrors left-right.
pub fn hflip(img: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(img)
}

/// Mirrors top-bottom.
pub fn vflip(img: &RgbImage) -> RgbImage {
    image::imageops::flip_vertical(img)
}

/// Swaps rows and columns: output `(x, y)` is input `(y, x)`.
pub fn transpose(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.height(), img.width(), |x, y| *img.get_pixel(y, x))
}

/// `contrast * v + brightness * 255`, rounded and clamped (the reference's
/// brightness-by-max formula: contrast scales about 0, brightness shifts by a
/// fraction of full scale).
pub fn brightness_contrast(img: &RgbImage, contrast: f32, brightness: f32) -> RgbImage {
    let lut: Vec<u8> = (0..256)
        .map(|v| to_u8(v as f32 * contrast + brightness * 255.0))
        .collect();
    map_subpixels(img, |v| lut[v as usize])
}

/// Adds independent `N(0, std^2)` noise to every channel value (0..255 units).
pub fn gaussian_noise(img: &RgbImage, std: f32, rng: &mut impl Rng) -> RgbImage {
    map_subpixels(img, |v| {
        let z: f32 = rng.sample(StandardNormal);
        to_u8(v as f32 + std * z)
    })
}

fn map_subpixels(img: &RgbImage, mut f: impl FnMut(u8) -> u8) -> RgbImage {
    let data: Vec<u8> = img.as_raw().iter().map(|&v| f(v)).collect();
    RgbImage::from_raw(img.width(), img.height(), data).expect("same size as the input")
}

/// Rounds to the nearest 8-bit value (halves up); saturates, and maps NaN to 0.
fn to_u8(v: f32) -> u8 {
    // `as` truncates toward zero and saturates, so adding one half rounds
    // every value >= -0.5 and sends the rest to 0; unlike `f32::round` it
    // needs no library call on baseline x86-64.
    (v + 0.5) as u8
}

/// `floor` by truncation (no library call); exact for `v` within the `i32`
/// range (the resampling clamps coordinates to ±1e7); NaN gives 0.
fn floor_i32(v: f32) -> i32 {
    let t = v as i32;
    if (t as f32) > v {
        t - 1
    } else {
        t
    }
}

/// Reflect-101 index into `0..n` (`... 2 1 | 0 1 2 ... n-1 | n-2 ...`), for any `i`.
pub fn reflect101(i: i64, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let m = i.rem_euclid(period);
    (if m >= n as i64 { period - m } else { m }) as usize
}

// ---------------------------------------------------------------- geometry

/// An affine map from output pixel coordinates to source coordinates:
/// `source = (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5])`.
/// Pixel centres are at integer coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [f32; 6]);

impl Affine {
    /// The identity map.
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// Maps a point.
    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        let m = &self.0;
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    /// The affine map sending each `from[i]` to `to[i]`; `None` if the three
    /// `from` points are (nearly) collinear.
    pub fn through(from: [[f32; 2]; 3], to: [[f32; 2]; 3]) -> Option<Affine> {
        let [[x0, y0], [x1, y1], [x2, y2]] = from.map(|p| p.map(f64::from));
        let det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1);
        if det.abs() < 1e-9 {
            return None;
        }
        // Cramer's rule for [x y 1] * [a b c]^T = t, once per output coordinate.
        let solve = |t: [f64; 3]| {
            let a = (t[0] * (y1 - y2) - y0 * (t[1] - t[2]) + (t[1] * y2 - t[2] * y1)) / det;
            let b = (x0 * (t[1] - t[2]) - t[0] * (x1 - x2) + (x1 * t[2] - x2 * t[1])) / det;
            let c = (x0 * (y1 * t[2] - y2 * t[1]) - y0 * (x1 * t[2] - x2 * t[1])
                + t[0] * (x1 * y2 - x2 * y1))
                / det;
            [a as f32, b as f32, c as f32]
        };
        let [a, b, c] = solve(to.map(|p| f64::from(p[0])));
        let [d, e, f] = solve(to.map(|p| f64::from(p[1])));
        Some(Affine([a, b, c, d, e, f]))
    }
}

/// Image centre in pixel coordinates.
fn centre(img: &RgbImage) -> (f32, f32) {
    (
        (img.width() as f32 - 1.0) / 2.0,
        (img.height() as f32 - 1.0) / 2.0,
    )
}

/// Scales about the centre by `factor`, keeping the size: `factor > 1` zooms
/// in (crops), `factor < 1` zooms out (the border is filled by reflection).
pub fn scale(img: &RgbImage, factor: f32) -> RgbImage {
    warp_affine(img, &scale_map(img, factor))
}

/// The map of [`scale`]: output pixels to source pixels, about the centre.
fn scale_map(img: &RgbImage, factor: f32) -> Affine {
    let (cx, cy) = centre(img);
    let inv = 1.0 / factor;
    Affine([inv, 0.0, cx - cx * inv, 0.0, inv, cy - cy * inv])
}

/// Rotates about the centre by `degrees`, counter-clockwise as displayed
/// (OpenCV's convention); corners are filled by reflection.
pub fn rotate(img: &RgbImage, degrees: f32) -> RgbImage {
    let (cx, cy) = centre(img);
    let (sin, cos) = degrees.to_radians().sin_cos();
    // source - c = [[cos, -sin], [sin, cos]] (output - c)
    let m = [
        cos,
        -sin,
        cx - cos * cx + sin * cy,
        sin,
        cos,
        cy - sin * cx - cos * cy,
    ];
    warp_affine(img, &Affine(m))
}

/// Resamples `img` at `map(output pixel)` (bilinear, reflect-101 border).
pub fn warp_affine(img: &RgbImage, map: &Affine) -> RgbImage {
    remap(img, |x, y| map.apply(x, y))
}

/// Parameters of one elastic warp: `source = affine(p + field(p))`.
#[derive(Debug, Clone, PartialEq)]
pub struct ElasticWarp {
    /// The affine part, output to source coordinates.
    pub affine: Affine,
    /// Cells per side of the displacement grid.
    pub grid: usize,
    /// `(grid + 1)^2` control displacements `[dx, dy]` in pixels, row-major;
    /// the field between them is bilinear. Empty means no field.
    pub displacements: Vec<[f32; 2]>,
}

impl ElasticWarp {
    /// Draws a warp for a `width x height` image from `cfg`'s elastic settings:
    /// the reference's three control points (a third of the side from the
    /// centre) each move by up to `elastic_affine * side` per coordinate, and
    /// grid displacements are uniform in `± elastic_alpha * side`.
    pub fn sample(width: u32, height: u32, cfg: &AugmentConfig, rng: &mut impl Rng) -> ElasticWarp {
        let side = width.min(height) as f32;
        let (cx, cy) = ((width as f32 - 1.0) / 2.0, (height as f32 - 1.0) / 2.0);
        let q = side / 3.0;
        let anchors = [[cx + q, cy + q], [cx + q, cy - q], [cx - q, cy - q]];
        let shift = cfg.elastic_affine * side;
        let moved = anchors.map(|[x, y]| {
            [
                x + uniform(rng, -shift, shift),
                y + uniform(rng, -shift, shift),
            ]
        });
        // The image content at an anchor moves to its moved point, so output
        // coordinates map back from the moved points to the anchors.
        let affine = Affine::through(moved, anchors).unwrap_or(Affine::IDENTITY);
        let grid = cfg.elastic_grid.max(1) as usize;
        let amount = cfg.elastic_alpha * side;
        let displacements = if amount > 0.0 {
            (0..(grid + 1) * (grid + 1))
                .map(|_| [uniform(rng, -amount, amount), uniform(rng, -amount, amount)])
                .collect()
        } else {
            Vec::new()
        };
        ElasticWarp {
            affine,
            grid,
            displacements,
        }
    }
}

/// Warps `img` by an [`ElasticWarp`] in one resampling (bilinear, reflect-101 border).
pub fn elastic(img: &RgbImage, warp: &ElasticWarp) -> RgbImage {
    let g = warp.grid.max(1);
    if warp.displacements.len() != (g + 1) * (g + 1) {
        return warp_affine(img, &warp.affine);
    }
    // Grid coordinates per pixel: control points span the image corner to corner.
    let sx = g as f32 / (img.width().max(2) - 1) as f32;
    let sy = g as f32 / (img.height().max(2) - 1) as f32;
    let d = &warp.displacements;
    remap(img, |x, y| {
        let (gx, gy) = (x * sx, y * sy);
        let (i, j) = ((gx as usize).min(g - 1), (gy as usize).min(g - 1));
        let (fx, fy) = (gx - i as f32, gy - j as f32);
        let at = |di: usize, dj: usize| d[(j + dj) * (g + 1) + i + di];
        let lerp = |k: usize| {
            let top = at(0, 0)[k] * (1.0 - fx) + at(1, 0)[k] * fx;
            let bottom = at(0, 1)[k] * (1.0 - fx) + at(1, 1)[k] * fx;
            top * (1.0 - fy) + bottom * fy
        };
        warp.affine.apply(x + lerp(0), y + lerp(1))
    })
}

/// Bilinear resampling: output pixel `(x, y)` is `img` at `map(x, y)`, with
/// the reflect-101 border outside the image.
///
/// Each row runs in passes over plain arrays ([`RowSamples`]): the source
/// points, then their integer and fractional parts and the bilinear weights
/// (branch-free), then the four taps per pixel, read from the channel values
/// converted to floats once and blended with all three channels in one
/// vector ([`blend`]). Every value comes from the same float operations in
/// the same order as in a pixel-at-a-time loop (the test
/// `remap_equals_the_pixel_loop` holds the two equal byte for byte).
fn remap(img: &RgbImage, map: impl Fn(f32, f32) -> (f32, f32)) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    // One float more than the pixels, so that every tap can read four
    // floats (its pixel's three channels and one it ignores).
    let src: Vec<f32> = img
        .as_raw()
        .iter()
        .map(|&v| f32::from(v))
        .chain([0.0])
        .collect();
    let texel = |i: usize| -> [f32; 4] { src[i..i + 4].try_into().expect("four floats") };
    // One byte more than the pixels: each pixel is written as four bytes,
    // the last of which the next pixel overwrites.
    let mut out = vec![0u8; w * h * 3 + 1];
    let mut samples = RowSamples::new(w);
    for y in 0..h {
        for (x, point) in samples.points.iter_mut().enumerate() {
            *point = map(x as f32, y as f32);
        }
        samples.split_points();
        for x in 0..w {
            let at = (y * w + x) * 3;
            let px: &mut [u8; 4] = (&mut out[at..at + 4]).try_into().expect("four bytes");
            if !samples.finite[x] {
                *px = [0; 4]; // a degenerate map leaves black rather than panicking
                continue;
            }
            let [a, b, c, d] = taps(samples.corner[x], w, h);
            *px = blend([texel(a), texel(b), texel(c), texel(d)], samples.weights[x]);
        }
    }
    out.truncate(w * h * 3);
    RgbImage::from_raw(w as u32, h as u32, out).expect("buffer matches the size")
}

/// One output pixel from the four pixels around its source point: per
/// lane, `a wa + b wb + c wc + d wd`, summed left to right, then rounded to
/// 8 bits as [`to_u8`] does. Each texel holds a pixel's three channels and
/// one more float, whose lane is computed too and which the caller discards.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn blend(texels: [[f32; 4]; 4], weights: [f32; 4]) -> [u8; 4] {
    use std::arch::x86_64::*;
    // SAFETY: these intrinsics need SSE2, which is part of x86-64: every
    // CPU this code is compiled for runs them. They read and write only
    // their arguments.
    unsafe {
        // The scalar operations on four lanes at once: products and sums
        // are exactly rounded, so each lane equals its scalar computation.
        let lanes = |[a, b, c, d]: [f32; 4]| _mm_set_ps(d, c, b, a);
        let term = |i: usize| _mm_mul_ps(lanes(texels[i]), _mm_set1_ps(weights[i]));
        let sum = _mm_add_ps(_mm_add_ps(_mm_add_ps(term(0), term(1)), term(2)), term(3));
        // `to_u8`: add one half, saturate, truncate; NaN gives 0 (MAXPS
        // returns its second operand when the first is NaN).
        let clamped = _mm_min_ps(
            _mm_max_ps(_mm_add_ps(sum, _mm_set1_ps(0.5)), _mm_setzero_ps()),
            _mm_set1_ps(255.0),
        );
        let ints = _mm_cvttps_epi32(clamped);
        let words = _mm_packs_epi32(ints, ints);
        let bytes = _mm_packus_epi16(words, words);
        _mm_cvtsi128_si32(bytes).to_le_bytes()
    }
}

/// [`blend`] one lane at a time (other architectures, and the reference the
/// x86-64 version is tested against).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn blend_lanes(texels: [[f32; 4]; 4], weights: [f32; 4]) -> [u8; 4] {
    let [pa, pb, pc, pd] = texels;
    let [wa, wb, wc, wd] = weights;
    std::array::from_fn(|k| to_u8(pa[k] * wa + pb[k] * wb + pc[k] * wc + pd[k] * wd))
}

#[cfg(not(target_arch = "x86_64"))]
use blend_lanes as blend;

/// Where the pixels of one output row sample the source, as parallel arrays.
struct RowSamples {
    /// Source point `(x, y)` of each pixel.
    points: Vec<(f32, f32)>,
    /// Whether both coordinates of the point are finite (else the pixel stays black).
    finite: Vec<bool>,
    /// Column and row of the top-left pixel of the 2 x 2 neighbourhood
    /// around the point (may lie outside the image).
    corner: Vec<(i32, i32)>,
    /// Weights of the top-left, top-right, bottom-left and bottom-right pixels.
    weights: Vec<[f32; 4]>,
}

impl RowSamples {
    fn new(width: usize) -> Self {
        Self {
            points: vec![(0.0, 0.0); width],
            finite: vec![false; width],
            corner: vec![(0, 0); width],
            weights: vec![[0.0; 4]; width],
        }
    }

    /// Splits every point into its neighbourhood's corner and the bilinear
    /// weights.
    fn split_points(&mut self) {
        // Coordinates beyond ±1e7 are clamped there, so the i32 arithmetic
        // cannot overflow (they reflect as ±1e7 does).
        const FAR: f32 = 1.0e7;
        let outputs = self
            .finite
            .iter_mut()
            .zip(&mut self.corner)
            .zip(&mut self.weights);
        for (&(sx, sy), ((finite, corner), weights)) in self.points.iter().zip(outputs) {
            *finite = sx.is_finite() && sy.is_finite();
            let (sx, sy) = (sx.clamp(-FAR, FAR), sy.clamp(-FAR, FAR));
            let (x0, y0) = (floor_i32(sx), floor_i32(sy));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            *corner = (x0, y0);
            *weights = bilinear_weights(fx, fy);
        }
    }
}

/// Weights of the top-left, top-right, bottom-left and bottom-right pixels
/// for a point `(fx, fy)` past the top-left one.
fn bilinear_weights(fx: f32, fy: f32) -> [f32; 4] {
    [
        (1.0 - fx) * (1.0 - fy),
        fx * (1.0 - fy),
        (1.0 - fx) * fy,
        fx * fy,
    ]
}

/// Offsets of the first channel of the 2 x 2 pixels whose top-left pixel is
/// `(x0, y0)` in a `w x h` RGB buffer, reflected at the border.
fn taps((x0, y0): (i32, i32), w: usize, h: usize) -> [usize; 4] {
    // Most samples fall inside the image: skip the reflection there.
    let inside = x0 >= 0 && y0 >= 0 && (x0 as usize) + 1 < w && (y0 as usize) + 1 < h;
    let (xa, xb, ya, yb) = if inside {
        let (x0, y0) = (x0 as usize, y0 as usize);
        (x0, x0 + 1, y0, y0 + 1)
    } else {
        let (x0, y0) = (i64::from(x0), i64::from(y0));
        (
            reflect101(x0, w),
            reflect101(x0 + 1, w),
            reflect101(y0, h),
            reflect101(y0 + 1, h),
        )
    };
    [
        (ya * w + xa) * 3,
        (ya * w + xb) * 3,
        (yb * w + xa) * 3,
        (yb * w + xb) * 3,
    ]
}

// ---------------------------------------------------------------- filters

/// Mean over a `k x k` window (`k` odd), reflect-101 border (OpenCV `blur`).
pub fn box_blur(img: &RgbImage, k: u32) -> RgbImage {
    let k = k.max(1) | 1;
    separable(img, &vec![1.0 / k as f32; k as usize])
}

/// Gaussian blur with a `k x k` kernel (`k` odd) of standard deviation `sigma`,
/// weights normalised to sum 1, reflect-101 border.
pub fn gaussian_blur(img: &RgbImage, k: u32, sigma: f32) -> RgbImage {
    let k = k.max(1) | 1;
    let r = (k / 2) as i32;
    let raw: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = raw.iter().sum();
    separable(img, &raw.iter().map(|v| v / sum).collect::<Vec<_>>())
}

/// Convolves rows then columns with the same odd-length `weights`
/// (reflect-101 border). Both passes run over contiguous runs of values, so
/// the inner loops vectorise.
fn separable(img: &RgbImage, weights: &[f32]) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let r = weights.len() / 2;
    let src = img.as_raw();
    // Horizontal pass into f32 so that rounding happens once, at the end. Each
    // row is first copied into a reflect-padded buffer.
    let mut tmp = vec![0f32; w * h * 3];
    let mut padded = vec![0f32; (w + 2 * r) * 3];
    for (y, out_row) in tmp.chunks_exact_mut(w * 3).enumerate() {
        let row = &src[y * w * 3..(y + 1) * w * 3];
        for (j, px) in padded.chunks_exact_mut(3).enumerate() {
            let xs = reflect101(j as i64 - r as i64, w);
            for k in 0..3 {
                px[k] = row[xs * 3 + k] as f32;
            }
        }
        for (t, &wt) in weights.iter().enumerate() {
            let shifted = &padded[t * 3..t * 3 + w * 3];
            out_row
                .iter_mut()
                .zip(shifted)
                .for_each(|(o, &v)| *o += wt * v);
        }
    }
    // Vertical pass: whole rows at a time.
    let mut out = vec![0u8; w * h * 3];
    let mut acc = vec![0f32; w * 3];
    for (y, out_row) in out.chunks_exact_mut(w * 3).enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (t, &wt) in weights.iter().enumerate() {
            let ys = reflect101(y as i64 + t as i64 - r as i64, h);
            let row = &tmp[ys * w * 3..(ys + 1) * w * 3];
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += wt * v);
        }
        out_row
            .iter_mut()
            .zip(&acc)
            .for_each(|(o, &a)| *o = to_u8(a));
    }
    RgbImage::from_raw(w as u32, h as u32, out).expect("buffer matches the size")
}

/// Per-channel median over a `k x k` window (`k` odd), reflect-101 border.
///
/// Uses a sliding 256-bin histogram per row and channel (Huang's algorithm)
/// with the median tracked incrementally, so the cost per pixel grows with
/// `k`, not `k^2`.
pub fn median_blur(img: &RgbImage, k: u32) -> RgbImage {
    let k = k.max(1) | 1;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let r = (k / 2) as i64;
    let rank = k * k / 2; // 0-based rank of the median among k*k values
    let src = img.as_raw();
    let mut out = vec![0u8; w * h * 3];
    // Reflected column of every window position, -r ..= w - 1 + r.
    let cols: Vec<usize> = (-r..w as i64 + r).map(|x| reflect101(x, w)).collect();
    let mut rows = vec![0usize; k as usize];
    for y in 0..h {
        for (d, row) in rows.iter_mut().enumerate() {
            *row = reflect101(y as i64 + d as i64 - r, h) * w * 3;
        }
        let mut hist = [[0u32; 256]; 3];
        for &xs in &cols[..k as usize] {
            for &row in &rows {
                for c in 0..3 {
                    hist[c][src[row + xs * 3 + c] as usize] += 1;
                }
            }
        }
        // `below[c]` counts window values < `med[c]`; the loops below restore
        // below <= rank < below + hist[med].
        let (mut med, mut below) = ([0usize; 3], [0u32; 3]);
        for x in 0..w {
            if x > 0 {
                let (gone, new) = (cols[x - 1] * 3, cols[x - 1 + k as usize] * 3);
                for &row in &rows {
                    for c in 0..3 {
                        let v = src[row + gone + c] as usize;
                        hist[c][v] -= 1;
                        below[c] -= u32::from(v < med[c]);
                        let v = src[row + new + c] as usize;
                        hist[c][v] += 1;
                        below[c] += u32::from(v < med[c]);
                    }
                }
            }
            for c in 0..3 {
                let (hist, med, below) = (&hist[c], &mut med[c], &mut below[c]);
                while *below > rank {
                    *med -= 1;
                    *below -= hist[*med];
                }
                while *below + hist[*med] <= rank {
                    *below += hist[*med];
                    *med += 1;
                }
                out[(y * w + x) * 3 + c] = *med as u8;
            }
        }
    }
    RgbImage::from_raw(w as u32, h as u32, out).expect("buffer matches the size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::stream;
    use image::Rgb;
    use std::f32::consts::PI;

    /// A `w x h` image with distinct values: (x, y, 10x + y).
    fn coords(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, (10 * x + y) as u8]))
    }

    fn noisy(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut rng = stream(seed, "test-image", &[]);
        RgbImage::from_fn(w, h, |_, _| Rgb([rng.random(), rng.random(), rng.random()]))
    }

    fn constant(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, Rgb([v, v, v]))
    }

    fn mean(img: &RgbImage) -> f64 {
        img.as_raw().iter().map(|&v| v as f64).sum::<f64>() / img.as_raw().len() as f64
    }

    #[test]
    fn flips_and_transpose_are_exact() {
        let img = coords(3, 2);
        let h = hflip(&img);
        assert_eq!(h.get_pixel(0, 1), &Rgb([2, 1, 21]));
        assert_eq!(h.get_pixel(2, 0), &Rgb([0, 0, 0]));
        let v = vflip(&img);
        assert_eq!(v.get_pixel(0, 0), &Rgb([0, 1, 1]));
        assert_eq!(v.get_pixel(2, 1), &Rgb([2, 0, 20]));
        let t = transpose(&img);
        assert_eq!(t.dimensions(), (2, 3));
        for (x, y, p) in t.enumerate_pixels() {
            assert_eq!(p, img.get_pixel(y, x));
        }
        assert_eq!(transpose(&t), img);
        assert_eq!(hflip(&h), img);
    }

    /// The resampling as one loop over pixels, with 64-bit floor: the
    /// definition [`remap`]'s passes must reproduce exactly.
    fn remap_pixel_loop(img: &RgbImage, map: impl Fn(f32, f32) -> (f32, f32)) -> RgbImage {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let src = img.as_raw();
        let floor = |v: f32| v.floor() as i64;
        RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let (sx, sy) = map(x as f32, y as f32);
            if !(sx.is_finite() && sy.is_finite()) {
                return Rgb([0, 0, 0]);
            }
            let (sx, sy) = (sx.clamp(-1.0e7, 1.0e7), sy.clamp(-1.0e7, 1.0e7));
            let (x0, y0) = (floor(sx), floor(sy));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            let (xa, xb) = (reflect101(x0, w), reflect101(x0 + 1, w));
            let (ya, yb) = (reflect101(y0, h), reflect101(y0 + 1, h));
            let at = |xs: usize, ys: usize, k: usize| src[(ys * w + xs) * 3 + k] as f32;
            Rgb(std::array::from_fn(|k| {
                let v = at(xa, ya, k) * ((1.0 - fx) * (1.0 - fy))
                    + at(xb, ya, k) * (fx * (1.0 - fy))
                    + at(xa, yb, k) * ((1.0 - fx) * fy)
                    + at(xb, yb, k) * (fx * fy);
                to_u8(v)
            }))
        })
    }

    /// Asserts that [`remap`] and [`remap_pixel_loop`] give the same bytes.
    fn assert_remap_matches(img: &RgbImage, map: impl Fn(f32, f32) -> (f32, f32), what: &str) {
        let (got, want) = (remap(img, &map), remap_pixel_loop(img, &map));
        if let Some(at) = (0..want.as_raw().len()).find(|&i| got.as_raw()[i] != want.as_raw()[i]) {
            panic!(
                "{}x{} {what}: byte {at} is {}, the pixel loop gives {}",
                img.width(),
                img.height(),
                got.as_raw()[at],
                want.as_raw()[at]
            );
        }
    }

    #[test]
    fn remap_equals_the_pixel_loop() {
        let mut rng = stream(3, "remap-maps", &[]);
        let sizes = [(64, 64), (17, 9), (1, 5), (5, 1), (224, 224)];
        for (i, (w, h)) in sizes.into_iter().enumerate() {
            let img = noisy(w, h, i as u64);
            let trials = if w == 224 { 20 } else { 300 };
            for _ in 0..trials {
                // Scales from strong zoom-out (most pixels reflected) to
                // zoom-in, any rotation, shifts past the border.
                let scale: f32 = rng.random_range(0.3..2.5);
                let angle: f32 = rng.random_range(-PI..PI);
                let (sin, cos) = angle.sin_cos();
                let shift = 0.7 * w.max(h) as f32;
                let map = Affine([
                    cos / scale,
                    -sin / scale,
                    rng.random_range(-shift..shift),
                    sin / scale,
                    cos / scale,
                    rng.random_range(-shift..shift),
                ]);
                assert_remap_matches(&img, |x, y| map.apply(x, y), &format!("{map:?}"));
            }
            // Whole-pixel maps (every sample on a pixel, some outside),
            // degenerate and far-away maps, and a map that is not affine.
            for map in [
                Affine::IDENTITY,
                Affine([1.0, 0.0, -3.0, 0.0, 1.0, 5.0]),
                Affine([f32::NAN, 0.0, 0.0, 0.0, 1.0, 0.0]),
                Affine([1.0, 0.0, f32::INFINITY, 0.0, 1.0, 0.0]),
                Affine([1.0e9, 0.0, 0.0, 0.0, -1.0e9, 3.0]),
            ] {
                assert_remap_matches(&img, |x, y| map.apply(x, y), &format!("{map:?}"));
            }
            let wavy = |x: f32, y: f32| (x + 5.0 * (0.3 * y).sin(), 1.1 * y - 2.0);
            assert_remap_matches(&img, wavy, "wavy map");
        }
    }

    #[test]
    fn blend_equals_its_lanes() {
        // On x86-64 `blend` runs four lanes at once; `blend_lanes` is the
        // one-lane-at-a-time definition (and the other architectures' code).
        let mut rng = stream(4, "blend", &[]);
        let odd = [
            -3.7,
            -0.5,
            0.49,
            254.5,
            255.4,
            255.5,
            300.0,
            f32::NAN,
            f32::INFINITY,
        ];
        let texel = |rng: &mut rand_chacha::ChaCha8Rng| -> [f32; 4] {
            std::array::from_fn(|_| f32::from(rng.random::<u8>()))
        };
        for i in 0..20_000 {
            let mut texels = [
                texel(&mut rng),
                texel(&mut rng),
                texel(&mut rng),
                texel(&mut rng),
            ];
            let (fx, fy): (f32, f32) = match i % 4 {
                0 => (0.5, 0.5), // ties: many sums end in exactly .5
                1 => (0.0, rng.random()),
                _ => (rng.random(), rng.random()),
            };
            let weights = bilinear_weights(fx, fy);
            if i % 5 == 0 {
                // Out-of-range values, as any caller could pass: rounding
                // saturates and maps NaN to 0 in both.
                texels[i % 4][i % 3] = odd[i % odd.len()];
            }
            assert_eq!(
                blend(texels, weights),
                blend_lanes(texels, weights),
                "texels {texels:?}, weights {weights:?}"
            );
        }
    }

    #[test]
    fn reflect101_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-4..9).map(|i| reflect101(i, 4)).collect();
        assert_eq!(got, [2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(reflect101(-7, 1), 0);
    }

    #[test]
    fn rotate_by_zero_is_identity_and_by_90_is_exact() {
        let img = noisy(7, 7, 1);
        assert_eq!(rotate(&img, 0.0), img);
        // Counter-clockwise as displayed: image's rotate270 turns 90 degrees counter-clockwise.
        assert_eq!(rotate(&img, 90.0), image::imageops::rotate270(&img));
        assert_eq!(rotate(&img, -90.0), image::imageops::rotate90(&img));
    }

    #[test]
    fn scale_zooms_about_the_centre() {
        let img = noisy(8, 8, 2);
        assert_eq!(scale(&img, 1.0), img);
        // Bilinear sampling reproduces a linear ramp exactly. Zoom in x2 on an
        // 8-px ramp 20x (centre 3.5): output x samples 1.75 + x/2, i.e. 35 + 10x.
        let ramp = RgbImage::from_fn(8, 8, |x, _| Rgb([20 * x as u8, 0, 0]));
        let row: Vec<u8> = (0..8)
            .map(|x| scale(&ramp, 2.0).get_pixel(x, 3)[0])
            .collect();
        assert_eq!(row, [35, 45, 55, 65, 75, 85, 95, 105]);
        // Zoom out x0.5 on a 5-px ramp 10x: samples at 2x - 2 = -2, 0, 2, 4, 6,
        // reflected to 2, 0, 2, 4, 2.
        let ramp = RgbImage::from_fn(5, 5, |x, _| Rgb([10 * x as u8, 0, 0]));
        let row: Vec<u8> = (0..5)
            .map(|x| scale(&ramp, 0.5).get_pixel(x, 2)[0])
            .collect();
        assert_eq!(row, [20, 0, 20, 40, 20]);
    }

    #[test]
    fn affine_through_points_and_elastic_warps() {
        let from = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
        let to = [[2.0, 3.0], [4.0, 3.0], [2.0, 6.0]];
        let m = Affine::through(from, to).unwrap();
        for (f, t) in from.iter().zip(&to) {
            let (x, y) = m.apply(f[0], f[1]);
            assert!((x - t[0]).abs() < 1e-5 && (y - t[1]).abs() < 1e-5, "{m:?}");
        }
        assert_eq!(
            Affine::through([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], to),
            None
        );

        let img = noisy(6, 6, 3);
        let identity = ElasticWarp {
            affine: Affine::IDENTITY,
            grid: 2,
            displacements: vec![[0.0; 2]; 9],
        };
        assert_eq!(elastic(&img, &identity), img);
        // A uniform field of +1 px in x is a shift left, with reflection at the right edge.
        let shift = ElasticWarp {
            displacements: vec![[1.0, 0.0]; 9],
            ..identity
        };
        let out = elastic(&img, &shift);
        for (x, y, p) in out.enumerate_pixels() {
            assert_eq!(p, img.get_pixel(reflect101(x as i64 + 1, 6) as u32, y));
        }
    }

    #[test]
    fn sampled_elastic_warp_follows_the_settings() {
        let mut rng = stream(0, "test", &[]);
        let cfg = AugmentConfig::default();
        let warp = ElasticWarp::sample(224, 224, &cfg, &mut rng);
        assert!(warp.displacements.is_empty(), "default has no field");
        assert_ne!(warp.affine, Affine::IDENTITY);
        // The centre moves by less than the largest point move times a few.
        let (x, y) = warp.affine.apply(111.5, 111.5);
        assert!((x - 111.5).abs() < 150.0 && (y - 111.5).abs() < 150.0);
        let still = AugmentConfig {
            elastic_affine: 0.0,
            elastic_alpha: 0.1,
            elastic_grid: 3,
            ..cfg
        };
        let warp = ElasticWarp::sample(20, 20, &still, &mut rng);
        let (x, y) = warp.affine.apply(5.0, 7.0);
        assert!((x - 5.0).abs() < 1e-4 && (y - 7.0).abs() < 1e-4);
        assert_eq!(warp.displacements.len(), 16);
        assert!(warp.displacements.iter().flatten().all(|d| d.abs() <= 2.0));
        assert!(warp.displacements.iter().flatten().any(|d| d.abs() > 0.1));
    }

    #[test]
    fn blurs_smooth_and_keep_constants() {
        let flat = constant(9, 9, 77);
        assert_eq!(box_blur(&flat, 5), flat);
        assert_eq!(gaussian_blur(&flat, 7, opencv_sigma(7)), flat);
        assert_eq!(median_blur(&flat, 7), flat);
        // A single bright pixel: the 3x3 box spreads 90/9 = 10 to its neighbours.
        let mut dot = constant(5, 5, 0);
        dot.put_pixel(2, 2, Rgb([90, 90, 90]));
        let b = box_blur(&dot, 3);
        assert_eq!(b.get_pixel(1, 1)[0], 10);
        assert_eq!(b.get_pixel(2, 2)[0], 10);
        assert_eq!(b.get_pixel(0, 0)[0], 0);
        // The median removes it.
        assert_eq!(median_blur(&dot, 3), constant(5, 5, 0));
        // Gaussian weights for k 3 (sigma 0.8): centre weight 1 / (1 + 2 e^{-1/1.28}).
        let g = gaussian_blur(&dot, 3, opencv_sigma(3));
        let c = 1.0 / (1.0 + 2.0 * (-1.0f32 / 1.28).exp());
        assert_eq!(g.get_pixel(2, 2)[0], (90.0 * c * c).round() as u8);
        assert!((opencv_sigma(3) - 0.8).abs() < 1e-6 && (opencv_sigma(7) - 1.4).abs() < 1e-6);
    }

    #[test]
    fn median_matches_brute_force() {
        let img = noisy(11, 9, 4);
        for k in [3u32, 5, 7] {
            let r = (k / 2) as i64;
            let got = median_blur(&img, k);
            for (x, y, p) in got.enumerate_pixels() {
                for c in 0..3 {
                    let mut window: Vec<u8> = (-r..=r)
                        .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
                        .map(|(dx, dy)| {
                            let xs = reflect101(x as i64 + dx, 11) as u32;
                            let ys = reflect101(y as i64 + dy, 9) as u32;
                            img.get_pixel(xs, ys)[c]
                        })
                        .collect();
                    window.sort_unstable();
                    assert_eq!(p[c], window[window.len() / 2], "k {k} at ({x}, {y}, {c})");
                }
            }
        }
    }

    #[test]
    fn noise_changes_values_with_the_requested_spread() {
        let img = constant(64, 64, 128);
        let out = gaussian_noise(&img, 5.0, &mut stream(0, "test", &[]));
        let values: Vec<f64> = out.as_raw().iter().map(|&v| v as f64).collect();
        let m = values.iter().sum::<f64>() / values.len() as f64;
        let sd = (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
        assert!((m - 128.0).abs() < 0.3, "mean {m}");
        assert!((sd - 5.0).abs() < 0.3, "sd {sd}"); // rounding adds variance 1/12
        assert_eq!(gaussian_noise(&img, 0.0, &mut stream(0, "test", &[])), img);
    }

    #[test]
    fn brightness_and_contrast_follow_the_formula() {
        let img = constant(4, 4, 100);
        assert_eq!(mean(&brightness_contrast(&img, 1.0, 0.2)), 151.0); // +0.2 * 255
        assert_eq!(mean(&brightness_contrast(&img, 1.0, -0.2)), 49.0);
        assert_eq!(mean(&brightness_contrast(&img, 1.5, 0.0)), 150.0);
        assert_eq!(
            mean(&brightness_contrast(&constant(2, 2, 200), 1.5, 0.0)),
            255.0
        );
        assert_eq!(brightness_contrast(&img, 1.0, 0.0), img);
    }

    #[test]
    fn augment_keeps_size_and_is_reproducible() {
        let cfg = AugmentConfig::default();
        let img = noisy(32, 32, 5);
        let a = augment(&img, &cfg, &mut stream(1, "augment", &[0, 7]));
        let b = augment(&img, &cfg, &mut stream(1, "augment", &[0, 7]));
        let c = augment(&img, &cfg, &mut stream(1, "augment", &[1, 7]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.dimensions(), (32, 32));
        let wide = noisy(40, 24, 6);
        for i in 0..20 {
            assert_eq!(
                augment(&wide, &cfg, &mut stream(2, "augment", &[i])).dimensions(),
                (40, 24)
            );
        }
    }

    #[test]
    fn all_off_is_identity_and_every_branch_runs() {
        let img = noisy(16, 16, 7);
        let off = AugmentConfig {
            scale_p: 0.0,
            flip_p: 0.0,
            warp_p: 0.0,
            blur_p: 0.0,
            brightness_contrast_p: 0.0,
            ..AugmentConfig::default()
        };
        assert_eq!(augment(&img, &off, &mut stream(0, "t", &[])), img);
        let all = AugmentConfig {
            flip_p: 1.0,
            warp_p: 1.0,
            blur_p: 1.0,
            brightness_contrast_p: 1.0,
            elastic_alpha: 0.05,
            ..AugmentConfig::default()
        };
        for i in 0..40 {
            let out = augment(&img, &all, &mut stream(0, "t", &[i]));
            assert_eq!(out.dimensions(), (16, 16));
        }
    }

    #[test]
    fn config_defaults_serde_and_validation() {
        let cfg: AugmentConfig = toml::from_str("rotate_limit = 10.0").unwrap();
        assert_eq!(
            cfg,
            AugmentConfig {
                rotate_limit: 10.0,
                ..AugmentConfig::default()
            }
        );
        assert!(toml::from_str::<AugmentConfig>("rotat_limit = 10.0").is_err());
        assert_eq!(AugmentConfig::default().validate(), Ok(()));
        let bad = AugmentConfig {
            blur_p: 1.5,
            ..AugmentConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "blur_p");
        let bad = AugmentConfig {
            blur_limit: 4,
            ..AugmentConfig::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "augment setting `blur_limit` = 4 is invalid: an odd number >= 3"
        );
        let bad = AugmentConfig {
            noise_var_min: 60.0,
            ..AugmentConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "noise_var_max");
        let bad = AugmentConfig {
            scale_limit: 1.0,
            ..AugmentConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "scale_limit");
    }

    /// Timing check, run with `cargo test --lib data::augment -- --ignored --nocapture`
    /// (meaningful only with optimisations).
    #[test]
    #[ignore]
    fn timing() {
        let cfg = AugmentConfig::default();
        // Best of 5 rounds: the minimum is the least disturbed by other load.
        let best_ms = |reps: u64, f: &mut dyn FnMut(u64)| {
            (0..5)
                .map(|_| {
                    let start = std::time::Instant::now();
                    (0..reps).for_each(&mut *f);
                    start.elapsed().as_secs_f64() / reps as f64 * 1e3
                })
                .fold(f64::INFINITY, f64::min)
        };
        for size in [64u32, 224] {
            let img = noisy(size, size, 8);
            let ms = best_ms(100, &mut |i| {
                std::hint::black_box(augment(&img, &cfg, &mut stream(0, "t", &[i])));
            });
            println!("augment {size}px: {ms:.3} ms per image");
            type Op = fn(&RgbImage) -> RgbImage;
            let ops: [(&str, Op); 5] = [
                ("scale", |im| scale(im, 1.3)),
                ("rotate", |im| rotate(im, 13.0)),
                ("box7", |im| box_blur(im, 7)),
                ("gauss7", |im| gaussian_blur(im, 7, 1.4)),
                ("median7", |im| median_blur(im, 7)),
            ];
            for (name, f) in ops {
                let ms = best_ms(20, &mut |_| {
                    std::hint::black_box(f(&img));
                });
                println!("  {name} {size}px: {ms:.3} ms");
            }
            // The same scale, one pixel at a time (the definition that
            // `remap_equals_the_pixel_loop` holds `remap` to).
            let map = scale_map(&img, 1.3);
            let ms = best_ms(20, &mut |_| {
                std::hint::black_box(remap_pixel_loop(&img, |x, y| map.apply(x, y)));
            });
            println!("  scale {size}px, pixel loop: {ms:.3} ms");
        }
    }
}
