//! `ablate config --defaults`: every experiment-file setting with its default.

use crate::experiment::ExperimentConfig;
use anyhow::Result;

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

/// Every setting with its default, as an experiment file, the choices of
/// named settings in comments.
fn defaults_text() -> Result<String> {
    let text = toml::to_string_pretty(&ExperimentConfig::defaults())?;
    Ok(format!(
        "# ablate {} experiment settings and their defaults\n\n{}",
        env!("CARGO_PKG_VERSION"),
        annotate(&text)
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

#[cfg(test)]
mod tests {
    use super::*;

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
