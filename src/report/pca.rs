//! Principal component analysis to two dimensions, for drawing pool
//! embeddings.
//!
//! The leading eigenvectors of the covariance are found by power iteration
//! on XᵀX (never forming the d x d matrix, so 512-d features and thousands
//! of patches stay cheap), the second kept orthogonal to the first by
//! Gram-Schmidt. The start vectors come from the crate's seed streams and
//! each component's sign is fixed (its largest-magnitude entry positive),
//! so the projection is the same on every run and machine.

use rand::Rng;

/// Iteration cap per component; convergence is usually far sooner.
const MAX_ITERATIONS: usize = 1000;

/// Stop when the unit direction moves less than this (Euclidean distance;
/// 1 - |cos| would stop at angles near 1e-6).
const TOLERANCE: f64 = 1e-11;

/// A two-dimensional projection.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// The two principal directions (unit vectors).
    pub components: [Vec<f64>; 2],
    /// Fraction of the total variance each direction explains.
    pub explained: [f64; 2],
    /// Each row's coordinates on the two directions (centred).
    pub points: Vec<(f64, f64)>,
}

/// Projects `rows` (equal-length feature vectors) onto their first two
/// principal components. `None` for fewer than 2 rows or 2 features.
pub fn pca_2d(rows: &[Vec<f64>], seed: u64) -> Option<Projection> {
    let d = rows.first()?.len();
    if rows.len() < 2 || d < 2 || rows.iter().any(|r| r.len() != d) {
        return None;
    }
    let mean: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64)
        .collect();
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(x, m)| x - m).collect())
        .collect();
    let total: f64 = centred.iter().flatten().map(|x| x * x).sum();
    let first = leading_direction(&centred, &[], seed, 0);
    let second = leading_direction(&centred, std::slice::from_ref(&first), seed, 1);
    let variance = |v: &[f64]| centred.iter().map(|r| dot(r, v).powi(2)).sum::<f64>();
    let explained = if total > 0.0 {
        [variance(&first) / total, variance(&second) / total]
    } else {
        [0.0, 0.0]
    };
    let points = centred
        .iter()
        .map(|r| (dot(r, &first), dot(r, &second)))
        .collect();
    Some(Projection {
        components: [first, second],
        explained,
        points,
    })
}

/// The unit vector maximising variance, orthogonal to `previous`.
fn leading_direction(x: &[Vec<f64>], previous: &[Vec<f64>], seed: u64, index: u64) -> Vec<f64> {
    let d = x[0].len();
    let mut rng = crate::seed::stream(seed, "report pca", &[index]);
    let mut v: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
    orthonormalise(&mut v, previous);
    for _ in 0..MAX_ITERATIONS {
        // w = Xᵀ (X v)
        let scores: Vec<f64> = x.iter().map(|r| dot(r, &v)).collect();
        let mut w = vec![0.0; d];
        for (r, s) in x.iter().zip(&scores) {
            for (wj, xj) in w.iter_mut().zip(r) {
                *wj += xj * s;
            }
        }
        if !orthonormalise(&mut w, previous) {
            // No variance left in the remaining directions: keep v.
            break;
        }
        let sign = dot(&w, &v).signum();
        let change = w
            .iter()
            .zip(&v)
            .map(|(a, b)| (a - sign * b).powi(2))
            .sum::<f64>()
            .sqrt();
        v = w;
        if change < TOLERANCE {
            break;
        }
    }
    fix_sign(&mut v);
    v
}

/// Removes the components along `basis` and scales to unit length; false
/// when nothing is left.
fn orthonormalise(v: &mut [f64], basis: &[Vec<f64>]) -> bool {
    for b in basis {
        let p = dot(v, b);
        v.iter_mut().zip(b).for_each(|(x, bj)| *x -= p * bj);
    }
    let norm = dot(v, v).sqrt();
    if norm < 1e-300 {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// Makes the largest-magnitude entry positive (eigenvectors have no sign).
fn fix_sign(v: &mut [f64]) {
    let largest = v
        .iter()
        .copied()
        .fold(0.0f64, |a, x| if x.abs() > a.abs() { x } else { a });
    if largest < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_direction_of_max_variance() {
        // Points spread along (1, 1)/sqrt 2 with spread 3, and along
        // (1, -1)/sqrt 2 with spread 1: variances 9 : 1 of total 10 (times n/(n-1)).
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let mut rows = Vec::new();
        for (a, b) in [(3.0, 1.0), (-3.0, -1.0), (3.0, -1.0), (-3.0, 1.0)] {
            rows.push(vec![5.0 + s * (a + b), -2.0 + s * (a - b)]);
        }
        let p = pca_2d(&rows, 0).unwrap();
        assert!(
            (p.components[0][0] - s).abs() < 1e-9 && (p.components[0][1] - s).abs() < 1e-9,
            "{:?}",
            p.components
        );
        assert!((p.components[1][0].abs() - s).abs() < 1e-9);
        assert!((dot(&p.components[0], &p.components[1])).abs() < 1e-12);
        assert!(
            (p.explained[0] - 0.9).abs() < 1e-9 && (p.explained[1] - 0.1).abs() < 1e-9,
            "{:?}",
            p.explained
        );
        assert!((p.points[0].0 - 3.0).abs() < 1e-9 && (p.points[0].1.abs() - 1.0).abs() < 1e-9);
        // Deterministic: another seed gives the same signed directions.
        assert_eq!(pca_2d(&rows, 0).unwrap(), p);
        let q = pca_2d(&rows, 99).unwrap();
        assert!((q.components[0][0] - p.components[0][0]).abs() < 1e-9);
    }

    #[test]
    fn higher_dimensions_and_degenerate_input() {
        // Variance only on axis 2 of 4.
        let rows: Vec<Vec<f64>> = (0..10)
            .map(|i| vec![1.0, 2.0, i as f64, 0.5 * (i % 2) as f64])
            .collect();
        let p = pca_2d(&rows, 3).unwrap();
        // Axis 3 correlates slightly with axis 2 (odd i are larger): not exact.
        assert!(
            (p.components[0][2] - 1.0).abs() < 1e-3,
            "{:?}",
            p.components[0]
        );
        assert!(
            (p.components[1][3].abs() - 1.0).abs() < 1e-3,
            "{:?}",
            p.components[1]
        );
        assert!(pca_2d(&[vec![1.0, 2.0]], 0).is_none());
        assert!(pca_2d(&[vec![1.0], vec![2.0]], 0).is_none());
    }
}
