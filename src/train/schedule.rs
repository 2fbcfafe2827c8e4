//! Learning-rate schedules: the rate of every optimiser step.
//!
//! candle has no scheduler objects; the trainer asks the schedule for the
//! rate of each step and calls `set_learning_rate`.
//!
//! Two schedules, both PyTorch's `CosineAnnealingLR`, differ in how often
//! it is stepped and over how long:
//! - [`ScheduleKind::Cosine`] (the default, the paper's "cosine annealing"):
//!   `T_max` = every optimiser step of the run, stepped per batch, so the
//!   rate falls from `lr` to `min_lr` over the whole run;
//! - [`ScheduleKind::Reference`], what the reference implementation ran:
//!   `T_max = 10 x batches per epoch`, but stepped once per *epoch* (Lightning's
//!   default for a scheduler returned without an `interval`), so over 30
//!   epochs the rate falls by only about 5%: training at a nearly constant
//!   `lr`.

use serde::{Deserialize, Serialize};

/// Which learning-rate schedule a run uses, as named in experiment files
/// (`training.schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// Cosine annealing from `lr` to `min_lr` over all optimiser steps,
    /// updated every step.
    #[default]
    Cosine,
    /// The reference implementation's: `CosineAnnealingLR(T_max = 10 x
    /// batches per epoch, eta_min = min_lr)` stepped once per epoch.
    Reference,
}

impl ScheduleKind {
    /// Name as written in experiment files.
    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Reference => "reference",
        }
    }
}

/// The rate of `CosineAnnealingLR(T_max = t_max, eta_min = min_lr)` after
/// `t` scheduler steps, in closed form: `min_lr + (base_lr - min_lr) * (1 +
/// cos(pi * t / t_max)) / 2`. Past `t_max` it rises again along the cosine,
/// as PyTorch's does.
fn annealed(base_lr: f64, min_lr: f64, t: usize, t_max: usize) -> f64 {
    if t_max == 0 {
        return base_lr;
    }
    let cosine = (1.0 + (std::f64::consts::PI * t as f64 / t_max as f64).cos()) / 2.0;
    min_lr + (base_lr - min_lr) * cosine
}

/// Cosine annealing from `base_lr` to `min_lr` over `total_steps` steps,
/// as PyTorch's `CosineAnnealingLR(T_max = total_steps, eta_min = min_lr)`
/// stepped per batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineSchedule {
    /// Rate at step 0.
    pub base_lr: f64,
    /// Rate reached at `total_steps`.
    pub min_lr: f64,
    /// Number of optimiser steps of the whole run.
    pub total_steps: usize,
}

impl CosineSchedule {
    /// The rate for optimiser step `step` (0-based); constant after the end.
    pub fn rate(&self, step: usize) -> f64 {
        annealed(
            self.base_lr,
            self.min_lr,
            step.min(self.total_steps),
            self.total_steps,
        )
    }
}

/// The reference implementation's schedule: `CosineAnnealingLR(T_max =
/// 10 x batches per epoch, eta_min = min_lr)` stepped once per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReferenceSchedule {
    /// Rate of the first epoch.
    pub base_lr: f64,
    /// `eta_min`.
    pub min_lr: f64,
    /// Optimiser steps per epoch (`T_max` is ten times this, in epochs).
    pub steps_per_epoch: usize,
}

impl ReferenceSchedule {
    /// The rate in force during 0-based epoch `epoch` (after `epoch`
    /// scheduler steps).
    pub fn rate(&self, epoch: usize) -> f64 {
        annealed(self.base_lr, self.min_lr, epoch, 10 * self.steps_per_epoch)
    }
}

/// A run's schedule: the rate of each optimiser step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Per-step cosine over the run.
    Cosine(CosineSchedule),
    /// The reference's per-epoch schedule.
    Reference(ReferenceSchedule),
}

