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

/// Prints the defaults as TOML.
pub fn run(args: &ConfigArgs) -> Result<i32> {
    if args.defaults {
        let text = toml::to_string_pretty(&ExperimentConfig::defaults())?;
        println!(
            "# ablate {} experiment settings and their defaults\n\n{text}",
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(0)
}
