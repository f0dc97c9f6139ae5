#!/usr/bin/env python3
"""Convert the iTHOR scene dumps into thor-lite's compact embedded scene format.

Usage:
    python3 sim_bridge/scripts/convert_scenes.py [--src /work/shared/data/ithor] [--out sim_bridge/data/ithor]

Input (see shared/data/README.md): `scenes/FloorPlanN.json.gz` (AI2-THOR's initial metadata, from the
Embodied-Reasoner repository, Mulan PSL v2; the metadata itself is produced by AI2-THOR, Apache-2.0)
and `reachable/FloorPlanN.json` (ALFWorld's reachable grids, MIT).

Output: `scenes/FloorPlanN.json.gz`, one per scene, and `scenes/index.txt` (scene names). Each
file holds:
    scene, room_type, start_pose {x, y, z, rotation, horizon, standing, source},
    scene_bounds (AI2-THOR's sceneBounds), fov, floor_y, ceiling_y,
    objects: AI2-THOR object metadata (volatile per-view keys dropped, floats rounded to 1e-4),
    derived: per object {front, back}: the side of its box (0:+x 1:-x 2:+z 3:-z) that faces the
        free floor most (front) and least (back, usually the wall),
    room: {cell, origin, nx, nz, rows}: the room outline as a boolean grid (run-length rows),
    counter_bodies: [{object, rects, top}]: the solid body under each CounterTop slab,
    reachable: ALFWorld's reachable floor points (0.25 m grid), openable_poses.

Only the Python standard library is used. The derivations are approximations, documented in
sim_bridge/src/thor/mod.rs: the dumps hold no wall geometry, and CounterTop boxes are thin slabs
whose box also spans the floor inside L- and U-shaped counters.
"""

import argparse
import gzip
import json
import math
import os
import sys

CELL = 0.05  # room grid resolution, metres
AGENT_RADIUS = 0.2
REACH_HALF = 0.25  # half-size of the square of floor each reachable point proves free
NOTCH_MIN = 0.75  # an empty corner rectangle at least this big on both sides is outside the room
VOLATILE = {"visible", "isInteractable", "distance", "isMoving", "obstructed"}


def rnd(v):
    if isinstance(v, float):
        r = round(v, 4)
        return 0.0 if r == 0 else r
    if isinstance(v, list):
        return [rnd(x) for x in v]
    if isinstance(v, dict):
        return {k: rnd(x) for k, x in v.items()}
    return v


def aabb(o):
    a = o["axisAlignedBoundingBox"]
    c, s = a["center"], a["size"]
    return (
        c["x"] - s["x"] / 2,
        c["y"] - s["y"] / 2,
        c["z"] - s["z"] / 2,
        c["x"] + s["x"] / 2,
        c["y"] + s["y"] / 2,
        c["z"] + s["z"] / 2,
    )


class Grid:
    def __init__(self, x0, z0, x1, z1):
        self.x0, self.z0 = x0, z0
        self.nx = max(1, int(math.ceil((x1 - x0) / CELL)))
        self.nz = max(1, int(math.ceil((z1 - z0) / CELL)))
        self.v = [[0] * self.nx for _ in range(self.nz)]

    def span(self, a0, a1, origin, n):
        i0 = int(math.floor((a0 - origin) / CELL + 1e-6))
        i1 = int(math.ceil((a1 - origin) / CELL - 1e-6))
        return max(0, i0), min(n, i1)

    def fill(self, x0, z0, x1, z1, val):
        i0, i1 = self.span(x0, x1, self.x0, self.nx)
        j0, j1 = self.span(z0, z1, self.z0, self.nz)
        for j in range(j0, j1):
            row = self.v[j]
            for i in range(i0, i1):
                row[i] = val

    def centre(self, i, j):
        return self.x0 + (i + 0.5) * CELL, self.z0 + (j + 0.5) * CELL


def dist_to_reachable(x, z, pts):
    return min((math.hypot(x - px, z - pz) for px, pz in pts), default=1e9)


