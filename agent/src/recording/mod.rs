//! Recording every step to Rerun: the sinks, the recorder thread, and what is logged where.
//!
//! - [`RecordingConfig`]: the `[recording]` table of a launch file (mode, path or URL, queue
//!   bounds, what to record), and [`open_recorder`] which turns it into a [`Recorder`].
//! - [`RerunRecorder`]: the Rerun recorder. `record` puts the event on a bounded queue
//!   ([`queue`]) and returns; a dedicated thread turns events into Rerun archetypes
//!   ([`log`]) on the timelines `step`, `episode` (and `sim_time`, `frame`). Files never drop
//!   events (`record` waits when the queue is full; the event loop calls it from a forwarding
//!   thread, never from its async worker); live viewers drop the oldest camera frames
//!   and count them.
//! - [`file_sink`]: the `.rrd` writer (synchronous encoding, so memory stays bounded).
//! - [`frames`]: coordinate conventions (AI2-THOR's left-handed y-up world made right-handed and
//!   z up; optical camera frames), so images and 3-D boxes line up in the viewer.
//! - [`layout`]: the default viewer layout (a Rerun blueprint).
//! - [`paths`]: the entity paths, in one place (the tests and the README use them).

#[cfg(feature = "rerun")]
pub mod file_sink;
pub mod frames;
#[cfg(feature = "rerun")]
pub mod layout;
#[cfg(feature = "rerun")]
pub mod log;
pub mod paths;
pub mod queue;
#[cfg(feature = "rerun")]
mod rerun_recorder;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[cfg(feature = "rerun")]
pub use rerun_recorder::{RecorderThreadStats, RerunRecorder};

use crate::error::{Error, Result};
use crate::recorder::{NullRecorder, Recorder};

/// Where the recording goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Record nothing.
    #[default]
    Off,
    /// Save to an `.rrd` file (never drops).
    File,
    /// Start a Rerun viewer and stream to it (drops old frames when it lags).
    Spawn,
    /// Stream to a running viewer at a gRPC URL (drops old frames when it lags).
    Connect,
}

impl RecordingMode {
    /// Whether the sink is a live viewer (and so may drop frames).
    pub fn is_live(&self) -> bool {
        matches!(self, RecordingMode::Spawn | RecordingMode::Connect)
    }
}

/// The default gRPC URL of a local viewer.
pub const DEFAULT_VIEWER_URL: &str = "rerun+http://127.0.0.1:9876/proxy";

/// The `[recording]` table of a launch file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// `off`, `file`, `spawn` or `connect`.
    pub mode: RecordingMode,
    /// The `.rrd` file (mode `file`).
    pub path: Option<PathBuf>,
    /// The viewer's gRPC URL (mode `connect`; default [`DEFAULT_VIEWER_URL`]).
    pub url: Option<String>,
    /// The viewer executable to start (mode `spawn`; default `rerun` on the `PATH`).
    pub viewer: Option<PathBuf>,
    /// The port the spawned viewer listens on (mode `spawn`).
    pub port: u16,
    /// At most this many events wait for the recorder thread.
    pub queue_capacity: usize,
    /// At most this many camera observations wait for the recorder thread (they hold images).
    pub max_queued_frames: usize,
    /// Record depth images.
    pub depth: bool,
    /// Record segmentation images.
    pub segmentation: bool,
    /// Record the scene's objects as 3-D boxes (from simulator metadata).
    pub objects: bool,
    /// Record the prompt text sent to the policy each step.
    pub prompt: bool,
    /// Record the reply while it is being written (default: on for live viewers, off for
    /// files).
    pub partial_replies: Option<bool>,
    /// Compress colour images as JPEG with this quality (1-100); default: lossless.
    pub jpeg_quality: Option<u8>,
    /// The Rerun application id (recordings of one application share a viewer layout).
    pub application_id: String,
    /// The recording id; default: the run's name, so the same run records under the same id.
    pub recording_id: Option<String>,
    /// Seconds `flush` waits for a live viewer before giving up.
    pub flush_timeout: f64,
    /// Write the `.rrd` footer (an index of every chunk, for random access in large files).
    /// Rerun keeps that index in memory until the file is closed, about ten kilobytes per chunk
    /// (several chunks per step), so it is off by default; `rerun rrd optimize` adds it to a
    /// finished file.
    pub footer: bool,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            mode: RecordingMode::Off,
            path: None,
            url: None,
            viewer: None,
            port: 9876,
            queue_capacity: 1024,
            max_queued_frames: 8,
            depth: true,
            segmentation: true,
            objects: true,
            prompt: true,
            partial_replies: None,
            jpeg_quality: None,
            application_id: "ember".to_string(),
            recording_id: None,
            flush_timeout: 10.0,
            footer: false,
        }
    }
}

