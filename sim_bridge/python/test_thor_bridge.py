"""Unit tests of thor_bridge.py's codec and frame conversion (no player needed).

Run: python -m unittest discover -s sim_bridge/python -p 'test_*.py'
(the Rust test sim_bridge/tests/python_bridge.rs runs them with $EMBER_PYTHON).

The conversion tests build real `ai2thor.server.Event`s from synthetic player buffers (rows
bottom-up, as the Unity player sends them), so they check our conversion against ai2thor's
own decoding.
"""

import json
import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import thor_bridge as tb  # noqa: E402

LIMITS = dict(tb.DEFAULT_LIMITS)


def header(**kw):
    h = {"protocol": tb.PROTOCOL_VERSION, "seq": 7}
    h.update(kw)
    return json.dumps(h).encode()


class CodecTests(unittest.TestCase):
    def code_of(self, parts):
        with self.assertRaises(tb.ProtocolError) as cm:
            tb.decode_request(parts, LIMITS)
        return cm.exception

    def test_valid_requests_decode(self):
        self.assertEqual(tb.decode_request([header(kind="ping")], LIMITS), (7, "ping", {}))
        seq, kind, body = tb.decode_request([header(kind="step", action={"action": "MoveAhead"})], LIMITS)
        self.assertEqual((seq, kind, body["action"]["action"]), (7, "step", "MoveAhead"))
        seq, kind, body = tb.decode_request([header(kind="reset", scene="FloorPlan5", settings={"width": 64})], LIMITS)
        self.assertEqual(body, {"scene": "FloorPlan5", "settings": {"width": 64}})

    def test_every_malformed_class_has_its_code(self):
        cases = [
            ([b"{nope"], "malformed", "header"),
            ([b"[1,2]"], "malformed", "header"),
            ([b"\xff\xfe"], "malformed", "header"),
            ([b" " * (LIMITS["maxHeaderBytes"] + 1)], "too_large", "header"),
            ([header(kind="ping", protocol="ember-sim/0")], "version", "protocol"),
            ([json.dumps({"seq": 1, "kind": "ping"}).encode()], "bad_field", "protocol"),
            ([header(kind="dance")], "unknown_kind", "kind"),
            ([header(kind=5)], "bad_field", "kind"),
            ([header(kind="ping", seq="x")], "bad_field", "seq"),
            ([header(kind="ping"), b"extra"], "stray_frames", "frames"),
            ([header(kind="ping", frames=[{"name": "rgb", "dtype": "uint8", "shape": [1, 1, 3],
                                           "byteOrder": "little", "rowOrder": "top_to_bottom"}])], "truncated", "frames"),
            ([header(kind="ping", frames=[{}] * 50)], "too_large", "frames"),
            ([header(kind="step")], "bad_field", "action"),
            ([header(kind="step", action=[1])], "bad_field", "action"),
            ([header(kind="step", action={"objectId": "x"})], "bad_field", "action.action"),
            ([header(kind="step", action={"action": 3})], "bad_field", "action.action"),
            ([header(kind="reset", scene=4)], "bad_field", "scene"),
            ([header(kind="reset", scene="FloorPlan5", settings=3)], "bad_field", "settings"),
        ]
        for parts, code, field in cases:
            e = self.code_of(parts)
            self.assertEqual((e.code, e.field), (code, field), f"{parts[0][:80]!r}: {e}")

    def test_settings_are_type_checked(self):
        s = tb.resolve_settings(tb.DEFAULT_SETTINGS, {"width": 800, "gpu_device": 1}, LIMITS)
        self.assertEqual((s["width"], s["height"], s["gpu_device"]), (800, 300, 1))
        for key, value, code in [("width", "wide", "bad_setting"), ("width", 0, "bad_setting"),
                                 ("height", 100000, "too_large"), ("renderDepthImage", 1, "bad_setting"),
                                 ("depth_format", "Meters", "bad_setting")]:
            with self.assertRaises(tb.ProtocolError) as cm:
                tb.resolve_settings(tb.DEFAULT_SETTINGS, {key: value}, LIMITS)
            self.assertEqual((cm.exception.code, cm.exception.field), (code, f"settings.{key}"))

    def test_replies_carry_nan_free_json(self):
        parts = tb.encode_reply(3, "step", fields={"metadata": {"x": float("nan"), "y": np.float32(1.5)}})
        h = json.loads(parts[0])
        self.assertEqual(h["metadata"], {"x": None, "y": 1.5})
        self.assertTrue(h["ok"])


