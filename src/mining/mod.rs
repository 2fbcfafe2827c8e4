//! Hard negative mining in the weakly labeled pool.
//!
//! A weak model's false positives on the validation split are the queries;
//! the pool patches nearest to them in the weak model's pooled feature space
//! are added to training as negatives. Controls (random draws, top-scored
//! pool patches, the whole pool) isolate what the nearest-neighbour search
//! contributes beyond "more negatives". Pool patches from slides held out
//! for validation or test are refused, or dropped on request (`overlap`).

pub mod knn;
pub mod overlap;
pub mod strategy;

pub use knn::{nearest_neighbours, Metric, Neighbour};
pub use overlap::{eligible_pool, OverlapError, OverlapPolicy};
pub use strategy::{mine, MinedPatch, MiningConfig, MiningError, MiningInputs, Strategy};
