//! The image path, as transformers' Qwen2-VL image processor does it: `smart_resize`, bicubic
//! resize, rescale and normalise, then patches in merge order.

use ember_agent::RgbImage;

use crate::config::PreprocessorConfig;
use crate::error::{ModelError, Result};

/// Python's `round()` on a float: half to even.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// transformers' `smart_resize`: both sides a multiple of `factor`, aspect kept as closely as
/// possible, total pixels within `[min_pixels, max_pixels]`. Same float arithmetic as the
/// Python (f64, round half to even), so the integers agree.
pub fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize)> {
    if height == 0 || width == 0 || factor == 0 {
        return Err(ModelError::Image {
            what: format!("{width}x{height}"),
            message: "an image side (or the resize factor) is zero".into(),
        });
    }
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    let ratio = h.max(w) / h.min(w);
    if ratio > 200.0 {
        return Err(ModelError::Image {
            what: format!("{width}x{height}"),
            message: format!("absolute aspect ratio must be smaller than 200, got {ratio}"),
        });
    }
    let mut h_bar = round_half_even(h / f) * f;
    let mut w_bar = round_half_even(w / f) * f;
    if h_bar * w_bar > max_pixels as f64 {
        let beta = ((h * w) / max_pixels as f64).sqrt();
        h_bar = f.max((h / beta / f).floor() * f);
        w_bar = f.max((w / beta / f).floor() * f);
    } else if h_bar * w_bar < min_pixels as f64 {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        h_bar = (h * beta / f).ceil() * f;
        w_bar = (w * beta / f).ceil() * f;
    }
    Ok((h_bar as usize, w_bar as usize))
}

/// The bicubic kernel PIL and torchvision's antialiased resize use (a = -0.5).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output index: the first input index and the normalised weights.
fn resample_weights(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5).floor().max(0.0)) as usize;
            let xmax = ((center + support + 0.5).floor() as usize).min(in_size);
            let mut w: Vec<f64> = (xmin..xmax)
                .map(|j| bicubic((j as f64 - center + 0.5) / filterscale))
                .collect();
            let sum: f64 = w.iter().sum();
            if sum != 0.0 {
                w.iter_mut().for_each(|x| *x /= sum);
            }
            (xmin, w)
        })
        .collect()
}

fn clamp_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Bicubic resize with antialiasing (PIL's separable algorithm: horizontal pass, then vertical,
/// 8-bit between passes). Matches PIL/torchvision to within a grey level or so; the model's
/// parity tests use images that need no resize.
pub fn resize_bicubic(img: &RgbImage, out_w: usize, out_h: usize) -> RgbImage {
    let (in_w, in_h) = (img.width as usize, img.height as usize);
    if in_w == out_w && in_h == out_h {
        return img.clone();
    }
    // Horizontal.
    let hw = resample_weights(in_w, out_w);
    let mut tmp = vec![0u8; out_w * in_h * 3];
    for y in 0..in_h {
        let row = &img.data[y * in_w * 3..(y + 1) * in_w * 3];
        for (x, (x0, ws)) in hw.iter().enumerate() {
            let mut acc = [0f64; 3];
            for (k, w) in ws.iter().enumerate() {
                let p = &row[(x0 + k) * 3..(x0 + k) * 3 + 3];
                for c in 0..3 {
                    acc[c] += *w * p[c] as f64;
                }
            }
            for c in 0..3 {
                tmp[(y * out_w + x) * 3 + c] = clamp_u8(acc[c]);
            }
        }
    }
    // Vertical.
    let vw = resample_weights(in_h, out_h);
    let mut out = vec![0u8; out_w * out_h * 3];
    for (y, (y0, ws)) in vw.iter().enumerate() {
        for x in 0..out_w {
            let mut acc = [0f64; 3];
            for (k, w) in ws.iter().enumerate() {
                let i = ((y0 + k) * out_w + x) * 3;
                for c in 0..3 {
                    acc[c] += *w * tmp[i + c] as f64;
                }
            }
            for c in 0..3 {
                out[(y * out_w + x) * 3 + c] = clamp_u8(acc[c]);
            }
        }
    }
    RgbImage {
        width: out_w as u32,
        height: out_h as u32,
        data: out,
    }
}

/// One image, ready for the vision tower.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessedImage {
    /// `[n_patches, patch_dim]` row-major, patches in merge order.
    pub pixel_values: Vec<f32>,
    /// `(t, h, w)` in patches.
    pub grid_thw: [usize; 3],
    /// Values per patch (`3 * temporal_patch_size * patch_size^2`).
    pub patch_dim: usize,
}

impl ProcessedImage {
    /// Number of patches.
    pub fn n_patches(&self) -> usize {
        self.grid_thw.iter().product()
    }

    /// Number of `<|image_pad|>` tokens the image becomes.
    pub fn n_tokens(&self, merge_size: usize) -> usize {
        self.n_patches() / (merge_size * merge_size)
    }
}

/// The preprocessor: a config and the function that applies it.
#[derive(Clone, Debug)]
pub struct ImageProcessor {
    /// Settings.
    pub config: PreprocessorConfig,
}

impl ImageProcessor {
    /// A processor with the given settings.
    pub fn new(config: PreprocessorConfig) -> Self {
        Self { config }
    }

    /// The size an image will be resized to (height, width).
    pub fn target_size(&self, height: usize, width: usize) -> Result<(usize, usize)> {
        let c = &self.config;
        if !c.do_resize {
            return Ok((height, width));
        }
        smart_resize(
            height,
            width,
            c.patch_size * c.merge_size,
            c.min_pixels,
            c.max_pixels,
        )
    }