def sides(o, pts):
    """Front (the side with the most free floor in front of it) and back (the least) side of
    an object's box. Free floor: the ALFWorld reachable points in a band 0.05-0.9 m beyond the
    face, as wide as the face; ties go to the side whose nearest reachable point is closest."""
    x0, _, z0, x1, _, z1 = aabb(o)
    cx, cz = (x0 + x1) / 2, (z0 + z1) / 2
    bands = [
        (x1 + 0.05, z0, x1 + 0.9, z1),
        (x0 - 0.9, z0, x0 - 0.05, z1),
        (x0, z1 + 0.05, x1, z1 + 0.9),
        (x0, z0 - 0.9, x1, z0 - 0.05),
    ]
    d = 0.35
    probes = [(x1 + d, cz), (x0 - d, cz), (cx, z1 + d), (cx, z0 - d)]
    score = []
    for k, (bx0, bz0, bx1, bz1) in enumerate(bands):
        n = sum(1 for px, pz in pts if bx0 - 0.13 <= px <= bx1 + 0.13 and bz0 - 0.13 <= pz <= bz1 + 0.13)
        near = dist_to_reachable(probes[k][0], probes[k][1], pts)
        score.append((n, -round(near, 3)))
    front = max(range(4), key=lambda k: (score[k], -k))
    back = min(range(4), key=lambda k: (score[k], k))
    return front, back


def room_grid(objs, pts, start):
    """The room's floor outline: evidence (reachable squares, the start pose, object
    footprints) bounding box minus large empty corner rectangles (L-shaped rooms)."""
    ev = []
    if start:
        sx, sz = start
        ev.append((sx - REACH_HALF, sz - REACH_HALF, sx + REACH_HALF, sz + REACH_HALF))
    for px, pz in pts:
        ev.append((px - REACH_HALF, pz - REACH_HALF, px + REACH_HALF, pz + REACH_HALF))
    for o in objs:
        if o["objectType"] == "Floor":
            continue
        x0, _, z0, x1, _, z1 = aabb(o)
        ev.append((x0, z0, x1, z1))
    bx0 = min(e[0] for e in ev)
    bz0 = min(e[1] for e in ev)
    bx1 = max(e[2] for e in ev)
    bz1 = max(e[3] for e in ev)
    # snap the outline to the cell grid
    bx0 = math.floor(bx0 / CELL) * CELL
    bz0 = math.floor(bz0 / CELL) * CELL
    g = Grid(bx0, bz0, bx1, bz1)
    for e in ev:
        g.fill(*e, 1)
    room = [[1] * g.nx for _ in range(g.nz)]
    need = int(round(NOTCH_MIN / CELL))
    for flip_x in (False, True):
        for flip_z in (False, True):
            # heights[w] = number of empty rows from the corner in column w (until first evidence)
            best = None
            col_h = []
            for i in range(g.nx):
                ii = g.nx - 1 - i if flip_x else i
                h = 0
                for j in range(g.nz):
                    jj = g.nz - 1 - j if flip_z else j
                    if g.v[jj][ii]:
                        break
                    h += 1
                col_h.append(h)
            hmin = 10**9
            for w in range(g.nx):
                hmin = min(hmin, col_h[w])
                if hmin == 0:
                    break
                if w + 1 >= need and hmin >= need:
                    area = (w + 1) * hmin
                    if best is None or area > best[0]:
                        best = (area, w + 1, hmin)
            if best:
                _, w, h = best
                for j in range(h):
                    jj = g.nz - 1 - j if flip_z else j
                    for i in range(w):
                        ii = g.nx - 1 - i if flip_x else i
                        room[jj][ii] = 0
    rows = []
    for j in range(g.nz):
        runs = []
        i = 0
        while i < g.nx:
            if room[j][i]:
                s = i
                while i < g.nx and room[j][i]:
                    i += 1
                runs.append([s, i])
            else:
                i += 1
        rows.append(runs)
    return {"cell": CELL, "origin": [rnd(bx0), rnd(bz0)], "nx": g.nx, "nz": g.nz, "rows": rows}


