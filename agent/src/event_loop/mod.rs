//! The event loop: runs one episode step by step.
//!
//! ```text
//! begin:  policy.reset; harness.start(world) -> first observations + messages -> record
//! loop until the harness says done, Ctrl-C, a policy timeout, the call cap, or a failure:
//!     context  = memory.context() + legal actions (+ privileged data, oracle only)
//!     decision = policy.decide(context)        (blocking thread, timeout, cancellation)
//!     step     = harness.act(decision, world)  (blocking thread: parse, legality, execute)
//!     record:    memory, episode log, recorder <- reply, observations, action, feedback
//! wind down: world.safe_stop(); summary; log closed and recorder flushed (off the worker)
//! ```
//! Each stage returns `Result<_, EpisodeEnd>`: the first failure, whatever it is (an error, a
//! panic, a timeout, Ctrl-C), becomes the episode's end through `?`, in [`Episode::play`],
//! and the wind-down runs for every end.
//!
//! Nothing blocks the loop's async worker: world, harness and policy calls run on tokio's
//! blocking pool; the episode log has its own writer thread; recorder events go through a
//! bounded channel to a forwarding thread (so a file recorder that waits for room makes the
//! loop wait asynchronously); the log's close and the recorder's flush run on blocking
//! threads. A decision that outlives its timeout is cancelled (see [`Cancel`]) and the loop
//! waits for the policy to return before the episode ends, so the next episode finds it free.
//! Ctrl-C (a [`StopSignal`]) cancels a decision in progress or lets the current world step
//! finish, then winds down; the second Ctrl-C runs the worlds' safe-stop handles registered
//! here ([`StopSignal::emergency_stop`]) before the process exits.

mod parts;
mod stop;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::harness::{Harness, HarnessStep};
use crate::memory::{Memory, StepEntry};
use crate::policy::{
    Cancel, ContentPart, Context, Decision, EpisodeInfo, Feedback, FeedbackKind, Message,
    PolicyInfo, Role,
};
use crate::recorder::{RecordEvent, Recorder, StepTimings};
use crate::world::World;

pub use parts::{SharedPolicy, share_policy};
pub use stop::{SafeStopRegistration, StopSignal};

use parts::{Body, RecordLink, panic_message, with_policy};

/// Settings of the loop itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopSettings {
    /// Per-decision timeout in seconds (0 = none).
    pub decision_timeout_s: f64,
    /// After a decision times out, how long to wait for the cancelled policy to return (and
    /// release itself for the next episode), seconds.
    pub cancel_grace_s: f64,
    /// A hard cap on harness calls per episode, a safety net under the harness's own limits.
    pub max_calls: u64,
    /// Seconds between partial-reply events while a policy streams text.
    pub partial_reply_interval_s: f64,
    /// Paces the loop: each step takes at least this long (0 = as fast as possible). Useful
    /// to watch an episode live in the viewer or to slow a robot's decision rate.
    pub min_step_interval_s: f64,
}

impl Default for LoopSettings {
    fn default() -> Self {
        Self {
            decision_timeout_s: 300.0,
            cancel_grace_s: 30.0,
            max_calls: 1000,
            partial_reply_interval_s: 0.1,
            min_step_interval_s: 0.0,
        }
    }
}

/// How an episode ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum EpisodeEnd {
    /// The harness ended it by its rules.
    Completed,
    /// A stop was requested (Ctrl-C).
    Interrupted,
    /// The policy did not decide in time.
    PolicyTimedOut {
        /// The step at which it timed out.
        step: u64,
    },
    /// The loop hit its hard cap on harness calls.
    CallLimit,
    /// The world, policy or harness failed.
    Failed {
        /// What failed.
        error: String,
    },
}

impl EpisodeEnd {
    /// A failure with its message.
    pub fn failed(error: impl std::fmt::Display) -> Self {
        EpisodeEnd::Failed {
            error: error.to_string(),
        }
    }

