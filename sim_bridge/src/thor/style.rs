//! How objects look: a stable colour per object type, the render style of each object (which
//! faces of its box are left out so that what it holds can be seen), receptacle surfaces, and
//! the polygons of one object in its current state.

use ember_agent::thor::ObjectMeta;

use super::geom::{Obox, Rect, V3};
use super::render::Quad;
use super::scene::{OpenFace, Style, side_vector};

/// Receptacles whose contents sit inside the box, open at the top.
const TOP_OPEN: &[&str] = &[
    "SinkBasin",
    "Sink",
    "BathtubBasin",
    "Bathtub",
    "GarbageCan",
    "Pot",
    "Pan",
    "Bowl",
    "Cup",
    "Mug",
    "DogBed",
];

/// Receptacles that are seats or beds: things rest on a surface below the box top.
const SEATS: &[&str] = &[
    "Sofa",
    "ArmChair",
    "Bed",
    "Chair",
    "Stool",
    "Ottoman",
    "Footstool",
    "DogBed",
    "Desk",
];

/// Receptacles whose contents rest on their floor when nothing shows otherwise.
const INSIDE: &[&str] = &[
    "Fridge",
    "Cabinet",
    "Drawer",
    "Microwave",
    "Safe",
    "Box",
    "GarbageCan",
    "SinkBasin",
    "BathtubBasin",
    "Pot",
    "Pan",
    "Bowl",
    "Cup",
    "Mug",
    "LaundryHamper",
    "Sink",
    "Bathtub",
    "Toaster",
    "CoffeeMachine",
];

