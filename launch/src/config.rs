//! The launch-file schema: what a launch file may say, with defaults and validation.
//!
//! ```toml
//! include = ["base.toml"]          # optional; later files and --set override earlier ones
//! name = "demo"
//!
//! [world]                          # where the agent acts
//! kind = "thor-lite"               # thor-lite (in process) | bridge (a server at `endpoint`)
//! endpoint = "tcp://127.0.0.1:5555"
//! width = 800
//! height = 450
//! fov = 90.0                       # vertical field of view, degrees (AI2-THOR's meaning)
//!
//! [world.fault]                    # optional: fail on purpose, to test failure reporting
//! kind = "panic"                   # panic | error
//! during = "reset"                 # reset | step (`step = N`: the N-th step)
//! episode = "1234"                 # only this case; scene = "FloorPlanN": only that scene
//!
//! [policy]
//! kind = "oracle"                  # oracle | random | replay | vlm
//!
//! [task]                           # what the episodes are
//! kind = "er"                      # Embodied-Reasoner benchmark cases
//! cases = "../tests/data/er-cases-sample.json"
//!
//! [memory]                         # budget of the model's context
//! max_images = 0                   # 0 = unlimited
//!
//! [recording]                      # Rerun (see docs/recording.md)
//! mode = "file"                    # off | file | spawn | connect
//! path = "../runs/demo/demo.rrd"   # file mode; default: <run.out_dir>/<name>.rrd
//!
//! [run]
//! out_dir = "../runs/demo"
//! ```

use std::path::PathBuf;

use ember_agent::event_loop::LoopSettings;
use ember_agent::recording::RecordingConfig;
use serde::{Deserialize, Serialize};

use crate::launch_file::{LaunchError, Layered};

/// Which world to run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorldKind {
    /// thor-lite in this process (no socket).
    ThorLite,
    /// A simulator server speaking the bridge protocol at `endpoint` (thor-lite served by
    /// `ember sim serve`, or real AI2-THOR behind `thor_bridge.py`).
    Bridge,
}

/// `[world]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// Which world.
    pub kind: WorldKind,
    /// The server endpoint for `bridge` (tcp://host:port or ipc://path).
    pub endpoint: Option<String>,
    /// Frame width, pixels.
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
    /// Vertical field of view, degrees.
    pub fov: f64,
    /// Distance within which objects count as visible, metres.
    pub visibility_distance: f64,
    /// Grid step of moves, metres.
    pub grid_size: f64,
    /// Also render depth.
    pub render_depth: bool,
    /// Also render instance segmentation.
    pub render_segmentation: bool,
    /// Request timeout for bridge worlds, seconds.
    pub timeout_s: f64,
    /// A fault to inject (testing that failures are reported); none by default.
    pub fault: Option<ember_agent::faults::FaultPlan>,
}

impl Default for WorldConfig {
    fn default() -> Self {
        // The Embodied-Reasoner benchmark's settings.
        Self {
            kind: WorldKind::ThorLite,
            endpoint: None,
            width: 800,
            height: 450,
            fov: 90.0,
            visibility_distance: 20.0,
            grid_size: 0.1,
            render_depth: true,
            render_segmentation: true,
            timeout_s: 30.0,
            fault: None,
        }
    }
}

/// Which policy decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Executes the case's key actions (privileged).
    Oracle,
    /// Uniform over legal actions, seeded.
    Random,
    /// Re-emits the replies of episode logs.
    Replay,
    /// A Qwen2-VL / Qwen2.5-VL checkpoint.
    Vlm,
}

/// `[policy]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Which policy.
    pub kind: PolicyKind,
    /// Seed (random policy, sampling).
    pub seed: u64,
    /// `replay`: an episode log, or a directory of `<case id>.jsonl` logs.
    pub log: Option<PathBuf>,
    /// `vlm`: the checkpoint directory (Hub format).
    pub model: Option<PathBuf>,
    /// `vlm`: `cpu` or `wgpu`.
    pub device: String,
    /// `vlm`: generation settings.
    pub max_new_tokens: usize,
    /// `vlm`: sampling temperature (0 = greedy).
    pub temperature: f64,
    /// `vlm`: top-k (0 = off).
    pub top_k: usize,
    /// `vlm`: top-p (1 = off).
    pub top_p: f64,
    /// `vlm`: repetition penalty (1 = off).
    pub repetition_penalty: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            kind: PolicyKind::Oracle,
            seed: 0,
            log: None,
            model: None,
            device: "cpu".into(),
            max_new_tokens: 1024,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
        }
    }
}

