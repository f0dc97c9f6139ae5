//! The CPU rasteriser: flat-shaded convex polygons (box faces, walls, floor) seen from a
//! pinhole camera with AI2-THOR's conventions.
//!
//! Pipeline per frame: each quad is back-face culled (unless two-sided), moved to camera space,
//! clipped against the near plane and a guard-banded frustum (Sutherland-Hodgman), projected,
//! and filled span by span: every row's span comes straight from the polygon's edges, and
//! `1/z` is an affine function of the pixel coordinates for a planar polygon, so the inner loop
//! is a multiply-add, a compare and two stores per pixel (1/z and a polygon tag), eight pixels
//! at a time with vector compares and masks. `resolve` then walks each row's runs of one
//! polygon into instance ids, pixel counts and colours. The depth test keeps the largest `1/z`
//! (nearest); ties keep the first-drawn polygon, so output depends only on the quad order, which
//! the caller keeps deterministic. Depth is metres along the optical axis (AI2-THOR's depth).

use super::geom::V3;

/// Near clipping distance in metres (AI2-THOR's `cameraNearPlane`).
pub const NEAR: f64 = 0.1;
/// Far clipping distance in metres (AI2-THOR's `cameraFarPlane`).
pub const FAR: f64 = 20.0;

/// One flat polygon to draw: a planar quad with a colour and an instance index.
#[derive(Clone, Copy, Debug)]
pub struct Quad {
    /// Corners in order around the face.
    pub v: [V3; 4],
    /// Outward unit normal.
    pub normal: V3,
    /// Base colour (linear 0..1) before shading.
    pub color: [f32; 3],
    /// Instance index (0 = background / structure).
    pub id: u32,
    /// Drawn from both sides (faces of open shells, whose inside can be seen).
    pub two_sided: bool,
    /// Pushed back by a tiny depth bias (room surfaces), so that objects' faces lying on the
    /// floor or against a wall win the depth test.
    pub recessed: bool,
}

/// A camera: position and AI2-THOR yaw/horizon, plus the image it makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// Camera position in the world.
    pub position: V3,
    /// Yaw in degrees (0 faces +z, 90 faces +x).
    pub yaw_deg: f64,
    /// Horizon (pitch) in degrees, positive looks down.
    pub horizon_deg: f64,
    /// Vertical field of view in degrees (Unity's `fieldOfView`).
    pub fov_y_deg: f64,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
}

impl Camera {
    /// Right, up and forward unit vectors in the world.
    pub fn axes(&self) -> (V3, V3, V3) {
        let yaw = self.yaw_deg.to_radians();
        let p = self.horizon_deg.to_radians();
        let right = V3::new(yaw.cos(), 0.0, -yaw.sin());
        let up = V3::new(yaw.sin() * p.sin(), p.cos(), yaw.cos() * p.sin());
        let fwd = V3::new(yaw.sin() * p.cos(), -p.sin(), yaw.cos() * p.cos());
        (right, up, fwd)
    }

    /// Focal length in pixels (square pixels).
    pub fn focal(&self) -> f64 {
        (self.height as f64 / 2.0) / (self.fov_y_deg.to_radians() / 2.0).tan()
    }
}

/// A pixel rectangle `[x0, x1) x [y0, y1)` that limits drawing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scissor {
    /// First column.
    pub x0: u32,
    /// First row.
    pub y0: u32,
    /// One past the last column.
    pub x1: u32,
    /// One past the last row.
    pub y1: u32,
}

/// The frame buffers, reused from frame to frame (no allocation once sized).
#[derive(Clone, Debug, Default)]
pub struct Raster {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// RGB bytes, rows top to bottom (only written when colour is requested).
    pub rgb: Vec<u8>,
    /// 1/z per pixel (0 = nothing drawn).
    pub inv_z: Vec<f32>,
    /// Instance index per pixel (after `resolve`).
    pub ids: Vec<u32>,
    /// Per pixel: the index into `palette` of the polygon drawn there (0 = nothing drawn).
    tags: Vec<u32>,
    /// Per drawn polygon: its shaded colour and instance index; entry 0 is the background.
    palette: Vec<([u8; 3], u32)>,
    /// Per drawn polygon: its pixel count in the last `resolve`.
    tag_counts: Vec<u32>,
    /// Per drawn polygon: its colour and its outline colour (scratch of `resolve`).
    shades: Vec<[[u8; 3]; 2]>,
    /// The ends of the runs of one polygon, row after row (scratch of `resolve`).
    runs: Vec<u32>,
}

