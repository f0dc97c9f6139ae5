#!/usr/bin/env python3
"""Reads an ember recording (.rrd) back with rerun-sdk 0.36.3 and checks it against what the
recorder was given.

Usage: check_rrd.py RUN.rrd EXPECTED.json

EXPECTED.json (written by the Rust test `tests/tests/recording.rs`):
  entities          entity paths that must have data
  camera            {rgb, depth, segmentation, pinhole, width, height}
  images_per_step   {step: number of RGB images logged at that step}
  thoughts          {step: the thought text the policy produced at that step}
  replies           {step: the raw reply}
  thought_path, reply_path, feedback_path, step_timeline
  timing_paths      scalar entities that must have a value at each of timing_steps
  feedback_warnings how many feedback entries are warnings

Exits 0 when everything matches, 1 with a list of what does not.
"""

import collections
import json
import sys

from rerun.experimental import RrdReader


def rows_by_entity(path):
    """entity path -> list of rows, each a dict of column name -> value (timelines included)."""
    rows = collections.defaultdict(list)
    static = collections.defaultdict(list)
    for chunk in RrdReader(path).stream().to_chunks():
        batch = chunk.to_record_batch()
        cols = {
            name: batch.column(name).to_pylist()
            for name in batch.schema.names
            if not name.endswith(":buffer") and name != "rerun.controls.RowId"
        }
        # Buffers are large: keep only their lengths.
        for name in batch.schema.names:
            if name.endswith(":buffer"):
                cols[name + ".len"] = [
                    None if v is None else sum(len(b) for b in v) for v in batch.column(name).to_pylist()
                ]
        entity = chunk.entity_path.lstrip("/")
        target = static if chunk.is_static else rows
        for i in range(batch.num_rows):
            target[entity].append({k: v[i] for k, v in cols.items()})
    return rows, static


def first(v):
    """The first element of a component batch (a list), or None."""
    if isinstance(v, list):
        return v[0] if v else None
    return v


def main():
    rrd, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        exp = json.load(f)
    rows, static = rows_by_entity(rrd)
    errors = []
    tl = exp.get("step_timeline", "step")

    for e in exp["entities"]:
        if not rows.get(e) and not static.get(e):
            errors.append(f"entity {e} has no data")

    # One RGB image per step (as many as were logged), of the right size.
    cam = exp["camera"]
    per_step = collections.Counter()
    for r in rows.get(cam["rgb"], []):
        fmt = first(r.get("Image:format"))
        if fmt is None:
            continue
        per_step[r[tl]] += 1
        if (fmt["width"], fmt["height"]) != (cam["width"], cam["height"]):
            errors.append(f"step {r[tl]}: RGB is {fmt['width']}x{fmt['height']}, expected {cam['width']}x{cam['height']}")
        n = r.get("Image:buffer.len")
        if n != cam["width"] * cam["height"] * 3:
            errors.append(f"step {r[tl]}: RGB buffer has {n} bytes, expected {cam['width'] * cam['height'] * 3}")
    want = {int(k): v for k, v in exp["images_per_step"].items()}
    if dict(per_step) != want:
        errors.append(f"RGB images per step {dict(sorted(per_step.items()))} != expected {want}")

    for layer, column, bpp in [("depth", "DepthImage:format", 2), ("segmentation", "SegmentationImage:format", 2)]:
        got = 0
        for r in rows.get(cam[layer], []):
            fmt = first(r.get(column))
            if fmt is None:
                continue
            got += 1
            if (fmt["width"], fmt["height"]) != (cam["width"], cam["height"]):
                errors.append(f"step {r[tl]}: {layer} is {fmt['width']}x{fmt['height']}")
            buf = r.get(column.split(":")[0] + ":buffer.len")
            if buf != cam["width"] * cam["height"] * bpp:
                errors.append(f"step {r[tl]}: {layer} buffer has {buf} bytes")
        if got != sum(want.values()):
            errors.append(f"{layer}: {got} images, expected {sum(want.values())}")
    for r in rows.get(cam["pinhole"], []):
        res = first(r.get("Pinhole:resolution"))
        if res is not None and [int(x) for x in res] != [cam["width"], cam["height"]]:
            errors.append(f"step {r[tl]}: pinhole resolution {res}")

    # The thought (and reply) of step k is what the policy produced at step k.
    for key, path, column in [("thoughts", exp["thought_path"], "TextDocument:text"), ("replies", exp["reply_path"], "TextDocument:text")]:
        got = {}
        for r in rows.get(path, []):
            t = first(r.get(column))
            if t is not None:
                got.setdefault(r[tl], []).append(t)
        for k, text in exp[key].items():
            texts = got.get(int(k), [])
            if texts[-1:] != [text]:
                errors.append(f"{path} at step {k}: {texts!r} != {text!r}")
        extra = set(got) - {int(k) for k in exp[key]}
        if extra:
            errors.append(f"{path}: unexpected steps {sorted(extra)}")

    # Timings at every step.
    for path in exp["timing_paths"]:
        steps = {r[tl] for r in rows.get(path, []) if first(r.get("Scalars:scalars")) is not None}
        missing = sorted(set(exp["timing_steps"]) - steps)
        if missing:
            errors.append(f"{path}: no value at steps {missing}")

    warnings = sum(1 for r in rows.get(exp["feedback_path"], []) if first(r.get("TextLog:level")) == "WARN")
    if warnings != exp["feedback_warnings"]:
        errors.append(f"{exp['feedback_path']}: {warnings} warnings, expected {exp['feedback_warnings']}")

    n_rows = sum(len(v) for v in rows.values())
    print(f"{rrd}: {len(rows)} entities, {n_rows} rows, {len(static)} static entities; "
          f"{sum(per_step.values())} RGB images over {len(per_step)} steps; "
          f"{len(exp['thoughts'])} thoughts checked")
    if errors:
        print("FAILED:")
        for e in errors:
            print("  -", e)
        return 1
    print("read-back OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
