//! Recording a thor-lite episode through the real event loop to `.rrd`, reading it back with
//! the Python `rerun-sdk`, and opening it in the real viewer under Xvfb.
//!
//! The episode: `ember_agent::event_loop::run_episode` drives thor-lite (the FloorPlan5
//! kitchen, a training scene, at 800x450 with depth and segmentation) with a small walking
//! harness and a scripted policy that writes a thought and an action per step (streamed in
//! pieces, as a language model does) and picks up the nearest reachable object as soon as
//! there is one. Everything the loop sends goes to the Rerun recorder in file mode. The Python
//! check compares what it reads against what the policy produced (`expected.json`, written
//! here).
//!
//! When the Embodied-Reasoner harness and the bridge's `SimWorld` are on main, the same checks
//! apply unchanged to an ER case run with them (swap `WalkHarness`/`ThorLiteWorld`).
//!
//! Tools: see `ember_tests::tools` (`EMBER_PYTHON`, `EMBER_RERUN`; under `CI=true` a missing
//! tool fails the test, otherwise it is skipped).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use ember_agent::event_loop::{EpisodeEnd, LoopSettings, StopSignal, run_episode, share_policy};
use ember_agent::memory::{Budget, EstimatedTokens, Memory};
use ember_agent::policy::{
    Context, Decision, EpisodeInfo, Feedback, FeedbackKind, Message, Policy, Privileged, Role,
};
use ember_agent::recorder::Recorder;
use ember_agent::recording::{RecordingConfig, RerunRecorder, paths};
use ember_agent::world::{
    Command as WorldCommand, ResetRequest, SimAction, StepOutcome, World, WorldFeedback, WorldInfo,
};
use ember_agent::{Action, DiscreteAction, Harness, HarnessStep, Observation, Verb};
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::{InitSettings, Simulator};
use ember_tests::thor_obs::observation;
use ember_tests::tools;
use serde_json::{Map, Value, json};

const WIDTH: u32 = 800;
const HEIGHT: u32 = 450;
const STEPS: u64 = 12;

/// thor-lite as a `World` (in process).
struct ThorLiteWorld {
    sim: ThorLite,
    settings: InitSettings,
    step: u64,
}

impl World for ThorLiteWorld {
    fn info(&self) -> WorldInfo {
        WorldInfo {
            kind: "thor-lite".into(),
            endpoint: "inproc".into(),
            cameras: vec!["front".into()],
        }
    }
    fn reset(&mut self, r: &ResetRequest) -> ember_agent::Result<Observation> {
        let scene = r.scene.clone().unwrap_or_else(|| "FloorPlan5".into());
        let ev = self
            .sim
            .reset(&scene, &self.settings)
            .map_err(|e| ember_agent::Error::World(e.to_string()))?;
        self.step = 0;
        Ok(observation(ev, 0))
    }
    fn step(&mut self, commands: &[WorldCommand]) -> ember_agent::Result<StepOutcome> {
        let mut last = None;
        for c in commands {
            let WorldCommand::Sim(a) = c else {
                return Err(ember_agent::Error::World(format!(
                    "thor-lite takes simulator actions, not {c:?}"
                )));
            };
            last = Some(
                self.sim
                    .step(&a.0)
                    .map_err(|e| ember_agent::Error::World(e.to_string()))?,
            );
        }
        let ev = last.ok_or_else(|| ember_agent::Error::World("no command".into()))?;
        self.step += 1;
        let feedback = WorldFeedback {
            success: ev.metadata.last_action_success,
            error: ev.metadata.error_message.clone(),
        };
        Ok(StepOutcome {
            observation: observation(ev, self.step),
            feedback,
        })
    }
}

/// Walks the kitchen: the reply's last line is an AI2-THOR action (`MoveAhead`,
/// `PickupObject <objectId>`...). Ends after `STEPS` actions.
struct WalkHarness {
    executed: u64,
    held: Option<String>,
    last: Option<Arc<Observation>>,
}

