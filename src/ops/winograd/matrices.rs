//! The transform matrices of the two Winograd tilings, F(2x2, 3x3) and
//! F(4x4, 3x3), and their derived forms.
//!
//! A tiling F(m x m, 3 x 3) computes an `m x m` block of a 3x3 correlation
//! from an `a x a` input tile (`a = m + 2`) as
//! `Y = A^T [(G g G^T) (.) (B^T d B)] A`, with `(.)` the element-wise
//! product: `a^2` multiplications per channel pair instead of `9 m^2`. The
//! matrices come from the Toom-Cook construction over `a - 1` finite
//! interpolation points and the point at infinity:
//!
//! - F(2x2, 3x3): points 0, 1, -1 (Lavin and Gray's F(2x2, 3x3)); every
//!   coefficient is 0, +-1 or +-1/2, so the transforms add only exactly.
//! - F(4x4, 3x3): points 0, 1, -1, 1/2, -2 rather than the common
//!   0, +-1, +-2: with the larger points paired with their reciprocals the
//!   transforms' coefficients stay closer to 1, which halves to thirds the
//!   rounding error in f32 (Barabasz et al., "Error analysis and improving
//!   the accuracy of Winograd convolution for deep neural networks", 2020;
//!   measured here too, see the module tests of `super`).
//!
//! The exact rational matrices are listed below; [`Matrices`] holds them
//! rounded to f32 (the thirds and fifteenths of `G` round, every other
//! coefficient is exact).

/// A tiling F(`M` x `M`, 3 x 3) with `A = M + 2`, as a type: kernels
/// generic over it see its matrices as constants, so the compiler drops
/// the zero coefficients and the multiplications by one.
pub(crate) trait Tiling<const M: usize, const A: usize>: Sync {
    /// The transform matrices.
    const MATRICES: Matrices<M, A>;
}

/// F(2x2, 3x3), points 0, 1, -1 and infinity.
#[derive(Debug)]
pub(crate) struct F2;

/// F(4x4, 3x3), points 0, 1, -1, 1/2, -2 and infinity.
#[derive(Debug)]
pub(crate) struct F4;

impl Tiling<2, 4> for F2 {
    const MATRICES: Matrices<2, 4> = F2_MATRICES;
}

impl Tiling<4, 6> for F4 {
    const MATRICES: Matrices<4, 6> = F4_MATRICES;
}

/// The matrices of one tiling F(`M` x `M`, 3 x 3) with `A = M + 2`.
#[derive(Debug)]
pub(crate) struct Matrices<const M: usize, const A: usize> {
    /// `B^T` (`A x A`): input tile `d` to `B^T d B`.
    pub(crate) bt: [[f32; A]; A],
    /// `G` (`A x 3`): kernel `g` to `G g G^T`.
    pub(crate) g: [[f32; 3]; A],
    /// `G^T` (`3 x A`), for the weight gradient `G^T dU G`.
    pub(crate) gt: [[f32; A]; 3],
    /// `A^T` (`M x A`): product `P` to the output block `A^T P A`.
    pub(crate) at: [[f32; A]; M],
    /// `A` (`A x M`), for the output-gradient transform `A dY A^T`.
    pub(crate) a: [[f32; M]; A],
}

impl<const M: usize, const A: usize> Matrices<M, A> {
    const fn new(bt: [[f32; A]; A], g: [[f32; 3]; A], at: [[f32; A]; M]) -> Self {
        let mut gt = [[0.0; A]; 3];
        let mut a = [[0.0; M]; A];
        let mut i = 0;
        while i < A {
            let mut j = 0;
            while j < 3 {
                gt[j][i] = g[i][j];
                j += 1;
            }
            let mut j = 0;
            while j < M {
                a[i][j] = at[j][i];
                j += 1;
            }
            i += 1;
        }
        Self { bt, g, gt, at, a }
    }
}

const F2_MATRICES: Matrices<2, 4> = Matrices::new(
    [
        [1.0, 0.0, -1.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0, 0.0],
        [0.0, -1.0, 0.0, 1.0],
    ],
    [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ],
    [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 1.0]],
);

const F4_MATRICES: Matrices<4, 6> = Matrices::new(
    [
        [1.0, -1.5, -2.0, 1.5, 1.0, 0.0],
        [0.0, -1.0, 0.5, 2.5, 1.0, 0.0],
        [0.0, 1.0, -2.5, 0.5, 1.0, 0.0],
        [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        [0.0, 0.5, -1.0, -0.5, 1.0, 0.0],
        [0.0, 1.0, -1.5, -2.0, 1.5, 1.0],
    ],
    [
        [1.0, 0.0, 0.0],
        [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
        [-1.0 / 3.0, 1.0 / 3.0, -1.0 / 3.0],
        [-16.0 / 15.0, -8.0 / 15.0, -4.0 / 15.0],
        [1.0 / 15.0, -2.0 / 15.0, 4.0 / 15.0],
        [0.0, 0.0, 1.0],
    ],
    [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 0.5, -2.0, 0.0],
        [0.0, 1.0, 1.0, 0.25, 4.0, 0.0],
        [0.0, 1.0, -1.0, 0.125, -8.0, 1.0],
    ],
);

#[cfg(test)]
mod tests {
    use super::*;

    /// `A^T [(G g) (.) (B^T d)]` in f64: the 1-D Winograd correlation.
    fn winograd_1d<const M: usize, const A: usize>(
        t: &Matrices<M, A>,
        g: &[f64; 3],
        d: &[f64; A],
    ) -> [f64; M] {
        let u: [f64; A] = std::array::from_fn(|i| (0..3).map(|k| t.g[i][k] as f64 * g[k]).sum());
        let v: [f64; A] = std::array::from_fn(|i| (0..A).map(|l| t.bt[i][l] as f64 * d[l]).sum());
        std::array::from_fn(|r| (0..A).map(|i| t.at[r][i] as f64 * u[i] * v[i]).sum())
    }

    /// The 1-D identity on every pair of unit vectors: output `r` of kernel
    /// tap `k` and input `l` is 1 exactly when `l = r + k`. The 2-D
    /// transforms are the 1-D ones applied to rows and columns, so this
    /// proves them too. The f32 rounding of the thirds and fifteenths is the
    /// only error left.
    fn check_identity<const M: usize, const A: usize>(t: &Matrices<M, A>, tolerance: f64) {
        for k in 0..3 {
            for l in 0..A {
                let g = std::array::from_fn(|i| f64::from(u8::from(i == k)));
                let d = std::array::from_fn(|i| f64::from(u8::from(i == l)));
                let y = winograd_1d(t, &g, &d);
                for (r, &value) in y.iter().enumerate() {
                    let expected = f64::from(u8::from(l == r + k));
                    assert!(
                        (value - expected).abs() <= tolerance,
                        "F({M}, 3): tap {k}, input {l}, output {r}: {value} instead of {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn tilings_compute_the_correlation() {
        check_identity(&F2::MATRICES, 0.0);
        check_identity(&F4::MATRICES, 1e-7);
    }

    #[test]
    fn derived_matrices_are_transposes() {
        for i in 0..6 {
            for j in 0..3 {
                assert_eq!(F4::MATRICES.gt[j][i], F4::MATRICES.g[i][j]);
            }
            for j in 0..4 {
                assert_eq!(F4::MATRICES.a[i][j], F4::MATRICES.at[j][i]);
            }
        }
        assert_eq!(F2::MATRICES.a[3], [0.0, 1.0]);
    }
}
