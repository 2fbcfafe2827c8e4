//! `manifest.json`: what produced a results folder.

use super::execute::RunOptions;
use super::keys::content_key;
use super::plan::Plan;
use super::store::StaleStage;
use crate::build_info::BuildInfo;
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// Provenance of a run.
#[derive(Debug, Serialize)]
pub struct Manifest {
    /// ablate's version.
    pub ablate_version: String,
    /// candle-core's version.
    pub candle_version: String,
    /// Id of the change to the vendored candle-core (`null`: unpatched).
    pub candle_patch: Option<String>,
    /// Git commit the binary was built from (`null`: not built in a checkout).
    pub git_commit: Option<String>,
    /// The build: fingerprint, sources, uncommitted changes, features, target.
    pub build: BuildInfo,
    /// Device the tensors ran on.
    pub device: String,
    /// Worker threads.
    pub threads: usize,
    /// Parallel jobs.
    pub jobs: usize,
    /// The experiment file.
    pub experiment_file: String,
    /// Settings overridden on the command line (`--set KEY=VALUE`), in order.
    pub overrides: Vec<String>,
    /// Hash of the experiment file's text and the overrides.
    pub config_hash: String,
    /// Whether stages made by other builds could be reused (`--reuse-stale-stages`).
    pub reuse_stale_stages: bool,
    /// The stages this run reused from other builds.
    pub reused_stages: Vec<ReusedStage>,
    /// Number of cells.
    pub cells: usize,
    /// Each cell's resolved settings.
    pub resolved_cells: Vec<serde_json::Value>,
    /// Where the fetched inputs came from (see [`super::inputs`]).
    pub inputs: serde_json::Value,
    /// Start time (UTC, RFC 3339).
    pub started: String,
    /// End time (UTC, RFC 3339).
    pub finished: String,
}

/// A stage reused from another build.
#[derive(Debug, Serialize)]
pub struct ReusedStage {
    /// Its folder under `cache/`: stage, settings key, build.
    pub stage: String,
    /// The build that made it.
    pub made_by: BuildInfo,
}

impl Manifest {
    /// Describes a run of `plan` with `options` that reused `reused`.
    pub fn new(
        plan: &Plan,
        options: &RunOptions,
        reused: &[StaleStage],
        started: SystemTime,
    ) -> Self {
        let build = BuildInfo::current();
        let overrides: Vec<String> = plan
            .experiment
            .overrides
            .iter()
            .map(|o| o.text.clone())
            .collect();
        Self {
            ablate_version: build.version.clone(),
            candle_version: build.candle_version.clone(),
            candle_patch: build.candle_patch.clone(),
            git_commit: build.revision.clone(),
            device: plan.cells.first().map_or_else(
                || plan.experiment.base.device.clone(),
                |c| c.config.device.clone(),
            ),
            threads: options.threads,
            jobs: options.jobs,
            experiment_file: plan.experiment.path.display().to_string(),
            config_hash: content_key(&(&plan.experiment.text, &overrides)),
            overrides,
            reuse_stale_stages: options.reuse_stale,
            reused_stages: reused
                .iter()
                .map(|s| ReusedStage {
                    stage: s.found.to_string(),
                    made_by: s.record.build.clone(),
                })
                .collect(),
            cells: plan.cells.len(),
            resolved_cells: plan
                .cells
                .iter()
                .map(|c| serde_json::json!({ "cell": c.index, "settings": c.config }))
                .collect(),
            build,
            inputs: super::inputs::of_plan(plan),
            started: rfc3339(started),
            finished: rfc3339(SystemTime::now()),
        }
    }
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_694_645)),
            "2026-11-26T12:04:05Z"
        );
    }
}
