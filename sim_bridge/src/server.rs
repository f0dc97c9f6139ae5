//! The bridge server: any [`Simulator`] on a ZeroMQ endpoint (`tcp://`, `ipc://`).
//!
//! One REP socket, one request at a time. Every request gets exactly one reply: malformed
//! requests get an error reply (see [`crate::protocol`]) and the server keeps serving; a
//! simulator that panics gets an `internal` error reply and the server keeps serving. The
//! server stops when its [`StopHandle`] is triggered (checked every 100 ms, so Ctrl-C
//! handlers can use it), or after answering a `close` request.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use serde_json::Value;
use tracing::{debug, info, warn};

use crate::backend::{InitSettings, SimError, SimEvent, Simulator};
use crate::error::BridgeError;
use crate::protocol::{
    ErrorCode, Kind, Limits, PROTOCOL_VERSION, Reply, Request, ServerInfo, WireError,
    decode_request, encode_reply, resolve_settings,
};

/// How often the serve loop looks at its stop flag, in milliseconds.
const POLL_MS: i64 = 100;

/// A flag that asks a server to stop; cheap to clone and share with a signal handler.
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A new, unset flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the server to stop (it finishes the request in hand first).
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Server settings.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    /// Init settings for the keys a `reset` leaves out.
    pub defaults: InitSettings,
    /// Size limits.
    pub limits: Limits,
}

/// What a serve loop did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Requests answered.
    pub requests: u64,
    /// Of which error replies.
    pub errors: u64,
    /// Whether a `close` request ended the loop (rather than the stop flag).
    pub closed_by_request: bool,
}

/// What the loop does after a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep serving.
    Continue,
    /// Stop (after a `close` request).
    Stop,
}

/// Turns request messages into reply messages for one simulator. Socket-free, so tests and
/// other transports can drive it directly.
pub struct Handler {
    sim: Box<dyn Simulator>,
    config: ServerConfig,
}

impl Handler {
    /// A handler for a simulator.
    pub fn new(sim: Box<dyn Simulator>, config: ServerConfig) -> Self {
        Self { sim, config }
    }

    /// The `info` reply body.
    pub fn info(&self) -> ServerInfo {
        let defaults = match serde_json::to_value(&self.config.defaults) {
            Ok(Value::Object(m)) => m,
            _ => Default::default(),
        };
        ServerInfo {
            protocol: PROTOCOL_VERSION.into(),
            server: "ember-sim-bridge".into(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            simulator: self.sim.info(),
            limits: Some(self.config.limits),
            defaults,
        }
    }

    /// Answers one request message. Never panics, whatever the input.
    pub fn handle(&mut self, parts: &[Vec<u8>]) -> (Vec<Vec<u8>>, Control, Option<WireError>) {
        let (seq, request) = match decode_request(parts, &self.config.limits) {
            Ok(r) => r,
            Err(e) => {
                let err = e.error.clone();
                return (
                    encode_reply(e.seq, e.kind, Reply::Error(e.error)),
                    Control::Continue,
                    Some(err),
                );
            }
        };
        let kind = request.kind();
        let (reply, control) = match request {
            Request::Info => (Reply::Info(Box::new(self.info())), Control::Continue),
            Request::Ping => (Reply::Pong, Control::Continue),
            Request::Close => (Reply::Closing, Control::Stop),
            Request::Reset { scene, settings } => {
                let reply =
                    match resolve_settings(&self.config.defaults, &settings, &self.config.limits) {
                        Err(e) => Reply::Error(e),
                        Ok(settings) => {
                            event_reply(guarded(kind, || self.sim.reset(&scene, &settings)))
                        }
                    };
                (reply, Control::Continue)
            }
            Request::Step { action } => (
                event_reply(guarded(kind, || self.sim.step(&action))),
                Control::Continue,
            ),
        };
        let err = match &reply {
            Reply::Error(e) => Some(e.clone()),
            _ => None,
        };
        (encode_reply(Some(seq), Some(kind), reply), control, err)
    }
}

/// Runs a simulator call, turning its errors and panics into protocol errors.
pub(crate) fn guarded(
    kind: Kind,
    f: impl FnOnce() -> Result<SimEvent, SimError>,
) -> Result<SimEvent, WireError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(event)) => Ok(event),
        Ok(Err(e)) => Err(WireError::from(&e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(WireError::new(
                ErrorCode::Internal,
                format!("the simulator panicked during '{kind}': {what}"),
            ))
        }
    }
}

fn event_reply(r: Result<SimEvent, WireError>) -> Reply {
    match r {
        Ok(e) => Reply::Event(Box::new(e)),
        Err(e) => Reply::Error(e),
    }
}

/// A simulator served on a bound ZeroMQ socket.
pub struct Server {
    endpoint: String,
    socket: zmq::Socket,
    _context: zmq::Context,
    handler: Handler,
    stop: StopHandle,
}

/// Checks that an endpoint is one a server can bind (`tcp://` or `ipc://`).
fn check_bind_endpoint(endpoint: &str) -> Result<(), BridgeError> {
    if endpoint.starts_with("tcp://") || endpoint.starts_with("ipc://") {
        Ok(())
    } else {
        Err(BridgeError::Endpoint {
            endpoint: endpoint.into(),
            message: "a server binds tcp://HOST:PORT (PORT may be * for any free port) or \
                      ipc://PATH; in-process simulators need no server"
                .into(),
        })
    }
}

