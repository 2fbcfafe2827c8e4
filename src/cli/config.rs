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

/// The other values of each setting that takes one of a few names, written
/// beside its default.
const CHOICES: [(&str, &str); 6] = [
    (
        "data.split.kind",
        "or \"patch\": the reference's patch-level split (slides leak between parts)",
    ),
    (
        "training.schedule",
        "or \"reference\": the reference implementation's CosineAnnealingLR(T_max = 10 x batches per epoch) stepped once per epoch (nearly constant)",
    ),
    (
        "training.checkpoint",
        "or \"last-epoch\": the weights the reference implementation tested",
    ),
    (
        "training.sampling",
        "or \"shuffle\": every training patch once per epoch",
    ),
    (
        "mining.strategy",
        "none, knn-l2, knn-cosine, random, score or all",
    ),
    (
        "mining.overlapping_pool_slides",
        "pool patches of validation/test slides: \"error\", \"drop\" (leave them out of mining) or \"keep\" (mine them, as the reference did)",
    ),
];

/// Prints the defaults as TOML.
pub fn run(args: &ConfigArgs) -> Result<i32> {
    if args.defaults {
        println!("{}", defaults_text()?);
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

/// Every setting with its default, as an experiment file, the choices of
/// named settings in comments.
fn defaults_text() -> Result<String> {
    let text = toml::to_string_pretty(&ExperimentConfig::defaults())?;
    Ok(format!(
        "# ablate {} experiment settings and their defaults\n\n{}",
        env!("CARGO_PKG_VERSION"),
        annotate(&document_synthetic(&text))
    ))
}

/// `text` with a comment after each line that sets a key of [`CHOICES`].
fn annotate(text: &str) -> String {
    let mut section = String::new();
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        out.push_str(line);
        if let Some(header) = line.strip_prefix('[') {
            section = header.trim_end_matches(']').to_string();
        } else if let Some((key, _)) = line.split_once(" = ") {
            let full = format!("{section}.{key}");
            if let Some((_, note)) = CHOICES.iter().find(|(k, _)| *k == full) {
                out.push_str("  # ");
                out.push_str(note);
            }
        }
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

    #[test]
    fn defaults_read_back_and_name_the_choices() {
        let text = defaults_text().unwrap();
        let parsed: ExperimentConfig = toml::from_str(&text).unwrap();
        assert_eq!(parsed, ExperimentConfig::defaults());
        for (key, note) in CHOICES {
            let name = key.rsplit('.').next().unwrap();
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name} = ")) && l.ends_with(note)),
                "{key} lacks its note:\n{text}"
            );
        }
        // f32 settings as written, not widened to f64.
        assert!(text.contains("\nwarp_p = 0.8\n"), "{text}");
        assert!(!text.contains("00000") && !text.contains("99999"), "{text}");
    }
}
