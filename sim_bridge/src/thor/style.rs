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

/// Render styles and receptacle surface heights of a scene's objects, from their types and
/// from what their boxes hold in the initial state.
pub(crate) fn derive_styles(
    objects: &[ObjectMeta],
    counter_body: &[Option<(Vec<Rect>, f64)>],
) -> (Vec<Style>, Vec<Option<f64>>) {
    let mut styles = Vec::with_capacity(objects.len());
    let mut surfaces = Vec::with_capacity(objects.len());
    for (i, p) in objects.iter().enumerate() {
        let t = p.object_type.as_str();
        let vol = p.axis_aligned_bounding_box.volume();
        let contained: Vec<&ObjectMeta> = objects
            .iter()
            .enumerate()
            .filter(|&(k, c)| {
                k != i
                    && c.axis_aligned_bounding_box.volume() < vol
                    && centre_inside(c, p)
                    && bottom(c) < top(p) - 0.03
            })
            .map(|(_, c)| c)
            .collect();
        let resting: Vec<&ObjectMeta> = objects
            .iter()
            .filter(|c| {
                c.parent_receptacles
                    .as_ref()
                    .is_some_and(|ps| ps.contains(&p.object_id))
            })
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
        let height = top(p) - bottom(p);
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
                Style::Seat { seat_dy: dy }
            } else if contained.is_empty() {
                Style::Solid
            } else {
                Style::FrontOpen
            }
        } else if !contained.is_empty() || sunk {
            Style::FrontOpen
        } else {
            Style::Solid
        };
        styles.push(style);
        let surface = if p.receptacle {
            if let Some((_, slab_bottom)) = counter_body.get(i).and_then(|c| c.as_ref()) {
                let _ = slab_bottom;
                Some(height)
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
            } else {
                Some(height)
            }
        } else {
            None
        };
        surfaces.push(surface);
    }
    (styles, surfaces)
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
    pub back: u8,
    pub id: u32,
    pub counter: Option<(&'a [Rect], &'a [Rect], f64)>,
}

/// The polygons of one object in its current state.
pub(crate) fn object_quads(l: &Look<'_>, out: &mut Vec<Quad>) {
    let o = l.object;
    let color = type_color(&o.object_type);
    let b = Obox::of_object(o);
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
        Style::Seat { seat_dy } => {
            let (min, max) = b.min_max();
            let seat_y = (min.y + seat_dy).min(max.y);
            let lower = Obox::from_min_max(min, V3::new(max.x, seat_y, max.z));
            box_quads(&lower, color, l.id, false, |_| true, out);
            // the back rest along the back side
            let (mut bmin, mut bmax) = (V3::new(min.x, seat_y, min.z), max);
            let dx = (0.25 * (max.x - min.x)).max(0.12).min(max.x - min.x);
            let dz = (0.25 * (max.z - min.z)).max(0.12).min(max.z - min.z);
            match l.back {
                0 => bmin.x = max.x - dx,
                1 => bmax.x = min.x + dx,
                2 => bmin.z = max.z - dz,
                _ => bmax.z = min.z + dz,
            }
            let dark = [color[0] * 0.85, color[1] * 0.85, color[2] * 0.85];
            box_quads(
                &Obox::from_min_max(bmin, bmax),
                dark,
                l.id,
                false,
                |_| true,
                out,
            );
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
