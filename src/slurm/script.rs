//! The sbatch scripts and the job chain: array ranges, splitting at the
//! cluster's `MaxArraySize`, `%K` throttling, dependencies, `submit.sh`.
//!
//! One task script serves both arrays: it takes the stage (`shared` or
//! `cell`) and the offset of its array part, finds its cells in `tasks.tsv`
//! and runs `ablate run FILE --cells ... --stages STAGE --jobs 1` (one job
//! with the task's threads, within the memory it asked for), writing the cells'
//! markers around it. Resources are `#SBATCH` lines of the scripts; the
//! per-job options (name, array, dependency, working and log folders) are
//! sbatch arguments, the same for `submit.sh` and `ablate slurm --submit`.

use super::tasks::TaskStage;
use std::path::PathBuf;

/// Resources every job asks for (`None`: the cluster's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--gpus-per-task` (array tasks only; the collect job needs none).
    pub gpus_per_task: Option<u32>,
    /// `--cpus-per-task`; also the tasks' thread count.
    pub cpus_per_task: Option<u32>,
    /// `--time` (the cluster's format, such as `4:00:00` or `1-00:00:00`).
    pub time: Option<String>,
    /// Further sbatch options, each written as an `#SBATCH` line (e.g. `--mem=16G`).
    pub extra: Vec<String>,
}

/// Absolute paths the jobs use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The `ablate` binary (on the shared filesystem).
    pub ablate: PathBuf,
    /// The experiment file.
    pub experiment: PathBuf,
    /// The output folder.
    pub output: PathBuf,
    /// The working folder of the jobs (where `ablate slurm` ran, so that
    /// relative paths in the experiment file mean the same).
    pub workdir: PathBuf,
    /// This generation's folder (scripts, `tasks.tsv`, `jobs.tsv`).
    pub generation: PathBuf,
    /// The cell markers' folder.
    pub markers: PathBuf,
    /// The jobs' output folder.
    pub logs: PathBuf,
}

impl Paths {
    /// The task script.
    pub fn task_script(&self) -> PathBuf {
        self.generation.join("task.sbatch")
    }

    /// The collect script.
    pub fn collect_script(&self) -> PathBuf {
        self.generation.join("collect.sbatch")
    }
}

/// Quotes a word for bash (single quotes; `'` becomes `'\''`).
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The `#SBATCH` lines; `gpus` false for the collect job.
fn directives(resources: &Resources, gpus: bool) -> String {
    let mut lines = vec!["--ntasks=1".to_string()];
    if let Some(partition) = &resources.partition {
        lines.push(format!("--partition={partition}"));
    }
    if let Some(n) = resources.gpus_per_task.filter(|_| gpus) {
        lines.push(format!("--gpus-per-task={n}"));
    }
    if let Some(n) = resources.cpus_per_task {
        lines.push(format!("--cpus-per-task={n}"));
    }
    if let Some(time) = &resources.time {
        lines.push(format!("--time={time}"));
    }
    lines.extend(resources.extra.iter().cloned());
    lines
        .iter()
        .map(|line| format!("#SBATCH {line}\n"))
        .collect()
}

/// Shell lines computing `$threads`: the task's CPUs (`--cpus-per-task`,
/// else the CPUs Slurm gave the job on its node; `2(x3)` means 2).
const THREADS: &str = r#"threads="${SLURM_CPUS_PER_TASK:-${SLURM_JOB_CPUS_PER_NODE:-1}}"
threads="${threads%%[(,]*}"
"#;

/// The `SETTINGS` bash array: arguments every `ablate run` of the jobs
/// takes after the experiment file (`--set` overrides, `--reuse-stale-stages`).
fn settings_array(settings: &[String]) -> String {
    let words: Vec<String> = settings.iter().map(|w| shell_quote(w)).collect();
    format!("SETTINGS=({})\n", words.join(" "))
}

