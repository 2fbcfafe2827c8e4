//! Haematoxylin and eosin colour, and how it varies between slides.
//!
//! Colour follows the Beer-Lambert law used by stain-separation methods
//! (Ruifrok & Johnston; Macenko): each stain has an optical-density (OD)
//! direction in RGB, a pixel holds a concentration of each stain, and the
//! transmitted light is `background * exp(-(h * H + e * E))`. Drawing
//! concentrations and converting them at the end makes overlapping structures
//! mix the way real stains do (a nucleus over stroma turns purple, not grey).
//!
//! Slides differ in staining time, dye batch and scanner, so every slide gets
//! its own [`Stain`]: stain directions perturbed (hue), pulled towards grey
//! (saturation), concentrations scaled (intensity), background tinted. The
//! variation is identical in distribution for all patch kinds, so colour alone
//! never tells a positive from a negative.

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Haematoxylin OD direction of Macenko's reference (RGB, unit length to 4 digits).
pub const HAEMATOXYLIN_REF: [f32; 3] = [0.5626, 0.7201, 0.4062];
/// Eosin OD direction of Macenko's reference (RGB, unit length to 4 digits).
pub const EOSIN_REF: [f32; 3] = [0.2159, 0.8012, 0.5581];

/// The colour model of one slide.
#[derive(Debug, Clone, PartialEq)]
pub struct Stain {
    /// Haematoxylin OD per unit concentration (RGB), already scaled by its intensity.
    pub haematoxylin: [f32; 3],
    /// Eosin OD per unit concentration (RGB), already scaled by its intensity.
    pub eosin: [f32; 3],
    /// Transmitted light where there is no tissue (RGB in `[0, 1]`).
    pub background: [f32; 3],
}

impl Default for Stain {
    fn default() -> Self {
        Self::reference()
    }
}

impl Stain {
    /// The reference stain: Macenko's directions, unit intensity, near-white glass.
    pub fn reference() -> Self {
        Self {
            haematoxylin: normalise(HAEMATOXYLIN_REF),
            eosin: normalise(EOSIN_REF),
            background: [0.965; 3],
        }
    }

    /// Draws one slide's stain. `variation` scales every perturbation:
    /// `0` gives [`Stain::reference`], `1` the spread of separate staining
    /// batches (slides visibly differ but stay recognisably H&E).
    pub fn sample(rng: &mut impl Rng, variation: f32) -> Self {
        let v = variation.max(0.0);
        let hue = Normal::new(0.0, 0.06 * v).unwrap_or_else(|_| no_spread());
        let gain = Normal::new(0.0, 0.16 * v).unwrap_or_else(|_| no_spread());
        let haematoxylin = perturb_direction(HAEMATOXYLIN_REF, rng, &hue);
        let eosin = perturb_direction(EOSIN_REF, rng, &hue);
        // Saturation: fading dyes look greyer, i.e. their OD direction moves
        // towards the neutral direction (1, 1, 1) / sqrt(3).
        let desaturate = v * rng.random_range(0.0..0.25f32);
        let haematoxylin = towards_grey(haematoxylin, desaturate);
        let eosin = towards_grey(eosin, desaturate);
        let h_gain = gain.sample(rng).exp();
        let e_gain = (1.2 * gain.sample(rng)).exp();
        let brightness = 1.0 - v * rng.random_range(0.0..0.06f32);
        let tint = Normal::new(0.0, 0.008 * v).unwrap_or_else(|_| no_spread());
        let background = std::array::from_fn(|c| {
            (brightness * Self::reference().background[c] + tint.sample(rng)).clamp(0.8, 1.0)
        });
        Self {
            haematoxylin: scale(haematoxylin, h_gain),
            eosin: scale(eosin, e_gain),
            background,
        }
    }

