//! `ablate fetch`: the public dataset and ImageNet weights, one command each.

use super::GlobalArgs;
use crate::fetch::dataset::{fetch_dataset, DatasetRequest, PROVENANCE_FILE};
use crate::fetch::http::{Http, Progress};
use crate::fetch::weights::{self, default_weights_dir, fetch_weights, WeightsRequest, CATALOG};
use crate::fetch::zenodo::{DATASET_RECORD, DEFAULT_BASE_URL};
use crate::fetch::FetchEvent;
use anyhow::{Context, Result};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// Arguments of `ablate fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// The public dataset (Zenodo record 10020633), verified, in the public layout.
    ///
    /// Downloads the record's files (resuming an interrupted download),
    /// verifies their MD5 checksums, unpacks them into
    /// hard_labeled_dataset/ and weakly_labeled_dataset/, writes
    /// provenance.json beside them and checks the result with ablate's
    /// loader. Run again, it verifies the data and downloads nothing.
    Dataset(DatasetArgs),
    /// ImageNet weights by name into the per-user cache, checksum-verified.
    ///
    /// `model.pretrained = "NAME"` (or `--pretrained NAME`) then uses them;
    /// every use verifies the file again.
    Weights(WeightsArgs),
}

/// Arguments of `ablate fetch dataset`.
#[derive(Debug, clap::Args)]
struct DatasetArgs {
    /// Destination folder (gets hard_labeled_dataset/, weakly_labeled_dataset/, provenance.json).
    #[arg(long, default_value = "data/public")]
    dest: PathBuf,
    /// Zenodo, or a mirror serving the same paths (`/api/records/ID`, the record's files).
    #[arg(long, default_value = DEFAULT_BASE_URL)]
    base_url: String,
}

/// Arguments of `ablate fetch weights`.
#[derive(Debug, clap::Args)]
struct WeightsArgs {
    /// Which weights: resnet18.a1_in1k (timm's, what the reference started
    /// from), resnet18.tv_in1k or resnet34.tv_in1k (torchvision's).
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// List the known weights and whether they are in the cache.
    #[arg(long)]
    list: bool,
    /// Weights folder (default: $ABLATE_CACHE_DIR/weights, else
    /// $XDG_CACHE_HOME/ablate/weights, i.e. ~/.cache/ablate/weights).
    /// Names resolve in the default folder only; elsewhere, give
    /// model.pretrained the file's path.
    #[arg(long)]
    dest: Option<PathBuf>,
    /// A mirror replacing the scheme and host of the published addresses
    /// (huggingface.co, download.pytorch.org), with the same paths.
    #[arg(long)]
    base_url: Option<String>,
}

/// Runs `ablate fetch ...`.
pub fn run(args: &FetchArgs, global: &GlobalArgs) -> Result<i32> {
    match &args.what {
        What::Dataset(args) => dataset(args, global),
        What::Weights(args) => weights(args, global),
    }
}

fn dataset(args: &DatasetArgs, global: &GlobalArgs) -> Result<i32> {
    let mut display = Display::new(global.quiet);
    let outcome = fetch_dataset(
        DatasetRequest {
            dest: &args.dest,
            base_url: &args.base_url,
            record: DATASET_RECORD,
        },
        &Http::new(),
        &mut |event| display.on_event(event),
    );
    display.finish();
    let outcome = outcome.with_context(|| {
        format!(
            "could not fetch the dataset (Zenodo record {DATASET_RECORD}) into '{}'",
            args.dest.display()
        )
    })?;
    let p = &outcome.provenance;
    let version = p
        .version
        .as_deref()
        .map(|v| format!(", version {v}"))
        .unwrap_or_default();
    if outcome.verified_existing {
        println!(
            "dataset in '{}' (Zenodo record {}{version}): all {} files verified, nothing downloaded",
            args.dest.display(),
            p.record,
            p.contents.len()
        );
    } else {
        println!(
            "dataset in '{}' (Zenodo record {}{version}): downloaded {} of {} file(s), {}, checksums verified",
            args.dest.display(),
            p.record,
            outcome.downloaded.len(),
            p.files.len(),
            HumanBytes(outcome.bytes)
        );
    }
    let c = outcome.counts;
    println!(
        "hard-labeled: {} patches ({} positive, {} negative) from {} slides",
        c.positive + c.negative,
        c.positive,
        c.negative,
        c.hard_slides
    );
    println!(
        "weakly labeled pool: {} patches from {} slides",
        c.pool, c.pool_slides
    );
    println!(
        "provenance in '{}'",
        args.dest.join(PROVENANCE_FILE).display()
    );
    Ok(0)
}

fn weights(args: &WeightsArgs, global: &GlobalArgs) -> Result<i32> {
    let dir = match &args.dest {
        Some(dir) => dir.clone(),
        None => default_weights_dir()?,
    };
    if args.list {
        for entry in CATALOG {
            let cached = dir.join(entry.name).join(weights::RECORD_FILE).is_file();
            println!(
                "{:<18} {:<9} {}{}",
                entry.name,
                entry.architecture,
                entry.description,
                if cached { " [fetched]" } else { "" }
            );
        }
        println!("weights folder: '{}'", dir.display());
        return Ok(0);
    }
    let name = args
        .name
        .as_deref()
        .expect("clap requires a name without --list");
    let entry = weights::lookup(name)?;
    let mut display = Display::new(global.quiet);
    let outcome = fetch_weights(
        WeightsRequest {
            entry,
            dir: &dir,
            base_url: args.base_url.as_deref(),
        },
        &Http::new(),
        &mut |event| display.on_event(event),
    );
    display.finish();
    let outcome = outcome.with_context(|| format!("could not fetch weights `{name}`"))?;
    let record = &outcome.record;
    println!(
        "{name}: {} ({}, sha256:{}), {}",
        outcome.path.display(),
        HumanBytes(record.size),
        record.sha256,
        if outcome.downloaded {
            format!("downloaded, verified against {}", record.verified_against)
        } else {
            "already fetched, verified".to_string()
        }
    );
    if args.dest.is_some() {
        println!(
            "use it with model.pretrained = \"{}\"",
            outcome.path.display()
        );
    } else {
        println!("use it with model.pretrained = \"{name}\"");
    }
    Ok(0)
}

/// Download bars and notes on stderr (nothing when quiet).
struct Display {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Display {
    fn new(quiet: bool) -> Self {
        Self { quiet, bar: None }
    }

    fn on_event(&mut self, event: FetchEvent) {
        if self.quiet {
            return;
        }
        match event {
            FetchEvent::Note(line) => {
                // Notes come between downloads: the last bar is done.
                self.finish();
                eprintln!("{line}");
            }
            FetchEvent::Download {
                file,
                progress: Progress::Start { total, done },
            } => {
                self.finish();
                let bar = match total {
                    Some(total) => ProgressBar::new(total),
                    None => ProgressBar::no_length(),
                };
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(file);
                bar.set_position(done);
                self.bar = Some(bar);
            }
            FetchEvent::Download {
                progress: Progress::Advance { done },
                ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(done);
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
