//! Runs benchmark cases: one or more jobs, each with its own world and policy, pulling cases
//! from a shared queue; results come back to the caller as they finish.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use ember_agent::er::executor::ReachableCache;
use ember_agent::er::{Case, CaseResult};
use ember_agent::event_loop::{EpisodeEnd, EpisodeReport, StopSignal, run_episode, share_policy};
use ember_agent::memory::{Budget, EpisodeLog, EstimatedTokens, Memory, TokenCounter};
use ember_agent::policies::sanitize_id;
use ember_agent::{NullRecorder, Recorder};
use tokio::sync::mpsc;

use crate::config::LaunchConfig;
use crate::wiring;

/// What to run and how.
pub struct RunPlan {
    /// The cases, each with its index in the full case list.
    pub cases: Vec<(u64, Case)>,
    /// Parallel jobs (each with its own world and policy).
    pub jobs: usize,
    /// Where episode logs go (`<dir>/<episode id>.jsonl`), if anywhere.
    pub episode_logs: Option<PathBuf>,
    /// The recorder (shared by all jobs; use one job when recording).
    pub recorder: Arc<dyn Recorder>,
}

/// One finished case.
pub struct CaseOutcome {
    /// The loop's report.
    pub report: EpisodeReport,
    /// The benchmark result, when the episode ran to an end the benchmark scores
    /// (`None` when interrupted).
    pub result: Option<CaseResult>,
    /// The raw result line (the harness summary with the loop's end).
    pub line: serde_json::Value,
}

impl CaseOutcome {
    /// Whether the episode failed for a reason outside the benchmark's rules (a world or
    /// harness error).
    pub fn is_error(&self) -> bool {
        matches!(self.report.end, EpisodeEnd::Failed { .. })
    }
}

fn token_counter(config: &LaunchConfig) -> Arc<dyn TokenCounter> {
    // A VLM policy's checkpoint was read when the policy was made; estimate otherwise.
    wiring::token_counter(config).unwrap_or_else(|_| Arc::new(EstimatedTokens))
}

/// Runs the plan; calls `on_outcome` for each case as it finishes (in completion order).
/// Returns when every case ran or a stop was requested (unfinished cases are not reported).
pub async fn run_cases(
    config: Arc<LaunchConfig>,
    plan: RunPlan,
    stop: StopSignal,
    mut on_outcome: impl FnMut(CaseOutcome) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let jobs = plan.jobs.max(1).min(plan.cases.len().max(1));
    let queue = Arc::new(Mutex::new(plan.cases.into_iter().collect::<VecDeque<_>>()));
    let (tx, mut rx) = mpsc::channel::<anyhow::Result<CaseOutcome>>(jobs * 2);
    let budget: Budget = Budget {
        max_images: config.memory.max_images,
        max_tokens: config.memory.max_tokens,
    };
    let mut handles = Vec::new();
    for job in 0..jobs {
        let (queue, tx, stop, config) = (queue.clone(), tx.clone(), stop.clone(), config.clone());
        let recorder = plan.recorder.clone();
        let log_dir = plan.episode_logs.clone();
        handles.push(tokio::spawn(async move {
            let setup = {
                let config = config.clone();
                tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                    let world = wiring::make_world(&config.world)?;
                    let policy = wiring::make_policy(&config)?;
                    Ok((world, policy))
                })
                .await
                .context("starting a job")?
            };
            let (mut world, policy) = match setup {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e.context(format!("job {job}")))).await;
                    return Ok::<(), anyhow::Error>(());
                }
            };
            let policy_name = policy.name().to_string();
            let policy = share_policy(policy);
            let reachable = Arc::new(ReachableCache::new());
            loop {
                if stop.is_requested() {
                    break;
                }
                let Some((index, case)) = queue.lock().expect("queue lock").pop_front() else {
                    break;
                };
                let harness =
                    wiring::make_harness(&config, case, index, &policy_name, reachable.clone());
                let episode_id = harness.episode().id;
                let log = match &log_dir {
                    Some(dir) => {
                        let path = dir.join(format!("{}.jsonl", sanitize_id(&episode_id)));
                        Some(EpisodeLog::create(&path)?)
                    }
                    None => None,
                };
                let memory = Memory::new(budget, token_counter(&config), log);
                let outcome = run_episode(
                    world,
                    harness,
                    policy.clone(),
                    memory,
                    recorder.clone(),
                    &config.event_loop,
                    &stop,
                )
                .await;
                let report = outcome.report;
                let line = report.summary.clone();
                let result = match report.end {
                    EpisodeEnd::Interrupted => None,
                    _ => serde_json::from_value::<CaseResult>(line.clone()).ok(),
                };
                let interrupted = report.end == EpisodeEnd::Interrupted;
                if tx
                    .send(Ok(CaseOutcome {
                        report,
                        result,
                        line,
                    }))
                    .await
                    .is_err()
                {
                    break;
                }
                if interrupted {
                    break;
                }
                world = match outcome.world {
                    Some(w) => w,
                    None => {
                        // A panic lost the world: start a fresh one for the next case.
                        let config = config.clone();
                        tokio::task::spawn_blocking(move || wiring::make_world(&config.world))
                            .await
                            .context("restarting the world")??
                    }
                };
            }
            Ok(())
        }));
    }
    drop(tx);
    while let Some(outcome) = rx.recv().await {
        on_outcome(outcome?)?;
    }
    for h in handles {
        h.await.context("a job panicked")??;
    }
    Ok(())
}

/// A recorder that records nothing.
pub fn no_recorder() -> Arc<dyn Recorder> {
    Arc::new(NullRecorder)
}
