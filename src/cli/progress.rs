//! Progress bars for training, driven by the trainer's events.

use crate::train::TrainEvent;
use indicatif::{ProgressBar, ProgressStyle};

/// Renders training events as one bar per epoch (nothing when quiet).
pub struct EpochBars {
    label: String,
    quiet: bool,
    bar: Option<ProgressBar>,
    loss_sum: f64,
    steps: usize,
}

impl EpochBars {
    /// Bars prefixed with `label` (e.g. "weak"); `quiet` prints epoch lines only to logs.
    pub fn new(label: impl Into<String>, quiet: bool) -> Self {
        Self { label: label.into(), quiet, bar: None, loss_sum: 0.0, steps: 0 }
    }

    /// Handles one event.
    pub fn on_event(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::EpochStart { epoch, epochs, steps } => {
                self.loss_sum = 0.0;
                self.steps = 0;
                if !self.quiet {
                    let bar = ProgressBar::new(steps as u64);
                    bar.set_style(
                        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("{} epoch {epoch}/{epochs}", self.label));
                    self.bar = Some(bar);
                }
            }
            TrainEvent::Step { loss } => {
                self.loss_sum += loss;
                self.steps += 1;
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("loss {:.4}", self.loss_sum / self.steps as f64));
                    bar.inc(1);
                }
            }
            TrainEvent::EpochEnd(record) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                if !self.quiet {
                    eprintln!(
                        "{} epoch {:>3}: train loss {:.4}  valid loss {:.4}  valid AUROC {:.4}{}",
                        self.label,
                        record.epoch,
                        record.train_loss,
                        record.valid_loss,
                        record.valid_auroc,
                        if record.best { "  *" } else { "" }
                    );
                }
            }
        }
    }
}