impl RecordingConfig {
    /// A file recording to `path` with default settings.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            mode: RecordingMode::File,
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Fills `path` when the mode is `file` and the launch file left it out (say with
    /// `<run.out_dir>/<name>.rrd`).
    pub fn with_default_path(mut self, default: impl Into<PathBuf>) -> Self {
        if self.mode == RecordingMode::File && self.path.is_none() {
            self.path = Some(default.into());
        }
        self
    }

    /// Checks the settings; the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("[recording] {m}")));
        match self.mode {
            RecordingMode::File if self.path.is_none() => {
                return bad("mode = \"file\" needs `path` (the .rrd file to write)".into());
            }
            RecordingMode::Connect => {
                let url = self.url.as_deref().unwrap_or(DEFAULT_VIEWER_URL);
                if !(url.starts_with("rerun://")
                    || url.starts_with("rerun+http://")
                    || url.starts_with("rerun+https://"))
                {
                    return bad(format!(
                        "url = {url:?} is not a Rerun gRPC URL (expected e.g. {DEFAULT_VIEWER_URL:?})"
                    ));
                }
            }
            _ => {}
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity must be at least 1".into());
        }
        if self.max_queued_frames == 0 {
            return bad("max_queued_frames must be at least 1".into());
        }
        if let Some(q) = self.jpeg_quality
            && !(1..=100).contains(&q)
        {
            return bad(format!("jpeg_quality = {q} is outside 1..=100"));
        }
        if !(self.flush_timeout.is_finite() && self.flush_timeout > 0.0) {
            return bad(format!(
                "flush_timeout = {} must be a positive number of seconds",
                self.flush_timeout
            ));
        }
        if self.application_id.trim().is_empty() {
            return bad("application_id must not be empty".into());
        }
        Ok(())
    }

    /// Whether streaming partial replies are recorded.
    pub fn records_partial_replies(&self) -> bool {
        self.partial_replies.unwrap_or(self.mode.is_live())
    }
}

/// Opens the recorder the configuration asks for (`off` gives the [`NullRecorder`]).
/// `run_name` names the run (a launch file's name and seed, say); it is the default recording
/// id, so recording the same run twice gives the same id.
pub fn open_recorder(config: &RecordingConfig, run_name: &str) -> Result<Arc<dyn Recorder>> {
    config.validate()?;
    Ok(match config.mode {
        RecordingMode::Off => Arc::new(NullRecorder),
        #[cfg(feature = "rerun")]
        _ => Arc::new(RerunRecorder::open(config, run_name)?),
        #[cfg(not(feature = "rerun"))]
        mode => {
            let _ = run_name;
            return Err(Error::Invalid(format!(
                "[recording] mode = {:?}: this build of ember-agent has no Rerun recorder \
                 (build it with the `rerun` cargo feature)",
                serde_json::to_value(mode).unwrap_or_default()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_a_launch_table_and_rejects_unknown_keys() {
        let c: RecordingConfig =
            toml::from_str("mode = \"file\"\npath = \"runs/demo.rrd\"\ndepth = false\n").unwrap();
        assert_eq!(c.mode, RecordingMode::File);
        assert!(!c.depth && c.segmentation);
        assert!(c.validate().is_ok());
        assert!(!c.records_partial_replies());
        let err = toml::from_str::<RecordingConfig>("mode = \"file\"\npaht = \"x.rrd\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("paht"), "{err}");
        let err = toml::from_str::<RecordingConfig>("mode = \"tape\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tape"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let c = RecordingConfig {
            mode: RecordingMode::File,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("path"));
        let c = RecordingConfig {
            mode: RecordingMode::Connect,
            url: Some("http://localhost:9876".into()),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("url"));
        let c = RecordingConfig {
            jpeg_quality: Some(0),
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("jpeg_quality")
        );
        let c = RecordingConfig {
            mode: RecordingMode::Spawn,
            ..Default::default()
        };
        assert!(c.validate().is_ok() && c.records_partial_replies());
    }

    #[test]
    fn a_default_path_fills_only_a_missing_file_path() {
        let c: RecordingConfig = toml::from_str("mode = \"file\"\n").unwrap();
        assert!(c.validate().is_err());
        let c = c.with_default_path("runs/demo/demo.rrd");
        assert_eq!(
            c.path.as_deref(),
            Some(std::path::Path::new("runs/demo/demo.rrd"))
        );
        assert!(c.validate().is_ok());
        let c = RecordingConfig::file("mine.rrd").with_default_path("other.rrd");
        assert_eq!(c.path.as_deref(), Some(std::path::Path::new("mine.rrd")));
        let c = RecordingConfig::default().with_default_path("x.rrd");
        assert_eq!(c.path, None, "off stays off");
    }

    #[test]
    fn off_opens_the_null_recorder() {
        let r = open_recorder(&RecordingConfig::default(), "run").unwrap();
        r.record(crate::recorder::RecordEvent::Prompt {
            step: 0,
            text: "x".into(),
        });
        assert!(r.flush().is_ok());
        assert_eq!(r.stats(), crate::recorder::RecorderStats::default());
    }
}
