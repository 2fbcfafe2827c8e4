//! Progress bars of a run, driven by the runner's and the trainer's events.

use crate::train::TrainEvent;
use indicatif::{ProgressBar, ProgressStyle};

/// Progress of an experiment run: an overall bar over cells with ETA and one
/// bar per training in flight (log lines instead when quiet).
pub struct RunProgress {
    quiet: bool,
    multi: indicatif::MultiProgress,
    overall: ProgressBar,
    training: std::sync::Mutex<std::collections::HashMap<(usize, &'static str), ProgressBar>>,
}

impl RunProgress {
    /// Progress over `cells` cells.
    pub fn new(cells: usize, quiet: bool) -> Self {
        let multi = indicatif::MultiProgress::new();
        let overall = if quiet {
            ProgressBar::hidden()
        } else {
            let bar = multi.add(ProgressBar::new(cells as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "cells [{bar:30}] {pos}/{len} {msg} (elapsed {elapsed}, ETA {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        };
        Self {
            quiet,
            multi,
            overall,
            training: Default::default(),
        }
    }

    /// Handles one run event.
    pub fn on_event(&self, event: crate::runner::RunEvent) {
        use crate::runner::RunEvent;
        match event {
            RunEvent::Stage {
                cell,
                stage,
                cached,
            } => {
                let what = if cached { "cached" } else { "running" };
                if self.quiet {
                    eprintln!("cell {cell}: {stage} {what}");
                } else {
                    self.overall
                        .set_message(format!("cell {cell}: {stage} {what}"));
                }
            }
            RunEvent::Train { cell, stage, event } => self.on_train(cell, stage, event),
            RunEvent::CellDone { cell, error } => {
                match &error {
                    Some(e) => self.println(format!("cell {cell} failed: {e}")),
                    None if self.quiet => eprintln!("cell {cell} done"),
                    None => {}
                }
                self.overall.inc(1);
            }
        }
    }

    fn on_train(&self, cell: usize, stage: &'static str, event: TrainEvent) {
        let mut bars = self.training.lock().expect("progress lock");
        match event {
            TrainEvent::EpochStart {
                epoch,
                epochs,
                steps,
            } if !self.quiet => {
                let bar = self.multi.add(ProgressBar::new(steps as u64));
                bar.set_style(
                    ProgressStyle::with_template("  {prefix} [{bar:25}] {pos}/{len} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("cell {cell} {stage} epoch {epoch}/{epochs}"));
                if let Some(old) = bars.insert((cell, stage), bar) {
                    old.finish_and_clear();
                }
            }
            TrainEvent::Step { loss } => {
                if let Some(bar) = bars.get(&(cell, stage)) {
                    bar.set_message(format!("loss {loss:.4}"));
                    bar.inc(1);
                }
            }
            TrainEvent::EpochEnd(record) => {
                if let Some(bar) = bars.remove(&(cell, stage)) {
                    bar.finish_and_clear();
                }
                if self.quiet {
                    eprintln!(
                        "cell {cell} {stage} epoch {}: train loss {:.4}, valid loss {:.4}, valid AUROC {:.4}",
                        record.epoch, record.train_loss, record.valid_loss, record.valid_auroc
                    );
                }
            }
            _ => {}
        }
    }

    fn println(&self, line: String) {
        if self.quiet {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}
