//! Declarative experiments: a TOML file of base settings and a matrix of
//! axes, expanded into cells.

pub mod config;
pub mod load;
pub mod matrix;

pub use config::ExperimentConfig;
pub use load::{load_experiment, Experiment, LoadError};
