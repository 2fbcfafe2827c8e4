//! The experiment matrix: axes of config values and their expansion into cells.
//!
//! `[matrix]` maps dotted config keys to lists of values. Every combination of
//! the axes is a cell; `zip` pairs axes value by value instead of crossing
//! them; `exclude` drops the combinations matching a partial assignment and
//! `include` adds assignments. `seeds` and `folds` are replicate axes: they
//! are crossed with everything and sit innermost.

use std::collections::BTreeMap;
use toml::Value;

/// Values given to config keys in one cell (dotted key -> value).
pub type Assignment = BTreeMap<String, Value>;

/// Key of the training-seed replicate axis.
pub const SEED_KEY: &str = "replicate.seed";
/// Key of the fold replicate axis.
pub const FOLD_KEY: &str = "replicate.fold";

/// A problem in `[matrix]`, naming the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatrixError {
    /// An axis was not a non-empty list.
    #[error("matrix axis `{key}` must be a non-empty list of values")]
    EmptyAxis {
        /// The axis key.
        key: String,
    },
    /// A value of the wrong shape.
    #[error("matrix key `{key}`: {message}")]
    Invalid {
        /// The offending key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl MatrixError {
    /// The `[matrix]` key the error is about.
    pub fn key(&self) -> &str {
        match self {
            MatrixError::EmptyAxis { key } | MatrixError::Invalid { key, .. } => key,
        }
    }
}

/// Axes crossed with each other (one group may zip several keys).
#[derive(Debug, Clone, PartialEq)]
struct AxisGroup {
    keys: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// A parsed `[matrix]` table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    groups: Vec<AxisGroup>,
    replicates: Vec<AxisGroup>,
    include: Vec<Assignment>,
    exclude: Vec<Assignment>,
}

impl Matrix {
    /// Parses the `[matrix]` table (absent = a single cell).
    pub fn parse(table: Option<&toml::Table>) -> Result<Self, MatrixError> {
        let Some(table) = table else {
            return Ok(Self::default());
        };
        let zipped: Vec<Vec<String>> = match table.get("zip") {
            None => Vec::new(),
            Some(value) => parse_zip(value)?,
        };
        let mut axes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut matrix = Matrix::default();
        for (key, value) in table {
            match key.as_str() {
                "zip" => {}
                "include" => matrix.include = parse_assignments(key, value)?,
                "exclude" => matrix.exclude = parse_assignments(key, value)?,
                "seeds" => matrix.replicates.push(single_axis(SEED_KEY, key, value)?),
                "folds" => matrix.replicates.push(single_axis(FOLD_KEY, key, value)?),
                _ => {
                    let values = axis_values(key, value)?;
                    axes.insert(key.clone(), values);
                }
            }
        }
        for keys in zipped {
            let mut columns = Vec::new();
            for key in &keys {
                let values = axes.remove(key).ok_or_else(|| MatrixError::Invalid {
                    key: "zip".into(),
                    message: format!("`{key}` is not an axis of [matrix]"),
                })?;
                columns.push(values);
            }
            let len = columns[0].len();
            if columns.iter().any(|c| c.len() != len) {
                return Err(MatrixError::Invalid {
                    key: "zip".into(),
                    message: format!("zipped axes {keys:?} must have the same number of values"),
                });
            }
            let rows = (0..len)
                .map(|i| columns.iter().map(|c| c[i].clone()).collect())
                .collect();
            matrix.groups.push(AxisGroup { keys, rows });
        }
        for (key, values) in axes {
            matrix.groups.push(AxisGroup {
                keys: vec![key],
                rows: values.into_iter().map(|v| vec![v]).collect(),
            });
        }
        matrix.groups.sort_by(|a, b| a.keys.cmp(&b.keys));
        matrix.replicates.sort_by(|a, b| a.keys.cmp(&b.keys));
        Ok(matrix)
    }

