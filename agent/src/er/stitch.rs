//! The `observe` panorama: the left, back and right views side by side in ONE image, each
//! labelled, the middle one framed by 5-pixel black borders on its left and right (as the
//! reference's `RocAgent.observe`).
//!
//! The reference writes the labels with OpenCV (`cv2.putText`, Hershey simplex, scale 3,
//! thickness 3, colour (255, 0, 0) in BGR, i.e. blue; baseline at (10, h-20), (10, h-20) and
//! (10, h-25)). We draw the same words with a small built-in stroke font of our own at about the
//! same size and place, scaled with the image height (800x450 is the reference size). The
//! glyphs are not OpenCV's: this is an approximation of the look, not a pixel match.

use crate::observation::RgbImage;

/// The label colour (RGB): OpenCV's (255, 0, 0) BGR.
pub const LABEL_RGB: [u8; 3] = [0, 0, 255];
/// Width of the black borders around the middle view, pixels.
pub const BORDER: u32 = 5;

type Stroke = &'static [(f32, f32)];

/// Glyph strokes on a grid: x right, y up from the baseline, x-height 5, ascender 9.
fn glyph(c: char) -> Option<(f32, &'static [Stroke])> {
    const BOWL_RIGHT: Stroke = &[
        (5.0, 3.5),
        (4.0, 4.6),
        (2.5, 5.0),
        (1.0, 4.5),
        (0.0, 2.5),
        (1.0, 0.5),
        (2.5, 0.0),
        (4.0, 0.4),
        (5.0, 1.5),
    ];
    Some(match c {
        'l' => (3.0, &[&[(1.0, 0.0), (1.0, 9.0)]]),
        'e' => (
            6.5,
            &[&[
                (0.0, 2.5),
                (5.0, 2.5),
                (5.0, 3.5),
                (4.3, 4.5),
                (2.5, 5.0),
                (0.8, 4.4),
                (0.0, 2.5),
                (0.8, 0.6),
                (2.5, 0.0),
                (4.2, 0.4),
                (5.0, 1.2),
            ]],
        ),
        'f' => (
            4.5,
            &[
                &[(3.5, 9.0), (2.5, 9.0), (1.5, 8.0), (1.5, 0.0)],
                &[(0.0, 5.0), (3.5, 5.0)],
            ],
        ),
        't' => (
            4.5,
            &[
                &[(1.5, 8.0), (1.5, 1.0), (2.5, 0.0), (3.5, 0.0)],
                &[(0.0, 5.0), (3.5, 5.0)],
            ],
        ),
        'v' => (6.0, &[&[(0.0, 5.0), (2.5, 0.0), (5.0, 5.0)]]),
        'i' => (2.5, &[&[(1.0, 0.0), (1.0, 5.0)], &[(1.0, 8.0), (1.0, 8.6)]]),
        'w' => (
            7.5,
            &[&[(0.0, 5.0), (1.5, 0.0), (3.0, 5.0), (4.5, 0.0), (6.0, 5.0)]],
        ),
        'b' => (
            6.5,
            &[
                &[(0.0, 9.0), (0.0, 0.0)],
                &[
                    (0.0, 3.5),
                    (1.0, 4.6),
                    (2.5, 5.0),
                    (4.0, 4.5),
                    (5.0, 2.5),
                    (4.0, 0.5),
                    (2.5, 0.0),
                    (1.0, 0.4),
                    (0.0, 1.5),
                ],
            ],
        ),
        'a' => (6.5, &[&[(5.0, 5.0), (5.0, 0.0)], BOWL_RIGHT]),
        'c' => (
            6.5,
            &[&[
                (5.0, 3.8),
                (4.0, 4.7),
                (2.5, 5.0),
                (1.0, 4.5),
                (0.0, 2.5),
                (1.0, 0.5),
                (2.5, 0.0),
                (4.0, 0.3),
                (5.0, 1.2),
            ]],
        ),
        'k' => (
            6.0,
            &[
                &[(0.0, 9.0), (0.0, 0.0)],
                &[(4.5, 5.0), (0.0, 1.5)],
                &[(1.6, 2.8), (5.0, 0.0)],
            ],
        ),
        'r' => (
            5.0,
            &[
                &[(0.0, 5.0), (0.0, 0.0)],
                &[(0.0, 3.0), (1.0, 4.4), (2.5, 5.0), (4.0, 5.0)],
            ],
        ),
        'g' => (
            6.5,
            &[
                &[
                    (5.0, 5.0),
                    (5.0, -1.0),
                    (4.0, -2.6),
                    (2.5, -3.0),
                    (1.0, -2.7),
                ],
                BOWL_RIGHT,
            ],
        ),
        'h' => (
            6.0,
            &[
                &[(0.0, 9.0), (0.0, 0.0)],
                &[
                    (0.0, 3.5),
                    (1.2, 4.6),
                    (2.7, 5.0),
                    (4.0, 4.6),
                    (4.5, 3.5),
                    (4.5, 0.0),
                ],
            ],
        ),
        ' ' => (4.0, &[]),
        _ => return None,
    })
}

