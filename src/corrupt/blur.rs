//! The blurs: gaussian, glass, defocus, motion and zoom.

use super::Rgb;
use super::filters::{Boundary, arange_zooms, clipped_zoom, gaussian_filter, motion_blur_im6};
use super::noise::to_level;
use super::rng::CorruptRng;

const GAUSSIAN_SIGMA: [f64; 5] = [0.4, 0.6, 0.7, 0.8, 1.0];
/// (sigma, max_delta, iterations)
const GLASS: [(f64, usize, usize); 5] = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)];
/// (radius, alias_blur)
const DEFOCUS: [(f64, f64); 5] = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)];
/// (radius, sigma)
const MOTION: [(f64, f64); 5] = [(6.0, 1.0), (6.0, 1.5), (6.0, 2.0), (8.0, 2.0), (9.0, 2.5)];
/// `stop` of `np.arange(1, stop, 0.01)`.
const ZOOM_STOP: [f64; 5] = [1.06, 1.11, 1.16, 1.21, 1.26];

fn to_unit(px: &[u8]) -> Vec<f64> {
    px.iter().map(|&v| f64::from(v) / 255.0).collect()
}

/// `skimage.filters.gaussian(x/255, sigma, multichannel=True)`: mode
/// `nearest`, truncate 4.
fn skimage_gaussian(px: &[u8], h: usize, w: usize, sigma: f64) -> Vec<f64> {
    let mut x = to_unit(px);
    gaussian_filter(&mut x, h, w, 3, sigma, 4.0, Boundary::Nearest);
    x
}

pub(crate) fn gaussian_blur(img: &Rgb, s: usize) -> Vec<u8> {
    skimage_gaussian(img.px, img.h, img.w, GAUSSIAN_SIGMA[s]).into_iter().map(to_level).collect()
}

/// Glass blur: blur, truncate to `u8`, shuffle pixels locally, blur again.
///
/// The shuffle walks `h` from `H−d` down to `d+1` and, inside, `w` from `W−d`
/// down to `d+1`, drawing `dx` then `dy` in `[−d, d)` (numpy's `randint`
/// excludes its upper bound). The reference's tuple "swap" on numpy views
/// copies: pixel `(h, w)` takes the value of `(h+dy, w+dx)`, which keeps its own.
pub(crate) fn glass_blur(img: &Rgb, s: usize, rng: &mut CorruptRng) -> Vec<u8> {
    let (h, w) = (img.h, img.w);
    let (sigma, delta_ref, iterations) = GLASS[s];
    let d = ((delta_ref as f64 * img.scale()).round() as usize).max(1);
    let mut x: Vec<u8> =
        skimage_gaussian(img.px, h, w, sigma).into_iter().map(|v| (v * 255.0) as u8).collect();
    glass_shuffle(&mut x, h, w, d, iterations, rng);
    skimage_gaussian(&x, h, w, sigma).into_iter().map(to_level).collect()
}

fn glass_shuffle(x: &mut [u8], h: usize, w: usize, d: usize, iterations: usize, rng: &mut CorruptRng) {
    let d_i = d as i64;
    for _ in 0..iterations {
        for hh in (d + 1..=h - d).rev() {
            for ww in (d + 1..=w - d).rev() {
                let dx = rng.randint(-d_i, d_i);
                let dy = rng.randint(-d_i, d_i);
                let hp = (hh as i64 + dy) as usize;
                let wp = (ww as i64 + dx) as usize;
                let (dst, src) = ((hh * w + ww) * 3, (hp * w + wp) * 3);
                x.copy_within(src..src + 3, dst);
            }
        }
    }
}

