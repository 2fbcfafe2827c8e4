//! `ablate synth`: write the synthetic dataset to a folder.

use super::GlobalArgs;
use crate::data::source::{SynthRecord, SYNTH_CONFIG_FILE};
use crate::data::synth::{generate, SynthConfig};
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `ablate synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output folder (gets hard_labeled_dataset/, weakly_labeled_dataset/,
    /// manifest.csv and synth.json, the record of how they were generated).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    config: SynthConfig,
}

/// Generates the dataset, records how (`synth.json`: generator version,
/// build, settings) and prints a summary.
pub fn run(args: &SynthArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let summary = generate(&args.config, &args.out).with_context(|| {
        format!(
            "could not generate synthetic data in '{}'",
            args.out.display()
        )
    })?;
    let record = SynthRecord::new(&args.config);
    let path = args.out.join(SYNTH_CONFIG_FILE);
    let text = serde_json::to_string_pretty(&record)?;
    crate::io::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("could not write '{}'", path.display()))?;
    if !global.quiet {
        println!("wrote {} to '{}'", summary, args.out.display());
    }
    Ok(())
}
