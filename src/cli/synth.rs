//! `ablate synth`: write the synthetic dataset to a folder.

use super::GlobalArgs;
use crate::data::synth::{generate, SynthConfig};
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `ablate synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output folder (gets hard_labeled_dataset/, weakly_labeled_dataset/ and manifest.csv).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    config: SynthConfig,
}

/// Generates the dataset and prints a summary.
pub fn run(args: &SynthArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let summary = generate(&args.config, &args.out).with_context(|| {
        format!(
            "could not generate synthetic data in '{}'",
            args.out.display()
        )
    })?;
    if !global.quiet {
        println!("wrote {} to '{}'", summary, args.out.display());
    }
    Ok(())
}
