//! `ember run LAUNCH.toml`: runs episodes as the launch file says, with episode logs and the
//! recording it asks for.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ember_agent::er::{CaseResult, Summary, load_cases};
use ember_agent::event_loop::StopSignal;
use ember_agent::recording::{RecordingMode, open_recorder};

use crate::config::Launch;
use crate::runner::{self, RunPlan};

/// Arguments of `ember run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The launch file.
    pub launch: PathBuf,
    /// Override a launch-file value, e.g. `--set policy.kind=random` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    #[command(flatten)]
    pub recording: RecordingFlags,
}

/// Command-line choices of the recording sink; they override `[recording] mode`.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct RecordingFlags {
    /// Record to this .rrd file.
    #[arg(long, value_name = "FILE.rrd")]
    pub record: Option<PathBuf>,
    /// Start a Rerun viewer and stream to it.
    #[arg(long)]
    pub spawn: bool,
    /// Stream to a running viewer at this gRPC URL (e.g. rerun+http://127.0.0.1:9876/proxy).
    #[arg(long, value_name = "URL")]
    pub connect: Option<String>,
    /// Record nothing.
    #[arg(long)]
    pub no_record: bool,
}

impl RecordingFlags {
    /// The `--set` overrides these flags stand for.
    pub fn overrides(&self) -> Vec<String> {
        let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
        if let Some(f) = &self.record {
            vec![
                "recording.mode=file".into(),
                format!("recording.path={}", quoted(&f.display().to_string())),
            ]
        } else if self.spawn {
            vec!["recording.mode=spawn".into()]
        } else if let Some(url) = &self.connect {
            vec![
                "recording.mode=connect".into(),
                format!("recording.url={}", quoted(url)),
            ]
        } else if self.no_record {
            vec!["recording.mode=off".into()]
        } else {
            Vec::new()
        }
    }
}

/// Runs `ember run`. Returns the process exit code.
pub async fn run(args: RunArgs, stop: StopSignal) -> anyhow::Result<i32> {
    let mut overrides = args.overrides.clone();
    overrides.extend(args.recording.overrides());
    let launch = Launch::load(&args.launch, &overrides)?;
    let config = Arc::new(launch.config);
    let cases_path = config.task.cases.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: task.cases: the launch file names no cases file",
            launch.layers.origin_text("task")
        )
    })?;
    let all = load_cases(&cases_path)?;
    let mut selected: Vec<_> = if config.task.identities.is_empty() {
        all.into_iter()
            .enumerate()
            .map(|(i, c)| (i as u64, c))
            .collect()
    } else {
        let mut picked = Vec::new();
        for id in &config.task.identities {
            let found = all
                .iter()
                .enumerate()
                .find(|(_, c)| c.identity.to_string() == id.to_string());
            match found {
                Some((i, c)) => picked.push((i as u64, c.clone())),
                None => anyhow::bail!(
                    "{}: task.identities: no case with identity {id} in {}",
                    launch.layers.origin_text("task.identities"),
                    cases_path.display()
                ),
            }
        }
        picked
    };
    if let Some(n) = config.run.episodes {
        selected.truncate(n);
    }
    let out = config.run.out_dir.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let run_name = config.run_name(&args.launch);
    let recording = config
        .recording
        .clone()
        .with_default_path(out.join(format!("{run_name}.rrd")));
    let recorder = open_recorder(&recording, &run_name)?;
    let plan = RunPlan {
        cases: selected,
        jobs: 1,
        episode_logs: Some(out.join("episodes")),
        recorder: recorder.clone(),
    };
    let mut results: Vec<CaseResult> = Vec::new();
    let mut lines = String::new();
    let mut failed = false;
    let run_end = runner::run_cases(config.clone(), plan, stop.clone(), |o| {
        let end = &o.report.end;
        if let (Some(r), Some(line)) = (&o.result, o.line()) {
            println!(
                "case {} {} {}: success {} efficiency {:.3} completeness {:.3} steps {} ({})",
                r.identity,
                r.scene,
                r.tasktype,
                r.success,
                r.efficiency,
                r.completeness,
                r.steps,
                end.describe()
            );
            results.push(r.clone());
            lines.push_str(&serde_json::to_string(&line)?);
            lines.push('\n');
        }
        if o.is_error() {
            failed = true;
            eprintln!("episode {} failed: {}", o.report.episode.id, end.describe());
        }
        if let Some(log) = &o.report.log_path {
            println!("  episode log: {}", log.display());
        }
        Ok(())
    })
    .await?;
    failed |= !run_end.job_errors.is_empty();
    std::fs::write(out.join("cases.jsonl"), lines)?;
    if let Err(e) = recorder.flush() {
        eprintln!("warning: the recording did not flush: {e}");
    }
    let stats = recorder.stats();
    if stats.dropped > 0 {
        eprintln!(
            "warning: the recorder dropped {} events (the viewer lagged)",
            stats.dropped
        );
    }
    drop(recorder);
    if let (RecordingMode::File, Some(path)) = (recording.mode, &recording.path) {
        println!(
            "recording: {} (open it with `ember view {}`)",
            path.display(),
            path.display()
        );
    }
    if !results.is_empty() {
        let summary = Summary::from_results(&results)?;
        std::fs::write(
            out.join("summary.json"),
            serde_json::to_string_pretty(&summary)? + "\n",
        )?;
        println!("{}", summary.table());
    }
    if stop.is_requested() {
        eprintln!("interrupted");
        return Ok(130);
    }
    Ok(if failed { 1 } else { 0 })
}
