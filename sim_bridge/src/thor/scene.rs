//! The embedded iTHOR scenes: loading, and what is derived from them once per load (room
//! outline, render styles of objects, receptacle surfaces, static collision rectangles).

use std::collections::BTreeMap;
use std::io::Read;

use ember_agent::thor::{ObjectMeta, SceneBounds};
use serde::{Deserialize, Serialize};

use super::embedded::SCENE_FILES;
use super::geom::{Obox, Rect, V3};
use super::render::Quad;
use super::style;

/// The start pose of a scene (AI2-THOR units: metres, degrees).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartPose {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    /// Yaw in degrees.
    pub rotation: f64,
    /// Camera horizon in degrees.
    pub horizon: f64,
    pub standing: bool,
    /// Where the pose comes from (the reference data engine, or how it was derived).
    pub source: String,
}

/// A hand-made pose from which an openable receptacle can be opened (ALFWorld).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenablePose {
    pub x: f64,
    pub z: f64,
    pub rotation_y: f64,
    pub horizon: f64,
}

#[derive(Deserialize)]
struct DerivedFile {
    front: u8,
    back: u8,
}

#[derive(Deserialize)]
struct RoomFile {
    cell: f64,
    origin: [f64; 2],
    nx: usize,
    nz: usize,
    rows: Vec<Vec<[usize; 2]>>,
}

#[derive(Deserialize)]
struct CounterBodyFile {
    object: usize,
    rects: Vec<[f64; 4]>,
    surface: Vec<[f64; 4]>,
    top: f64,
}

#[derive(Deserialize)]
struct SceneFile {
    scene: String,
    room_type: String,
    start_pose: StartPose,
    scene_bounds: SceneBounds,
    floor_y: f64,
    ceiling_y: f64,
    agent_y: f64,
    objects: Vec<ObjectMeta>,
    derived: Vec<DerivedFile>,
    room: RoomFile,
    counter_bodies: Vec<CounterBodyFile>,
    #[serde(default)]
    stove_bodies: Vec<[f64; 5]>,
    reachable: Vec<[f64; 2]>,
    reachable_grid: f64,
    openable_poses: BTreeMap<String, OpenablePose>,
}

/// A short description of a scene, for listings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneSummary {
    /// `FloorPlanN`.
    pub name: String,
    /// `kitchens`, `living_rooms`, `bedrooms` or `bathrooms`.
    pub room_type: String,
    /// Number of objects in the initial metadata.
    pub objects: usize,
    /// Number of pickupable objects.
    pub pickupable: usize,
    /// Number of receptacles.
    pub receptacles: usize,
    /// Number of openable objects.
    pub openable: usize,
    /// The start pose.
    pub start_pose: StartPose,
}

/// One of the four horizontal box sides: 0 +x, 1 -x, 2 +z, 3 -z.
pub(crate) fn side_vector(side: u8) -> V3 {
    match side {
        0 => V3::new(1.0, 0.0, 0.0),
        1 => V3::new(-1.0, 0.0, 0.0),
        2 => V3::new(0.0, 0.0, 1.0),
        _ => V3::new(0.0, 0.0, -1.0),
    }
}

/// The floor outline as a grid of cells.
#[derive(Clone, Debug)]
pub(crate) struct RoomMask {
    pub cell: f64,
    pub x0: f64,
    pub z0: f64,
    pub nx: usize,
    pub nz: usize,
    pub inside: Vec<bool>,
}

impl RoomMask {
    pub fn at(&self, i: i64, j: i64) -> bool {
        i >= 0
            && j >= 0
            && (i as usize) < self.nx
            && (j as usize) < self.nz
            && self.inside[j as usize * self.nx + i as usize]
    }

    /// Rectangles (cell units) covering the cells where `want(i, j)` holds, over the grid
    /// extended by `margin` cells on every side: row runs merged downwards when identical.
    fn rects_where(&self, margin: i64, want: impl Fn(i64, i64) -> bool) -> Vec<[i64; 4]> {
        let mut open: Vec<[i64; 4]> = Vec::new();
        let mut done = Vec::new();
        for j in -margin..self.nz as i64 + margin {
            let mut runs = Vec::new();
            let mut i = -margin;
            while i < self.nx as i64 + margin {
                if want(i, j) {
                    let s = i;
                    while i < self.nx as i64 + margin && want(i, j) {
                        i += 1;
                    }
                    runs.push((s, i));
                } else {
                    i += 1;
                }
            }
            let mut next = Vec::new();
            for r in open.drain(..) {
                if let Some(k) = runs.iter().position(|&(a, b)| a == r[0] && b == r[2]) {
                    runs.remove(k);
                    next.push([r[0], r[1], r[2], j + 1]);
                } else {
                    done.push(r);
                }
            }
            for (a, b) in runs {
                next.push([a, j, b, j + 1]);
            }
            open = next;
        }
        done.extend(open);
        done.sort();
        done
    }