/// The array task script (`task.sbatch`); `settings` are the arguments its
/// `ablate run` takes after the experiment file.
pub fn task_script(
    experiment: &str,
    resources: &Resources,
    paths: &Paths,
    settings: &[String],
) -> String {
    let mut text = format!(
        "#!/bin/bash\n\
         # Array task of experiment '{experiment}', written by `ablate slurm`; submit it\n\
         # with submit.sh beside it. Arguments: STAGE (shared or cell) and OFFSET,\n\
         # the task number of array index 0 (arrays beyond MaxArraySize are split).\n"
    );
    text.push_str(&directives(resources, true));
    text.push_str(&format!(
        "\nABLATE={}\nEXPERIMENT={}\n{}OUTPUT={}\nTASKS={}\nMARKERS={}\nLOGS={}\n\n",
        shell_quote(&paths.ablate.to_string_lossy()),
        shell_quote(&paths.experiment.to_string_lossy()),
        settings_array(settings),
        shell_quote(&paths.output.to_string_lossy()),
        shell_quote(&paths.generation.join("tasks.tsv").to_string_lossy()),
        shell_quote(&paths.markers.to_string_lossy()),
        shell_quote(&paths.logs.to_string_lossy()),
    ));
    text.push_str(
        r#"stage="$1"
task=$(( $2 + SLURM_ARRAY_TASK_ID ))
cells=$(awk -F '\t' -v s="$stage" -v t="$task" '$1 == s && $2 == t { print $3 }' "$TASKS")
if [ -z "$cells" ]; then
  echo "no $stage task $task in $TASKS" >&2
  exit 2
fi
job="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
log="$LOGS/${SLURM_JOB_NAME}-${job}.out"
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
# Markers: tab-separated job, host, start, log while running; job, exit
# status, end, log for each failure.
mkdir -p "$MARKERS"
for cell in ${cells//,/ }; do
  printf '%s\t%s\t%s\t%s\n' "$job" "$HOSTNAME" "$(now)" "$log" > "$MARKERS/$cell.running"
done
# scancel and the time limit send SIGTERM to ablate and to this shell: the
# trap lets the shell outlive it and record the failure.
trap 'echo "SIGTERM: the job was cancelled or reached its time limit" >&2' TERM
"#,
    );
    text.push_str(THREADS);
    text.push_str(
        r#"echo "$stage task $task: cells $cells on $HOSTNAME with $threads threads"
"$ABLATE" --quiet --threads "$threads" run "$EXPERIMENT" "${SETTINGS[@]}" --output "$OUTPUT" --cells "$cells" --stages "$stage" --jobs 1
status=$?
for cell in ${cells//,/ }; do
  rm -f "$MARKERS/$cell.running"
  if [ "$status" -eq 0 ]; then
    rm -f "$MARKERS/$cell.failed"
  else
    printf '%s\t%s\t%s\t%s\n' "$job" "$status" "$(now)" "$log" >> "$MARKERS/$cell.failed"
  fi
done
exit "$status"
"#,
    );
    text
}

/// The collect script (`collect.sbatch`): assembles the tables from the
/// cache; `settings` as for [`task_script`].
pub fn collect_script(
    experiment: &str,
    resources: &Resources,
    paths: &Paths,
    settings: &[String],
) -> String {
    let mut text = format!(
        "#!/bin/bash\n\
         # Collect job of experiment '{experiment}', written by `ablate slurm`: writes\n\
         # results.csv and the other tables from the cache, training nothing.\n"
    );
    text.push_str(&directives(resources, false));
    text.push_str(&format!(
        "\nABLATE={}\nEXPERIMENT={}\n{}OUTPUT={}\n\n",
        shell_quote(&paths.ablate.to_string_lossy()),
        shell_quote(&paths.experiment.to_string_lossy()),
        settings_array(settings),
        shell_quote(&paths.output.to_string_lossy()),
    ));
    text.push_str(THREADS);
    text.push_str(
        r#"exec "$ABLATE" --quiet --threads "$threads" run "$EXPERIMENT" "${SETTINGS[@]}" --output "$OUTPUT" --stages cached
"#,
    );
    text
}

/// What a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A part of the array of a stage's tasks.
    Tasks(TaskStage),
    /// The collect job.
    Collect,
}

/// One part of an array: tasks `offset..offset + len` of its stage, as
/// array indices `0..len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayPart {
    /// Task number of array index 0.
    pub offset: usize,
    /// Number of tasks.
    pub len: usize,
    /// At most this many tasks at once (`%K`).
    pub throttle: Option<usize>,
}

impl ArrayPart {
    /// The `--array` value: `0-{len-1}`, with `%K` when throttled.
    pub fn spec(&self) -> String {
        let range = format!("0-{}", self.len.saturating_sub(1));
        match self.throttle {
            Some(k) => format!("{range}%{k}"),
            None => range,
        }
    }
}

/// One sbatch submission of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// What it runs.
    pub kind: JobKind,
    /// Its array part (`None` for the collect job).
    pub array: Option<ArrayPart>,
    /// Earlier jobs (indices into the chain) it starts after (`afterany`).
    pub after: Vec<usize>,
}

