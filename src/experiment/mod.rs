//! Declarative experiments: a TOML file of base settings and a matrix of
//! axes, expanded into cells.

pub mod config;
pub mod load;
pub mod matrix;
pub mod overrides;

pub use config::ExperimentConfig;
pub use load::{load_experiment, load_experiment_with, Experiment, LoadError};
pub use overrides::Override;
