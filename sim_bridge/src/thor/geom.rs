//! Small geometry helpers: 3-vectors, oriented boxes, 2-D rectangles.

use ember_agent::thor::{AxisAlignedBox, ObjectMeta, OrientedBox, Vec3};

/// A 3-vector in world coordinates (metres, y up).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct V3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl V3 {
    pub const fn new(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z }
    }
    pub fn add(self, o: V3) -> V3 {
        V3::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
    pub fn sub(self, o: V3) -> V3 {
        V3::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
    pub fn scale(self, s: f64) -> V3 {
        V3::new(self.x * s, self.y * s, self.z * s)
    }
    pub fn dot(self, o: V3) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }
    pub fn normalized(self) -> V3 {
        let n = self.norm();
        if n > 1e-12 {
            self.scale(1.0 / n)
        } else {
            V3::new(0.0, 1.0, 0.0)
        }
    }
    pub fn from_thor(v: &Vec3) -> V3 {
        V3::new(v.x, v.y, v.z)
    }
    pub fn to_thor(self) -> Vec3 {
        Vec3::new(self.x, self.y, self.z)
    }
    pub fn from_arr(a: &[f64; 3]) -> V3 {
        V3::new(a[0], a[1], a[2])
    }
}

/// An oriented box: centre and three half-axis vectors (mutually orthogonal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Obox {
    pub center: V3,
    /// Half-extent vectors.
    pub axes: [V3; 3],
}

impl Obox {
    /// An axis-aligned box from its minimum and maximum corners.
    pub fn from_min_max(min: V3, max: V3) -> Obox {
        let c = min.add(max).scale(0.5);
        let h = max.sub(min).scale(0.5);
        Obox {
            center: c,
            axes: [
                V3::new(h.x, 0.0, 0.0),
                V3::new(0.0, h.y, 0.0),
                V3::new(0.0, 0.0, h.z),
            ],
        }
    }

    /// The box of an AI2-THOR axis-aligned bounding box.
    pub fn from_aabb(b: &AxisAlignedBox) -> Obox {
        Obox::from_min_max(V3::from_thor(&b.min()), V3::from_thor(&b.max()))
    }

    /// The box of AI2-THOR's oriented bounding box corners (corners 0-3 one face, corner
    /// `i + 4` opposite corner `i`); `None` for a malformed list.
    pub fn from_obb(b: &OrientedBox) -> Option<Obox> {
        if b.corner_points.len() != 8 {
            return None;
        }
        let c: Vec<V3> = b.corner_points.iter().map(V3::from_arr).collect();
        let mut center = V3::default();
        for p in &c {
            center = center.add(*p);
        }
        center = center.scale(1.0 / 8.0);
        let a = c[4].sub(c[0]).scale(0.5);
        let bb = c[1].sub(c[0]).scale(0.5);
        let cc = c[3].sub(c[0]).scale(0.5);
        if a.norm() < 1e-6 || bb.norm() < 1e-6 || cc.norm() < 1e-6 {
            return None;
        }
        Some(Obox {
            center,
            axes: [a, bb, cc],
        })
    }

    /// The render/collision box of an object: its oriented box when it has one, else its
    /// axis-aligned box.
    pub fn of_object(o: &ObjectMeta) -> Obox {
        o.object_oriented_bounding_box
            .as_ref()
            .and_then(Obox::from_obb)
            .unwrap_or_else(|| Obox::from_aabb(&o.axis_aligned_bounding_box))
    }

    /// The world-axis-aligned (min, max) of the box.
    pub fn min_max(&self) -> (V3, V3) {
        let e = V3::new(
            self.axes.iter().map(|a| a.x.abs()).sum(),
            self.axes.iter().map(|a| a.y.abs()).sum(),
            self.axes.iter().map(|a| a.z.abs()).sum(),
        );
        (self.center.sub(e), self.center.add(e))
    }
}

