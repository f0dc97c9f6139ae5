//! The bridge protocol `ember-sim/1`: message layout, encoding and decoding (pure, no I/O).
//!
//! Every message is a ZeroMQ multipart message: part 0 is a UTF-8 JSON header, parts 1.. are
//! raw binary frames that the header's `frames` array describes one by one (name, dtype,
//! shape, byte order, row order). Requests carry no frames in this version; replies to
//! `reset` and `step` carry RGB (`uint8`, `[h, w, 3]`), depth (`float32` metres, `[h, w]`)
//! and instance ids (`uint32`, `[h, w]` with a `legend`), little-endian, top row first.
//! `sim_bridge/PROTOCOL.md` is the normative description; this module implements it.
//!
//! Decoding never panics: every malformed input becomes a [`WireError`] with an
//! [`ErrorCode`] and, where one is to blame, the name of the field.

use std::fmt;

use ember_agent::observation::{DepthImage, InstanceImage, RgbImage};
use ember_agent::thor::Metadata;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::backend::{Frames, InitSettings, SimError, SimEvent, SimulatorInfo};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: &str = "ember-sim/1";

/// The error codes of error replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The header is not UTF-8 JSON, or not a JSON object, or the message is empty.
    Malformed,
    /// The request speaks another protocol version.
    Version,
    /// The request kind is not one of `info`, `reset`, `step`, `close`, `ping`.
    UnknownKind,
    /// A field is missing or has the wrong type or value.
    BadField,
    /// The header declares frames that are missing (or shorter than declared).
    Truncated,
    /// Frames follow the header that it does not declare.
    StrayFrames,
    /// The message, the header, a frame count or a requested image size exceeds a limit.
    TooLarge,
    /// The simulator does not know the action.
    UnknownAction,
    /// The simulator does not know the scene.
    UnknownScene,
    /// An init setting is unknown, of the wrong type, or out of range.
    BadSetting,
    /// `step` before any successful `reset`.
    NoScene,
    /// The simulator itself failed (the AI2-THOR player could not start...).
    SimFailure,
    /// A bug in the server (it keeps serving).
    Internal,
    /// A code this build does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::Version => "version",
            ErrorCode::UnknownKind => "unknown_kind",
            ErrorCode::BadField => "bad_field",
            ErrorCode::Truncated => "truncated",
            ErrorCode::StrayFrames => "stray_frames",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::UnknownScene => "unknown_scene",
            ErrorCode::BadSetting => "bad_setting",
            ErrorCode::NoScene => "no_scene",
            ErrorCode::SimFailure => "sim_failure",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the protocol carries it: a code, the offending field (a path such as
/// `action.objectId` or `settings.width`) when one is to blame, and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The error class.
    pub code: ErrorCode,
    /// The field to blame, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

impl WireError {
    /// An error with no field to blame.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }

    /// An error blaming a field.
    pub fn field(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "[{}] {field}: {}", self.code, self.message),
            None => write!(f, "[{}] {}", self.code, self.message),
        }
    }
}

impl std::error::Error for WireError {}

impl From<&SimError> for WireError {
    fn from(e: &SimError) -> Self {
        match e {
            SimError::UnknownAction(name) => WireError::field(
                ErrorCode::UnknownAction,
                "action.action",
                format!("unknown action '{name}'"),
            ),
            SimError::BadParameter {
                action, parameter, ..
            } => {
                let field = if parameter == "action" {
                    "action.action".to_string()
                } else {
                    format!("action.{parameter}")
                };
                let _ = action;
                WireError::field(ErrorCode::BadField, field, e.to_string())
            }
            SimError::UnknownScene(_) => {
                WireError::field(ErrorCode::UnknownScene, "scene", e.to_string())
            }
            SimError::BadSetting(message) => {
                WireError::field(ErrorCode::BadSetting, setting_field(message), e.to_string())
            }
            SimError::NoScene => WireError::new(ErrorCode::NoScene, e.to_string()),
            SimError::Failure(_) => WireError::new(ErrorCode::SimFailure, e.to_string()),
        }
    }
}

/// Request kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Facts about the server and simulator.
    Info,
    /// Load a scene with init settings.
    Reset,
    /// Perform one AI2-THOR action.
    Step,
    /// Stop the server (it replies first).
    Close,
    /// Liveness check.
    Ping,
}

impl Kind {
    /// All kinds, in the order the protocol document lists them.
    pub const ALL: [Kind; 5] = [Kind::Info, Kind::Reset, Kind::Step, Kind::Close, Kind::Ping];

    /// The kind as it appears on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Info => "info",
            Kind::Reset => "reset",
            Kind::Step => "step",
            Kind::Close => "close",
            Kind::Ping => "ping",
        }
    }

    /// Parses a wire kind.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Size limits a server enforces (and announces in its `info` reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Largest request header (JSON) in bytes; larger ones get a `too_large` error reply.
    pub max_header_bytes: usize,
    /// Largest single message part in bytes, enforced by ZeroMQ itself (`ZMQ_MAXMSGSIZE`):
    /// a peer that sends more is disconnected without a reply.
    pub max_message_bytes: usize,
    /// Most frames a header may declare.
    pub max_frames: usize,
    /// Largest image width or height in pixels.
    pub max_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 1 << 20,
            max_message_bytes: 16 << 20,
            max_frames: 8,
            max_side: 4096,
        }
    }
}

impl Limits {
    /// The largest reply part a client should accept under these limits (a float32 frame at
    /// the largest size, or the header).
    pub fn max_reply_part_bytes(&self) -> usize {
        let side = self.max_side as usize;
        (side * side * 4).max(64 << 20)
    }
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `info`.
    Info,
    /// `ping`.
    Ping,
    /// `close`.
    Close,
    /// `reset`: a scene and AI2-THOR init settings (Controller keyword names); settings that
    /// are left out take the server's defaults.
    Reset {
        /// The scene name (`FloorPlan5`).
        scene: String,
        /// Init settings overrides.
        settings: Map<String, Value>,
    },
    /// `step`: an AI2-THOR action object (`{"action": "MoveAhead", ...}`).
    Step {
        /// The action.
        action: Map<String, Value>,
    },
}

impl Request {
    /// The request's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Request::Info => Kind::Info,
            Request::Ping => Kind::Ping,
            Request::Close => Kind::Close,
            Request::Reset { .. } => Kind::Reset,
            Request::Step { .. } => Kind::Step,
        }
    }
}

/// Why a request could not be decoded, with what could be salvaged for the error reply.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestError {
    /// The request's sequence number, when it could be read.
    pub seq: Option<u64>,
    /// The request's kind, when it could be read.
    pub kind: Option<Kind>,
    /// The error to reply with.
    pub error: WireError,
}

/// Facts a server states in its `info` reply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerInfo {
    /// The protocol version the server speaks.
    pub protocol: String,
    /// The server program (`ember-sim-bridge`, `thor_bridge.py`).
    pub server: String,
    /// The server program's version.
    pub server_version: String,
    /// The simulator behind it.
    pub simulator: SimulatorInfo,
    /// The limits it enforces.
    pub limits: Option<Limits>,
    /// The init settings a `reset` gets for the keys it leaves out.
    pub defaults: Map<String, Value>,
}

