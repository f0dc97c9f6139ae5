//! The bridge's error type: what can go wrong between a client and a simulator server.

use crate::protocol::{ErrorCode, WireError};

/// Errors at the boundary of the bridge (client, server, [`crate::SimWorld`]).
///
/// Every variant names the endpoint it concerns, so a message read in a log says where to
/// look. Requests the server (or the in-process simulator) refused carry the protocol's
/// [`WireError`] with its code and the offending field.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The endpoint string is not one the bridge understands.
    #[error("invalid endpoint '{endpoint}': {message}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        message: String,
    },
    /// A ZeroMQ call failed (bind, connect, send, receive).
    #[error("{endpoint}: ZeroMQ {operation} failed: {source}")]
    Zmq {
        /// The endpoint.
        endpoint: String,
        /// What we were doing (`bind`, `connect`, `send`...).
        operation: &'static str,
        /// The ZeroMQ error.
        source: zmq::Error,
    },
    /// No reply arrived in time. The client has already replaced its socket, so the next
    /// request starts clean (and reaches a restarted server).
    #[error(
        "{endpoint}: no reply to '{kind}' request (seq {seq}) within {seconds:.1} s; \
         is an ember-sim server running there?"
    )]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The request kind.
        kind: String,
        /// The request's sequence number.
        seq: u64,
        /// The timeout in seconds.
        seconds: f64,
    },
    /// The server speaks another protocol version.
    #[error(
        "{endpoint}: protocol version mismatch: the server speaks '{server}', this client \
         speaks '{client}'; run a server and client from the same ember release"
    )]
    VersionMismatch {
        /// The endpoint.
        endpoint: String,
        /// The server's version (as it stated it, or what its reply looked like).
        server: String,
        /// Ours.
        client: String,
    },
    /// The server's reply does not follow the protocol.
    #[error("{endpoint}: malformed reply to '{kind}' request (seq {seq}): {error}")]
    BadReply {
        /// The endpoint.
        endpoint: String,
        /// The request kind.
        kind: String,
        /// The request's sequence number.
        seq: u64,
        /// What is wrong with the reply.
        error: WireError,
    },
    /// The server (or the in-process simulator) refused the request with an error reply.
    #[error("{endpoint}: '{kind}' request (seq {seq}) refused: {error}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// The request kind.
        kind: String,
        /// The request's sequence number.
        seq: u64,
        /// The server's error.
        error: WireError,
    },
    /// The client was closed (after a `close` request or [`crate::Client::close`]).
    #[error("{endpoint}: the client is closed")]
    Closed {
        /// The endpoint.
        endpoint: String,
    },
}

impl BridgeError {
    /// The protocol error code, for refusals and malformed replies.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            BridgeError::Refused { error, .. } | BridgeError::BadReply { error, .. } => {
                Some(error.code)
            }
            BridgeError::VersionMismatch { .. } => Some(ErrorCode::Version),
            _ => None,
        }
    }

    /// The endpoint the error concerns.
    pub fn endpoint(&self) -> &str {
        match self {
            BridgeError::Endpoint { endpoint, .. }
            | BridgeError::Zmq { endpoint, .. }
            | BridgeError::Timeout { endpoint, .. }
            | BridgeError::VersionMismatch { endpoint, .. }
            | BridgeError::BadReply { endpoint, .. }
            | BridgeError::Refused { endpoint, .. }
            | BridgeError::Closed { endpoint } => endpoint,
        }
    }
}

impl From<BridgeError> for ember_agent::Error {
    fn from(e: BridgeError) -> Self {
        match e {
            BridgeError::Timeout {
                endpoint, seconds, ..
            } => ember_agent::Error::WorldTimeout { endpoint, seconds },
            BridgeError::Zmq { ref endpoint, .. } | BridgeError::Closed { ref endpoint } => {
                ember_agent::Error::WorldUnreachable {
                    endpoint: endpoint.clone(),
                    message: e.to_string(),
                }
            }
            other => ember_agent::Error::World(other.to_string()),
        }
    }
}
