//! Rotary position embeddings, computed on the host: the language model's M-RoPE (position ids
//! over t/h/w streams, `mrope_section`, `rotate_half` layout) and the vision tower's 2-D rotary.

use crate::error::{ModelError, Result};

/// Position ids of a prompt over the three M-RoPE streams, and the offset that continues them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MropePositions {
    /// `[3][T]`: temporal, height and width positions per token.
    pub streams: [Vec<i64>; 3],
    /// Decoding continues at `index + rope_delta` on all three streams.
    pub rope_delta: i64,
}

impl MropePositions {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.streams[0].len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.streams[0].is_empty()
    }
}

/// transformers' `get_rope_index` for images: text tokens advance all three streams together;
/// an image's tokens take t = offset (+ frame), h = offset + row, w = offset + column over the
/// merged grid, and the offset then moves past the image's larger side.
pub fn mrope_positions(
    input_ids: &[u32],
    image_token_id: u32,
    grids: &[[usize; 3]],
    merge: usize,
) -> Result<MropePositions> {
    let n = input_ids.len();
    let mut s: [Vec<i64>; 3] = [
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    ];
    let mut current: i64 = 0;
    let mut i = 0;
    let mut next_image = 0;
    while i < n {
        if input_ids[i] != image_token_id {
            for stream in s.iter_mut() {
                stream.push(current);
            }
            current += 1;
            i += 1;
            continue;
        }
        let grid = grids.get(next_image).ok_or_else(|| {
            ModelError::Input(format!(
                "the prompt has more image tokens than the {} image(s) given (at token {i})",
                grids.len()
            ))
        })?;
        next_image += 1;
        let (t, h, w) = (grid[0], grid[1] / merge, grid[2] / merge);
        let count = t * h * w;
        if i + count > n || input_ids[i..i + count].iter().any(|&x| x != image_token_id) {
            return Err(ModelError::Input(format!(
                "image {} needs {count} consecutive image tokens at token {i}",
                next_image - 1
            )));
        }
        for tt in 0..t {
            for hh in 0..h {
                for ww in 0..w {
                    s[0].push(current + tt as i64);
                    s[1].push(current + hh as i64);
                    s[2].push(current + ww as i64);
                }
            }
        }
        current += h.max(w) as i64;
        i += count;
    }
    if next_image != grids.len() {
        return Err(ModelError::Input(format!(
            "{} image(s) given but the prompt has image tokens for {next_image}",
            grids.len()
        )));
    }
    let max = s.iter().flat_map(|v| v.iter().copied()).max().unwrap_or(-1);
    Ok(MropePositions {
        rope_delta: max + 1 - n as i64,
        streams: s,
    })
}

/// Inverse frequencies `1 / theta^(2j/dim)` for `j < dim/2`, in f32 as torch computes them.
pub fn inv_freq(theta: f64, dim: usize) -> Vec<f32> {
    (0..dim / 2)
        .map(|j| {
            let e = (2 * j) as f32 / dim as f32;
            1.0f32 / (theta as f32).powf(e)
        })
        .collect()
}

/// cos and sin tables `[T, head_dim]` for the language model: frequency pair `j` reads the
/// stream of the M-RoPE section it falls in; the second half repeats the first (`rotate_half`).
pub fn text_cos_sin(
    streams: [&[i64]; 3],
    head_dim: usize,
    theta: f64,
    mrope_section: &[usize],
) -> (Vec<f32>, Vec<f32>) {
    let inv = inv_freq(theta, head_dim);
    let half = head_dim / 2;
    let mut section_of = Vec::with_capacity(half);
    for (s, &len) in mrope_section.iter().enumerate() {
        section_of.extend(std::iter::repeat_n(s % 3, len));
    }
    section_of.resize(half, 0);
    let t = streams[0].len();
    let mut cos = vec![0f32; t * head_dim];
    let mut sin = vec![0f32; t * head_dim];
    for i in 0..t {
        for j in 0..half {
            let pos = streams[section_of[j]][i] as f32;
            let a = pos * inv[j];
            let (sa, ca) = a.sin_cos();
            cos[i * head_dim + j] = ca;
            cos[i * head_dim + j + half] = ca;
            sin[i * head_dim + j] = sa;
            sin[i * head_dim + j + half] = sa;
        }
    }
    (cos, sin)
}

/// Each patch's (row, column) in the patch grid, in the order patches arrive (merge order,
/// repeated per frame), for a sequence of images.
pub fn vision_positions(grids: &[[usize; 3]], merge: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for g in grids {
        let (t, h, w) = (g[0], g[1], g[2]);
        for _ in 0..t {
            for bh in 0..h / merge {
                for bw in 0..w / merge {
                    for mh in 0..merge {
                        for mw in 0..merge {
                            out.push((bh * merge + mh, bw * merge + mw));
                        }
                    }
                }
            }
        }
    }
    out
}