def rects_from_mask(mask, x0, z0):
    """Greedy decomposition of a boolean grid into rectangles (world coordinates)."""
    nz = len(mask)
    nx = len(mask[0]) if nz else 0
    used = [[False] * nx for _ in range(nz)]
    out = []
    for j in range(nz):
        for i in range(nx):
            if not mask[j][i] or used[j][i]:
                continue
            w = 0
            while i + w < nx and mask[j][i + w] and not used[j][i + w]:
                w += 1
            h = 1
            while j + h < nz and all(mask[j + h][i + k] and not used[j + h][i + k] for k in range(w)):
                h += 1
            for jj in range(j, j + h):
                for ii in range(i, i + w):
                    used[jj][ii] = True
            out.append(rnd([x0 + i * CELL, z0 + j * CELL, x0 + (i + w) * CELL, z0 + (j + h) * CELL]))
    return out


def counter_bodies(objs, derived, pts):
    """Solid bodies under the thin CounterTop slabs: the slab's footprint, minus the floor the
    agent can stand on, minus the footprints of everything standing below the slab (cabinets and
    drawers widened toward their front so their doors show)."""
    out = []
    for idx, o in enumerate(objs):
        if o["objectType"] != "CounterTop":
            continue
        x0, y0, z0, x1, y1, z1 = aabb(o)
        if y0 < 0.3:  # a full box already (rare)
            continue
        y1 = max(y1, y0 + 0.01)
        g = Grid(x0, z0, x1, z1)
        # the slab box spans x0..x1 exactly; cells partially outside are trimmed below
        g.fill(x0, z0, x1, z1, 1)
        for px, pz in pts:
            g.fill(px - AGENT_RADIUS, pz - AGENT_RADIUS, px + AGENT_RADIUS, pz + AGENT_RADIUS, 0)
        # In front of the units standing under (or through) the slab, up to the slab box's edge:
        # floor. A counter overhangs its cabinets by a few centimetres and never covers the front
        # of a fridge; ALFWorld's grid keeps 0.3-0.6 m away from furniture, so its squares alone
        # leave a phantom counter there.
        carve_front_strips(g, objs, derived, idx, (x0, y0, z0, x1, y1, z1))
        # no slab through what stands on the floor and rises above it (a fridge)
        for p in objs:
            if p["objectType"] in ("Floor", "CounterTop"):
                continue
            a = aabb(p)
            if a[1] < y0 - 0.3 and a[4] > y1 + 0.1 and a[3] > x0 and a[0] < x1 and a[5] > z0 and a[2] < z1:
                g.fill(a[0], a[2], a[3], a[5], 0)
        # the slab has holes where basins are let into it
        for p in objs:
            if p["objectType"] in ("SinkBasin", "BathtubBasin"):
                a = aabb(p)
                if a[3] > x0 and a[0] < x1 and a[5] > z0 and a[2] < z1 and a[1] < y1 and a[4] > y0 - 0.3:
                    g.fill(a[0], a[2], a[3], a[5], 0)
        surface = clip_rects(rects_from_mask(g.v, x0, z0), x0, z0, x1, z1)
        for k, p in enumerate(objs):
            if k == idx or p["objectType"] in ("Floor", "CounterTop"):
                continue
            a = aabb(p)
            if a[1] > y0 - 0.05 or a[3] < x0 or a[0] > x1 or a[5] < z0 or a[2] > z1:
                continue
            ax0, az0, ax1, az1 = a[0], a[2], a[3], a[5]
            if p["objectType"] in ("Cabinet", "Drawer"):
                f = derived[k]["front"]
                ext = 0.15
                if f == 0:
                    ax1 += ext
                elif f == 1:
                    ax0 -= ext
                elif f == 2:
                    az1 += ext
                else:
                    az0 -= ext
            g.fill(ax0, az0, ax1, az1, 0)
        rects = clip_rects(rects_from_mask(g.v, x0, z0), x0, z0, x1, z1)
        out.append({"object": idx, "rects": rects, "surface": surface, "top": rnd(y0)})
    return out


