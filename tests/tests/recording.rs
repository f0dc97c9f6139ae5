//! Recording a thor-lite episode to `.rrd`, reading it back with the Python `rerun-sdk`, and
//! opening it in the real viewer under Xvfb.
//!
//! The episode is a scripted walk through the FloorPlan5 kitchen (a training scene) driven the
//! way the event loop drives a world: an `init` observation, then per step the prompt, the
//! policy's decision (a reply with a thought), the parsed action, the world step, the feedback,
//! the timings, the memory size and the running metrics. The Python check compares what it
//! reads against what was sent (`expected.json`, written here).
//!
//! Tools: see `ember_tests::tools` (`EMBER_PYTHON`, `EMBER_RERUN`; under `CI=true` a missing
//! tool fails the test, otherwise it is skipped).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ember_agent::policy::{Decision, DecisionTimings, EpisodeInfo, Feedback, FeedbackKind};
use ember_agent::recorder::{RecordEvent, Recorder, StepTimings};
use ember_agent::recording::{RecordingConfig, RerunRecorder, paths};
use ember_agent::world::WorldInfo;
use ember_agent::{Action, DiscreteAction, Verb};
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::{InitSettings, Simulator};
use ember_tests::thor_obs::observation;
use ember_tests::tools;
use serde_json::{Map, Value, json};

const WIDTH: u32 = 800;
const HEIGHT: u32 = 450;

fn sim_action(name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("action".into(), Value::String(name.into()));
    m
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

/// Records the scripted episode to `path`; returns what was sent.
fn record_episode(path: &Path) -> Expected {
    let config = RecordingConfig::file(path);
    let recorder = RerunRecorder::open(&config, "test-floorplan5").expect("open the recording");
    let settings = InitSettings {
        width: WIDTH,
        height: HEIGHT,
        field_of_view: 90.0,
        render_depth_image: true,
        render_instance_segmentation: true,
        ..InitSettings::default()
    };
    let mut sim = ThorLite::new();
    let episode = EpisodeInfo {
        index: 0,
        id: "FloorPlan5-scripted".into(),
        scene: Some("FloorPlan5".into()),
        instruction: "Walk around the kitchen and pick up something small.".into(),
        task_type: Some("pickup".into()),
        seed: 0,
    };
    recorder.record(RecordEvent::EpisodeStart {
        episode: episode.clone(),
        world: WorldInfo {
            kind: "thor-lite".into(),
            endpoint: "inproc".into(),
            cameras: vec!["front".into()],
        },
    });
    let mut expected = Expected::default();
    let ev = sim
        .reset("FloorPlan5", &settings)
        .expect("FloorPlan5 loads");
    let first = Arc::new(observation(ev, 0));
    recorder.record(RecordEvent::Observation {
        step: 0,
        label: "init".into(),
        observation: first.clone(),
    });
    *expected.images.entry(0).or_default() += 1;

    // Walk; pick up the nearest reachable object as soon as there is one; walk on holding it.
    let walk = [
        "MoveAhead",
        "RotateRight",
        "MoveAhead",
        "LookDown",
        "MoveAhead",
        "RotateLeft",
        "MoveAhead",
        "RotateLeft",
        "MoveAhead",
        "RotateRight",
        "MoveAhead",
        "LookUp",
    ];
    let mut held: Option<String> = None;
    let mut last_meta: ember_agent::thor::Metadata = (*observation_meta(&first)).clone();
    let mut walked = 0usize;
    let mut steps = 0u64;
    while steps < 14 && (held.is_none() || walked < walk.len()) {
        let step = steps;
        steps += 1;
        let target = if held.is_none() {
            last_meta
                .objects
                .iter()
                .filter(|o| o.visible && o.pickupable && o.is_interactable)
                .min_by(|a, b| a.distance.total_cmp(&b.distance))
                .cloned()
        } else {
            None
        };
        let (name, act, text) = match &target {
            Some(o) => {
                let mut a = sim_action("PickupObject");
                a.insert("objectId".into(), Value::String(o.object_id.clone()));
                ("PickupObject", a, format!("pickup {}", o.object_type))
            }
            None => {
                let n = walk[walked % walk.len()];
                walked += 1;
                (n, sim_action(n), n.to_string())
            }
        };
        recorder.record(RecordEvent::Prompt {
            step,
            text: format!("<image> step {step}: what next?"),
        });
        let thought = format!("Step {step}: I should {text} to explore the kitchen.");
        let raw = format!("<Thinking>{thought}</Thinking> {text}");
        recorder.record(RecordEvent::Decision {
            step,
            decision: Decision {
                raw: raw.clone(),
                thought: thought.clone(),
                action: None,
                timings: DecisionTimings {
                    total: 0.5,
                    vision: 0.1,
                    prefill: 0.2,
                    decode: 0.2,
                    prompt_tokens: 100 + 10 * step as usize,
                    generated_tokens: 20,
                },
            },
        });
        expected.thoughts.insert(step, thought);
        expected.replies.insert(step, raw);
        recorder.record(RecordEvent::Action {
            step,
            action: Some(Action::Discrete(match name {
                "MoveAhead" => DiscreteAction::bare(Verb::MoveForward),
                "PickupObject" => {
                    DiscreteAction::on(Verb::Pickup, text.trim_start_matches("pickup "))
                }
                _ => DiscreteAction::bare(Verb::Observe),
            })),
            text: text.clone(),
        });
        let ev = sim.step(&act).expect("a known action");
        let ok = ev.metadata.last_action_success;
        let message = if ok {
            format!("{name} succeeded")
        } else {
            ev.metadata.error_message.clone()
        };
        if ok && name == "PickupObject" {
            held = ev.metadata.held_object_id().map(str::to_string);
        }
        last_meta = ev.metadata.clone();
        recorder.record(RecordEvent::Observation {
            step: step + 1,
            label: text.clone(),
            observation: Arc::new(observation(ev, step + 1)),
        });
        *expected.images.entry(step + 1).or_default() += 1;
        recorder.record(RecordEvent::Feedback {
            step,
            feedback: Feedback {
                success: ok,
                kind: if ok {
                    FeedbackKind::Executed
                } else {
                    FeedbackKind::Failed
                },
                message,
            },
        });
        if !ok {
            expected.feedback_warnings += 1;
        }
        recorder.record(RecordEvent::Timings {
            step,
            timings: StepTimings {
                step: 0.6,
                policy: 0.5,
                world: 0.05,
                executor: 0.01,
                memory: 0.01,
                recorder: 0.001,
            },
        });
        expected.timing_steps.push(step);
        recorder.record(RecordEvent::Memory {
            step,
            images: step as usize + 1,
            tokens: 100 + 10 * step as usize,
        });
        recorder.record(RecordEvent::Metrics {
            step,
            values: vec![
                ("success".into(), if held.is_some() { 1.0 } else { 0.0 }),
                ("efficiency".into(), 1.0 / (step as f64 + 1.0)),
            ],
        });
    }
    recorder.record(RecordEvent::EpisodeEnd {
        episode: 0,
        summary: json!({"success": held.is_some(), "held": held, "steps": steps}),
    });
    recorder.flush().expect("flush");
    let stats = recorder.stats();
    assert_eq!(stats.dropped, 0, "file recordings never drop");
    assert_eq!(stats.queued, 0, "flush waits for the queue");
    recorder.close().expect("close");
    assert!(
        held.is_some(),
        "the script picks something up in FloorPlan5"
    );
    expected
}

fn observation_meta(obs: &ember_agent::Observation) -> Arc<ember_agent::thor::Metadata> {
    obs.sim.clone().expect("thor-lite reports metadata")
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
