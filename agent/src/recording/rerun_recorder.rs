//! The Rerun recorder: a bounded queue in front of a thread that logs to Rerun.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::file_sink::RrdFileSink;
use super::log::{EventLogger, LogSettings};
use super::queue::{EventQueue, Overflow};
use super::{DEFAULT_VIEWER_URL, RecordingConfig, RecordingMode};
use crate::error::{Error, Result};
use crate::recorder::{RecordEvent, Recorder, RecorderStats};

/// What the recorder thread has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RecorderThreadStats {
    /// Events logged.
    pub events: u64,
    /// Seconds the thread spent logging (not waiting for events).
    pub busy_seconds: f64,
    /// Log calls Rerun refused.
    pub errors: u64,
}

#[derive(Default)]
struct ThreadShared {
    stats: Mutex<RecorderThreadStats>,
}

/// Records events to Rerun (an `.rrd` file, a spawned viewer, or a running viewer) on its own
/// thread. `record` only enqueues; see [`super::queue`] for what happens when the queue is full.
pub struct RerunRecorder {
    queue: Arc<EventQueue>,
    stream: rerun::RecordingStream,
    shared: Arc<ThreadShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    mode: RecordingMode,
    flush_timeout: Duration,
    drop_warned: std::sync::atomic::AtomicU64,
}

impl RerunRecorder {
    /// Opens the sink the configuration names and starts the recorder thread. The recording id
    /// is `config.recording_id`, or `run_name`.
    pub fn open(config: &RecordingConfig, run_name: &str) -> Result<Self> {
        config.validate()?;
        let recording_id = config
            .recording_id
            .clone()
            .unwrap_or_else(|| run_name.to_string());
        let app_id = rerun::ApplicationId::try_new(config.application_id.clone()).map_err(|e| {
            Error::Invalid(format!(
                "[recording] application_id = {:?}: {e}",
                config.application_id
            ))
        })?;
        let builder = rerun::RecordingStreamBuilder::new(app_id)
            .recording_id(recording_id.clone())
            .recording_name(run_name.to_string());
        let stream = match config.mode {
            RecordingMode::Off => {
                return Err(Error::Invalid(
                    "[recording] mode = \"off\" records nothing; use the NullRecorder".into(),
                ));
            }
            RecordingMode::File => {
                let path = config.path.clone().unwrap_or_default();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                }
                let sink = RrdFileSink::create(&path, config.footer)?;
                let sinks: Vec<Box<dyn rerun::sink::LogSink>> = vec![Box::new(sink)];
                builder.set_sinks(sinks).map_err(|e| {
                    Error::Recorder(format!("cannot record to {}: {e}", path.display()))
                })?
            }
            RecordingMode::Spawn => {
                let mut opts = rerun::SpawnOptions {
                    port: config.port,
                    ..Default::default()
                };
                if let Some(v) = &config.viewer {
                    opts.executable_path = Some(v.display().to_string());
                }
                builder.spawn_opts(&opts).map_err(|e| {
                    Error::Recorder(format!(
                        "cannot start the viewer `{}` on port {}: {e} (install it with `pip install \
                         rerun-sdk==0.36.3` or set [recording] viewer)",
                        opts.executable_path.as_deref().unwrap_or(&opts.executable_name),
                        config.port
                    ))
                })?
            }
            RecordingMode::Connect => {
                let url = config
                    .url
                    .clone()
                    .unwrap_or_else(|| DEFAULT_VIEWER_URL.to_string());
                builder.connect_grpc_opts(url.as_str()).map_err(|e| {
                    Error::Recorder(format!("cannot connect to the viewer at {url}: {e}"))
                })?
            }
        };
        Ok(Self::with_stream(stream, config))
    }

    /// A recorder logging to an existing stream (a memory sink in tests, say).
    pub fn with_stream(stream: rerun::RecordingStream, config: &RecordingConfig) -> Self {
        let overflow = if config.mode.is_live() {
            Overflow::DropOldest
        } else {
            Overflow::Block
        };
        let queue = Arc::new(EventQueue::new(
            config.queue_capacity,
            config.max_queued_frames,
            overflow,
        ));
        let shared = Arc::new(ThreadShared::default());
        let settings = LogSettings::from(config);
        let thread = {
            let queue = queue.clone();
            let shared = shared.clone();
            let stream = stream.clone();
            std::thread::Builder::new()
                .name("ember-recorder".into())
                .spawn(move || worker(queue, shared, EventLogger::new(stream, settings)))
                .ok()
        };
        if thread.is_none() {
            tracing::error!(
                "recorder: could not start the recorder thread; nothing will be recorded"
            );
            queue.abandon();
        }
        Self {
            queue,
            stream,
            shared,
            thread: Mutex::new(thread),
            mode: config.mode,
            flush_timeout: Duration::from_secs_f64(config.flush_timeout),
            drop_warned: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// What the recorder thread has done so far.
    pub fn thread_stats(&self) -> RecorderThreadStats {
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Rerun stream (for sending extra data from the caller's thread).
    pub fn stream(&self) -> &rerun::RecordingStream {
        &self.stream
    }

    /// Writes everything queued, stops the thread and closes the sink.
    pub fn close(&self) -> Result<()> {
        // A live viewer that does not keep up gets `flush_timeout` to catch up; what is still
        // queued then is dropped (and counted) rather than holding the loop's shutdown.
        if self.mode.is_live() && !self.queue.wait_drained(self.flush_timeout) {
            self.queue.abandon();
        }
        self.queue.close();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            return Err(Error::Recorder("the recorder thread panicked".into()));
        }
        let result = self.flush_stream();
        let c = self.queue.counters();
        if c.dropped > 0 {
            tracing::warn!(
                "recorder: {} of {} events dropped because the viewer lagged",
                c.dropped,
                c.accepted + c.dropped
            );
        }
        self.stream.disconnect();
        result
    }

    fn flush_stream(&self) -> Result<()> {
        let r = if self.mode.is_live() {
            self.stream.flush_with_timeout(self.flush_timeout)
        } else {
            self.stream.flush_blocking()
        };
        r.map_err(|e| Error::Recorder(format!("flushing the recording: {e}")))
    }
}

/// Closes the queue when the recorder thread ends, however it ends, so that a producer waiting
/// for room (file mode) is released instead of waiting forever.
struct CloseOnExit(Arc<EventQueue>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.consumer_gone();
    }
}

fn worker(queue: Arc<EventQueue>, shared: Arc<ThreadShared>, mut logger: EventLogger) {
    let _guard = CloseOnExit(queue.clone());
    let mut panics = 0u64;
    while let Some(event) = queue.pop() {
        let t0 = Instant::now();
        let counters = queue.counters();
        // A bug in turning one event into archetypes must not end the recording.
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            logger.handle(&event, &counters)
        }));
        if handled.is_err() {
            panics += 1;
            tracing::error!("recorder: logging an event panicked ({panics} so far); skipped it");
        }
        drop(event);
        let dt = t0.elapsed().as_secs_f64();
        {
            let mut s = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
            s.events += 1;
            s.busy_seconds += dt;
            s.errors = logger.errors() + panics;
        }
        queue.done();
    }
}

