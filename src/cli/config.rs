//! `ablate config --defaults`: every experiment-file setting with its default.

use crate::data::synth::SynthConfig;
use crate::experiment::ExperimentConfig;
use anyhow::Result;
use clap::Args;

/// Arguments of `ablate config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Print the defaults of every setting as an experiment file.
    #[arg(long, required = true)]
    defaults: bool,
}

/// Prints the defaults as TOML.
pub fn run(args: &ConfigArgs) -> Result<i32> {
    if args.defaults {
        let text = toml::to_string_pretty(&ExperimentConfig::defaults())?;
        println!(
            "# ablate {} experiment settings and their defaults\n\n{}",
            env!("CARGO_PKG_VERSION"),
            document_synthetic(&text)
        );
    }
    Ok(0)
}

/// Puts each `[data.synthetic]` setting's description (its `ablate synth`
/// flag help) as a comment above it.
fn document_synthetic(text: &str) -> String {
    let command = SynthConfig::augment_args(clap::Command::new("synth"));
    let help = |key: &str| {
        command
            .get_arguments()
            .find(|a| a.get_id() == key)
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
    };
    let mut out = String::with_capacity(text.len() * 2);
    let mut in_synthetic = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_synthetic = line.trim() == "[data.synthetic]";
        } else if in_synthetic {
            if let Some(description) = line.split_once(" = ").and_then(|(key, _)| help(key)) {
                for part in wrap(&description, 76) {
                    out.push_str("# ");
                    out.push_str(&part);
                    out.push('\n');
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("starts with one line");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_synthetic_setting_is_documented() {
        let text = toml::to_string_pretty(&ExperimentConfig::defaults()).unwrap();
        let documented = document_synthetic(&text);
        let section: Vec<&str> = documented
            .split("[data.synthetic]\n")
            .nth(1)
            .unwrap()
            .split("\n[")
            .next()
            .unwrap()
            .lines()
            .collect();
        let settings: Vec<&&str> = section.iter().filter(|l| l.contains(" = ")).collect();
        assert!(settings.len() >= 16, "{section:?}");
        for (i, line) in section.iter().enumerate() {
            if line.contains(" = ") {
                assert!(
                    i > 0 && section[i - 1].starts_with("# "),
                    "`{line}` has no description"
                );
            }
        }
        assert!(documented.contains("# Visibility of the endothelial lining"));
        // Other sections are unchanged.
        assert!(documented.contains("[training]\nepochs = "));
    }

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("", 5), vec![String::new()]);
    }
}