/// Which kind of task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Embodied-Reasoner benchmark cases.
    Er,
}

/// Rules mode of the Embodied-Reasoner harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErModeConfig {
    /// Reproduces the reference harness, quirks included.
    ErCompat,
    /// Fixes the quirks (no success without `end`, instance-level objects).
    Strict,
}

/// `[task]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// Which kind of task.
    pub kind: TaskKind,
    /// The cases file (the benchmark's JSON list).
    pub cases: Option<PathBuf>,
    /// Which case identities `ember run` runs (empty: the first `run.episodes` cases).
    pub identities: Vec<u64>,
    /// Rules mode.
    pub mode: ErModeConfig,
    /// Use the `put in <object>` prompt variant (API-model prompts) instead of `put`.
    pub put_in_prompt: bool,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            kind: TaskKind::Er,
            cases: None,
            identities: Vec::new(),
            mode: ErModeConfig::ErCompat,
            put_in_prompt: false,
        }
    }
}

/// `[memory]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Most images in the context (0 = unlimited; the first image always stays).
    pub max_images: usize,
    /// Most tokens in the context (0 = unlimited).
    pub max_tokens: usize,
    /// Write an episode log per episode under `run.out_dir/episodes/`.
    pub episode_logs: bool,
}

/// `[run]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Episodes `ember run` runs (default: every selected case).
    pub episodes: Option<usize>,
    /// The run seed.
    pub seed: u64,
    /// Where outputs go (episode logs, recordings, results).
    pub out_dir: PathBuf,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            episodes: None,
            seed: 0,
            out_dir: PathBuf::from("runs/ember"),
        }
    }
}

