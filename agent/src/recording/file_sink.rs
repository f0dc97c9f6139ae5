//! The `.rrd` file sink: Rerun's encoder, run synchronously.
//!
//! Rerun's own `FileSink` hands messages to a writer thread through a queue of up to 1024
//! messages; with camera images in them that is gigabytes when the encoder or the disk lags,
//! and its default footer (an index of every chunk) grows in memory, about ten kilobytes per
//! chunk, until the file is closed. This sink encodes each message in `send`, on the SDK's
//! batcher thread, so a slow disk holds the batcher back, whose channels Rerun bounds in bytes;
//! the recorder thread then waits, and with it (files never drop) the loop: memory stays
//! bounded. The footer is optional ([`super::RecordingConfig::footer`]).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rerun::external::re_log_encoding::{Encoder, EncodingOptions};
use rerun::log::LogMsg;
use rerun::sink::{LogSink, SinkFlushError};

use crate::error::{Error, Result};

/// Writes a recording to an `.rrd` file.
pub struct RrdFileSink {
    path: PathBuf,
    encoder: Mutex<Option<Encoder<BufWriter<File>>>>,
    failed: AtomicBool,
}

impl RrdFileSink {
    /// Creates (truncates) the file and writes the stream header. With `footer`, the chunk
    /// index is written when the sink is dropped (and held in memory until then).
    pub fn create(path: &Path, footer: bool) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let writer = BufWriter::with_capacity(1 << 20, file);
        let mut encoder = Encoder::new_eager(
            rerun::build_info().version,
            EncodingOptions::PROTOBUF_COMPRESSED,
            writer,
        )
        .map_err(|e| Error::Recorder(format!("{}: {e}", path.display())))?;
        if !footer {
            encoder.do_not_emit_footer();
        }
        Ok(Self {
            path: path.to_path_buf(),
            encoder: Mutex::new(Some(encoder)),
            failed: AtomicBool::new(false),
        })
    }

    fn report(&self, what: &str, e: &dyn std::fmt::Display) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::error!("recorder: {what} {}: {e}", self.path.display());
        }
    }
}

impl LogSink for RrdFileSink {
    fn send(&self, msg: LogMsg) {
        let mut guard = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(encoder) = guard.as_mut()
            && let Err(e) = encoder.append(&msg)
        {
            self.report("cannot write to", &e);
        }
    }

    fn flush_blocking(&self, _timeout: Duration) -> std::result::Result<(), SinkFlushError> {
        let mut guard = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(encoder) => encoder
                .flush_blocking()
                .map_err(|e| SinkFlushError::failed(format!("{}: {e}", self.path.display()))),
            None => Ok(()),
        }
    }
}

impl Drop for RrdFileSink {
    fn drop(&mut self) {
        let encoder = self
            .encoder
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut encoder) = encoder
            && let Err(e) = encoder.finish()
        {
            self.report("cannot finish", &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{RecordEvent, Recorder};
    use crate::recording::{RecordingConfig, RerunRecorder};

    fn record(path: &Path, footer: bool) -> u64 {
        let config = RecordingConfig {
            footer,
            ..RecordingConfig::file(path)
        };
        let rec = RerunRecorder::open(&config, "sink-test").unwrap();
        for step in 0..20 {
            rec.record(RecordEvent::Prompt {
                step,
                text: format!("prompt {step}"),
            });
        }
        rec.flush().unwrap();
        rec.close().unwrap();
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn writes_a_finished_rrd_with_or_without_the_footer() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.rrd");
        let indexed = dir.path().join("indexed.rrd");
        let (a, b) = (record(&plain, false), record(&indexed, true));
        for p in [&plain, &indexed] {
            let bytes = std::fs::read(p).unwrap();
            assert_eq!(&bytes[..4], b"RRF2", "{}", p.display());
        }
        assert!(a > 200, "{a} bytes");
        assert!(b > a, "the footer adds the chunk index: {b} vs {a} bytes");
    }

    #[test]
    fn an_unwritable_path_is_an_error_that_names_it() {
        let err = RrdFileSink::create(Path::new("/nonexistent-dir/x/run.rrd"), false)
            .err()
            .expect("cannot create")
            .to_string();
        assert!(err.contains("/nonexistent-dir/x/run.rrd"), "{err}");
    }
}