/// A decoded reply body.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The answer to `info`.
    Info(Box<ServerInfo>),
    /// The answer to `ping`.
    Pong,
    /// The answer to `close` (the server stops after sending it).
    Closing,
    /// The answer to `reset` or `step`: metadata and frames.
    Event(Box<SimEvent>),
    /// An error reply.
    Error(WireError),
}

/// A reply with its envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyEnvelope {
    /// The sequence number of the request answered (`None` when it could not be read).
    pub seq: Option<u64>,
    /// The kind of the request answered (`None` when it could not be read).
    pub kind: Option<Kind>,
    /// The body.
    pub reply: Reply,
}

/// Why a reply could not be decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyError {
    /// The reply states another protocol version (given), or none that we can read.
    Version(String),
    /// The reply does not follow the protocol.
    Invalid(WireError),
}

impl From<WireError> for ReplyError {
    fn from(e: WireError) -> Self {
        ReplyError::Invalid(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Encodes a request as the single-part message (the JSON header) it is on the wire.
pub fn encode_request(seq: u64, request: &Request) -> Vec<u8> {
    let mut h = Map::new();
    h.insert("protocol".into(), PROTOCOL_VERSION.into());
    h.insert("seq".into(), seq.into());
    h.insert("kind".into(), request.kind().as_str().into());
    match request {
        Request::Reset { scene, settings } => {
            h.insert("scene".into(), scene.clone().into());
            h.insert("settings".into(), Value::Object(settings.clone()));
        }
        Request::Step { action } => {
            h.insert("action".into(), Value::Object(action.clone()));
        }
        Request::Info | Request::Ping | Request::Close => {}
    }
    // Serialising a map of JSON values cannot fail.
    serde_json::to_vec(&Value::Object(h)).unwrap_or_default()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes a request from its message parts, checking it against `limits`.
pub fn decode_request<P: AsRef<[u8]>>(
    parts: &[P],
    limits: &Limits,
) -> Result<(u64, Request), RequestError> {
    let fail = |seq, kind, error| Err(RequestError { seq, kind, error });
    let Some(header) = parts.first() else {
        return fail(
            None,
            None,
            WireError::new(ErrorCode::Malformed, "empty message"),
        );
    };
    let header = header.as_ref();
    if header.len() > limits.max_header_bytes {
        return fail(
            None,
            None,
            WireError::field(
                ErrorCode::TooLarge,
                "header",
                format!(
                    "the request header is {} bytes; the limit is {} bytes",
                    header.len(),
                    limits.max_header_bytes
                ),
            ),
        );
    }
    let value: Value = match serde_json::from_slice(header) {
        Ok(v) => v,
        Err(e) => {
            return fail(
                None,
                None,
                WireError::field(
                    ErrorCode::Malformed,
                    "header",
                    format!("the header is not valid UTF-8 JSON: {e}"),
                ),
            );
        }
    };
    let Value::Object(mut h) = value else {
        return fail(
            None,
            None,
            WireError::field(
                ErrorCode::Malformed,
                "header",
                format!(
                    "the header must be a JSON object, got {}",
                    type_name(&value)
                ),
            ),
        );
    };

    // Salvage seq and kind first so that every later error reply can echo them.
    let seq = h.get("seq").and_then(Value::as_u64);
    let kind = h.get("kind").and_then(Value::as_str).and_then(Kind::parse);

    match h.get("protocol") {
        None => {
            return fail(
                seq,
                kind,
                WireError::field(
                    ErrorCode::BadField,
                    "protocol",
                    format!("missing; this server speaks '{PROTOCOL_VERSION}'"),
                ),
            );
        }
        Some(Value::String(p)) if p == PROTOCOL_VERSION => {}
        Some(Value::String(p)) => {
            return fail(
                seq,
                kind,
                WireError::field(
                    ErrorCode::Version,
                    "protocol",
                    format!("the request speaks '{p}', this server speaks '{PROTOCOL_VERSION}'"),
                ),
            );
        }
        Some(other) => {
            return fail(
                seq,
                kind,
                WireError::field(
                    ErrorCode::BadField,
                    "protocol",
                    format!("must be a string, got {}", type_name(other)),
                ),
            );
        }
    }
    let seq = match h.get("seq") {
        Some(v) => match v.as_u64() {
            Some(s) => s,
            None => {
                return fail(
                    None,
                    kind,
                    WireError::field(
                        ErrorCode::BadField,
                        "seq",
                        format!("must be an integer from 0 to 2^64-1, got {v}"),
                    ),
                );
            }
        },
        None => {
            return fail(
                None,
                kind,
                WireError::field(ErrorCode::BadField, "seq", "missing"),
            );
        }
    };
    let kind = match h.get("kind") {
        Some(Value::String(k)) => match Kind::parse(k) {
            Some(kind) => kind,
            None => {
                let known: Vec<&str> = Kind::ALL.iter().map(Kind::as_str).collect();
                return fail(
                    Some(seq),
                    None,
                    WireError::field(
                        ErrorCode::UnknownKind,
                        "kind",
                        format!("unknown request kind '{k}'; known: {}", known.join(", ")),
                    ),
                );
            }
        },
        Some(other) => {
            return fail(
                Some(seq),
                None,
                WireError::field(
                    ErrorCode::BadField,
                    "kind",
                    format!("must be a string, got {}", type_name(other)),
                ),
            );
        }
        None => {
            return fail(
                Some(seq),
                None,
                WireError::field(ErrorCode::BadField, "kind", "missing"),
            );
        }
    };
    let at = |error| RequestError {
        seq: Some(seq),
        kind: Some(kind),
        error,
    };

    // Frames: the header must declare exactly the parts that follow it.
    let descs = match h.get("frames") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(at(WireError::field(
                ErrorCode::BadField,
                "frames",
                format!("must be an array, got {}", type_name(other)),
            )));
        }
    };
    let frame_parts = &parts[1..];
    check_frame_count(descs.len(), frame_parts.len(), limits).map_err(at)?;
    for (i, (desc, part)) in descs.iter().zip(frame_parts).enumerate() {
        let desc = FrameDesc::from_value(desc, i, limits).map_err(at)?;
        desc.check_len(i, part.as_ref().len()).map_err(at)?;
    }
    if !descs.is_empty() {
        return Err(at(WireError::field(
            ErrorCode::BadField,
            "frames",
            format!("'{kind}' requests carry no frames in {PROTOCOL_VERSION}"),
        )));
    }

    let request = match kind {
        Kind::Info => Request::Info,
        Kind::Ping => Request::Ping,
        Kind::Close => Request::Close,
        Kind::Reset => {
            let scene = match h.remove("scene") {
                Some(Value::String(s)) => s,
                other => return Err(at(wrong_field("scene", "a string", other))),
            };
            if scene.is_empty() || scene.len() > 256 {
                return Err(at(WireError::field(
                    ErrorCode::BadField,
                    "scene",
                    format!("must be 1 to 256 bytes long, got {}", scene.len()),
                )));
            }
            let settings = match h.remove("settings") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m,
                other => return Err(at(wrong_field("settings", "an object", other))),
            };
            Request::Reset { scene, settings }
        }
        Kind::Step => {
            let action = match h.remove("action") {
                Some(Value::Object(m)) => m,
                other => {
                    return Err(at(wrong_field(
                        "action",
                        "an AI2-THOR action object such as {\"action\": \"MoveAhead\"}",
                        other,
                    )));
                }
            };
            validate_action(&action).map_err(at)?;
            Request::Step { action }
        }
    };
    Ok((seq, request))
}

/// The `bad_field` error for a header field that is missing (`None`) or not `expected`.
fn wrong_field(field: &str, expected: &str, got: Option<Value>) -> WireError {
    match got {
        None => WireError::field(ErrorCode::BadField, field, "missing"),
        Some(v) => WireError::field(
            ErrorCode::BadField,
            field,
            format!("must be {expected}, got {}", type_name(&v)),
        ),
    }
}

/// Checks the shape of an AI2-THOR action object: a non-empty string `action`.
pub fn validate_action(action: &Map<String, Value>) -> Result<(), WireError> {
    match action.get("action") {
        Some(Value::String(name)) if !name.is_empty() && name.len() <= 128 => Ok(()),
        Some(Value::String(name)) => Err(WireError::field(
            ErrorCode::BadField,
            "action.action",
            format!(
                "the action name must be 1 to 128 bytes long, got {}",
                name.len()
            ),
        )),
        Some(other) => Err(WireError::field(
            ErrorCode::BadField,
            "action.action",
            format!("the action name must be a string, got {}", type_name(other)),
        )),
        None => Err(WireError::field(
            ErrorCode::BadField,
            "action.action",
            "missing: an action object names its action, e.g. {\"action\": \"MoveAhead\"}",
        )),
    }
}

/// The `agentMode` values a reset may ask for: AI2-THOR's agent modes. Case does not matter,
/// as in AI2-THOR (which lower-cases the mode); anything else is a `bad_setting`.
pub const AGENT_MODES: [&str; 5] = ["default", "locobot", "drone", "arm", "stretch"];

/// The init setting keys, as `info` lists them in `defaults` (AI2-THOR's `Controller(...)`
/// keyword names).
pub const SETTING_KEYS: [&str; 10] = [
    "width",
    "height",
    "fieldOfView",
    "gridSize",
    "visibilityDistance",
    "renderDepthImage",
    "renderInstanceSegmentation",
    "rotateStepDegrees",
    "snapToGrid",
    "agentMode",
];

/// The error field for a simulator's `bad_setting` message: `settings.KEY` when the message
/// starts with a setting's key (as thor-lite's do: "fieldOfView 200 must be..."), else
/// `settings`.
fn setting_field(message: &str) -> String {
    let word: String = message
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    match SETTING_KEYS.iter().find(|k| **k == word) {
        Some(key) => format!("settings.{key}"),
        None => "settings".into(),
    }
}

/// The init settings a reset gets: the server's `defaults` with the request's `overrides`
/// laid over them. Every error names the setting (`settings.KEY`): an unknown key or a value
/// of the wrong type (checked key by key, in key order), then a value out of range (checked
/// in [`SETTING_KEYS`] order, see [`check_settings`]).
pub fn resolve_settings(
    defaults: &InitSettings,
    overrides: &Map<String, Value>,
    limits: &Limits,
) -> Result<InitSettings, WireError> {
    let base = match serde_json::to_value(defaults) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(WireError::new(
                ErrorCode::Internal,
                "the server's default settings do not serialise",
            ));
        }
    };
    let mut merged = base.clone();
    for (key, value) in overrides {
        if !base.contains_key(key) {
            let known: Vec<&str> = base.keys().map(String::as_str).collect();
            return Err(WireError::field(
                ErrorCode::BadSetting,
                format!("settings.{key}"),
                format!("unknown setting; known: {}", known.join(", ")),
            ));
        }
        // Check each key alone so that a type error names it.
        let mut one = base.clone();
        one.insert(key.clone(), value.clone());
        if let Err(e) = serde_json::from_value::<InitSettings>(Value::Object(one)) {
            return Err(WireError::field(
                ErrorCode::BadSetting,
                format!("settings.{key}"),
                format!("{value} is not valid here: {e}"),
            ));
        }
        merged.insert(key.clone(), value.clone());
    }
    // Each key was checked alone over valid defaults, and the keys are independent.
    let settings: InitSettings = serde_json::from_value(Value::Object(merged)).map_err(|e| {
        WireError::new(
            ErrorCode::Internal,
            format!("settings that passed one by one do not combine: {e}"),
        )
    })?;
    check_settings(&settings, limits)?;
    Ok(settings)
}