/// A stable base colour per object type (linear 0..1). Common types have hand-picked
/// colours; any other type gets one from a hash of its name.
pub fn type_color(t: &str) -> [f32; 3] {
    let rgb: Option<[u8; 3]> = match t {
        "Wall" => Some([214, 206, 190]),
        "Ceiling" => Some([236, 234, 228]),
        "Floor" => Some([150, 112, 78]),
        "CounterTop" => Some([200, 200, 196]),
        "Cabinet" => Some([166, 122, 80]),
        "Drawer" => Some([150, 108, 70]),
        "Fridge" => Some([190, 196, 204]),
        "Microwave" => Some([70, 72, 78]),
        "StoveBurner" => Some([40, 40, 44]),
        "StoveKnob" => Some([30, 30, 30]),
        "Stove" => Some([95, 95, 100]),
        "Sink" => Some([175, 182, 190]),
        "SinkBasin" => Some([150, 160, 170]),
        "Faucet" => Some([205, 205, 215]),
        "CoffeeMachine" => Some([50, 50, 56]),
        "Toaster" => Some([180, 60, 50]),
        "Window" => Some([150, 200, 235]),
        "Blinds" => Some([225, 220, 205]),
        "Curtains" => Some([150, 60, 70]),
        "LightSwitch" => Some([245, 245, 240]),
        "GarbageCan" => Some([90, 100, 95]),
        "DiningTable" => Some([130, 90, 55]),
        "CoffeeTable" => Some([120, 84, 52]),
        "SideTable" => Some([135, 95, 60]),
        "Desk" => Some([140, 100, 62]),
        "Dresser" => Some([120, 80, 50]),
        "Shelf" => Some([160, 130, 95]),
        "ShelvingUnit" => Some([110, 80, 55]),
        "TVStand" => Some([70, 60, 55]),
        "Chair" => Some([110, 75, 50]),
        "Stool" => Some([100, 70, 45]),
        "Sofa" => Some([70, 90, 130]),
        "ArmChair" => Some([95, 110, 140]),
        "Ottoman" => Some([120, 100, 140]),
        "Bed" => Some([220, 215, 230]),
        "Pillow" => Some([240, 235, 200]),
        "Television" => Some([20, 20, 24]),
        "Laptop" => Some([60, 62, 70]),
        "Painting" => Some([190, 120, 60]),
        "Poster" => Some([60, 140, 170]),
        "Mirror" => Some([190, 215, 225]),
        "Toilet" => Some([240, 240, 240]),
        "Bathtub" => Some([235, 235, 240]),
        "BathtubBasin" => Some([220, 225, 235]),
        "ShowerDoor" | "ShowerGlass" => Some([170, 210, 220]),
        "ShowerCurtain" => Some([120, 170, 200]),
        "Towel" | "HandTowel" => Some([90, 160, 150]),
        "TowelHolder" | "HandTowelHolder" | "ToiletPaperHanger" => Some([180, 180, 190]),
        "HousePlant" => Some([60, 140, 60]),
        "FloorLamp" | "DeskLamp" => Some([230, 200, 120]),
        "Apple" => Some([200, 30, 40]),
        "Tomato" => Some([230, 50, 30]),
        "Lettuce" => Some([110, 190, 70]),
        "Potato" => Some([180, 140, 90]),
        "Bread" => Some([210, 160, 90]),
        "Egg" => Some([245, 235, 210]),
        "Mug" => Some([230, 230, 220]),
        "Cup" => Some([200, 220, 240]),
        "Bowl" => Some([220, 200, 170]),
        "Plate" => Some([240, 240, 236]),
        "Pot" => Some([80, 80, 90]),
        "Pan" => Some([60, 60, 66]),
        "Kettle" => Some([170, 170, 180]),
        "Knife" | "ButterKnife" | "Fork" | "Spoon" | "Ladle" | "Spatula" => Some([190, 190, 200]),
        "Book" => Some([160, 40, 50]),
        "CellPhone" => Some([30, 30, 40]),
        "CreditCard" => Some([40, 90, 160]),
        "KeyChain" => Some([200, 180, 60]),
        "RemoteControl" => Some([35, 35, 35]),
        "Vase" => Some([90, 140, 180]),
        "Statue" => Some([170, 160, 150]),
        "Box" => Some([190, 150, 100]),
        "Cloth" => Some([200, 120, 160]),
        "SoapBottle" => Some([100, 200, 180]),
        "SprayBottle" => Some([90, 150, 220]),
        "ToiletPaper" => Some([250, 250, 250]),
        "Candle" => Some([240, 230, 190]),
        "AlarmClock" => Some([200, 60, 60]),
        "Watch" => Some([160, 140, 100]),
        "Pen" | "Pencil" => Some([60, 80, 160]),
        "Newspaper" => Some([210, 210, 200]),
        "BasketBall" => Some([220, 110, 40]),
        "BaseballBat" => Some([190, 150, 100]),
        "TennisRacket" => Some([60, 160, 80]),
        "TeddyBear" => Some([160, 110, 70]),
        "LaundryHamper" => Some([170, 150, 120]),
        "Safe" => Some([80, 85, 90]),
        _ => None,
    };
    let rgb = rgb.unwrap_or_else(|| {
        // FNV-1a of the name -> a mid-saturation colour.
        let mut h: u32 = 0x811c9dc5;
        for b in t.bytes() {
            h ^= b as u32;
            h = h.wrapping_mul(0x01000193);
        }
        [
            60 + (h & 0xff) as u8 % 170,
            60 + ((h >> 8) & 0xff) as u8 % 170,
            60 + ((h >> 16) & 0xff) as u8 % 170,
        ]
    });
    [
        rgb[0] as f32 / 255.0,
        rgb[1] as f32 / 255.0,
        rgb[2] as f32 / 255.0,
    ]
}

fn bottom(o: &ObjectMeta) -> f64 {
    o.axis_aligned_bounding_box.min().y
}

fn top(o: &ObjectMeta) -> f64 {
    o.axis_aligned_bounding_box.max().y
}

/// Whether `c`'s box centre lies inside `p`'s box (a small margin in).
fn centre_inside(c: &ObjectMeta, p: &ObjectMeta) -> bool {
    let cc = &c.axis_aligned_bounding_box.center;
    let (min, max) = (
        p.axis_aligned_bounding_box.min(),
        p.axis_aligned_bounding_box.max(),
    );
    let m = 0.005;
    cc.x > min.x + m
        && cc.x < max.x - m
        && cc.y > min.y + m
        && cc.y < max.y - m
        && cc.z > min.z + m
        && cc.z < max.z - m
}

