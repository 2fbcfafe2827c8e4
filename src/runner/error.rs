//! Why a cell failed: typed errors that keep their causes, and their text as
//! one line for the results table.

use super::lock::LockError;
use super::store::{StageRef, StoreError};
use crate::data::prepare::PrepareError;
use crate::data::source::SourceError;
use crate::device::DeviceError;
use crate::model::resnet::ResNetConfigError;
use crate::pipeline::PipelineError;
use std::path::PathBuf;

/// A cell-level failure (the other cells go on).
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// A job panicked while holding the shared dataset cache.
    #[error("the shared dataset cache is unusable after a failure in another job")]
    DataCachePoisoned,
    /// The synthetic dataset could not be generated.
    #[error("synthetic dataset")]
    Synthetic(#[source] SourceError),
    /// The settings ask for an impossible subsampling.
    #[error("{0}")]
    Settings(String),
    /// The dataset could not be read, decoded or split.
    #[error("dataset '{}'", root.display())]
    Dataset {
        /// The dataset folder.
        root: PathBuf,
        /// What failed.
        source: PrepareError,
    },
    /// The model name is invalid.
    #[error("model `{name}`")]
    Model {
        /// The name.
        name: String,
        /// What is wrong with it.
        source: ResNetConfigError,
    },
    /// The device could not be opened.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A step of the method failed (training, query, mining).
    #[error(transparent)]
    Step(#[from] PipelineError),
    /// An artifact could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stage folder could not be locked.
    #[error("stage folder '{}'", dir.display())]
    Lock {
        /// The stage folder.
        dir: PathBuf,
        /// The lock error.
        source: LockError,
    },
    /// A stage this run may not compute is missing.
    #[error(
        "{} stage '{}' is not in the cache: {}, and this run (`--stages {stages}`) does not compute it; see `ablate status`, or run `ablate run` without `--stages`",
        stage.stage,
        dir.display(),
        if matches!(stage.stage.as_str(), "weak" | "query") {
            "the run of its shared stages (`--stages shared`) did not finish"
        } else {
            "the run of its own stages (`--stages cell`) did not finish"
        }
    )]
    NotComputed {
        /// The missing stage.
        stage: StageRef,
        /// Its folder.
        dir: PathBuf,
        /// The run's `--stages` value.
        stages: &'static str,
    },
    /// A tensor file could not be read or written.
    #[error("could not {action} '{}'", path.display())]
    Tensors {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// A stored tensor file lacks a tensor.
    #[error("'{}' lacks the tensor `{name}` (delete its folder to compute it again)", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: &'static str,
    },
    /// A cell file could not be written.
    #[error("could not write '{}'", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An error and its causes, joined with ": " (a cause is left out when the
/// text before already ends with it, as for errors that print their source).
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let message = next.to_string();
        if !message.is_empty() && !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = next.source();
    }
    text
}

/// [`chain_text`] on one line: the lines of multi-line messages (lists of
/// files) joined with spaces.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    chain_text(error)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_is_joined_once_and_on_one_line() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = CellError::from(StoreError::Io {
            path: "cache/weak/a/b/model.json".into(),
            source: io,
        });
        assert_eq!(
            one_line(&error),
            "could not access 'cache/weak/a/b/model.json': no such file"
        );
        // A source that the message already prints is not repeated.
        let error = CellError::Step(PipelineError::Train {
            stage: "weak",
            source: crate::train::TrainError::EmptySet("training"),
        });
        let text = one_line(&error);
        assert_eq!(
            text,
            "weak model: the training set is empty: the split or subsampling left no patches"
        );
        assert!(std::error::Error::source(&error).is_some());
        let error = CellError::Settings("first\n  second".into());
        assert_eq!(one_line(&error), "first second");
    }
}
