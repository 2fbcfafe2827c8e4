//! Seeded training of classifiers.

pub mod adam;
pub mod checkpoint;
pub mod config;
pub mod evaluate;
pub mod sampler;
pub mod schedule;
pub mod throughput;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{train_model, EpochRecord, TrainData, TrainError, TrainEvent, TrainedModel};