OVERHANG = 0.03  # how far a counter slab reaches beyond the cabinets under it, metres


def carve_front_strips(g, objs, derived, idx, box):
    """Marks as floor (0) the strip in front of each unit under the slab of counter `idx`: from
    the unit's front face (plus the slab's overhang when the unit stands under the slab) out to
    the edge of the slab box, as wide as the unit, stopping at the first other unit or at an
    object resting on this counter (the slab is real there)."""
    x0, y0, z0, x1, y1, z1 = box
    cid = objs[idx]["objectId"]
    units = []
    stops = []
    for k, p in enumerate(objs):
        if k == idx or p["objectType"] in ("Floor", "CounterTop"):
            continue
        a = aabb(p)
        if a[3] <= x0 or a[0] >= x1 or a[5] <= z0 or a[2] >= z1:
            continue
        if cid in (p.get("parentReceptacles") or []):
            stops.append(a)
            continue
        if a[1] < y0 - 0.05 and (a[4] > y0 - 0.35 or p["objectType"] in ("Cabinet", "Drawer")):
            units.append((k, a))
            stops.append(a)
    for k, a in units:
        f = derived[k]["front"]
        over = OVERHANG if a[4] < y0 + 0.05 else 0.0
        # the strip as (lo, hi) along the front axis, growing outward cell by cell
        if f in (0, 1):
            lat0, lat1 = max(a[2], z0), min(a[5], z1)
            start = a[3] + over if f == 0 else a[0] - over
            end = x1 if f == 0 else x0
        else:
            lat0, lat1 = max(a[0], x0), min(a[3], x1)
            start = a[5] + over if f == 2 else a[2] - over
            end = z1 if f == 2 else z0
        if lat1 - lat0 < CELL or (end - start) * (1 if f in (0, 2) else -1) < CELL:
            continue
        sign = 1 if f in (0, 2) else -1
        pos = start
        while (end - pos) * sign > 1e-9:
            nxt = pos + sign * min(CELL, abs(end - pos))
            lo, hi = min(pos, nxt), max(pos, nxt)
            if f in (0, 1):
                cell = (lo, lat0, hi, lat1)
            else:
                cell = (lat0, lo, lat1, hi)
            blocked = any(
                s is not a and s[0] < cell[2] - 1e-6 and s[3] > cell[0] + 1e-6 and s[2] < cell[3] - 1e-6 and s[5] > cell[1] + 1e-6
                for s in stops
            )
            if blocked:
                break
            pos = nxt
        if (pos - start) * sign > 1e-9:
            lo, hi = min(start, pos), max(start, pos)
            if f in (0, 1):
                g.fill(lo, lat0, hi, lat1, 0)
            else:
                g.fill(lat0, lo, lat1, hi, 0)


def clip_rects(rects, x0, z0, x1, z1):
    out = []
    for r in rects:
        r = [max(r[0], x0), max(r[1], z0), min(r[2], x1), min(r[3], z1)]
        if r[2] - r[0] > 0.02 and r[3] - r[1] > 0.02:
            out.append(rnd(r))
    return out


