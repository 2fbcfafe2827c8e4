//! ROC and precision-recall curves of one model's test scores, and their
//! averages over replicates.
//!
//! Curves have one vertex per distinct score (tied scores move together,
//! giving a diagonal ROC segment). The mean ROC is *vertical averaging*
//! (Fawcett 2006): each replicate's TPR is read off at fixed FPRs by linear
//! interpolation between vertices, then averaged. The mean PR curve averages
//! *interpolated precision* (the best precision at recall >= r) on fixed
//! recalls, because raw precision is not monotone and cannot be
//! interpolated linearly.

/// Points of the fixed grids used for averaging.
pub const GRID_POINTS: usize = 101;

/// The evenly spaced grid 0, 0.01, ..., 1.
pub fn grid() -> Vec<f64> {
    (0..GRID_POINTS)
        .map(|i| i as f64 / (GRID_POINTS - 1) as f64)
        .collect()
}

/// True and false positive counts after each distinct score, highest first.
fn cumulative_counts(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut counts = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(k + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            counts.push((tp, fp));
        }
    }
    counts
}

/// ROC vertices (FPR, TPR) from (0, 0) to (1, 1); empty without both classes.
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64)> {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Vec::new();
    }
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        cumulative_counts(labels, scores)
            .into_iter()
            .map(|(tp, fp)| (fp / negatives, tp / positives)),
    );
    points
}

/// Precision-recall vertices (recall, precision), starting at (0, 1) as
/// scikit-learn does; empty without positives.
pub fn pr_curve(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64)> {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    if positives == 0.0 {
        return Vec::new();
    }
    let mut points = vec![(0.0, 1.0)];
    points.extend(
        cumulative_counts(labels, scores)
            .into_iter()
            .map(|(tp, fp)| (tp / positives, tp / (tp + fp))),
    );
    points
}

/// TPR of a ROC curve at `fpr`: the highest vertex at exactly that FPR, or
/// linear interpolation between the neighbouring vertices.
pub fn tpr_at(curve: &[(f64, f64)], fpr: f64) -> f64 {
    let at: Vec<f64> = curve.iter().filter(|p| p.0 == fpr).map(|p| p.1).collect();
    if let Some(max) = at.into_iter().reduce(f64::max) {
        return max;
    }
    let before = curve.iter().rev().find(|p| p.0 < fpr);
    let after = curve.iter().find(|p| p.0 > fpr);
    match (before, after) {
        (Some(&(x0, y0)), Some(&(x1, y1))) => y0 + (y1 - y0) * (fpr - x0) / (x1 - x0),
        (Some(&(_, y)), None) | (None, Some(&(_, y))) => y,
        (None, None) => f64::NAN,
    }
}

/// Interpolated precision at `recall`: the best precision at recall >= it.
pub fn precision_at(curve: &[(f64, f64)], recall: f64) -> f64 {
    curve
        .iter()
        .filter(|p| p.0 >= recall - 1e-12)
        .map(|p| p.1)
        .fold(f64::NAN, f64::max)
}

/// Pointwise mean of curves sampled on [`grid`] by `at`.
pub fn mean_curve(
    curves: &[Vec<(f64, f64)>],
    at: fn(&[(f64, f64)], f64) -> f64,
) -> Vec<(f64, f64)> {
    let curves: Vec<&Vec<(f64, f64)>> = curves.iter().filter(|c| !c.is_empty()).collect();
    if curves.is_empty() {
        return Vec::new();
    }
    grid()
        .into_iter()
        .map(|x| {
            (
                x,
                curves.iter().map(|c| at(c, x)).sum::<f64>() / curves.len() as f64,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_vertices_with_ties() {
        // Scores 0.9(+) 0.8(-) 0.8(+) 0.1(-): the tie moves both at once.
        let labels = [true, false, true, false];
        let scores = [0.9, 0.8, 0.8, 0.1];
        assert_eq!(
            roc_curve(&labels, &scores),
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        assert_eq!(
            pr_curve(&labels, &scores),
            vec![(0.0, 1.0), (0.5, 1.0), (1.0, 2.0 / 3.0), (1.0, 0.5)]
        );
        assert!(roc_curve(&[true, true], &[0.1, 0.2]).is_empty());
    }

    #[test]
    fn vertical_average_interpolates() {
        let curve = vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)];
        assert_eq!(
            tpr_at(&curve, 0.0),
            0.5,
            "highest vertex at a vertical segment"
        );
        assert_eq!(tpr_at(&curve, 0.25), 0.75);
        assert_eq!(tpr_at(&curve, 0.75), 1.0);
        let flat = vec![(0.0, 0.0), (1.0, 1.0)];
        let mean = mean_curve(&[curve, flat], tpr_at);
        assert_eq!(mean.len(), GRID_POINTS);
        assert!((mean[25].1 - (0.75 + 0.25) / 2.0).abs() < 1e-12);
        assert_eq!(mean[100], (1.0, 1.0));
    }

    #[test]
    fn interpolated_precision_is_the_best_to_the_right() {
        let curve = vec![(0.0, 1.0), (0.5, 0.5), (1.0, 2.0 / 3.0)];
        assert_eq!(precision_at(&curve, 0.25), 2.0 / 3.0);
        assert_eq!(precision_at(&curve, 0.0), 1.0);
        assert_eq!(precision_at(&curve, 1.0), 2.0 / 3.0);
    }
}