/// Checks the range of every setting; the error names the first one out of range.
///
/// | key | valid |
/// | --- | --- |
/// | `width`, `height` | 1 to `limits.max_side` pixels (`too_large` above) |
/// | `fieldOfView` | more than 0 and less than 180 degrees |
/// | `gridSize`, `visibilityDistance` | more than 0 metres |
/// | `rotateStepDegrees` | 0.1 to 360 degrees |
/// | `agentMode` | one of [`AGENT_MODES`], any case |
pub fn check_settings(s: &InitSettings, limits: &Limits) -> Result<(), WireError> {
    let bad = |key: &str, message: String| {
        WireError::field(ErrorCode::BadSetting, format!("settings.{key}"), message)
    };
    for (key, v) in [("width", s.width), ("height", s.height)] {
        if v == 0 {
            return Err(bad(key, "must be at least 1 pixel".into()));
        }
        if v > limits.max_side {
            return Err(WireError::field(
                ErrorCode::TooLarge,
                format!("settings.{key}"),
                format!(
                    "{v} pixels exceeds this server's limit of {}",
                    limits.max_side
                ),
            ));
        }
    }
    let fov = s.field_of_view;
    if !(fov > 0.0 && fov < 180.0) {
        return Err(bad(
            "fieldOfView",
            format!("{fov} is outside (0, 180) degrees"),
        ));
    }
    for (key, v) in [
        ("gridSize", s.grid_size),
        ("visibilityDistance", s.visibility_distance),
    ] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(bad(key, format!("{v} must be more than 0 metres")));
        }
    }
    let step = s.rotate_step_degrees;
    if !(0.1..=360.0).contains(&step) {
        return Err(bad(
            "rotateStepDegrees",
            format!("{step} is outside [0.1, 360] degrees"),
        ));
    }
    if !AGENT_MODES
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&s.agent_mode))
    {
        return Err(bad(
            "agentMode",
            format!(
                "'{}' is not an AI2-THOR agent mode; use one of {}",
                s.agent_mode,
                AGENT_MODES.join(", ")
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// Element types of frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// `uint8`.
    U8,
    /// `float32`.
    F32,
    /// `uint32`.
    U32,
}

impl Dtype {
    /// The name on the wire (numpy's).
    pub fn as_str(&self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::F32 => "float32",
            Dtype::U32 => "uint32",
        }
    }

    /// Bytes per element.
    pub fn size(&self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F32 | Dtype::U32 => 4,
        }
    }
}

/// The names of frames and the layout each must have.
const FRAME_KINDS: [(&str, Dtype, usize); 3] = [
    ("rgb", Dtype::U8, 3),
    ("depth", Dtype::F32, 0),
    ("instances", Dtype::U32, 0),
];

/// A frame descriptor: one entry of a header's `frames` array.
#[derive(Clone, Debug, PartialEq)]
struct FrameDesc {
    name: String,
    dtype: Dtype,
    /// `[height, width]` or `[height, width, channels]`.
    shape: Vec<usize>,
    legend: Option<Vec<String>>,
}

impl FrameDesc {
    fn new(name: &str, dtype: Dtype, shape: Vec<usize>) -> Self {
        Self {
            name: name.into(),
            dtype,
            shape,
            legend: None,
        }
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("dtype".into(), self.dtype.as_str().into());
        m.insert("shape".into(), self.shape.clone().into());
        m.insert("byteOrder".into(), "little".into());
        m.insert("rowOrder".into(), "top_to_bottom".into());
        if let Some(legend) = &self.legend {
            m.insert("legend".into(), legend.clone().into());
        }
        Value::Object(m)
    }

    fn from_value(v: &Value, i: usize, limits: &Limits) -> Result<Self, WireError> {
        let field = |k: &str| format!("frames[{i}].{k}");
        let bad = |k: &str, msg: String| WireError::field(ErrorCode::BadField, field(k), msg);
        let Value::Object(m) = v else {
            return Err(WireError::field(
                ErrorCode::BadField,
                format!("frames[{i}]"),
                format!("must be an object, got {}", type_name(v)),
            ));
        };
        let get_str = |k: &str| -> Result<&str, WireError> {
            match m.get(k) {
                Some(Value::String(s)) => Ok(s),
                Some(o) => Err(bad(k, format!("must be a string, got {}", type_name(o)))),
                None => Err(bad(k, "missing".into())),
            }
        };
        let name = get_str("name")?;
        let dtype = match get_str("dtype")? {
            "uint8" => Dtype::U8,
            "float32" => Dtype::F32,
            "uint32" => Dtype::U32,
            other => {
                return Err(bad(
                    "dtype",
                    format!("'{other}' is not one of uint8, float32, uint32"),
                ));
            }
        };
        let byte_order = get_str("byteOrder")?;
        if byte_order != "little" {
            return Err(bad(
                "byteOrder",
                format!("'{byte_order}' is not supported; frames are 'little'-endian"),
            ));
        }
        let row_order = get_str("rowOrder")?;
        if row_order != "top_to_bottom" {
            return Err(bad(
                "rowOrder",
                format!("'{row_order}' is not supported; rows go 'top_to_bottom'"),
            ));
        }
        let shape = match m.get("shape") {
            Some(Value::Array(a)) => {
                let mut shape = Vec::with_capacity(a.len());
                for d in a {
                    match d.as_u64() {
                        Some(n) => shape.push(usize::try_from(n).unwrap_or(usize::MAX)),
                        None => {
                            return Err(bad(
                                "shape",
                                format!("dimensions must be non-negative integers, got {d}"),
                            ));
                        }
                    }
                }
                shape
            }
            Some(o) => {
                return Err(bad(
                    "shape",
                    format!("must be an array, got {}", type_name(o)),
                ));
            }
            None => return Err(bad("shape", "missing".into())),
        };
        let Some(&(_, want_dtype, channels)) = FRAME_KINDS.iter().find(|(n, _, _)| *n == name)
        else {
            return Err(bad(
                "name",
                format!("'{name}' is not one of rgb, depth, instances"),
            ));
        };
        if dtype != want_dtype {
            return Err(bad(
                "dtype",
                format!(
                    "'{name}' frames are {}, got {}",
                    want_dtype.as_str(),
                    dtype.as_str()
                ),
            ));
        }
        let want_rank = if channels == 0 { 2 } else { 3 };
        if shape.len() != want_rank || (channels != 0 && shape[2] != channels) {
            let want = if channels == 0 {
                "[height, width]".to_string()
            } else {
                format!("[height, width, {channels}]")
            };
            return Err(bad(
                "shape",
                format!("'{name}' frames have shape {want}, got {shape:?}"),
            ));
        }
        let (h, w) = (shape[0], shape[1]);
        let max = limits.max_side as usize;
        if h == 0 || w == 0 || h > max || w > max {
            return Err(WireError::field(
                ErrorCode::TooLarge,
                field("shape"),
                format!("{w}x{h} is outside 1..={max} pixels per side"),
            ));
        }
        let legend = match m.get("legend") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let mut legend = Vec::with_capacity(a.len());
                for (j, e) in a.iter().enumerate() {
                    match e {
                        Value::String(s) => legend.push(s.clone()),
                        o => {
                            return Err(bad(
                                "legend",
                                format!("entry {j} must be a string, got {}", type_name(o)),
                            ));
                        }
                    }
                }
                Some(legend)
            }
            Some(o) => {
                return Err(bad(
                    "legend",
                    format!("must be an array of objectIds, got {}", type_name(o)),
                ));
            }
        };
        if name == "instances" && legend.as_ref().is_none_or(Vec::is_empty) {
            return Err(bad(
                "legend",
                "instance frames need a legend whose entry 0 is the background".into(),
            ));
        }
        Ok(Self {
            name: name.to_string(),
            dtype,
            shape,
            legend,
        })
    }

    /// The byte length the shape and dtype imply (shapes were bounded by `max_side`, so no
    /// overflow).
    fn byte_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    fn check_len(&self, i: usize, got: usize) -> Result<(), WireError> {
        let want = self.byte_len();
        if got == want {
            return Ok(());
        }
        let code = if got < want {
            ErrorCode::Truncated
        } else {
            ErrorCode::BadField
        };
        Err(WireError::field(
            code,
            format!("frames[{i}]"),
            format!(
                "'{}' frame of shape {:?} {} needs {want} bytes, the part has {got}",
                self.name,
                self.shape,
                self.dtype.as_str()
            ),
        ))
    }
}