    /// Whether the episode ended for a reason outside the task's rules (a failure, a timeout,
    /// the call cap): its result says nothing about the policy's skill at the task.
    pub fn is_infrastructure_failure(&self) -> bool {
        matches!(
            self,
            EpisodeEnd::Failed { .. } | EpisodeEnd::PolicyTimedOut { .. } | EpisodeEnd::CallLimit
        )
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            EpisodeEnd::Completed => "completed".into(),
            EpisodeEnd::Interrupted => "interrupted".into(),
            EpisodeEnd::PolicyTimedOut { step } => {
                format!("the policy did not decide in time at step {step}")
            }
            EpisodeEnd::CallLimit => "the loop's cap on harness calls was reached".into(),
            EpisodeEnd::Failed { error } => error.clone(),
        }
    }
}

/// What one episode produced.
#[derive(Clone, Debug)]
pub struct EpisodeReport {
    /// The episode.
    pub episode: EpisodeInfo,
    /// The policy that played it.
    pub policy: PolicyInfo,
    /// How it ended.
    pub end: EpisodeEnd,
    /// The harness's summary (benchmark case line); `Null` when a panic lost the harness.
    pub summary: Value,
    /// Harness calls made (including `start`).
    pub calls: u64,
    /// Per-call timings (index = step).
    pub timings: Vec<StepTimings>,
    /// The episode log, when one was written.
    pub log_path: Option<PathBuf>,
}

/// The world handed back after an episode (`None` if a panic inside a world or harness call
/// lost it), and the report.
pub struct EpisodeOutcome {
    /// The world, for the next episode.
    pub world: Option<Box<dyn World>>,
    /// The report.
    pub report: EpisodeReport,
}

/// Renders a conversation as text, images as `<image WxH>` placeholders (for recordings).
pub fn render_prompt(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(m.role.as_str());
        out.push_str(":\n");
        for part in &m.content {
            match part {
                ContentPart::Text(t) => out.push_str(t),
                ContentPart::Image(img) => {
                    out.push_str(&format!("<image {}x{}>", img.width, img.height));
                }
            }
        }
        out.push_str("\n\n");
    }
    out
}

/// Runs one episode to its end. Never panics on world, policy or harness failures: they end
/// the episode with [`EpisodeEnd::Failed`] and the world is handed back when it survived.
pub async fn run_episode(
    world: Box<dyn World>,
    harness: Box<dyn Harness>,
    policy: SharedPolicy,
    memory: Memory,
    recorder: Arc<dyn Recorder>,
    settings: &LoopSettings,
    stop: &StopSignal,
) -> EpisodeOutcome {
    let world_info = world.info();
    let episode = harness.episode();
    let mut ep = Episode {
        log_path: memory.log_path().map(PathBuf::from),
        info: episode,
        body: Body::new(world, harness),
        policy,
        policy_info: PolicyInfo::default(),
        memory,
        link: RecordLink::open(recorder),
        settings,
        stop,
        step: 0,
        timings: Vec::new(),
        last_feedback: None,
    };
    let _safe_stop = ep
        .body
        .safe_stop_handle()
        .map(|h| stop.register_safe_stop(h));
    let end = match ep.play(world_info).await {
        Ok(()) => EpisodeEnd::Completed,
        Err(end) => end,
    };
    ep.wind_down(end).await
}

/// One episode in progress.
struct Episode<'a> {
    info: EpisodeInfo,
    body: Body,
    policy: SharedPolicy,
    policy_info: PolicyInfo,
    memory: Memory,
    link: RecordLink,
    settings: &'a LoopSettings,
    stop: &'a StopSignal,
    /// The step being played (0 = the harness's start).
    step: u64,
    timings: Vec<StepTimings>,
    last_feedback: Option<Feedback>,
    log_path: Option<PathBuf>,
}

/// A step's timings as they are gathered.
#[derive(Default)]
struct StepClock {
    policy: f64,
    world: f64,
    executor: f64,
    memory: f64,
    recorder: f64,
}

