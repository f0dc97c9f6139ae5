//! The event loop: runs one episode step by step.
//!
//! ```text
//! harness.start(world) -> observations + first messages -> memory, recorder
//! loop until the harness says done, Ctrl-C, or a policy timeout:
//!     context  = memory.context() + harness.legal_actions() + harness.privileged()
//!     decision = policy.decide(context)        (blocking thread, per-decision timeout)
//!     step     = harness.act(decision, world)  (blocking thread: parse, legality, execute)
//!     memory  <- reply, next user turn, step entry (episode log, flushed)
//!     recorder<- observations, prompt, decision, action, feedback, timings, metrics
//! world.safe_stop(); memory.end(summary); recorder.flush()
//! ```
//! Model inference and world calls run on tokio's blocking pool, so the loop itself never
//! blocks. Ctrl-C (a [`StopSignal`]) abandons a decision in progress or lets the current world
//! step finish, then ends the episode cleanly: the world is brought to a safe stop and the log
//! and recorder are flushed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::harness::{Harness, HarnessStep};
use crate::memory::{Memory, StepEntry};
use crate::policy::{
    ContentPart, Context, Decision, EpisodeInfo, Feedback, FeedbackKind, Message, Policy,
};
use crate::recorder::{RecordEvent, Recorder, StepTimings};
use crate::world::World;

/// A policy shared between the loop and the blocking thread that runs it.
pub type SharedPolicy = Arc<Mutex<Box<dyn Policy>>>;

/// Wraps a policy for the loop.
pub fn share_policy(policy: Box<dyn Policy>) -> SharedPolicy {
    Arc::new(Mutex::new(policy))
}

