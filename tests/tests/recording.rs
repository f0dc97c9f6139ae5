//! Recording an Embodied-Reasoner episode on thor-lite through the real event loop to `.rrd`,
//! reading it back with the Python `rerun-sdk`, and opening it in the real viewer under Xvfb.
//!
//! The episode: `ember_agent::event_loop::run_episode` runs the ER harness on a sample case in
//! the FloorPlan5 kitchen (a training scene; "Could you get me an Apple?") with the built-in
//! oracle policy, on thor-lite in process through the bridge's `SimWorld` at 800x450 with depth
//! and instance segmentation. Everything the loop sends goes to the Rerun recorder in file
//! mode. A tee records what was sent; the Python check (`tests/python/check_rrd.py`) compares
//! the file against it (`expected.json`, written here), and the test checks that what was sent
//! is what the policy produced.
//!
//! Tools: see `ember_tests::tools` (`EMBER_PYTHON`, `EMBER_RERUN`; under `CI=true` a missing
//! tool fails the test, otherwise it is skipped). `EMBER_TEST_RRD_OUT=FILE` keeps the recording
//! and `EMBER_SCREENSHOT_OUT=PNG` the screenshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use ember_agent::er::cases::load_cases;
use ember_agent::er::{ErHarness, Mode, PromptVariant, sim_settings};
use ember_agent::event_loop::{EpisodeEnd, LoopSettings, StopSignal, run_episode, share_policy};
use ember_agent::memory::{Budget, EstimatedTokens, Memory};
use ember_agent::policies::OraclePolicy;
use ember_agent::policy::{Context, Decision, FeedbackKind};
use ember_agent::recorder::Recorder;
use ember_agent::recording::{RecordingConfig, RerunRecorder, paths};
use ember_sim_bridge::InitSettings;
use ember_sim_bridge::world::{SimWorld, SimWorldConfig};
use ember_tests::tools;
use ember_tests::watched::Watched;
use serde_json::{Map, Value, json};

const WIDTH: u32 = sim_settings::WIDTH;
const HEIGHT: u32 = sim_settings::HEIGHT;
/// "Could you get me an Apple?" in FloorPlan5.
const CASE: &str = "2";

/// What the policy produced at each step: (thought, raw reply).
type Produced = Arc<Mutex<BTreeMap<u64, (String, String)>>>;

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
                E::Metrics { values, .. } => {
                    e.metrics
                        .extend(values.iter().map(|(name, _)| paths::part(name)));
                }
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
    metrics: std::collections::BTreeSet<String>,
}

/// Runs the episode through the event loop, recording to `path`; returns what was sent.
fn record_episode(path: &Path) -> Expected {
    let rerun = Arc::new(
        RerunRecorder::open(&RecordingConfig::file(path), "test-er-floorplan5")
            .expect("open the recording"),
    );
    let recorder = Arc::new(Tee {
        inner: rerun.clone(),
        sent: Mutex::default(),
    });
    let settings = InitSettings {
        width: WIDTH,
        height: HEIGHT,
        field_of_view: sim_settings::FIELD_OF_VIEW,
        grid_size: sim_settings::GRID_SIZE,
        visibility_distance: sim_settings::VISIBILITY_DISTANCE,
        snap_to_grid: false,
        render_depth_image: true,
        render_instance_segmentation: true,
        ..InitSettings::default()
    };
    let world = SimWorld::connect(SimWorldConfig {
        settings,
        ..SimWorldConfig::default()
    })
    .expect("thor-lite in process");
    let cases = load_cases(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/er-cases-sample.json"
    ))
    .expect("the sample cases");
    let case = cases
        .into_iter()
        .find(|c| c.identity.to_string() == CASE)
        .expect("case 2");
    let harness =
        ErHarness::new(case, Mode::ErCompat, PromptVariant::Put, 3).with_policy_name("oracle");
    let produced: Produced = Arc::default();
    let keep = produced.clone();
    let policy = share_policy(Box::new(Watched {
        inner: Box::new(OraclePolicy::new()),
        watch: move |ctx: &Context, d: &ember_agent::Result<Decision>| {
            if let Ok(d) = d {
                keep.lock()
                    .unwrap()
                    .insert(ctx.step, (d.thought.clone(), d.raw.clone()));
            }
        },
    }));
    let memory = Memory::new(Budget::default(), Arc::new(EstimatedTokens), None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = rt.block_on(run_episode(
        Box::new(world),
        Box::new(harness),
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
    assert!(produced.len() >= 3, "a short episode: {produced:?}");
    assert_eq!(sent.thoughts.len(), produced.len());
    for (step, (thought, raw)) in &produced {
        assert_eq!(sent.thoughts.get(step), Some(thought), "step {step}");
        assert_eq!(sent.replies.get(step), Some(raw), "step {step}");
    }
    // The reset's frame at step 0, and a frame after every action but the last (`end` does
    // not move the world).
    assert!(
        sent.images.get(&0).copied().unwrap_or(0) >= 1,
        "no frame after the reset"
    );
    let last = produced.keys().max().copied().unwrap_or(0);
    for step in produced.keys().filter(|&&k| k != last) {
        assert!(
            sent.images.get(step).copied().unwrap_or(0) >= 1,
            "no frame at step {step}"
        );
    }
    sent
}

fn expected_json(e: &Expected) -> Value {
    let camera = "front";
    let mut v = json!({
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
            "memory/images", "memory/tokens",
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
    });
    if let Some(entities) = v["entities"].as_array_mut() {
        entities.extend(
            e.metrics
                .iter()
                .map(|m| json!(format!("{}/{m}", paths::METRICS))),
        );
    }
    v
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