    /// Every axis key (replicates included), in a stable order.
    pub fn axis_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .groups
            .iter()
            .chain(&self.replicates)
            .flat_map(|g| g.keys.clone())
            .collect();
        for assignment in &self.include {
            for key in assignment.keys() {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        keys
    }

    /// The `[matrix]` entry an axis key comes from: `seeds`, `folds`, the
    /// key itself, or `include`.
    pub fn entry_of<'a>(&self, axis: &'a str) -> &'a str {
        match axis {
            SEED_KEY => "seeds",
            FOLD_KEY => "folds",
            _ if self.groups.iter().any(|g| g.keys.iter().any(|k| k == axis)) => axis,
            _ => "include",
        }
    }

    /// Expands the matrix into cell assignments: the cross product of all
    /// groups (replicates innermost), minus `exclude` matches, plus `include`
    /// (each crossed with the replicates), without duplicates. With no axes
    /// but `include`, the cells are exactly the included ones.
    pub fn expand(&self) -> Vec<Assignment> {
        // A matrix of includes only lists its cells; otherwise the base
        // settings (with no axes) would be a cell too.
        let base = if self.groups.is_empty() && !self.include.is_empty() {
            Vec::new()
        } else {
            cross(&self.groups, vec![Assignment::new()])
        };
        let mut cells: Vec<Assignment> = base
            .into_iter()
            .filter(|cell| !self.excluded(cell))
            .collect();
        cells.extend(self.include.iter().cloned());
        let cells = cross(&self.replicates, cells);
        let mut unique = Vec::with_capacity(cells.len());
        for cell in cells {
            if !unique.contains(&cell) {
                unique.push(cell);
            }
        }
        unique
    }

    fn excluded(&self, cell: &Assignment) -> bool {
        self.exclude
            .iter()
            .any(|pattern| pattern.iter().all(|(k, v)| cell.get(k) == Some(v)))
    }
}

/// Crosses `cells` with every group in order (later groups vary fastest).
fn cross(groups: &[AxisGroup], cells: Vec<Assignment>) -> Vec<Assignment> {
    groups.iter().fold(cells, |cells, group| {
        cells
            .iter()
            .flat_map(|cell| {
                group.rows.iter().map(move |row| {
                    let mut next = cell.clone();
                    for (key, value) in group.keys.iter().zip(row) {
                        next.insert(key.clone(), value.clone());
                    }
                    next
                })
            })
            .collect()
    })
}

fn axis_values(key: &str, value: &Value) -> Result<Vec<Value>, MatrixError> {
    match value {
        Value::Array(values) if !values.is_empty() => Ok(values.clone()),
        _ => Err(MatrixError::EmptyAxis {
            key: key.to_string(),
        }),
    }
}

/// `seeds = [0, 1, 2]` or `seeds = 3` (meaning 0, 1, 2).
fn single_axis(target: &str, key: &str, value: &Value) -> Result<AxisGroup, MatrixError> {
    let values = match value {
        Value::Integer(n) if *n > 0 => (0..*n).map(Value::Integer).collect(),
        Value::Integer(_) => {
            return Err(MatrixError::EmptyAxis {
                key: key.to_string(),
            })
        }
        _ => axis_values(key, value)?,
    };
    if let Some(bad) = values
        .iter()
        .find(|v| !matches!(v, Value::Integer(n) if *n >= 0))
    {
        return Err(MatrixError::Invalid {
            key: key.to_string(),
            message: format!("values must be non-negative integers, found {bad}"),
        });
    }
    Ok(AxisGroup {
        keys: vec![target.to_string()],
        rows: values.into_iter().map(|v| vec![v]).collect(),
    })
}

fn parse_zip(value: &Value) -> Result<Vec<Vec<String>>, MatrixError> {
    let invalid = || MatrixError::Invalid {
        key: "zip".into(),
        message: "expected a list of lists of axis keys, e.g. zip = [[\"a.b\", \"c.d\"]]".into(),
    };
    let Value::Array(groups) = value else {
        return Err(invalid());
    };
    groups
        .iter()
        .map(|group| match group {
            Value::Array(keys) if keys.len() >= 2 => keys
                .iter()
                .map(|k| k.as_str().map(str::to_string).ok_or_else(invalid))
                .collect(),
            _ => Err(invalid()),
        })
        .collect()
}

