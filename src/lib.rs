//! `ablate`: reproducible ablation studies of CNN training strategies on candle.
//!
//! The reference study is hard negative mining for lymphatic-invasion
//! classification in histopathology: weak model, false-positive query, hard
//! negative mining in a weakly labeled pool, strong model.

pub mod alloc;
pub mod build_info;
pub mod cli;
pub mod data;
pub mod device;
pub mod experiment;
pub mod fetch;
pub mod host_cpu;
pub mod io;
pub mod metrics;
pub mod mining;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod report;
pub mod runner;
pub mod seed;
pub mod setting;
pub mod slurm;
pub mod stats;
pub mod threads;
pub mod train;