    fn world(&self, r: [i64; 4]) -> Rect {
        Rect::new(
            self.x0 + r[0] as f64 * self.cell,
            self.z0 + r[1] as f64 * self.cell,
            self.x0 + r[2] as f64 * self.cell,
            self.z0 + r[3] as f64 * self.cell,
        )
    }
}

/// How an object's box is drawn (see the module docs of `thor`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Style {
    /// Not drawn as a box (the Floor: the room's floor carries its id).
    Skip,
    /// A closed box.
    Solid,
    /// A box without its top face (basins, pots, bins).
    TopOpen,
    /// A box without its front face (shelving units, dressers: their contents show).
    FrontOpen,
    /// A seat or bed: a low box up to the seat height plus a back rest on the side facing
    /// `back` (a horizontal unit direction, x and z), in the box's own frame.
    Seat { seat_dy: f64, back: (f64, f64) },
    /// A shelf: only the plank at the bottom of its box (the box spans the space above it).
    Plank { thickness: f64 },
    /// A CounterTop slab over its derived solid body.
    Counter,
    /// An openable container: closed box when closed; open it loses the face named here.
    Openable { open_face: OpenFace },
}

/// Which face an open container loses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum OpenFace {
    Front,
    Top,
    /// A drawer slides out along its front and shows its inside from above.
    Slide,
    /// Opening changes nothing visible (laptops, blinds, shower doors).
    None,
}

/// A scene as loaded: the initial state and everything derived from it.
#[derive(Clone, Debug)]
pub(crate) struct Scene {
    pub name: String,
    pub room_type: String,
    pub start: StartPose,
    pub bounds: SceneBounds,
    pub floor_y: f64,
    pub agent_y: f64,
    pub objects: Vec<ObjectMeta>,
    pub index: BTreeMap<String, usize>,
    /// Front and back side per object (0 +x, 1 -x, 2 +z, 3 -z).
    pub front: Vec<u8>,
    pub style: Vec<Style>,
    /// How far each object's drawn top lies below its box top (thin things resting in it).
    pub top_cut: Vec<f64>,
    /// Height of the surface things rest on, above the box bottom, per receptacle.
    pub surface_dy: Vec<Option<f64>>,
    /// CounterTops: the derived body rectangles and the slab's bottom height.
    pub counter_body: Vec<Option<(Vec<Rect>, f64)>>,
    /// CounterTops: the floor-plan rectangles of the slab's real surface.
    pub counter_surface: Vec<Option<Vec<Rect>>>,
    pub room: RoomMask,
    /// Floor, wall and ceiling polygons (floor polygons carry the Floor's instance index).
    pub room_quads: Vec<Quad>,
    /// The floor-plan area outside the room, as rectangles (collision).
    pub outside: Vec<Rect>,
    /// Stove bodies under burners that no counter holds (stoves are not objects in the
    /// dumps): footprint and height. Drawn as structure, block the agent.
    pub stoves: Vec<(Rect, f64)>,
    /// ALFWorld's reachable points (0.25 m grid), for validation.
    pub alfworld_reachable: Vec<[f64; 2]>,
    pub alfworld_grid: f64,
    pub openable_poses: BTreeMap<String, OpenablePose>,
}

/// Why a scene could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("unknown scene '{0}'")]
    Unknown(String),
    #[error("embedded scene {0} is corrupt: {1}")]
    Corrupt(String, String),
}

/// The names of the embedded scenes, in numeric order.
pub(crate) fn scene_names() -> Vec<String> {
    SCENE_FILES.iter().map(|(n, _)| n.to_string()).collect()
}

/// Normalises a scene name: `FloorPlan5`, `FloorPlan5_physics` and `floorplan5` all name
/// `FloorPlan5`.
pub(crate) fn canonical_name(name: &str) -> Option<&'static str> {
    let base = name.strip_suffix("_physics").unwrap_or(name);
    SCENE_FILES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(base))
        .map(|(n, _)| *n)
}

