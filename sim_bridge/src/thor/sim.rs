//! `ThorLite`: the simulator state, AI2-THOR's actions, and the per-step metadata.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ember_agent::observation::{DepthImage, InstanceImage, RgbImage};
use ember_agent::thor::{AgentMeta, AxisAlignedBox, InventoryObject, Metadata, ObjectMeta, Vec3};
use serde_json::{Map, Value, json};

use crate::backend::{Frames, InitSettings, SimError, SimEvent, Simulator, SimulatorInfo};

use super::geom::{
    Footprint, Rect, V3, distance_segment_to_aabb, rotate_object_yaw, translate_object,
};
use super::params::Params;
use super::render::{Camera, NEAR, Quad, Raster, Scissor};
use super::scene::{self, OpenFace, Scene, SceneSummary, Style, side_vector};
use super::style::{Look, object_quads};

/// The agent's radius for collisions (a vertical cylinder), metres.
pub const AGENT_RADIUS: f64 = 0.2;
/// How far the hand reaches: objects farther than this from the agent's body (its vertical
/// axis from near the floor up to the camera, to the nearest point of their box) cannot be
/// interacted with, metres.
pub const REACH: f64 = 1.5;
/// Camera height above the agent's position when standing, metres.
pub const STANDING_CAMERA: f64 = ember_calibration::thor::STANDING_CAMERA_OFFSET;
/// Camera height above the agent's position when crouching, metres.
pub const CROUCHING_CAMERA: f64 = ember_calibration::thor::CROUCHING_CAMERA_OFFSET;
/// Horizon limits (degrees; negative looks up).
pub const MAX_UP: f64 = -30.0;
/// Horizon limits (degrees; positive looks down).
pub const MAX_DOWN: f64 = 60.0;
/// Objects whose box bottom is below this height above the floor block the agent.
const OBSTACLE_MAX_BOTTOM: f64 = 0.5;
/// Where a held object's centre sits in camera coordinates (right, up, forward), metres.
const HAND: V3 = V3::new(0.0, -0.22, 0.45);

/// The receptacle compatibility table (see `data/ithor/receptacles.json`).
static RECEPTACLES_JSON: &str = include_str!("../../data/ithor/receptacles.json");

/// Every action thor-lite understands.
pub const ACTIONS: &[&str] = &[
    "MoveAhead",
    "MoveBack",
    "MoveLeft",
    "MoveRight",
    "RotateLeft",
    "RotateRight",
    "LookUp",
    "LookDown",
    "Crouch",
    "Stand",
    "Teleport",
    "TeleportFull",
    "PickupObject",
    "PutObject",
    "OpenObject",
    "CloseObject",
    "ToggleObjectOn",
    "ToggleObjectOff",
    "GetReachablePositions",
    "GetInteractablePoses",
    "Done",
    "Pass",
];

#[derive(Clone, Copy, Debug, PartialEq)]
struct Agent {
    x: f64,
    y: f64,
    z: f64,
    yaw: f64,
    horizon: f64,
    standing: bool,
}

/// The result of one action before the event is built.
struct Outcome {
    error: Option<String>,
    action_return: Value,
    collided_with: Option<Vec<String>>,
}

impl Outcome {
    fn ok() -> Self {
        Self {
            error: None,
            action_return: Value::Null,
            collided_with: None,
        }
    }
    fn ret(v: Value) -> Self {
        Self {
            error: None,
            action_return: v,
            collided_with: None,
        }
    }
    fn fail(msg: impl Into<String>) -> Self {
        Self {
            error: Some(msg.into()),
            action_return: Value::Null,
            collided_with: None,
        }
    }
}

/// Where a put object goes: the centre of its footprint, the height of its bottom, and
/// whether it is turned a quarter turn first.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Spot {
    x: f64,
    y: f64,
    z: f64,
    quarter: bool,
}

/// Something the agent bumped into.
#[derive(Clone, Debug, PartialEq)]
enum Blocker {
    Wall,
    Stove,
    Object(usize),
}

struct World {
    scene: Scene,
    objects: Vec<ObjectMeta>,
    agent: Agent,
    held: Option<usize>,
    /// The agent's yaw the held object's orientation was last set for: the held object turns
    /// with the agent, as it does in AI2-THOR (where the hand carries it).
    held_yaw: f64,
    /// Pixel count per instance index in the last rendered frame.
    counts: Vec<u32>,
    obstacles: Vec<(Rect, usize)>,
    obstacles_dirty: bool,
}

/// thor-lite: the embedded AI2-THOR-compatible simulator.
///
/// ```no_run
/// use ember_sim_bridge::{InitSettings, Simulator, thor::ThorLite};
/// let mut sim = ThorLite::new();
/// let ev = sim.reset("FloorPlan5", &InitSettings::default()).unwrap();
/// assert!(ev.metadata.last_action_success);
/// ```
pub struct ThorLite {
    settings: InitSettings,
    world: Option<World>,
    raster: Raster,
    probe: Raster,
    receptacles: BTreeMap<String, BTreeSet<String>>,
}

impl Default for ThorLite {
    fn default() -> Self {
        Self::new()
    }
}

impl ThorLite {
    /// A simulator with no scene loaded; `reset` loads one.
    pub fn new() -> Self {
        let receptacles = serde_json::from_str::<Value>(RECEPTACLES_JSON)
            .ok()
            .and_then(|v| v.get("receptacles").cloned())
            .and_then(|v| serde_json::from_value::<BTreeMap<String, BTreeSet<String>>>(v).ok())
            .unwrap_or_default();
        Self {
            settings: InitSettings::default(),
            world: None,
            raster: Raster::default(),
            probe: Raster::default(),
            receptacles,
        }
    }

    /// The names of the 120 embedded iTHOR scenes (`FloorPlan1` ... `FloorPlan430`).
    pub fn scene_names() -> Vec<String> {
        scene::scene_names()
    }

