//! The bridge client: talks to a simulator over `tcp://`, `ipc://` or `inproc://`.
//!
//! - `tcp://HOST:PORT` and `ipc://PATH` reach a bridge server (ours or `thor_bridge.py`) with a
//!   ZeroMQ REQ socket. Every request has a timeout; after a timeout (or any socket error) the
//!   socket is closed and a fresh one is made for the next request, so a client survives a
//!   server that was killed and restarted on the same endpoint. At connect the client asks
//!   for `info` and fails clearly when the server speaks another protocol version.
//! - `inproc://NAME` runs the simulator in this process and calls it directly: no socket, no
//!   serialisation, metadata and frames move from the simulator to the caller. This is *not*
//!   ZeroMQ's inproc transport. `inproc://thor-lite` is the embedded simulator; any other
//!   [`Simulator`] can be wrapped with [`Client::in_process`].
//!
//! Both paths apply the same checks (action shape, settings, size limits) and report the same
//! [`ErrorCode`]s, so code written against one behaves the same on the other.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::backend::{InitSettings, SimEvent, Simulator};
use crate::error::BridgeError;
use crate::protocol::{
    ErrorCode, Kind, Limits, PROTOCOL_VERSION, Part, Reply, ReplyError, Request, ServerInfo,
    WireError, decode_reply, encode_request, resolve_settings, validate_action,
};
use crate::server::guarded;

/// Client settings.
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    /// How long to wait for each reply.
    pub timeout: Duration,
    /// Limits for replies (and, in process, for requests).
    pub limits: Limits,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

/// The in-process simulators `inproc://NAME` can name.
pub const IN_PROCESS_SIMULATORS: &[&str] = &["thor-lite"];

/// Makes the in-process simulator an `inproc://NAME` endpoint names.
pub fn in_process_simulator(name: &str) -> Option<Box<dyn Simulator>> {
    match name {
        "thor-lite" => Some(Box::new(crate::thor::ThorLite::new())),
        _ => None,
    }
}

enum Transport {
    Zmq {
        context: zmq::Context,
        socket: Option<zmq::Socket>,
    },
    InProc {
        sim: Box<dyn Simulator>,
        defaults: InitSettings,
    },
    Closed,
}

/// A connection to a simulator (see the module documentation).
pub struct Client {
    endpoint: String,
    options: ClientOptions,
    seq: u64,
    transport: Transport,
    server: Option<ServerInfo>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `endpoint` and checks that the server speaks our protocol version.
    pub fn connect(endpoint: &str, options: ClientOptions) -> Result<Self, BridgeError> {
        if let Some(name) = endpoint.strip_prefix("inproc://") {
            let sim = in_process_simulator(name).ok_or_else(|| BridgeError::Endpoint {
                endpoint: endpoint.into(),
                message: format!(
                    "no in-process simulator named '{name}'; known: {}",
                    IN_PROCESS_SIMULATORS.join(", ")
                ),
            })?;
            let mut client = Self::in_process(name, sim);
            client.options = options;
            return Ok(client);
        }
        if !(endpoint.starts_with("tcp://") || endpoint.starts_with("ipc://")) {
            return Err(BridgeError::Endpoint {
                endpoint: endpoint.into(),
                message: "use tcp://HOST:PORT, ipc://PATH, or inproc://thor-lite".into(),
            });
        }
        let mut client = Self {
            endpoint: endpoint.into(),
            options,
            seq: 0,
            transport: Transport::Zmq {
                context: zmq::Context::new(),
                socket: None,
            },
            server: None,
        };
        // Create the socket now so that a bad address fails here, not at the first request.
        client.zmq_socket()?;
        let info = client.info()?;
        client.server = Some(info);
        Ok(client)
    }