impl Harness for WalkHarness {
    fn episode(&self) -> EpisodeInfo {
        EpisodeInfo {
            index: 0,
            id: "FloorPlan5-walk".into(),
            scene: Some("FloorPlan5".into()),
            instruction: "Walk around the kitchen and pick up something small.".into(),
            task_type: Some("pickup".into()),
            seed: 0,
        }
    }
    fn start(&mut self, world: &mut dyn World) -> ember_agent::Result<HarnessStep> {
        let o = Arc::new(world.reset(&ResetRequest {
            scene: Some("FloorPlan5".into()),
            seed: 0,
        })?);
        self.last = Some(o.clone());
        Ok(HarnessStep {
            action_text: "init".into(),
            executed: true,
            feedback: Feedback {
                success: true,
                ..Default::default()
            },
            observations: vec![("init".into(), o)],
            messages: vec![
                Message::text(Role::System, "You walk a kitchen."),
                Message::text(Role::User, "Pick up something small."),
            ],
            ..Default::default()
        })
    }
    fn act(
        &mut self,
        decision: &Decision,
        world: &mut dyn World,
    ) -> ember_agent::Result<HarnessStep> {
        let line = decision.raw.lines().last().unwrap_or("").trim().to_string();
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("Pass").to_string();
        let mut act = SimAction::new(&name);
        let mut action = DiscreteAction::bare(Verb::Observe);
        if let Some(id) = words.next() {
            act = act.with("objectId", id);
            action = DiscreteAction::on(Verb::Pickup, ember_agent::thor::object_type_of_id(id));
        } else if name == "MoveAhead" {
            action = DiscreteAction::bare(Verb::MoveForward);
        }
        let out = world.step(&[WorldCommand::Sim(act)])?;
        self.executed += 1;
        if out.feedback.success && name == "PickupObject" {
            self.held = out.observation.proprio.held_object.clone();
        }
        let ok = out.feedback.success;
        let obs = Arc::new(out.observation);
        self.last = Some(obs.clone());
        Ok(HarnessStep {
            action: Some(Action::Discrete(action)),
            action_text: line.clone(),
            feedback: Feedback {
                success: ok,
                kind: if ok {
                    FeedbackKind::Executed
                } else {
                    FeedbackKind::Failed
                },
                message: if ok {
                    format!("{name} succeeded")
                } else {
                    out.feedback.error.clone()
                },
            },
            executed: true,
            observations: vec![(line.clone(), obs)],
            messages: vec![Message::text(
                Role::User,
                format!("After {line}: what next?"),
            )],
            world_time: 0.0,
            record: json!({"action": line, "success": ok}),
        })
    }
    fn is_done(&self) -> bool {
        self.executed >= STEPS
    }
    fn legal_actions(&self) -> Vec<Action> {
        Vec::new()
    }
    fn privileged(&self) -> Option<Privileged> {
        Some(Privileged {
            key_actions: Vec::new(),
            metadata: self.last.as_ref().and_then(|o| o.sim.clone()),
        })
    }
    fn metrics(&self) -> Vec<(String, f64)> {
        vec![
            (
                "success".into(),
                if self.held.is_some() { 1.0 } else { 0.0 },
            ),
            ("efficiency".into(), 1.0 / (self.executed as f64).max(1.0)),
        ]
    }
    fn summary(&self) -> Value {
        json!({"success": self.held.is_some(), "held": self.held, "steps": self.executed})
    }
}

/// What the policy produced at each step: (thought, raw reply).
type Produced = Arc<Mutex<BTreeMap<u64, (String, String)>>>;

/// Walks, and picks up the nearest visible, interactable, pickupable object once it sees one.
struct WalkPolicy {
    walked: usize,
    picked: bool,
    produced: Produced,
}

impl Policy for WalkPolicy {
    fn name(&self) -> &str {
        "walk"
    }
    fn decide(
        &mut self,
        ctx: &Context,
        on_text: &mut dyn FnMut(&str),
    ) -> ember_agent::Result<Decision> {
        // A loop that ends near the start, facing the kitchen again.
        const WALK: [&str; 11] = [
            "MoveAhead",
            "RotateRight",
            "MoveAhead",
            "RotateLeft",
            "LookDown",
            "RotateLeft",
            "RotateLeft",
            "MoveAhead",
            "RotateRight",
            "RotateRight",
            "LookUp",
        ];
        let meta = ctx.privileged.as_ref().and_then(|p| p.metadata.clone());
        let target = meta.as_ref().filter(|_| !self.picked).and_then(|m| {
            m.objects
                .iter()
                .filter(|o| o.visible && o.pickupable && o.is_interactable)
                .min_by(|a, b| a.distance.total_cmp(&b.distance))
                .map(|o| (o.object_type.clone(), o.object_id.clone()))
        });
        let (thought, action) = match target {
            Some((kind, id)) => {
                self.picked = true;
                (
                    format!(
                        "Step {}: a {kind} is within reach; I will pick it up.",
                        ctx.step
                    ),
                    format!("PickupObject {id}"),
                )
            }
            None => {
                let a = WALK[self.walked % WALK.len()];
                self.walked += 1;
                (
                    format!(
                        "Step {}: nothing to take here yet, so {a} to see more of the kitchen.",
                        ctx.step
                    ),
                    a.to_string(),
                )
            }
        };
        let raw = format!("<Thinking>{thought}</Thinking>\n{action}");
        // Stream it in pieces, as a language model does.
        for piece in raw.split_inclusive(' ') {
            on_text(piece);
        }
        self.produced
            .lock()
            .unwrap()
            .insert(ctx.step, (thought.clone(), raw.clone()));
        Ok(Decision {
            raw,
            thought,
            action: None,
            ..Default::default()
        })
    }
}