    /// A summary (room type, object counts, start pose) of one scene.
    pub fn scene_summary(name: &str) -> Result<SceneSummary, SimError> {
        scene::summary(name).map_err(|e| match e {
            scene::LoadError::Unknown(n) => SimError::UnknownScene(n),
            other => SimError::Failure(other.to_string()),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &InitSettings {
        &self.settings
    }

    /// ALFWorld's reachable floor points for the loaded scene (0.25 m grid), the validation
    /// reference for `GetReachablePositions`.
    pub fn reference_reachable(&self) -> Option<(f64, Vec<[f64; 2]>)> {
        self.world
            .as_ref()
            .map(|w| (w.scene.alfworld_grid, w.scene.alfworld_reachable.clone()))
    }

    /// ALFWorld's hand-made poses from which openable receptacles can be opened, for the
    /// loaded scene (objectId -> pose). About 57% of the ids match today's ids exactly.
    pub fn reference_openable_poses(&self) -> Vec<(String, super::scene::OpenablePose)> {
        self.world
            .as_ref()
            .map(|w| {
                w.scene
                    .openable_poses
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Renders the current view (colour, depth and ids) without stepping, and returns the
    /// colour image. For benchmarks and tools; `step` renders by itself.
    pub fn render(&mut self) -> Result<RgbImage, SimError> {
        let settings = self.settings.clone();
        let world = self.world.as_mut().ok_or(SimError::NoScene)?;
        world.place_held(&settings);
        let cam = world.camera_at(&world.agent, &settings);
        let quads = world.quads(true);
        self.raster.clear(settings.width, settings.height, true);
        self.raster.draw(&cam, &quads, true, None);
        self.raster.resolve(true);
        RgbImage::new(settings.width, settings.height, self.raster.take_rgb())
            .ok_or_else(|| SimError::Failure("frame size mismatch".into()))
    }

    /// The loaded scene's room type (`kitchens`...).
    pub fn room_type(&self) -> Option<&str> {
        self.world.as_ref().map(|w| w.scene.room_type.as_str())
    }

    fn check_settings(s: &InitSettings) -> Result<(), SimError> {
        if s.width == 0 || s.height == 0 || s.width > 4096 || s.height > 4096 {
            return Err(SimError::BadSetting(format!(
                "width x height {}x{} must be within 1..=4096",
                s.width, s.height
            )));
        }
        if !(s.field_of_view > 0.0 && s.field_of_view < 180.0) {
            return Err(SimError::BadSetting(format!(
                "fieldOfView {} must be in (0, 180) degrees",
                s.field_of_view
            )));
        }
        if !(s.grid_size > 0.0 && s.grid_size.is_finite()) {
            return Err(SimError::BadSetting(format!(
                "gridSize {} must be > 0",
                s.grid_size
            )));
        }
        if !(s.visibility_distance > 0.0 && s.visibility_distance.is_finite()) {
            return Err(SimError::BadSetting(format!(
                "visibilityDistance {} must be > 0",
                s.visibility_distance
            )));
        }
        if !(s.rotate_step_degrees >= 0.1 && s.rotate_step_degrees <= 360.0) {
            return Err(SimError::BadSetting(format!(
                "rotateStepDegrees {} must be in [0.1, 360]",
                s.rotate_step_degrees
            )));
        }
        // thor-lite simulates AI2-THOR's default agent only: another mode (an arm, a drone)
        // would silently behave as the default agent, so it is refused.
        if !s.agent_mode.eq_ignore_ascii_case("default") {
            return Err(SimError::BadSetting(format!(
                "agentMode '{}' is not simulated by thor-lite (only 'default'; real AI2-THOR \
                 behind thor_bridge.py has the others)",
                s.agent_mode
            )));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// World: geometry queries on the current state
// ---------------------------------------------------------------------------------------------

impl World {
    fn new(scene: Scene) -> World {
        let s = &scene.start;
        let agent = Agent {
            x: s.x,
            y: scene.agent_y,
            z: s.z,
            yaw: s.rotation.rem_euclid(360.0),
            horizon: s.horizon,
            standing: s.standing,
        };
        let mut w = World {
            objects: scene.objects.clone(),
            agent,
            held: None,
            held_yaw: 0.0,
            counts: vec![0; scene.objects.len() + 1],
            obstacles: Vec::new(),
            obstacles_dirty: true,
            scene,
        };
        w.rebuild_obstacles();
        // A few reference start poses fall off today's floor or into furniture (the dumps
        // and the poses come from different AI2-THOR versions): move to the nearest free
        // point on a 5 cm grid.
        if w.blocked(w.agent.x, w.agent.z).is_some() {
            let (x0, z0) = (w.agent.x, w.agent.z);
            let mut best: Option<(f64, f64, f64)> = None;
            for i in -100i32..=100 {
                for j in -100i32..=100 {
                    let (x, z) = (x0 + i as f64 * 0.05, z0 + j as f64 * 0.05);
                    let d = (i * i + j * j) as f64;
                    if best.is_none_or(|b| d < b.0) && w.blocked(x, z).is_none() {
                        best = Some((d, x, z));
                    }
                }
            }
            if let Some((_, x, z)) = best {
                w.agent.x = x;
                w.agent.z = z;
                w.scene.start.source =
                    format!("{} (moved to the nearest free point)", w.scene.start.source);
            }
        }
        w
    }

    fn camera_height(standing: bool) -> f64 {
        if standing {
            STANDING_CAMERA
        } else {
            CROUCHING_CAMERA
        }
    }

    fn camera_at(&self, a: &Agent, s: &InitSettings) -> Camera {
        Camera {
            position: V3::new(a.x, a.y + Self::camera_height(a.standing), a.z),
            yaw_deg: a.yaw,
            horizon_deg: a.horizon,
            fov_y_deg: s.field_of_view,
            width: s.width,
            height: s.height,
        }
    }

    /// Whether object `i` sits inside a closed container (then it is not drawn).
    fn enclosed(&self, i: usize) -> bool {
        let o = &self.objects[i];
        let Some(parents) = o.parent_receptacles.as_ref() else {
            return false;
        };
        let c = &o.axis_aligned_bounding_box.center;
        parents.iter().any(|pid| {
            let Some(&p) = self.scene.index.get(pid) else {
                return false;
            };
            let po = &self.objects[p];
            if !po.openable || po.is_open {
                return false;
            }
            let (min, max) = (
                po.axis_aligned_bounding_box.min(),
                po.axis_aligned_bounding_box.max(),
            );
            c.x >= min.x
                && c.x <= max.x
                && c.z >= min.z
                && c.z <= max.z
                && c.y >= min.y
                && c.y <= max.y
        })
    }

    fn look(&self, i: usize) -> Look<'_> {
        Look {
            object: &self.objects[i],
            style: self.scene.style[i],
            front: self.scene.front[i],
            top_cut: self.scene.top_cut[i],
            id: i as u32 + 1,
            counter: self.scene.counter_body[i].as_ref().map(|(body, bottom)| {
                let surf = self.scene.counter_surface[i].as_deref().unwrap_or(&[]);
                (body.as_slice(), surf, *bottom)
            }),
        }
    }

    /// All polygons of the current state: room, then objects in metadata order. The held
    /// object is left out when `with_held` is false.
    fn quads(&self, with_held: bool) -> Vec<Quad> {
        let mut q = Vec::with_capacity(self.objects.len() * 8 + self.scene.room_quads.len());
        for i in 0..self.objects.len() {
            if self.objects[i].is_picked_up && !with_held {
                continue;
            }
            if self.enclosed(i) {
                continue;
            }
            object_quads(&self.look(i), &mut q);
        }
        // The room last: it lies behind everything, so most of its pixels fail the depth
        // test instead of being written and overwritten.
        q.extend_from_slice(&self.scene.room_quads);
        q
    }

    fn rebuild_obstacles(&mut self) {
        let floor = self.scene.floor_y;
        let mut obs = Vec::new();
        for (i, o) in self.objects.iter().enumerate() {
            if o.is_picked_up || self.scene.style[i] == Style::Skip {
                continue;
            }
            if let Some((body, _)) = &self.scene.counter_body[i] {
                obs.extend(body.iter().map(|r| (*r, i)));
                continue;
            }
            let (min, max) = (
                o.axis_aligned_bounding_box.min(),
                o.axis_aligned_bounding_box.max(),
            );
            if min.y < floor + OBSTACLE_MAX_BOTTOM && max.y > floor + 0.05 {
                obs.push((Rect::new(min.x, min.z, max.x, max.z), i));
            }
        }
        self.obstacles = obs;
        self.obstacles_dirty = false;
    }

    /// What blocks an agent disc at (x, z), if anything.
    fn blocked(&self, x: f64, z: f64) -> Option<Blocker> {
        self.blocked_from(x, z, None)
    }

    /// What blocks an agent disc at (x, z) on a move that started at `from`, if anything. An
    /// object (or stove) the disc already overlaps at `from` blocks only a point deeper into
    /// it: the agent may leave an obstacle it stands in (an opened drawer, a put object), as
    /// Unity's capsule casts ignore colliders the capsule overlaps when the cast starts, but
    /// not walk through it. Walls always block.
    fn blocked_from(&self, x: f64, z: f64, from: Option<(f64, f64)>) -> Option<Blocker> {
        let r = AGENT_RADIUS - 1e-6;
        if !self.scene.in_room(x, z) {
            return Some(Blocker::Wall);
        }
        for w in &self.scene.outside {
            if w.distance(x, z) < r {
                return Some(Blocker::Wall);
            }
        }
        let hits = |rect: &Rect| {
            let d = rect.distance(x, z);
            if d >= r {
                return false;
            }
            match from {
                Some((fx, fz)) => {
                    let d0 = rect.distance(fx, fz);
                    d0 >= r || d < d0 - 1e-9
                }
                None => true,
            }
        };
        for (rect, _) in &self.scene.stoves {
            if hits(rect) {
                return Some(Blocker::Stove);
            }
        }
        for (rect, i) in &self.obstacles {
            if hits(rect) {
                return Some(Blocker::Object(*i));
            }
        }
        None
    }

    /// What blocks a straight move from (x0, z0) to (x1, z1), sampled every 2 cm.
    fn sweep(&self, x0: f64, z0: f64, x1: f64, z1: f64) -> Option<Blocker> {
        let len = ((x1 - x0).powi(2) + (z1 - z0).powi(2)).sqrt();
        let n = (len / 0.02).ceil().max(1.0) as usize;
        for k in 1..=n {
            let t = k as f64 / n as f64;
            let (x, z) = (x0 + (x1 - x0) * t, z0 + (z1 - z0) * t);
            if let Some(b) = self.blocked_from(x, z, Some((x0, z0))) {
                return Some(b);
            }
        }
        None
    }

    fn blocker_name(&self, b: &Blocker) -> (String, Option<String>) {
        match b {
            Blocker::Wall => ("Wall".to_string(), None),
            Blocker::Stove => ("Stove".to_string(), None),
            Blocker::Object(i) => {
                let o = &self.objects[*i];
                (o.name.clone(), Some(o.object_id.clone()))
            }
        }
    }

    /// Reachable floor positions on a grid of step `grid` through the agent's position,
    /// flood-filled from there (4-neighbourhood, swept collision checks), in BFS order.
    fn reachable(&self, grid: f64) -> Vec<(f64, f64)> {
        let (ox, oz) = (self.agent.x, self.agent.z);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut queue = VecDeque::new();
        // An agent standing in an obstacle (an opened drawer) floods out of it; the points
        // inside obstacles are not reported.
        if !matches!(self.blocked(ox, oz), Some(Blocker::Wall)) {
            seen.insert((0i64, 0i64));
            queue.push_back((0i64, 0i64));
        }
        let limit = 200_000usize;
        while let Some((i, j)) = queue.pop_front() {
            let (x, z) = (ox + i as f64 * grid, oz + j as f64 * grid);
            if self.blocked(x, z).is_none() {
                out.push((x, z));
            }
            if out.len() >= limit {
                break;
            }
            for (di, dj) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                let key = (i + di, j + dj);
                if seen.contains(&key) {
                    continue;
                }
                let (nx, nz) = (ox + key.0 as f64 * grid, oz + key.1 as f64 * grid);
                if self.sweep(x, z, nx, nz).is_none() {
                    seen.insert(key);
                    queue.push_back(key);
                }
            }
        }
        out
    }

    /// How far object `i`'s box is from the agent's body: AI2-THOR gathers the candidates for
    /// visibility and interaction with a capsule along the agent's body (an overlap capsule of
    /// radius `visibilityDistance` from near the floor up to the camera), so a pan in a low
    /// cabinet in front of the agent is within reach although the camera is 1.7 m from it.
    fn body_distance(&self, x: f64, z: f64, camera_y: f64, b: &AxisAlignedBox) -> f64 {
        let foot = (self.scene.floor_y + AGENT_RADIUS).min(camera_y);
        distance_segment_to_aabb(x, z, foot, camera_y, b)
    }

    fn interactable(&self, i: usize, cam: &Camera, vis_dist: f64) -> (bool, bool) {
        let d = self.body_distance(
            cam.position.x,
            cam.position.z,
            cam.position.y,
            &self.objects[i].axis_aligned_bounding_box,
        );
        let visible = self.counts.get(i + 1).copied().unwrap_or(0) >= 1 && d <= vis_dist;
        (visible, visible && d <= REACH)
    }

    /// Moves object `i` and everything resting in or on it by `d`.
    fn move_with_contents(&mut self, i: usize, d: V3) {
        self.for_object_and_contents(i, |o| translate_object(o, d));
    }

    /// Applies `f` to object `i` and to everything resting in or on it, and marks the
    /// obstacles for a rebuild.
    fn for_object_and_contents(&mut self, i: usize, mut f: impl FnMut(&mut ObjectMeta)) {
        let id = self.objects[i].object_id.clone();
        for k in 0..self.objects.len() {
            let on = k == i
                || self.objects[k]
                    .parent_receptacles
                    .as_ref()
                    .is_some_and(|p| p.contains(&id));
            if on {
                f(&mut self.objects[k]);
            }
        }
        self.obstacles_dirty = true;
    }

    /// Turns object `i` and everything resting in or on it about the vertical through `pivot`
    /// by `deg` degrees of yaw.
    fn rotate_with_contents(&mut self, i: usize, pivot: V3, deg: f64) {
        self.for_object_and_contents(i, |o| rotate_object_yaw(o, pivot, deg));
    }

    /// Detaches object `i` (and what rests on it) from its receptacles.
    fn detach(&mut self, i: usize) {
        let id = self.objects[i].object_id.clone();
        let old: Vec<String> = self.objects[i]
            .parent_receptacles
            .take()
            .unwrap_or_default();
        let mut moving = vec![i];
        for k in 0..self.objects.len() {
            if self.objects[k]
                .parent_receptacles
                .as_ref()
                .is_some_and(|p| p.contains(&id))
            {
                moving.push(k);
            }
        }
        for &k in &moving {
            let kid = self.objects[k].object_id.clone();
            if k != i
                && let Some(ps) = self.objects[k].parent_receptacles.as_mut()
            {
                ps.retain(|p| !old.contains(p));
            }
            for pid in &old {
                if let Some(&p) = self.scene.index.get(pid)
                    && let Some(list) = self.objects[p].receptacle_object_ids.as_mut()
                {
                    list.retain(|x| *x != kid);
                }
            }
        }
    }

    /// Attaches object `i` (and what rests on it) to receptacle `r` and its ancestors.
    fn attach(&mut self, i: usize, r: usize) {
        let id = self.objects[i].object_id.clone();
        let rid = self.objects[r].object_id.clone();
        let mut chain: Vec<String> = self.objects[r]
            .parent_receptacles
            .clone()
            .unwrap_or_default();
        chain.push(rid);
        let mut moving = vec![i];
        for k in 0..self.objects.len() {
            if k != i
                && self.objects[k]
                    .parent_receptacles
                    .as_ref()
                    .is_some_and(|p| p.contains(&id))
            {
                moving.push(k);
            }
        }
        for &k in &moving {
            let kid = self.objects[k].object_id.clone();
            let mut ps = chain.clone();
            if k != i {
                ps.extend(
                    self.objects[k]
                        .parent_receptacles
                        .clone()
                        .unwrap_or_default(),
                );
            }
            self.objects[k].parent_receptacles = Some(ps);
            for pid in &chain {
                if let Some(&p) = self.scene.index.get(pid) {
                    let list = self.objects[p]
                        .receptacle_object_ids
                        .get_or_insert_with(Vec::new);
                    if !list.contains(&kid) {
                        list.push(kid.clone());
                    }
                }
            }
        }
    }

    /// Keeps the held object (and what rests on it) in front of the camera.
    fn place_held(&mut self, s: &InitSettings) {
        let Some(h) = self.held else { return };
        let cam = self.camera_at(&self.agent, s);
        let (r, u, f) = cam.axes();
        let target = cam
            .position
            .add(r.scale(HAND.x))
            .add(u.scale(HAND.y))
            .add(f.scale(HAND.z));
        let turn = (self.agent.yaw - self.held_yaw).rem_euclid(360.0);
        if turn > 1e-9 && turn < 360.0 - 1e-9 {
            let pivot = V3::from_thor(&self.objects[h].axis_aligned_bounding_box.center);
            self.rotate_with_contents(h, pivot, turn);
            self.held_yaw = self.agent.yaw;
        }
        let c = V3::from_thor(&self.objects[h].axis_aligned_bounding_box.center);
        let d = target.sub(c);
        if d.norm() > 1e-9 {
            self.move_with_contents(h, d);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulator
// ---------------------------------------------------------------------------------------------

impl Simulator for ThorLite {
    fn info(&self) -> SimulatorInfo {
        SimulatorInfo {
            name: "thor-lite".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            scenes: Self::scene_names(),
            actions: ACTIONS.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn reset(&mut self, scene_name: &str, settings: &InitSettings) -> Result<SimEvent, SimError> {
        Self::check_settings(settings)?;
        let scene = Scene::load(scene_name).map_err(|e| match e {
            scene::LoadError::Unknown(n) => SimError::UnknownScene(n),
            other => SimError::Failure(other.to_string()),
        })?;
        self.settings = settings.clone();
        self.world = Some(World::new(scene));
        let out =
            Outcome::ret(json!({"cameraNearPlane": NEAR, "cameraFarPlane": super::render::FAR}));
        self.finish("Initialize", out)
    }

    fn step(&mut self, action: &Map<String, Value>) -> Result<SimEvent, SimError> {
        let name = match action.get("action") {
            Some(Value::String(s)) => s.clone(),
            Some(v) => {
                return Err(SimError::BadParameter {
                    action: String::new(),
                    parameter: "action".into(),
                    problem: format!("must be a string, got {v}"),
                });
            }
            None => {
                return Err(SimError::BadParameter {
                    action: String::new(),
                    parameter: "action".into(),
                    problem: "is missing".into(),
                });
            }
        };
        if !ACTIONS.contains(&name.as_str()) {
            return Err(SimError::UnknownAction(name));
        }
        if self.world.is_none() {
            return Err(SimError::NoScene);
        }
        let p = Params {
            action: &name,
            map: action,
        };
        let out = match name.as_str() {
            "MoveAhead" => self.move_agent(&p, 0.0)?,
            "MoveRight" => self.move_agent(&p, 90.0)?,
            "MoveBack" => self.move_agent(&p, 180.0)?,
            "MoveLeft" => self.move_agent(&p, 270.0)?,
            "RotateRight" => self.rotate(&p, 1.0)?,
            "RotateLeft" => self.rotate(&p, -1.0)?,
            "LookUp" => self.look(&p, -1.0)?,
            "LookDown" => self.look(&p, 1.0)?,
            "Crouch" => self.posture(false),
            "Stand" => self.posture(true),
            "Teleport" => self.teleport(&p, false)?,
            "TeleportFull" => self.teleport(&p, true)?,
            "PickupObject" => self.pickup(&p)?,
            "PutObject" => self.put(&p)?,
            "OpenObject" => self.open_close(&p, true)?,
            "CloseObject" => self.open_close(&p, false)?,
            "ToggleObjectOn" => self.toggle(&p, true)?,
            "ToggleObjectOff" => self.toggle(&p, false)?,
            "GetReachablePositions" => self.get_reachable(),
            "GetInteractablePoses" => self.interactable_poses(&p)?,
            "Done" | "Pass" => Outcome::ok(),
            other => return Err(SimError::UnknownAction(other.to_string())),
        };
        self.finish(&name, out)
    }
}

impl ThorLite {
    fn w(&self) -> &World {
        self.world.as_ref().expect("checked by step")
    }
    fn wm(&mut self) -> &mut World {
        self.world.as_mut().expect("checked by step")
    }

    fn move_agent(&mut self, p: &Params<'_>, offset: f64) -> Result<Outcome, SimError> {
        let mag = p.f64_or("moveMagnitude", self.settings.grid_size)?;
        if mag <= 0.0 {
            return Ok(Outcome::fail(format!(
                "moveMagnitude must be > 0, got {mag}"
            )));
        }
        let w = self.wm();
        if w.obstacles_dirty {
            w.rebuild_obstacles();
        }
        let a = w.agent;
        let th = (a.yaw + offset).to_radians();
        let (nx, nz) = (a.x + mag * th.sin(), a.z + mag * th.cos());
        if let Some(b) = w.sweep(a.x, a.z, nx, nz) {
            let (name, id) = w.blocker_name(&b);
            let mut o = Outcome::fail(format!("{name} is blocking Agent 0 from moving {offset}"));
            o.collided_with = Some(id.into_iter().collect());
            return Ok(o);
        }
        w.agent.x = nx;
        w.agent.z = nz;
        Ok(Outcome::ok())
    }

    fn rotate(&mut self, p: &Params<'_>, sign: f64) -> Result<Outcome, SimError> {
        let deg = p.f64_or("degrees", self.settings.rotate_step_degrees)?;
        let w = self.wm();
        w.agent.yaw = (w.agent.yaw + sign * deg).rem_euclid(360.0);
        Ok(Outcome::ok())
    }

    fn look(&mut self, p: &Params<'_>, sign: f64) -> Result<Outcome, SimError> {
        let deg = p.f64_or("degrees", 30.0)?;
        let w = self.wm();
        let h = w.agent.horizon + sign * deg;
        if h < MAX_UP - 1e-6 {
            return Ok(Outcome::fail(format!(
                "can't look up beyond {} degrees above the forward horizon",
                -MAX_UP
            )));
        }
        if h > MAX_DOWN + 1e-6 {
            return Ok(Outcome::fail(format!(
                "can't look down beyond {MAX_DOWN} degrees below the forward horizon"
            )));
        }
        w.agent.horizon = h;
        Ok(Outcome::ok())
    }

    fn posture(&mut self, standing: bool) -> Outcome {
        let w = self.wm();
        if w.agent.standing == standing {
            return Outcome::fail(if standing {
                "Already standing"
            } else {
                "Already crouching"
            });
        }
        w.agent.standing = standing;
        Outcome::ok()
    }

    fn teleport(&mut self, p: &Params<'_>, full: bool) -> Result<Outcome, SimError> {
        let pos = match p.vec3_opt("position")? {
            Some(v) => Some(v),
            None => match (p.f64_opt("x")?, p.f64_opt("z")?) {
                (Some(x), Some(z)) => Some(V3::new(x, p.f64_or("y", 0.0)?, z)),
                (None, None) => None,
                _ => {
                    return Err(SimError::BadParameter {
                        action: p.action.into(),
                        parameter: "x/z".into(),
                        problem: "both x and z are needed".into(),
                    });
                }
            },
        };
        let yaw = p.yaw_opt("rotation")?;
        let horizon = p.f64_opt("horizon")?;
        let standing = p.bool_opt("standing")?;
        if full {
            let missing = [
                ("position", pos.is_none()),
                ("rotation", yaw.is_none()),
                ("horizon", horizon.is_none()),
                ("standing", standing.is_none()),
            ];
            if let Some((name, _)) = missing.iter().find(|(_, m)| *m) {
                return Err(SimError::BadParameter {
                    action: p.action.into(),
                    parameter: (*name).into(),
                    problem: "is missing".into(),
                });
            }
        }
        let force = p.bool_or("forceAction", false)?;
        let w = self.wm();
        let mut a = w.agent;
        if let Some(v) = pos {
            a.x = v.x;
            a.z = v.z;
        }
        if let Some(y) = yaw {
            a.yaw = y.rem_euclid(360.0);
        }
        if let Some(h) = horizon {
            if !(MAX_UP - 1e-6..=MAX_DOWN + 1e-6).contains(&h) {
                return Ok(Outcome::fail(format!(
                    "horizon {h} is out of range: it must lie in [{MAX_UP}, {MAX_DOWN}] degrees"
                )));
            }
            a.horizon = h;
        }
        if let Some(s) = standing {
            a.standing = s;
        }
        if w.obstacles_dirty {
            w.rebuild_obstacles();
        }
        if !force && let Some(b) = w.blocked(a.x, a.z) {
            let (name, id) = w.blocker_name(&b);
            let mut o = Outcome::fail(format!(
                "Teleport failed: the agent at ({:.3}, {:.3}) would collide with {name}",
                a.x, a.z
            ));
            o.collided_with = Some(id.into_iter().collect());
            return Ok(o);
        }
        w.agent = a;
        Ok(Outcome::ok())
    }

    /// Looks up an objectId; the failure outcome when unknown.
    fn object(&self, id: &str) -> Result<usize, Outcome> {
        self.w()
            .scene
            .index
            .get(id)
            .copied()
            .ok_or_else(|| Outcome::fail("Object ID appears to be invalid."))
    }

    /// Checks that object `i` can be interacted with from the current view.
    fn reachable_check(&self, i: usize, force: bool) -> Option<Outcome> {
        if force {
            return None;
        }
        let w = self.w();
        let cam = w.camera_at(&w.agent, &self.settings);
        let (visible, interactable) = w.interactable(i, &cam, self.settings.visibility_distance);
        let id = &w.objects[i].object_id;
        if !visible {
            return Some(Outcome::fail(format!(
                "{id} is not interactable and (perhaps it is occluded by something)."
            )));
        }
        if !interactable {
            return Some(Outcome::fail(format!(
                "{id} is too far away to be interacted with"
            )));
        }
        None
    }

    fn pickup(&mut self, p: &Params<'_>) -> Result<Outcome, SimError> {
        let id = p.str_req("objectId")?;
        let force = p.bool_or("forceAction", false)?;
        let i = match self.object(id) {
            Ok(i) => i,
            Err(o) => return Ok(o),
        };
        let w = self.w();
        if let Some(h) = w.held {
            return Ok(Outcome::fail(format!(
                "Agent hand already has an object in it: {}",
                w.objects[h].object_id
            )));
        }
        if !w.objects[i].pickupable {
            return Ok(Outcome::fail(format!(
                "{id} must have the property CanPickup to be picked up."
            )));
        }
        if let Some(o) = self.reachable_check(i, force) {
            return Ok(o);
        }
        let settings = self.settings.clone();
        let w = self.wm();
        w.detach(i);
        w.objects[i].is_picked_up = true;
        w.held = Some(i);
        w.held_yaw = w.agent.yaw;
        w.place_held(&settings);
        w.obstacles_dirty = true;
        Ok(Outcome::ok())
    }

    fn put(&mut self, p: &Params<'_>) -> Result<Outcome, SimError> {
        let id = p.str_req("objectId")?;
        let force = p.bool_or("forceAction", false)?;
        let _ = p.bool_or("placeStationary", true)?;
        let Some(h) = self.w().held else {
            return Ok(Outcome::fail(
                "Can't place an object if Agent isn't holding anything",
            ));
        };
        let r = match self.object(id) {
            Ok(r) => r,
            Err(o) => return Ok(o),
        };
        let w = self.w();
        let rec = &w.objects[r];
        let held = &w.objects[h];
        if r == h {
            return Ok(Outcome::fail("Cannot place the held object into itself"));
        }
        if !rec.receptacle {
            return Ok(Outcome::fail("This target object is NOT a receptacle!"));
        }
        if let Some(allowed) = self.receptacles.get(&rec.object_type)
            && !allowed.contains(&held.object_type)
        {
            return Ok(Outcome::fail(format!(
                "{} is not a valid Object Type to be placed in {}",
                held.name, rec.name
            )));
        }
        if rec.openable && !rec.is_open {
            return Ok(Outcome::fail(format!(
                "{id} is closed: it must be open to place objects in it"
            )));
        }
        if let Some(o) = self.reachable_check(r, force) {
            return Ok(o);
        }
        // AI2-THOR places only at spawn points in the agent's view and reach (unless forced).
        let view = (!force).then(|| {
            let w = self.w();
            w.camera_at(&w.agent, &self.settings)
        });
        let Some(spot) = self.find_spot(h, r, view.as_ref()) else {
            return Ok(Outcome::fail("No valid positions to place object found"));
        };
        let w = self.wm();
        if spot.quarter {
            let pivot = V3::from_thor(&w.objects[h].axis_aligned_bounding_box.center);
            w.rotate_with_contents(h, pivot, 90.0);
        }
        let c = V3::from_thor(&w.objects[h].axis_aligned_bounding_box.center);
        let bottom = w.objects[h].axis_aligned_bounding_box.min().y;
        let d = V3::new(spot.x - c.x, spot.y - bottom, spot.z - c.z);
        w.move_with_contents(h, d);
        w.objects[h].is_picked_up = false;
        w.held = None;
        w.attach(h, r);
        w.obstacles_dirty = true;
        Ok(Outcome::ok())
    }

    /// Where the held object goes on or in receptacle `r`, as AI2-THOR's placement does it:
    /// spots on a 5 cm grid over the receptacle's surface, the object as held or turned a
    /// quarter turn (AI2-THOR tries 90 degree steps), its footprint (from its oriented box)
    /// inside the surface and clear of what already rests there, nearest the agent (the
    /// unturned object first on ties); with `view` (an unforced put), only spots inside that
    /// camera's frame and within reach of the agent; `None` when it does not fit.
    fn find_spot(&self, h: usize, r: usize, view: Option<&Camera>) -> Option<Spot> {
        let w = self.w();
        // A spot is usable when its surface point is within reach of the agent's body and
        // inside `view`'s frame. Occlusion is not tested: the boxes overlap where the meshes
        // do not (FloorPlan1's cabinet under the sink reaches above the basin's floor and
        // would hide every spawn point in it).
        let seen = |x: f64, y: f64, z: f64| -> bool {
            let Some(cam) = view else { return true };
            if w.body_distance(
                cam.position.x,
                cam.position.z,
                cam.position.y,
                &point_box(x, y, z),
            ) > REACH
            {
                return false;
            }
            let (rt, upv, fw) = cam.axes();
            let d = V3::new(x, y, z).sub(cam.position);
            let depth = d.dot(fw);
            if depth < NEAR {
                return false;
            }
            let f = cam.focal();
            let px = cam.width as f64 / 2.0 + f * d.dot(rt) / depth;
            let py = cam.height as f64 / 2.0 - f * d.dot(upv) / depth;
            px >= 0.0 && py >= 0.0 && px < cam.width as f64 && py < cam.height as f64
        };
        let rec = &w.objects[r];
        let held = &w.objects[h];
        let rb = &rec.axis_aligned_bounding_box;
        let (rmin, rmax) = (rb.min(), rb.max());
        let surface_dy = w.scene.surface_dy[r].unwrap_or(rmax.y - rmin.y);
        let surface = rmin.y + surface_dy;
        let hs = held.axis_aligned_bounding_box.size;
        let inside = surface < rmax.y - 0.03;
        // Closed containers and shelves (under the next plank) have a ceiling; basins, bins,
        // pots and seats do not (AI2-THOR checks only the bottom corners there).
        let ceiling = matches!(
            w.scene.style[r],
            Style::Openable { .. } | Style::Plank { .. }
        );
        if ceiling && inside && hs.y > rmax.y - surface + 0.02 {
            return None;
        }
        let regions: Vec<Rect> = match w.scene.counter_surface[r].as_ref() {
            Some(s) if !s.is_empty() => s.clone(),
            _ => vec![Rect::new(rmin.x, rmin.z, rmax.x, rmax.z)],
        };
        let in_regions = |x: f64, z: f64| {
            regions.iter().any(|g| {
                x >= g.x0 - 1e-9 && x <= g.x1 + 1e-9 && z >= g.z0 - 1e-9 && z <= g.z1 + 1e-9
            })
        };
        // footprints already resting on this receptacle at this level
        let rid = &rec.object_id;
        let taken: Vec<Footprint> = w
            .objects
            .iter()
            .enumerate()
            .filter(|(k, o)| {
                *k != h
                    && !o.is_picked_up
                    && o.parent_receptacles
                        .as_ref()
                        .is_some_and(|p| p.last() == Some(rid))
            })
            .map(|(_, o)| Footprint::of_object(o))
            .collect();
        let (ax, az) = (w.agent.x, w.agent.z);
        let on_floor = rec.object_type == "Floor";
        let free = |f: &Footprint| -> bool {
            if taken.iter().any(|t| t.overlaps(f, 1e-6)) {
                return false;
            }
            let b = f.bounds();
            // On the floor: only on free floor, never under the agent. (Anything else the
            // agent overlaps, an opened drawer, takes objects as AI2-THOR does.)
            !(on_floor
                && (b.distance(ax, az) < AGENT_RADIUS + 0.05
                    || !w.scene.in_room(f.c.0, f.c.1)
                    || w.obstacles.iter().any(|(r, k)| *k != h && r.overlaps(&b))
                    || w.scene.outside.iter().any(|r| r.overlaps(&b))
                    || w.scene.stoves.iter().any(|(r, _)| r.overlaps(&b))))
        };
        let (gx0, gz0, gx1, gz1) = regions.iter().fold(
            (
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            ),
            |a, g| (a.0.min(g.x0), a.1.min(g.z0), a.2.max(g.x1), a.3.max(g.z1)),
        );
        let held_fp = Footprint::of_object(held);
        let mut best: Option<(f64, Spot)> = None;
        for (quarter, fp) in [(false, held_fp), (true, held_fp.quarter_turn())] {
            let (hx, hz) = fp.half_extent();
            let axis = |lo: f64, hi: f64, half: f64| -> Vec<f64> {
                let (a, b) = (lo + half, hi - half);
                if a > b + 1e-9 {
                    return Vec::new();
                }
                let n = ((b - a) / 0.05 + 1e-9).floor() as usize;
                (0..=n).map(|k| a + k as f64 * 0.05).collect()
            };
            for x in axis(gx0, gx1, hx) {
                for z in axis(gz0, gz1, hz) {
                    let f = fp.at(x, z);
                    // the footprint's corners, edge midpoints and centre on the surface
                    let c = f.corners();
                    let mids = [
                        ((c[0].0 + c[1].0) / 2.0, (c[0].1 + c[1].1) / 2.0),
                        ((c[1].0 + c[2].0) / 2.0, (c[1].1 + c[2].1) / 2.0),
                        ((c[2].0 + c[3].0) / 2.0, (c[2].1 + c[3].1) / 2.0),
                        ((c[3].0 + c[0].0) / 2.0, (c[3].1 + c[0].1) / 2.0),
                    ];
                    if !c
                        .iter()
                        .chain(mids.iter())
                        .chain([(x, z)].iter())
                        .all(|&(px, pz)| in_regions(px, pz))
                    {
                        continue;
                    }
                    if !free(&f) || !seen(x, surface + 0.005, z) {
                        continue;
                    }
                    let d = (x - ax).powi(2) + (z - az).powi(2);
                    if best.as_ref().is_none_or(|(bd, _)| d < bd - 1e-12) {
                        best = Some((
                            d,
                            Spot {
                                x,
                                y: surface + 0.001,
                                z,
                                quarter,
                            },
                        ));
                    }
                }
            }
        }
        if best.is_none() && !inside {
            // A surface smaller than the object (a pan on a burner) takes it at its centre.
            let (x, z) = ((gx0 + gx1) / 2.0, (gz0 + gz1) / 2.0);
            if free(&held_fp.at(x, z)) && seen(x, surface + 0.005, z) {
                best = Some((
                    0.0,
                    Spot {
                        x,
                        y: surface + 0.001,
                        z,
                        quarter: false,
                    },
                ));
            }
        }
        best.map(|(_, s)| s)
    }

    fn open_close(&mut self, p: &Params<'_>, open: bool) -> Result<Outcome, SimError> {
        let id = p.str_req("objectId")?;
        let force = p.bool_or("forceAction", false)?;
        let openness = if open {
            p.f64_or("openness", 1.0)?
        } else {
            0.0
        };
        let i = match self.object(id) {
            Ok(i) => i,
            Err(o) => return Ok(o),
        };
        let o = &self.w().objects[i];
        if !o.openable {
            return Ok(Outcome::fail(format!("{id} is not an Openable object")));
        }
        if open && !(openness > 0.0 && openness <= 1.0) {
            return Ok(Outcome::fail(format!(
                "openness {openness} must be in (0, 1]"
            )));
        }
        if open && o.toggleable && o.is_toggled && o.object_type == "Microwave" {
            return Ok(Outcome::fail("Target must be OFF to open!"));
        }
        if let Some(o) = self.reachable_check(i, force) {
            return Ok(o);
        }
        let w = self.wm();
        let old = w.objects[i].openness;
        if w.scene.style[i]
            == (Style::Openable {
                open_face: OpenFace::Slide,
            })
        {
            // A drawer slides out along its front by most of its depth, carrying its contents.
            let f = side_vector(w.scene.front[i]);
            let size = w.objects[i].axis_aligned_bounding_box.size;
            let depth = if f.x != 0.0 { size.x } else { size.z };
            let d = f.scale(0.8 * depth * (openness - old));
            if d.norm() > 1e-9 {
                w.move_with_contents(i, d);
            }
        }
        w.objects[i].openness = openness;
        w.objects[i].is_open = openness > 0.0;
        Ok(Outcome::ok())
    }

    fn toggle(&mut self, p: &Params<'_>, on: bool) -> Result<Outcome, SimError> {
        let id = p.str_req("objectId")?;
        let force = p.bool_or("forceAction", false)?;
        let i = match self.object(id) {
            Ok(i) => i,
            Err(o) => return Ok(o),
        };
        let o = &self.w().objects[i];
        if !o.toggleable {
            return Ok(Outcome::fail("object is not toggleable"));
        }
        if on && o.is_toggled {
            return Ok(Outcome::fail("can't toggle object on if it's already on!"));
        }
        if !on && !o.is_toggled {
            return Ok(Outcome::fail(
                "can't toggle object off if it's already off!",
            ));
        }
        if let Some(o) = self.reachable_check(i, force) {
            return Ok(o);
        }
        let w = self.wm();
        w.objects[i].is_toggled = on;
        let controlled = w.objects[i].controlled_objects.clone().unwrap_or_default();
        for cid in controlled {
            if let Some(&c) = w.scene.index.get(&cid)
                && w.objects[c].toggleable
            {
                w.objects[c].is_toggled = on;
            }
        }
        Ok(Outcome::ok())
    }

    fn get_reachable(&mut self) -> Outcome {
        let grid = self.settings.grid_size;
        let w = self.wm();
        if w.obstacles_dirty {
            w.rebuild_obstacles();
        }
        let y = w.agent.y;
        let pts: Vec<Value> = w
            .reachable(grid)
            .into_iter()
            .map(|(x, z)| json!({"x": round6(x), "y": y, "z": round6(z)}))
            .collect();
        Outcome::ret(Value::Array(pts))
    }

    fn interactable_poses(&mut self, p: &Params<'_>) -> Result<Outcome, SimError> {
        let id = p.str_req("objectId")?.to_string();
        let positions = p.vec3_list_opt("positions")?;
        let rotations = p.f64_list_opt("rotations")?;
        let horizons = p.f64_list_opt("horizons")?;
        let standings = p.bool_list_opt("standings")?;
        let i = match self.object(&id) {
            Ok(i) => i,
            Err(o) => return Ok(o),
        };
        {
            let w = self.wm();
            if w.obstacles_dirty {
                w.rebuild_obstacles();
            }
        }
        let settings = self.settings.clone();
        let w = self.world.as_ref().expect("checked by step");
        if w.objects[i].is_picked_up || w.enclosed(i) {
            return Ok(Outcome::ret(Value::Array(vec![])));
        }
        let positions: Vec<(f64, f64)> = match positions {
            Some(ps) => ps.iter().map(|v| (v.x, v.z)).collect(),
            None => w.reachable(settings.grid_size),
        };
        let rotations = rotations.unwrap_or_else(|| {
            let step = settings.rotate_step_degrees;
            let n = (360.0 / step).round().max(1.0) as usize;
            (0..n).map(|k| k as f64 * step).collect()
        });
        let horizons = horizons.unwrap_or_else(|| vec![-30.0, 0.0, 30.0, 60.0]);
        let standings = standings.unwrap_or_else(|| vec![true, false]);
        let quads = w.quads(false);
        let mut target = Vec::new();
        object_quads(&w.look(i), &mut target);
        let tid = i as u32 + 1;
        let aabb = w.objects[i].axis_aligned_bounding_box.clone();
        let vis = settings.visibility_distance.min(REACH);
        let (t_centre, t_radius) = sphere_of(target.iter().flat_map(|q| q.v.iter().copied()));
        let spheres: Vec<(V3, f64)> = quads
            .iter()
            .map(|q| sphere_of(q.v.iter().copied()))
            .collect();
        let mut out = Vec::new();
        let probe = &mut self.probe;
        probe.clear(settings.width, settings.height, false);
        let mut subset: Vec<Quad> = Vec::new();
        for &(x, z) in &positions {
            for &standing in &standings {
                let cam_pos = V3::new(x, w.agent.y + World::camera_height(standing), z);
                if w.body_distance(x, z, cam_pos.y, &aabb) > vis {
                    continue;
                }
                // From a fixed camera position, only polygons that overlap the target's cone
                // of directions and can be nearer than its far side can hide it; the others
                // cannot change any of its pixels, whatever the rotation.
                let dt = t_centre.sub(cam_pos);
                let dist_t = dt.norm();
                let ang_t = if dist_t <= t_radius {
                    std::f64::consts::PI
                } else {
                    (t_radius / dist_t).asin()
                };
                subset.clear();
                for (q, &(c, r)) in quads.iter().zip(&spheres) {
                    if q.id == tid {
                        subset.push(*q);
                        continue;
                    }
                    let d = c.sub(cam_pos);
                    let dist = d.norm();
                    if dist <= r + 1e-9 {
                        subset.push(*q);
                        continue;
                    }
                    if dist - r > dist_t + t_radius {
                        continue;
                    }
                    let ang = (r / dist).asin();
                    let cosang = (d.dot(dt) / (dist * dist_t.max(1e-12))).clamp(-1.0, 1.0);
                    if cosang.acos() <= ang + ang_t + 1e-6 {
                        subset.push(*q);
                    }
                }
                for &rot in &rotations {
                    for &hor in &horizons {
                        let cam = Camera {
                            position: cam_pos,
                            yaw_deg: rot.rem_euclid(360.0),
                            horizon_deg: hor,
                            fov_y_deg: settings.field_of_view,
                            width: settings.width,
                            height: settings.height,
                        };
                        let Some((sc, stride)) = target_scissor(&cam, &target) else {
                            continue;
                        };
                        probe.clear_scissor(sc, stride);
                        probe.draw_strided(&cam, &subset, sc, stride);
                        if probe.any_in(sc, stride, tid) {
                            out.push(json!({
                                "x": round6(x), "y": w.agent.y, "z": round6(z),
                                "rotation": rot, "horizon": hor, "standing": standing
                            }));
                        }
                    }
                }
            }
        }
        Ok(Outcome::ret(Value::Array(out)))
    }

    /// Renders the frame, computes visibility and builds the event.
    fn finish(&mut self, action: &str, out: Outcome) -> Result<SimEvent, SimError> {
        let settings = self.settings.clone();
        let world = self.world.as_mut().ok_or(SimError::NoScene)?;
        world.place_held(&settings);
        if world.obstacles_dirty {
            world.rebuild_obstacles();
        }
        let cam = world.camera_at(&world.agent, &settings);
        let quads = world.quads(true);
        self.raster.clear(settings.width, settings.height, true);
        self.raster.draw(&cam, &quads, true, None);
        self.raster.resolve(true);
        self.raster.count_ids(&mut world.counts);
        let metadata = build_metadata(world, &settings, &cam, action, &out);
        let frames = Frames {
            rgb: RgbImage::new(settings.width, settings.height, self.raster.take_rgb()),
            depth: settings.render_depth_image.then(|| DepthImage {
                width: settings.width,
                height: settings.height,
                data: self.raster.depth(),
            }),
            instances: settings
                .render_instance_segmentation
                .then(|| InstanceImage {
                    width: settings.width,
                    height: settings.height,
                    data: self.raster.ids.clone(),
                    legend: std::iter::once(String::new())
                        .chain(world.objects.iter().map(|o| o.object_id.clone()))
                        .collect(),
                }),
        };
        Ok(SimEvent { metadata, frames })
    }
}

/// A degenerate box at one point.
fn point_box(x: f64, y: f64, z: f64) -> AxisAlignedBox {
    let p = Vec3::new(x, y, z);
    AxisAlignedBox::from_min_max(p, p)
}

/// A bounding sphere (centre of the bounding box, farthest point) of some points.
fn sphere_of(points: impl Iterator<Item = V3> + Clone) -> (V3, f64) {
    let mut min = V3::new(f64::INFINITY, f64::INFINITY, f64::INFINITY);
    let mut max = V3::new(f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for p in points.clone() {
        min = V3::new(min.x.min(p.x), min.y.min(p.y), min.z.min(p.z));
        max = V3::new(max.x.max(p.x), max.y.max(p.y), max.z.max(p.z));
    }
    let c = min.add(max).scale(0.5);
    let r = points.map(|p| p.sub(c).norm()).fold(0.0, f64::max);
    (c, r)
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The pixel rectangle covering the target's polygons, and the sampling stride that keeps
/// the probe cheap; `None` when the target cannot be in view.
fn target_scissor(cam: &Camera, target: &[Quad]) -> Option<(Scissor, u32)> {
    let (w, h) = (cam.width as f64, cam.height as f64);
    let (mut x0, mut y0, mut x1, mut y1) = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    let mut behind = false;
    let mut any_front = false;
    let (r, u, fw) = cam.axes();
    let f = cam.focal();
    for q in target {
        for v in &q.v {
            let d = v.sub(cam.position);
            let c = V3::new(d.dot(r), d.dot(u), d.dot(fw));
            if c.z < NEAR {
                behind = true;
                continue;
            }
            any_front = true;
            let u = w / 2.0 + f * c.x / c.z;
            let vv = h / 2.0 - f * c.y / c.z;
            x0 = x0.min(u);
            x1 = x1.max(u);
            y0 = y0.min(vv);
            y1 = y1.max(vv);
        }
    }
    if !any_front {
        return None;
    }
    let sc = if behind {
        Scissor {
            x0: 0,
            y0: 0,
            x1: cam.width,
            y1: cam.height,
        }
    } else {
        if x1 < 0.0 || y1 < 0.0 || x0 >= w || y0 >= h {
            return None;
        }
        Scissor {
            x0: x0.floor().clamp(0.0, w) as u32,
            y0: y0.floor().clamp(0.0, h) as u32,
            x1: (x1.ceil() + 1.0).clamp(0.0, w) as u32,
            y1: (y1.ceil() + 1.0).clamp(0.0, h) as u32,
        }
    };
    if sc.x0 >= sc.x1 || sc.y0 >= sc.y1 {
        return None;
    }
    let side = (sc.x1 - sc.x0).max(sc.y1 - sc.y0);
    let stride = (side / 48).clamp(1, 8);
    Some((sc, stride))
}

fn build_metadata(
    w: &World,
    s: &InitSettings,
    cam: &Camera,
    action: &str,
    out: &Outcome,
) -> Metadata {
    let agent_pos = V3::new(w.agent.x, w.agent.y, w.agent.z);
    let objects: Vec<ObjectMeta> = w
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mut m = o.clone();
            let (visible, interactable) = w.interactable(i, cam, s.visibility_distance);
            m.visible = visible;
            m.is_interactable = interactable;
            m.obstructed = false;
            m.is_moving = false;
            m.distance = round6(V3::from_thor(&o.position).sub(agent_pos).norm());
            m
        })
        .collect();
    let inventory = w
        .held
        .map(|h| {
            vec![InventoryObject {
                object_id: w.objects[h].object_id.clone(),
                object_type: w.objects[h].object_type.clone(),
            }]
        })
        .unwrap_or_default();
    let held_pose = w.held.map(|h| {
        let o = &w.objects[h];
        json!({"position": o.position, "rotation": o.rotation})
    });
    Metadata {
        objects,
        agent: AgentMeta {
            name: "agent".into(),
            position: Vec3::new(round6(w.agent.x), w.agent.y, round6(w.agent.z)),
            rotation: Vec3::new(0.0, round6(w.agent.yaw), 0.0),
            camera_horizon: round6(w.agent.horizon),
            is_standing: w.agent.standing,
            in_high_friction_area: false,
        },
        held_object_pose: held_pose,
        inventory_objects: inventory,
        scene_name: format!("{}_physics", w.scene.name),
        last_action: action.to_string(),
        last_action_success: out.error.is_none(),
        error_message: out.error.clone().unwrap_or_default(),
        error_code: if out.error.is_some() {
            "ActionFailed".into()
        } else {
            String::new()
        },
        action_return: out.action_return.clone(),
        screen_width: s.width,
        screen_height: s.height,
        fov: s.field_of_view,
        camera_position: Vec3::new(
            round6(cam.position.x),
            round6(cam.position.y),
            round6(cam.position.z),
        ),
        scene_bounds: w.scene.bounds.clone(),
        collided: out.collided_with.is_some(),
        collided_objects: out.collided_with.clone().unwrap_or_default(),
        is_scene_at_rest: true,
        depth_format: "Meters".into(),
    }
}