/// Splits `len` tasks into parts of at most `max_array_size` (the cluster's
/// `MaxArraySize`: array indices must stay below it): `(offset, len)` pairs.
pub fn split_array(len: usize, max_array_size: usize) -> Vec<(usize, usize)> {
    let size = max_array_size.max(1);
    (0..len)
        .step_by(size)
        .map(|offset| (offset, size.min(len - offset)))
        .collect()
}

/// The job chain for `shared` and `cell` tasks: the shared array's parts,
/// the cell array's parts after all of them, and the collect job after
/// everything. With a throttle, the parts of one split array also run one
/// after another, so that `%K` bounds the whole stage. Empty when there is
/// no task.
pub fn plan_jobs(
    shared: usize,
    cell: usize,
    max_array_size: usize,
    max_parallel: Option<usize>,
) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut shared_parts = Vec::new();
    for (stage, len) in [(TaskStage::Shared, shared), (TaskStage::Cell, cell)] {
        let mut previous: Option<usize> = None;
        for (offset, part_len) in split_array(len, max_array_size) {
            let mut after = if stage == TaskStage::Cell {
                shared_parts.clone()
            } else {
                Vec::new()
            };
            if let (Some(p), Some(_)) = (previous, max_parallel) {
                after.push(p);
            }
            previous = Some(jobs.len());
            if stage == TaskStage::Shared {
                shared_parts.push(jobs.len());
            }
            jobs.push(Job {
                kind: JobKind::Tasks(stage),
                array: Some(ArrayPart {
                    offset,
                    len: part_len,
                    throttle: max_parallel,
                }),
                after,
            });
        }
    }
    if !jobs.is_empty() {
        jobs.push(Job {
            kind: JobKind::Collect,
            array: None,
            after: (0..jobs.len()).collect(),
        });
    }
    jobs
}

/// The job name of a job kind: `ablate-<experiment>-<shared|cell|collect>`.
pub fn job_name(experiment: &str, kind: JobKind) -> String {
    let what = match kind {
        JobKind::Tasks(stage) => stage.name(),
        JobKind::Collect => "collect",
    };
    format!("ablate-{}-{what}", super::safe_name(experiment))
}

/// The sbatch arguments of `job`, given the ids of the earlier jobs of the
/// chain (`ids[i]` for job `i`; shell variables in `submit.sh`).
pub fn sbatch_args(experiment: &str, job: &Job, paths: &Paths, ids: &[String]) -> Vec<String> {
    let output = match job.kind {
        JobKind::Tasks(_) => "%x-%A_%a.out",
        JobKind::Collect => "%x-%j.out",
    };
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={}", job_name(experiment, job.kind)),
        format!("--chdir={}", paths.workdir.display()),
        format!("--output={}", paths.logs.join(output).display()),
    ];
    if let Some(array) = &job.array {
        args.push(format!("--array={}", array.spec()));
    }
    if !job.after.is_empty() {
        let ids: Vec<&str> = job.after.iter().map(|&i| ids[i].as_str()).collect();
        args.push(format!("--dependency=afterany:{}", ids.join(":")));
    }
    match (job.kind, &job.array) {
        (JobKind::Tasks(stage), Some(array)) => {
            args.push(paths.task_script().display().to_string());
            args.push(stage.name().to_string());
            args.push(array.offset.to_string());
        }
        _ => args.push(paths.collect_script().display().to_string()),
    }
    args
}

/// A line of `jobs.tsv` for a submitted job (stage, offset, count, id).
pub fn jobs_line(job: &Job, id: &str) -> String {
    match (job.kind, &job.array) {
        (JobKind::Tasks(stage), Some(array)) => {
            format!("{}\t{}\t{}\t{id}\n", stage.name(), array.offset, array.len)
        }
        _ => format!("collect\t0\t1\t{id}\n"),
    }
}

/// Header of `jobs.tsv`.
pub const JOBS_HEADER: &str = "stage\toffset\tcount\tjob\n";

