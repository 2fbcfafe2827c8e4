//! `ablate slurm` and `ablate status` on a real Slurm: the test starts a
//! private one-node cluster (Debian's munge, slurmctld and slurmd, installed
//! with apt-get when absent; state, spool, logs and ports of its own), runs
//! a tiny matrix through job arrays, compares the results with a local run,
//! resubmits one cell, and stops the daemons it started. Where Slurm cannot
//! be installed and run (not root, or no apt-get), or with
//! ABLATE_SKIP_SLURM=1, it is skipped with a message. A second test checks
//! the runner side of the scheme (partial runs sharing one output folder)
//! without Slurm.

mod common;

use common::{ablate, run_ok, TINY_EXPERIMENT};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The cluster's MaxArraySize: small, so that the 4-task cell array is split.
const MAX_ARRAY_SIZE: usize = 3;

/// Prints past the test harness's capture, so that a skip shows in CI logs.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// The full path of a program in PATH or the sbin folders.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn output_text(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Makes sure the Slurm and munge programs exist; `Err` says why the test is skipped.
fn ensure_slurm() -> Result<(), String> {
    if std::env::var_os("ABLATE_SKIP_SLURM").is_some_and(|v| v == "1") {
        return Err("ABLATE_SKIP_SLURM=1".into());
    }
    // The private cluster's daemons run as root (SlurmUser=root), and
    // installing needs root too.
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Err("installing Slurm and starting its daemons need root".into());
    }
    let programs = [
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "squeue",
        "scontrol",
    ];
    if programs.iter().all(|p| find_program(p).is_some()) {
        return Ok(());
    }
    let Some(apt) = find_program("apt-get") else {
        return Err("Slurm is not installed and there is no apt-get".into());
    };
    say("installing slurmctld, slurmd, slurm-client and munge with apt-get");
    for args in [
        vec!["update", "-q"],
        vec![
            "install",
            "-y",
            "-q",
            "slurmctld",
            "slurmd",
            "slurm-client",
            "munge",
        ],
    ] {
        let output = Command::new(&apt)
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .expect("apt-get starts");
        if !output.status.success() {
            // Slurm cannot be installed here (no registry, locked dpkg, ...).
            return Err(format!("apt-get {args:?} failed: {}", output_text(&output)));
        }
    }
    Ok(())
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A private one-node Slurm cluster; its daemons are stopped on drop.
struct Cluster {
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let mut cluster = Cluster {
            conf: root.join("slurm.conf"),
            daemons: Vec::new(),
            dir,
        };
        let root = cluster.dir.path().to_path_buf();
        let key = root.join("munge/munge.key");
        let mut bytes = vec![0u8; 1024];
        let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
        std::io::Read::read_exact(&mut urandom, &mut bytes).unwrap();
        std::fs::write(&key, bytes).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let socket = root.join("munge/munge.socket");
        let munge = root.join("munge");
        let log = std::fs::File::create(munge.join("munged.out")).unwrap();
        cluster.spawn(
            "munged",
            Command::new(find_program("munged").unwrap())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .args([
                    "--foreground".to_string(),
                    "--force".into(),
                    format!("--key-file={}", key.display()),
                    format!("--socket={}", socket.display()),
                    format!("--pid-file={}", munge.join("munged.pid").display()),
                    format!("--log-file={}", munge.join("munged.log").display()),
                    format!("--seed-file={}", munge.join("munged.seed").display()),
                ]),
        );
        cluster.wait_for("the munge socket", Duration::from_secs(20), |_| {
            socket.exists()
        });
        let host = Command::new("hostname").arg("-s").output().unwrap();
        let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
        let (ctld_port, d_port) = (free_port(), free_port());
        let r = root.display();
        let conf = format!(
            "ClusterName=ablatetest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={d_port}\n\
             SlurmUser=root\n\
             SlurmdUser=root\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={}\n\
             StateSaveLocation={r}/state\n\
             SlurmdSpoolDir={r}/spool\n\
             SlurmctldPidFile={r}/slurmctld.pid\n\
             SlurmdPidFile={r}/slurmd.pid\n\
             SlurmctldLogFile={r}/log/slurmctld.log\n\
             SlurmdLogFile={r}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             MpiDefault=none\n\
             ReturnToService=2\n\
             MaxArraySize={MAX_ARRAY_SIZE}\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
             PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
            socket.display()
        );
        std::fs::write(&cluster.conf, conf).unwrap();
        let conf = cluster.conf.clone();
        for daemon in ["slurmctld", "slurmd"] {
            let log = std::fs::File::create(root.join(format!("log/{daemon}.out"))).unwrap();
            cluster.spawn(
                daemon,
                Command::new(find_program(daemon).unwrap())
                    .args(["-D", "-f"])
                    .arg(&conf)
                    .env("SLURM_CONF", &conf)
                    .stdout(log.try_clone().unwrap())
                    .stderr(log),
            );
        }
        cluster.wait_for("the node to be idle", Duration::from_secs(60), |c| {
            let out = c.slurm("sinfo", &["--noheader", "--format=%t"]);
            String::from_utf8_lossy(&out.stdout).trim() == "idle"
        });
        cluster
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// Polls `ready` every 200 ms; fails the test with the daemons' logs on timeout.
    fn wait_for(&mut self, what: &str, limit: Duration, ready: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !ready(self) {
            let exited = self
                .daemons
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                panic!("{name} exited ({status}):\n{}", daemon_logs(&self.dir));
            }
            assert!(
                started.elapsed() < limit,
                "timed out waiting for {what}:\n{}",
                daemon_logs(&self.dir)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs a Slurm client command against this cluster.
    fn slurm(&self, program: &str, args: &[&str]) -> Output {
        Command::new(find_program(program).unwrap())
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap()
    }

    /// Waits until the queue is empty (bounded).
    fn wait_idle(&mut self, limit: Duration) {
        self.wait_for("the jobs to finish", limit, |c| {
            let out = c.slurm("squeue", &["--noheader"]);
            out.status.success() && out.stdout.is_empty()
        });
    }

    /// `ablate` with this cluster's configuration.
    fn ablate(&self, dir: &Path, args: &[&str]) -> Output {
        ablate()
            .args(args)
            .current_dir(dir)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap()
    }
}

/// The daemons' log files, for failure messages.
fn daemon_logs(dir: &tempfile::TempDir) -> String {
    [
        "log/slurmctld.log",
        "log/slurmd.log",
        "log/slurmctld.out",
        "log/slurmd.out",
        "munge/munged.out",
    ]
    .iter()
    .map(|f| {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- {f}\n{}", tail.join("\n"))
    })
    .collect::<Vec<_>>()
    .join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs left by a failed assertion: cancel them before their slurmd goes.
        if self.daemons.len() == 3 {
            let _ = self.slurm("scancel", &["--me"]);
            std::thread::sleep(Duration::from_millis(500));
        }
        // Stop in reverse order of start, each by its process id.
        while let Some((_, mut child)) = self.daemons.pop() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Modification times of every `done` marker in the cache
/// (`cache/<stage>/<settings>/<build>/done`).
fn done_markers(cache: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut markers = BTreeMap::new();
    for stage in std::fs::read_dir(cache).unwrap().flatten() {
        for settings in std::fs::read_dir(stage.path()).unwrap().flatten() {
            for instance in std::fs::read_dir(settings.path()).unwrap().flatten() {
                let done = instance.path().join("done");
                if let Ok(meta) = std::fs::metadata(&done) {
                    markers.insert(done, meta.modified().unwrap());
                }
            }
        }
    }
    markers
}

fn logs(output: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(output.join("slurm/logs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("'{}': {e}", path.display()))
}

#[test]
fn matrix_runs_as_job_arrays_and_resubmits_only_unfinished_cells() {
    let started = Instant::now();
    if let Err(reason) = ensure_slurm() {
        say(&format!("skipping the Slurm test: {reason}"));
        return;
    }
    let mut cluster = Cluster::start();
    say(&format!(
        "slurm test: cluster up after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("exp.toml"), TINY_EXPERIMENT).unwrap();
    run_ok(dir, &["run", "exp.toml", "--output", "local"]);
    let local = std::fs::read(dir.join("local/results.csv")).unwrap();

    // First submission: 2 shared tasks (one per weak model), 4 cell tasks
    // split into arrays of 3 and 1, and the collect job.
    let submitted = cluster.ablate(
        dir,
        &["slurm", "exp.toml", "--submit", "--max-parallel", "2"],
    );
    assert!(submitted.status.success(), "{}", output_text(&submitted));
    let output = dir.join("reports/tiny");
    let generation = output.join("slurm/1");
    assert_eq!(
        read(&generation.join("tasks.tsv")),
        "stage\ttask\tcells\nshared\t0\t0,2,4\nshared\t1\t1,3,5\ncell\t0\t2\ncell\t1\t4\ncell\t2\t3\ncell\t3\t5\n"
    );
    let jobs = read(&generation.join("jobs.tsv"));
    let stages: Vec<&str> = jobs
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(stages, ["shared", "cell", "cell", "collect"], "{jobs}");
    cluster.wait_idle(Duration::from_secs(150));
    say(&format!(
        "slurm test: first submission done after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let status = cluster.ablate(dir, &["status", "exp.toml"]);
    assert_eq!(status.status.code(), Some(0), "{}", output_text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains("6 cells: 6 done, 0 running, 0 queued, 0 failed, 0 missing"),
        "{}",
        output_text(&status)
    );
    let results = std::fs::read(output.join("results.csv")).unwrap();
    assert!(
        results == local,
        "results.csv of the cluster run differs from the local run"
    );
    // Each weak model was trained once, by its shared task; cell tasks trained none.
    let names = logs(&output);
    assert_eq!(names.len(), 2 + 4 + 1, "{names:?}");
    let mut weak_trainings = 0;
    for name in &names {
        let text = read(&output.join("slurm/logs").join(name));
        let trained = text.matches(": weak running").count();
        if name.contains("-shared-") {
            assert_eq!(trained, 1, "{name}:\n{text}");
        } else {
            assert_eq!(trained, 0, "{name}:\n{text}");
        }
        weak_trainings += trained;
    }
    assert_eq!(weak_trainings, 2);
    assert!(std::fs::read_dir(output.join("slurm/cells"))
        .unwrap()
        .next()
        .is_none());

    // Undo cell 3's strong model: only that cell runs again.
    let experiment = ablate::experiment::load_experiment(&dir.join("exp.toml")).unwrap();
    let plan = ablate::runner::Plan::new(experiment, Some(output.clone()));
    let store = plan.store();
    let stages = ablate::runner::resolve::resolve_cell(&store, &plan.cells[3], false);
    let strong = stages.strong.as_ref().and_then(|s| s.found()).unwrap();
    let strong_done = store.dir(strong).join("done");
    std::fs::remove_file(&strong_done).unwrap();
    let before = done_markers(&output.join("cache"));
    let status = cluster.ablate(dir, &["status", "exp.toml"]);
    assert_eq!(status.status.code(), Some(1), "{}", output_text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("missing: cells 3"),
        "{}",
        output_text(&status)
    );
    let resubmitted = cluster.ablate(dir, &["slurm", "exp.toml", "--submit"]);
    assert!(
        resubmitted.status.success(),
        "{}",
        output_text(&resubmitted)
    );
    assert_eq!(
        read(&output.join("slurm/2/tasks.tsv")),
        "stage\ttask\tcells\ncell\t0\t3\n"
    );
    cluster.wait_idle(Duration::from_secs(120));
    let new_logs: Vec<String> = logs(&output)
        .into_iter()
        .filter(|n| !names.contains(n))
        .collect();
    assert_eq!(
        new_logs.len(),
        2,
        "one cell task and the collect job: {new_logs:?}"
    );
    let task_log = new_logs
        .iter()
        .find(|n| n.contains("-cell-"))
        .expect("a cell task log");
    let text = read(&output.join("slurm/logs").join(task_log));
    assert!(text.contains("cell 3: strong running"), "{text}");
    assert_eq!(
        text.matches(" running").count(),
        1,
        "only cell 3's strong model ran:\n{text}"
    );
    let after = done_markers(&output.join("cache"));
    assert_eq!(after.len(), before.len() + 1);
    for (path, time) in &before {
        assert_eq!(
            after.get(path),
            Some(time),
            "'{}' was rewritten",
            path.display()
        );
    }
    assert!(strong_done.exists());
    assert!(std::fs::read(output.join("results.csv")).unwrap() == local);
    let nothing = cluster.ablate(dir, &["slurm", "exp.toml", "--submit"]);
    assert!(
        String::from_utf8_lossy(&nothing.stdout).contains("nothing to submit"),
        "{}",
        output_text(&nothing)
    );

    // A failing task: its cells are reported failed with the task's log.
    // The data folder comes from --set, which every job must carry.
    std::fs::write(
        dir.join("broken.toml"),
        "name = \"broken\"\n[data]\npath = \"also/missing\"\n[matrix]\nseeds = 2\n",
    )
    .unwrap();
    let set = ["--set", "data.path=no/such/folder"];
    let submitted = cluster.ablate(dir, &["slurm", "broken.toml", "--submit", set[0], set[1]]);
    assert!(submitted.status.success(), "{}", output_text(&submitted));
    cluster.wait_idle(Duration::from_secs(60));
    let log = dir.join("reports/broken/slurm/logs");
    let broken_logs = logs(&dir.join("reports/broken"));
    assert!(!broken_logs.is_empty());
    for name in broken_logs {
        let text = read(&log.join(&name));
        assert!(
            text.contains("no/such/folder") && !text.contains("also/missing"),
            "{name}:\n{text}"
        );
    }
    let status = cluster.ablate(dir, &["status", "broken.toml", set[0], set[1]]);
    let text = String::from_utf8_lossy(&status.stdout).to_string();
    assert_eq!(status.status.code(), Some(1), "{}", output_text(&status));
    assert!(
        text.contains("0 done, 0 running, 0 queued, 2 failed, 0 missing"),
        "{text}"
    );
    assert!(
        text.contains(" exited 1 at ") && text.contains(&log.display().to_string()),
        "{text}"
    );
    say(&format!(
        "slurm test: done after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

/// Runs `ablate` processes at once and returns their outputs, failing on a non-zero exit.
fn run_together(dir: &Path, runs: &[&[&str]]) -> Vec<Output> {
    let children: Vec<Child> = runs
        .iter()
        .map(|args| {
            ablate()
                .args(*args)
                .current_dir(dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .zip(runs)
        .map(|(child, args)| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{args:?}: {}",
                output_text(&output)
            );
            output
        })
        .collect()
}

fn trainings(output: &Output, stage: &str) -> usize {
    String::from_utf8_lossy(&output.stderr)
        .matches(&format!(": {stage} running"))
        .count()
}

/// The runner side of the cluster scheme, without Slurm: partial runs
/// (`--stages shared|cell`) share one output folder, never train a stage
/// twice, write no tables, and `--stages cached` assembles the local results.
#[test]
fn partial_runs_share_one_output_folder_and_assemble_the_local_results() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("exp.toml"), TINY_EXPERIMENT).unwrap();
    run_ok(dir, &["run", "exp.toml", "--output", "local"]);
    let local = std::fs::read(dir.join("local/results.csv")).unwrap();
    let shared_a: &[&str] = &[
        "--threads",
        "1",
        "run",
        "exp.toml",
        "--output",
        "part",
        "--cells",
        "0,2,4",
        "--stages",
        "shared",
    ];
    let shared_b: &[&str] = &[
        "--threads",
        "1",
        "run",
        "exp.toml",
        "--output",
        "part",
        "--cells",
        "1,3,5",
        "--stages",
        "shared",
    ];
    // The same group twice at once: one run trains its weak model, the
    // other waits for the stage lock and reuses it.
    let outputs = run_together(dir, &[shared_a, shared_a, shared_b]);
    assert_eq!(
        trainings(&outputs[0], "weak") + trainings(&outputs[1], "weak"),
        1
    );
    assert_eq!(trainings(&outputs[2], "weak"), 1);
    assert!(outputs.iter().all(|o| trainings(o, "strong") == 0));
    let part = dir.join("part");
    assert!(!part.join("results.csv").exists() && !part.join(".ablate.lock").exists());
    // Before the cells' own stages, the tables show those cells failed.
    let early = ablate()
        .args(["run", "exp.toml", "--output", "part", "--stages", "cached"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(early.status.code(), Some(1), "{}", output_text(&early));
    let table = read(&part.join("results.csv"));
    assert_eq!(table.matches(",failed,").count(), 4 * 2, "{table}");
    assert!(table.contains("not in the cache"), "{table}");
    let cells_a: &[&str] = &[
        "--threads",
        "1",
        "run",
        "exp.toml",
        "--output",
        "part",
        "--cells",
        "2,4",
        "--stages",
        "cell",
    ];
    let cells_b: &[&str] = &[
        "--threads",
        "1",
        "run",
        "exp.toml",
        "--output",
        "part",
        "--cells",
        "3,5",
        "--stages",
        "cell",
    ];
    let outputs = run_together(dir, &[cells_a, cells_b]);
    assert!(outputs.iter().all(|o| trainings(o, "weak") == 0));
    assert_eq!(
        outputs
            .iter()
            .map(|o| trainings(o, "strong"))
            .sum::<usize>(),
        4
    );
    run_ok(
        dir,
        &["run", "exp.toml", "--output", "part", "--stages", "cached"],
    );
    assert!(std::fs::read(part.join("results.csv")).unwrap() == local);
}