def stove_bodies(objs):
    """Stoves are not objects in the dumps, only their burners and knobs. Burners that no
    CounterTop holds get a body: the burners' joint footprint (grown 0.1 m) from the floor to
    their bottom."""
    burners = [aabb(o) for o in objs if o["objectType"] == "StoveBurner"]
    clusters = []
    for b in burners:
        for c in clusters:
            if b[0] < c[3] + 0.6 and b[3] > c[0] - 0.6 and b[2] < c[5] + 0.6 and b[5] > c[2] - 0.6:
                c[0], c[1], c[2] = min(c[0], b[0]), min(c[1], b[1]), min(c[2], b[2])
                c[3], c[4], c[5] = max(c[3], b[3]), max(c[4], b[4]), max(c[5], b[5])
                break
        else:
            clusters.append(list(b))
    out = []
    for c in clusters:
        cx, cz = (c[0] + c[3]) / 2, (c[2] + c[5]) / 2
        held = False
        for o in objs:
            if o["objectType"] != "CounterTop":
                continue
            a = aabb(o)
            if a[0] <= cx <= a[3] and a[2] <= cz <= a[5] and abs(a[4] - c[1]) < 0.1:
                held = True
        if not held and c[1] > 0.3:
            out.append(rnd([c[0] - 0.1, c[2] - 0.1, c[3] + 0.1, c[5] + 0.1, c[1]]))
    return out


def start_pose(d, pts):
    sp = d.get("start_pose")
    if sp:
        return {
            "x": rnd(sp["position"]["x"]),
            "y": rnd(sp["position"]["y"]),
            "z": rnd(sp["position"]["z"]),
            "rotation": rnd(sp["rotation"]["y"]),
            "horizon": rnd(sp.get("cameraHorizon", 0.0)),
            "standing": bool(sp.get("isStanding", True)),
            "source": "embodied-reasoner",
        }
    # No reference start pose (FloorPlan21): AI2-THOR's own initial agent pose, moved to the
    # nearest reachable grid point, facing the room's centre in 90 degree steps.
    ag = d["metadata"]["agent"]
    ax, az = ag["position"]["x"], ag["position"]["z"]
    px, pz = min(pts, key=lambda p: (math.hypot(p[0] - ax, p[1] - az), p[0], p[1]))
    cx = sum(p[0] for p in pts) / len(pts)
    cz = sum(p[1] for p in pts) / len(pts)
    yaw = (math.degrees(math.atan2(cx - px, cz - pz)) + 360.0) % 360.0
    yaw = (round(yaw / 90.0) * 90) % 360
    return {
        "x": rnd(px),
        "y": rnd(ag["position"]["y"]),
        "z": rnd(pz),
        "rotation": float(yaw),
        "horizon": 0.0,
        "standing": True,
        "source": "derived: AI2-THOR initial pose snapped to the nearest ALFWorld reachable point, facing the reachable area's centre",
    }


def fix_part_boxes(name, objs):
    """A part (`Sink|..|SinkBasin`) lies within its whole. A few dumps have a part box that
    reaches the world origin (FloorPlan419's BathtubBasin): clip it to its whole's box."""
    by_id = {o["objectId"]: o for o in objs}
    for o in objs:
        parts = o["objectId"].split("|")
        if len(parts) != 5:
            continue
        whole = by_id.get("|".join(parts[:4]))
        if not whole:
            continue
        a, w = aabb(o), aabb(whole)
        m = 0.3  # only gross errors; basins may overhang their sink a little
        if a[0] >= w[0] - m and a[2] >= w[2] - m and a[3] <= w[3] + m and a[5] <= w[5] + m:
            continue
        lo = [max(a[0], w[0]), max(a[1], w[1]), max(a[2], w[2])]
        hi = [min(a[3], w[3]), min(a[4], w[4]), min(a[5], w[5])]
        if any(h <= l for l, h in zip(lo, hi)):
            continue
        print(f"{name}: {o['objectId']} box clipped to its whole's", file=sys.stderr)
        box = o["axisAlignedBoundingBox"]
        box["center"] = {"x": (lo[0] + hi[0]) / 2, "y": (lo[1] + hi[1]) / 2, "z": (lo[2] + hi[2]) / 2}
        box["size"] = {"x": hi[0] - lo[0], "y": hi[1] - lo[1], "z": hi[2] - lo[2]}
        box["cornerPoints"] = [
            [x, y, z] for x in (hi[0], lo[0]) for y in (hi[1], lo[1]) for z in (hi[2], lo[2])
        ]