    /// How many `<|image_pad|>` tokens an image of this size becomes (for token budgets).
    pub fn tokens_for(&self, height: usize, width: usize) -> Result<usize> {
        let (h, w) = self.target_size(height, width)?;
        let p = self.config.patch_size;
        Ok((h / p) * (w / p) / (self.config.merge_size * self.config.merge_size))
    }

    /// Resizes, normalises and patchifies one image.
    pub fn process(&self, img: &RgbImage) -> Result<ProcessedImage> {
        let c = &self.config;
        if img.data.len() != img.width as usize * img.height as usize * 3 {
            return Err(ModelError::Image {
                what: format!("{}x{}", img.width, img.height),
                message: format!(
                    "{} bytes for {} pixels",
                    img.data.len(),
                    img.width as usize * img.height as usize
                ),
            });
        }
        let (th, tw) = self.target_size(img.height as usize, img.width as usize)?;
        let factor = c.patch_size * c.merge_size;
        if th % factor != 0 || tw % factor != 0 || th == 0 || tw == 0 {
            return Err(ModelError::Image {
                what: format!("{}x{}", img.width, img.height),
                message: format!("size {tw}x{th} is not a multiple of {factor} (do_resize is off)"),
            });
        }
        let resized;
        let img = if (th, tw) != (img.height as usize, img.width as usize) {
            resized = resize_bicubic(img, tw, th);
            &resized
        } else {
            img
        };
        // Rescale and normalise, fused as transformers' torchvision backend does (f32).
        let (mean, std, scale) = if c.do_rescale && c.do_normalize {
            let inv = (1.0 / c.rescale_factor as f64) as f32;
            (
                c.image_mean.map(|m| m * inv),
                c.image_std.map(|s| s * inv),
                1.0f32,
            )
        } else if c.do_normalize {
            (c.image_mean, c.image_std, 1.0)
        } else if c.do_rescale {
            ([0.0; 3], [1.0; 3], c.rescale_factor)
        } else {
            ([0.0; 3], [1.0; 3], 1.0)
        };
        let plane = th * tw;
        let mut chw = vec![0f32; 3 * plane];
        for (i, px) in img.data.chunks_exact(3).enumerate() {
            for ch in 0..3 {
                chw[ch * plane + i] = (px[ch] as f32 * scale - mean[ch]) / std[ch];
            }
        }
        // Patchify in merge order: [gh/m, gw/m, m, m] patches, each [c, t, p, p].
        let p = c.patch_size;
        let m = c.merge_size;
        let t = c.temporal_patch_size;
        let (gh, gw) = (th / p, tw / p);
        let patch_dim = 3 * t * p * p;
        let mut out = Vec::with_capacity(gh * gw * patch_dim);
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for mh in 0..m {
                    for mw in 0..m {
                        let (py, px) = ((bh * m + mh) * p, (bw * m + mw) * p);
                        for ch in 0..3 {
                            // A still image is repeated over the temporal patch.
                            for _ in 0..t {
                                for yy in 0..p {
                                    let row = ch * plane + (py + yy) * tw + px;
                                    out.extend_from_slice(&chw[row..row + p]);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(ProcessedImage {
            pixel_values: out,
            grid_thw: [1, gh, gw],
            patch_dim,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_like_python() {
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(2.6), 3.0);
    }

    #[test]
    fn smart_resize_examples() {
        // 800x450 (Embodied-Reasoner frames) with Qwen2-VL's defaults.
        assert_eq!(
            smart_resize(450, 800, 28, 3136, 12_845_056).unwrap(),
            (448, 812)
        );
        // ER's evaluation bounds (3136..351232 pixels).
        let (h, w) = smart_resize(450, 800, 28, 3136, 351_232).unwrap();
        assert!(h * w <= 351_232 && h % 28 == 0 && w % 28 == 0);
        assert!(smart_resize(1, 300, 28, 3136, 351_232).is_err());
    }

    #[test]
    fn patches_are_in_merge_order() {
        // A 56x28 image (2 rows and 4 columns of patches) whose pixels encode their position.
        let (w, h) = (56u32, 28u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x % 256) as u8, y as u8, 7]);
            }
        }
        let img = RgbImage::new(w, h, data).unwrap();
        let cfg = PreprocessorConfig {
            do_resize: false,
            do_normalize: false,
            do_rescale: false,
            ..Default::default()
        };
        let p = ImageProcessor::new(cfg).process(&img).unwrap();
        assert_eq!(p.grid_thw, [1, 2, 4]);
        assert_eq!(p.pixel_values.len(), 8 * 1176);
        // Patch order: (bh=0,bw=0): (0,0),(0,1),(1,0),(1,1); then (bh=0,bw=1): (0,2),(0,3),(1,2),(1,3).
        let origin = |k: usize| {
            let v = &p.pixel_values[k * 1176..];
            (v[0] as u32, v[196 * 2] as u32) // channel 0 (x) and channel 1 (y) at the patch's first pixel
        };
        let expected = [
            (0, 0),
            (14, 0),
            (0, 14),
            (14, 14),
            (28, 0),
            (42, 0),
            (28, 14),
            (42, 14),
        ];
        for (k, e) in expected.iter().enumerate() {
            assert_eq!(origin(k), *e, "patch {k}");
        }
        // The two temporal copies are equal.
        assert_eq!(p.pixel_values[0..196], p.pixel_values[196..392]);
    }

    #[test]
    fn resize_keeps_a_flat_colour() {
        let img = RgbImage::new(100, 75, [10u8, 200, 30].repeat(100 * 75)).unwrap();
        let r = resize_bicubic(&img, 112, 84);
        assert!(r.data.chunks_exact(3).all(|p| p == [10, 200, 30]));
    }
}
