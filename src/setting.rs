//! What every section of the experiment settings shares: the error for a
//! value a run cannot start with, and writing `f32` settings as written.
//!
//! Each section checks its own values (`validate`) and names the offending
//! key by its full dotted path, so the experiment loader can point at the
//! line of the file that set it.

use serde::Serializer;
use std::fmt;

/// A setting that parsed but lies outside what a run accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidSetting {
    /// Full dotted key, e.g. `training.augmentation.flip_p`.
    pub key: String,
    /// The whole message, naming the key, its value and what is accepted.
    pub message: String,
}

impl InvalidSetting {
    /// `` `key` = value: expected ... ``.
    pub fn range(key: impl Into<String>, value: impl fmt::Display, expected: &str) -> Self {
        let key = key.into();
        let message = format!("`{key}` = {value}: expected {expected}");
        Self { key, message }
    }

    /// A message of its own about `key` (for rules that involve several keys).
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The same error for a section nested under `prefix` (e.g. a
    /// `data.synthetic` setting checked by the generator, which calls it `size`).
    pub fn within(prefix: &str, key: &str, value: impl fmt::Display, expected: &str) -> Self {
        Self::range(format!("{prefix}.{key}"), value, expected)
    }
}

/// Serialises an `f32` setting as the `f64` with the same shortest decimal
/// form, so that TOML and JSON show `0.8` (as written) rather than the
/// widened `0.800000011920929`. Reading it back gives the same `f32`.
///
/// Use as `#[serde(serialize_with = "crate::setting::shortest_f32")]`.
pub fn shortest_f32<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    let shortest: f64 = value
        .to_string()
        .parse()
        .expect("an f32's decimal form is a valid f64");
    serializer.serialize_f64(shortest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Probabilities {
        #[serde(serialize_with = "shortest_f32")]
        p: f32,
        #[serde(serialize_with = "shortest_f32")]
        q: f32,
    }

    #[test]
    fn f32_settings_print_as_written_and_read_back_exactly() {
        let value = Probabilities {
            p: 0.8,
            q: 50.0 / 224.0,
        };
        let toml = toml::to_string(&value).unwrap();
        assert_eq!(toml, "p = 0.8\nq = 0.22321428\n");
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, r#"{"p":0.8,"q":0.22321428}"#);
        let as_value = serde_json::to_value(&value).unwrap().to_string();
        assert_eq!(as_value, json);
        assert_eq!(toml::from_str::<Probabilities>(&toml).unwrap(), value);
        assert_eq!(serde_json::from_str::<Probabilities>(&json).unwrap(), value);
    }

    #[test]
    fn messages_name_the_full_key() {
        let error = InvalidSetting::within("training.augmentation", "flip_p", 3, "a probability");
        assert_eq!(error.key, "training.augmentation.flip_p");
        assert_eq!(
            error.to_string(),
            "`training.augmentation.flip_p` = 3: expected a probability"
        );
    }
}