fn check_frame_count(declared: usize, present: usize, limits: &Limits) -> Result<(), WireError> {
    if declared > limits.max_frames {
        return Err(WireError::field(
            ErrorCode::TooLarge,
            "frames",
            format!(
                "the header declares {declared} frames; the limit is {}",
                limits.max_frames
            ),
        ));
    }
    if present < declared {
        return Err(WireError::field(
            ErrorCode::Truncated,
            "frames",
            format!("the header declares {declared} frames but only {present} follow it"),
        ));
    }
    if present > declared {
        return Err(WireError::field(
            ErrorCode::StrayFrames,
            "frames",
            format!(
                "{present} frames follow the header but it declares {declared}; \
                 the extra ones are not part of the protocol"
            ),
        ));
    }
    Ok(())
}

/// 32-bit words as little-endian bytes. Converted a block at a time on the stack and appended
/// to an uninitialised buffer, so every output byte is written once (no zeroing pass) and
/// the inner loop is a straight vector copy on little-endian targets.
fn words_to_le_bytes<T: Copy>(data: &[T], le: impl Fn(T) -> [u8; 4]) -> Vec<u8> {
    const BLOCK: usize = 1024;
    let mut out = Vec::with_capacity(data.len() * 4);
    let mut buf = [0u8; BLOCK * 4];
    for chunk in data.chunks(BLOCK) {
        for (o, &v) in buf.chunks_exact_mut(4).zip(chunk) {
            o.copy_from_slice(&le(v));
        }
        out.extend_from_slice(&buf[..chunk.len() * 4]);
    }
    out
}