/// The receptacle object `c` directly rests on or in, among its parents. AI2-THOR lists every
/// receptacle whose trigger box holds an object (a pencil on a dining table also lists the
/// chair tucked under the table): the parent whose top is within 3 cm of the object's bottom
/// (the highest such), else the smallest parent whose box holds the object's centre, else the
/// last parent.
pub(crate) fn direct_parent(objects: &[ObjectMeta], c: usize) -> Option<usize> {
    let o = &objects[c];
    let parents: Vec<usize> = o
        .parent_receptacles
        .as_ref()?
        .iter()
        .filter_map(|pid| objects.iter().position(|p| p.object_id == *pid))
        .collect();
    let b = bottom(o);
    let on_top = parents
        .iter()
        .copied()
        .filter(|&p| (top(&objects[p]) - b).abs() <= 0.03)
        .max_by(|&x, &y| top(&objects[x]).total_cmp(&top(&objects[y])));
    if on_top.is_some() {
        return on_top;
    }
    let holding = parents
        .iter()
        .copied()
        .filter(|&p| centre_inside(o, &objects[p]))
        .min_by(|&x, &y| {
            objects[x]
                .axis_aligned_bounding_box
                .volume()
                .total_cmp(&objects[y].axis_aligned_bounding_box.volume())
        });
    holding.or_else(|| parents.last().copied())
}

/// Seats whose yaw faces their front (a chair faces its table): the back rest is on the side
/// opposite the yaw. Other seats (beds, stools) take the side with the least free floor.
const YAW_FACING: &[&str] = &["Chair", "ArmChair", "Sofa", "Desk"];
/// Seats drawn with a back rest even when nothing rests on them (seat at half their height).
const BACKED: &[&str] = &["Chair", "ArmChair", "Sofa"];

/// What is derived once per scene about how objects look and take things.
pub(crate) struct Derived {
    /// Render style per object.
    pub styles: Vec<Style>,
    /// Height of the surface things rest on, above the box bottom, per receptacle.
    pub surfaces: Vec<Option<f64>>,
    /// How far the drawn top of a box lies below its box top, per object: thin things resting
    /// on a receptacle (cards, pens) lie a few millimetres into its box in AI2-THOR's data,
    /// and would be hidden inside a box drawn to its full height.
    pub top_cut: Vec<f64>,
}