impl Recorder for RerunRecorder {
    fn record(&self, event: RecordEvent) {
        let dropped = self.queue.push(event);
        if dropped > 0 {
            let total = self.queue.counters().dropped;
            let warned = self.drop_warned.load(std::sync::atomic::Ordering::Relaxed);
            // Warn on the first drop, then at each power of two.
            if total.is_power_of_two() && total > warned {
                self.drop_warned
                    .store(total, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("recorder: the viewer lags; {total} events dropped so far");
            }
        }
    }

    fn flush(&self) -> Result<()> {
        let wait = if self.mode.is_live() {
            self.flush_timeout
        } else {
            Duration::from_secs(24 * 3600)
        };
        if !self.queue.wait_drained(wait) {
            return Err(Error::Recorder(format!(
                "the recorder thread did not catch up within {:.1} s",
                wait.as_secs_f64()
            )));
        }
        self.flush_stream()
    }

    fn stats(&self) -> RecorderStats {
        let c = self.queue.counters();
        RecorderStats {
            // Accepted and not dropped: written, being written, or still waiting.
            recorded: c.written + (c.queued + c.in_flight) as u64,
            dropped: c.dropped,
            queued: c.queued,
        }
    }
}

impl Drop for RerunRecorder {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!("recorder: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{CameraFrame, Observation, RgbImage};
    use crate::recorder::StepTimings;

    fn frame(step: u64) -> RecordEvent {
        RecordEvent::Observation {
            step,
            label: "test".into(),
            observation: Arc::new(Observation {
                step,
                sim_time: Some(step as f64 * 0.1),
                cameras: vec![CameraFrame {
                    name: "front".into(),
                    rgb: Arc::new(RgbImage::black(64, 48)),
                    depth: None,
                    instances: None,
                    intrinsics: None,
                    world_from_camera: None,
                }],
                proprio: Default::default(),
                sim: None,
            }),
        }
    }

    #[test]
    fn a_live_viewer_that_is_not_there_never_stalls_the_loop() {
        // Nothing listens on this port: the gRPC sink cannot deliver anything.
        let config = RecordingConfig {
            mode: RecordingMode::Connect,
            url: Some("rerun+http://127.0.0.1:9/proxy".into()),
            queue_capacity: 16,
            max_queued_frames: 2,
            flush_timeout: 0.5,
            ..RecordingConfig::default()
        };
        let rec = RerunRecorder::open(&config, "unreachable").expect("connecting is lazy");
        for step in 0..300 {
            rec.record(frame(step));
            rec.record(RecordEvent::Timings {
                step,
                timings: StepTimings::default(),
            });
        }
        let stats = rec.stats();
        assert!(stats.queued <= 16, "the queue is bounded: {stats:?}");
        // Every event is written, waiting, or counted as dropped; the lagging sink made the
        // queue drop old frames instead of blocking `record`.
        assert_eq!(stats.recorded + stats.dropped, 600, "{stats:?}");
        assert!(stats.dropped > 0, "{stats:?}");
        // Flushing gives up after the timeout instead of hanging; closing returns too.
        assert!(
            rec.flush().is_err(),
            "nothing can be flushed to a missing viewer"
        );
        let _ = rec.close();
        let after = rec.stats();
        assert_eq!(after.queued, 0);
        assert_eq!(after.recorded + after.dropped, 600, "{after:?}");
    }
}
