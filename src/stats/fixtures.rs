//! Loading the reference values under `tests/fixtures/stats/` and comparing
//! against them while recording the largest deviation.
//!
//! The fixture script writes non-finite numbers as the strings "nan", "inf"
//! and "-inf" because JSON has no such numbers.

use serde_json::Value;
use std::fmt;

/// Parses one fixture file.
pub fn load(text: &str) -> Value {
    serde_json::from_str(text).expect("stats fixture parses as JSON")
}

/// A number, or one of the strings "nan", "inf", "-inf".
pub fn num(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().expect("fixture number fits f64"),
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("unexpected fixture string {other:?}"),
        },
        other => panic!("expected a fixture number, got {other}"),
    }
}

/// An array of numbers (see [`num`]).
pub fn nums(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("fixture array")
        .iter()
        .map(num)
        .collect()
}

/// The cases of a fixture file with a `cases` array.
pub fn cases(fixture: &Value) -> &[Value] {
    let cases = fixture["cases"].as_array().expect("fixture has cases");
    assert!(!cases.is_empty(), "fixture lost its cases");
    cases
}

/// Checks values against references within a tolerance and remembers the
/// largest deviation, so tests can report how close they came.
pub struct Deviation {
    tolerance: f64,
    max: f64,
    worst: String,
    count: usize,
}

impl Deviation {
    /// A tracker failing on deviations above `tolerance`.
    pub fn new(tolerance: f64) -> Self {
        Self {
            tolerance,
            max: 0.0,
            worst: String::new(),
            count: 0,
        }
    }

    /// Asserts |actual - expected| <= tolerance; NaN must meet NaN and an
    /// infinity the same infinity.
    pub fn check(&mut self, actual: f64, expected: f64, what: &str) {
        self.compare(actual, expected, 1.0, what);
    }

    /// Like [`Deviation::check`], relative to max(1, |expected|).
    pub fn check_scaled(&mut self, actual: f64, expected: f64, what: &str) {
        self.compare(actual, expected, expected.abs().max(1.0), what);
    }

    fn compare(&mut self, actual: f64, expected: f64, scale: f64, what: &str) {
        self.count += 1;
        if expected.is_nan() || expected.is_infinite() {
            assert!(
                actual.is_nan() && expected.is_nan() || actual == expected,
                "{what}: got {actual}, expected {expected}"
            );
            return;
        }
        let deviation = (actual - expected).abs() / scale;
        assert!(
            deviation <= self.tolerance,
            "{what}: got {actual}, expected {expected} (deviation {deviation:e})"
        );
        if deviation > self.max {
            self.max = deviation;
            self.worst = what.to_string();
        }
    }
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max deviation {:.2e} over {} values (at {})",
            self.max, self.count, self.worst
        )
    }
}
