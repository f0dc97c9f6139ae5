//! Runs benchmark cases: one or more jobs, each with its own world and policy, pulling cases
//! from a shared queue; results come back to the caller as they finish.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    /// The case's line for `cases.jsonl`: scored by the benchmark's rules, or an
    /// infrastructure failure (the episode failed, timed out or lost its result); `None`
    /// only when the episode was interrupted (`--resume` runs it again).
    pub result: Option<CaseResult>,
}

impl CaseOutcome {
    /// Whether the episode failed for a reason outside the benchmark's rules.
    pub fn is_error(&self) -> bool {
        self.report.end.is_infrastructure_failure()
    }

    /// The `cases.jsonl` line: the result with the loop's end (`loop_end`).
    pub fn line(&self) -> Option<serde_json::Value> {
        let mut line = serde_json::to_value(self.result.as_ref()?).ok()?;
        if let serde_json::Value::Object(m) = &mut line {
            m.insert(
                "loop_end".into(),
                serde_json::to_value(&self.report.end).unwrap_or_default(),
            );
        }
        Some(line)
    }
}

/// How a run of cases ended, beyond the cases reported one by one.
#[derive(Debug, Default)]
pub struct RunEnd {
    /// Jobs that stopped before the queue was empty, and why (a world that could not be
    /// started or restarted). Cases they left are run by the other jobs; the caller reports
    /// any case no job ran.
    pub job_errors: Vec<String>,
}

/// Why a job stopped early.
enum JobError {
    /// It could not start (its world or policy could not be made).
    Setup(String),
    /// It stopped in the middle (its world could not be restarted after a panic).
    Stopped(String),
}

fn token_counter(config: &LaunchConfig) -> Arc<dyn TokenCounter> {
    // A VLM policy's checkpoint was read when the policy was made; estimate otherwise.
    wiring::token_counter(config).unwrap_or_else(|_| Arc::new(EstimatedTokens))
}

/// Turns an episode's report into the case's line: the harness's result when the episode
/// ended by the benchmark's rules, an infrastructure failure otherwise.
fn case_result(
    case: &Case,
    report: &EpisodeReport,
    mode: ember_agent::er::Mode,
    simulator: &str,
) -> Option<CaseResult> {
    let end = &report.end;
    if *end == EpisodeEnd::Interrupted {
        return None;
    }
    let parsed = serde_json::from_value::<CaseResult>(report.summary.clone());
    Some(match parsed {
        Ok(r) if end.is_infrastructure_failure() => r.into_infrastructure_failure(end.describe()),
        Ok(r) => r,
        Err(e) => {
            let why = if end.is_infrastructure_failure() {
                end.describe()
            } else {
                format!("the harness produced no case result ({e})")
            };
            CaseResult::infrastructure_failure(case, why, mode, &report.policy.name, simulator)
        }
    })
}

/// Runs the plan; calls `on_outcome` for each case as it finishes (in completion order).
/// Returns when every case ran, every job stopped, or a stop was requested (unfinished
/// cases are not reported).
pub async fn run_cases(
    config: Arc<LaunchConfig>,
    plan: RunPlan,
    stop: StopSignal,
    mut on_outcome: impl FnMut(CaseOutcome) -> anyhow::Result<()>,
) -> anyhow::Result<RunEnd> {
    let jobs = plan.jobs.max(1).min(plan.cases.len().max(1));
    let queue = Arc::new(Mutex::new(plan.cases.into_iter().collect::<VecDeque<_>>()));
    let (tx, mut rx) = mpsc::channel::<Result<CaseOutcome, JobError>>(jobs * 2);
    let budget: Budget = Budget {
        max_images: config.memory.max_images,
        max_tokens: config.memory.max_tokens,
    };
    let mode = wiring::er_mode(&config);
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
                .map_err(anyhow::Error::from)
                .and_then(|r| r)
            };
            let (mut world, policy) = match setup {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx
                        .send(Err(JobError::Setup(format!(
                            "job {job} could not start: {e:#}"
                        ))))
                        .await;
                    return;
                }
            };
            let simulator = world.info().kind;
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
                let harness = wiring::make_harness(
                    &config,
                    case.clone(),
                    index,
                    &policy_name,
                    reachable.clone(),
                );
                let episode_id = harness.episode().id;
                let log = match &log_dir {
                    Some(dir) => {
                        let path = dir.join(format!("{}.jsonl", sanitize_id(&episode_id)));
                        match EpisodeLog::create(&path) {
                            Ok(log) => Some(log),
                            Err(e) => {
                                // Not this case's fault: put it back for another job.
                                queue.lock().expect("queue lock").push_front((index, case));
                                let _ = tx
                                    .send(Err(JobError::Stopped(format!("job {job}: {e}"))))
                                    .await;
                                return;
                            }
                        }
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
                let result = case_result(&case, &report, mode, &simulator);
                let interrupted = report.end == EpisodeEnd::Interrupted;
                if tx.send(Ok(CaseOutcome { report, result })).await.is_err() || interrupted {
                    break;
                }
                world = match outcome.world {
                    Some(w) => w,
                    None => {
                        // A panic lost the world: start a fresh one for the next case.
                        let config = config.clone();
                        let fresh =
                            tokio::task::spawn_blocking(move || wiring::make_world(&config.world))
                                .await
                                .map_err(anyhow::Error::from)
                                .and_then(|r| r);
                        match fresh {
                            Ok(w) => w,
                            Err(e) => {
                                let _ = tx
                                    .send(Err(JobError::Stopped(format!(
                                        "job {job} could not restart its world: {e:#}"
                                    ))))
                                    .await;
                                return;
                            }
                        }
                    }
                };
            }
        }));
    }
    drop(tx);
    let mut end = RunEnd::default();
    while let Some(outcome) = rx.recv().await {
        match outcome {
            Ok(o) => on_outcome(o)?,
            // A job that cannot start is a configuration problem (a checkpoint that does not
            // load, a simulator that is not there): the run stops with it.
            Err(JobError::Setup(e)) => anyhow::bail!(e),
            Err(JobError::Stopped(e)) => {
                eprintln!("error: {e}");
                end.job_errors.push(e);
            }
        }
    }
    for h in handles {
        if let Err(e) = h.await {
            end.job_errors.push(format!("a job panicked: {e}"));
        }
    }
    Ok(end)
}

/// A recorder that records nothing.
pub fn no_recorder() -> Arc<dyn Recorder> {
    Arc::new(NullRecorder)
}