impl Schedule {
    /// The schedule `kind` for a run of `epochs` epochs of `steps_per_epoch`
    /// optimiser steps, from `base_lr` down towards `min_lr`.
    pub fn new(
        kind: ScheduleKind,
        base_lr: f64,
        min_lr: f64,
        steps_per_epoch: usize,
        epochs: usize,
    ) -> Self {
        match kind {
            ScheduleKind::Cosine => Schedule::Cosine(CosineSchedule {
                base_lr,
                min_lr,
                total_steps: steps_per_epoch * epochs,
            }),
            ScheduleKind::Reference => Schedule::Reference(ReferenceSchedule {
                base_lr,
                min_lr,
                steps_per_epoch,
            }),
        }
    }

    /// The rate of optimiser step `step` (0-based over the run), which lies
    /// in 0-based epoch `epoch`.
    pub fn rate(&self, epoch: usize, step: usize) -> f64 {
        match self {
            Schedule::Cosine(cosine) => cosine.rate(step),
            Schedule::Reference(reference) => reference.rate(epoch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_hits_start_middle_and_end() {
        let s = CosineSchedule {
            base_lr: 1e-3,
            min_lr: 1e-5,
            total_steps: 100,
        };
        assert_eq!(s.rate(0), 1e-3);
        assert!((s.rate(50) - (1e-5 + (1e-3 - 1e-5) * 0.5)).abs() < 1e-15);
        assert!((s.rate(100) - 1e-5).abs() < 1e-18);
        assert!((s.rate(1000) - 1e-5).abs() < 1e-18);
        // Quarter way: (1 + cos(pi/4)) / 2.
        let quarter = 1e-5 + (1e-3 - 1e-5) * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0;
        assert!((s.rate(25) - quarter).abs() < 1e-15);
    }

    #[test]
    fn cosine_is_monotone_non_increasing() {
        let s = CosineSchedule {
            base_lr: 1e-4,
            min_lr: 0.0,
            total_steps: 37,
        };
        for step in 0..40 {
            assert!(s.rate(step + 1) <= s.rate(step));
        }
    }

    #[test]
    fn reference_schedule_matches_pytorch_stepped_per_epoch() {
        // Rates from torch.optim.lr_scheduler.CosineAnnealingLR(T_max = 10 x
        // batches) stepped once per epoch (scripts/make_schedule_fixture.py).
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/schedule.json")).unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        for case in cases {
            let base_lr = case["base_lr"].as_f64().unwrap();
            let min_lr = case["min_lr"].as_f64().unwrap();
            let batches = case["batches_per_epoch"].as_u64().unwrap() as usize;
            let epochs = case["epochs"].as_u64().unwrap() as usize;
            let expected: Vec<f64> = case["rates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_f64().unwrap())
                .collect();
            assert_eq!(expected.len(), epochs + 1);
            let schedule = Schedule::new(ScheduleKind::Reference, base_lr, min_lr, batches, epochs);
            for (epoch, &torch) in expected.iter().enumerate() {
                // Every step of an epoch runs at that epoch's rate.
                for step in [epoch * batches, epoch * batches + batches - 1] {
                    let ours = schedule.rate(epoch, step);
                    assert!(
                        (ours - torch).abs() <= 1e-12 * base_lr,
                        "{batches} batches, after {epoch} epochs: {ours} vs torch {torch}"
                    );
                }
            }
        }
        // The reference run (20 batches, 30 epochs) ends only ~5% below its start.
        let first = &cases[0]["rates"];
        let last = first[30].as_f64().unwrap() / first[0].as_f64().unwrap();
        assert!((0.94..0.95).contains(&last), "{last}");
    }

    #[test]
    fn the_default_schedule_anneals_per_step_over_the_run() {
        let schedule = Schedule::new(ScheduleKind::Cosine, 1e-3, 0.0, 10, 3);
        assert_eq!(schedule.rate(0, 0), 1e-3);
        // Within an epoch the rate changes every step, unlike the reference's.
        assert!(schedule.rate(0, 9) < schedule.rate(0, 0));
        assert!((schedule.rate(1, 15) - 5e-4).abs() < 1e-15);
        assert!(schedule.rate(2, 30) < 1e-18);
    }
}