/// A request to stop, shared by the signal handler and the loops.
#[derive(Clone, Debug)]
pub struct StopSignal {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Asks every loop watching this signal to stop.
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once a stop is requested.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in self, so the channel cannot close while we wait.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Settings of the loop itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopSettings {
    /// Per-decision timeout in seconds (0 = none).
    pub decision_timeout_s: f64,
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

/// What one episode produced.
#[derive(Clone, Debug)]
pub struct EpisodeReport {
    /// The episode.
    pub episode: EpisodeInfo,
    /// How it ended.
    pub end: EpisodeEnd,
    /// The harness's summary (benchmark case line).
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

type Parts = (Box<dyn World>, Box<dyn Harness>);

/// Runs `f` with the world and harness on a blocking thread and hands them back.
async fn blocking<T: Send + 'static>(
    parts: Parts,
    f: impl FnOnce(&mut dyn World, &mut dyn Harness) -> T + Send + 'static,
) -> std::result::Result<(Parts, T), String> {
    tokio::task::spawn_blocking(move || {
        let (mut world, mut harness) = parts;
        let out = f(world.as_mut(), harness.as_mut());
        ((world, harness), out)
    })
    .await
    .map_err(|e| format!("a world or harness call panicked: {e}"))
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

struct Loop<'a> {
    memory: Memory,
    recorder: &'a Arc<dyn Recorder>,
    step: u64,
    timings: Vec<StepTimings>,
}

impl Loop<'_> {
    fn record(&self, event: RecordEvent) -> f64 {
        let t = Instant::now();
        self.recorder.record(event);
        t.elapsed().as_secs_f64()
    }

    /// Files a harness step in memory, the log and the recorder. Returns seconds spent in
    /// memory and on recording.
    fn file_step(&mut self, step: &HarnessStep, decision: Option<&Decision>) -> Result<(f64, f64)> {
        let t_mem = Instant::now();
        if let Some(d) = decision {
            self.memory
                .push_messages([Message::text(crate::policy::Role::Assistant, d.raw.clone())]);
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
        self.memory.record_step(StepEntry {
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
        })?;
        let memory_time = t_mem.elapsed().as_secs_f64();
        let mut rec = 0.0;
        for (label, obs) in &step.observations {
            rec += self.record(RecordEvent::Observation {
                step: self.step,
                label: label.clone(),
                observation: obs.clone(),
            });
        }
        rec += self.record(RecordEvent::Action {
            step: self.step,
            action: step.action.clone(),
            text: step.action_text.clone(),
        });
        rec += self.record(RecordEvent::Feedback {
            step: self.step,
            feedback: step.feedback.clone(),
        });
        Ok((memory_time, rec))
    }
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
    let episode = harness.episode();
    let world_info = world.info();
    let mut lp = Loop {
        memory,
        recorder: &recorder,
        step: 0,
        timings: Vec::new(),
    };
    let log_path = lp.memory.log_path().map(PathBuf::from);
    let mut parts: Option<Parts> = Some((world, harness));
    let mut end = EpisodeEnd::Completed;

    lp.record(RecordEvent::EpisodeStart {
        episode: episode.clone(),
        world: world_info.clone(),
    });
    let begin = lp
        .memory
        .begin(&episode, json!({"world": world_info, "loop": settings}));
    let reset_policy = {
        let policy = policy.clone();
        let ep = episode.clone();
        tokio::task::spawn_blocking(move || match policy.lock() {
            Ok(mut p) => p.reset(&ep),
            Err(_) => Err(Error::Invalid(
                "the policy panicked in an earlier call".into(),
            )),
        })
        .await
        .unwrap_or_else(|e| Err(Error::Invalid(format!("policy reset panicked: {e}"))))
    };

    'episode: {
        if let Err(e) = begin.and(reset_policy) {
            end = EpisodeEnd::Failed {
                error: e.to_string(),
            };
            break 'episode;
        }
        // Start: reset the world and place the agent.
        let t0 = Instant::now();
        let started = match blocking(parts.take().expect("parts present"), |w, h| h.start(w)).await
        {
            Ok((p, r)) => {
                parts = Some(p);
                r
            }
            Err(e) => {
                end = EpisodeEnd::Failed { error: e };
                break 'episode;
            }
        };
        let first = match started {
            Ok(s) => s,
            Err(e) => {
                end = EpisodeEnd::Failed {
                    error: e.to_string(),
                };
                break 'episode;
            }
        };
        let exec_time = t0.elapsed().as_secs_f64();
        match lp.file_step(&first, None) {
            Ok((memory_time, recorder_time)) => {
                let timings = StepTimings {
                    step: t0.elapsed().as_secs_f64(),
                    policy: 0.0,
                    world: first.world_time,
                    executor: (exec_time - first.world_time).max(0.0),
                    memory: memory_time,
                    recorder: recorder_time,
                };
                lp.record(RecordEvent::Timings {
                    step: 0,
                    timings: timings.clone(),
                });
                lp.timings.push(timings);
            }
            Err(e) => {
                end = EpisodeEnd::Failed {
                    error: e.to_string(),
                };
                break 'episode;
            }
        }
        let mut last_feedback = Some(first.feedback.clone());

        while let Some((_, harness)) = parts.as_ref() {
            if harness.is_done() {
                break;
            }
            if stop.is_requested() {
                end = EpisodeEnd::Interrupted;
                break;
            }
            if lp.step + 1 >= settings.max_calls {
                end = EpisodeEnd::CallLimit;
                break;
            }
            lp.step += 1;
            let step_no = lp.step;
            let t_step = Instant::now();

            // Context.
            let t_mem = Instant::now();
            let (messages, stats) = lp.memory.context();
            let context = Context {
                episode: episode.clone(),
                step: step_no,
                messages,
                legal_actions: harness.legal_actions(),
                last_feedback: last_feedback.clone(),
                candidates: Vec::new(),
                privileged: harness.privileged(),
            };
            let mut memory_time = t_mem.elapsed().as_secs_f64();
            let mut recorder_time = lp.record(RecordEvent::Prompt {
                step: step_no,
                text: render_prompt(&context.messages),
            });
            recorder_time += lp.record(RecordEvent::Memory {
                step: step_no,
                images: stats.images,
                tokens: stats.tokens,
            });

            // Decide, on a blocking thread, with a timeout; Ctrl-C abandons the decision.
            let t_policy = Instant::now();
            let decide = {
                let policy = policy.clone();
                let recorder = recorder.clone();
                let interval = settings.partial_reply_interval_s;
                tokio::task::spawn_blocking(move || {
                    let mut text = String::new();
                    let mut last_sent = Instant::now();
                    let mut on_text = |piece: &str| {
                        text.push_str(piece);
                        if last_sent.elapsed().as_secs_f64() >= interval {
                            last_sent = Instant::now();
                            recorder.record(RecordEvent::PartialReply {
                                step: step_no,
                                text: text.clone(),
                            });
                        }
                    };
                    match policy.lock() {
                        Ok(mut p) => p.decide(&context, &mut on_text),
                        Err(_) => Err(Error::Policy {
                            step: step_no,
                            message: "the policy panicked in an earlier call".into(),
                        }),
                    }
                })
            };
            let timeout = (settings.decision_timeout_s > 0.0)
                .then(|| Duration::from_secs_f64(settings.decision_timeout_s));
            let decided = tokio::select! {
                r = async {
                    match timeout {
                        Some(t) => tokio::time::timeout(t, decide).await.ok(),
                        None => Some(decide.await),
                    }
                } => r,
                _ = stop.wait() => {
                    end = EpisodeEnd::Interrupted;
                    break;
                }
            };
            let policy_time = t_policy.elapsed().as_secs_f64();
            let decision = match decided {
                None => {
                    end = EpisodeEnd::PolicyTimedOut { step: step_no };
                    lp.record(RecordEvent::Feedback {
                        step: step_no,
                        feedback: Feedback {
                            success: false,
                            kind: FeedbackKind::TimedOut,
                            message: format!(
                                "the policy did not decide within {:.1} s",
                                settings.decision_timeout_s
                            ),
                        },
                    });
                    break;
                }
                Some(Err(e)) => {
                    end = EpisodeEnd::Failed {
                        error: format!("policy panicked: {e}"),
                    };
                    break;
                }
                Some(Ok(Err(e))) => {
                    end = EpisodeEnd::Failed {
                        error: e.to_string(),
                    };
                    break;
                }
                Some(Ok(Ok(d))) => d,
            };
            recorder_time += lp.record(RecordEvent::Decision {
                step: step_no,
                decision: decision.clone(),
            });

            // Act: parse, legality, execute.
            let t_act = Instant::now();
            let d = decision.clone();
            let acted = match blocking(parts.take().expect("parts present"), move |w, h| {
                h.act(&d, w)
            })
            .await
            {
                Ok((p, r)) => {
                    parts = Some(p);
                    r
                }
                Err(e) => {
                    end = EpisodeEnd::Failed { error: e };
                    break;
                }
            };
            let step = match acted {
                Ok(s) => s,
                Err(e) => {
                    end = EpisodeEnd::Failed {
                        error: format!("step {step_no}: {e}"),
                    };
                    break;
                }
            };
            let act_time = t_act.elapsed().as_secs_f64();
            let (m, r) = match lp.file_step(&step, Some(&decision)) {
                Ok(x) => x,
                Err(e) => {
                    end = EpisodeEnd::Failed {
                        error: e.to_string(),
                    };
                    break;
                }
            };
            memory_time += m;
            recorder_time += r;
            if let Some((_, h)) = parts.as_ref() {
                recorder_time += lp.record(RecordEvent::Metrics {
                    step: step_no,
                    values: h.metrics(),
                });
            }
            last_feedback = Some(step.feedback.clone());
            let timings = StepTimings {
                step: t_step.elapsed().as_secs_f64(),
                policy: policy_time,
                world: step.world_time,
                executor: (act_time - step.world_time).max(0.0),
                memory: memory_time,
                recorder: recorder_time,
            };
            lp.record(RecordEvent::Timings {
                step: step_no,
                timings: timings.clone(),
            });
            lp.timings.push(timings);
            let pace = settings.min_step_interval_s - t_step.elapsed().as_secs_f64();
            if pace > 0.0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs_f64(pace)) => {}
                    _ = stop.wait() => {}
                }
            }
        }
    }

    // Wind down: safe stop, summary, flush.
    let mut summary = Value::Null;
    if let Some(p) = parts.take() {
        match blocking(p, |w, h| (w.safe_stop(), h.summary())).await {
            Ok((p, (stopped, s))) => {
                parts = Some(p);
                summary = s;
                if let Err(e) = stopped {
                    tracing::warn!("safe stop failed: {e}");
                }
            }
            Err(e) => {
                if end == EpisodeEnd::Completed {
                    end = EpisodeEnd::Failed { error: e };
                }
            }
        }
    }
    if let Value::Object(m) = &mut summary {
        m.insert(
            "loop_end".into(),
            serde_json::to_value(&end).unwrap_or(Value::Null),
        );
    }
    if let Err(e) = lp.memory.end(&summary) {
        tracing::warn!("could not finish the episode log: {e}");
    }
    lp.record(RecordEvent::EpisodeEnd {
        episode: episode.index,
        summary: summary.clone(),
    });
    if let Err(e) = recorder.flush() {
        tracing::warn!("recorder flush failed: {e}");
    }
    EpisodeOutcome {
        world: parts.map(|(w, _)| w),
        report: EpisodeReport {
            episode,
            end,
            summary,
            calls: lp.step + 1,
            timings: lp.timings,
            log_path,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{DiscreteAction, Verb};
    use crate::memory::{Budget, EpisodeLog, EstimatedTokens};
    use crate::observation::{Observation, Proprioception};
    use crate::policy::{Decision, Role};
    use crate::recorder::RecorderStats;
    use crate::world::{Command, ResetRequest, StepOutcome, WorldFeedback, WorldInfo};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A world that counts steps and safe stops.
    struct CountingWorld {
        steps: u64,
        safe_stops: Arc<AtomicUsize>,
    }

    fn obs(step: u64) -> Observation {
        Observation {
            step,
            sim_time: None,
            cameras: vec![],
            proprio: Proprioception::default(),
            sim: None,
        }
    }

    impl World for CountingWorld {
        fn info(&self) -> WorldInfo {
            WorldInfo {
                kind: "counting".into(),
                ..Default::default()
            }
        }
        fn reset(&mut self, _r: &ResetRequest) -> Result<Observation> {
            self.steps = 0;
            Ok(obs(0))
        }
        fn step(&mut self, _c: &[Command]) -> Result<StepOutcome> {
            self.steps += 1;
            Ok(StepOutcome {
                observation: obs(self.steps),
                feedback: WorldFeedback {
                    success: true,
                    error: String::new(),
                },
            })
        }
        fn safe_stop(&mut self) -> Result<()> {
            self.safe_stops.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// A harness that ends after `limit` executed actions, or on `end`, or fails on `boom`.
    struct ScriptHarness {
        limit: u64,
        executed: u64,
        ended: bool,
    }

    impl Harness for ScriptHarness {
        fn episode(&self) -> EpisodeInfo {
            EpisodeInfo {
                id: "script".into(),
                instruction: "count".into(),
                ..Default::default()
            }
        }
        fn start(&mut self, world: &mut dyn World) -> Result<HarnessStep> {
            let o = world.reset(&ResetRequest::default())?;
            Ok(HarnessStep {
                action_text: "init".into(),
                executed: true,
                feedback: Feedback {
                    success: true,
                    ..Default::default()
                },
                observations: vec![("init".into(), Arc::new(o))],
                messages: vec![
                    Message::text(Role::System, "system"),
                    Message::text(Role::User, "task"),
                ],
                ..Default::default()
            })
        }
        fn act(&mut self, decision: &Decision, world: &mut dyn World) -> Result<HarnessStep> {
            if decision.raw.contains("boom") {
                return Err(Error::World("the world exploded".into()));
            }
            if decision.raw.contains("end") {
                self.ended = true;
            }
            let out = world.step(&[])?;
            self.executed += 1;
            Ok(HarnessStep {
                action_text: decision.raw.clone(),
                executed: true,
                feedback: Feedback {
                    success: true,
                    ..Default::default()
                },
                observations: vec![("step".into(), Arc::new(out.observation))],
                messages: vec![Message::text(
                    Role::User,
                    format!("after {}", self.executed),
                )],
                record: json!({"n": self.executed}),
                ..Default::default()
            })
        }
        fn is_done(&self) -> bool {
            self.ended || self.executed >= self.limit
        }
        fn legal_actions(&self) -> Vec<crate::action::Action> {
            vec![DiscreteAction::bare(Verb::Observe).into()]
        }
        fn privileged(&self) -> Option<crate::policy::Privileged> {
            None
        }
        fn metrics(&self) -> Vec<(String, f64)> {
            vec![("executed".into(), self.executed as f64)]
        }
        fn summary(&self) -> Value {
            json!({"executed": self.executed})
        }
    }

    /// A policy that replies from a script, optionally sleeping first, and sees the context.
    struct ScriptPolicy {
        replies: Vec<&'static str>,
        sleep: Duration,
        next: usize,
        seen_messages: Arc<AtomicUsize>,
    }

    impl Policy for ScriptPolicy {
        fn name(&self) -> &str {
            "script"
        }
        fn reset(&mut self, _e: &EpisodeInfo) -> Result<()> {
            self.next = 0;
            Ok(())
        }
        fn decide(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Decision> {
            std::thread::sleep(self.sleep);
            self.seen_messages
                .store(ctx.messages.len(), Ordering::SeqCst);
            let r = self.replies.get(self.next).copied().unwrap_or("end");
            self.next += 1;
            on_text(r);
            Ok(Decision {
                raw: r.into(),
                thought: format!("thinking {}", self.next),
                ..Default::default()
            })
        }
    }

    #[derive(Default)]
    struct CollectingRecorder {
        events: Mutex<Vec<String>>,
    }

    impl Recorder for CollectingRecorder {
        fn record(&self, event: RecordEvent) {
            let name = match &event {
                RecordEvent::EpisodeStart { .. } => "start".to_string(),
                RecordEvent::Observation { step, label, .. } => format!("obs:{step}:{label}"),
                RecordEvent::Prompt { step, .. } => format!("prompt:{step}"),
                RecordEvent::PartialReply { .. } => return,
                RecordEvent::Decision { step, decision } => {
                    format!("decision:{step}:{}", decision.raw)
                }
                RecordEvent::Action { step, .. } => format!("action:{step}"),
                RecordEvent::Candidates { .. } => "candidates".into(),
                RecordEvent::Feedback { step, feedback } => {
                    format!("feedback:{step}:{:?}", feedback.kind)
                }
                RecordEvent::Timings { step, .. } => format!("timings:{step}"),
                RecordEvent::Memory { step, .. } => format!("memory:{step}"),
                RecordEvent::Metrics { step, .. } => format!("metrics:{step}"),
                RecordEvent::EpisodeEnd { .. } => "end".into(),
            };
            self.events.lock().unwrap().push(name);
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
        fn stats(&self) -> RecorderStats {
            RecorderStats::default()
        }
    }

    struct Setup {
        world: Option<Box<dyn World>>,
        harness: Option<Box<dyn Harness>>,
        policy: SharedPolicy,
        recorder: Arc<CollectingRecorder>,
        safe_stops: Arc<AtomicUsize>,
        seen: Arc<AtomicUsize>,
    }

    fn setup(replies: Vec<&'static str>, sleep_ms: u64, limit: u64) -> Setup {
        let safe_stops = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicUsize::new(0));
        Setup {
            world: Some(Box::new(CountingWorld {
                steps: 0,
                safe_stops: safe_stops.clone(),
            })),
            harness: Some(Box::new(ScriptHarness {
                limit,
                executed: 0,
                ended: false,
            })),
            policy: share_policy(Box::new(ScriptPolicy {
                replies,
                sleep: Duration::from_millis(sleep_ms),
                next: 0,
                seen_messages: seen.clone(),
            })),
            recorder: Arc::new(CollectingRecorder::default()),
            safe_stops,
            seen,
        }
    }

    async fn run(
        s: &mut Setup,
        settings: LoopSettings,
        stop: &StopSignal,
        log: Option<&std::path::Path>,
    ) -> EpisodeOutcome {
        let (world, harness) = (s.world.take().unwrap(), s.harness.take().unwrap());
        let memory = Memory::new(
            Budget::default(),
            Arc::new(EstimatedTokens),
            log.map(|p| EpisodeLog::create(p).unwrap()),
        );
        let recorder: Arc<dyn Recorder> = s.recorder.clone();
        run_episode(
            world,
            harness,
            s.policy.clone(),
            memory,
            recorder,
            &settings,
            stop,
        )
        .await
    }

    #[tokio::test]
    async fn runs_to_the_harness_end_and_records_every_arrow() {
        let mut s = setup(vec!["a", "b", "end"], 0, 10);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ep.jsonl");
        let out = run(
            &mut s,
            LoopSettings::default(),
            &StopSignal::new(),
            Some(&log),
        )
        .await;
        assert_eq!(out.report.end, EpisodeEnd::Completed);
        assert_eq!(out.report.calls, 4);
        assert_eq!(out.report.summary["executed"], 3);
        assert_eq!(out.report.summary["loop_end"]["end"], "completed");
        assert!(out.world.is_some());
        assert_eq!(s.safe_stops.load(Ordering::SeqCst), 1);
        // The third decision saw: system, task, then (reply, after) twice.
        assert_eq!(s.seen.load(Ordering::SeqCst), 6);
        let ev = s.recorder.events.lock().unwrap().clone();
        let expected_step1 = [
            "prompt:1",
            "memory:1",
            "decision:1:a",
            "obs:1:step",
            "action:1",
            "feedback:1:Executed",
            "metrics:1",
            "timings:1",
        ];
        let pos = ev.iter().position(|e| e == "prompt:1").unwrap();
        assert_eq!(&ev[pos..pos + expected_step1.len()], &expected_step1);
        assert_eq!(ev.first().unwrap(), "start");
        assert_eq!(ev.last().unwrap(), "end");
        assert!(ev.contains(&"obs:0:init".to_string()));
        // Log: episode line, 4 step lines, end line.
        let lines = EpisodeLog::read(&log).unwrap();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[2]["reply"], "a");
        assert_eq!(lines[2]["thought"], "thinking 1");
        assert_eq!(lines[5]["type"], "end");
        assert_eq!(out.report.timings.len(), 4);
    }

    #[tokio::test]
    async fn a_slow_decision_times_out_and_the_world_survives() {
        let mut s = setup(vec!["a"], 400, 10);
        let settings = LoopSettings {
            decision_timeout_s: 0.05,
            ..Default::default()
        };
        let out = run(&mut s, settings, &StopSignal::new(), None).await;
        assert_eq!(out.report.end, EpisodeEnd::PolicyTimedOut { step: 1 });
        assert!(out.world.is_some());
        let ev = s.recorder.events.lock().unwrap().clone();
        assert!(ev.contains(&"feedback:1:TimedOut".to_string()), "{ev:?}");
    }

    #[tokio::test]
    async fn stop_abandons_a_decision_and_winds_down() {
        // The abandoned decision thread finishes after 2 s; the test runtime waits for it.
        let mut s = setup(vec!["a", "b"], 2_000, 10);
        let stop = StopSignal::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stopper.request();
        });
        let started = Instant::now();
        let out = run(&mut s, LoopSettings::default(), &stop, None).await;
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the decision was not abandoned"
        );
        assert_eq!(out.report.end, EpisodeEnd::Interrupted);
        assert_eq!(s.safe_stops.load(Ordering::SeqCst), 1);
        assert_eq!(s.recorder.events.lock().unwrap().last().unwrap(), "end");
    }

    #[tokio::test]
    async fn a_harness_error_ends_the_episode_with_the_step() {
        let mut s = setup(vec!["a", "boom"], 0, 10);
        let out = run(&mut s, LoopSettings::default(), &StopSignal::new(), None).await;
        match &out.report.end {
            EpisodeEnd::Failed { error } => {
                assert!(
                    error.contains("step 2") && error.contains("exploded"),
                    "{error}"
                )
            }
            other => panic!("unexpected end {other:?}"),
        }
        assert!(out.world.is_some());
    }

    #[tokio::test]
    async fn the_call_cap_is_a_safety_net() {
        let mut s = setup(vec!["a"; 20], 0, 1000);
        let settings = LoopSettings {
            max_calls: 5,
            ..Default::default()
        };
        let out = run(&mut s, settings, &StopSignal::new(), None).await;
        assert_eq!(out.report.end, EpisodeEnd::CallLimit);
        assert_eq!(out.report.calls, 5);
    }

    #[tokio::test]
    async fn the_same_run_writes_the_same_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut logs = Vec::new();
        for i in 0..2 {
            let mut s = setup(vec!["x", "y", "end"], 0, 10);
            let path = dir.path().join(format!("{i}.jsonl"));
            run(
                &mut s,
                LoopSettings::default(),
                &StopSignal::new(),
                Some(&path),
            )
            .await;
            logs.push(std::fs::read(&path).unwrap());
        }
        assert_eq!(logs[0], logs[1]);
    }
}
