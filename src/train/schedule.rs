//! Learning-rate schedules, stepped once per optimiser step.
//!
//! candle has no scheduler objects; the trainer asks the schedule for the
//! rate of each step and calls `set_learning_rate`.

use serde::{Deserialize, Serialize};

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
        if self.total_steps == 0 {
            return self.base_lr;
        }
        let progress = step.min(self.total_steps) as f64 / self.total_steps as f64;
        let cosine = (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0;
        self.min_lr + (self.base_lr - self.min_lr) * cosine
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
}