fn stamp(img: &mut RgbImage, cx: f32, cy: f32, r: f32, rgb: [u8; 3]) {
    let (w, h) = (img.width as i64, img.height as i64);
    let x0 = (cx - r).floor() as i64;
    let x1 = (cx + r).ceil() as i64;
    let y0 = (cy - r).floor() as i64;
    let y1 = (cy + r).ceil() as i64;
    for y in y0.max(0)..=y1.min(h - 1) {
        for x in x0.max(0)..=x1.min(w - 1) {
            let dx = x as f32 + 0.5 - cx;
            let dy = y as f32 + 0.5 - cy;
            if dx * dx + dy * dy <= r * r {
                let i = (y as usize * w as usize + x as usize) * 3;
                img.data[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }
}

/// Draws `text` (the letters of "left view", "back view", "right view") with its baseline's
/// left end at pixel (x, y), with x-height `unit * 5` pixels and stroke width `thickness`.
pub fn draw_text(
    img: &mut RgbImage,
    text: &str,
    x: f32,
    y: f32,
    unit: f32,
    thickness: f32,
    rgb: [u8; 3],
) {
    let r = (thickness / 2.0).max(0.5);
    let mut pen = x;
    for c in text.chars() {
        let Some((advance, strokes)) = glyph(c.to_ascii_lowercase()) else {
            pen += 5.0 * unit;
            continue;
        };
        for stroke in strokes {
            for seg in stroke.windows(2) {
                let (ax, ay) = (pen + seg[0].0 * unit, y - seg[0].1 * unit);
                let (bx, by) = (pen + seg[1].0 * unit, y - seg[1].1 * unit);
                let len = ((bx - ax).powi(2) + (by - ay).powi(2)).sqrt();
                let n = (len / 0.5).ceil().max(1.0) as usize;
                for k in 0..=n {
                    let t = k as f32 / n as f32;
                    stamp(img, ax + (bx - ax) * t, ay + (by - ay) * t, r, rgb);
                }
            }
            if stroke.len() == 1 {
                stamp(
                    img,
                    pen + stroke[0].0 * unit,
                    y - stroke[0].1 * unit,
                    r,
                    rgb,
                );
            }
        }
        pen += advance * unit;
    }
}

/// Labels one view as the reference does (`offset` is the baseline's distance from the bottom at
/// the reference size: 20, or 25 for the right view).
pub fn label(img: &RgbImage, text: &str, offset: f32) -> RgbImage {
    let mut out = img.clone();
    let s = img.height as f32 / 450.0;
    // OpenCV's Hershey simplex at scale 3 has lower-case letters about 43 px tall at 450 px.
    let unit = 8.6 * s;
    let thickness = (3.0 * s).max(1.0);
    draw_text(
        &mut out,
        text,
        10.0 * s,
        img.height as f32 - offset * s,
        unit,
        thickness,
        LABEL_RGB,
    );
    out
}

/// The panorama of three views (left, back, right), labelled and framed.
pub fn stitch_observe(left: &RgbImage, back: &RgbImage, right: &RgbImage) -> RgbImage {
    let l = label(left, "left view", 20.0);
    let b = label(back, "back view", 20.0);
    let r = label(right, "right view", 25.0);
    let border = RgbImage::black(BORDER, b.height);
    RgbImage::hstack(&[&l, &border, &b, &border, &r])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::new(w, h, vec![v; (w * h * 3) as usize]).unwrap()
    }

    #[test]
    fn panorama_layout_and_labels() {
        let (w, h) = (800, 450);
        let p = stitch_observe(&grey(w, h, 100), &grey(w, h, 150), &grey(w, h, 200));
        assert_eq!((p.width, p.height), (3 * w + 2 * BORDER, h));
        // Borders are black, views keep their content away from the labels.
        assert_eq!(p.pixel(w, 10), [0, 0, 0]);
        assert_eq!(p.pixel(w + BORDER - 1, 10), [0, 0, 0]);
        assert_eq!(p.pixel(w + BORDER, 10), [150, 150, 150]);
        assert_eq!(p.pixel(2 * w + BORDER, 10), [0, 0, 0]);
        assert_eq!(p.pixel(2 * w + 2 * BORDER, 10), [200, 200, 200]);
        assert_eq!(p.pixel(w - 1, h - 1), [100, 100, 100]);
        // Each view has blue label pixels near its bottom-left corner and nowhere up top.
        for (x0, name) in [
            (0, "left"),
            (w + BORDER, "back"),
            (2 * w + 2 * BORDER, "right"),
        ] {
            let mut blue = 0;
            let mut blue_top = 0;
            for y in 0..h {
                for x in x0..x0 + w {
                    if p.pixel(x, y) == LABEL_RGB {
                        blue += 1;
                        if y < h / 2 {
                            blue_top += 1;
                        }
                    }
                }
            }
            assert!(blue > 2000, "{name}: {blue} label pixels");
            assert_eq!(blue_top, 0, "{name}");
        }
    }

    #[test]
    fn labels_scale_with_small_images_and_stay_inside() {
        let p = stitch_observe(&grey(60, 40, 1), &grey(60, 40, 2), &grey(60, 40, 3));
        assert_eq!((p.width, p.height), (190, 40));
        assert!(p.data.chunks(3).any(|c| c == LABEL_RGB));
    }
}
