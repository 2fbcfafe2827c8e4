//! Axis ranges and tick labels that a reader finds natural: ranges from the
//! data rounded outwards to a "nice" step (1, 2, 2.5 or 5 times a power of
//! ten), ticks on multiples of that step, labels with just enough decimals.

/// A closed axis range and its tick step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisRange {
    /// Lower end (a multiple of `step`, or a bound).
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Distance between ticks.
    pub step: f64,
}

impl AxisRange {
    /// Tick positions: multiples of `step` inside the range.
    pub fn ticks(&self) -> Vec<f64> {
        let first = (self.low / self.step - 1e-9).ceil() as i64;
        let last = (self.high / self.step + 1e-9).floor() as i64;
        (first..=last)
            .map(|k| round_to_step(k as f64 * self.step, self.step))
            .collect()
    }

    /// Decimals needed to tell ticks apart.
    pub fn decimals(&self) -> usize {
        decimals_for(self.step)
    }

    /// Formats a tick value.
    pub fn format(&self, value: f64) -> String {
        let text = format!("{:.*}", self.decimals(), value);
        // "-0.00" reads oddly on an axis.
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_string()
        } else {
            text
        }
    }
}

/// Removes floating noise from k * step (0.1 * 3 = 0.30000000000000004).
fn round_to_step(value: f64, step: f64) -> f64 {
    let scale = 10f64.powi(decimals_for(step) as i32 + 2);
    (value * scale).round() / scale
}

/// Decimals of a step: 0.05 -> 2, 0.25 -> 2, 2 -> 0.
fn decimals_for(step: f64) -> usize {
    let mut decimals = 0;
    while decimals < 10
        && ((step * 10f64.powi(decimals as i32)).round() - step * 10f64.powi(decimals as i32)).abs()
            > 1e-6
    {
        decimals += 1;
    }
    decimals
}

/// A nice step giving roughly `target` intervals over `span`.
pub fn nice_step(span: f64, target: usize) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|&n| fraction <= n * (1.0 + 1e-9))
        .unwrap_or(10.0);
    nice * magnitude
}

/// The range covering `[low, high]` rounded outwards to a nice step,
/// clamped to `bounds` (e.g. (0, 1) for a proportion). A flat range is
/// widened so the data are not drawn on the frame.
pub fn nice_range(low: f64, high: f64, bounds: (f64, f64), target_ticks: usize) -> AxisRange {
    let (mut low, mut high) = if low.is_finite() && high.is_finite() {
        (low, high)
    } else {
        (bounds.0.max(0.0), 1.0)
    };
    if high - low < 1e-9 {
        let pad = if low.abs() > 1e-9 {
            low.abs() * 0.05
        } else {
            0.05
        };
        low -= pad;
        high += pad;
    }
    let step = nice_step(high - low, target_ticks);
    let low = ((low / step) + 1e-9).floor() * step;
    let high = ((high / step) - 1e-9).ceil() * step;
    AxisRange {
        low: round_to_step(low.max(bounds.0), step),
        high: round_to_step(high.min(bounds.1), step),
        step,
    }
}

/// A data value (an axis setting) in its shortest form: 0.1, 20, 1.5e-4.
pub fn format_value(value: f64) -> String {
    if value == value.round() && value.abs() < 1e9 {
        format!("{value:.0}")
    } else if value.abs() >= 1e-3 {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{value:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(0.23, 5), 0.05);
        assert_eq!(nice_step(0.11, 5), 0.05);
        assert_eq!(nice_step(95.0, 5), 20.0);
    }

    #[test]
    fn ranges_round_outwards_and_clamp() {
        let r = nice_range(0.812, 0.957, (0.0, 1.0), 5);
        assert_eq!((r.low, r.high, r.step), (0.8, 1.0, 0.05));
        assert_eq!(r.ticks(), vec![0.8, 0.85, 0.9, 0.95, 1.0]);
        assert_eq!(r.format(0.8), "0.80");
        let r = nice_range(0.62, 1.04, (0.0, 1.0), 5);
        assert_eq!((r.low, r.high), (0.6, 1.0));
        let flat = nice_range(0.9, 0.9, (0.0, 1.0), 5);
        assert!(flat.low < 0.9 && flat.high > 0.9);
        assert_eq!(
            nice_range(-0.04, 0.02, (f64::NEG_INFINITY, f64::INFINITY), 5).format(0.0),
            "0.00"
        );
    }

    #[test]
    fn value_formats() {
        assert_eq!(format_value(20.0), "20");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(0.30000000000000004), "0.3");
        assert_eq!(format_value(0.0001), "1.0e-4");
    }
}
