#!/usr/bin/env python3
"""thor_bridge.py: the ember-sim/1 bridge protocol in front of the real AI2-THOR.

ember's agent talks to simulators over one ZeroMQ protocol (sim_bridge/PROTOCOL.md). This
server speaks it for `ai2thor.controller.Controller`, so an agent that runs against
thor-lite (ember's embedded simulator) runs unchanged against the real AI2-THOR:

    python thor_bridge.py --endpoint tcp://127.0.0.1:5556
    ember ... --world tcp://127.0.0.1:5556

The first `reset` request starts the Unity player (`Controller(scene=..., **settings)`), later
ones call `controller.reset(...)`. `step` requests carry AI2-THOR action objects and are
passed to `controller.step(...)`; replies carry `event.metadata` unchanged, the RGB frame,
depth in metres and instance segmentation as uint32 ids with a legend.

Every malformed request gets an error reply (a code and a message naming the field) and the
server keeps serving; so does a player that cannot start (no network to download it, no
display...): the `reset` is answered with a `sim_failure` error that names the cause.
See README.md beside this file for running it against a real AI2-THOR install.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
from importlib import metadata as importlib_metadata
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import zmq

PROTOCOL_VERSION = "ember-sim/1"
SERVER_NAME = "thor_bridge.py"
SERVER_VERSION = "0.1.0"
KINDS = ("info", "reset", "step", "close", "ping")

# Limits (the same defaults as the Rust server; see PROTOCOL.md).
DEFAULT_LIMITS = {
    "maxHeaderBytes": 1 << 20,
    "maxMessageBytes": 16 << 20,
    "maxFrames": 8,
    "maxSide": 4096,
}

# Init settings a reset gets for the keys it leaves out (AI2-THOR's Controller defaults, as
# ember's InitSettings states them).
DEFAULT_SETTINGS = {
    "width": 300,
    "height": 300,
    "fieldOfView": 90.0,
    "gridSize": 0.25,
    "visibilityDistance": 1.5,
    "renderDepthImage": False,
    "renderInstanceSegmentation": False,
    "rotateStepDegrees": 90.0,
    "snapToGrid": True,
    "agentMode": "default",
}

# Type checks for the settings the bridge knows; other keys go to the Controller as they are.
_SETTING_TYPES = {
    "width": "int",
    "height": "int",
    "fieldOfView": "number",
    "gridSize": "number",
    "visibilityDistance": "number",
    "renderDepthImage": "bool",
    "renderInstanceSegmentation": "bool",
    "rotateStepDegrees": "number",
    "snapToGrid": "bool",
    "agentMode": "str",
}

# AI2-THOR's agent modes: the only `agentMode` values a reset may ask for (any case, as
# AI2-THOR lower-cases the mode). The same list as the Rust server's (protocol::AGENT_MODES).
AGENT_MODES = ("default", "locobot", "drone", "arm", "stretch")

# The largest `seq`: requests carry an unsigned 64-bit integer.
MAX_SEQ = (1 << 64) - 1

# Settings that would change what the frames mean; the protocol fixes them.
_FORBIDDEN_SETTINGS = {
    "depth_format": "depth is always sent in metres",
    "server_class": "the bridge owns the connection to the player",
}

FRAME_KINDS = {"rgb": ("uint8", 3), "depth": ("float32", 0), "instances": ("uint32", 0)}
DTYPE_SIZES = {"uint8": 1, "float32": 4, "uint32": 4}

log = logging.getLogger("thor_bridge")


class ProtocolError(Exception):
    """An error that becomes an error reply."""

    def __init__(self, code: str, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message

    def to_json(self) -> Dict[str, Any]:
        out = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out

    def __str__(self) -> str:
        if self.field:
            return f"[{self.code}] {self.field}: {self.message}"
        return f"[{self.code}] {self.message}"


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


# ------------------------------------------------------------------------------------------
# Requests
# ------------------------------------------------------------------------------------------


def check_frame_count(declared: int, present: int, limits: Dict[str, int]) -> None:
    if declared > limits["maxFrames"]:
        raise ProtocolError(
            "too_large",
            f"the header declares {declared} frames; the limit is {limits['maxFrames']}",
            "frames",
        )
    if present < declared:
        raise ProtocolError(
            "truncated",
            f"the header declares {declared} frames but only {present} follow it",
            "frames",
        )
    if present > declared:
        raise ProtocolError(
            "stray_frames",
            f"{present} frames follow the header but it declares {declared}; "
            "the extra ones are not part of the protocol",
            "frames",
        )


def check_frame_desc(desc: Any, i: int, nbytes: int, limits: Dict[str, int]) -> Dict[str, Any]:
    """Validates one frame descriptor against its part's length."""
    f = lambda k: f"frames[{i}].{k}"  # noqa: E731
    if not isinstance(desc, dict):
        raise ProtocolError("bad_field", f"must be an object, got {_type_name(desc)}", f"frames[{i}]")
    for key in ("name", "dtype", "byteOrder", "rowOrder"):
        if key not in desc:
            raise ProtocolError("bad_field", "missing", f(key))
        if not isinstance(desc[key], str):
            raise ProtocolError("bad_field", f"must be a string, got {_type_name(desc[key])}", f(key))
    if desc["dtype"] not in DTYPE_SIZES:
        raise ProtocolError("bad_field", f"'{desc['dtype']}' is not one of uint8, float32, uint32", f("dtype"))
    if desc["byteOrder"] != "little":
        raise ProtocolError("bad_field", f"'{desc['byteOrder']}' is not supported; frames are 'little'-endian", f("byteOrder"))
    if desc["rowOrder"] != "top_to_bottom":
        raise ProtocolError("bad_field", f"'{desc['rowOrder']}' is not supported; rows go 'top_to_bottom'", f("rowOrder"))
    shape = desc.get("shape")
    if shape is None:
        raise ProtocolError("bad_field", "missing", f("shape"))
    if not isinstance(shape, list):
        raise ProtocolError("bad_field", f"must be an array, got {_type_name(shape)}", f("shape"))
    if not all(_is_uint(d) for d in shape):
        raise ProtocolError("bad_field", "dimensions must be non-negative integers", f("shape"))
    name = desc["name"]
    if name not in FRAME_KINDS:
        raise ProtocolError("bad_field", f"'{name}' is not one of rgb, depth, instances", f("name"))
    want_dtype, channels = FRAME_KINDS[name]
    if desc["dtype"] != want_dtype:
        raise ProtocolError("bad_field", f"'{name}' frames are {want_dtype}, got {desc['dtype']}", f("dtype"))
    rank = 3 if channels else 2
    if len(shape) != rank or (channels and shape[2] != channels):
        raise ProtocolError("bad_field", f"'{name}' frames have rank {rank}, got {shape}", f("shape"))
    h, w = shape[0], shape[1]
    side = limits["maxSide"]
    if h == 0 or w == 0 or h > side or w > side:
        raise ProtocolError("too_large", f"{w}x{h} is outside 1..={side} pixels per side", f("shape"))
    want = DTYPE_SIZES[want_dtype] * math.prod(shape)
    if nbytes != want:
        code = "truncated" if nbytes < want else "bad_field"
        raise ProtocolError(code, f"'{name}' frame of shape {shape} needs {want} bytes, the part has {nbytes}", f"frames[{i}]")
    return desc