    /// The RGB colour of stain concentrations `h` (haematoxylin) and `e` (eosin),
    /// as floating-point 0..255 values (not yet quantised, so that sensor
    /// noise can be added first).
    pub fn colour(&self, h: f32, e: f32) -> [f32; 3] {
        std::array::from_fn(|c| {
            let od = h * self.haematoxylin[c] + e * self.eosin[c];
            255.0 * self.background[c] * (-od).exp()
        })
    }
}

/// A zero-spread normal: the fallback if a scaled spread is not finite
/// (validation rejects such settings, this only keeps the function total).
fn no_spread() -> Normal<f32> {
    Normal::new(0.0, 0.0).expect("zero spread is a valid normal")
}

/// Adds independent noise to each component and renormalises.
fn perturb_direction(dir: [f32; 3], rng: &mut impl Rng, noise: &Normal<f32>) -> [f32; 3] {
    let moved: [f32; 3] = std::array::from_fn(|c| (dir[c] + noise.sample(rng)).max(0.02));
    normalise(moved)
}

/// Blends a unit direction towards the grey direction by `amount` in `[0, 1]`.
fn towards_grey(dir: [f32; 3], amount: f32) -> [f32; 3] {
    let grey = 1.0 / 3f32.sqrt();
    normalise(std::array::from_fn(|c| {
        dir[c] * (1.0 - amount) + grey * amount
    }))
}

fn normalise(v: [f32; 3]) -> [f32; 3] {
    let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    std::array::from_fn(|c| v[c] / norm)
}

fn scale(v: [f32; 3], k: f32) -> [f32; 3] {
    std::array::from_fn(|c| v[c] * k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::stream;

    #[test]
    fn no_stain_gives_the_background() {
        let stain = Stain::reference();
        let rgb = stain.colour(0.0, 0.0);
        for (value, background) in rgb.into_iter().zip(stain.background) {
            assert!((value - 255.0 * background).abs() < 1e-4);
        }
    }

    #[test]
    fn beer_lambert_by_hand() {
        // Eosin alone at concentration 1: green is absorbed most (0.8012),
        // red least (0.2159): 255 * 0.965 * exp(-0.2159) = 198.30.
        let rgb = Stain::reference().colour(0.0, 1.0);
        assert!((rgb[0] - 198.30).abs() < 0.05, "{rgb:?}");
        assert!(rgb[0] > rgb[2] && rgb[2] > rgb[1], "eosin is pink: {rgb:?}");
        // Haematoxylin: blue is absorbed least, so nuclei are blue-purple.
        let rgb = Stain::reference().colour(1.0, 0.0);
        assert!(
            rgb[2] > rgb[0] && rgb[0] > rgb[1],
            "haematoxylin is purple: {rgb:?}"
        );
    }

    #[test]
    fn zero_variation_is_the_reference() {
        let mut rng = stream(1, "test-stain", &[]);
        let (sampled, reference) = (Stain::sample(&mut rng, 0.0), Stain::reference());
        for c in 0..3 {
            assert!(
                (sampled.haematoxylin[c] - reference.haematoxylin[c]).abs() < 1e-6,
                "{sampled:?}"
            );
            assert!(
                (sampled.eosin[c] - reference.eosin[c]).abs() < 1e-6,
                "{sampled:?}"
            );
            assert_eq!(sampled.background[c], reference.background[c]);
        }
    }

    #[test]
    fn slides_differ_but_stay_h_and_e() {
        let stains: Vec<Stain> = (0..20)
            .map(|i| Stain::sample(&mut stream(1, "test-stain", &[i]), 1.0))
            .collect();
        assert_ne!(stains[0], stains[1]);
        for stain in &stains {
            let pink = stain.colour(0.0, 0.5);
            let purple = stain.colour(1.0, 0.3);
            assert!(pink[0] > pink[1], "eosin keeps red > green: {pink:?}");
            assert!(
                purple[2] > purple[1],
                "haematoxylin keeps blue > green: {purple:?}"
            );
            assert!(purple.iter().sum::<f32>() < pink.iter().sum::<f32>());
        }
    }
}
