//! `ablate synth`: write the synthetic dataset to a folder, or only its
//! contact sheet.

use super::GlobalArgs;
use crate::data::source::{SynthRecord, SYNTH_CONFIG_FILE};
use crate::data::synth::preview::{write_preview, PREVIEW_FILE};
use crate::data::synth::{generate, SynthConfig};
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `ablate synth`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("target").required(true).multiple(true))]
pub struct SynthArgs {
    /// Output folder (gets hard_labeled_dataset/, weakly_labeled_dataset/,
    /// manifest.csv, the contact sheet preview.png and synth.json, the
    /// record of how they were generated).
    #[arg(long, group = "target")]
    out: Option<PathBuf>,
    /// Write a contact sheet of the dataset's patch kinds (one row per kind,
    /// at the generated size and enlarged; patches above 192 px are drawn at
    /// 192 px) to this PNG file; without --out, only the sheet is drawn.
    #[arg(long, value_name = "FILE.png", group = "target")]
    preview: Option<PathBuf>,
    #[command(flatten)]
    config: SynthConfig,
}

/// Generates the dataset (recording how in `synth.json`: generator version,
/// build, settings) and/or its contact sheet, and prints a summary.
pub fn run(args: &SynthArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        let summary = generate(&args.config, out)
            .with_context(|| format!("could not generate synthetic data in '{}'", out.display()))?;
        let record = SynthRecord::new(&args.config);
        let path = out.join(SYNTH_CONFIG_FILE);
        let text = serde_json::to_string_pretty(&record)?;
        crate::io::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("could not write '{}'", path.display()))?;
        if !global.quiet {
            println!(
                "wrote {} to '{}' (contact sheet: {PREVIEW_FILE})",
                summary,
                out.display()
            );
        }
    }
    if let Some(path) = &args.preview {
        write_preview(&args.config, path)
            .with_context(|| format!("could not write the preview '{}'", path.display()))?;
        if !global.quiet {
            println!("wrote the contact sheet '{}'", path.display());
        }
    }
    Ok(())
}