/// A whole launch file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaunchConfig {
    /// A name for the run.
    pub name: Option<String>,
    /// `[world]`.
    pub world: WorldConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[task]`.
    pub task: TaskConfig,
    /// `[memory]`.
    pub memory: MemoryConfig,
    /// `[loop]`: the event loop's own settings.
    #[serde(rename = "loop")]
    pub event_loop: LoopSettings,
    /// `[recording]`: the Rerun recording of every step.
    pub recording: RecordingConfig,
    /// `[run]`.
    pub run: RunConfig,
}

impl LaunchConfig {
    /// The run's name: `name`, or else the launch file's stem.
    pub fn run_name(&self, launch_file: &std::path::Path) -> String {
        self.name.clone().unwrap_or_else(|| {
            launch_file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "ember".into())
        })
    }
}

/// A loaded, validated launch file with paths resolved.
#[derive(Debug)]
pub struct Launch {
    /// The configuration.
    pub config: LaunchConfig,
    /// The merged layers, for origins in later errors.
    pub layers: Layered,
}

fn field_error(layers: &Layered, field: &str, message: impl Into<String>) -> LaunchError {
    LaunchError::Field {
        origin: layers.origin_text(field),
        field: field.into(),
        message: message.into(),
    }
}

impl Launch {
    /// Loads a launch file, applies overrides, resolves paths and validates.
    pub fn load(path: &std::path::Path, overrides: &[String]) -> Result<Self, LaunchError> {
        let mut layers = Layered::load(path)?;
        for o in overrides {
            layers.set(o)?;
        }
        let mut config: LaunchConfig = layers.deserialize()?;
        let resolve = |key: &str, p: &mut Option<PathBuf>| {
            if let Some(v) = p.as_mut() {
                *v = layers.resolve_path(key, v);
            }
        };
        resolve("task.cases", &mut config.task.cases);
        resolve("policy.log", &mut config.policy.log);
        resolve("policy.model", &mut config.policy.model);
        resolve("recording.path", &mut config.recording.path);
        resolve("recording.viewer", &mut config.recording.viewer);
        config.run.out_dir = layers.resolve_path("run.out_dir", &config.run.out_dir);
        let launch = Self { config, layers };
        launch.validate()?;
        Ok(launch)
    }

    /// An error about a field, naming where it was set.
    pub fn field_error(&self, field: &str, message: impl Into<String>) -> LaunchError {
        field_error(&self.layers, field, message)
    }

    fn validate(&self) -> Result<(), LaunchError> {
        let c = &self.config;
        let w = &c.world;
        let require = |ok: bool, field: &str, message: &str| -> Result<(), LaunchError> {
            if ok {
                Ok(())
            } else {
                Err(self.field_error(field, message))
            }
        };
        let positive = |x: f64| x.is_finite() && x > 0.0;
        require(
            (1..=4096).contains(&w.width),
            "world.width",
            "must be between 1 and 4096 pixels",
        )?;
        require(
            (1..=4096).contains(&w.height),
            "world.height",
            "must be between 1 and 4096 pixels",
        )?;
        require(
            positive(w.fov) && w.fov < 180.0,
            "world.fov",
            "must be between 0 and 180 degrees",
        )?;
        require(
            positive(w.visibility_distance),
            "world.visibility_distance",
            "must be positive",
        )?;
        require(
            positive(w.grid_size) && w.grid_size <= 1.0,
            "world.grid_size",
            "must be in (0, 1] metres",
        )?;
        require(positive(w.timeout_s), "world.timeout_s", "must be positive")?;
        match (w.kind, &w.endpoint) {
            (WorldKind::Bridge, None) => {
                return Err(self.field_error(
                    "world.endpoint",
                    "a bridge world needs an endpoint, e.g. tcp://127.0.0.1:5555",
                ));
            }
            (WorldKind::Bridge, Some(e))
                if !(e.starts_with("tcp://")
                    || e.starts_with("ipc://")
                    || e.starts_with("inproc://")) =>
            {
                return Err(self.field_error(
                    "world.endpoint",
                    format!("'{e}' is not a tcp://, ipc:// or inproc:// endpoint"),
                ));
            }
            _ => {}
        }
        let p = &c.policy;
        match p.kind {
            PolicyKind::Replay => match &p.log {
                None => {
                    return Err(self.field_error(
                        "policy.log",
                        "a replay policy needs `log`, an episode log or a directory of them",
                    ));
                }
                Some(l) if !l.exists() => {
                    return Err(
                        self.field_error("policy.log", format!("{} does not exist", l.display()))
                    );
                }
                _ => {}
            },
            PolicyKind::Vlm => match &p.model {
                None => {
                    return Err(self.field_error(
                        "policy.model",
                        "a vlm policy needs `model`, a checkpoint directory",
                    ));
                }
                Some(m) if !m.join("config.json").exists() => {
                    return Err(self.field_error(
                        "policy.model",
                        format!(
                            "{} is not a checkpoint directory (no config.json)",
                            m.display()
                        ),
                    ));
                }
                _ => {}
            },
            _ => {}
        }
        if p.device != "cpu" && p.device != "wgpu" {
            return Err(self.field_error("policy.device", "must be \"cpu\" or \"wgpu\""));
        }
        require(
            p.temperature.is_finite() && p.temperature >= 0.0,
            "policy.temperature",
            "must be >= 0 (0 = greedy)",
        )?;
        require(
            positive(p.top_p) && p.top_p <= 1.0,
            "policy.top_p",
            "must be in (0, 1]",
        )?;
        require(
            positive(p.repetition_penalty),
            "policy.repetition_penalty",
            "must be positive (1 = off)",
        )?;
        if let Some(cases) = c.task.cases.as_ref().filter(|p| !p.is_file()) {
            return Err(
                self.field_error("task.cases", format!("{} is not a file", cases.display()))
            );
        }
        if let Err(e) = c.recording.validate() {
            return Err(self.field_error("recording", e.to_string()));
        }
        let t = c.event_loop.decision_timeout_s;
        require(
            t.is_finite() && t >= 0.0,
            "loop.decision_timeout_s",
            "must be >= 0 (0 = no timeout)",
        )?;
        require(
            c.event_loop.max_calls > 0,
            "loop.max_calls",
            "must be at least 1",
        )?;
        let g = c.event_loop.cancel_grace_s;
        require(
            g.is_finite() && g >= 0.0,
            "loop.cancel_grace_s",
            "must be >= 0 seconds",
        )?;
        Ok(())
    }
}