/// Forwards every event to the Rerun recorder and tallies what the loop sent, so the expected
/// contents do not depend on the harness (an ER case with `observe` sends several frames per
/// step; the tally counts them).
struct Tee {
    inner: Arc<RerunRecorder>,
    sent: Mutex<Expected>,
}

impl Recorder for Tee {
    fn record(&self, event: ember_agent::recorder::RecordEvent) {
        use ember_agent::recorder::RecordEvent as E;
        {
            let mut e = self.sent.lock().unwrap();
            match &event {
                E::Observation {
                    step, observation, ..
                } => {
                    *e.images.entry(*step).or_default() += observation.cameras.len().min(1);
                }
                E::Decision { step, decision } => {
                    e.thoughts.insert(*step, decision.thought.clone());
                    e.replies.insert(*step, decision.raw.clone());
                }
                E::Feedback { feedback, .. }
                    if !(feedback.success && feedback.kind == FeedbackKind::Executed) =>
                {
                    e.feedback_warnings += 1;
                }
                E::Timings { step, .. } => e.timing_steps.push(*step),
                _ => {}
            }
        }
        self.inner.record(event);
    }
    fn flush(&self) -> ember_agent::Result<()> {
        self.inner.flush()
    }
    fn stats(&self) -> ember_agent::recorder::RecorderStats {
        self.inner.stats()
    }
}

/// What the recording must contain, for the Python check.
#[derive(Default)]
struct Expected {
    thoughts: BTreeMap<u64, String>,
    replies: BTreeMap<u64, String>,
    images: BTreeMap<u64, usize>,
    timing_steps: Vec<u64>,
    feedback_warnings: usize,
}

/// Runs the episode through the event loop, recording to `path`; returns what was sent.
fn record_episode(path: &Path) -> Expected {
    let rerun = Arc::new(
        RerunRecorder::open(&RecordingConfig::file(path), "test-floorplan5")
            .expect("open the recording"),
    );
    let recorder = Arc::new(Tee {
        inner: rerun.clone(),
        sent: Mutex::default(),
    });
    let world = ThorLiteWorld {
        sim: ThorLite::new(),
        settings: InitSettings {
            width: WIDTH,
            height: HEIGHT,
            field_of_view: 90.0,
            render_depth_image: true,
            render_instance_segmentation: true,
            ..InitSettings::default()
        },
        step: 0,
    };
    let produced: Produced = Arc::default();
    let policy = share_policy(Box::new(WalkPolicy {
        walked: 0,
        picked: false,
        produced: produced.clone(),
    }));
    let memory = Memory::new(Budget::default(), Arc::new(EstimatedTokens), None);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let outcome = rt.block_on(run_episode(
        Box::new(world),
        Box::new(WalkHarness {
            executed: 0,
            held: None,
            last: None,
        }),
        policy,
        memory,
        recorder.clone(),
        &LoopSettings::default(),
        &StopSignal::new(),
    ));
    assert_eq!(
        outcome.report.end,
        EpisodeEnd::Completed,
        "{:?}",
        outcome.report
    );
    assert_eq!(
        outcome.report.summary["success"], true,
        "the walk picks something up in FloorPlan5"
    );
    let stats = recorder.stats();
    assert_eq!(stats.dropped, 0, "file recordings never drop");
    assert_eq!(
        stats.queued, 0,
        "the loop flushes the recorder at the end of the episode"
    );
    rerun.close().expect("close");

    let sent = std::mem::take(&mut *recorder.sent.lock().unwrap());
    // The thought and reply the loop recorded at step k are what the policy produced at step k.
    let produced = produced.lock().unwrap().clone();
    assert_eq!(produced.len() as u64, STEPS);
    for (step, (thought, raw)) in &produced {
        assert_eq!(sent.thoughts.get(step), Some(thought), "step {step}");
        assert_eq!(sent.replies.get(step), Some(raw), "step {step}");
    }
    // One frame after the reset (step 0) and at least one per action.
    assert_eq!(
        sent.images.keys().copied().collect::<Vec<_>>(),
        (0..=STEPS).collect::<Vec<_>>()
    );
    sent
}