    /// A client for a simulator in this process, reachable as `inproc://NAME`.
    pub fn in_process(name: &str, sim: Box<dyn Simulator>) -> Self {
        let defaults = InitSettings::default();
        let mut client = Self {
            endpoint: format!("inproc://{name}"),
            options: ClientOptions::default(),
            seq: 0,
            transport: Transport::InProc { sim, defaults },
            server: None,
        };
        client.server = client.local_info();
        client
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the simulator runs in this process.
    pub fn is_in_process(&self) -> bool {
        matches!(self.transport, Transport::InProc { .. })
    }

    /// What the server said about itself at connect.
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.server.as_ref()
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Changes the reply timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.options.timeout = timeout;
    }

    /// Asks for the server's and simulator's facts.
    pub fn info(&mut self) -> Result<ServerInfo, BridgeError> {
        if let Some(info) = self.local_info() {
            self.seq += 1;
            return Ok(info);
        }
        match self.round_trip(Request::Info)? {
            Reply::Info(info) => Ok(*info),
            other => Err(self.unexpected(Kind::Info, &other)),
        }
    }

    /// Checks that the server answers.
    pub fn ping(&mut self) -> Result<(), BridgeError> {
        match &self.transport {
            Transport::InProc { .. } => {
                self.seq += 1;
                Ok(())
            }
            Transport::Closed => Err(self.closed()),
            Transport::Zmq { .. } => match self.round_trip(Request::Ping)? {
                Reply::Pong => Ok(()),
                other => Err(self.unexpected(Kind::Ping, &other)),
            },
        }
    }

    /// Loads `scene` with the given settings.
    pub fn reset(&mut self, scene: &str, settings: &InitSettings) -> Result<SimEvent, BridgeError> {
        let overrides = match serde_json::to_value(settings) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        self.reset_with(scene, overrides)
    }

    /// Loads `scene`; settings left out of `overrides` take the server's defaults.
    pub fn reset_with(
        &mut self,
        scene: &str,
        overrides: Map<String, Value>,
    ) -> Result<SimEvent, BridgeError> {
        self.event(Request::Reset {
            scene: scene.into(),
            settings: overrides,
        })
    }

    /// Performs one AI2-THOR action (`{"action": "MoveAhead"}`).
    pub fn step(&mut self, action: &Map<String, Value>) -> Result<SimEvent, BridgeError> {
        self.event(Request::Step {
            action: action.clone(),
        })
    }

    /// Asks the server to stop (in process: drops the simulator). The client is closed
    /// afterwards.
    pub fn close_server(&mut self) -> Result<(), BridgeError> {
        let result = match &self.transport {
            Transport::Closed => return Err(self.closed()),
            Transport::InProc { .. } => Ok(()),
            Transport::Zmq { .. } => match self.round_trip(Request::Close)? {
                Reply::Closing => Ok(()),
                other => Err(self.unexpected(Kind::Close, &other)),
            },
        };
        self.transport = Transport::Closed;
        result
    }

    /// Drops the connection (or the in-process simulator) without asking the server to stop.
    /// Later requests fail with [`BridgeError::Closed`].
    pub fn disconnect(&mut self) {
        self.transport = Transport::Closed;
    }

    fn local_info(&self) -> Option<ServerInfo> {
        match &self.transport {
            Transport::InProc { sim, defaults } => Some(ServerInfo {
                protocol: PROTOCOL_VERSION.into(),
                server: "ember-sim-bridge (in process)".into(),
                server_version: env!("CARGO_PKG_VERSION").into(),
                simulator: sim.info(),
                limits: Some(self.options.limits),
                defaults: match serde_json::to_value(defaults) {
                    Ok(Value::Object(m)) => m,
                    _ => Map::new(),
                },
            }),
            _ => None,
        }
    }

    fn closed(&self) -> BridgeError {
        BridgeError::Closed {
            endpoint: self.endpoint.clone(),
        }
    }