/// `disk(radius, alias_blur)` of the reference: the aliased disk on the
/// 17×17 grid (every radius used here is ≤ 8), normalised in float32, then
/// `cv2.GaussianBlur(ksize=(3,3), sigmaX=alias_blur)`. Returns the kernel's
/// nonzero taps as (dy, dx, weight).
fn defocus_kernel(radius: f64, alias_blur: f64) -> Vec<(isize, isize, f64)> {
    const N: usize = 17;
    const HALF: isize = 8;
    let mut disk = [[0f32; N]; N];
    let mut count = 0u32;
    for (i, row) in disk.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let (y, x) = (i as isize - HALF, j as isize - HALF);
            if ((x * x + y * y) as f64) <= radius * radius {
                *v = 1.0;
                count += 1;
            }
        }
    }
    let sum = count as f32;
    for v in disk.iter_mut().flatten() {
        *v /= sum;
    }
    // OpenCV's bit-exact 3-tap Gaussian: t = exp(4·(−0.125/σ²)), weights t, 1, t over 1 + 2t.
    let t = (4.0 * (-0.125 / (alias_blur * alias_blur))).exp();
    let mul = 1.0 / (2.0 * t + 1.0);
    let (k0, k1) = ((t * mul) as f32, mul as f32);
    let at = |a: &[[f32; N]; N], i: isize, j: isize| {
        a[Boundary::Reflect101.index(i, N)][Boundary::Reflect101.index(j, N)]
    };
    let mut rows = [[0f32; N]; N];
    for i in 0..N as isize {
        for j in 0..N as isize {
            rows[i as usize][j as usize] =
                k1 * at(&disk, i, j) + k0 * (at(&disk, i, j - 1) + at(&disk, i, j + 1));
        }
    }
    let mut taps = Vec::new();
    for i in 0..N as isize {
        for j in 0..N as isize {
            let v = k1 * at(&rows, i, j) + k0 * (at(&rows, i - 1, j) + at(&rows, i + 1, j));
            if v != 0.0 {
                taps.push((i - HALF, j - HALF, f64::from(v)));
            }
        }
    }
    taps
}

/// Defocus: `cv2.filter2D` of each channel with the disk kernel,
/// `BORDER_REFLECT_101`.
pub(crate) fn defocus_blur(img: &Rgb, s: usize) -> Vec<u8> {
    let (h, w) = (img.h, img.w);
    let (radius, alias) = DEFOCUS[s];
    let taps = defocus_kernel(radius, alias);
    let pad = taps.iter().map(|t| t.0.unsigned_abs().max(t.1.unsigned_abs())).max().unwrap_or(0);
    // Reflected copy of the image so the tap loop needs no border logic.
    let (ph, pw) = (h + 2 * pad, w + 2 * pad);
    let mut padded = vec![0.0f64; ph * pw * 3];
    for y in 0..ph {
        let sy = Boundary::Reflect101.index(y as isize - pad as isize, h);
        for x in 0..pw {
            let sx = Boundary::Reflect101.index(x as isize - pad as isize, w);
            for c in 0..3 {
                padded[(y * pw + x) * 3 + c] = f64::from(img.px[(sy * w + sx) * 3 + c]) / 255.0;
            }
        }
    }
    let offsets: Vec<(usize, f64)> = taps
        .iter()
        .map(|&(dy, dx, k)| ((((pad as isize + dy) * pw as isize + pad as isize + dx) * 3) as usize, k))
        .collect();
    let mut out = vec![0u8; h * w * 3];
    for y in 0..h {
        for x in 0..w {
            let base = (y * pw + x) * 3;
            let mut acc = [0.0f64; 3];
            for &(off, k) in &offsets {
                let p = &padded[base + off..base + off + 3];
                for c in 0..3 {
                    acc[c] += k * p[c];
                }
            }
            for c in 0..3 {
                out[(y * w + x) * 3 + c] = to_level(acc[c]);
            }
        }
    }
    out
}

/// Motion blur: ImageMagick's one-sided Gaussian along an angle drawn from
/// U(−45, 45) degrees; radius and sigma scale with the image side.
pub(crate) fn motion_blur(img: &Rgb, s: usize, rng: &mut CorruptRng) -> Vec<u8> {
    let (radius, sigma) = MOTION[s];
    let k = img.scale();
    let angle = rng.uniform_range(-45.0, 45.0);
    motion_blur_im6(img.px, img.h, img.w, 3, radius * k, sigma * k, angle)
}

