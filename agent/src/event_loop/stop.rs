//! Stopping: the request to stop that Ctrl-C raises, and the emergency path of the second
//! Ctrl-C, which still brings every running world to a safe stop before the process exits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::world::SafeStopHandle;

/// A request to stop, shared by the signal handler and the loops, and the safe-stop handles
/// of the worlds that are running (for the second Ctrl-C).
#[derive(Clone)]
pub struct StopSignal {
    tx: Arc<watch::Sender<bool>>,
    safe_stops: Arc<Mutex<BTreeMap<u64, SafeStopHandle>>>,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopSignal")
            .field("requested", &self.is_requested())
            .field("safe_stops", &self.lock().len())
            .finish()
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps a world's safe-stop handle registered with a [`StopSignal`]; dropping it removes it.
#[must_use = "the handle is unregistered when this is dropped"]
pub struct SafeStopRegistration {
    signal: StopSignal,
    id: u64,
}

impl Drop for SafeStopRegistration {
    fn drop(&mut self) {
        self.signal.lock().remove(&self.id);
    }
}

impl StopSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
            safe_stops: Arc::default(),
            next_id: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, SafeStopHandle>> {
        self.safe_stops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks every loop watching this signal to stop.
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once a stop is requested.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in self, so the channel cannot close while we wait.
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Registers a running world's safe-stop handle until the registration is dropped.
    pub fn register_safe_stop(&self, handle: SafeStopHandle) -> SafeStopRegistration {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.lock().insert(id, handle);
        SafeStopRegistration {
            signal: self.clone(),
            id,
        }
    }

    /// The emergency path (the second Ctrl-C): requests a stop, then runs every registered
    /// safe-stop handle, each on a thread of its own, and waits for them at most `timeout`
    /// in all. Returns how many handles reported success in time. The caller exits after.
    pub fn emergency_stop(&self, timeout: Duration) -> usize {
        self.request();
        let handles: Vec<SafeStopHandle> = self.lock().values().cloned().collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut running = 0;
        for handle in handles {
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name("ember-safe-stop".into())
                .spawn(move || {
                    let ok =
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle())) {
                            Ok(Ok(())) => true,
                            Ok(Err(e)) => {
                                eprintln!("safe stop failed: {e}");
                                false
                            }
                            Err(_) => {
                                eprintln!("safe stop panicked");
                                false
                            }
                        };
                    let _ = tx.send(ok);
                });
            match spawned {
                Ok(_) => running += 1,
                Err(e) => eprintln!("could not start a safe stop: {e}"),
            }
        }
        drop(tx);
        let deadline = std::time::Instant::now() + timeout;
        let mut stopped = 0;
        for _ in 0..running {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(true) => stopped += 1,
                Ok(false) => {}
                Err(_) => {
                    eprintln!(
                        "a safe stop did not finish within {:.1} s",
                        timeout.as_secs_f64()
                    );
                    break;
                }
            }
        }
        stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn emergency_stop_runs_the_registered_handles_and_forgets_dropped_ones() {
        let signal = StopSignal::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let counting = |calls: &Arc<AtomicUsize>| -> SafeStopHandle {
            let calls = calls.clone();
            Arc::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        };
        let kept = signal.register_safe_stop(counting(&calls));
        let dropped = signal.register_safe_stop(counting(&calls));
        drop(dropped);
        let failing = signal.register_safe_stop(Arc::new(|| {
            Err(crate::Error::World("the arm is unplugged".into()))
        }));
        assert_eq!(signal.emergency_stop(Duration::from_secs(5)), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(signal.is_requested());
        drop((kept, failing));
        assert_eq!(signal.emergency_stop(Duration::from_secs(5)), 0);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_hanging_safe_stop_does_not_hold_the_exit() {
        let signal = StopSignal::new();
        let _hung = signal.register_safe_stop(Arc::new(|| {
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        }));
        let t = std::time::Instant::now();
        assert_eq!(signal.emergency_stop(Duration::from_millis(200)), 0);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