fn parse_assignments(key: &str, value: &Value) -> Result<Vec<Assignment>, MatrixError> {
    let invalid = || MatrixError::Invalid {
        key: key.to_string(),
        message:
            "expected a list of tables of dotted keys, e.g. [{ \"mining.strategy\" = \"none\" }]"
                .into(),
    };
    let Value::Array(items) = value else {
        return Err(invalid());
    };
    items
        .iter()
        .map(|item| match item {
            Value::Table(table) => Ok(flatten(table, "")),
            _ => Err(invalid()),
        })
        .collect()
}

/// `{ mining = { strategy = "x" } }` and `{ "mining.strategy" = "x" }` both become `mining.strategy`.
fn flatten(table: &toml::Table, prefix: &str) -> Assignment {
    let mut out = Assignment::new();
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Table(inner) => out.extend(flatten(inner, &full)),
            other => {
                out.insert(full, other.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(text: &str) -> Result<Matrix, MatrixError> {
        let table: toml::Table = toml::from_str(text).unwrap();
        Matrix::parse(table.get("matrix").and_then(Value::as_table))
    }

    fn show(cells: &[Assignment]) -> Vec<String> {
        cells
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[test]
    fn no_matrix_is_one_cell() {
        assert_eq!(matrix("").unwrap().expand(), vec![Assignment::new()]);
    }

    #[test]
    fn cross_product_with_replicates_innermost() {
        let m =
            matrix("[matrix]\n\"mining.strategy\" = [\"none\", \"knn-l2\"]\nseeds = 2\n").unwrap();
        assert_eq!(
            show(&m.expand()),
            vec![
                "mining.strategy=\"none\",replicate.seed=0",
                "mining.strategy=\"none\",replicate.seed=1",
                "mining.strategy=\"knn-l2\",replicate.seed=0",
                "mining.strategy=\"knn-l2\",replicate.seed=1",
            ]
        );
    }

    #[test]
    fn zip_pairs_values_and_exclude_include_edit_the_set() {
        let m = matrix(
            "[matrix]\na = [1, 2]\nb = [10, 20]\nc = [\"x\", \"y\"]\nzip = [[\"a\", \"b\"]]\n\
             exclude = [{ c = \"y\", a = 2 }]\ninclude = [{ a = 3, b = 30, c = \"z\" }]\n",
        )
        .unwrap();
        assert_eq!(
            show(&m.expand()),
            vec![
                "a=1,b=10,c=\"x\"",
                "a=1,b=10,c=\"y\"",
                "a=2,b=20,c=\"x\"",
                "a=3,b=30,c=\"z\""
            ]
        );
    }

    #[test]
    fn include_only_matrix_lists_exactly_its_cells() {
        let m = matrix("[matrix]\ninclude = [{ a = 1 }, { b = { c = 2 } }]\nfolds = 2\n").unwrap();
        assert_eq!(
            show(&m.expand()),
            vec![
                "a=1,replicate.fold=0",
                "a=1,replicate.fold=1",
                "b.c=2,replicate.fold=0",
                "b.c=2,replicate.fold=1"
            ]
        );
    }

    #[test]
    fn adding_a_value_keeps_existing_cells() {
        let before = matrix("[matrix]\nx = [1, 2]\nseeds = [0, 1]\n")
            .unwrap()
            .expand();
        let after = matrix("[matrix]\nx = [1, 2, 3]\nseeds = [0, 1]\n")
            .unwrap()
            .expand();
        assert!(before.iter().all(|cell| after.contains(cell)));
    }

    #[test]
    fn errors_name_the_key() {
        let e = matrix("[matrix]\n\"training.epochs\" = []\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "matrix axis `training.epochs` must be a non-empty list of values"
        );
        let e = matrix("[matrix]\nseeds = [\"a\"]\n").unwrap_err();
        assert!(e.to_string().contains("`seeds`"), "{e}");
        let e = matrix("[matrix]\na = [1]\nzip = [[\"a\", \"b\"]]\n").unwrap_err();
        assert!(e.to_string().contains("`b` is not an axis"), "{e}");
        let e = matrix("[matrix]\na = [1, 2]\nb = [1]\nzip = [[\"a\", \"b\"]]\n").unwrap_err();
        assert!(e.to_string().contains("same number of values"), "{e}");
    }
}
