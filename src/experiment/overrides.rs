//! `--set KEY=VALUE`: settings given on the command line instead of in the
//! experiment file.
//!
//! `KEY` is a dotted TOML key (`training.epochs`; quote a part that contains
//! dots: `matrix."mining.strategy"`) and `VALUE` a TOML value (`3`, `1e-3`,
//! `true`, `"text"`, `[1, 2]`, `{ seed = 1 }`); a bare word that is not
//! TOML (`knn-l2`, `cuda:0`, `reports/x`) is taken as a string. Overrides
//! are applied in order to the file's table before it is validated, so they
//! meet the same checks, with errors that name the override.

use toml::Value;

/// One `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// As given on the command line.
    pub text: String,
    /// The key's parts: `["matrix", "mining.strategy"]`.
    pub path: Vec<String>,
    /// The value.
    pub value: Value,
}

/// Why an override cannot be parsed or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// No `=`.
    #[error("`{0}` is not KEY=VALUE (e.g. training.epochs=3)")]
    NoEquals(String),
    /// The key is not a TOML key.
    #[error("`{key}` is not a dotted key: {message} (e.g. training.epochs, or matrix.\"mining.strategy\")")]
    Key {
        /// The key as given.
        key: String,
        /// The parser's message.
        message: String,
    },
    /// The value is not a TOML value (and not a bare word).
    #[error("`{value}` is not a TOML value: {message} (quote strings: '\"text\"'; lists: [1, 2])")]
    Value {
        /// The value as given.
        value: String,
        /// The parser's message.
        message: String,
    },
    /// A part of the key names a setting that is not a table.
    #[error("`{part}` is not a table of settings, so it has no `{rest}`")]
    NotATable {
        /// The part that is a value.
        part: String,
        /// The rest of the key.
        rest: String,
    },
}

impl std::str::FromStr for Override {
    type Err = OverrideError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let split =
            equals_outside_quotes(text).ok_or_else(|| OverrideError::NoEquals(text.into()))?;
        let (key, value) = (text[..split].trim(), text[split + 1..].trim());
        let path = parse_key(key)?;
        let value = parse_value(value)?;
        Ok(Self {
            text: text.to_string(),
            path,
            value,
        })
    }
}