/// Render styles, receptacle surface heights and top cuts of a scene's objects, from their
/// types and from what their boxes hold in the initial state.
pub(crate) fn derive_styles(
    objects: &[ObjectMeta],
    counter_body: &[Option<(Vec<Rect>, f64)>],
    back_sides: &[u8],
) -> Derived {
    let n = objects.len();
    let mut styles = Vec::with_capacity(n);
    let mut surfaces = Vec::with_capacity(n);
    let mut top_cut = vec![0.0; n];
    let direct: Vec<Option<usize>> = (0..n).map(|c| direct_parent(objects, c)).collect();
    for (i, p) in objects.iter().enumerate() {
        let t = p.object_type.as_str();
        let vol = p.axis_aligned_bounding_box.volume();
        let resting: Vec<&ObjectMeta> = objects
            .iter()
            .enumerate()
            .filter(|&(k, _)| direct[k] == Some(i))
            .map(|(_, c)| c)
            .collect();
        let contained: Vec<&ObjectMeta> = objects
            .iter()
            .enumerate()
            .filter(|&(k, c)| {
                k != i
                    && c.axis_aligned_bounding_box.volume() < vol
                    && centre_inside(c, p)
                    && bottom(c) < top(p) - 0.03
                    // what rests on another receptacle inside p's box is that one's
                    && direct[k].is_none_or(|d| d == i || !centre_inside(&objects[d], p))
            })
            .map(|(_, c)| c)
            .collect();
        let resting_inside: Vec<&&ObjectMeta> = resting
            .iter()
            .filter(|c| centre_inside(c, p) && bottom(c) < top(p) - 0.03)
            .collect();
        // Things resting on p below its top whose footprint overlaps p's: p's box encloses
        // them (shelves, cubbies) even when their centre pokes out.
        let (pmin, pmax) = (
            p.axis_aligned_bounding_box.min(),
            p.axis_aligned_bounding_box.max(),
        );
        let sunk = resting.iter().any(|c| {
            let (cmin, cmax) = (
                c.axis_aligned_bounding_box.min(),
                c.axis_aligned_bounding_box.max(),
            );
            bottom(c) < top(p) - 0.03
                && cmin.x < pmax.x
                && cmax.x > pmin.x
                && cmin.z < pmax.z
                && cmax.z > pmin.z
        });
        // Thin things lying a little into the box top: draw the top at their bottom.
        let cut = resting
            .iter()
            .map(|c| top(p) - bottom(c))
            .filter(|d| *d > 0.0 && *d <= 0.03)
            .fold(0.0, f64::max);
        top_cut[i] = cut;
        let height = top(p) - bottom(p);
        let back = if YAW_FACING.contains(&t) {
            let yaw = p.rotation.y.to_radians();
            (-yaw.sin(), -yaw.cos())
        } else {
            let v = side_vector(back_sides.get(i).copied().unwrap_or(3));
            (v.x, v.z)
        };
        let style = if t == "Floor" {
            Style::Skip
        } else if counter_body.get(i).is_some_and(|c| c.is_some()) {
            Style::Counter
        } else if p.openable {
            let open_face = match t {
                "Fridge" | "Cabinet" | "Microwave" | "Safe" => OpenFace::Front,
                "Drawer" => OpenFace::Slide,
                "Box" | "LaundryHamper" | "Toilet" | "GarbageCan" => OpenFace::Top,
                _ => OpenFace::None,
            };
            Style::Openable { open_face }
        } else if TOP_OPEN.contains(&t) {
            Style::TopOpen
        } else if t == "Shelf" {
            let plank = resting
                .iter()
                .map(|c| bottom(c) - bottom(p))
                .filter(|d| *d > 0.005)
                .fold(f64::INFINITY, f64::min);
            let thickness = if plank.is_finite() {
                plank.min(height)
            } else {
                0.02f64.min(height)
            };
            Style::Plank { thickness }
        } else if SEATS.contains(&t) && !resting_inside.is_empty() {
            let seat = resting_inside
                .iter()
                .map(|c| bottom(c))
                .fold(f64::INFINITY, f64::min);
            let dy = seat - bottom(p);
            if dy > 0.05 && dy < height - 0.05 {
                Style::Seat { seat_dy: dy, back }
            } else if contained.is_empty() {
                Style::Solid
            } else {
                Style::FrontOpen
            }
        } else if BACKED.contains(&t) && height > 0.3 {
            Style::Seat {
                seat_dy: 0.5 * height,
                back,
            }
        } else if !contained.is_empty() || sunk {
            Style::FrontOpen
        } else {
            Style::Solid
        };
        styles.push(style);
        let surface = if p.receptacle {
            if counter_body.get(i).is_some_and(|c| c.is_some()) {
                Some(height - cut)
            } else if !resting.is_empty() {
                let lowest = resting
                    .iter()
                    .map(|c| bottom(c))
                    .fold(f64::INFINITY, f64::min);
                Some((lowest - bottom(p)).clamp(0.0, height))
            } else if INSIDE.contains(&t) {
                Some((0.02 * height).min(0.02))
            } else if let Style::Plank { thickness } = style {
                Some(thickness)
            } else if let Style::Seat { seat_dy, .. } = style {
                Some(seat_dy)
            } else {
                Some(height)
            }
        } else {
            None
        };
        surfaces.push(surface);
    }
    Derived {
        styles,
        surfaces,
        top_cut,
    }
}

/// The six faces of a box as quads; `keep(face)` chooses which (face k: axis k/2, sign
/// `+` for even k).
fn box_quads(
    b: &Obox,
    color: [f32; 3],
    id: u32,
    two_sided: bool,
    keep: impl Fn(usize) -> bool,
    out: &mut Vec<Quad>,
) {
    for k in 0..6 {
        if !keep(k) {
            continue;
        }
        let ax = k / 2;
        let s = if k % 2 == 0 { 1.0 } else { -1.0 };
        let n = b.axes[ax].scale(s);
        let (u, v) = (b.axes[(ax + 1) % 3], b.axes[(ax + 2) % 3]);
        let c = b.center.add(n);
        let mut quad = [
            c.sub(u).sub(v),
            c.add(u).sub(v),
            c.add(u).add(v),
            c.sub(u).add(v),
        ];
        if s < 0.0 {
            quad.reverse();
        }
        out.push(Quad {
            v: quad,
            normal: n.normalized(),
            color,
            id,
            two_sided,
            recessed: false,
        });
    }
}