/// A 2-D axis-aligned rectangle on the floor plane (x, z).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub z0: f64,
    pub x1: f64,
    pub z1: f64,
}

impl Rect {
    pub fn new(x0: f64, z0: f64, x1: f64, z1: f64) -> Rect {
        Rect {
            x0: x0.min(x1),
            z0: z0.min(z1),
            x1: x0.max(x1),
            z1: z0.max(z1),
        }
    }
    /// Distance from a point to the rectangle (0 inside).
    pub fn distance(&self, x: f64, z: f64) -> f64 {
        let dx = (self.x0 - x).max(0.0).max(x - self.x1);
        let dz = (self.z0 - z).max(0.0).max(z - self.z1);
        (dx * dx + dz * dz).sqrt()
    }
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.z0 < o.z1 && o.z0 < self.z1
    }
}

/// Updates an object's pose fields after a translation by `d` (position, both boxes).
pub fn translate_object(o: &mut ObjectMeta, d: V3) {
    o.position = V3::from_thor(&o.position).add(d).to_thor();
    let b = &o.axis_aligned_bounding_box;
    let min = V3::from_thor(&b.min()).add(d);
    let max = V3::from_thor(&b.max()).add(d);
    o.axis_aligned_bounding_box = AxisAlignedBox::from_min_max(min.to_thor(), max.to_thor());
    if let Some(obb) = o.object_oriented_bounding_box.as_mut() {
        for c in obb.corner_points.iter_mut() {
            c[0] += d.x;
            c[1] += d.y;
            c[2] += d.z;
        }
    }
}

/// Rotates an object about the vertical axis through `pivot` by `deg` degrees of AI2-THOR yaw
/// (clockwise seen from above: +z turns toward +x): its position, its oriented box, its
/// axis-aligned box (rebuilt from the oriented box when there is one) and `rotation.y`.
pub fn rotate_object_yaw(o: &mut ObjectMeta, pivot: V3, deg: f64) {
    let turn = deg.rem_euclid(360.0);
    if !(1e-9..=360.0 - 1e-9).contains(&turn) {
        return;
    }
    let (s, c) = deg.to_radians().sin_cos();
    // yaw: (x, z) -> (x cos + z sin, -x sin + z cos)
    let rot = |x: f64, z: f64| -> (f64, f64) {
        let (dx, dz) = (x - pivot.x, z - pivot.z);
        (pivot.x + dx * c + dz * s, pivot.z - dx * s + dz * c)
    };
    let (px, pz) = rot(o.position.x, o.position.z);
    o.position.x = px;
    o.position.z = pz;
    o.rotation.y = (o.rotation.y + deg).rem_euclid(360.0);
    let (mut min, mut max) = (
        V3::new(f64::INFINITY, f64::INFINITY, f64::INFINITY),
        V3::new(f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY),
    );
    let mut grow = |x: f64, y: f64, z: f64| {
        min = V3::new(min.x.min(x), min.y.min(y), min.z.min(z));
        max = V3::new(max.x.max(x), max.y.max(y), max.z.max(z));
    };
    if let Some(obb) = o.object_oriented_bounding_box.as_mut() {
        for p in obb.corner_points.iter_mut() {
            let (x, z) = rot(p[0], p[2]);
            p[0] = x;
            p[2] = z;
            grow(p[0], p[1], p[2]);
        }
    } else {
        let b = &o.axis_aligned_bounding_box;
        let (bmin, bmax) = (b.min(), b.max());
        for x in [bmin.x, bmax.x] {
            for z in [bmin.z, bmax.z] {
                let (rx, rz) = rot(x, z);
                grow(rx, bmin.y, rz);
                grow(rx, bmax.y, rz);
            }
        }
    }
    if min.x.is_finite() {
        o.axis_aligned_bounding_box = AxisAlignedBox::from_min_max(min.to_thor(), max.to_thor());
    }
}

