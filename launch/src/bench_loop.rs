//! `ember bench loop`: the event loop's own cost per step, and evaluation throughput.
//!
//! Part 1 runs benchmark cases with the oracle on in-process thor-lite, one job, several times,
//! and reports the per-step time the loop spends outside the policy and the world (context
//! building, parsing and legality, pose selection and other harness work, memory, episode log,
//! recorder hand-off, task scheduling), as medians and 95th percentiles over all steps.
//! Part 2 runs a whole evaluation (every case once, one job per CPU) and reports cases per
//! minute.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;
use ember_agent::StepTimings;
use ember_agent::er::load_cases;
use ember_agent::event_loop::StopSignal;
use serde::Serialize;

use crate::config::{LaunchConfig, PolicyKind};
use crate::runner::{self, RunPlan};

/// Options of `ember bench loop`.
#[derive(Debug, Args)]
pub struct BenchLoopArgs {
    /// Benchmark cases for the per-step figures (the benchmark's JSON format).
    #[arg(long, default_value = "tests/data/er-cases-sample.json")]
    pub cases: PathBuf,
    /// Times each case is run for the per-step figures.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Cases for the throughput figure (default: the same as --cases), e.g. the benchmark's
    /// 809-case test set.
    #[arg(long)]
    pub eval_cases: Option<PathBuf>,
    /// Jobs for the throughput figure (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
struct Stat {
    median_ms: f64,
    p95_ms: f64,
    mean_ms: f64,
}

impl Stat {
    fn of(values_s: &[f64]) -> Self {
        let mut v: Vec<f64> = values_s.iter().map(|s| s * 1000.0).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Self::default();
        }
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Stat {
            median_ms: at(0.5),
            p95_ms: at(0.95),
            mean_ms: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

#[derive(Debug, Serialize)]
struct LoopFigures {
    steps: usize,
    step: Stat,
    policy: Stat,
    world: Stat,
    loop_overhead: Stat,
    executor: Stat,
    memory: Stat,
    recorder: Stat,
    eval_cases: usize,
    eval_jobs: usize,
    eval_seconds: f64,
    eval_cases_per_minute: f64,
    eval_success_rate: f64,
}

fn oracle_config(cases: PathBuf) -> LaunchConfig {
    let mut c = LaunchConfig::default();
    c.policy.kind = PolicyKind::Oracle;
    c.task.cases = Some(cases);
    c.memory.episode_logs = false;
    c
}

/// Runs `ember bench loop`.
pub fn run(a: BenchLoopArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(a))
}

async fn run_all(
    config: Arc<LaunchConfig>,
    cases: Vec<(u64, ember_agent::er::Case)>,
    jobs: usize,
) -> Result<(Vec<StepTimings>, usize, usize)> {
    let mut timings = Vec::new();
    let (mut n, mut ok) = (0usize, 0usize);
    let plan = RunPlan {
        cases,
        jobs,
        episode_logs: None,
        recorder: runner::no_recorder(),
    };
    let run_end = runner::run_cases(config, plan, StopSignal::new(), |o| {
        anyhow::ensure!(
            !o.is_error(),
            "an episode failed: {}",
            o.report.end.describe()
        );
        // Step 0 is the harness start (reset and placement), not a loop step.
        timings.extend(o.report.timings.iter().skip(1).cloned());
        n += 1;
        ok += o.result.map_or(0, |r| r.success as usize);
        Ok(())
    })
    .await?;
    anyhow::ensure!(
        run_end.job_errors.is_empty(),
        "jobs stopped: {}",
        run_end.job_errors.join("; ")
    );
    Ok((timings, n, ok))
}

async fn bench(a: BenchLoopArgs) -> Result<()> {
    let cases = load_cases(&a.cases)
        .with_context(|| format!("reading {} (pass --cases CASES.json)", a.cases.display()))?;
    let config = Arc::new(oracle_config(a.cases.clone()));
    let mut repeated = Vec::new();
    for r in 0..a.repeat.max(1) {
        for (i, c) in cases.iter().enumerate() {
            repeated.push(((r * cases.len() + i) as u64, c.clone()));
        }
    }
    eprintln!(
        "per-step figures: {} episodes ({} cases x {}), oracle, in-process thor-lite, 1 job",
        repeated.len(),
        cases.len(),
        a.repeat.max(1)
    );
    let (timings, _, _) = run_all(config.clone(), repeated, 1).await?;
    let pick = |f: fn(&StepTimings) -> f64| timings.iter().map(f).collect::<Vec<f64>>();

    let eval_path = a.eval_cases.clone().unwrap_or_else(|| a.cases.clone());
    let eval_cases = load_cases(&eval_path)?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "throughput: {} cases from {}, {jobs} jobs",
        eval_cases.len(),
        eval_path.display()
    );
    let config = Arc::new(oracle_config(eval_path));
    let indexed: Vec<_> = eval_cases
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u64, c))
        .collect();
    let started = Instant::now();
    let (_, n, ok) = run_all(config, indexed, jobs).await?;
    let seconds = started.elapsed().as_secs_f64();

    let figures = LoopFigures {
        steps: timings.len(),
        step: Stat::of(&pick(|t| t.step)),
        policy: Stat::of(&pick(|t| t.policy)),
        world: Stat::of(&pick(|t| t.world)),
        loop_overhead: Stat::of(&pick(StepTimings::loop_overhead)),
        executor: Stat::of(&pick(|t| t.executor)),
        memory: Stat::of(&pick(|t| t.memory)),
        recorder: Stat::of(&pick(|t| t.recorder)),
        eval_cases: n,
        eval_jobs: jobs,
        eval_seconds: seconds,
        eval_cases_per_minute: n as f64 * 60.0 / seconds,
        eval_success_rate: ok as f64 / n.max(1) as f64,
    };
    println!("ember bench loop ({} steps)", figures.steps);
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "per step", "median ms", "p95 ms", "mean ms"
    );
    for (name, s) in [
        ("whole step", &figures.step),
        ("policy (oracle)", &figures.policy),
        ("world (thor-lite, in process)", &figures.world),
        ("loop overhead = step-policy-world", &figures.loop_overhead),
        ("  of which harness/executor", &figures.executor),
        ("  of which memory + episode log", &figures.memory),
        ("  of which recorder hand-off", &figures.recorder),
    ] {
        println!(
            "{name:<34} {:>10.3} {:>10.3} {:>10.3}",
            s.median_ms, s.p95_ms, s.mean_ms
        );
    }
    println!(
        "evaluation: {} cases in {:.1} s with {} jobs = {:.1} cases/min (oracle success {:.1}%)",
        figures.eval_cases,
        figures.eval_seconds,
        figures.eval_jobs,
        figures.eval_cases_per_minute,
        100.0 * figures.eval_success_rate
    );
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