impl Episode<'_> {
    /// Begins, then steps until the harness is done; the first failure ends it.
    async fn play(&mut self, world: crate::world::WorldInfo) -> Result<(), EpisodeEnd> {
        self.begin(world).await?;
        while !self.body.harness()?.is_done() {
            if self.stop.is_requested() {
                return Err(EpisodeEnd::Interrupted);
            }
            if self.step + 1 >= self.settings.max_calls {
                return Err(EpisodeEnd::CallLimit);
            }
            self.step().await?;
        }
        Ok(())
    }

    /// Resets the policy (learning whether it needs privileged data), writes the log header,
    /// starts the harness and records the first observations.
    async fn begin(&mut self, world: crate::world::WorldInfo) -> Result<(), EpisodeEnd> {
        let episode = self.info.clone();
        let reset = with_policy(&self.policy, move |p| {
            p.reset(&episode)?;
            Ok(p.info())
        })
        .await;
        let reset = match reset {
            Ok(r) => r.map_err(EpisodeEnd::failed),
            Err(e) => Err(EpisodeEnd::failed(format!(
                "policy reset panicked: {}",
                panic_message(e)
            ))),
        };
        if let Ok(info) = &reset {
            self.policy_info = info.clone();
        }
        self.link
            .send(RecordEvent::EpisodeStart {
                episode: self.info.clone(),
                world: world.clone(),
                policy: self.policy_info.clone(),
            })
            .await;
        reset?;
        self.memory
            .begin(
                &self.info,
                json!({"world": world, "loop": self.settings, "policy": self.policy_info}),
            )
            .map_err(EpisodeEnd::failed)?;

        let t0 = Instant::now();
        let first = self.body.call(|w, h| h.start(w)).await?;
        let first = first.map_err(EpisodeEnd::failed)?;
        let mut clock = StepClock {
            world: first.world_time,
            executor: (t0.elapsed().as_secs_f64() - first.world_time).max(0.0),
            ..StepClock::default()
        };
        self.record(&first, None, &mut clock).await?;
        self.finish_step(t0, clock).await;
        Ok(())
    }

    /// One step: observe -> context -> decide -> execute -> record.
    async fn step(&mut self) -> Result<(), EpisodeEnd> {
        self.step += 1;
        let t_step = Instant::now();
        let mut clock = StepClock::default();
        let context = self.context(&mut clock).await?;
        let decision = self.decide(context, &mut clock).await?;
        let step = self.execute(&decision, &mut clock).await?;
        self.record(&step, Some(&decision), &mut clock).await?;
        let metrics = self.body.harness()?.metrics();
        clock.recorder += self
            .link
            .send(RecordEvent::Metrics {
                step: self.step,
                values: metrics,
            })
            .await;
        self.last_feedback = Some(step.feedback);
        self.finish_step(t_step, clock).await;
        self.pace(t_step).await;
        Ok(())
    }

    /// The policy's context: the budgeted conversation, the legal actions, and privileged
    /// data only for a policy that declared it needs it.
    async fn context(&mut self, clock: &mut StepClock) -> Result<Context, EpisodeEnd> {
        let t = Instant::now();
        let (legal_actions, privileged) = {
            let harness = self.body.harness()?;
            let privileged = if self.policy_info.privileged {
                harness.privileged()
            } else {
                None
            };
            (harness.legal_actions(), privileged)
        };
        let (messages, stats) = self.memory.context();
        let context = Context {
            episode: self.info.clone(),
            step: self.step,
            messages,
            legal_actions,
            last_feedback: self.last_feedback.clone(),
            candidates: Vec::new(),
            privileged,
            cancel: Cancel::new(),
        };
        clock.memory += t.elapsed().as_secs_f64();
        clock.recorder += self
            .link
            .send(RecordEvent::Prompt {
                step: self.step,
                text: render_prompt(&context.messages),
            })
            .await;
        clock.recorder += self
            .link
            .send(RecordEvent::Memory {
                step: self.step,
                images: stats.images,
                tokens: stats.tokens,
            })
            .await;
        Ok(context)
    }

    /// Asks the policy, on a blocking thread, within the timeout. A timeout or Ctrl-C raises
    /// the context's cancel flag; after a timeout the loop also waits (up to
    /// `cancel_grace_s`) for the policy to return, so that it is free for the next episode.
    async fn decide(
        &mut self,
        context: Context,
        clock: &mut StepClock,
    ) -> Result<Decision, EpisodeEnd> {
        let t = Instant::now();
        let step = self.step;
        let cancel = context.cancel.clone();
        let partial = self.link.side_channel();
        let interval = self.settings.partial_reply_interval_s;
        let mut decide = with_policy(&self.policy, move |p| {
            let mut text = String::new();
            let mut last_sent = Instant::now();
            let mut on_text = |piece: &str| {
                text.push_str(piece);
                if last_sent.elapsed().as_secs_f64() >= interval {
                    last_sent = Instant::now();
                    partial(RecordEvent::PartialReply {
                        step,
                        text: text.clone(),
                    });
                }
            };
            p.decide(&context, &mut on_text).map_err(|e| match e {
                crate::Error::Policy { .. } => e,
                other => crate::Error::Policy {
                    step,
                    message: other.to_string(),
                },
            })
        });
        let limit = (self.settings.decision_timeout_s > 0.0)
            .then(|| Duration::from_secs_f64(self.settings.decision_timeout_s));
        let decided = tokio::select! {
            r = &mut decide => Some(r),
            _ = sleep_or_forever(limit) => None,
            _ = self.stop.wait() => {
                // Cancel and leave it: the process is stopping.
                cancel.cancel();
                return Err(EpisodeEnd::Interrupted);
            }
        };
        clock.policy = t.elapsed().as_secs_f64();
        let decision = match decided {
            None => {
                cancel.cancel();
                let grace = Duration::from_secs_f64(self.settings.cancel_grace_s.max(0.0));
                if tokio::time::timeout(grace, &mut decide).await.is_err() {
                    tracing::warn!(
                        "the policy did not stop within {:.1} s of being cancelled; it stays \
                         busy until it returns",
                        grace.as_secs_f64()
                    );
                }
                self.link
                    .send(RecordEvent::Feedback {
                        step,
                        feedback: Feedback {
                            success: false,
                            kind: FeedbackKind::TimedOut,
                            message: format!(
                                "the policy did not decide within {:.1} s",
                                self.settings.decision_timeout_s
                            ),
                        },
                    })
                    .await;
                return Err(EpisodeEnd::PolicyTimedOut { step });
            }
            Some(Err(e)) => {
                return Err(EpisodeEnd::failed(format!(
                    "the policy panicked at step {step}: {}",
                    panic_message(e)
                )));
            }
            Some(Ok(result)) => result.map_err(EpisodeEnd::failed)?,
        };
        clock.recorder += self
            .link
            .send(RecordEvent::Decision {
                step,
                decision: decision.clone(),
            })
            .await;
        Ok(decision)
    }

    /// The harness parses the decision, checks legality and executes it on the world.
    async fn execute(
        &mut self,
        decision: &Decision,
        clock: &mut StepClock,
    ) -> Result<HarnessStep, EpisodeEnd> {
        let t = Instant::now();
        let step_no = self.step;
        let d = decision.clone();
        let step = self
            .body
            .call(move |w, h| h.act(&d, w))
            .await?
            .map_err(|e| EpisodeEnd::failed(format!("step {step_no}: {e}")))?;
        clock.world = step.world_time;
        clock.executor = (t.elapsed().as_secs_f64() - step.world_time).max(0.0);
        Ok(step)
    }

    /// Files a harness step in memory and the episode log, and sends it to the recorder.
    async fn record(
        &mut self,
        step: &HarnessStep,
        decision: Option<&Decision>,
        clock: &mut StepClock,
    ) -> Result<(), EpisodeEnd> {
        let t = Instant::now();
        if let Some(d) = decision {
            self.memory
                .push_messages([Message::text(Role::Assistant, d.raw.clone())]);
        }
        self.memory.push_messages(step.messages.iter().cloned());
        for (_, obs) in &step.observations {
            self.memory.observe(self.step, obs);
        }
        let agent_pose = step.observations.last().and_then(|(_, o)| {
            o.sim.as_ref().map(|m| {
                let a = &m.agent;
                [
                    a.position.x,
                    a.position.y,
                    a.position.z,
                    a.rotation.y,
                    a.camera_horizon,
                ]
            })
        });
        self.memory
            .record_step(StepEntry {
                step: self.step,
                executed: step.executed,
                reply: decision.map(|d| d.raw.clone()).unwrap_or_default(),
                thought: decision.map(|d| d.thought.clone()).unwrap_or_default(),
                action: step.action_text.clone(),
                success: step.feedback.success,
                feedback: step.feedback.clone(),
                observations: step.observations.iter().map(|(l, _)| l.clone()).collect(),
                agent_pose,
                record: step.record.clone(),
            })
            .map_err(EpisodeEnd::failed)?;
        clock.memory += t.elapsed().as_secs_f64();
        for (label, obs) in &step.observations {
            clock.recorder += self
                .link
                .send(RecordEvent::Observation {
                    step: self.step,
                    label: label.clone(),
                    observation: obs.clone(),
                })
                .await;
        }
        clock.recorder += self
            .link
            .send(RecordEvent::Action {
                step: self.step,
                action: step.action.clone(),
                text: step.action_text.clone(),
            })
            .await;
        clock.recorder += self
            .link
            .send(RecordEvent::Feedback {
                step: self.step,
                feedback: step.feedback.clone(),
            })
            .await;
        Ok(())
    }

    async fn finish_step(&mut self, started: Instant, clock: StepClock) {
        let timings = StepTimings {
            step: started.elapsed().as_secs_f64(),
            policy: clock.policy,
            world: clock.world,
            executor: clock.executor,
            memory: clock.memory,
            recorder: clock.recorder,
        };
        self.link
            .send(RecordEvent::Timings {
                step: self.step,
                timings: timings.clone(),
            })
            .await;
        self.timings.push(timings);
    }

    /// Waits out the rest of `min_step_interval_s` (Ctrl-C cuts it short).
    async fn pace(&mut self, started: Instant) {
        let pace = self.settings.min_step_interval_s - started.elapsed().as_secs_f64();
        if pace > 0.0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(pace)) => {}
                _ = self.stop.wait() => {}
            }
        }
    }

    /// Safe stop, summary, the log's last line, the recorder's flush; the same for every end.
    async fn wind_down(mut self, mut end: EpisodeEnd) -> EpisodeOutcome {
        let mut summary = match self.body.call(|w, h| (w.safe_stop(), h.summary())).await {
            Ok((stopped, summary)) => {
                if let Err(e) = stopped {
                    tracing::warn!("safe stop failed: {e}");
                }
                summary
            }
            Err(lost) => {
                if end == EpisodeEnd::Completed {
                    end = lost;
                }
                Value::Null
            }
        };
        if let Value::Object(m) = &mut summary {
            m.insert(
                "loop_end".into(),
                serde_json::to_value(&end).unwrap_or(Value::Null),
            );
        }
        let mut memory = self.memory;
        let last = summary.clone();
        let closed = tokio::task::spawn_blocking(move || {
            memory.end(&last)?;
            memory.close_log()
        })
        .await;
        match closed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("could not finish the episode log: {e}"),
            Err(e) => tracing::warn!("finishing the episode log panicked: {}", panic_message(e)),
        }
        self.link
            .send(RecordEvent::EpisodeEnd {
                episode: self.info.index,
                summary: summary.clone(),
            })
            .await;
        self.link.close().await;
        EpisodeOutcome {
            world: self.body.into_world(),
            report: EpisodeReport {
                episode: self.info,
                policy: self.policy_info,
                end,
                summary,
                calls: self.step + 1,
                timings: self.timings,
                log_path: self.log_path,
            },
        }
    }
}

/// Sleeps for `limit`, or forever when there is none.
async fn sleep_or_forever(limit: Option<Duration>) {
    match limit {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
