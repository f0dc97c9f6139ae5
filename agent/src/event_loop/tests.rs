//! Tests of the event loop with scripted worlds, harnesses and policies.

use super::*;
use crate::action::{DiscreteAction, Verb};
use crate::error::{Error, Result};
use crate::memory::{Budget, EpisodeLog, EstimatedTokens};
use crate::observation::{Observation, Proprioception};
use crate::policy::{Decision, Role};
use crate::policy::{Policy, Privileged};
use crate::recorder::RecorderStats;
use crate::world::{Command, ResetRequest, StepOutcome, WorldFeedback, WorldInfo};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A world that counts steps and safe stops; it may be slow, panic on a step, and offer a
/// safe-stop handle that works while it is busy.
struct CountingWorld {
    steps: Arc<AtomicUsize>,
    safe_stops: Arc<AtomicUsize>,
    step_delay: Duration,
    panic_on_step: Option<usize>,
    stop_handle: bool,
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
        self.steps.store(0, Ordering::SeqCst);
        Ok(obs(0))
    }
    fn step(&mut self, _c: &[Command]) -> Result<StepOutcome> {
        // Counted on entry, so a test sees the world busy in this step during the delay.
        let n = self.steps.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(self.step_delay);
        if self.panic_on_step == Some(n) {
            panic!("the world fell over at step {n}");
        }
        Ok(StepOutcome {
            observation: obs(n as u64),
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
    fn safe_stop_handle(&self) -> Option<crate::world::SafeStopHandle> {
        let stops = self.safe_stops.clone();
        self.stop_handle.then(|| -> crate::world::SafeStopHandle {
            Arc::new(move || {
                stops.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        })
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
    fn privileged(&self) -> Option<Privileged> {
        // Offered to every policy; the loop hands it only to those that ask.
        Some(Privileged::default())
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
    needs_privileged: bool,
    saw_privileged: Arc<AtomicUsize>,
    /// Sleep in small slices and stop when the loop cancels the decision.
    honours_cancel: bool,
    cancelled: Arc<AtomicUsize>,
}

impl Policy for ScriptPolicy {
    fn name(&self) -> &str {
        "script"
    }
    fn needs_privileged(&self) -> bool {
        self.needs_privileged
    }
    fn reset(&mut self, _e: &EpisodeInfo) -> Result<()> {
        self.next = 0;
        Ok(())
    }
    fn decide(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Decision> {
        if ctx.privileged.is_some() {
            self.saw_privileged.fetch_add(1, Ordering::SeqCst);
        }
        if self.honours_cancel {
            let until = Instant::now() + self.sleep;
            while Instant::now() < until {
                if ctx.cancel.is_cancelled() {
                    self.cancelled.fetch_add(1, Ordering::SeqCst);
                    return Err(Error::Policy {
                        step: ctx.step,
                        message: "cancelled".into(),
                    });
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            std::thread::sleep(self.sleep);
        }
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
    steps: Arc<AtomicUsize>,
    seen: Arc<AtomicUsize>,
    saw_privileged: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
}

/// Knobs of a scripted episode beyond the replies.
#[derive(Default)]
struct Knobs {
    policy_sleep_ms: u64,
    limit: u64,
    needs_privileged: bool,
    honours_cancel: bool,
    world_step_ms: u64,
    panic_on_step: Option<usize>,
    stop_handle: bool,
}

fn setup(replies: Vec<&'static str>, sleep_ms: u64, limit: u64) -> Setup {
    setup_with(
        replies,
        Knobs {
            policy_sleep_ms: sleep_ms,
            limit,
            ..Knobs::default()
        },
    )
}

fn setup_with(replies: Vec<&'static str>, k: Knobs) -> Setup {
    let safe_stops = Arc::new(AtomicUsize::new(0));
    let steps = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let saw_privileged = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    Setup {
        world: Some(Box::new(CountingWorld {
            steps: steps.clone(),
            safe_stops: safe_stops.clone(),
            step_delay: Duration::from_millis(k.world_step_ms),
            panic_on_step: k.panic_on_step,
            stop_handle: k.stop_handle,
        })),
        harness: Some(Box::new(ScriptHarness {
            limit: k.limit,
            executed: 0,
            ended: false,
        })),
        policy: share_policy(Box::new(ScriptPolicy {
            replies,
            sleep: Duration::from_millis(k.policy_sleep_ms),
            next: 0,
            seen_messages: seen.clone(),
            needs_privileged: k.needs_privileged,
            saw_privileged: saw_privileged.clone(),
            honours_cancel: k.honours_cancel,
            cancelled: cancelled.clone(),
        })),
        recorder: Arc::new(CollectingRecorder::default()),
        safe_stops,
        steps,
        seen,
        saw_privileged,
        cancelled,
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

#[tokio::test]
async fn privileged_data_reaches_only_a_policy_that_asks_for_it() {
    for needs in [false, true] {
        let mut s = setup_with(
            vec!["a", "b", "end"],
            Knobs {
                limit: 10,
                needs_privileged: needs,
                ..Knobs::default()
            },
        );
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
        let expected = if needs { 3 } else { 0 };
        assert_eq!(s.saw_privileged.load(Ordering::SeqCst), expected);
        assert_eq!(out.report.policy.name, "script");
        assert_eq!(out.report.policy.privileged, needs);
        // The episode log says which kind of policy ran.
        let lines = EpisodeLog::read(&log).unwrap();
        assert_eq!(lines[0]["info"]["policy"]["name"], "script");
        assert_eq!(lines[0]["info"]["policy"]["privileged"], needs);
    }
}

#[tokio::test]
async fn a_timed_out_decision_is_cancelled_and_the_policy_released() {
    let mut s = setup_with(
        vec!["a"],
        Knobs {
            policy_sleep_ms: 20_000,
            limit: 10,
            honours_cancel: true,
            ..Knobs::default()
        },
    );
    let settings = LoopSettings {
        decision_timeout_s: 0.1,
        ..Default::default()
    };
    let started = Instant::now();
    let out = run(&mut s, settings, &StopSignal::new(), None).await;
    assert_eq!(out.report.end, EpisodeEnd::PolicyTimedOut { step: 1 });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        s.cancelled.load(Ordering::SeqCst),
        1,
        "the policy saw the cancel"
    );
    // The generation stopped, so the policy is free for the next episode at once.
    assert!(s.policy.try_lock().is_ok(), "the policy is still locked");
}

#[tokio::test]
async fn a_panicking_world_ends_the_episode_as_a_failure_and_is_lost() {
    let mut s = setup_with(
        vec!["a", "b", "c"],
        Knobs {
            limit: 10,
            panic_on_step: Some(2),
            ..Knobs::default()
        },
    );
    let out = run(&mut s, LoopSettings::default(), &StopSignal::new(), None).await;
    match &out.report.end {
        EpisodeEnd::Failed { error } => {
            assert!(error.contains("fell over at step 2"), "{error}")
        }
        other => panic!("unexpected end {other:?}"),
    }
    assert!(out.report.end.is_infrastructure_failure());
    assert!(out.world.is_none());
    assert_eq!(out.report.summary, Value::Null);
    assert_eq!(s.recorder.events.lock().unwrap().last().unwrap(), "end");
}

/// A recorder whose `record` blocks until the test opens its gate (a file recorder waiting
/// for room in its queue, say).
struct GatedRecorder {
    open: Mutex<bool>,
    opened: std::sync::Condvar,
    received: AtomicUsize,
}

impl Recorder for GatedRecorder {
    fn record(&self, _event: RecordEvent) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        self.received.fetch_add(1, Ordering::SeqCst);
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_recorder_does_not_stop_the_loop() {
    let mut s = setup(vec!["a", "b", "end"], 0, 10);
    let gate = Arc::new(GatedRecorder {
        open: Mutex::new(false),
        opened: std::sync::Condvar::new(),
        received: AtomicUsize::new(0),
    });
    let (world, harness) = (s.world.take().unwrap(), s.harness.take().unwrap());
    let recorder: Arc<dyn Recorder> = gate.clone();
    let policy = s.policy.clone();
    let episode = tokio::spawn(async move {
        let memory = Memory::new(Budget::default(), Arc::new(EstimatedTokens), None);
        run_episode(
            world,
            harness,
            policy,
            memory,
            recorder,
            &LoopSettings::default(),
            &StopSignal::new(),
        )
        .await
        .report
    });
    // On a single-threaded runtime, the episode can only advance if recording never blocks
    // the worker: all three steps happen while the recorder is still stuck on its first event.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.steps.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "the loop stalled behind the recorder"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(gate.received.load(Ordering::SeqCst), 0);
    *gate.open.lock().unwrap() = true;
    gate.opened.notify_all();
    let report = episode.await.unwrap();
    assert_eq!(report.end, EpisodeEnd::Completed);
    // Every event reached the recorder before the episode returned: the start, 4 for the
    // initial step (observation, action, feedback, timings), 8 for each of the 3 steps, and
    // the end.
    assert_eq!(gate.received.load(Ordering::SeqCst), 1 + 4 + 3 * 8 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emergency_stop_reaches_a_busy_world() {
    let mut s = setup_with(
        vec!["a", "b", "end"],
        Knobs {
            limit: 10,
            world_step_ms: 300,
            stop_handle: true,
            ..Knobs::default()
        },
    );
    let stop = StopSignal::new();
    let emergency = {
        let stop = stop.clone();
        let steps = s.steps.clone();
        tokio::task::spawn_blocking(move || {
            // While the world is busy inside a step (it holds `&mut self`), the second
            // Ctrl-C's path still stops it through the handle the loop registered.
            while steps.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.emergency_stop(Duration::from_secs(5))
        })
    };
    let out = run(&mut s, LoopSettings::default(), &stop, None).await;
    assert_eq!(emergency.await.unwrap(), 1);
    assert_eq!(out.report.end, EpisodeEnd::Interrupted);
    // The handle's stop, then the wind-down's own safe stop.
    assert_eq!(s.safe_stops.load(Ordering::SeqCst), 2);
    // The episode is over: its handle is no longer registered.
    assert_eq!(stop.emergency_stop(Duration::from_secs(1)), 0);
}