/// A closed box of structure (instance 0), e.g. a stove body.
pub(crate) fn structure_box(b: &Obox, color: [f32; 3], out: &mut Vec<Quad>) {
    box_quads(b, color, 0, false, |_| true, out);
}

/// The face index (as in `box_quads`) whose outward normal is most aligned with `dir`.
fn face_towards(b: &Obox, dir: V3) -> usize {
    let mut best = (f64::NEG_INFINITY, 0);
    for k in 0..6 {
        let s = if k % 2 == 0 { 1.0 } else { -1.0 };
        let d = b.axes[k / 2].normalized().scale(s).dot(dir);
        if d > best.0 + 1e-9 {
            best = (d, k);
        }
    }
    best.1
}

/// What `object_quads` needs to know about one object.
pub(crate) struct Look<'a> {
    pub object: &'a ObjectMeta,
    pub style: Style,
    pub front: u8,
    pub id: u32,
    pub counter: Option<(&'a [Rect], &'a [Rect], f64)>,
    /// How far the drawn top lies below the box top (see [`Derived::top_cut`]).
    pub top_cut: f64,
}

/// A box with its top lowered by `cut` (along its most vertical axis).
fn cut_top(b: &Obox, cut: f64) -> Obox {
    if cut <= 0.0 {
        return *b;
    }
    let k = (0..3)
        .max_by(|&x, &y| b.axes[x].y.abs().total_cmp(&b.axes[y].y.abs()))
        .unwrap_or(1);
    let a = b.axes[k];
    let h = a.norm();
    if h < 1e-9 {
        return *b;
    }
    let up = if a.y >= 0.0 {
        a.scale(1.0 / h)
    } else {
        a.scale(-1.0 / h)
    };
    let cut = cut.min(2.0 * h - 1e-4);
    let mut out = *b;
    out.center = b.center.sub(up.scale(cut / 2.0));
    out.axes[k] = a.scale((h - cut / 2.0) / h);
    out
}

/// The part of a box between fractions of its axes: `lo[k]..hi[k]` in -1..1 along axis k.
fn sub_box(b: &Obox, lo: [f64; 3], hi: [f64; 3]) -> Obox {
    let mut c = b.center;
    let mut axes = b.axes;
    for k in 0..3 {
        c = c.add(b.axes[k].scale((lo[k] + hi[k]) / 2.0));
        axes[k] = b.axes[k].scale((hi[k] - lo[k]) / 2.0);
    }
    Obox { center: c, axes }
}

