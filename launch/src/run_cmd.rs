//! `ember run LAUNCH.toml`: runs episodes as the launch file says, with episode logs and the
//! recording it asks for.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ember_agent::er::{CaseResult, Summary, load_cases};
use ember_agent::event_loop::{EpisodeEnd, StopSignal};

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
}

/// Runs `ember run`. Returns the process exit code.
pub async fn run(args: RunArgs, stop: StopSignal) -> anyhow::Result<i32> {
    let launch = Launch::load(&args.launch, &args.overrides)?;
    let config = Arc::new(launch.config);
    let cases_path = config.task.cases.clone().ok_or_else(|| {
        launch.layers.origin_text("task");
        anyhow::anyhow!(
            "{}: task.cases: the launch file names no cases file",
            launch.layers.files[0].display()
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
    let recorder = runner::no_recorder();
    let plan = RunPlan {
        cases: selected,
        jobs: 1,
        episode_logs: Some(out.join("episodes")),
        recorder,
    };
    let mut results: Vec<CaseResult> = Vec::new();
    let mut lines = String::new();
    let mut failed = false;
    runner::run_cases(config.clone(), plan, stop.clone(), |o| {
        let end = &o.report.end;
        if let Some(r) = &o.result {
            println!(
                "case {} {} {}: success {} efficiency {:.3} completeness {:.3} steps {} ({})",
                r.identity,
                r.scene,
                r.tasktype,
                r.success,
                r.efficiency,
                r.completeness,
                r.steps,
                match end {
                    EpisodeEnd::Completed => "completed".to_string(),
                    other => format!("{other:?}"),
                }
            );
            results.push(r.clone());
            lines.push_str(&serde_json::to_string(&o.line)?);
            lines.push('\n');
        }
        if o.is_error() {
            failed = true;
            eprintln!("episode {} failed: {end:?}", o.report.episode.id);
        }
        if let Some(log) = &o.report.log_path {
            println!("  episode log: {}", log.display());
        }
        Ok(())
    })
    .await?;
    std::fs::write(out.join("cases.jsonl"), lines)?;
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
