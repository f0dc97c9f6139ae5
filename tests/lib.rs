//! ember-tests: cross-crate integration tests (whole episodes, the bridge, recordings) and the
//! small helpers they share.
//!
//! Module map:
//! - [`tools`]: finding the external tools some tests use (Python with `rerun-sdk`, the Rerun
//!   viewer, Xvfb), failing under CI when one is missing and skipping otherwise.
//! - [`er_world`]: in-process thor-lite with the Embodied-Reasoner benchmark's camera settings,
//!   and the committed sample cases.
//! - [`vlm`]: the tiny committed Qwen2-VL checkpoint, ready to run as a policy.
//! - [`watched`]: a policy wrapper that shows a test each context and decision.

pub mod tools {
    //! External tools for the recording tests.
    //!
    //! `EMBER_PYTHON` names a Python with `rerun-sdk==0.36.3` (default: `python3` on the PATH);
    //! `EMBER_RERUN` the viewer (default: `rerun` next to that Python, then `rerun` on the PATH).
    //! When `CI=true`, a missing tool fails the test; otherwise the test prints
    //! `SKIPPED: <test>: <reason>` and passes.

    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Whether we run under CI (`CI=true`).
    pub fn in_ci() -> bool {
        std::env::var("CI")
            .map(|v| v == "true" || v == "1")
            .unwrap_or(false)
    }

    /// Reports a missing tool: panics under CI, prints `SKIPPED: <test>: <what>` and returns
    /// `None` otherwise. The line goes straight to stderr, past the test harness's output
    /// capture (which hides `eprintln!` from passing tests), so a plain `cargo test` shows it.
    pub fn missing<T>(what: &str) -> Option<T> {
        if in_ci() {
            panic!("CI=true and {what}");
        }
        use std::io::Write;
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {what}");
        None
    }

    fn runs(cmd: &Path, args: &[&str]) -> bool {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// A Python interpreter that can `import rerun` (version 0.36.3).
    pub fn python() -> Option<PathBuf> {
        let candidates: Vec<PathBuf> = match std::env::var_os("EMBER_PYTHON") {
            Some(p) => vec![PathBuf::from(p)],
            None => vec![PathBuf::from("python3")],
        };
        let check = "import rerun, sys; sys.exit(0 if rerun.__version__ == '0.36.3' else 3)";
        for c in &candidates {
            if runs(c, &["-c", check]) {
                return Some(c.clone());
            }
        }
        missing(&format!(
            "no Python with rerun-sdk==0.36.3 (tried {candidates:?}; set EMBER_PYTHON)"
        ))
    }

    /// The Rerun viewer executable.
    pub fn rerun(python: Option<&Path>) -> Option<PathBuf> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("EMBER_RERUN") {
            candidates.push(PathBuf::from(p));
        } else {
            if let Some(dir) = python.and_then(Path::parent) {
                candidates.push(dir.join("rerun"));
            }
            candidates.push(PathBuf::from("rerun"));
        }
        for c in &candidates {
            if runs(c, &["--version"]) {
                return Some(c.clone());
            }
        }
        missing(&format!(
            "no Rerun viewer (tried {candidates:?}; set EMBER_RERUN)"
        ))
    }

    /// Whether a program is on the PATH (Xvfb, import...).
    pub fn on_path(program: &str) -> bool {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
            .unwrap_or(false)
    }

    /// The repository root (for the scripts under `tests/python`).
    pub fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

pub mod er_world {
    //! In-process thor-lite set up as the Embodied-Reasoner benchmark sets up AI2-THOR.

    use ember_agent::er::sim_settings;
    use ember_sim_bridge::InitSettings;
    use ember_sim_bridge::world::{SimWorld, SimWorldConfig};

    /// The benchmark's simulator settings (frame size, field of view, grid, visibility).
    pub fn settings() -> InitSettings {
        InitSettings {
            width: sim_settings::WIDTH,
            height: sim_settings::HEIGHT,
            field_of_view: sim_settings::FIELD_OF_VIEW,
            grid_size: sim_settings::GRID_SIZE,
            visibility_distance: sim_settings::VISIBILITY_DISTANCE,
            snap_to_grid: false,
            ..InitSettings::default()
        }
    }

    /// The case with `identity` from the committed sample (`tests/data/er-cases-sample.json`).
    pub fn sample_case(identity: &str) -> ember_agent::er::cases::Case {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/er-cases-sample.json");
        ember_agent::er::cases::load_cases(path)
            .expect("the committed sample loads")
            .into_iter()
            .find(|c| c.identity.to_string() == identity)
            .unwrap_or_else(|| panic!("no case {identity} in {path}"))
    }

    /// thor-lite in this process with [`settings`].
    pub fn world() -> SimWorld {
        SimWorld::connect(SimWorldConfig {
            settings: settings(),
            ..SimWorldConfig::default()
        })
        .expect("thor-lite in process")
    }
}

pub mod vlm {
    //! The tiny Qwen2-VL checkpoint (`models/fixtures/qwen2-vl-tiny`) with a byte-level
    //! tokenizer built here (one token per byte, the Qwen special tokens at the ids its
    //! config.json names): a real model on the real code path, whose replies are noise.

    use std::path::PathBuf;

    use ember_models::chat::ChatTemplate;
    use ember_models::config::{GenerationDefaults, PreprocessorConfig};
    use ember_models::tokenizer::{byte_level, qwen_specials};
    use ember_models::{BackendKind, Precision, QwenVl, Vlm, runtime};

    /// The checkpoint directory.
    pub fn checkpoint() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/fixtures/qwen2-vl-tiny")
    }

    /// The tiny model, on the CPU, in f32.
    pub fn tiny_vlm() -> Vlm {
        let dir = checkpoint();
        let model = QwenVl::load(&dir, runtime(BackendKind::Cpu, Precision::F32).unwrap()).unwrap();
        Vlm::assemble(
            model,
            byte_level(&qwen_specials(400)).unwrap(),
            ChatTemplate::from_dir(&dir).unwrap(),
            PreprocessorConfig::from_dir(&dir).unwrap(),
            GenerationDefaults::default(),
            &dir,
        )
        .unwrap()
    }
}

pub mod watched {
    //! A policy wrapper for tests: delegates everything (privileged opt-in included) to a
    //! real policy and shows each context, and the decision made in it, to a callback.

    use ember_agent::policy::{Context, Decision, EpisodeInfo, Policy};

    /// Delegates to `inner`; calls `watch` after each decision with its context and result.
    pub struct Watched<F> {
        /// The real policy.
        pub inner: Box<dyn Policy>,
        /// Sees each context and the decision's result.
        pub watch: F,
    }

    impl<F> Policy for Watched<F>
    where
        F: FnMut(&Context, &ember_agent::Result<Decision>) + Send,
    {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn needs_privileged(&self) -> bool {
            self.inner.needs_privileged()
        }
        fn reset(&mut self, episode: &EpisodeInfo) -> ember_agent::Result<()> {
            self.inner.reset(episode)
        }
        fn decide(
            &mut self,
            ctx: &Context,
            on_text: &mut dyn FnMut(&str),
        ) -> ember_agent::Result<Decision> {
            let d = self.inner.decide(ctx, on_text);
            (self.watch)(ctx, &d);
            d
        }
    }
}
