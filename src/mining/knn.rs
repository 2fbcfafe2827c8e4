//! Nearest neighbours of query features among pool features, from one
//! matrix product.
//!
//! L2 distances come from `|q|^2 + |p|^2 - 2 q.p` and cosine similarities
//! from the product of L2-normalised rows. Ranking is by distance ascending
//! (L2) or similarity descending (cosine), ties broken by the lower pool
//! index, so the result is a deterministic function of the features.

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

/// How closeness between feature vectors is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Euclidean distance, smaller is closer (the paper's default).
    L2,
    /// Cosine similarity, larger is closer.
    Cosine,
}

/// One neighbour of a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Row of the pool feature matrix.
    pub index: usize,
    /// L2 distance, or cosine similarity, to the query.
    pub value: f32,
}

/// The `k` nearest pool rows of every query row.
///
/// `queries` is (Q, D) and `pool` is (P, D); returns Q lists of
/// `min(k, P)` neighbours, closest first.
pub fn nearest_neighbours(
    queries: &Tensor,
    pool: &Tensor,
    k: usize,
    metric: Metric,
) -> candle_core::Result<Vec<Vec<Neighbour>>> {
    let queries = queries.to_dtype(DType::F32)?;
    let pool = pool.to_dtype(DType::F32)?;
    let scores = match metric {
        Metric::L2 => {
            let dot = queries.matmul(&pool.t()?)?;
            let q_norm = queries.sqr()?.sum_keepdim(D::Minus1)?;
            let p_norm = pool.sqr()?.sum_keepdim(D::Minus1)?.t()?;
            // Rounding can make a tiny squared distance negative; clamp before sqrt.
            dot.affine(-2.0, 0.0)?
                .broadcast_add(&q_norm)?
                .broadcast_add(&p_norm)?
                .relu()?
                .sqrt()?
        }
        Metric::Cosine => normalise_rows(&queries)?.matmul(&normalise_rows(&pool)?.t()?)?,
    };
    let scores: Vec<Vec<f32>> = scores.to_vec2()?;
    Ok(scores.iter().map(|row| rank(row, k, metric)).collect())
}

/// Divides each row by its L2 norm (zero rows stay zero).
fn normalise_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    x.broadcast_div(&norm)
}

/// The `k` best entries of one row of scores.
fn rank(row: &[f32], k: usize, metric: Metric) -> Vec<Neighbour> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| {
        let by_value = match metric {
            Metric::L2 => row[a].total_cmp(&row[b]),
            Metric::Cosine => row[b].total_cmp(&row[a]),
        };
        by_value.then(a.cmp(&b))
    });
    order
        .into_iter()
        .take(k)
        .map(|index| Neighbour {
            index,
            value: row[index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;
    use candle_core::Device;
    use rand::Rng;

    fn random_matrix(rows: usize, cols: usize, stream: u64) -> Vec<Vec<f32>> {
        let mut rng = seed::stream(11, "knn-test", &[stream]);
        (0..rows)
            .map(|_| (0..cols).map(|_| rng.random_range(-1.0f32..1.0)).collect())
            .collect()
    }

    fn tensor(rows: &[Vec<f32>]) -> Tensor {
        Tensor::new(rows.to_vec(), &Device::Cpu).unwrap()
    }

    /// Brute force in f64: per-pair distances, full sort with the same tie rule.
    fn brute_force(
        queries: &[Vec<f32>],
        pool: &[Vec<f32>],
        k: usize,
        metric: Metric,
    ) -> Vec<Vec<usize>> {
        queries
            .iter()
            .map(|q| {
                let mut scored: Vec<(f64, usize)> = pool
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let dot: f64 = q.iter().zip(p).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let qq: f64 = q.iter().map(|a| (*a as f64).powi(2)).sum();
                        let pp: f64 = p.iter().map(|a| (*a as f64).powi(2)).sum();
                        let key = match metric {
                            Metric::L2 => q
                                .iter()
                                .zip(p)
                                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                                .sum::<f64>()
                                .sqrt(),
                            Metric::Cosine => -dot / (qq.sqrt() * pp.sqrt()),
                        };
                        (key, i)
                    })
                    .collect();
                scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                scored.into_iter().take(k).map(|(_, i)| i).collect()
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_features() {
        let queries = random_matrix(7, 32, 0);
        let pool = random_matrix(200, 32, 1);
        for metric in [Metric::L2, Metric::Cosine] {
            let got = nearest_neighbours(&tensor(&queries), &tensor(&pool), 10, metric).unwrap();
            let want = brute_force(&queries, &pool, 10, metric);
            let got: Vec<Vec<usize>> = got
                .iter()
                .map(|n| n.iter().map(|x| x.index).collect())
                .collect();
            assert_eq!(got, want, "{metric:?}");
        }
    }

    #[test]
    fn values_are_distances_and_similarities() {
        let queries = vec![vec![0.0, 0.0], vec![1.0, 0.0]];
        let pool = vec![vec![3.0, 4.0], vec![0.0, 2.0], vec![-1.0, 0.0]];
        let l2 = nearest_neighbours(&tensor(&queries), &tensor(&pool), 3, Metric::L2).unwrap();
        assert_eq!(
            l2[0].iter().map(|n| n.index).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        assert_eq!(
            l2[0].iter().map(|n| n.value).collect::<Vec<_>>(),
            vec![1.0, 2.0, 5.0]
        );
        let cos =
            nearest_neighbours(&tensor(&queries[1..]), &tensor(&pool), 3, Metric::Cosine).unwrap();
        // Most similar first: (3,4) has cosine 0.6, (0,2) 0, (-1,0) -1.
        assert_eq!(
            cos[0].iter().map(|n| n.index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!((cos[0][0].value - 0.6).abs() < 1e-6);
    }

    #[test]
    fn ties_go_to_the_lower_pool_index() {
        // Small integers: every product and sum is exact in f32, so the ties are exact.
        let queries = vec![vec![1.0, 1.0, 0.0]];
        let pool = vec![
            vec![2.0, 1.0, 0.0],
            vec![1.0, 2.0, 0.0],
            vec![1.0, 1.0, 1.0],
            vec![2.0, 2.0, 0.0],
            vec![1.0, 1.0, -1.0],
        ];
        let l2 = nearest_neighbours(&tensor(&queries), &tensor(&pool), 5, Metric::L2).unwrap();
        assert_eq!(
            l2[0].iter().map(|n| n.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 4, 3]
        );
        // Cosine ties from duplicated rows (identical inputs, identical arithmetic).
        let pool = vec![
            vec![1.0, 2.0, 0.0],
            vec![1.0, 1.0, 1.0],
            vec![1.0, 2.0, 0.0],
            vec![2.0, 2.0, 0.0],
        ];
        let cos = nearest_neighbours(&tensor(&queries), &tensor(&pool), 4, Metric::Cosine).unwrap();
        assert_eq!(
            cos[0].iter().map(|n| n.index).collect::<Vec<_>>(),
            vec![3, 0, 2, 1]
        );
    }

    #[test]
    fn k_larger_than_pool_returns_whole_pool() {
        let got = nearest_neighbours(
            &tensor(&random_matrix(2, 4, 5)),
            &tensor(&random_matrix(3, 4, 6)),
            10,
            Metric::L2,
        )
        .unwrap();
        assert!(got.iter().all(|n| n.len() == 3));
    }
}
