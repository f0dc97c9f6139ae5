//! What the loop drives without blocking its async worker: the world and harness (whose calls
//! block and run on tokio's blocking pool), the policy (likewise, with cancellation), and the
//! recorder (fed through a bounded channel by a forwarding thread of its own).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

use super::EpisodeEnd;
use crate::error::Error;
use crate::harness::Harness;
use crate::policy::Policy;
use crate::recorder::{RecordEvent, Recorder};
use crate::world::World;

/// A policy shared between the loop and the blocking thread that runs it.
pub type SharedPolicy = Arc<Mutex<Box<dyn Policy>>>;

/// Wraps a policy for the loop.
pub fn share_policy(policy: Box<dyn Policy>) -> SharedPolicy {
    Arc::new(Mutex::new(policy))
}

/// Runs `f` with the policy locked on a blocking thread. A policy that panicked in an earlier
/// call is refused.
pub(super) fn with_policy<T: Send + 'static>(
    policy: &SharedPolicy,
    f: impl FnOnce(&mut dyn Policy) -> crate::Result<T> + Send + 'static,
) -> tokio::task::JoinHandle<crate::Result<T>> {
    let policy = policy.clone();
    tokio::task::spawn_blocking(move || match policy.lock() {
        Ok(mut p) => f(p.as_mut()),
        Err(_) => Err(Error::Invalid(
            "the policy panicked in an earlier call".into(),
        )),
    })
}

/// The world and the harness: their calls block, so each runs on a blocking thread, which
/// owns both for the call's length. A call that panics loses them; every later call then
/// fails, and the runner starts a fresh world.
pub(super) struct Body {
    parts: Option<(Box<dyn World>, Box<dyn Harness>)>,
}

impl Body {
    pub(super) fn new(world: Box<dyn World>, harness: Box<dyn Harness>) -> Self {
        Self {
            parts: Some((world, harness)),
        }
    }

    /// The harness, for its cheap queries (is it done, legal actions, metrics).
    pub(super) fn harness(&self) -> Result<&dyn Harness, EpisodeEnd> {
        self.parts
            .as_ref()
            .map(|(_, h)| h.as_ref())
            .ok_or_else(Self::lost)
    }

    /// The world's safe-stop handle, when it has one.
    pub(super) fn safe_stop_handle(&self) -> Option<crate::world::SafeStopHandle> {
        self.parts.as_ref().and_then(|(w, _)| w.safe_stop_handle())
    }

    fn lost() -> EpisodeEnd {
        EpisodeEnd::failed("the world and harness were lost in an earlier panic")
    }

    /// Runs `f` with the world and harness on a blocking thread.
    pub(super) async fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut dyn World, &mut dyn Harness) -> T + Send + 'static,
    ) -> Result<T, EpisodeEnd> {
        let (mut world, mut harness) = self.parts.take().ok_or_else(Self::lost)?;
        let joined = tokio::task::spawn_blocking(move || {
            let out = f(world.as_mut(), harness.as_mut());
            (world, harness, out)
        })
        .await;
        match joined {
            Ok((world, harness, out)) => {
                self.parts = Some((world, harness));
                Ok(out)
            }
            Err(e) => Err(EpisodeEnd::failed(format!(
                "a world or harness call panicked: {}",
                panic_message(e)
            ))),
        }
    }

    /// The world, for the next episode (`None` when a panic lost it).
    pub(super) fn into_world(self) -> Option<Box<dyn World>> {
        self.parts.map(|(w, _)| w)
    }
}

/// The message of a panicked task, when it has one.
pub(super) fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// How many events may wait between the loop and the recorder's forwarding thread.
const LINK_CAPACITY: usize = 256;

/// Hands events to a [`Recorder`] from a forwarding thread, so that a recorder that waits for
/// room (a file recording never drops an event) makes the loop wait asynchronously instead of
/// blocking its worker thread.
pub(super) struct RecordLink {
    recorder: Arc<dyn Recorder>,
    tx: Option<mpsc::Sender<RecordEvent>>,
    forwarder: Option<std::thread::JoinHandle<()>>,
}

impl RecordLink {
    pub(super) fn open(recorder: Arc<dyn Recorder>) -> Self {
        let (tx, mut rx) = mpsc::channel::<RecordEvent>(LINK_CAPACITY);
        let target = recorder.clone();
        let forwarder = std::thread::Builder::new()
            .name("ember-record-link".into())
            .spawn(move || {
                while let Some(event) = rx.blocking_recv() {
                    target.record(event);
                }
            });
        match forwarder {
            Ok(handle) => Self {
                recorder,
                tx: Some(tx),
                forwarder: Some(handle),
            },
            Err(e) => {
                tracing::error!("could not start the recorder's forwarding thread: {e}");
                Self {
                    recorder,
                    tx: None,
                    forwarder: None,
                }
            }
        }
    }

    /// Sends an event; waits (asynchronously) only while the link is full. Returns the
    /// seconds spent.
    pub(super) async fn send(&self, event: RecordEvent) -> f64 {
        let t = Instant::now();
        match &self.tx {
            Some(tx) => match tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    let _ = tx.send(event).await;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            },
            // No forwarding thread: the recorder itself must not block.
            None => self.recorder.record(event),
        }
        t.elapsed().as_secs_f64()
    }

    /// A sender for events from other threads (partial replies while a policy writes). Such
    /// events are dropped when the link is full; they are superseded by the next one anyway.
    /// The side channel holds the link weakly: an abandoned decision still running after its
    /// episode ended does not keep the link open.
    pub(super) fn side_channel(&self) -> impl Fn(RecordEvent) + Send + 'static {
        let tx = self.tx.as_ref().map(mpsc::Sender::downgrade);
        let recorder = self.recorder.clone();
        move |event| match &tx {
            Some(weak) => {
                if let Some(tx) = weak.upgrade() {
                    let _ = tx.try_send(event);
                }
            }
            None => recorder.record(event),
        }
    }

    /// Closes the link: waits, off the async worker, until every event reached the recorder
    /// and the recorder flushed (a live viewer's recorder gives up after its own timeout).
    pub(super) async fn close(mut self) {
        self.tx = None;
        let forwarder = self.forwarder.take();
        let recorder = self.recorder.clone();
        let done = tokio::task::spawn_blocking(move || {
            if let Some(f) = forwarder {
                let _ = f.join();
            }
            recorder.flush()
        });
        match done.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("recorder flush failed: {e}"),
            Err(e) => tracing::warn!("recorder flush panicked: {}", panic_message(e)),
        }
    }
}