def fix_origin_boxes(name, objs):
    """A box that reaches the world origin in x and z while its object sits more than 0.8 m
    away is a broken dump (FloorPlan204's Window): on each axis that touches 0, mirror the far
    bound about the object's position instead."""
    for o in objs:
        if o["objectType"] == "Floor":
            continue
        a = list(aabb(o))
        p = o["position"]
        if math.hypot(p["x"], p["z"]) <= 0.8:
            continue
        touch_x = abs(a[0]) < 2e-3 or abs(a[3]) < 2e-3
        touch_z = abs(a[2]) < 2e-3 or abs(a[5]) < 2e-3
        if not (touch_x and touch_z):
            continue
        for lo, hi, c in ((0, 3, p["x"]), (2, 5, p["z"])):
            if abs(a[lo]) < 2e-3 and abs(c) > 0.4:
                a[lo] = c - (a[hi] - c)
            elif abs(a[hi]) < 2e-3 and abs(c) > 0.4:
                a[hi] = c + (c - a[lo])
        print(f"{name}: {o['objectId']} box reaching the origin rebuilt about its position", file=sys.stderr)
        box = o["axisAlignedBoundingBox"]
        box["center"] = {"x": (a[0] + a[3]) / 2, "y": (a[1] + a[4]) / 2, "z": (a[2] + a[5]) / 2}
        box["size"] = {"x": a[3] - a[0], "y": a[4] - a[1], "z": a[5] - a[2]}
        box["cornerPoints"] = [[x, y, z] for x in (a[3], a[0]) for y in (a[4], a[1]) for z in (a[5], a[2])]


def convert(src, name):
    with gzip.open(os.path.join(src, "scenes", name + ".json.gz"), "rt") as f:
        d = json.load(f)
    with open(os.path.join(src, "reachable", name + ".json")) as f:
        r = json.load(f)
    m = d["metadata"]
    objs = m["objects"]
    fix_part_boxes(name, objs)
    fix_origin_boxes(name, objs)
    # ALFWorld's grids come from an older AI2-THOR: a few scenes' grids reach beyond today's
    # floor. Only points on the scene's floor count as evidence.
    b = m["sceneBounds"]
    bx0, bx1 = b["center"]["x"] - b["size"]["x"] / 2, b["center"]["x"] + b["size"]["x"] / 2
    bz0, bz1 = b["center"]["z"] - b["size"]["z"] / 2, b["center"]["z"] + b["size"]["z"] / 2
    all_pts = [tuple(p) for p in r["reachable_xz"]]
    pts = [p for p in all_pts if bx0 + 0.1 <= p[0] <= bx1 - 0.1 and bz0 + 0.1 <= p[1] <= bz1 - 0.1]
    if len(pts) < len(all_pts):
        print(f"{name}: {len(all_pts) - len(pts)} of {len(all_pts)} ALFWorld points lie off the floor", file=sys.stderr)
    derived = []
    for o in objs:
        front, back = sides(o, pts)
        derived.append({"front": front, "back": back})
    floor = [o for o in objs if o["objectType"] == "Floor"]
    floor_y = aabb(floor[0])[4] if floor else 0.0
    ceiling_y = b["center"]["y"] + b["size"]["y"] / 2
    sp = start_pose(d, pts)
    start_xz = None
    if bx0 < sp["x"] < bx1 and bz0 < sp["z"] < bz1:
        start_xz = (sp["x"], sp["z"])
    out = {
        "scene": d["scene"],
        "room_type": d["room_type"],
        "start_pose": sp,
        "scene_bounds": rnd(b),
        "floor_y": rnd(floor_y),
        "ceiling_y": rnd(ceiling_y),
        "agent_y": rnd(m["agent"]["position"]["y"]),
        "objects": [rnd({k: v for k, v in o.items() if k not in VOLATILE}) for o in objs],
        "derived": derived,
        "room": room_grid(objs, pts, start_xz),
        "counter_bodies": counter_bodies(objs, derived, pts),
        "stove_bodies": stove_bodies(objs),
        "reachable": rnd([list(p) for p in all_pts]),
        "reachable_grid": r.get("grid_size", 0.25),
        "openable_poses": rnd(r.get("openable_poses", {})),
    }
    return out