def decode_request(parts: Sequence[bytes], limits: Dict[str, int]) -> Tuple[int, str, Dict[str, Any]]:
    """Decodes a request. Raises ProtocolError with `.seq` and `.kind` set where known."""
    seq: Optional[int] = None
    kind: Optional[str] = None

    def fail(code: str, message: str, field: Optional[str] = None) -> ProtocolError:
        e = ProtocolError(code, message, field)
        e.seq = seq  # type: ignore[attr-defined]
        e.kind = kind  # type: ignore[attr-defined]
        return e

    if not parts:
        raise fail("malformed", "empty message")
    header = parts[0]
    if len(header) > limits["maxHeaderBytes"]:
        raise fail("too_large", f"the request header is {len(header)} bytes; the limit is {limits['maxHeaderBytes']} bytes", "header")
    try:
        h = json.loads(bytes(header).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise fail("malformed", f"the header is not valid UTF-8 JSON: {e}", "header")
    if not isinstance(h, dict):
        raise fail("malformed", f"the header must be a JSON object, got {_type_name(h)}", "header")

    if _is_uint(h.get("seq")) and h["seq"] <= MAX_SEQ:
        seq = h["seq"]
    if isinstance(h.get("kind"), str) and h["kind"] in KINDS:
        kind = h["kind"]

    if "protocol" not in h:
        raise fail("bad_field", f"missing; this server speaks '{PROTOCOL_VERSION}'", "protocol")
    if not isinstance(h["protocol"], str):
        raise fail("bad_field", f"must be a string, got {_type_name(h['protocol'])}", "protocol")
    if h["protocol"] != PROTOCOL_VERSION:
        raise fail("version", f"the request speaks '{h['protocol']}', this server speaks '{PROTOCOL_VERSION}'", "protocol")
    if "seq" not in h:
        raise fail("bad_field", "missing", "seq")
    if seq is None:
        raise fail("bad_field", f"must be an integer from 0 to 2^64-1, got {json.dumps(h['seq'])}", "seq")
    if "kind" not in h:
        raise fail("bad_field", "missing", "kind")
    if not isinstance(h["kind"], str):
        raise fail("bad_field", f"must be a string, got {_type_name(h['kind'])}", "kind")
    if kind is None:
        raise fail("unknown_kind", f"unknown request kind '{h['kind']}'; known: {', '.join(KINDS)}", "kind")

    frames = h.get("frames")
    if frames is None:
        frames = []
    if not isinstance(frames, list):
        raise fail("bad_field", f"must be an array, got {_type_name(frames)}", "frames")
    try:
        check_frame_count(len(frames), len(parts) - 1, limits)
        for i, (desc, part) in enumerate(zip(frames, parts[1:])):
            check_frame_desc(desc, i, len(part), limits)
    except ProtocolError as e:
        raise fail(e.code, e.message, e.field)
    if frames:
        raise fail("bad_field", f"'{kind}' requests carry no frames in {PROTOCOL_VERSION}", "frames")

    body: Dict[str, Any] = {}
    if kind == "reset":
        if "scene" not in h:
            raise fail("bad_field", "missing", "scene")
        scene = h["scene"]
        if not isinstance(scene, str):
            raise fail("bad_field", f"must be a string, got {_type_name(scene)}", "scene")
        if not 1 <= len(scene.encode("utf-8")) <= 256:
            raise fail("bad_field", f"must be 1 to 256 bytes long, got {len(scene.encode('utf-8'))}", "scene")
        settings = h.get("settings")
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise fail("bad_field", f"must be an object, got {_type_name(settings)}", "settings")
        body = {"scene": scene, "settings": settings}
    elif kind == "step":
        if "action" not in h:
            raise fail("bad_field", "missing", "action")
        action = h["action"]
        if not isinstance(action, dict):
            raise fail("bad_field", "must be an AI2-THOR action object such as {\"action\": \"MoveAhead\"}, got " + _type_name(action), "action")
        try:
            validate_action(action)
        except ProtocolError as e:
            raise fail(e.code, e.message, e.field)
        body = {"action": action}
    return seq, kind, body


def validate_action(action: Dict[str, Any]) -> None:
    name = action.get("action")
    if "action" not in action:
        raise ProtocolError("bad_field", "missing: an action object names its action, e.g. {\"action\": \"MoveAhead\"}", "action.action")
    if not isinstance(name, str):
        raise ProtocolError("bad_field", f"the action name must be a string, got {_type_name(name)}", "action.action")
    if not 1 <= len(name.encode("utf-8")) <= 128:
        raise ProtocolError("bad_field", f"the action name must be 1 to 128 bytes long, got {len(name)}", "action.action")


def resolve_settings(defaults: Dict[str, Any], overrides: Dict[str, Any], limits: Dict[str, int]) -> Dict[str, Any]:
    """The server's defaults with the request's settings over them, type- and range-checked
    as the Rust server checks them (PROTOCOL.md, "Settings"). Every error names the key."""
    settings = dict(defaults)
    for key, value in overrides.items():
        field = f"settings.{key}"
        if key in _FORBIDDEN_SETTINGS:
            raise ProtocolError("bad_setting", f"cannot be set over the bridge: {_FORBIDDEN_SETTINGS[key]}", field)
        kind = _SETTING_TYPES.get(key)
        ok = True
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "number":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "str":
            ok = isinstance(value, str)
        if not ok:
            raise ProtocolError("bad_setting", f"{json.dumps(value)} is not valid here: expected {'an integer' if kind == 'int' else 'a ' + kind}", field)
        settings[key] = value
    for key in ("width", "height"):
        v = settings[key]
        if v < 1:
            raise ProtocolError("bad_setting", "must be at least 1 pixel", f"settings.{key}")
        if v > limits["maxSide"]:
            raise ProtocolError("too_large", f"{v} pixels exceeds this server's limit of {limits['maxSide']}", f"settings.{key}")
    fov = settings["fieldOfView"]
    if not 0 < fov < 180:
        raise ProtocolError("bad_setting", f"{fov} is outside (0, 180) degrees", "settings.fieldOfView")
    for key in ("gridSize", "visibilityDistance"):
        if not settings[key] > 0:
            raise ProtocolError("bad_setting", f"{settings[key]} must be more than 0 metres", f"settings.{key}")
    step = settings["rotateStepDegrees"]
    if not 0.1 <= step <= 360:
        raise ProtocolError("bad_setting", f"{step} is outside [0.1, 360] degrees", "settings.rotateStepDegrees")
    mode = settings["agentMode"]
    if mode.lower() not in AGENT_MODES:
        raise ProtocolError(
            "bad_setting",
            f"'{mode}' is not an AI2-THOR agent mode; use one of {', '.join(AGENT_MODES)}",
            "settings.agentMode",
        )
    return settings


# ------------------------------------------------------------------------------------------
# Replies
# ------------------------------------------------------------------------------------------


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _finite(v: Any) -> Any:
    """Replaces non-finite floats (which JSON cannot carry) with null."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def dumps(obj: Any) -> bytes:
    try:
        s = json.dumps(obj, default=_json_default, allow_nan=False, separators=(",", ":"))
    except ValueError:
        s = json.dumps(_finite(obj), default=_json_default, allow_nan=False, separators=(",", ":"))
    return s.encode("utf-8")


def encode_reply(seq: Optional[int], kind: Optional[str], *, error: Optional[ProtocolError] = None,
                 fields: Optional[Dict[str, Any]] = None, frames: Optional[List[Tuple[Dict[str, Any], Any]]] = None) -> List[Any]:
    header: Dict[str, Any] = {"protocol": PROTOCOL_VERSION, "seq": seq, "kind": kind, "ok": error is None}
    if error is not None:
        header["error"] = error.to_json()
    if fields:
        header.update(fields)
    frames = frames or []
    if frames:
        header["frames"] = [d for d, _ in frames]
    return [dumps(header)] + [buf for _, buf in frames]


def _desc(name: str, dtype: str, shape: Sequence[int], legend: Optional[List[str]] = None) -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": name, "dtype": dtype, "shape": [int(x) for x in shape],
                         "byteOrder": "little", "rowOrder": "top_to_bottom"}
    if legend is not None:
        d["legend"] = legend
    return d


def instance_ids(segmentation: np.ndarray, color_to_object_id: Dict[Tuple[int, int, int], str]) -> Tuple[np.ndarray, List[str]]:
    """AI2-THOR's colour-coded instance segmentation (H x W x 3 uint8) to uint32 ids and a
    legend: legend[0] is the background (colours the player did not name), then the named
    colours' objectIds in order of their colour value."""
    seg = np.asarray(segmentation)[:, :, :3].astype(np.uint32)
    keys = (seg[:, :, 0] << 16) | (seg[:, :, 1] << 8) | seg[:, :, 2]
    uniq, inverse = np.unique(keys.ravel(), return_inverse=True)
    legend = [""]
    index: Dict[str, int] = {}
    lut = np.zeros(len(uniq), dtype=np.uint32)
    for i, k in enumerate(uniq.tolist()):
        color = ((k >> 16) & 255, (k >> 8) & 255, k & 255)
        name = color_to_object_id.get(color)
        if not name:
            continue
        if name not in index:
            index[name] = len(legend)
            legend.append(name)
        lut[i] = index[name]
    ids = lut[inverse].reshape(keys.shape).astype("<u4")
    return np.ascontiguousarray(ids), legend


def event_frames(event: Any, settings: Dict[str, Any]) -> List[Tuple[Dict[str, Any], Any]]:
    """The protocol frames of an ai2thor Event: RGB top row first, depth float32 metres,
    instance ids with their legend."""
    frames: List[Tuple[Dict[str, Any], Any]] = []
    if event.frame is not None:
        rgb = np.ascontiguousarray(event.frame[:, :, :3], dtype=np.uint8)
        frames.append((_desc("rgb", "uint8", rgb.shape), rgb))
    if settings.get("renderDepthImage") and event.depth_frame is not None:
        depth = np.ascontiguousarray(event.depth_frame, dtype="<f4")
        frames.append((_desc("depth", "float32", depth.shape), depth))
    if settings.get("renderInstanceSegmentation") and event.instance_segmentation_frame is not None:
        ids, legend = instance_ids(event.instance_segmentation_frame, event.color_to_object_id)
        frames.append((_desc("instances", "uint32", ids.shape, legend), ids))
    return frames


# ------------------------------------------------------------------------------------------
# The server
# ------------------------------------------------------------------------------------------


def _ai2thor_version() -> str:
    try:
        return importlib_metadata.version("ai2thor")
    except importlib_metadata.PackageNotFoundError:
        return "not installed"


class Bridge:
    """Holds the AI2-THOR controller and answers requests."""

    def __init__(self, defaults: Dict[str, Any], controller_kwargs: Dict[str, Any], limits: Dict[str, int]):
        self.defaults = defaults
        self.controller_kwargs = controller_kwargs
        self.limits = limits
        self.controller = None
        self.settings: Dict[str, Any] = {}

    def info(self) -> Dict[str, Any]:
        scenes: List[str] = []
        if self.controller is not None:
            try:
                scenes = sorted(s.replace("_physics", "") for s in (self.controller.scenes_in_build or []))
            except Exception:  # noqa: BLE001 - informational only
                scenes = []
        return {
            "protocol": PROTOCOL_VERSION,
            "server": SERVER_NAME,
            "serverVersion": SERVER_VERSION,
            "simulator": {"name": "ai2thor", "version": _ai2thor_version(), "scenes": scenes, "actions": []},
            "limits": self.limits,
            "defaults": self.defaults,
        }

    def handle(self, parts: Sequence[bytes]) -> Tuple[List[Any], bool, Optional[ProtocolError]]:
        """Answers one request: (reply parts, stop after replying, error if any)."""
        try:
            seq, kind, body = decode_request(parts, self.limits)
        except ProtocolError as e:
            return encode_reply(getattr(e, "seq", None), getattr(e, "kind", None), error=e), False, e
        try:
            if kind == "info":
                return encode_reply(seq, kind, fields={"info": self.info()}), False, None
            if kind == "ping":
                return encode_reply(seq, kind), False, None
            if kind == "close":
                return encode_reply(seq, kind), True, None
            if kind == "reset":
                event = self.reset(body["scene"], body["settings"])
            else:
                event = self.step(body["action"])
            fields = {"metadata": dict(event.metadata)}
            return encode_reply(seq, kind, fields=fields, frames=event_frames(event, self.settings)), False, None
        except ProtocolError as e:
            return encode_reply(seq, kind, error=e), False, e
        except Exception as e:  # noqa: BLE001 - the server must keep serving
            log.exception("internal error")
            err = ProtocolError("internal", f"{type(e).__name__}: {e}")
            return encode_reply(seq, kind, error=err), False, err

    def reset(self, scene: str, overrides: Dict[str, Any]) -> Any:
        settings = resolve_settings(self.defaults, overrides, self.limits)
        if self.controller is None:
            try:
                from ai2thor.controller import Controller  # heavy; only when needed
            except ImportError as e:
                raise ProtocolError("sim_failure", f"the ai2thor package is not installed ({e}); pip install -r requirements.txt")
            kwargs = dict(self.controller_kwargs)
            kwargs.update(settings)
            log.info("starting AI2-THOR %s for %s", _ai2thor_version(), scene)
            started = time.monotonic()
            try:
                self.controller = Controller(scene=scene, **kwargs)
            except Exception as e:  # noqa: BLE001
                text = f"{type(e).__name__}: {e}"
                if len(text) > 1500:
                    text = text[:1500] + "..."
                hint = ""
                if "no build exists" in text or "commit_id" in text:
                    hint = (" (the AI2-THOR Unity player is not installed and could not be downloaded;"
                            " install it on a machine with network access or pass"
                            " --local-executable-path PATH to a player build)")
                raise ProtocolError(
                    "sim_failure",
                    f"could not start the AI2-THOR player (ai2thor {_ai2thor_version()}) after "
                    f"{time.monotonic() - started:.1f} s: {text}{hint}",
                )
            self.settings = settings
            return self.controller.last_event
        try:
            event = self.controller.reset(scene=scene, **settings)
        except ValueError as e:
            raise ProtocolError("unknown_scene", str(e).strip(), "scene")
        except Exception as e:  # noqa: BLE001
            self._lost(e)
        self.settings = settings
        return event

    def step(self, action: Dict[str, Any]) -> Any:
        if self.controller is None:
            raise ProtocolError("no_scene", "no scene loaded: send a reset first")
        try:
            return self.controller.step(action=dict(action))
        except ValueError as e:
            meta = getattr(self.controller.last_event, "metadata", {}) or {}
            code = meta.get("errorCode", "")
            if code == "InvalidAction":
                raise ProtocolError("unknown_action", str(e).strip(), "action.action")
            raise ProtocolError("bad_field", f"{code or 'invalid'}: {str(e).strip()}", "action")
        except Exception as e:  # noqa: BLE001
            self._lost(e)

    def _lost(self, e: Exception) -> None:
        """The player crashed or hung: drop it so that the next reset starts a new one."""
        try:
            if self.controller is not None:
                self.controller.stop()
        except Exception:  # noqa: BLE001
            pass
        self.controller = None
        raise ProtocolError("sim_failure", f"the AI2-THOR player failed ({type(e).__name__}: {e}); send a reset to start a new one")

    def close(self) -> None:
        if self.controller is not None:
            try:
                self.controller.stop()
            except Exception:  # noqa: BLE001
                pass
            self.controller = None


def serve(endpoint: str, bridge: Bridge) -> int:
    stop = {"flag": False}

    def on_signal(signum, _frame):
        log.info("signal %d: stopping", signum)
        stop["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, bridge.limits["maxMessageBytes"])
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as e:
        print(f"thor_bridge: cannot bind {endpoint}: {e}", file=sys.stderr)
        return 2
    bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    # The line tools (and tests) wait for; keep its shape.
    print(f"thor_bridge: serving {PROTOCOL_VERSION} on {bound}", flush=True)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    served = errors = 0
    try:
        while not stop["flag"]:
            try:
                ready = dict(poller.poll(100))
            except zmq.ZMQError as e:
                if e.errno == zmq.EINTR:
                    continue
                raise
            if sock not in ready:
                continue
            parts = sock.recv_multipart(copy=True)
            reply, stop_after, err = bridge.handle(parts)
            served += 1
            if err is not None:
                errors += 1
                log.warning("error reply: %s", err)
            sock.send_multipart(reply, copy=False)
            if stop_after:
                log.info("close request: stopping")
                break
    finally:
        bridge.close()
        sock.close(0)
        ctx.term()
        log.info("stopped after %d requests (%d error replies)", served, errors)
    return 0


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="thor_bridge.py",
        description=(
            "Serve the real AI2-THOR over ember's bridge protocol (" + PROTOCOL_VERSION + "). "
            "The first reset request starts the Unity player with Controller(scene=..., **settings); "
            "see README.md for installing the player and running on a GPU machine."
        ),
        epilog=(
            "Examples:\n"
            "  thor_bridge.py --endpoint tcp://127.0.0.1:5556\n"
            "  thor_bridge.py --endpoint ipc:///tmp/thor.sock --local-executable-path ~/thor/thor-Linux64\n"
            "  thor_bridge.py --controller-kwargs '{\"platform\": \"CloudRendering\", \"gpu_device\": 0}'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556",
                   help="ZeroMQ endpoint to bind: tcp://HOST:PORT (PORT may be * for a free port) or ipc://PATH "
                        "(default: %(default)s); the bound endpoint is printed on stdout")
    p.add_argument("--local-executable-path", metavar="PATH",
                   help="a Unity player build to launch instead of downloading one (Controller's local_executable_path)")
    p.add_argument("--platform", choices=["CloudRendering", "Linux64", "OSXIntel64"],
                   help="AI2-THOR platform (CloudRendering renders headless on a GPU; Linux64 needs an X display)")
    p.add_argument("--x-display", metavar="DISPLAY", help="X display for the Linux64 platform, e.g. 0.0")
    p.add_argument("--gpu-device", type=int, metavar="N", help="GPU index for CloudRendering")
    p.add_argument("--controller-kwargs", metavar="JSON", default="{}",
                   help="more Controller(...) keyword arguments as a JSON object")
    p.add_argument("--width", type=int, default=DEFAULT_SETTINGS["width"], help="default frame width (default: %(default)s)")
    p.add_argument("--height", type=int, default=DEFAULT_SETTINGS["height"], help="default frame height (default: %(default)s)")
    p.add_argument("--max-side", type=int, default=DEFAULT_LIMITS["maxSide"], help="largest width or height a reset may ask for (default: %(default)s)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging level (default: %(default)s)")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s thor_bridge: %(message)s")
    try:
        extra = json.loads(args.controller_kwargs)
    except ValueError as e:
        print(f"thor_bridge: --controller-kwargs is not JSON: {e}", file=sys.stderr)
        return 2
    if not isinstance(extra, dict):
        print("thor_bridge: --controller-kwargs must be a JSON object", file=sys.stderr)
        return 2
    kwargs: Dict[str, Any] = dict(extra)
    if args.local_executable_path:
        kwargs["local_executable_path"] = args.local_executable_path
    if args.x_display:
        kwargs["x_display"] = args.x_display
    if args.gpu_device is not None:
        kwargs["gpu_device"] = args.gpu_device
    if args.platform:
        kwargs["platform"] = args.platform
    if isinstance(kwargs.get("platform"), str):
        try:
            import ai2thor.platform as platforms

            kwargs["platform"] = getattr(platforms, kwargs["platform"])
        except (ImportError, AttributeError) as e:
            print(f"thor_bridge: platform {kwargs['platform']}: {e}", file=sys.stderr)
            return 2
    limits = dict(DEFAULT_LIMITS)
    limits["maxSide"] = args.max_side
    defaults = dict(DEFAULT_SETTINGS)
    defaults["width"], defaults["height"] = args.width, args.height
    try:
        resolve_settings(defaults, {}, limits)
    except ProtocolError as e:
        print(f"thor_bridge: {e}", file=sys.stderr)
        return 2
    return serve(args.endpoint, Bridge(defaults, kwargs, limits))


if __name__ == "__main__":
    sys.exit(main())