fn f32_to_le_bytes(data: &[f32]) -> Vec<u8> {
    words_to_le_bytes(data, f32::to_le_bytes)
}

fn u32_to_le_bytes(data: &[u32]) -> Vec<u8> {
    words_to_le_bytes(data, u32::to_le_bytes)
}

fn le_bytes_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn le_bytes_to_u32(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Turns frames into descriptors and parts; the RGB buffer moves without a copy.
fn encode_frames(frames: Frames) -> Result<(Vec<Value>, Vec<Vec<u8>>), WireError> {
    let mut descs = Vec::new();
    let mut parts = Vec::new();
    let bad = |name: &str, w: u32, h: u32, len: usize| {
        WireError::new(
            ErrorCode::Internal,
            format!("the simulator produced a {name} frame of {w}x{h} with {len} elements"),
        )
    };
    if let Some(rgb) = frames.rgb {
        let (w, h) = (rgb.width as usize, rgb.height as usize);
        if rgb.data.len() != w * h * 3 {
            return Err(bad("rgb", rgb.width, rgb.height, rgb.data.len()));
        }
        descs.push(FrameDesc::new("rgb", Dtype::U8, vec![h, w, 3]).to_value());
        parts.push(rgb.data);
    }
    if let Some(depth) = frames.depth {
        let (w, h) = (depth.width as usize, depth.height as usize);
        if depth.data.len() != w * h {
            return Err(bad("depth", depth.width, depth.height, depth.data.len()));
        }
        descs.push(FrameDesc::new("depth", Dtype::F32, vec![h, w]).to_value());
        parts.push(f32_to_le_bytes(&depth.data));
    }
    if let Some(inst) = frames.instances {
        let (w, h) = (inst.width as usize, inst.height as usize);
        if inst.data.len() != w * h {
            return Err(bad("instances", inst.width, inst.height, inst.data.len()));
        }
        let mut d = FrameDesc::new("instances", Dtype::U32, vec![h, w]);
        d.legend = Some(inst.legend);
        descs.push(d.to_value());
        parts.push(u32_to_le_bytes(&inst.data));
    }
    Ok((descs, parts))
}

fn decode_frames<P: Part>(
    descs: &[Value],
    parts: Vec<P>,
    limits: &Limits,
) -> Result<Frames, WireError> {
    check_frame_count(descs.len(), parts.len(), limits)?;
    let mut frames = Frames::default();
    let mut size: Option<(usize, usize)> = None;
    for (i, (desc, part)) in descs.iter().zip(parts).enumerate() {
        let desc = FrameDesc::from_value(desc, i, limits)?;
        desc.check_len(i, part.as_ref().len())?;
        let (h, w) = (desc.shape[0], desc.shape[1]);
        if let Some((h0, w0)) = size
            && (h0, w0) != (h, w)
        {
            return Err(WireError::field(
                ErrorCode::BadField,
                format!("frames[{i}].shape"),
                format!(
                    "'{}' is {w}x{h} but an earlier frame is {w0}x{h0}",
                    desc.name
                ),
            ));
        }
        size = Some((h, w));
        let dup = || {
            WireError::field(
                ErrorCode::BadField,
                format!("frames[{i}].name"),
                format!("a second '{}' frame", desc.name),
            )
        };
        // Bounded by max_side, so these fit in u32.
        let (wu, hu) = (w as u32, h as u32);
        match desc.name.as_str() {
            "rgb" => {
                if frames.rgb.is_some() {
                    return Err(dup());
                }
                frames.rgb = Some(RgbImage {
                    width: wu,
                    height: hu,
                    data: part.into_vec(),
                });
            }
            "depth" => {
                if frames.depth.is_some() {
                    return Err(dup());
                }
                frames.depth = Some(DepthImage {
                    width: wu,
                    height: hu,
                    data: le_bytes_to_f32(part.as_ref()),
                });
            }
            _ => {
                if frames.instances.is_some() {
                    return Err(dup());
                }
                let legend = desc.legend.unwrap_or_default();
                let data = le_bytes_to_u32(part.as_ref());
                if let Some(bad) = data.iter().find(|&&id| id as usize >= legend.len()) {
                    return Err(WireError::field(
                        ErrorCode::BadField,
                        format!("frames[{i}]"),
                        format!(
                            "instance id {bad} has no legend entry (the legend has {})",
                            legend.len()
                        ),
                    ));
                }
                frames.instances = Some(InstanceImage {
                    width: wu,
                    height: hu,
                    data,
                    legend,
                });
            }
        }
    }
    Ok(frames)
}

/// A received message part: bytes to borrow, or to move into a `Vec` (copying only when the
/// part does not already own one).
pub trait Part: AsRef<[u8]> {
    /// The bytes as an owned vector.
    fn into_vec(self) -> Vec<u8>;
}

impl Part for Vec<u8> {
    fn into_vec(self) -> Vec<u8> {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ReplyHeaderOut<'a> {
    protocol: &'static str,
    seq: Option<u64>,
    kind: Option<&'static str>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a WireError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a ServerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Metadata>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    frames: Vec<Value>,
}

#[derive(Deserialize)]
struct ReplyHeaderIn {
    protocol: String,
    seq: Option<u64>,
    kind: Option<String>,
    ok: bool,
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    info: Option<ServerInfo>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    frames: Vec<Value>,
}

/// Encodes a reply into its message parts. Frames move into the parts (the RGB buffer is
/// not copied). A frame whose buffer does not match its size becomes an `internal` error
/// reply rather than a malformed message.
pub fn encode_reply(seq: Option<u64>, kind: Option<Kind>, reply: Reply) -> Vec<Vec<u8>> {
    let kind_str = kind.map(|k| k.as_str());
    // Room for the header up front: an event's metadata is about 1.5 kB per object, and
    // growing a 100 kB buffer by doubling copies it several times.
    let capacity = match &reply {
        Reply::Event(e) => 4096 + 2048 * e.metadata.objects.len(),
        _ => 4096,
    };
    let header = |error: Option<&WireError>,
                  info: Option<&ServerInfo>,
                  metadata: Option<&Metadata>,
                  frames: Vec<Value>| {
        let h = ReplyHeaderOut {
            protocol: PROTOCOL_VERSION,
            seq,
            kind: kind_str,
            ok: error.is_none(),
            error,
            info,
            metadata,
            frames,
        };
        let mut out = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut out, &h).map(|()| out)
    };
    let result = match reply {
        Reply::Error(e) => header(Some(&e), None, None, Vec::new()).map(|h| vec![h]),
        Reply::Info(info) => header(None, Some(&info), None, Vec::new()).map(|h| vec![h]),
        Reply::Pong | Reply::Closing => header(None, None, None, Vec::new()).map(|h| vec![h]),
        Reply::Event(event) => {
            let SimEvent { metadata, frames } = *event;
            match encode_frames(frames) {
                Ok((descs, parts)) => header(None, None, Some(&metadata), descs).map(|h| {
                    let mut out = Vec::with_capacity(parts.len() + 1);
                    out.push(h);
                    out.extend(parts);
                    out
                }),
                Err(e) => header(Some(&e), None, None, Vec::new()).map(|h| vec![h]),
            }
        }
    };
    match result {
        Ok(parts) => parts,
        Err(e) => {
            // Metadata with a non-serialisable value (cannot happen with serde_json's types,
            // but never send nothing).
            let err = WireError::new(
                ErrorCode::Internal,
                format!("the reply could not be serialised: {e}"),
            );
            vec![header(Some(&err), None, None, Vec::new()).unwrap_or_default()]
        }
    }
}

/// Decodes a reply from its message parts.
pub fn decode_reply<P: Part>(parts: Vec<P>, limits: &Limits) -> Result<ReplyEnvelope, ReplyError> {
    let mut parts = parts.into_iter();
    let Some(header) = parts.next() else {
        return Err(WireError::new(ErrorCode::Malformed, "empty reply").into());
    };
    let h: ReplyHeaderIn = match serde_json::from_slice(header.as_ref()) {
        Ok(h) => h,
        Err(e) => {
            // Tell a version mismatch apart from a malformed reply.
            let protocol = serde_json::from_slice::<Value>(header.as_ref())
                .ok()
                .and_then(|v| v.get("protocol").cloned());
            return Err(match protocol {
                Some(Value::String(p)) if p != PROTOCOL_VERSION => ReplyError::Version(p),
                Some(Value::String(_)) => WireError::field(
                    ErrorCode::Malformed,
                    "header",
                    format!("the reply header does not follow {PROTOCOL_VERSION}: {e}"),
                )
                .into(),
                _ => ReplyError::Version(format!(
                    "something that is not {PROTOCOL_VERSION} (its header has no protocol \
                     field: {e})"
                )),
            });
        }
    };
    if h.protocol != PROTOCOL_VERSION {
        return Err(ReplyError::Version(h.protocol));
    }
    let kind = match &h.kind {
        None => None,
        Some(k) => Some(Kind::parse(k).ok_or_else(|| {
            WireError::field(
                ErrorCode::BadField,
                "kind",
                format!("the reply names an unknown kind '{k}'"),
            )
        })?),
    };
    let rest: Vec<P> = parts.collect();
    let reply = if !h.ok {
        if !rest.is_empty() || !h.frames.is_empty() {
            return Err(WireError::field(
                ErrorCode::StrayFrames,
                "frames",
                "an error reply carries no frames",
            )
            .into());
        }
        let error = h.error.ok_or_else(|| {
            WireError::field(
                ErrorCode::BadField,
                "error",
                "an error reply (ok: false) needs an error object",
            )
        })?;
        Reply::Error(error)
    } else {
        match kind {
            None => {
                return Err(WireError::field(
                    ErrorCode::BadField,
                    "kind",
                    "a successful reply names the kind of the request it answers",
                )
                .into());
            }
            Some(Kind::Info) => {
                check_frame_count(h.frames.len(), rest.len(), limits)?;
                let info = h.info.ok_or_else(|| {
                    WireError::field(ErrorCode::BadField, "info", "missing from an info reply")
                })?;
                Reply::Info(Box::new(info))
            }
            Some(Kind::Ping) | Some(Kind::Close) => {
                check_frame_count(h.frames.len(), rest.len(), limits)?;
                if kind == Some(Kind::Ping) {
                    Reply::Pong
                } else {
                    Reply::Closing
                }
            }
            Some(Kind::Reset) | Some(Kind::Step) => {
                let metadata = h.metadata.ok_or_else(|| {
                    WireError::field(
                        ErrorCode::BadField,
                        "metadata",
                        "missing from a reset/step reply",
                    )
                })?;
                let frames = decode_frames(&h.frames, rest, limits)?;
                Reply::Event(Box::new(SimEvent { metadata, frames }))
            }
        }
    };
    Ok(ReplyEnvelope {
        seq: h.seq,
        kind,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_agent::thor::{ObjectMeta, Vec3};
    use serde_json::json;

    fn limits() -> Limits {
        Limits::default()
    }

    fn req(v: Value) -> Vec<Vec<u8>> {
        vec![serde_json::to_vec(&v).unwrap()]
    }

    fn err_of(parts: &[Vec<u8>]) -> RequestError {
        decode_request(parts, &limits()).expect_err("should be refused")
    }

    fn sample_event(w: u32, h: u32) -> SimEvent {
        let mut metadata = Metadata::default();
        metadata.agent.position = Vec3::new(1.0, 0.9, -2.5);
        metadata.agent.rotation = Vec3::new(0.0, 90.0, 0.0);
        metadata.agent.camera_horizon = 30.0;
        metadata.last_action = "MoveAhead".into();
        metadata.last_action_success = false;
        metadata.error_message = "blocked".into();
        metadata.action_return = json!([{"x": 1.0, "y": 0.9, "z": 2.0}]);
        metadata.objects.push(ObjectMeta {
            object_id: "Apple|+01.00|+00.90|-02.00".into(),
            object_type: "Apple".into(),
            visible: true,
            ..Default::default()
        });
        let n = (w * h) as usize;
        let rgb = RgbImage::new(w, h, (0..n * 3).map(|i| (i % 251) as u8).collect()).unwrap();
        let depth = DepthImage {
            width: w,
            height: h,
            data: (0..n).map(|i| i as f32 * 0.25 + 0.125).collect(),
        };
        let instances = InstanceImage {
            width: w,
            height: h,
            data: (0..n).map(|i| (i % 2) as u32).collect(),
            legend: vec!["".into(), "Apple|+01.00|+00.90|-02.00".into()],
        };
        SimEvent {
            metadata,
            frames: Frames {
                rgb: Some(rgb),
                depth: Some(depth),
                instances: Some(instances),
            },
        }
    }

    #[test]
    fn requests_round_trip() {
        let mut settings = Map::new();
        settings.insert("width".into(), json!(64));
        let mut action = Map::new();
        action.insert("action".into(), json!("PickupObject"));
        action.insert("objectId".into(), json!("Apple|1|2|3"));
        for (seq, r) in [
            (0, Request::Info),
            (1, Request::Ping),
            (2, Request::Close),
            (
                3,
                Request::Reset {
                    scene: "FloorPlan5".into(),
                    settings,
                },
            ),
            (u64::MAX, Request::Step { action }),
        ] {
            let bytes = encode_request(seq, &r);
            let (s, back) = decode_request(&[bytes], &limits()).unwrap();
            assert_eq!((s, back), (seq, r));
        }
    }

    #[test]
    fn event_replies_round_trip_with_frames() {
        let event = sample_event(5, 3);
        let parts = encode_reply(
            Some(7),
            Some(Kind::Step),
            Reply::Event(Box::new(event.clone())),
        );
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[1].len(), 5 * 3 * 3);
        assert_eq!(parts[2].len(), 5 * 3 * 4);
        // Depth is little-endian float32, top row first.
        assert_eq!(&parts[2][4..8], &0.375f32.to_le_bytes());
        let header: Value = serde_json::from_slice(&parts[0]).unwrap();
        assert_eq!(header["protocol"], PROTOCOL_VERSION);
        assert_eq!(header["metadata"]["lastActionSuccess"], false);
        assert_eq!(header["metadata"]["errorMessage"], "blocked");
        assert_eq!(
            header["metadata"]["objects"][0]["objectId"],
            "Apple|+01.00|+00.90|-02.00"
        );
        assert_eq!(header["frames"][0]["shape"], json!([3, 5, 3]));
        assert_eq!(header["frames"][1]["dtype"], "float32");
        assert_eq!(
            header["frames"][2]["legend"][1],
            "Apple|+01.00|+00.90|-02.00"
        );
        let back = decode_reply(parts, &limits()).unwrap();
        assert_eq!(back.seq, Some(7));
        assert_eq!(back.kind, Some(Kind::Step));
        assert_eq!(back.reply, Reply::Event(Box::new(event)));
    }

    #[test]
    fn other_replies_round_trip() {
        let info = ServerInfo {
            protocol: PROTOCOL_VERSION.into(),
            server: "test".into(),
            server_version: "1".into(),
            simulator: SimulatorInfo {
                name: "sim".into(),
                version: "2".into(),
                scenes: vec!["FloorPlan5".into()],
                actions: vec!["MoveAhead".into()],
            },
            limits: Some(limits()),
            defaults: Map::new(),
        };
        for (kind, reply) in [
            (Some(Kind::Info), Reply::Info(Box::new(info))),
            (Some(Kind::Ping), Reply::Pong),
            (Some(Kind::Close), Reply::Closing),
            (
                None,
                Reply::Error(WireError::field(ErrorCode::UnknownKind, "kind", "nope")),
            ),
            (Some(Kind::Reset), Reply::Event(Box::default())),
        ] {
            let parts = encode_reply(Some(3), kind, reply.clone());
            let back = decode_reply(parts, &limits()).unwrap();
            assert_eq!(back.reply, reply);
            assert_eq!(back.kind, kind);
        }
    }

    #[test]
    fn malformed_headers_are_refused_with_codes() {
        assert_eq!(err_of(&[]).error.code, ErrorCode::Malformed);
        assert_eq!(
            err_of(&[b"{not json".to_vec()]).error.code,
            ErrorCode::Malformed
        );
        assert_eq!(err_of(&[vec![0xff, 0xfe]]).error.code, ErrorCode::Malformed);
        let e = err_of(&req(json!([1, 2])));
        assert_eq!(e.error.code, ErrorCode::Malformed);
        assert!(e.error.message.contains("an array"), "{}", e.error);
        let big = vec![b' '; limits().max_header_bytes + 1];
        assert_eq!(err_of(&[big]).error.code, ErrorCode::TooLarge);
    }

    #[test]
    fn version_kind_and_seq_errors_name_the_field() {
        let e = err_of(&req(
            json!({"protocol": "ember-sim/2", "seq": 4, "kind": "ping"}),
        ));
        assert_eq!(e.error.code, ErrorCode::Version);
        assert_eq!(e.seq, Some(4));
        assert!(
            e.error.message.contains("ember-sim/2") && e.error.message.contains(PROTOCOL_VERSION)
        );
        let e = err_of(&req(json!({"seq": 4, "kind": "ping"})));
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::BadField, Some("protocol"))
        );
        let e = err_of(&req(
            json!({"protocol": PROTOCOL_VERSION, "seq": 5, "kind": "dance"}),
        ));
        assert_eq!(e.error.code, ErrorCode::UnknownKind);
        assert_eq!(e.seq, Some(5));
        assert!(e.error.message.contains("dance"));
        let e = err_of(&req(
            json!({"protocol": PROTOCOL_VERSION, "seq": 5, "kind": 3}),
        ));
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::BadField, Some("kind"))
        );
        let e = err_of(&req(
            json!({"protocol": PROTOCOL_VERSION, "seq": -1, "kind": "ping"}),
        ));
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::BadField, Some("seq"))
        );
        assert_eq!(e.kind, Some(Kind::Ping));
        let e = err_of(&req(json!({"protocol": PROTOCOL_VERSION, "kind": "ping"})));
        assert_eq!(e.error.field.as_deref(), Some("seq"));
    }

    #[test]
    fn wrong_field_types_name_the_field() {
        let base = |extra: Value| {
            let mut v = json!({"protocol": PROTOCOL_VERSION, "seq": 1});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            req(v)
        };
        let cases = [
            (json!({"kind": "step"}), "action"),
            (json!({"kind": "step", "action": "MoveAhead"}), "action"),
            (json!({"kind": "step", "action": {}}), "action.action"),
            (
                json!({"kind": "step", "action": {"action": 7}}),
                "action.action",
            ),
            (
                json!({"kind": "step", "action": {"action": ""}}),
                "action.action",
            ),
            (json!({"kind": "reset"}), "scene"),
            (json!({"kind": "reset", "scene": 5}), "scene"),
            (json!({"kind": "reset", "scene": ""}), "scene"),
            (
                json!({"kind": "reset", "scene": "FloorPlan5", "settings": [1]}),
                "settings",
            ),
            (json!({"kind": "ping", "frames": 3}), "frames"),
        ];
        for (extra, field) in cases {
            let e = err_of(&base(extra.clone()));
            assert_eq!(e.error.code, ErrorCode::BadField, "{extra}: {}", e.error);
            assert_eq!(e.error.field.as_deref(), Some(field), "{extra}");
            assert_eq!(e.seq, Some(1));
        }
    }

    #[test]
    fn frame_count_mismatches_are_truncated_or_stray() {
        let desc = json!({"name": "rgb", "dtype": "uint8", "shape": [1, 1, 3],
                          "byteOrder": "little", "rowOrder": "top_to_bottom"});
        let header =
            json!({"protocol": PROTOCOL_VERSION, "seq": 2, "kind": "ping", "frames": [desc]});
        let e = err_of(&req(header.clone()));
        assert_eq!(e.error.code, ErrorCode::Truncated);
        let mut parts = req(json!({"protocol": PROTOCOL_VERSION, "seq": 2, "kind": "ping"}));
        parts.push(vec![1, 2, 3]);
        assert_eq!(err_of(&parts).error.code, ErrorCode::StrayFrames);
        // A declared frame that is shorter than its shape says is truncated too.
        let mut parts = req(header.clone());
        parts.push(vec![1, 2]);
        assert_eq!(err_of(&parts).error.code, ErrorCode::Truncated);
        // A well-formed frame is still not part of a v1 request.
        let mut parts = req(header);
        parts.push(vec![1, 2, 3]);
        let e = err_of(&parts);
        assert_eq!(
            (e.error.code, e.error.field.as_deref()),
            (ErrorCode::BadField, Some("frames"))
        );
        // Absurd declarations.
        let many = json!({"protocol": PROTOCOL_VERSION, "seq": 2, "kind": "ping",
                          "frames": vec![json!({}); 100]});
        assert_eq!(err_of(&req(many)).error.code, ErrorCode::TooLarge);
        let huge = json!({"protocol": PROTOCOL_VERSION, "seq": 2, "kind": "ping",
            "frames": [{"name": "depth", "dtype": "float32", "shape": [1u64 << 40, 1u64 << 40],
                        "byteOrder": "little", "rowOrder": "top_to_bottom"}]});
        let mut parts = req(huge);
        parts.push(vec![0; 4]);
        assert_eq!(err_of(&parts).error.code, ErrorCode::TooLarge);
    }

    #[test]
    fn settings_resolve_over_defaults_and_name_bad_keys() {
        let d = InitSettings::default();
        let mut o = Map::new();
        o.insert("width".into(), json!(800));
        o.insert("renderDepthImage".into(), json!(true));
        let s = resolve_settings(&d, &o, &limits()).unwrap();
        assert_eq!(
            (s.width, s.height, s.render_depth_image),
            (800, d.height, true)
        );
        let check = |k: &str, v: Value, code: ErrorCode| {
            let mut o = Map::new();
            o.insert(k.into(), v);
            let e = resolve_settings(&d, &o, &limits()).unwrap_err();
            assert_eq!(e.code, code, "{k}: {e}");
            assert_eq!(e.field.as_deref(), Some(format!("settings.{k}").as_str()));
        };
        check("widht", json!(3), ErrorCode::BadSetting);
        check("width", json!("wide"), ErrorCode::BadSetting);
        check("width", json!(-4), ErrorCode::BadSetting);
        check("width", json!(0), ErrorCode::BadSetting);
        check("height", json!(100_000), ErrorCode::TooLarge);
        check("height", json!(0), ErrorCode::BadSetting);
        check("width", json!(64.0), ErrorCode::BadSetting);
        check("renderDepthImage", json!("yes"), ErrorCode::BadSetting);
        check("snapToGrid", json!(null), ErrorCode::BadSetting);
        // Out of range: every key is named, never just `settings`.
        check("fieldOfView", json!(0), ErrorCode::BadSetting);
        check("fieldOfView", json!(180), ErrorCode::BadSetting);
        check("gridSize", json!(0), ErrorCode::BadSetting);
        check("gridSize", json!(-0.25), ErrorCode::BadSetting);
        check("visibilityDistance", json!(0.0), ErrorCode::BadSetting);
        check("rotateStepDegrees", json!(0.05), ErrorCode::BadSetting);
        check("rotateStepDegrees", json!(361), ErrorCode::BadSetting);
        check("agentMode", json!("robot"), ErrorCode::BadSetting);
        check("agentMode", json!(""), ErrorCode::BadSetting);
        check("agentMode", json!(3), ErrorCode::BadSetting);
        let mut o = Map::new();
        o.insert("agentMode".into(), json!("robot"));
        let e = resolve_settings(&d, &o, &limits()).unwrap_err();
        assert!(
            e.message.contains("robot") && e.message.contains("locobot"),
            "{e}"
        );
        // AI2-THOR's modes are accepted, in any case; the range edges too.
        for (k, v) in [
            ("agentMode", json!("arm")),
            ("agentMode", json!("Locobot")),
            ("agentMode", json!("DEFAULT")),
            ("fieldOfView", json!(179.5)),
            ("rotateStepDegrees", json!(360)),
            ("rotateStepDegrees", json!(0.1)),
            ("width", json!(limits().max_side)),
        ] {
            let mut o = Map::new();
            o.insert(k.into(), v.clone());
            assert!(resolve_settings(&d, &o, &limits()).is_ok(), "{k} = {v}");
        }
        // Bad defaults are named the same way (`ember sim serve` checks its own).
        let bad_default = InitSettings {
            grid_size: 0.0,
            ..InitSettings::default()
        };
        let e = resolve_settings(&bad_default, &Map::new(), &limits()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings.gridSize"));
        // Every key `info` lists as a default is one `SETTING_KEYS` names.
        let keys: Vec<String> = match serde_json::to_value(&d).unwrap() {
            Value::Object(m) => m.keys().cloned().collect(),
            _ => unreachable!(),
        };
        let mut want: Vec<String> = SETTING_KEYS.iter().map(|k| k.to_string()).collect();
        want.sort();
        assert_eq!(keys, want);
    }

    #[test]
    fn simulator_setting_refusals_name_the_key() {
        // thor-lite's messages start with the key; the wire error names it.
        for (message, field) in [
            (
                "fieldOfView 200 must be in (0, 180) degrees",
                "settings.fieldOfView",
            ),
            (
                "width x height 0x10 must be within 1..=4096",
                "settings.width",
            ),
            ("agentMode 'arm' is not simulated", "settings.agentMode"),
            ("something else", "settings"),
        ] {
            let e = WireError::from(&SimError::BadSetting(message.into()));
            assert_eq!(e.code, ErrorCode::BadSetting);
            assert_eq!(e.field.as_deref(), Some(field), "{message}");
        }
    }

    #[test]
    fn malformed_replies_are_detected() {
        let good = encode_reply(
            Some(1),
            Some(Kind::Step),
            Reply::Event(Box::new(sample_event(2, 2))),
        );
        // Missing a frame.
        let mut p = good.clone();
        p.pop();
        assert!(
            matches!(decode_reply(p, &limits()), Err(ReplyError::Invalid(e)) if e.code == ErrorCode::Truncated)
        );
        // Extra frame.
        let mut p = good.clone();
        p.push(vec![0]);
        assert!(
            matches!(decode_reply(p, &limits()), Err(ReplyError::Invalid(e)) if e.code == ErrorCode::StrayFrames)
        );
        // Short frame.
        let mut p = good.clone();
        p[2].truncate(3);
        assert!(
            matches!(decode_reply(p, &limits()), Err(ReplyError::Invalid(e)) if e.code == ErrorCode::Truncated)
        );
        // Instance id outside the legend.
        let mut p = good.clone();
        p[3][0] = 9;
        assert!(
            matches!(decode_reply(p, &limits()), Err(ReplyError::Invalid(e)) if e.code == ErrorCode::BadField)
        );
        // Another version, and no version at all.
        let mut p = good.clone();
        let mut h: Value = serde_json::from_slice(&p[0]).unwrap();
        h["protocol"] = json!("ember-sim/9");
        p[0] = serde_json::to_vec(&h).unwrap();
        assert_eq!(
            decode_reply(p, &limits()),
            Err(ReplyError::Version("ember-sim/9".into()))
        );
        assert!(matches!(
            decode_reply(vec![b"hello".to_vec()], &limits()),
            Err(ReplyError::Version(_))
        ));
    }

    #[test]
    fn sim_errors_map_to_codes_and_fields() {
        let e = WireError::from(&SimError::BadParameter {
            action: "PickupObject".into(),
            parameter: "objectId".into(),
            problem: "must be a string".into(),
        });
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::BadField, Some("action.objectId"))
        );
        assert!(e.message.contains("PickupObject"));
        let e = WireError::from(&SimError::UnknownAction("Fly".into()));
        assert_eq!(e.code, ErrorCode::UnknownAction);
        assert_eq!(WireError::from(&SimError::NoScene).code, ErrorCode::NoScene);
        assert_eq!(
            WireError::from(&SimError::UnknownScene("X".into())).code,
            ErrorCode::UnknownScene
        );
        assert_eq!(
            WireError::from(&SimError::Failure("boom".into())).code,
            ErrorCode::SimFailure
        );
        // Codes from a newer server still decode.
        let w: WireError =
            serde_json::from_value(json!({"code": "brand_new", "message": "m"})).unwrap();
        assert_eq!(w.code, ErrorCode::Unknown);
    }
}
