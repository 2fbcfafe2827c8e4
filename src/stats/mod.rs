//! Statistics for the ablation section of a paper: summaries with confidence
//! intervals, paired tests between configurations, multiple-comparison
//! correction, and comparisons of AUROCs.
//!
//! Every function reproduces a reference implementation to within rounding:
//! scipy for the t distribution, [`describe`], [`paired_t_test`],
//! [`wilcoxon`] and [`linear_trend`]; statsmodels for [`holm`]; a numpy version of the fast DeLong
//! algorithm of Sun & Xu (2014) for [`delong`]. The files under
//! `tests/fixtures/stats/` (written by `scripts/make_stats_fixtures.py`) pin
//! them to 1e-10. [`bootstrap_auroc_ci`] draws from the crate's seed streams,
//! so it has no external reference; its tests check determinism and
//! coverage instead.
//!
//! The distribution functions ([`special`], [`distributions`]) are written
//! here rather than taken from a crate: they are small, and owning them keeps
//! every published p-value traceable to code in this repository.

pub mod bootstrap;
pub mod delong;
pub mod describe;
pub mod distributions;
pub mod holm;
pub mod paired;
pub mod ranks;
pub mod special;
pub mod trend;
pub mod wilcoxon;

#[cfg(test)]
pub(crate) mod fixtures;

pub use bootstrap::{bootstrap_auroc_ci, percentile};
pub use delong::{delong, DelongResult};
pub use describe::{describe, Summary};
pub use distributions::{
    normal_cdf, normal_quantile, normal_sf, student_t_cdf, student_t_quantile, student_t_sf,
};
pub use holm::holm;
pub use paired::{paired_t_test, TestResult};
pub use trend::{linear_trend, Trend};
pub use wilcoxon::{wilcoxon, WilcoxonMethod, WilcoxonResult};

use crate::metrics::ranking::MetricError;

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// Paired samples must pair up one to one.
    #[error(
        "paired samples differ in length ({a} vs {b} values); pass one value per seed/fold for both configurations, in the same order"
    )]
    LengthMismatch {
        /// Length of the first sample.
        a: usize,
        /// Length of the second sample.
        b: usize,
    },
    /// Too few observations for the statistic.
    #[error("{what} needs at least {needed} {unit}, got {got}; add seeds or folds")]
    TooFew {
        /// The statistic that was asked for.
        what: &'static str,
        /// Minimum count.
        needed: usize,
        /// Actual count.
        got: usize,
        /// What is being counted ("pairs", "positives", ...).
        unit: &'static str,
    },
    /// An input value is NaN or infinite.
    #[error(
        "{what}: value {index} is {value}; inputs must be finite (check the run that produced it)"
    )]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Every setting value is the same, so nothing can vary with it.
    #[error("{what} needs at least two distinct setting values")]
    NoSpread {
        /// The statistic that was asked for.
        what: &'static str,
    },
    /// The underlying metric failed (e.g. AUROC with one class).
    #[error(transparent)]
    Metric(#[from] MetricError),
}

/// Errors with [`StatsError::NonFinite`] at the first NaN or infinite value.
pub(crate) fn require_finite(what: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}
