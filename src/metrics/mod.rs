//! Classification metrics with scikit-learn's definitions.

pub mod binary;
pub mod ranking;