/// The direction light comes from (normalised in `shade`).
const LIGHT: V3 = V3::new(0.35, 0.9, 0.45);
/// The colour where nothing is drawn.
const BACKGROUND: [u8; 3] = [24, 24, 28];

fn shade(color: [f32; 3], n: V3, inside: bool) -> [u8; 3] {
    let l = LIGHT.normalized();
    let d = n.dot(l).max(0.0) as f32;
    // Faces pointing sideways differ by azimuth too, so neighbouring walls and box sides read.
    let side = (0.06 * n.x - 0.03 * n.z) as f32;
    // Downward faces (ceilings, undersides) get some light bounced from the floor.
    let bounce = (0.18 * (-n.y).max(0.0)) as f32;
    let mut k = 0.58 + 0.42 * d + side + bounce;
    if inside {
        k *= 0.72;
    }
    let f = |c: f32| ((c * k).clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    [f(color[0]), f(color[1]), f(color[2])]
}

/// Whether all of `block` equals `v`, without early exits (so it compiles to vector ops).
fn all_equal(block: &[u32; 8], v: u32) -> bool {
    block.iter().fold(0, |acc, &x| acc | (x ^ v)) == 0
}

/// The end (exclusive) of the run of equal values in `tags` that starts at `x`.
fn run_end(tags: &[u32], x: usize) -> usize {
    let t = tags[x];
    let mut e = x + 1;
    // Eight at a time (a vector compare: no early exit inside a block), then one by one.
    while let Some(block) = tags.get(e..e + 8)
        && let Ok(block) = <&[u32; 8]>::try_from(block)
        && all_equal(block, t)
    {
        e += 8;
    }
    while e < tags.len() && tags[e] == t {
        e += 1;
    }
    e
}

impl Raster {
    /// Sizes the buffers and clears them for a new frame. The colour buffer needs no
    /// clearing (`resolve` writes all of it), so `_color` changes nothing.
    pub fn clear(&mut self, width: u32, height: u32, _color: bool) {
        let n = width as usize * height as usize;
        self.width = width;
        self.height = height;
        self.inv_z.clear();
        self.inv_z.resize(n, 0.0);
        self.tags.clear();
        self.tags.resize(n, 0);
        self.ids.resize(n, 0);
        self.palette.clear();
        self.palette.push((BACKGROUND, 0));
    }

    /// Clears the strided lattice of a scissor rectangle (buffers already sized): exactly
    /// the pixels `draw_strided` with the same arguments writes.
    pub fn clear_scissor(&mut self, s: Scissor, stride: u32) {
        let w = self.width as usize;
        let st = stride.max(1) as usize;
        for y in (s.y0 as usize..s.y1.min(self.height) as usize).step_by(st) {
            let row = y * w;
            for x in (s.x0 as usize..s.x1.min(self.width) as usize).step_by(st) {
                self.inv_z[row + x] = 0.0;
                self.tags[row + x] = 0;
            }
        }
        self.palette.clear();
        self.palette.push((BACKGROUND, 0));
    }

    /// Turns the drawn polygons into instance ids (and colours, with instance outlines,
    /// when `color`), and counts the pixels of each polygon for [`Raster::count_ids`].
    /// Returns nothing; read `ids` and `rgb`.
    pub fn resolve(&mut self, color: bool) {
        let w = self.width as usize;
        let h = self.height as usize;
        let n = w * h;
        self.tag_counts.clear();
        self.tag_counts.resize(self.palette.len(), 0);
        if n == 0 {
            self.rgb.clear();
            return;
        }
        // Ids run by run: a polygon covers long runs of a row, so each run is one scan, one
        // fill and one count.
        // The runs' ends are kept for the colour pass (each row's last run ends at `w`).
        let pal = &self.palette;
        let counts = &mut self.tag_counts;
        let runs = &mut self.runs;
        runs.clear();
        for (ids, tags) in self.ids[..n]
            .chunks_exact_mut(w)
            .zip(self.tags[..n].chunks_exact(w))
        {
            let mut x = 0;
            while x < w {
                let t = tags[x];
                let e = run_end(tags, x);
                ids[x..e].fill(pal[t as usize].1);
                counts[t as usize] += (e - x) as u32;
                runs.push(e as u32);
                x = e;
            }
        }
        if !color {
            return;
        }
        // Per polygon its colour and its darkened outline colour: instance boundaries (a
        // pixel whose right or lower neighbour has another id) are darkened so neighbouring
        // objects of one colour read as separate things.
        self.shades.clear();
        self.shades.extend(self.palette.iter().map(|&(c, _)| {
            let dark = c.map(|v| (v as u16 * 3 / 5) as u8);
            [c, dark]
        }));
        let shades = &self.shades;
        // The colour buffer is rebuilt run by run (it may have been handed out with
        // `take_rgb`): every byte is appended once, from a pattern of the run's colour, with
        // no clearing pass and no row copy; outline pixels are then patched in place.
        let rgb = &mut self.rgb;
        rgb.clear();
        rgb.reserve_exact(n * 3);
        let mut runs = self.runs.iter().copied();
        for y in 0..h {
            let ids = &self.ids[y * w..(y + 1) * w];
            // The last row has no lower neighbour: compare it with itself.
            let below = if y + 1 < h {
                &self.ids[(y + 1) * w..(y + 2) * w]
            } else {
                ids
            };
            let tags = &self.tags[y * w..(y + 1) * w];
            let row = rgb.len();
            let mut x = 0;
            while x < w {
                // A run of one polygon: one id, one colour; only pixels above another id,
                // and the run's last pixel when the next run has another id, are outlines.
                let t = tags[x];
                let e = (runs.next().unwrap_or(w as u32) as usize).clamp(x + 1, w);
                let [c, dark] = shades[t as usize];
                let id = ids[x];
                let mut pattern = [0u8; 48];
                for p in pattern.chunks_exact_mut(3) {
                    p.copy_from_slice(&c);
                }
                let bytes = (e - x) * 3;
                for _ in 0..bytes / 48 {
                    rgb.extend_from_slice(&pattern);
                }
                rgb.extend_from_slice(&pattern[..bytes % 48]);
                let out = &mut rgb[row..];
                // Eight at a time: a block that all lies above the same id needs nothing.
                let mut k = x;
                while k < e {
                    let end = (k + 8).min(e);
                    let uniform =
                        <&[u32; 8]>::try_from(&below[k..end]).is_ok_and(|b| all_equal(b, id));
                    if !uniform {
                        for j in k..end {
                            if below[j] != id {
                                out[j * 3..j * 3 + 3].copy_from_slice(&dark);
                            }
                        }
                    }
                    k = end;
                }
                if e < w && ids[e] != id {
                    out[(e - 1) * 3..e * 3].copy_from_slice(&dark);
                }
                x = e;
            }
        }
    }

    /// Hands out the RGB buffer of the last `resolve` (the next `resolve` builds a new one),
    /// so a frame can leave the raster without a copy.
    pub fn take_rgb(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rgb)
    }

    /// Pixel counts per instance index (`counts[id]`, grown as needed) in the frame of the
    /// last `resolve`.
    pub fn count_ids(&self, counts: &mut Vec<u32>) {
        counts.iter_mut().for_each(|c| *c = 0);
        for (&(_, id), &k) in self.palette.iter().zip(&self.tag_counts) {
            if k == 0 {
                continue;
            }
            let id = id as usize;
            if id >= counts.len() {
                counts.resize(id + 1, 0);
            }
            counts[id] += k;
        }
    }

    /// Draws the quads. `color` writes RGB too; `scissor` limits the pixels touched.
    pub fn draw(&mut self, cam: &Camera, quads: &[Quad], color: bool, scissor: Option<Scissor>) {
        self.draw_inner(cam, quads, color, scissor, 1);
    }

    /// Draws depth and ids only, inside `scissor`, at every `stride`-th row and column
    /// (counted from the scissor's corner). The pixels it writes get exactly the values a
    /// full `draw` gives them, so a probe never sees what the full frame would not.
    pub fn draw_strided(&mut self, cam: &Camera, quads: &[Quad], scissor: Scissor, stride: u32) {
        self.draw_inner(cam, quads, false, Some(scissor), stride.max(1));
    }

    /// Whether instance `id` covers any pixel of the strided lattice inside `scissor`.
    pub fn any_in(&self, s: Scissor, stride: u32, id: u32) -> bool {
        let stride = stride.max(1) as usize;
        let w = self.width as usize;
        (s.y0 as usize..s.y1.min(self.height) as usize)
            .step_by(stride)
            .any(|y| {
                (s.x0 as usize..s.x1.min(self.width) as usize)
                    .step_by(stride)
                    .any(|x| {
                        let t = self.tags[y * w + x];
                        t != 0 && self.palette[t as usize].1 == id
                    })
            })
    }

    fn draw_inner(
        &mut self,
        cam: &Camera,
        quads: &[Quad],
        color: bool,
        scissor: Option<Scissor>,
        stride: u32,
    ) {
        let full = Scissor {
            x0: 0,
            y0: 0,
            x1: self.width,
            y1: self.height,
        };
        let s = scissor.unwrap_or(full);
        let s = Scissor {
            x0: s.x0.min(self.width),
            y0: s.y0.min(self.height),
            x1: s.x1.min(self.width),
            y1: s.y1.min(self.height),
        };
        if s.x0 >= s.x1 || s.y0 >= s.y1 {
            return;
        }
        let (r, u, f) = cam.axes();
        let focal = cam.focal();
        let cx = cam.width as f64 / 2.0;
        let cy = cam.height as f64 / 2.0;
        // Guard band: clip to a frustum 1.5x wider than the image.
        let tx = 1.5 * cx / focal;
        let ty = 1.5 * cy / focal;
        let mut poly: Vec<V3> = Vec::with_capacity(12);
        let mut tmp: Vec<V3> = Vec::with_capacity(12);
        let mut screen: Vec<(f64, f64)> = Vec::with_capacity(12);
        for q in quads {
            let to_eye = cam.position.sub(q.v[0]);
            let facing = q.normal.dot(to_eye);
            if !q.two_sided && facing <= 0.0 {
                continue;
            }
            poly.clear();
            for p in &q.v {
                let d = p.sub(cam.position);
                poly.push(V3::new(d.dot(r), d.dot(u), d.dot(f)));
            }
            // Trivial rejects.
            if poly.iter().all(|p| p.z < NEAR)
                || poly.iter().all(|p| p.z > FAR)
                || poly.iter().all(|p| p.x > tx * p.z)
                || poly.iter().all(|p| p.x < -tx * p.z)
                || poly.iter().all(|p| p.y > ty * p.z)
                || poly.iter().all(|p| p.y < -ty * p.z)
            {
                continue;
            }
            // Entirely in front: reject polygons whose screen box misses the scissor.
            if poly.iter().all(|p| p.z >= NEAR) {
                let (mut x0, mut x1, mut y0, mut y1) = (
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                );
                for p in &poly {
                    let sx = cx + focal * p.x / p.z;
                    let sy = cy - focal * p.y / p.z;
                    x0 = x0.min(sx);
                    x1 = x1.max(sx);
                    y0 = y0.min(sy);
                    y1 = y1.max(sy);
                }
                if x1 < s.x0 as f64 - 1.0
                    || x0 > s.x1 as f64 + 1.0
                    || y1 < s.y0 as f64 - 1.0
                    || y0 > s.y1 as f64 + 1.0
                {
                    continue;
                }
            }
            // Clip: near, left, right, bottom, top (each keeps dist >= 0).
            let planes: [(f64, f64, f64, f64); 5] = [
                (0.0, 0.0, 1.0, -NEAR),
                (1.0, 0.0, tx, 0.0),
                (-1.0, 0.0, tx, 0.0),
                (0.0, 1.0, ty, 0.0),
                (0.0, -1.0, ty, 0.0),
            ];
            for (a, b, c, d) in planes {
                tmp.clear();
                let n = poly.len();
                for i in 0..n {
                    let p = poly[i];
                    let q2 = poly[(i + 1) % n];
                    let dp = a * p.x + b * p.y + c * p.z + d;
                    let dq = a * q2.x + b * q2.y + c * q2.z + d;
                    if dp >= 0.0 {
                        tmp.push(p);
                    }
                    if (dp >= 0.0) != (dq >= 0.0) {
                        let t = dp / (dp - dq);
                        tmp.push(p.add(q2.sub(p).scale(t)));
                    }
                }
                std::mem::swap(&mut poly, &mut tmp);
                if poly.len() < 3 {
                    break;
                }
            }
            if poly.len() < 3 {
                continue;
            }
            // Plane in camera space: n_c . P = dist.
            let nc = V3::new(q.normal.dot(r), q.normal.dot(u), q.normal.dot(f));
            let dist = nc.dot(poly[0]);
            if dist.abs() < 1e-9 {
                continue; // seen exactly edge-on
            }
            // 1/z = (nx (sx - cx)/focal - ny (sy - cy)/focal + nz) / dist
            let ia = nc.x / (focal * dist);
            let ib = -nc.y / (focal * dist);
            let mut ic = (nc.z - nc.x * cx / focal + nc.y * cy / focal) / dist;
            let (mut ia, mut ib) = (ia, ib);
            if q.recessed {
                const BIAS: f64 = 1.0 - 2e-5;
                ia *= BIAS;
                ib *= BIAS;
                ic *= BIAS;
            }
            screen.clear();
            for p in &poly {
                screen.push((cx + focal * p.x / p.z, cy - focal * p.y / p.z));
            }
            let rgb = if color {
                let n = if facing >= 0.0 {
                    q.normal
                } else {
                    q.normal.scale(-1.0)
                };
                shade(q.color, n, facing < 0.0)
            } else {
                [0, 0, 0]
            };
            let tag = self.palette.len() as u32;
            self.palette.push((rgb, q.id));
            self.fill_polygon(&screen, (ia, ib, ic), tag, s, stride);
        }
    }

    fn fill_polygon(
        &mut self,
        pts: &[(f64, f64)],
        inv: (f64, f64, f64),
        tag: u32,
        s: Scissor,
        stride: u32,
    ) {
        let n = pts.len();
        let mut area = 0.0;
        let mut ymin = f64::INFINITY;
        let mut ymax = f64::NEG_INFINITY;
        for i in 0..n {
            let (x0, y0) = pts[i];
            let (x1, y1) = pts[(i + 1) % n];
            area += x0 * y1 - x1 * y0;
            ymin = ymin.min(y0);
            ymax = ymax.max(y0);
        }
        if area.abs() < 1e-12 {
            return;
        }
        let sign = if area > 0.0 { 1.0 } else { -1.0 };
        // Rows whose centre (y + 0.5) lies in [ymin, ymax].
        let mut row0 = ((ymin - 0.5).ceil().max(s.y0 as f64)) as i64;
        let row1 = ((ymax - 0.5).floor().min(s.y1 as f64 - 1.0)) as i64;
        let st = stride.max(1) as i64;
        if st > 1 {
            let r = (row0 - s.y0 as i64).rem_euclid(st);
            if r != 0 {
                row0 += st - r;
            }
        }
        if row0 > row1 {
            return;
        }
        let w = self.width as usize;
        let (ia, ib, ic) = inv;
        // Per edge, the column bound as a linear function of the row centre:
        // inside when sign * ((x1-x0)(py-y0) - (y1-y0)(px-x0)) >= 0, i.e. px on one side of
        // the edge's x at py; pixel centres are at col + 0.5.
        // (kind: 0 lower bound, 1 upper bound, 2 horizontal; c; slope)
        let mut edges = [(0u8, 0.0f64, 0.0f64); 16];
        let ne = n.min(16);
        for (i, e) in edges.iter_mut().enumerate().take(ne) {
            let (x0, y0) = pts[i];
            let (x1, y1) = pts[(i + 1) % n];
            let dy = y1 - y0;
            let a = -sign * dy;
            if a.abs() < 1e-12 {
                // horizontal: inside when sign * (x1 - x0) * (py - y0) >= 0
                *e = (2, y0, sign * (x1 - x0));
            } else {
                let slope = (x1 - x0) / dy;
                *e = (if a > 0.0 { 0 } else { 1 }, x0 - 0.5 - y0 * slope, slope);
            }
        }
        for row in (row0..=row1).step_by(st as usize) {
            let py = row as f64 + 0.5;
            let mut lo = s.x0 as f64;
            let mut hi = s.x1 as f64 - 1.0;
            let mut empty = false;
            for &(kind, c, k) in &edges[..ne] {
                match kind {
                    0 => lo = lo.max((c + k * py).ceil()),
                    1 => hi = hi.min((c + k * py).floor()),
                    _ => {
                        if k * (py - c) < 0.0 {
                            empty = true;
                        }
                    }
                }
            }
            if empty || lo > hi {
                continue;
            }
            let mut c0 = lo as usize;
            let c1 = hi as usize;
            if st > 1 {
                let r = (c0 as i64 - s.x0 as i64).rem_euclid(st) as usize;
                if r != 0 {
                    c0 += st as usize - r;
                }
                if c0 > c1 {
                    continue;
                }
            }
            let base = row as usize * w;
            let zrow = &mut self.inv_z[base + c0..=base + c1];
            let trow = &mut self.tags[base + c0..=base + c1];
            let stu = st as usize;
            // 1/z is evaluated per pixel from the exact pixel centre (not accumulated), so a
            // strided probe computes bit-identical values to the full frame.
            // f32 from here: the same expression in both paths, branch-free so it vectorises.
            let z0 = (ib * py + ic) as f32;
            let iaf = ia as f32;
            if stu == 1 {
                // Pixel centres are small integers + 0.5: exact in f32, so this equals the
                // strided expression below bit for bit.
                let x0 = c0 as f32 + 0.5;
                let len = zrow.len().min(trow.len());
                let (zrow, trow) = (&mut zrow[..len], &mut trow[..len]);
                // Blocks of LANES pixels: loaded, selected lane-wise with bit masks and
                // stored whole, which compiles to vector compares and masks (a plain loop
                // compiles to a branch and a conditional store per pixel). Pixel centres
                // stay exact in f32 (small integers + 0.5), as above.
                const LANES: usize = 8;
                let mut xb = x0;
                let mut zc = zrow.chunks_exact_mut(LANES);
                let mut tc = trow.chunks_exact_mut(LANES);
                for (zb, tb) in (&mut zc).zip(&mut tc) {
                    let (Ok(zb), Ok(tb)) = (
                        <&mut [f32; LANES]>::try_from(zb),
                        <&mut [u32; LANES]>::try_from(tb),
                    ) else {
                        continue;
                    };
                    let (zo, to) = (*zb, *tb);
                    let mut zn = [0f32; LANES];
                    let mut tn = [0u32; LANES];
                    for j in 0..LANES {
                        let zf = iaf * (xb + j as f32) + z0;
                        // All ones where the polygon is nearer.
                        let m = 0u32.wrapping_sub((zf > zo[j]) as u32);
                        zn[j] = f32::from_bits((zf.to_bits() & m) | (zo[j].to_bits() & !m));
                        tn[j] = (tag & m) | (to[j] & !m);
                    }
                    *zb = zn;
                    *tb = tn;
                    xb += LANES as f32;
                }
                let (zr, tr) = (zc.into_remainder(), tc.into_remainder());
                for (j, (z, t)) in zr.iter_mut().zip(tr.iter_mut()).enumerate() {
                    let zf = iaf * (xb + j as f32) + z0;
                    if zf > *z {
                        *z = zf;
                        *t = tag;
                    }
                }
            } else {
                let mut k = 0;
                while k < zrow.len() {
                    let zf = iaf * ((c0 as f32 + 0.5) + k as f32) + z0;
                    if zf > zrow[k] {
                        zrow[k] = zf;
                        trow[k] = tag;
                    }
                    k += stu;
                }
            }
        }
    }

    /// Depth in metres along the optical axis (0 where nothing was drawn).
    pub fn depth(&self) -> Vec<f32> {
        self.inv_z
            .iter()
            .map(|&v| if v > 0.0 { 1.0 / v } else { 0.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall_quad(z: f64, id: u32) -> Quad {
        // A big quad at world z facing -z (towards a camera at the origin looking at +z).
        Quad {
            v: [
                V3::new(-5.0, -5.0, z),
                V3::new(-5.0, 5.0, z),
                V3::new(5.0, 5.0, z),
                V3::new(5.0, -5.0, z),
            ],
            normal: V3::new(0.0, 0.0, -1.0),
            color: [0.5, 0.5, 0.5],
            id,
            two_sided: false,
            recessed: false,
        }
    }

    fn cam() -> Camera {
        Camera {
            position: V3::new(0.0, 0.0, 0.0),
            yaw_deg: 0.0,
            horizon_deg: 0.0,
            fov_y_deg: 90.0,
            width: 64,
            height: 48,
        }
    }

    #[test]
    fn depth_is_along_the_optical_axis() {
        let mut r = Raster::default();
        let c = cam();
        r.clear(c.width, c.height, true);
        r.draw(&c, &[wall_quad(2.0, 1)], true, None);
        r.resolve(true);
        let d = r.depth();
        // A fronto-parallel plane has the same depth everywhere, corners included.
        for v in [d[0], d[d.len() - 1], d[24 * 64 + 32]] {
            assert!((v - 2.0).abs() < 1e-4, "{v}");
        }
        assert!(r.ids.iter().all(|&i| i == 1));
    }

    #[test]
    fn nearer_polygon_wins_regardless_of_order() {
        let c = cam();
        let mut a = Raster::default();
        a.clear(c.width, c.height, true);
        a.draw(&c, &[wall_quad(3.0, 1), wall_quad(2.0, 2)], true, None);
        a.resolve(true);
        let mut b = Raster::default();
        b.clear(c.width, c.height, true);
        b.draw(&c, &[wall_quad(2.0, 2), wall_quad(3.0, 1)], true, None);
        b.resolve(true);
        assert!(a.ids.iter().all(|&i| i == 2));
        assert_eq!(a.ids, b.ids);
        assert_eq!(a.rgb, b.rgb);
    }

    #[test]
    fn back_faces_are_culled_unless_two_sided() {
        let c = cam();
        let mut q = wall_quad(2.0, 1);
        q.normal = V3::new(0.0, 0.0, 1.0);
        let mut r = Raster::default();
        r.clear(c.width, c.height, false);
        r.draw(&c, &[q], false, None);
        r.resolve(false);
        assert!(r.ids.iter().all(|&i| i == 0));
        q.two_sided = true;
        r.draw(&c, &[q], false, None);
        r.resolve(false);
        assert!(r.ids.iter().all(|&i| i == 1));
    }

    #[test]
    fn polygons_behind_the_camera_are_clipped() {
        let c = cam();
        let mut r = Raster::default();
        r.clear(c.width, c.height, false);
        r.draw(&c, &[wall_quad(-2.0, 1)], false, None);
        r.resolve(false);
        assert!(r.ids.iter().all(|&i| i == 0));
    }

    #[test]
    fn scissor_limits_the_pixels() {
        let c = cam();
        let mut r = Raster::default();
        r.clear(c.width, c.height, false);
        let s = Scissor {
            x0: 10,
            y0: 5,
            x1: 20,
            y1: 9,
        };
        r.draw(&c, &[wall_quad(2.0, 7)], false, Some(s));
        r.resolve(false);
        let n = r.ids.iter().filter(|&&i| i == 7).count();
        assert_eq!(n, 10 * 4);
        // A strided probe sees exactly the full frame's pixels on its lattice.
        let mut p = Raster::default();
        p.clear(c.width, c.height, false);
        p.clear_scissor(s, 3);
        p.draw_strided(&c, &[wall_quad(2.0, 7)], s, 3);
        assert!(p.any_in(s, 3, 7));
        assert!(!p.any_in(s, 3, 8));
    }

    /// A scene of overlapping boxes' faces in front of an odd-sized camera (so rows end in
    /// partial blocks of the vector loops), from a fixed linear congruential sequence.
    fn cluttered() -> (Camera, Vec<Quad>) {
        let cam = Camera {
            position: V3::new(0.0, 0.0, 0.0),
            yaw_deg: 7.0,
            horizon_deg: 11.0,
            fov_y_deg: 75.0,
            width: 61,
            height: 37,
        };
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut quads = Vec::new();
        for i in 0..40u32 {
            let (cx, cy, cz) = (next() * 4.0 - 2.0, next() * 3.0 - 1.5, 1.0 + next() * 5.0);
            let (hx, hy) = (0.1 + next() * 1.2, 0.1 + next() * 1.2);
            let tilt = next() - 0.5;
            let v = [
                V3::new(cx - hx, cy - hy, cz - tilt),
                V3::new(cx - hx, cy + hy, cz - tilt),
                V3::new(cx + hx, cy + hy, cz + tilt),
                V3::new(cx + hx, cy - hy, cz + tilt),
            ];
            let (a, b) = (v[1].sub(v[0]), v[3].sub(v[0]));
            let normal = V3::new(
                a.y * b.z - a.z * b.y,
                a.z * b.x - a.x * b.z,
                a.x * b.y - a.y * b.x,
            )
            .normalized();
            quads.push(Quad {
                v,
                normal,
                color: [next() as f32, next() as f32, next() as f32],
                // Some faces share an id, so outlines fall between ids, not polygons.
                id: 1 + i % 13,
                two_sided: true,
                recessed: i % 5 == 0,
            });
        }
        quads.extend((0..3).map(|k| wall_quad(6.0 + k as f64, 0)));
        (cam, quads)
    }

    #[test]
    fn resolve_matches_its_per_pixel_definition() {
        let (cam, quads) = cluttered();
        let mut r = Raster::default();
        r.clear(cam.width, cam.height, true);
        r.draw(&cam, &quads, true, None);
        r.resolve(true);
        let (w, h) = (cam.width as usize, cam.height as usize);
        let id_at = |x: usize, y: usize| r.palette[r.tags[y * w + x] as usize].1;
        let mut counts = vec![0u32; 14];
        for y in 0..h {
            for x in 0..w {
                let id = id_at(x, y);
                assert_eq!(r.ids[y * w + x], id, "id at ({x}, {y})");
                counts[id as usize] += 1;
                let right = if x + 1 < w { id_at(x + 1, y) } else { id };
                let down = if y + 1 < h { id_at(x, y + 1) } else { id };
                let mut c = r.palette[r.tags[y * w + x] as usize].0;
                if right != id || down != id {
                    c = c.map(|v| (v as u16 * 3 / 5) as u8);
                }
                assert_eq!(r.rgb[(y * w + x) * 3..][..3], c, "colour at ({x}, {y})");
            }
        }
        assert!(counts.iter().filter(|&&n| n > 0).count() > 5, "{counts:?}");
        let mut got = Vec::new();
        r.count_ids(&mut got);
        got.resize(counts.len(), 0);
        assert_eq!(got, counts);
        // A handed-out frame is rebuilt identically.
        let first = r.take_rgb();
        r.clear(cam.width, cam.height, true);
        r.draw(&cam, &quads, true, None);
        r.resolve(true);
        assert_eq!(first, r.rgb);
    }

    #[test]
    fn strided_draws_equal_the_full_frame_bit_for_bit() {
        // The full frame fills spans in vector blocks, strided probes pixel by pixel: both
        // must give every pixel they share the same 1/z bits and the same polygon.
        let (cam, quads) = cluttered();
        let mut full = Raster::default();
        full.clear(cam.width, cam.height, false);
        full.draw(&cam, &quads, false, None);
        let w = cam.width as usize;
        for stride in [2, 3, 5] {
            let s = Scissor {
                x0: 1,
                y0: 2,
                x1: cam.width,
                y1: cam.height,
            };
            let mut p = Raster::default();
            p.clear(cam.width, cam.height, false);
            p.clear_scissor(s, stride);
            p.draw_strided(&cam, &quads, s, stride);
            let st = stride as usize;
            for y in (s.y0 as usize..s.y1 as usize).step_by(st) {
                for x in (s.x0 as usize..s.x1 as usize).step_by(st) {
                    let i = y * w + x;
                    assert_eq!(
                        p.inv_z[i].to_bits(),
                        full.inv_z[i].to_bits(),
                        "1/z at ({x}, {y}), stride {stride}"
                    );
                    assert_eq!(
                        p.palette[p.tags[i] as usize].1, full.palette[full.tags[i] as usize].1,
                        "id at ({x}, {y}), stride {stride}"
                    );
                }
            }
        }
    }
}