fn expected_json(e: &Expected) -> Value {
    let camera = "front";
    json!({
        "entities": [
            paths::camera(camera),
            paths::camera_image(camera),
            paths::camera_layer(camera, "rgb"),
            paths::camera_layer(camera, "depth"),
            paths::camera_layer(camera, "segmentation"),
            paths::AGENT,
            paths::AGENT_BODY,
            paths::TRAJECTORY,
            paths::OBJECTS_VISIBLE,
            paths::OBJECTS_OTHER,
            paths::OBJECTS_HELD,
            paths::THOUGHT,
            paths::REPLY,
            paths::PROMPT,
            paths::LOG_ACTION,
            paths::LOG_FEEDBACK,
            paths::LOG_REPLY,
            paths::EPISODE,
            paths::EPISODE_SUMMARY,
            "timings/step", "timings/policy", "timings/world", "timings/executor",
            "timings/memory", "timings/recorder",
            "memory/images", "memory/tokens", "metrics/success", "metrics/efficiency",
        ],
        "camera": {
            "rgb": paths::camera_layer(camera, "rgb"),
            "depth": paths::camera_layer(camera, "depth"),
            "segmentation": paths::camera_layer(camera, "segmentation"),
            "pinhole": paths::camera_image(camera),
            "width": WIDTH,
            "height": HEIGHT,
        },
        "images_per_step": e.images.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
        "thoughts": e.thoughts.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
        "replies": e.replies.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
        "thought_path": paths::THOUGHT,
        "reply_path": paths::REPLY,
        "timing_paths": ["timings/step", "timings/policy", "timings/world", "timings/executor", "timings/recorder"],
        "timing_steps": e.timing_steps,
        "feedback_path": paths::LOG_FEEDBACK,
        "feedback_warnings": e.feedback_warnings,
        "step_timeline": paths::TIMELINE_STEP,
    })
}

fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("could not run {cmd:?}: {e}")),
    }
}

#[test]
fn thor_lite_episode_reads_back_and_opens_in_the_viewer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rrd = dir.path().join("episode.rrd");
    let expected = record_episode(&rrd);
    let size = std::fs::metadata(&rrd).expect("the .rrd exists").len();
    if let Some(keep) = std::env::var_os("EMBER_TEST_RRD_OUT") {
        std::fs::copy(&rrd, &keep).expect("copy the recording to EMBER_TEST_RRD_OUT");
    }
    assert!(
        size > 100_000,
        "an episode with 9 frames is more than {size} bytes"
    );

    let Some(python) = tools::python() else {
        return;
    };
    let exp_path = dir.path().join("expected.json");
    std::fs::write(
        &exp_path,
        serde_json::to_string_pretty(&expected_json(&expected)).unwrap(),
    )
    .expect("write expected.json");
    let root = tools::repo_root();
    let (ok, out) = run(Command::new(&python)
        .arg(root.join("tests/python/check_rrd.py"))
        .arg(&rrd)
        .arg(&exp_path));
    println!("{out}");
    assert!(ok, "read-back check failed:\n{out}");

    let Some(viewer) = tools::rerun(Some(&python)) else {
        return;
    };
    for (tool, package) in [
        ("Xvfb", "xvfb"),
        ("xdpyinfo", "x11-utils"),
        ("xdotool", "xdotool"),
        ("convert", "imagemagick"),
    ] {
        if !tools::on_path(tool) {
            tools::missing::<()>(&format!(
                "`{tool}` is not installed (apt-get install {package})"
            ));
            return;
        }
    }
    let shot = std::env::var_os("EMBER_SCREENSHOT_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("viewer.png"));
    let (ok, out) = run(Command::new(&python)
        .arg(root.join("tests/python/screenshot.py"))
        .arg(&rrd)
        .arg(&shot)
        .env("EMBER_RERUN", &viewer));
    println!("{out}");
    assert!(ok, "viewer screenshot check failed:\n{out}");
}