/// `submit.sh`: clears the markers of the cells it submits, submits the
/// chain with `sbatch --parsable` and records the ids in `jobs.tsv`; what
/// `ablate slurm --submit` does.
pub fn submit_script(experiment: &str, jobs: &[Job], paths: &Paths, cells: &[usize]) -> String {
    let mut text = format!(
        "#!/bin/bash\n\
         # Submits the jobs of experiment '{experiment}' (written by `ablate slurm`;\n\
         # `ablate slurm FILE --submit` does the same). Job ids go to jobs.tsv.\n\
         set -euo pipefail\n\
         JOBS={}\nMARKERS={}\n\
         mkdir -p {}\n\
         printf 'stage\\toffset\\tcount\\tjob\\n' > \"$JOBS\"\n",
        shell_quote(&paths.generation.join("jobs.tsv").to_string_lossy()),
        shell_quote(&paths.markers.to_string_lossy()),
        shell_quote(&paths.logs.to_string_lossy()),
    );
    let list: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    text.push_str(&format!(
        "for cell in {}; do rm -f \"$MARKERS/$cell.running\" \"$MARKERS/$cell.failed\"; done\n",
        list.join(" ")
    ));
    let variables: Vec<String> = (0..jobs.len()).map(|i| format!("${{job{i}}}")).collect();
    for (i, job) in jobs.iter().enumerate() {
        let words: Vec<String> = sbatch_args(experiment, job, paths, &variables)
            .iter()
            .map(|arg| {
                // Dependencies hold shell variables and nothing to escape.
                if arg.starts_with("--dependency=") {
                    format!("\"{arg}\"")
                } else {
                    shell_quote(arg)
                }
            })
            .collect();
        text.push_str(&format!("job{i}=$(sbatch {})\n", words.join(" ")));
        // `--parsable` prints `id` or `id;cluster`.
        text.push_str(&format!("job{i}=\"${{job{i}%%;*}}\"\n"));
        let line = jobs_line(job, "%s")
            .replace('\t', "\\t")
            .replace('\n', "\\n");
        text.push_str(&format!("printf '{line}' \"$job{i}\" >> \"$JOBS\"\n"));
        text.push_str(&format!(
            "echo \"submitted {} as job $job{i}\"\n",
            job_name(experiment, job.kind)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        Paths {
            ablate: "/opt/ablate".into(),
            experiment: "/home/u/exp.toml".into(),
            output: "/home/u/reports/tiny".into(),
            workdir: "/home/u".into(),
            generation: "/home/u/reports/tiny/slurm/2".into(),
            markers: "/home/u/reports/tiny/slurm/cells".into(),
            logs: "/home/u/reports/tiny/slurm/logs".into(),
        }
    }

    #[test]
    fn arrays_split_at_max_array_size() {
        assert_eq!(split_array(0, 1001), []);
        assert_eq!(split_array(5, 1001), [(0, 5)]);
        assert_eq!(split_array(1001, 1001), [(0, 1001)]);
        assert_eq!(split_array(1002, 1001), [(0, 1001), (1001, 1)]);
        assert_eq!(split_array(7, 3), [(0, 3), (3, 3), (6, 1)]);
    }

    #[test]
    fn array_specs_with_and_without_throttle() {
        let part = |len, throttle| ArrayPart {
            offset: 0,
            len,
            throttle,
        };
        assert_eq!(part(4, None).spec(), "0-3");
        assert_eq!(part(4, Some(2)).spec(), "0-3%2");
        assert_eq!(part(1, Some(8)).spec(), "0-0%8");
    }

    #[test]
    fn chain_without_throttle() {
        // 2 shared tasks, 4 cell tasks split in parts of 3.
        let jobs = plan_jobs(2, 4, 3, None);
        type Summary = (JobKind, Option<(usize, usize)>, Vec<usize>);
        let summary: Vec<Summary> = jobs
            .iter()
            .map(|j| (j.kind, j.array.map(|a| (a.offset, a.len)), j.after.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (JobKind::Tasks(TaskStage::Shared), Some((0, 2)), vec![]),
                (JobKind::Tasks(TaskStage::Cell), Some((0, 3)), vec![0]),
                (JobKind::Tasks(TaskStage::Cell), Some((3, 1)), vec![0]),
                (JobKind::Collect, None, vec![0, 1, 2]),
            ]
        );
        assert!(plan_jobs(0, 0, 1001, Some(4)).is_empty());
        // Only cells left: no shared array, nothing to wait for.
        let jobs = plan_jobs(0, 1, 1001, None);
        assert_eq!(jobs[0].after, Vec::<usize>::new());
        assert_eq!(jobs[1].after, [0]);
    }

    #[test]
    fn throttled_parts_of_a_split_array_run_one_after_another() {
        let jobs = plan_jobs(4, 5, 2, Some(3));
        let after: Vec<Vec<usize>> = jobs.iter().map(|j| j.after.clone()).collect();
        // shared parts 0, 1; cell parts 2, 3, 4; collect 5.
        assert_eq!(
            after,
            [
                vec![],
                vec![0],
                vec![0, 1],
                vec![0, 1, 2],
                vec![0, 1, 3],
                vec![0, 1, 2, 3, 4],
            ]
        );
        assert!(jobs[..5]
            .iter()
            .all(|j| j.array.unwrap().spec().ends_with("%3")));
    }

    #[test]
    fn sbatch_arguments_and_dependency_lines() {
        let jobs = plan_jobs(2, 3, 1001, Some(2));
        let ids: Vec<String> = ["101", "102", "103"].map(String::from).to_vec();
        assert_eq!(
            sbatch_args("tiny", &jobs[1], &paths(), &ids),
            [
                "--parsable",
                "--job-name=ablate-tiny-cell",
                "--chdir=/home/u",
                "--output=/home/u/reports/tiny/slurm/logs/%x-%A_%a.out",
                "--array=0-2%2",
                "--dependency=afterany:101",
                "/home/u/reports/tiny/slurm/2/task.sbatch",
                "cell",
                "0",
            ]
        );
        assert_eq!(
            sbatch_args("tiny", &jobs[2], &paths(), &ids),
            [
                "--parsable",
                "--job-name=ablate-tiny-collect",
                "--chdir=/home/u",
                "--output=/home/u/reports/tiny/slurm/logs/%x-%j.out",
                "--dependency=afterany:101:102",
                "/home/u/reports/tiny/slurm/2/collect.sbatch",
            ]
        );
        assert_eq!(jobs_line(&jobs[1], "102"), "cell\t0\t3\t102\n");
    }

    #[test]
    fn submit_script_chains_job_ids() {
        let jobs = plan_jobs(1, 2, 1001, None);
        let text = submit_script("tiny", &jobs, &paths(), &[0, 2, 4]);
        assert!(text.contains("for cell in 0 2 4; do rm -f"), "{text}");
        assert!(
            text.contains("job0=$(sbatch '--parsable' '--job-name=ablate-tiny-shared'"),
            "{text}"
        );
        assert!(
            text.contains("'--array=0-1' \"--dependency=afterany:${job0}\" '/home/u/reports/tiny/slurm/2/task.sbatch' 'cell' '0')"),
            "{text}"
        );
        assert!(
            text.contains("\"--dependency=afterany:${job0}:${job1}\" '/home/u/reports/tiny/slurm/2/collect.sbatch')"),
            "{text}"
        );
        assert!(
            text.contains("printf 'cell\\t0\\t2\\t%s\\n' \"$job1\" >> \"$JOBS\""),
            "{text}"
        );
    }

    #[test]
    fn scripts_carry_resources_and_quoted_paths() {
        let resources = Resources {
            partition: Some("gpu".into()),
            gpus_per_task: Some(1),
            cpus_per_task: Some(8),
            time: Some("4:00:00".into()),
            extra: vec!["--mem=16G".into()],
        };
        let mut p = paths();
        p.experiment = "/home/u/it's.toml".into();
        let settings = ["--set".to_string(), "name=\"it's\"".to_string()];
        let task = task_script("tiny", &resources, &p, &settings);
        assert!(task.starts_with("#!/bin/bash\n"));
        for line in [
            "#SBATCH --ntasks=1\n",
            "#SBATCH --partition=gpu\n",
            "#SBATCH --gpus-per-task=1\n",
            "#SBATCH --cpus-per-task=8\n",
            "#SBATCH --time=4:00:00\n",
            "#SBATCH --mem=16G\n",
            "EXPERIMENT='/home/u/it'\\''s.toml'\n",
            "TASKS='/home/u/reports/tiny/slurm/2/tasks.tsv'\n",
            "SETTINGS=('--set' 'name=\"it'\\''s\"')\n",
            "run \"$EXPERIMENT\" \"${SETTINGS[@]}\" --output \"$OUTPUT\" --cells \"$cells\" --stages \"$stage\" --jobs 1",
        ] {
            assert!(task.contains(line), "{line:?} not in\n{task}");
        }
        let collect = collect_script("tiny", &resources, &p, &settings);
        assert!(!collect.contains("gpus"), "{collect}");
        assert!(
            collect.contains("SETTINGS=('--set' ")
                && collect.contains("\"${SETTINGS[@]}\" --output \"$OUTPUT\" --stages cached"),
            "{collect}"
        );
        // Without settings, only the task count is fixed.
        let bare = collect_script("tiny", &Resources::default(), &p, &[]);
        assert_eq!(bare.matches("#SBATCH").count(), 1, "{bare}");
        assert!(bare.contains("SETTINGS=()\n"), "{bare}");
    }
}