/// An object's footprint on the floor plane: a rectangle with centre `c` and two orthogonal
/// half-extent vectors `u`, `v` (x, z), from its oriented box when it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Footprint {
    pub c: (f64, f64),
    pub u: (f64, f64),
    pub v: (f64, f64),
}

impl Footprint {
    /// The footprint of an object: its oriented box seen from above (the two axes that are
    /// most horizontal), else its axis-aligned box.
    pub fn of_object(o: &ObjectMeta) -> Footprint {
        if let Some(b) = o
            .object_oriented_bounding_box
            .as_ref()
            .and_then(Obox::from_obb)
        {
            let mut axes = b.axes;
            // the most vertical axis last
            axes.sort_by(|a, b| a.y.abs().total_cmp(&b.y.abs()));
            return Footprint {
                c: (b.center.x, b.center.z),
                u: (axes[0].x, axes[0].z),
                v: (axes[1].x, axes[1].z),
            };
        }
        let b = &o.axis_aligned_bounding_box;
        Footprint {
            c: (b.center.x, b.center.z),
            u: (b.size.x / 2.0, 0.0),
            v: (0.0, b.size.z / 2.0),
        }
    }

    /// The same footprint turned by a quarter turn about its centre (yaw +90 degrees).
    pub fn quarter_turn(&self) -> Footprint {
        let r = |a: (f64, f64)| (a.1, -a.0);
        Footprint {
            c: self.c,
            u: r(self.u),
            v: r(self.v),
        }
    }

    /// The footprint moved so that its centre is at (x, z).
    pub fn at(&self, x: f64, z: f64) -> Footprint {
        Footprint { c: (x, z), ..*self }
    }

    /// The four corners.
    pub fn corners(&self) -> [(f64, f64); 4] {
        let (c, u, v) = (self.c, self.u, self.v);
        [
            (c.0 - u.0 - v.0, c.1 - u.1 - v.1),
            (c.0 + u.0 - v.0, c.1 + u.1 - v.1),
            (c.0 + u.0 + v.0, c.1 + u.1 + v.1),
            (c.0 - u.0 + v.0, c.1 - u.1 + v.1),
        ]
    }

    /// Half-extents of the axis-aligned rectangle around it.
    pub fn half_extent(&self) -> (f64, f64) {
        (
            self.u.0.abs() + self.v.0.abs(),
            self.u.1.abs() + self.v.1.abs(),
        )
    }

    /// The axis-aligned rectangle around it.
    pub fn bounds(&self) -> Rect {
        let (hx, hz) = self.half_extent();
        Rect::new(self.c.0 - hx, self.c.1 - hz, self.c.0 + hx, self.c.1 + hz)
    }

    /// Whether two footprints overlap by more than `margin` (separating axes).
    pub fn overlaps(&self, o: &Footprint, margin: f64) -> bool {
        let axes = [self.u, self.v, o.u, o.v];
        for a in axes {
            let n = (a.0 * a.0 + a.1 * a.1).sqrt();
            if n < 1e-12 {
                continue;
            }
            let a = (a.0 / n, a.1 / n);
            let proj = |f: &Footprint| {
                let c = f.c.0 * a.0 + f.c.1 * a.1;
                let r = (f.u.0 * a.0 + f.u.1 * a.1).abs() + (f.v.0 * a.0 + f.v.1 * a.1).abs();
                (c - r, c + r)
            };
            let (a0, a1) = proj(self);
            let (b0, b1) = proj(o);
            if a1 <= b0 + margin || b1 <= a0 + margin {
                return false;
            }
        }
        true
    }
}

/// Distance from an axis-aligned box to the vertical segment at (x, z) from height `y0` up
/// to `y1` (the agent's body axis, foot to camera).
pub fn distance_segment_to_aabb(x: f64, z: f64, y0: f64, y1: f64, b: &AxisAlignedBox) -> f64 {
    let min = b.min();
    let max = b.max();
    let dx = (min.x - x).max(0.0).max(x - max.x);
    let dz = (min.z - z).max(0.0).max(z - max.z);
    let (lo, hi) = (y0.min(y1), y0.max(y1));
    let dy = (min.y - hi).max(0.0).max(lo - max.y);
    (dx * dx + dy * dy + dz * dz).sqrt()
}

