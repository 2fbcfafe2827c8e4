//! `ablate fetch`: the paper's inputs (the public dataset).

use super::GlobalArgs;
use crate::fetch::dataset::{fetch_dataset, DatasetRequest, PROVENANCE_FILE};
use crate::fetch::http::{Http, Progress};
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

/// Runs `ablate fetch ...`.
pub fn run(args: &FetchArgs, global: &GlobalArgs) -> Result<i32> {
    match &args.what {
        What::Dataset(args) => dataset(args, global),
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
