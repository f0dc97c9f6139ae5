//! `ember eval`: runs Embodied-Reasoner benchmark cases and scores them.
//!
//! Writes `OUT/cases.jsonl` (one line per finished case, appended and flushed as cases finish)
//! and, once every selected case is done, `OUT/summary.json`; prints the summary table.
//! `--resume` skips cases already in `cases.jsonl`; `ember eval merge` combines shards.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use ember_agent::er::metrics::{merge_shards, read_results};
use ember_agent::er::{CaseResult, Summary, load_cases};
use ember_agent::event_loop::StopSignal;
use ember_agent::recording::{RecordingMode, open_recorder};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Launch;
use crate::runner::{self, RunPlan};

/// A shard `I/N`: cases whose position in the file is I modulo N (I counts from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not I/N (e.g. 0/4)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("'{i}' is not a shard index"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

/// Arguments of `ember eval`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: Option<EvalCommand>,
    /// The launch file (world, policy, task settings).
    #[arg(required = true)]
    pub launch: Option<PathBuf>,
    /// The benchmark cases (JSON list); overrides `task.cases`.
    #[arg(long)]
    pub cases: Option<PathBuf>,
    /// Output directory for cases.jsonl and summary.json.
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// Run only shard I of N (I counts from 0; cases at positions I, I+N, ...).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Skip cases already in OUT/cases.jsonl.
    #[arg(long)]
    pub resume: bool,
    /// Run at most this many cases (after sharding).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Parallel jobs, each with its own world and policy (default: the number of CPUs; 1 for
    /// model policies and when recording).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Override a launch-file value, e.g. `--set policy.kind=random` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// `ember eval` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Combine the cases.jsonl of several output directories (shards) into one summary.
    Merge {
        /// The shard output directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged cases.jsonl and summary.json.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Reads `cases.jsonl`, dropping (and truncating away) a final line cut short by a kill.
fn read_existing(path: &Path) -> anyhow::Result<Vec<CaseResult>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut results = Vec::new();
    let mut good_len = 0usize;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            good_len += line.len();
            continue;
        }
        let complete = line.ends_with('\n');
        match serde_json::from_str::<CaseResult>(line) {
            Ok(r) if complete => {
                results.push(r);
                good_len += line.len();
            }
            _ if i + 1 == lines.len() => {
                // A torn final line: what a killed run leaves. Drop it.
                tracing::warn!("{}: dropping a truncated final line", path.display());
                let f = OpenOptions::new().write(true).open(path)?;
                f.set_len(good_len as u64)?;
                break;
            }
            Err(e) => bail!("{}:{}: not a case result: {e}", path.display(), i + 1),
            Ok(_) => unreachable!("complete lines are handled above"),
        }
    }
    Ok(results)
}

/// Writes `summary.json`. Results are ordered by identity first, so the means do not depend
/// on the order in which parallel jobs or resumed runs finished the cases.
fn write_summary(dir: &Path, results: &[CaseResult]) -> anyhow::Result<Summary> {
    let mut ordered = results.to_vec();
    ordered.sort_by(|a, b| a.identity.cmp(&b.identity));
    let summary = Summary::from_results(&ordered)?;
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(summary)
}

fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let mut shards = Vec::new();
    for d in dirs {
        let path = d.join("cases.jsonl");
        if !path.is_file() {
            bail!("{} has no cases.jsonl", d.display());
        }
        shards.push((path.display().to_string(), read_results(&path)?));
    }
    let merged = merge_shards(&shards)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    rewrite_results(&out.join("cases.jsonl"), &merged)?;
    let summary = write_summary(out, &merged)?;
    println!("{}", summary.table());
    println!(
        "merged {} shards, {} cases -> {}",
        dirs.len(),
        merged.len(),
        out.display()
    );
    Ok(())
}