def write_receptacles(src, constants_path, out):
    """The receptacle compatibility table: ALFWorld's VAL_RECEPTACLE_OBJECTS (MIT; derived from
    AI2-THOR's placement restrictions) united with every (object type, receptacle type) pair
    that the 120 scene dumps show. Receptacle types absent from the table accept any object."""
    ns = {"__file__": constants_path}
    with open(constants_path) as f:
        code = f.read()
    exec(compile(code, constants_path, "exec"), ns)  # noqa: S102 - a trusted, pinned data file
    table = {k: set(v) for k, v in ns["VAL_RECEPTACLE_OBJECTS"].items()}
    observed = 0
    for fn in sorted(os.listdir(os.path.join(src, "scenes"))):
        with gzip.open(os.path.join(src, "scenes", fn), "rt") as f:
            objs = json.load(f)["metadata"]["objects"]
        types = {o["objectId"]: o["objectType"] for o in objs}
        for o in objs:
            for p in o.get("parentReceptacles") or []:
                rt = types.get(p)
                if rt in table and o["objectType"] not in table[rt]:
                    table[rt].add(o["objectType"])
                    observed += 1
    data = {
        "source": "ALFWorld 0.4.2 alfworld/gen/constants.py VAL_RECEPTACLE_OBJECTS (MIT) "
        "plus the pairs observed in the iTHOR scene dumps; receptacle types not listed accept any object",
        "receptacles": {k: sorted(v) for k, v in sorted(table.items())},
    }
    with open(os.path.join(out, "receptacles.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"receptacles.json: {len(table)} restricted receptacle types, {observed} observed pairs added", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default="/work/shared/data/ithor")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "ithor"))
    ap.add_argument("--only", nargs="*", help="convert only these scenes")
    ap.add_argument(
        "--alfworld-constants",
        help="path to alfworld/gen/constants.py (pip download alfworld==0.4.2); writes receptacles.json",
    )
    args = ap.parse_args()
    if args.alfworld_constants:
        write_receptacles(args.src, args.alfworld_constants, args.out)
    names = sorted(
        (f[: -len(".json.gz")] for f in os.listdir(os.path.join(args.src, "scenes")) if f.endswith(".json.gz")),
        key=lambda s: int(s[len("FloorPlan"):]),
    )
    if args.only:
        names = [n for n in names if n in args.only]
    os.makedirs(os.path.join(args.out, "scenes"), exist_ok=True)
    total = 0
    for n in names:
        data = json.dumps(convert(args.src, n), separators=(",", ":"), sort_keys=True).encode()
        path = os.path.join(args.out, "scenes", n + ".json.gz")
        with open(path, "wb") as f:
            # mtime=0: the output is byte-identical from run to run
            with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
                gz.write(data)
        total += os.path.getsize(path)
        print(f"{n}: {os.path.getsize(path)} bytes", file=sys.stderr)
    if not args.only:
        with open(os.path.join(args.out, "scenes", "index.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        # The Rust list of embedded files (include_bytes! needs literal paths).
        rs = os.path.join(here, "..", "src", "thor", "embedded.rs")
        with open(rs, "w") as f:
            f.write("// @generated by sim_bridge/scripts/convert_scenes.py; do not edit.\n")
            f.write("/// The embedded scene files: (name, gzip-compressed JSON).\n")
            f.write("pub(crate) static SCENE_FILES: &[(&str, &[u8])] = &[\n")
            for n in names:
                f.write(f'    ("{n}", include_bytes!("../../data/ithor/scenes/{n}.json.gz")),\n')
            f.write("];\n")
    print(f"{len(names)} scenes, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