class EventConversionTests(unittest.TestCase):
    def make_event(self):
        from ai2thor.server import DepthFormat, Event

        w, h = 4, 3
        colors = [{"name": "Apple|+01.00|+00.90|-02.00", "color": [10, 20, 30]},
                  {"name": "Mug|+00.10|+00.90|+00.20", "color": [200, 0, 5]}]
        meta = {"screenWidth": w, "screenHeight": h, "colors": colors, "depthFormat": "Meters",
                "lastActionSuccess": True, "errorMessage": "", "objects": [], "agent": {}}
        event = Event(meta)
        # Player buffers go bottom row first; make the top row of the image distinctive.
        rgb_top_first = np.zeros((h, w, 3), np.uint8)
        rgb_top_first[0, :, 0] = 255  # red top row
        event.add_image(np.flip(rgb_top_first, axis=0).tobytes())
        depth_top_first = np.arange(h * w, dtype=np.float32).reshape(h, w) * 0.5
        event.add_image_depth(np.flip(depth_top_first, axis=0).astype("<f4").tobytes(),
                              depth_format=DepthFormat.Meters, camera_near_plane=0.1, camera_far_plane=20.0)
        seg = np.zeros((h, w, 4), np.uint8)
        seg[..., 3] = 255
        seg[0, 0, :3] = [10, 20, 30]  # apple, top-left
        seg[2, 3, :3] = [200, 0, 5]  # mug, bottom-right
        seg[1, 1, :3] = [9, 9, 9]  # a colour the player did not name: background
        event.add_image_ids(np.flip(seg, axis=0).tobytes())
        return event, rgb_top_first, depth_top_first

    def test_frames_are_top_row_first_metres_and_ids(self):
        event, rgb, depth = self.make_event()
        settings = {"renderDepthImage": True, "renderInstanceSegmentation": True}
        frames = tb.event_frames(event, settings)
        names = [d["name"] for d, _ in frames]
        self.assertEqual(names, ["rgb", "depth", "instances"])
        (rd, rb), (dd, db), (idd, ib) = frames
        self.assertEqual(rd["shape"], [3, 4, 3])
        np.testing.assert_array_equal(np.frombuffer(memoryview(rb), np.uint8).reshape(3, 4, 3), rgb)
        self.assertEqual((dd["dtype"], dd["byteOrder"], dd["rowOrder"]), ("float32", "little", "top_to_bottom"))
        np.testing.assert_array_equal(np.frombuffer(memoryview(db), "<f4").reshape(3, 4), depth)
        ids = np.frombuffer(memoryview(ib), "<u4").reshape(3, 4)
        legend = idd["legend"]
        self.assertEqual(legend[0], "")
        self.assertEqual(legend[ids[0, 0]], "Apple|+01.00|+00.90|-02.00")
        self.assertEqual(legend[ids[2, 3]], "Mug|+00.10|+00.90|+00.20")
        self.assertEqual(ids[1, 1], 0)
        self.assertEqual(int(ids.max()), len(legend) - 1)
        # Each descriptor's byte count matches its buffer, as the protocol requires.
        for i, (d, buf) in enumerate(frames):
            tb.check_frame_desc(d, i, memoryview(buf).nbytes, LIMITS)

    def test_frames_not_asked_for_are_left_out(self):
        event, _, _ = self.make_event()
        frames = tb.event_frames(event, {})
        self.assertEqual([d["name"] for d, _ in frames], ["rgb"])


class BridgeTests(unittest.TestCase):
    def test_step_before_reset_is_no_scene_and_errors_keep_serving(self):
        bridge = tb.Bridge(dict(tb.DEFAULT_SETTINGS), {}, LIMITS)
        reply, stop, err = bridge.handle([header(kind="step", action={"action": "MoveAhead"})])
        self.assertFalse(stop)
        self.assertEqual(err.code, "no_scene")
        h = json.loads(reply[0])
        self.assertEqual((h["ok"], h["seq"], h["kind"], h["error"]["code"]), (False, 7, "step", "no_scene"))
        reply, stop, err = bridge.handle([header(kind="close")])
        self.assertTrue(stop)
        self.assertIsNone(err)


if __name__ == "__main__":
    unittest.main()