/// Runs `ember eval`. Returns the process exit code.
pub async fn run(args: EvalArgs, stop: StopSignal) -> anyhow::Result<i32> {
    if let Some(EvalCommand::Merge { dirs, out }) = &args.command {
        merge(dirs, out)?;
        return Ok(0);
    }
    let launch_path = args.launch.clone().context("a launch file is required")?;
    let out = args.out.clone().context("--out is required")?;
    let mut overrides = args.overrides.clone();
    if let Some(cases) = &args.cases {
        overrides.push(format!(
            "task.cases={}",
            toml::Value::String(cases.display().to_string())
        ));
    }
    let launch = Launch::load(&launch_path, &overrides)?;
    let config = Arc::new(launch.config);
    let cases_path = config
        .task
        .cases
        .clone()
        .context("no cases: pass --cases CASES.json or set task.cases in the launch file")?;
    let all = load_cases(&cases_path)?;
    let mut selected: Vec<(u64, ember_agent::er::Case)> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| args.shard.is_none_or(|s| i % s.count == s.index))
        .map(|(i, c)| (i as u64, c))
        .collect();
    if let Some(limit) = args.limit {
        selected.truncate(limit);
    }

    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let results_path = out.join("cases.jsonl");
    let mut results = Vec::new();
    if args.resume {
        results = read_existing(&results_path)?;
        let before = results.len();
        // Infrastructure failures are not results: run those cases again.
        results.retain(CaseResult::is_scored);
        if results.len() < before {
            drop_failed_lines(&results_path)?;
            eprintln!(
                "resuming: running {} cases again that failed for infrastructure reasons",
                before - results.len()
            );
        }
    } else if std::fs::metadata(&results_path).is_ok_and(|m| m.len() > 0) {
        bail!(
            "{} already has results: pass --resume to continue it, or choose another --out",
            results_path.display()
        );
    } else {
        std::fs::write(&results_path, "")?;
    }
    let done: BTreeSet<String> = results.iter().map(|r| r.identity.to_string()).collect();
    let total = selected.len();
    selected.retain(|(_, c)| !done.contains(&c.identity.to_string()));
    let skipped = total - selected.len();
    let to_run: Vec<ember_agent::er::Case> = selected.iter().map(|(_, c)| c.clone()).collect();

    let model_policy = config.policy.kind == crate::config::PolicyKind::Vlm;
    let recording_on = config.recording.mode != RecordingMode::Off;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut jobs = args
        .jobs
        .unwrap_or(if model_policy { 1 } else { cpus })
        .max(1);
    if recording_on && jobs > 1 {
        eprintln!("recording is on: one job, so the recording shows one episode at a time");
        jobs = 1;
    }
    let run_name = config.run_name(&launch_path);
    let recording = config
        .recording
        .clone()
        .with_default_path(out.join(format!("{run_name}.rrd")));
    let recorder = open_recorder(&recording, &run_name)?;
    let episode_logs = config.memory.episode_logs.then(|| out.join("episodes"));

    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} cases  eta {eta}  {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(skipped as u64);
    if skipped > 0 {
        bar.println(format!("resuming: {skipped} of {total} cases already done"));
    }
    let started = Instant::now();
    let mut file = OpenOptions::new()
        .append(true)
        .open(&results_path)
        .with_context(|| format!("opening {}", results_path.display()))?;
    let mut ran = 0usize;
    let mut successes: usize = results.iter().map(|r| r.success as usize).sum();
    let plan = RunPlan {
        cases: selected,
        jobs,
        episode_logs,
        recorder: recorder.clone(),
    };
    let run_end = runner::run_cases(config.clone(), plan, stop.clone(), |outcome| {
        let (Some(result), Some(line)) = (outcome.result.clone(), outcome.line()) else {
            return Ok(()); // interrupted: not a result; --resume runs it again
        };
        if !result.is_scored() {
            bar.println(format!(
                "case {} ({}): infrastructure failure: {}",
                result.identity,
                result.scene,
                result.error.as_deref().unwrap_or("")
            ));
        }
        append_line(&mut file, &line)?;
        ran += 1;
        successes += result.success as usize;
        results.push(result);
        bar.inc(1);
        bar.set_message(format!(
            "success {:.1}%",
            100.0 * successes as f64 / results.len().max(1) as f64
        ));
        Ok(())
    })
    .await?;
    bar.finish_and_clear();
    let flushed = {
        let recorder = recorder.clone();
        tokio::task::spawn_blocking(move || recorder.flush()).await?
    };
    if let Err(e) = flushed {
        eprintln!("warning: the recording did not flush: {e}");
    }
    drop(recorder);
    let elapsed = started.elapsed().as_secs_f64();
    if stop.is_requested() && results.len() < total {
        eprintln!(
            "interrupted: {} of {total} cases done ({ran} in this run); continue with --resume",
            results.len()
        );
        return Ok(130);
    }
    // Every selected case gets a line: a case that no job ran (the jobs stopped) is reported
    // as an infrastructure failure with the reason.
    let reported: BTreeSet<String> = results.iter().map(|r| r.identity.to_string()).collect();
    let why = if run_end.job_errors.is_empty() {
        "not run".to_string()
    } else {
        format!("not run: {}", run_end.job_errors.join("; "))
    };
    // Name the policy and world as the other lines do, so that the summary does not mix them.
    let (policy, simulator) = results.first().map_or_else(
        || crate::wiring::names(&config),
        |r| (r.policy.clone(), r.simulator.clone()),
    );
    for case in to_run
        .iter()
        .filter(|c| !reported.contains(&c.identity.to_string()))
    {
        let r = CaseResult::infrastructure_failure(
            case,
            why.clone(),
            crate::wiring::er_mode(&config),
            &policy,
            &simulator,
        );
        append_line(&mut file, &serde_json::to_value(&r)?)?;
        results.push(r);
    }
    let summary = write_summary(&out, &results)?;
    println!("{}", summary.table());
    println!(
        "{ran} cases in {elapsed:.1} s ({:.1} cases/min, {jobs} jobs); results in {}",
        if elapsed > 0.0 {
            ran as f64 * 60.0 / elapsed
        } else {
            0.0
        },
        out.display()
    );
    if summary.cases_failed_infrastructure > 0 {
        eprintln!(
            "{} of {} cases failed for infrastructure reasons (listed above and in {}); \
             `--resume` runs them again",
            summary.cases_failed_infrastructure,
            summary.cases,
            out.join("summary.json").display()
        );
        return Ok(1);
    }
    Ok(0)
}

/// Appends one line to `cases.jsonl` and flushes it.
fn append_line(file: &mut std::fs::File, line: &serde_json::Value) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec(line)?;
    bytes.push(b'\n');
    file.write_all(&bytes)?;
    file.flush()?;
    Ok(())
}

/// Removes the infrastructure-failure lines of `cases.jsonl` (for `--resume`), keeping every
/// other line exactly as it was written (`loop_end` included).
fn drop_failed_lines(path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let kept: String = text
        .split_inclusive('\n')
        .filter(|line| serde_json::from_str::<CaseResult>(line).map_or(true, |r| r.is_scored()))
        .collect();
    std::fs::write(path, kept).with_context(|| format!("writing {}", path.display()))
}

/// Rewrites `cases.jsonl` with these results only.
fn rewrite_results(path: &Path, results: &[CaseResult]) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in results {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
