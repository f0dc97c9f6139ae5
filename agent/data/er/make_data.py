#!/usr/bin/env python3
"""Regenerates the compact pose tables of agent/data/er/ from the upstream data.

Usage: python3 agent/data/er/make_data.py SRC_DIR
SRC_DIR holds `agent_positions.json` (Embodied-Reasoner repository, data/agent_positions.json,
Mulan PSL v2) and `reachable/FloorPlanN.json` (ALFWorld layouts, MIT, converted to
`{scene, grid_size, reachable_xz, openable_poses}`).

Outputs (deterministic, sorted keys):
- agent_positions.json: {scene: {objectId: [x, y, z, yaw_deg, horizon_deg, standing]}}. The
  reference merges the per-task entries of the upstream file into one table keyed by objectId,
  later entries winning; we do the same per scene (the upstream key order is kept).
- openable_poses.json: {scene: {objectId: [x, z, yaw_deg, horizon_deg]}} from `openable_poses`.
This script is not used at run time; the Rust code embeds its outputs.
"""

import glob
import json
import os
import sys


def r(v, nd=4):
    return round(float(v), nd)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))

    with open(os.path.join(src, "agent_positions.json")) as f:
        upstream = json.load(f)
    positions = {}
    for _task, entry in upstream.items():
        scene = entry["scene"]
        for key, pose in entry.items():
            if key in ("scene", "tasktype", "taskname"):
                continue
            p = pose["agent_teleport_position"]
            positions.setdefault(scene, {})[key] = [
                r(p["x"]), r(p["y"]), r(p["z"]),
                r(pose["agent_rotation"]["y"], 2), r(pose["agent_cameraHorizon"], 2),
                bool(pose["agent_isstanding"]),
            ]
    with open(os.path.join(here, "agent_positions.json"), "w") as f:
        json.dump(positions, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")

    openable = {}
    for path in sorted(glob.glob(os.path.join(src, "reachable", "*.json"))):
        with open(path) as f:
            d = json.load(f)
        poses = {
            oid: [r(p["x"]), r(p["z"]), r(p["rotation_y"], 2), r(p["horizon"], 2)]
            for oid, p in d.get("openable_poses", {}).items()
        }
        if poses:
            openable[d["scene"]] = poses
    with open(os.path.join(here, "openable_poses.json"), "w") as f:
        json.dump(openable, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