impl Override {
    /// The key as dotted text, parts with dots quoted: `matrix."mining.strategy"`.
    pub fn key(&self) -> String {
        self.path
            .iter()
            .map(|part| {
                if part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    part.clone()
                } else {
                    Value::String(part.clone()).to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The setting it changes as a matrix axis would name it
    /// (`training.epochs`); `None` for a change of the matrix itself.
    pub fn setting(&self) -> Option<String> {
        (self.path[0] != "matrix").then(|| self.path.join("."))
    }

    /// Whether it changes `[matrix]` (all of it, or the entry `key`).
    pub fn changes_matrix_entry(&self, key: &str) -> bool {
        self.path[0] == "matrix" && self.path.get(1).is_none_or(|k| k == key)
    }

    /// Sets the value in `doc`, creating tables on the way.
    pub fn apply(&self, doc: &mut toml::Table) -> Result<(), OverrideError> {
        let (last, parents) = self.path.split_last().expect("a key has a part");
        let mut table = doc;
        for (i, part) in parents.iter().enumerate() {
            let entry = table
                .entry(part.clone())
                .or_insert_with(|| Value::Table(toml::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| OverrideError::NotATable {
                    part: self.path[..=i].join("."),
                    rest: self.path[i + 1..].join("."),
                })?;
        }
        table.insert(last.clone(), self.value.clone());
        Ok(())
    }

    /// The shell word of this override for a command line: `--set 'KEY=VALUE'`.
    pub fn shell_args(&self) -> String {
        format!("--set {}", crate::slurm::script::shell_quote(&self.text))
    }
}

/// Position of the first `=` that is not inside a quoted part of the key.
fn equals_outside_quotes(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '=') => return Some(i),
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    None
}

/// The parts of a dotted TOML key.
fn parse_key(key: &str) -> Result<Vec<String>, OverrideError> {
    let invalid = |message: String| OverrideError::Key {
        key: key.to_string(),
        message,
    };
    if key.is_empty() {
        return Err(invalid("the key is empty".into()));
    }
    let table: toml::Table = format!("{key} = 0")
        .parse()
        .map_err(|e: toml::de::Error| invalid(e.message().trim().to_string()))?;
    let mut path = Vec::new();
    let mut current = &table;
    loop {
        let (name, value) = current.iter().next().expect("the key has a value");
        path.push(name.clone());
        match value {
            Value::Table(inner) => current = inner,
            _ => return Ok(path),
        }
    }
}

/// A TOML value, or a bare word as a string.
fn parse_value(text: &str) -> Result<Value, OverrideError> {
    let parsed = format!("value = {text}")
        .parse::<toml::Table>()
        .map(|mut t| t.remove("value").expect("parsed the key"));
    match parsed {
        Ok(value) => Ok(value),
        Err(_) if is_bare_word(text) => Ok(Value::String(text.to_string())),
        Err(e) => Err(OverrideError::Value {
            value: text.to_string(),
            message: e.message().trim().to_string(),
        }),
    }
}

/// Text that can only be meant as a string: no quotes, brackets, braces,
/// `=` or spaces.
fn is_bare_word(text: &str) -> bool {
    !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || "\"'[]{}=#,".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Override, OverrideError> {
        text.parse()
    }

    #[test]
    fn keys_and_values() {
        let o = parse("training.epochs=3").unwrap();
        assert_eq!(o.path, ["training", "epochs"]);
        assert_eq!(o.value, Value::Integer(3));
        assert_eq!(o.setting().as_deref(), Some("training.epochs"));
        let o = parse("matrix.\"mining.strategy\" = [\"none\", \"random\"]").unwrap();
        assert_eq!(o.path, ["matrix", "mining.strategy"]);
        assert_eq!(o.key(), "matrix.\"mining.strategy\"");
        assert!(o.changes_matrix_entry("mining.strategy") && !o.changes_matrix_entry("seeds"));
        assert_eq!(o.setting(), None);
        assert_eq!(o.value, Value::Array(vec!["none".into(), "random".into()]));
        assert_eq!(parse("matrix.seeds=5").unwrap().value, Value::Integer(5));
        assert_eq!(parse("training.lr=1e-3").unwrap().value, Value::Float(1e-3));
        // Bare words are strings; quoted strings may hold anything.
        assert_eq!(
            parse("mining.strategy=knn-l2").unwrap().value,
            "knn-l2".into()
        );
        assert_eq!(parse("device=cuda:1").unwrap().value, "cuda:1".into());
        assert_eq!(parse("name=\"a b=c\"").unwrap().value, "a b=c".into());
        let table = parse("data.synthetic={ seed = 2, size = 32 }").unwrap();
        assert_eq!(table.value["size"], Value::Integer(32));
        // An `=` inside a quoted key part does not split.
        assert_eq!(parse("matrix.\"a=b\"=[1]").unwrap().path, ["matrix", "a=b"]);
    }

    #[test]
    fn malformed_overrides_say_what_is_wrong() {
        let error = parse("training.epochs").unwrap_err().to_string();
        assert!(error.contains("not KEY=VALUE"), "{error}");
        let error = parse("=3").unwrap_err().to_string();
        assert!(error.contains("key is empty"), "{error}");
        let error = parse("training..epochs=3").unwrap_err().to_string();
        assert!(
            error.contains("`training..epochs` is not a dotted key"),
            "{error}"
        );
        let error = parse("training.epochs=[1, 2").unwrap_err().to_string();
        assert!(error.contains("`[1, 2` is not a TOML value"), "{error}");
        let error = parse("name=two words").unwrap_err().to_string();
        assert!(error.contains("quote strings"), "{error}");
    }

    #[test]
    fn applying_creates_tables_and_refuses_to_enter_values() {
        let mut doc: toml::Table = "seed = 1\n[training]\nlr = 0.1\n".parse().unwrap();
        parse("training.epochs=3").unwrap().apply(&mut doc).unwrap();
        parse("data.synthetic.seed=4")
            .unwrap()
            .apply(&mut doc)
            .unwrap();
        parse("seed=2").unwrap().apply(&mut doc).unwrap();
        assert_eq!(doc["training"]["epochs"], Value::Integer(3));
        assert_eq!(doc["training"]["lr"], Value::Float(0.1));
        assert_eq!(doc["data"]["synthetic"]["seed"], Value::Integer(4));
        assert_eq!(doc["seed"], Value::Integer(2));
        let error = parse("seed.value=1")
            .unwrap()
            .apply(&mut doc)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "`seed` is not a table of settings, so it has no `value`"
        );
        assert_eq!(
            parse("matrix.\"mining.strategy\"=[\"none\"]")
                .unwrap()
                .shell_args(),
            "--set 'matrix.\"mining.strategy\"=[\"none\"]'"
        );
    }
}
