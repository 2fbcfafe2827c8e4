//! Seeded 2-D value noise.
//!
//! Tissue texture (collagen fibres, chromatin, cytoplasm granularity) needs
//! smooth random fields that can be evaluated at any continuous point, so that
//! a patch drawn at 64 px and at 224 px shows the same texture, only finer.
//! Value noise on an integer lattice, with the lattice values taken from a
//! hash of (seed, cell), needs no tables and no global state: the field is a
//! pure function of its seed.

/// A smooth random field on the plane with values in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueNoise {
    seed: u64,
}

impl ValueNoise {
    /// The field for one seed; different seeds give unrelated fields.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// Value at `(x, y)`: lattice values at integer points, blended with a
    /// quintic fade so that the field and its slope are continuous.
    pub fn sample(&self, x: f32, y: f32) -> f32 {
        let (ix, iy) = (floor(x), floor(y));
        let (fx, fy) = (fade(x - ix as f32), fade(y - iy as f32));
        let v00 = self.lattice(ix, iy);
        let v10 = self.lattice(ix + 1, iy);
        let v01 = self.lattice(ix, iy + 1);
        let v11 = self.lattice(ix + 1, iy + 1);
        let top = v00 + (v10 - v00) * fx;
        let bottom = v01 + (v11 - v01) * fx;
        top + (bottom - top) * fy
    }

    /// Sum of `octaves` layers, each at twice the frequency and half the
    /// amplitude of the previous one, rescaled to `[0, 1]`.
    pub fn fbm(&self, x: f32, y: f32, octaves: u32) -> f32 {
        let (mut sum, mut norm, mut amp, mut freq) = (0.0, 0.0, 1.0, 1.0);
        for octave in 0..octaves {
            // Offsetting each octave avoids the lattice points of all octaves
            // coinciding at the origin, which would show as a visible grid.
            let shift = 17.31 * octave as f32;
            sum += amp * self.sample(x * freq + shift, y * freq - shift);
            norm += amp;
            amp *= 0.5;
            freq *= 2.0;
        }
        if norm > 0.0 {
            sum / norm
        } else {
            0.5
        }
    }

    /// The lattice value of cell `(ix, iy)`, uniform in `[0, 1)`.
    fn lattice(&self, ix: i64, iy: i64) -> f32 {
        let key = self
            .seed
            .wrapping_add((ix as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add((iy as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
        (splitmix64(key) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// `x.floor()` as an integer, without the libm call that `f32::floor`
/// becomes on baseline x86-64 (the hottest instruction of the generator).
fn floor(x: f32) -> i64 {
    let truncated = x as i64;
    if (truncated as f32) > x {
        truncated - 1
    } else {
        truncated
    }
}

/// Quintic fade `6t^5 - 15t^4 + 10t^3`: zero slope and curvature at 0 and 1.
fn fade(t: f32) -> f32 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

/// The SplitMix64 finaliser: a cheap bijective hash with good avalanche.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_value() {
        // Reference: the first output of SplitMix64 seeded with 0 is
        // 0xE220A8397B1DCDAF (Vigna's reference implementation).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn floor_matches_std() {
        for x in [-2.5f32, -2.0, -0.1, 0.0, 0.1, 1.0, 1.9, 1e6 + 0.5] {
            assert_eq!(floor(x), x.floor() as i64, "{x}");
        }
    }

    #[test]
    fn lattice_points_are_the_hashed_values_and_in_range() {
        let noise = ValueNoise::new(3);
        for (ix, iy) in [(0, 0), (5, -2), (-7, 9)] {
            let v = noise.sample(ix as f32, iy as f32);
            assert_eq!(v, noise.lattice(ix, iy));
            assert!((0.0..1.0).contains(&v));
        }
    }

    #[test]
    fn midpoint_is_the_mean_of_the_cell_corners() {
        // fade(0.5) = 0.5, so the cell centre is the plain average of its corners.
        let noise = ValueNoise::new(11);
        let mean =
            (noise.lattice(2, 3) + noise.lattice(3, 3) + noise.lattice(2, 4) + noise.lattice(3, 4))
                / 4.0;
        assert!((noise.sample(2.5, 3.5) - mean).abs() < 1e-6);
    }

    #[test]
    fn field_is_continuous_across_cell_borders() {
        let noise = ValueNoise::new(5);
        let left = noise.sample(4.0 - 1e-4, 1.3);
        let right = noise.sample(4.0 + 1e-4, 1.3);
        assert!((left - right).abs() < 1e-3, "{left} vs {right}");
    }

    #[test]
    fn seeds_give_different_fields_and_fbm_stays_in_range() {
        let (a, b) = (ValueNoise::new(1), ValueNoise::new(2));
        assert_ne!(a.sample(0.3, 0.7), b.sample(0.3, 0.7));
        for i in 0..50 {
            let v = a.fbm(i as f32 * 0.37, i as f32 * -0.21, 3);
            assert!((0.0..=1.0).contains(&v), "{v}");
        }
    }
}