/// cos and sin tables `[N, head_dim]` of the vision tower's 2-D rotary: a quarter of the head
/// width rotates with the row, a quarter with the column, and the second half repeats them.
pub fn vision_cos_sin(
    positions: &[(usize, usize)],
    head_dim: usize,
    theta: f64,
) -> (Vec<f32>, Vec<f32>) {
    let inv = inv_freq(theta, head_dim / 2); // head_dim/4 frequencies
    let q = inv.len();
    let n = positions.len();
    let mut cos = vec![0f32; n * head_dim];
    let mut sin = vec![0f32; n * head_dim];
    for (i, &(r, c)) in positions.iter().enumerate() {
        for (j, &f) in inv.iter().enumerate() {
            for (k, pos) in [(j, r), (j + q, c)] {
                let a = pos as f32 * f;
                let (sa, ca) = a.sin_cos();
                for off in [0, 2 * q] {
                    cos[i * head_dim + k + off] = ca;
                    sin[i * head_dim + k + off] = sa;
                }
            }
        }
    }
    (cos, sin)
}

/// Qwen2.5-VL's window reordering: the order of merged tokens grouped window by window, and
/// each window's length in merged tokens (empty windows left out).
pub fn window_index(
    grids: &[[usize; 3]],
    merge: usize,
    window_size: usize,
    patch_size: usize,
) -> (Vec<usize>, Vec<usize>) {
    let win = (window_size / merge / patch_size).max(1);
    let mut index = Vec::new();
    let mut lens = Vec::new();
    let mut base = 0usize;
    for g in grids {
        let (t, gh, gw) = (g[0], g[1] / merge, g[2] / merge);
        let nwh = gh.div_ceil(win);
        let nww = gw.div_ceil(win);
        for tt in 0..t {
            for wy in 0..nwh {
                for wx in 0..nww {
                    let mut len = 0;
                    for y in wy * win..((wy + 1) * win).min(gh) {
                        for x in wx * win..((wx + 1) * win).min(gw) {
                            index.push(base + tt * gh * gw + y * gw + x);
                            len += 1;
                        }
                    }
                    if len > 0 {
                        lens.push(len);
                    }
                }
            }
        }
        base += t * gh * gw;
    }
    (index, lens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_the_image_grid() {
        // text(2) + image 4x6 patches (2x3 merged) + text(2)
        let img = 9u32;
        let ids = [1, 2, img, img, img, img, img, img, 3, 4];
        let p = mrope_positions(&ids, img, &[[1, 4, 6]], 2).unwrap();
        assert_eq!(p.streams[0], vec![0, 1, 2, 2, 2, 2, 2, 2, 5, 6]);
        assert_eq!(p.streams[1], vec![0, 1, 2, 2, 2, 3, 3, 3, 5, 6]);
        assert_eq!(p.streams[2], vec![0, 1, 2, 3, 4, 2, 3, 4, 5, 6]);
        assert_eq!(p.rope_delta, 7 - 10);
        assert!(mrope_positions(&ids, img, &[], 2).is_err());
        assert!(mrope_positions(&ids, img, &[[1, 4, 6], [1, 2, 2]], 2).is_err());
        assert!(mrope_positions(&ids, img, &[[1, 4, 8]], 2).is_err());
    }

    #[test]
    fn windows_cover_every_token_once() {
        // 10x6 patches -> 5x3 merged; windows of 2x2 merged.
        let (idx, lens) = window_index(&[[1, 10, 6]], 2, 56, 14);
        assert_eq!(lens, vec![4, 2, 4, 2, 2, 1]);
        let mut sorted = idx.clone();
        sorted.sort();
        assert_eq!(sorted, (0..15).collect::<Vec<_>>());
        assert_eq!(&idx[..4], &[0, 1, 3, 4]);
    }

    #[test]
    fn text_tables_repeat_halves_and_use_sections() {
        let s0 = [0i64, 5];
        let s1 = [0i64, 7];
        let s2 = [0i64, 9];
        let (cos, sin) = text_cos_sin([&s0, &s1, &s2], 8, 10000.0, &[2, 1, 1]);
        assert_eq!(cos.len(), 16);
        for j in 0..4 {
            assert_eq!(cos[8 + j], cos[8 + j + 4]);
            assert_eq!(sin[8 + j], sin[8 + j + 4]);
        }
        // pair 0 reads stream t (5), pair 2 stream h (7), pair 3 stream w (9).
        let inv = inv_freq(10000.0, 8);
        assert_eq!(sin[8], (5.0f32 * inv[0]).sin());
        assert_eq!(sin[8 + 2], (7.0f32 * inv[2]).sin());
        assert_eq!(sin[8 + 3], (9.0f32 * inv[3]).sin());
    }
}