    fn unexpected(&self, kind: Kind, reply: &Reply) -> BridgeError {
        BridgeError::BadReply {
            endpoint: self.endpoint.clone(),
            kind: kind.to_string(),
            seq: self.seq,
            error: WireError::new(
                ErrorCode::BadField,
                format!("unexpected reply body {}", reply_name(reply)),
            ),
        }
    }

    /// Runs a reset or step, in process or over the wire.
    fn event(&mut self, request: Request) -> Result<SimEvent, BridgeError> {
        let kind = request.kind();
        if let Transport::InProc { sim, defaults } = &mut self.transport {
            self.seq += 1;
            let seq = self.seq;
            let limits = self.options.limits;
            let refused = |error| BridgeError::Refused {
                endpoint: self.endpoint.clone(),
                kind: kind.to_string(),
                seq,
                error,
            };
            return match request {
                Request::Reset { scene, settings } => {
                    let settings =
                        resolve_settings(defaults, &settings, &limits).map_err(refused)?;
                    guarded(kind, || sim.reset(&scene, &settings)).map_err(refused)
                }
                Request::Step { action } => {
                    validate_action(&action).map_err(refused)?;
                    guarded(kind, || sim.step(&action)).map_err(refused)
                }
                _ => Ok(SimEvent::default()),
            };
        }
        match self.round_trip(request)? {
            Reply::Event(e) => Ok(*e),
            other => Err(self.unexpected(kind, &other)),
        }
    }

    fn zmq_socket(&mut self) -> Result<&zmq::Socket, BridgeError> {
        let endpoint = self.endpoint.clone();
        let max_part = self.options.limits.max_reply_part_bytes();
        let Transport::Zmq { context, socket } = &mut self.transport else {
            return Err(BridgeError::Closed { endpoint });
        };
        if socket.is_none() {
            let zerr = |operation, source| BridgeError::Zmq {
                endpoint: endpoint.clone(),
                operation,
                source,
            };
            let s = context.socket(zmq::REQ).map_err(|e| zerr("socket", e))?;
            s.set_linger(0).map_err(|e| zerr("setsockopt LINGER", e))?;
            s.set_maxmsgsize(i64::try_from(max_part).unwrap_or(i64::MAX))
                .map_err(|e| zerr("setsockopt MAXMSGSIZE", e))?;
            s.set_reconnect_ivl(100)
                .map_err(|e| zerr("setsockopt RECONNECT_IVL", e))?;
            s.set_reconnect_ivl_max(1000)
                .map_err(|e| zerr("setsockopt RECONNECT_IVL_MAX", e))?;
            s.connect(&endpoint).map_err(|e| zerr("connect", e))?;
            *socket = Some(s);
        }
        match socket {
            Some(s) => Ok(s),
            None => Err(BridgeError::Closed { endpoint }),
        }
    }

    /// Drops the REQ socket; the next request makes a fresh one.
    fn reset_socket(&mut self) {
        if let Transport::Zmq { socket, .. } = &mut self.transport {
            *socket = None;
        }
    }