impl Server {
    /// Binds a server for `sim` on `endpoint`. `tcp://127.0.0.1:*` picks a free port; read it
    /// back with [`Server::endpoint`].
    pub fn bind(
        endpoint: &str,
        sim: Box<dyn Simulator>,
        config: ServerConfig,
    ) -> Result<Self, BridgeError> {
        check_bind_endpoint(endpoint)?;
        let zerr = |operation, source| BridgeError::Zmq {
            endpoint: endpoint.into(),
            operation,
            source,
        };
        let context = zmq::Context::new();
        let socket = context.socket(zmq::REP).map_err(|e| zerr("socket", e))?;
        socket
            .set_linger(0)
            .map_err(|e| zerr("setsockopt LINGER", e))?;
        let max = i64::try_from(config.limits.max_message_bytes).unwrap_or(i64::MAX);
        socket
            .set_maxmsgsize(max)
            .map_err(|e| zerr("setsockopt MAXMSGSIZE", e))?;
        socket.bind(endpoint).map_err(|e| zerr("bind", e))?;
        let bound = match socket.get_last_endpoint() {
            Ok(Ok(s)) => s,
            _ => endpoint.to_string(),
        };
        info!(
            endpoint = %bound,
            simulator = %handler_name(sim.as_ref()),
            protocol = PROTOCOL_VERSION,
            "sim bridge server listening"
        );
        Ok(Self {
            endpoint: bound,
            socket,
            _context: context,
            handler: Handler::new(sim, config),
            stop: StopHandle::new(),
        })
    }

    /// The endpoint the server is bound to (with the port resolved).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The flag that stops [`Server::serve`].
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves requests until the stop flag is set or a `close` request arrives.
    pub fn serve(&mut self) -> Result<ServeSummary, BridgeError> {
        let mut summary = ServeSummary::default();
        let zerr = |endpoint: &str, operation, source| BridgeError::Zmq {
            endpoint: endpoint.into(),
            operation,
            source,
        };
        while !self.stop.is_stopped() {
            match self.socket.poll(zmq::POLLIN, POLL_MS) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(zerr(&self.endpoint, "poll", e)),
            }
            let parts = match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(p) => p,
                Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => continue,
                Err(e) => return Err(zerr(&self.endpoint, "recv", e)),
            };
            let started = Instant::now();
            let (reply, control, err) = self.handler.handle(&parts);
            summary.requests += 1;
            match &err {
                Some(e) => {
                    summary.errors += 1;
                    warn!(endpoint = %self.endpoint, error = %e, "error reply");
                }
                None => debug!(
                    endpoint = %self.endpoint,
                    micros = started.elapsed().as_micros() as u64,
                    "request served"
                ),
            }
            if let Err(e) = self.socket.send_multipart(reply, 0) {
                // The peer is gone; REP drops the reply and the loop goes on.
                warn!(endpoint = %self.endpoint, error = %e, "could not send a reply");
            }
            if control == Control::Stop {
                info!(endpoint = %self.endpoint, "close request: stopping");
                summary.closed_by_request = true;
                break;
            }
        }
        info!(
            endpoint = %self.endpoint,
            requests = summary.requests,
            errors = summary.errors,
            "sim bridge server stopped"
        );
        Ok(summary)
    }

    /// Serves on a thread of its own.
    pub fn spawn(mut self) -> Result<ServerThread, BridgeError> {
        let endpoint = self.endpoint.clone();
        let stop = self.stop.clone();
        let handle = std::thread::Builder::new()
            .name("sim-bridge-server".into())
            .spawn(move || self.serve())
            .map_err(|e| BridgeError::Endpoint {
                endpoint: endpoint.clone(),
                message: format!("could not start the server thread: {e}"),
            })?;
        Ok(ServerThread {
            endpoint,
            stop,
            handle: Some(handle),
        })
    }
}

fn handler_name(sim: &dyn Simulator) -> String {
    let i = sim.info();
    format!("{} {}", i.name, i.version)
}

/// A server running on its own thread; stops and joins when dropped.
pub struct ServerThread {
    endpoint: String,
    stop: StopHandle,
    handle: Option<JoinHandle<Result<ServeSummary, BridgeError>>>,
}

impl ServerThread {
    /// The bound endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) -> Result<ServeSummary, BridgeError> {
        self.stop_and_join()
    }

    /// Waits for the server to stop by itself (after a `close` request).
    pub fn join(mut self) -> Result<ServeSummary, BridgeError> {
        match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(BridgeError::Endpoint {
                    endpoint: self.endpoint.clone(),
                    message: "the server thread panicked".into(),
                })
            }),
            None => Ok(ServeSummary::default()),
        }
    }

    fn stop_and_join(&mut self) -> Result<ServeSummary, BridgeError> {
        self.stop.stop();
        match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(BridgeError::Endpoint {
                    endpoint: self.endpoint.clone(),
                    message: "the server thread panicked".into(),
                })
            }),
            None => Ok(ServeSummary::default()),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
