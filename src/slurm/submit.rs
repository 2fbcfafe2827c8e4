//! Talking to Slurm: the cluster's `MaxArraySize` from `scontrol show
//! config`, submission with `sbatch --parsable`, and the record of submitted
//! jobs (`jobs.tsv`: stage, offset, count, job id).

use super::script::{jobs_line, sbatch_args, Job, Paths, JOBS_HEADER};
use super::tasks::TaskStage;
use super::SlurmError;
use std::path::Path;
use std::process::Command;

/// Slurm's default `MaxArraySize`.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// Runs a Slurm command and returns its standard output.
pub fn run_command(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let command_line = || format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| SlurmError::Command {
            command: command_line(),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(SlurmError::Command {
            command: command_line(),
            message: format!(
                "{} ({})",
                String::from_utf8_lossy(&output.stderr).trim(),
                output.status
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `MaxArraySize` in the output of `scontrol show config` (`None` if absent).
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The cluster's `MaxArraySize`, read with `scontrol show config`.
pub fn max_array_size() -> Result<usize, SlurmError> {
    let config = run_command("scontrol", &["show".into(), "config".into()])?;
    Ok(parse_max_array_size(&config).unwrap_or(DEFAULT_MAX_ARRAY_SIZE))
}

/// The job id in `sbatch --parsable` output (`id` or `id;cluster`).
pub fn parse_job_id(output: &str) -> Option<String> {
    let id = output.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// Submits the chain in order, each job with the ids of the earlier ones,
/// appending each to `jobs.tsv` in the generation folder as soon as it is
/// submitted; returns the ids.
pub fn submit(experiment: &str, jobs: &[Job], paths: &Paths) -> Result<Vec<String>, SlurmError> {
    let record = paths.generation.join("jobs.tsv");
    std::fs::create_dir_all(&paths.logs).map_err(|e| SlurmError::io(&paths.logs, e))?;
    let mut text = JOBS_HEADER.to_string();
    crate::io::write_atomic(&record, text.as_bytes()).map_err(|e| SlurmError::io(&record, e))?;
    let mut ids: Vec<String> = Vec::new();
    for job in jobs {
        let args = sbatch_args(experiment, job, paths, &ids);
        let submitted = run_command("sbatch", &args).and_then(|output| {
            parse_job_id(&output).ok_or_else(|| SlurmError::Command {
                command: format!("sbatch {}", args.join(" ")),
                message: format!("unexpected output {:?}", output.trim()),
            })
        });
        let id = match submitted {
            Ok(id) => id,
            Err(error) if ids.is_empty() => return Err(error),
            Err(error) => {
                return Err(SlurmError::PartlySubmitted {
                    submitted: ids,
                    message: error.to_string(),
                })
            }
        };
        text.push_str(&jobs_line(job, &id));
        crate::io::write_atomic(&record, text.as_bytes())
            .map_err(|e| SlurmError::io(&record, e))?;
        ids.push(id);
    }
    Ok(ids)
}

/// One line of `jobs.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedJob {
    /// Its stage's tasks, or `None` for the collect job.
    pub stage: Option<TaskStage>,
    /// Task number of array index 0.
    pub offset: usize,
    /// Number of array tasks.
    pub count: usize,
    /// The Slurm job id (of the array).
    pub id: String,
}

/// Parses `jobs.tsv` (`path` for messages).
pub fn parse_jobs(path: &Path, text: &str) -> Result<Vec<SubmittedJob>, SlurmError> {
    let mut jobs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() || (number == 0 && format!("{line}\n") == JOBS_HEADER) {
            continue;
        }
        let error = |message: String| SlurmError::Parse {
            path: path.to_path_buf(),
            line: number + 1,
            message,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let [stage, offset, count, id] = fields[..] else {
            return Err(error(format!(
                "expected 4 tab-separated fields (stage, offset, count, job), found {}",
                fields.len()
            )));
        };
        let stage = match stage {
            "collect" => None,
            name => Some(
                TaskStage::parse(name).ok_or_else(|| error(format!("unknown stage `{name}`")))?,
            ),
        };
        let number = |value: &str| {
            value
                .parse::<usize>()
                .map_err(|_| error(format!("`{value}` is not a number")))
        };
        jobs.push(SubmittedJob {
            stage,
            offset: number(offset)?,
            count: number(count)?,
            id: id.to_string(),
        });
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_array_size_from_scontrol_output() {
        let config = "Configuration data as of 2026-11-26T14:19:28\n\
                      MailProg                = /bin/mail\n\
                      MaxArraySize            = 3\n\
                      MaxDBDMsgs              = 20008\n";
        assert_eq!(parse_max_array_size(config), Some(3));
        assert_eq!(parse_max_array_size("MaxJobCount = 10000\n"), None);
    }

    #[test]
    fn job_ids_from_parsable_output() {
        assert_eq!(parse_job_id("1234\n").as_deref(), Some("1234"));
        assert_eq!(parse_job_id("1234;cluster2\n").as_deref(), Some("1234"));
        assert_eq!(parse_job_id("Submitted batch job 1234"), None);
        assert_eq!(parse_job_id(""), None);
    }

    #[test]
    fn jobs_record_round_trips() {
        let text =
            "stage\toffset\tcount\tjob\nshared\t0\t2\t11\ncell\t3\t1\t12\ncollect\t0\t1\t13\n";
        let jobs = parse_jobs(Path::new("jobs.tsv"), text).unwrap();
        assert_eq!(
            jobs,
            [
                SubmittedJob {
                    stage: Some(TaskStage::Shared),
                    offset: 0,
                    count: 2,
                    id: "11".into()
                },
                SubmittedJob {
                    stage: Some(TaskStage::Cell),
                    offset: 3,
                    count: 1,
                    id: "12".into()
                },
                SubmittedJob {
                    stage: None,
                    offset: 0,
                    count: 1,
                    id: "13".into()
                },
            ]
        );
        let error = parse_jobs(Path::new("jobs.tsv"), "cell\tx\t1\t12\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 1") && error.contains("`x`"), "{error}");
    }
}