/// The polygons of one object in its current state.
pub(crate) fn object_quads(l: &Look<'_>, out: &mut Vec<Quad>) {
    let o = l.object;
    let color = type_color(&o.object_type);
    let b = cut_top(&Obox::of_object(o), l.top_cut);
    let up = V3::new(0.0, 1.0, 0.0);
    match l.style {
        Style::Skip => {}
        Style::Solid => box_quads(&b, color, l.id, false, |_| true, out),
        Style::TopOpen => {
            let top = face_towards(&b, up);
            box_quads(&b, color, l.id, true, |k| k != top, out);
        }
        Style::FrontOpen => {
            let front = face_towards(&b, side_vector(l.front));
            box_quads(&b, color, l.id, true, |k| k != front, out);
        }
        Style::Openable { open_face } => {
            if !o.is_open || open_face == OpenFace::None {
                box_quads(&b, color, l.id, false, |_| true, out);
            } else {
                let gone = match open_face {
                    OpenFace::Front => face_towards(&b, side_vector(l.front)),
                    _ => face_towards(&b, up),
                };
                box_quads(&b, color, l.id, true, |k| k != gone, out);
            }
        }
        Style::Plank { thickness } => {
            let (min, max) = b.min_max();
            let plank =
                Obox::from_min_max(min, V3::new(max.x, (min.y + thickness).min(max.y), max.z));
            box_quads(&plank, color, l.id, false, |_| true, out);
        }
        Style::Seat { seat_dy, back } => {
            // In the box's own frame (a chair's oriented box): the seat block, then the back
            // rest along the side facing `back`.
            let b = Obox::of_object(o);
            let kv = (0..3)
                .max_by(|&x, &y| b.axes[x].y.abs().total_cmp(&b.axes[y].y.abs()))
                .unwrap_or(1);
            let hv = b.axes[kv].norm().max(1e-9);
            let sv = if b.axes[kv].y >= 0.0 { 1.0 } else { -1.0 };
            let seat_f = (-1.0 + seat_dy / hv).clamp(-1.0, 1.0);
            let back_v = V3::new(back.0, 0.0, back.1);
            let kb = (0..3)
                .filter(|&k| k != kv)
                .max_by(|&x, &y| {
                    let ax = b.axes[x].normalized().dot(back_v).abs();
                    let ay = b.axes[y].normalized().dot(back_v).abs();
                    ax.total_cmp(&ay).then(y.cmp(&x))
                })
                .unwrap_or(0);
            let depth = 2.0 * b.axes[kb].norm();
            let sb = if b.axes[kb].dot(back_v) >= 0.0 {
                1.0
            } else {
                -1.0
            };
            let frac = 2.0 * (0.25 * depth).max(0.12).min(depth) / depth.max(1e-9);
            let (mut lo, mut hi) = ([-1.0; 3], [1.0; 3]);
            // vertical range in the axis' own sign
            let (v0, v1) = if sv > 0.0 {
                (-1.0, seat_f)
            } else {
                (-seat_f, 1.0)
            };
            lo[kv] = v0;
            hi[kv] = v1;
            box_quads(&sub_box(&b, lo, hi), color, l.id, false, |_| true, out);
            let (mut lo, mut hi) = ([-1.0; 3], [1.0; 3]);
            let (v0, v1) = if sv > 0.0 {
                (seat_f, 1.0)
            } else {
                (-1.0, -seat_f)
            };
            lo[kv] = v0;
            hi[kv] = v1;
            if sb > 0.0 {
                lo[kb] = 1.0 - frac;
            } else {
                hi[kb] = -1.0 + frac;
            }
            let dark = [color[0] * 0.85, color[1] * 0.85, color[2] * 0.85];
            box_quads(&sub_box(&b, lo, hi), dark, l.id, false, |_| true, out);
        }
        Style::Counter => {
            let (min, max) = b.min_max();
            match l.counter {
                Some((body, surface, slab_bottom)) => {
                    let slabs: Vec<Rect> = if surface.is_empty() {
                        vec![Rect::new(min.x, min.z, max.x, max.z)]
                    } else {
                        surface.to_vec()
                    };
                    for r in &slabs {
                        let s = Obox::from_min_max(
                            V3::new(r.x0, min.y, r.z0),
                            V3::new(r.x1, max.y, r.z1),
                        );
                        box_quads(&s, color, l.id, false, |_| true, out);
                    }
                    let body_c = [color[0] * 0.78, color[1] * 0.74, color[2] * 0.70];
                    for r in body {
                        let s = Obox::from_min_max(
                            V3::new(r.x0, 0.0, r.z0),
                            V3::new(r.x1, slab_bottom, r.z1),
                        );
                        // the body's top is under the slab: never seen
                        box_quads(&s, body_c, l.id, false, |k| k != 2, out);
                    }
                }
                None => box_quads(&b, color, l.id, false, |_| true, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stable_and_distinct_for_common_types() {
        assert_eq!(type_color("Apple"), type_color("Apple"));
        assert_ne!(type_color("Apple"), type_color("Fridge"));
        // unknown types still get a stable colour
        assert_eq!(type_color("Zzz"), type_color("Zzz"));
    }

    #[test]
    fn open_box_loses_exactly_one_face() {
        let b = Obox::from_min_max(V3::new(0.0, 0.0, 0.0), V3::new(1.0, 1.0, 1.0));
        let mut out = Vec::new();
        let top = face_towards(&b, V3::new(0.0, 1.0, 0.0));
        box_quads(&b, [1.0; 3], 1, true, |k| k != top, &mut out);
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|q| q.normal.y < 0.5));
        // every face's corners lie on its plane and the normal points outward
        for q in &out {
            let c = q.v.iter().fold(V3::default(), |a, p| a.add(*p)).scale(0.25);
            assert!(c.sub(V3::new(0.5, 0.5, 0.5)).dot(q.normal) > 0.49);
        }
    }
}