/// Zoom blur in float32 like the reference: the mean of the image and its
/// `clipped_zoom` at every factor of the `np.arange` list.
pub(crate) fn zoom_blur(img: &Rgb, s: usize) -> Vec<u8> {
    let (h, w) = (img.h, img.w);
    let zooms = arange_zooms(ZOOM_STOP[s]);
    let x32: Vec<f32> = img.px.iter().map(|&v| (f64::from(v) / 255.0) as f32).collect();
    let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let mut acc = vec![0f32; x32.len()];
    let mut zoomed = vec![0f64; x32.len()];
    for &z in &zooms {
        clipped_zoom(&x64, h, w, 3, z, &mut zoomed);
        for (a, &v) in acc.iter_mut().zip(&zoomed) {
            *a += v as f32;
        }
    }
    let denom = (zooms.len() + 1) as f32;
    x32.iter().zip(&acc).map(|(&x, &a)| ((x + a) / denom).clamp(0.0, 1.0) * 255.0).map(|v| v as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glass_shuffle_copies_instead_of_swapping() {
        // 4x4, d = 1: the walk visits (h, w) = (3,3), (3,2), (2,3), (2,2).
        let mut x: Vec<u8> = (0..16u8).flat_map(|v| [v, v, v]).collect();
        let mut rng = CorruptRng::new(11);
        let mut expect = x.clone();
        let mut replay = CorruptRng::new(11);
        for hh in [3usize, 2] {
            for ww in [3usize, 2] {
                let dx = replay.randint(-1, 1);
                let dy = replay.randint(-1, 1);
                let src = ((hh as i64 + dy) as usize * 4 + (ww as i64 + dx) as usize) * 3;
                let v = expect[src];
                expect[(hh * 4 + ww) * 3..(hh * 4 + ww) * 3 + 3].fill(v);
            }
        }
        glass_shuffle(&mut x, 4, 4, 1, 1, &mut rng);
        assert_eq!(x, expect);
        // A copy duplicates values: with 4 moves some source value must appear twice
        // unless every draw was (0, 0).
        let firsts: Vec<u8> = x.chunks_exact(3).map(|p| p[0]).collect();
        let mut sorted = firsts.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let identity: Vec<u8> = (0..16).collect();
        assert!(firsts == identity || sorted.len() < 16);
    }

    #[test]
    fn glass_shuffle_never_touches_the_first_rows_and_columns() {
        let mut x: Vec<u8> = (0..64u8).flat_map(|v| [v, v, v]).collect();
        let before = x.clone();
        glass_shuffle(&mut x, 8, 8, 1, 2, &mut CorruptRng::new(3));
        for i in 0..8 {
            for j in 0..8 {
                if i < 2 || j < 2 {
                    let o = (i * 8 + j) * 3;
                    assert_eq!(x[o], before[o], "({i},{j}) changed");
                }
            }
        }
    }

    #[test]
    fn defocus_kernel_is_normalised_and_symmetric() {
        for (r, a) in DEFOCUS {
            let taps = defocus_kernel(r, a);
            let sum: f64 = taps.iter().map(|t| t.2).sum();
            assert!((sum - 1.0).abs() < 1e-6, "radius {r}: sum {sum}");
            for &(dy, dx, k) in &taps {
                let mirror = taps.iter().find(|t| t.0 == -dy && t.1 == -dx).map(|t| t.2);
                assert_eq!(mirror, Some(k));
            }
        }
        // Radius 1 is a 5-point cross before anti-aliasing.
        assert!(defocus_kernel(1.0, 0.2).iter().all(|t| t.0.abs() <= 2 && t.1.abs() <= 2));
    }

    #[test]
    fn zoom_blur_keeps_a_flat_image_flat() {
        let px = vec![90u8; 32 * 32 * 3];
        let img = Rgb { h: 32, w: 32, px: &px };
        for s in 0..5 {
            let out = zoom_blur(&img, s);
            assert!(out.iter().all(|&v| v == 89 || v == 90), "severity {s}");
        }
    }
}