/// The distance from a point to an axis-aligned box.
#[cfg(test)]
pub fn distance_to_aabb(p: V3, b: &AxisAlignedBox) -> f64 {
    let min = b.min();
    let max = b.max();
    let dx = (min.x - p.x).max(0.0).max(p.x - max.x);
    let dy = (min.y - p.y).max(0.0).max(p.y - max.y);
    let dz = (min.z - p.z).max(0.0).max(p.z - max.z);
    (dx * dx + dy * dy + dz * dz).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obb_corners_round_trip() {
        // AI2-THOR's corner order: 0-3 one face (a loop), i+4 opposite i.
        let obb = OrientedBox {
            corner_points: vec![
                [0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0],
                [0.0, 1.0, -2.0],
                [0.0, 0.0, -2.0],
                [3.0, 0.0, 0.0],
                [3.0, 1.0, 0.0],
                [3.0, 1.0, -2.0],
                [3.0, 0.0, -2.0],
            ],
        };
        let b = Obox::from_obb(&obb).unwrap();
        let (min, max) = b.min_max();
        assert!((min.sub(V3::new(0.0, 0.0, -2.0))).norm() < 1e-12);
        assert!((max.sub(V3::new(3.0, 1.0, 0.0))).norm() < 1e-12);
        assert!((b.center.sub(V3::new(1.5, 0.5, -1.0))).norm() < 1e-12);
    }

    #[test]
    fn footprints_overlap_by_separating_axes() {
        let a = Footprint {
            c: (0.0, 0.0),
            u: (1.0, 0.0),
            v: (0.0, 0.5),
        };
        // side by side, touching: no overlap
        assert!(!a.overlaps(&a.at(2.0, 0.0), 0.0));
        assert!(a.overlaps(&a.at(1.9, 0.0), 0.0));
        // a quarter turn swaps the extents
        let q = a.quarter_turn();
        assert!((q.half_extent().0 - 0.5).abs() < 1e-12 && (q.half_extent().1 - 1.0).abs() < 1e-12);
        // a diamond near a corner of an axis-aligned square: its bounds overlap, it does not
        let s = 0.5f64.sqrt() * 0.5;
        let d = Footprint {
            c: (1.5, 1.0),
            u: (s, s),
            v: (-s, s),
        };
        assert!(d.bounds().overlaps(&a.bounds()));
        assert!(!d.overlaps(&a, 0.0));
    }

    #[test]
    fn segment_distance_ignores_height_along_the_body() {
        let b = AxisAlignedBox::from_min_max(Vec3::new(1.0, 0.3, -0.5), Vec3::new(2.0, 0.4, 0.5));
        // level with the box: the horizontal distance
        assert!((distance_segment_to_aabb(0.0, 0.0, 0.2, 1.6, &b) - 1.0).abs() < 1e-12);
        // a body above the box: the vertical gap counts too
        let d = distance_segment_to_aabb(0.0, 0.0, 1.0, 1.6, &b);
        assert!((d - (1.0f64 + 0.36).sqrt()).abs() < 1e-12);
        // the camera point alone is farther than the body
        assert!(distance_to_aabb(V3::new(0.0, 1.6, 0.0), &b) > d);
    }

    #[test]
    fn rect_distance() {
        let r = Rect::new(0.0, 0.0, 1.0, 1.0);
        assert_eq!(r.distance(0.5, 0.5), 0.0);
        assert!((r.distance(2.0, 0.5) - 1.0).abs() < 1e-12);
        assert!((r.distance(2.0, 2.0) - 2f64.sqrt()).abs() < 1e-12);
    }
}