fn read_file(name: &str) -> Result<SceneFile, LoadError> {
    let canon = canonical_name(name).ok_or_else(|| LoadError::Unknown(name.to_string()))?;
    let bytes = SCENE_FILES
        .iter()
        .find(|(n, _)| *n == canon)
        .map(|(_, b)| *b)
        .ok_or_else(|| LoadError::Unknown(name.to_string()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| LoadError::Corrupt(canon.to_string(), e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| LoadError::Corrupt(canon.to_string(), e.to_string()))
}

/// A summary of one scene.
pub(crate) fn summary(name: &str) -> Result<SceneSummary, LoadError> {
    let f = read_file(name)?;
    Ok(SceneSummary {
        name: f.scene.clone(),
        room_type: f.room_type.clone(),
        objects: f.objects.len(),
        pickupable: f.objects.iter().filter(|o| o.pickupable).count(),
        receptacles: f.objects.iter().filter(|o| o.receptacle).count(),
        openable: f.objects.iter().filter(|o| o.openable).count(),
        start_pose: f.start_pose,
    })
}

fn colour_of(t: &str) -> [f32; 3] {
    style::type_color(t)
}

impl Scene {
    /// Loads and prepares a scene.
    pub fn load(name: &str) -> Result<Scene, LoadError> {
        let f = read_file(name)?;
        let n = f.objects.len();
        if f.derived.len() != n {
            return Err(LoadError::Corrupt(
                f.scene,
                "derived data does not match the objects".into(),
            ));
        }
        let mut index = BTreeMap::new();
        for (i, o) in f.objects.iter().enumerate() {
            index.insert(o.object_id.clone(), i);
        }
        let front: Vec<u8> = f.derived.iter().map(|d| d.front.min(3)).collect();
        let back: Vec<u8> = f.derived.iter().map(|d| d.back.min(3)).collect();
        let mut counter_body = vec![None; n];
        let mut counter_surface = vec![None; n];
        for cb in &f.counter_bodies {
            if cb.object < n {
                let rects = cb
                    .rects
                    .iter()
                    .map(|r| Rect::new(r[0], r[1], r[2], r[3]))
                    .collect();
                counter_body[cb.object] = Some((rects, cb.top));
                let surf = cb
                    .surface
                    .iter()
                    .map(|r| Rect::new(r[0], r[1], r[2], r[3]))
                    .collect();
                counter_surface[cb.object] = Some(surf);
            }
        }
        let derived = style::derive_styles(&f.objects, &counter_body, &back);
        let (style, surface_dy, top_cut) = (derived.styles, derived.surfaces, derived.top_cut);

        // Room mask.
        let rf = &f.room;
        let mut inside = vec![false; rf.nx * rf.nz];
        for (j, runs) in rf.rows.iter().enumerate().take(rf.nz) {
            for r in runs {
                for i in r[0]..r[1].min(rf.nx) {
                    inside[j * rf.nx + i] = true;
                }
            }
        }
        let room = RoomMask {
            cell: rf.cell,
            x0: rf.origin[0],
            z0: rf.origin[1],
            nx: rf.nx,
            nz: rf.nz,
            inside,
        };
        let floor_index = f.objects.iter().position(|o| o.object_type == "Floor");
        let floor_id = floor_index.map(|i| i as u32 + 1).unwrap_or(0);
        let stoves: Vec<(Rect, f64)> = f
            .stove_bodies
            .iter()
            .map(|b| (Rect::new(b[0], b[1], b[2], b[3]), b[4]))
            .collect();
        let mut room_quads = room_quads(&room, f.floor_y, f.ceiling_y, floor_id);
        for (r, top) in &stoves {
            let b = Obox::from_min_max(V3::new(r.x0, f.floor_y, r.z0), V3::new(r.x1, *top, r.z1));
            style::structure_box(&b, colour_of("Stove"), &mut room_quads);
        }
        let outside = room
            .rects_where(3, |i, j| !room.at(i, j))
            .into_iter()
            .map(|r| room.world(r))
            .collect();
        Ok(Scene {
            name: f.scene,
            room_type: f.room_type,
            start: f.start_pose,
            bounds: f.scene_bounds,
            floor_y: f.floor_y,
            agent_y: f.agent_y,
            index,
            front,
            style,
            top_cut,
            surface_dy,
            counter_body,
            counter_surface,
            room,
            room_quads,
            outside,
            stoves,
            alfworld_reachable: f.reachable,
            alfworld_grid: f.reachable_grid,
            openable_poses: f.openable_poses,
            objects: f.objects,
        })
    }

    /// Whether a floor point lies inside the room outline.
    pub fn in_room(&self, x: f64, z: f64) -> bool {
        let i = ((x - self.room.x0) / self.room.cell).floor() as i64;
        let j = ((z - self.room.z0) / self.room.cell).floor() as i64;
        self.room.at(i, j)
    }
}

fn room_quads(room: &RoomMask, floor_y: f64, ceiling_y: f64, floor_id: u32) -> Vec<Quad> {
    let mut quads = Vec::new();
    let floor_c = colour_of("Floor");
    let ceil_c = colour_of("Ceiling");
    let wall_c = colour_of("Wall");
    for r in room.rects_where(0, |i, j| room.at(i, j)) {
        let w = room.world(r);
        quads.push(Quad {
            v: [
                V3::new(w.x0, floor_y, w.z0),
                V3::new(w.x0, floor_y, w.z1),
                V3::new(w.x1, floor_y, w.z1),
                V3::new(w.x1, floor_y, w.z0),
            ],
            normal: V3::new(0.0, 1.0, 0.0),
            color: floor_c,
            id: floor_id,
            two_sided: false,
            recessed: true,
        });
        quads.push(Quad {
            v: [
                V3::new(w.x0, ceiling_y, w.z0),
                V3::new(w.x1, ceiling_y, w.z0),
                V3::new(w.x1, ceiling_y, w.z1),
                V3::new(w.x0, ceiling_y, w.z1),
            ],
            normal: V3::new(0.0, -1.0, 0.0),
            color: ceil_c,
            id: 0,
            two_sided: false,
            recessed: true,
        });
    }
    // Walls: boundary edges between inside and outside cells, merged along their line.
    let c = room.cell;
    let (nx, nz) = (room.nx as i64, room.nz as i64);
    let mut push_wall = |a: V3, b: V3, normal: V3| {
        quads.push(Quad {
            v: [
                V3::new(a.x, floor_y, a.z),
                V3::new(a.x, ceiling_y, a.z),
                V3::new(b.x, ceiling_y, b.z),
                V3::new(b.x, floor_y, b.z),
            ],
            normal,
            color: wall_c,
            id: 0,
            two_sided: false,
            recessed: true,
        });
    };
    // Walls facing +z / -z (horizontal edges between rows j-1 and j).
    for j in 0..=nz {
        for (dir, normal) in [
            (1i64, V3::new(0.0, 0.0, 1.0)),
            (-1, V3::new(0.0, 0.0, -1.0)),
        ] {
            let mut i = 0;
            while i < nx {
                // inside cell on the side the normal points to, outside on the other
                let (inside_row, outside_row) = if dir == 1 { (j, j - 1) } else { (j - 1, j) };
                let edge = |i: i64| room.at(i, inside_row) && !room.at(i, outside_row);
                if edge(i) {
                    let s = i;
                    while i < nx && edge(i) {
                        i += 1;
                    }
                    let z = room.z0 + j as f64 * c;
                    let xa = room.x0 + s as f64 * c;
                    let xb = room.x0 + i as f64 * c;
                    push_wall(V3::new(xa, 0.0, z), V3::new(xb, 0.0, z), normal);
                } else {
                    i += 1;
                }
            }
        }
    }
    for i in 0..=nx {
        for (dir, normal) in [
            (1i64, V3::new(1.0, 0.0, 0.0)),
            (-1, V3::new(-1.0, 0.0, 0.0)),
        ] {
            let mut j = 0;
            while j < nz {
                let (inside_col, outside_col) = if dir == 1 { (i, i - 1) } else { (i - 1, i) };
                let edge = |j: i64| room.at(inside_col, j) && !room.at(outside_col, j);
                if edge(j) {
                    let s = j;
                    while j < nz && edge(j) {
                        j += 1;
                    }
                    let x = room.x0 + i as f64 * c;
                    let za = room.z0 + s as f64 * c;
                    let zb = room.z0 + j as f64 * c;
                    push_wall(V3::new(x, 0.0, za), V3::new(x, 0.0, zb), normal);
                } else {
                    j += 1;
                }
            }
        }
    }
    quads
}