    fn round_trip(&mut self, request: Request) -> Result<Reply, BridgeError> {
        self.seq += 1;
        let seq = self.seq;
        let kind = request.kind();
        let timeout = self.options.timeout;
        let limits = self.options.limits;
        let endpoint = self.endpoint.clone();
        let bytes = encode_request(seq, &request);
        let deadline = Instant::now() + timeout;
        let timed_out = || BridgeError::Timeout {
            endpoint: endpoint.clone(),
            kind: kind.to_string(),
            seq,
            seconds: timeout.as_secs_f64(),
        };
        let zerr = |operation, source| BridgeError::Zmq {
            endpoint: endpoint.clone(),
            operation,
            source,
        };

        let result = (|| -> Result<Vec<ZmqPart>, BridgeError> {
            let socket = self.zmq_socket()?;
            // A REQ socket that connects queues the request even before the server is up.
            loop {
                match socket.send(&bytes[..], zmq::DONTWAIT) {
                    Ok(()) => break,
                    Err(zmq::Error::EINTR) => continue,
                    Err(zmq::Error::EAGAIN) => {
                        let left = remaining_ms(deadline);
                        if left == 0 {
                            return Err(timed_out());
                        }
                        match socket.poll(zmq::POLLOUT, left) {
                            Ok(_) | Err(zmq::Error::EINTR) => continue,
                            Err(e) => return Err(zerr("poll", e)),
                        }
                    }
                    Err(e) => return Err(zerr("send", e)),
                }
            }
            loop {
                let left = remaining_ms(deadline);
                if left == 0 {
                    return Err(timed_out());
                }
                match socket.poll(zmq::POLLIN, left) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => return Err(zerr("poll", e)),
                }
                match recv_parts(socket) {
                    Ok(parts) => return Ok(parts),
                    Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => continue,
                    Err(e) => return Err(zerr("recv", e)),
                }
            }
        })();
        let parts = match result {
            Ok(p) => p,
            Err(e) => {
                // A REQ socket without a reply is stuck: start over with a fresh one.
                self.reset_socket();
                return Err(e);
            }
        };
        let bad = |error| BridgeError::BadReply {
            endpoint: endpoint.clone(),
            kind: kind.to_string(),
            seq,
            error,
        };
        let envelope = match decode_reply(parts, &limits) {
            Ok(e) => e,
            Err(ReplyError::Version(server)) => {
                return Err(BridgeError::VersionMismatch {
                    endpoint,
                    server,
                    client: PROTOCOL_VERSION.into(),
                });
            }
            Err(ReplyError::Invalid(e)) => return Err(bad(e)),
        };
        if let Reply::Error(error) = envelope.reply {
            if error.code == ErrorCode::Version {
                return Err(BridgeError::VersionMismatch {
                    endpoint,
                    server: error.message,
                    client: PROTOCOL_VERSION.into(),
                });
            }
            if envelope.seq.is_some_and(|s| s != seq) {
                return Err(bad(WireError::field(
                    ErrorCode::BadField,
                    "seq",
                    format!("an error reply for seq {:?} arrived", envelope.seq),
                )));
            }
            return Err(BridgeError::Refused {
                endpoint,
                kind: kind.to_string(),
                seq,
                error,
            });
        }
        if envelope.seq != Some(seq) {
            return Err(bad(WireError::field(
                ErrorCode::BadField,
                "seq",
                format!("the reply answers seq {:?}", envelope.seq),
            )));
        }
        if envelope.kind != Some(kind) {
            return Err(bad(WireError::field(
                ErrorCode::BadField,
                "kind",
                format!("the reply answers a {:?} request", envelope.kind),
            )));
        }
        Ok(envelope.reply)
    }
}

/// A received ZeroMQ part, read in place (depth and ids convert straight from it).
struct ZmqPart(zmq::Message);

impl AsRef<[u8]> for ZmqPart {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Part for ZmqPart {
    fn into_vec(self) -> Vec<u8> {
        self.0.to_vec()
    }
}

/// Receives all parts of one message without copying them out of ZeroMQ.
fn recv_parts(socket: &zmq::Socket) -> Result<Vec<ZmqPart>, zmq::Error> {
    let mut parts = Vec::with_capacity(4);
    loop {
        parts.push(ZmqPart(socket.recv_msg(zmq::DONTWAIT)?));
        if !socket.get_rcvmore()? {
            return Ok(parts);
        }
    }
}

fn remaining_ms(deadline: Instant) -> i64 {
    let left = deadline.saturating_duration_since(Instant::now());
    // Round up so that a sub-millisecond remainder still waits.
    let ms = left.as_micros().div_ceil(1000);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn reply_name(reply: &Reply) -> &'static str {
    match reply {
        Reply::Info(_) => "info",
        Reply::Pong => "pong",
        Reply::Closing => "closing",
        Reply::Event(_) => "event",
        Reply::Error(_) => "error",
    }
}
