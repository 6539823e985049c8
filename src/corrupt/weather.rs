//! Weather corruptions: snow, frost, fog, and the spatter extra.

use super::filters::{Boundary, clipped_zoom, gaussian_filter, motion_blur_im6};
use super::frost::FrostTextures;
use super::noise::to_level;
use super::rng::CorruptRng;
use super::{Result, Rgb};

/// (loc, scale, zoom, threshold, blur radius, blur sigma, blend)
const SNOW: [(f64, f64, f64, f64, f64, f64, f64); 5] = [
    (0.1, 0.2, 1.0, 0.6, 8.0, 3.0, 0.95),
    (0.1, 0.2, 1.0, 0.5, 10.0, 4.0, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10.0, 4.0, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12.0, 6.0, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14.0, 12.0, 0.8),
];
/// (image weight, frost weight)
const FROST: [(f64, f64); 5] = [(1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)];
/// Texture downscale factor for 32 px images.
const FROST_RESIZE: f64 = 0.2;
/// (amplitude, wibble decay)
const FOG: [(f64, f64); 5] = [(0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)];
/// (loc, scale, sigma, threshold, intensity, mud)
const SPATTER: [(f64, f64, f64, f64, f64, bool); 5] = [
    (0.62, 0.1, 0.7, 0.7, 0.5, false),
    (0.65, 0.1, 0.8, 0.7, 0.5, false),
    (0.65, 0.3, 1.0, 0.69, 0.5, false),
    (0.65, 0.1, 0.7, 0.69, 0.6, true),
    (0.65, 0.1, 0.5, 0.68, 0.6, true),
];

/// Snow in the reference's mixed float32/float64 arithmetic. The snow layer
/// goes through an 8-bit PNG before ImageMagick blurs it, so it is truncated
/// to `u8` first; the streak's radius and sigma scale with the image side.
pub(crate) fn snow(img: &Rgb, s: usize, rng: &mut CorruptRng) -> Vec<u8> {
    let (h, w) = (img.h, img.w);
    let (loc, scale, zoom, threshold, radius, sigma, blend) = SNOW[s];
    let layer: Vec<f64> = (0..h * w).map(|_| loc + scale * rng.normal()).collect();
    let mut zoomed = vec![0.0; h * w];
    clipped_zoom(&layer, h, w, 1, zoom, &mut zoomed);
    let layer_u8: Vec<u8> =
        zoomed.iter().map(|&v| if v < threshold { 0 } else { (v.clamp(0.0, 1.0) * 255.0) as u8 }).collect();
    let angle = rng.uniform_range(-135.0, -45.0);
    let k = img.scale();
    let blurred = motion_blur_im6(&layer_u8, h, w, 1, radius * k, sigma * k, angle);
    let snow: Vec<f64> = blurred.iter().map(|&v| f64::from(v) / 255.0).collect();

    let blend32 = blend as f32;
    let rest32 = (1.0 - blend) as f32;
    let mut out = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            let p = &img.px[(y * w + x) * 3..(y * w + x) * 3 + 3];
            let c: [f32; 3] = [0, 1, 2].map(|i| f32::from(p[i]) / 255.0);
            // cv2.cvtColor(RGB2GRAY) on float32.
            let gray = c[0] * 0.299f32 + c[1] * 0.587f32 + c[2] * 0.114f32;
            let lifted = gray * 1.5f32 + 0.5f32;
            let (here, rotated) = (snow[y * w + x], snow[(h - 1 - y) * w + (w - 1 - x)]);
            for v in c {
                let mixed = blend32 * v + rest32 * v.max(lifted);
                out.push(to_level(f64::from(mixed) + here + rotated));
            }
        }
    }
    out
}

/// Frost: `clip(c0·x + c1·crop, 0, 255)` in 0..255 units, with a random crop
/// of one of the first five textures downscaled by `0.2·side/32`.
pub(crate) fn frost(img: &Rgb, s: usize, rng: &mut CorruptRng, textures: &FrostTextures) -> Result<Vec<u8>> {
    let (h, w) = (img.h, img.w);
    let (c0, c1) = FROST[s];
    // The crop needs at least one spare row and column (numpy's randint(0, 0) fails).
    let mut f = FROST_RESIZE * img.scale();
    for (th, tw) in textures.original_sizes()? {
        f = f.max((h + 1) as f64 / th as f64).max((w + 1) as f64 / tw as f64);
    }
    let small = textures.resized(f)?;
    let idx = rng.randint(0, 5) as usize;
    let t = &small[idx];
    let y0 = rng.randint(0, (t.h - h) as i64) as usize;
    let x0 = rng.randint(0, (t.w - w) as i64) as usize;
    let mut out = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let v = f64::from(img.px[(y * w + x) * 3 + c]);
                let fr = f64::from(t.px[((y0 + y) * t.w + x0 + x) * 3 + c]);
                out.push((c0 * v + c1 * fr).clamp(0.0, 255.0) as u8);
            }
        }
    }
    Ok(out)
}

/// Diamond-square heightmap of `plasma_fractal`, normalised to [0, 1];
/// `size` is a power of two.
fn plasma_fractal(size: usize, wibble_decay: f64, rng: &mut CorruptRng) -> Vec<f64> {
    let mut map = vec![0.0f64; size * size];
    let at = |i: usize, j: usize| i * size + j;
    let mut step = size;
    let mut wibble = 100.0f64;
    while step >= 2 {
        let half = step / 2;
        let n = size / step;
        // Squares: centre = mean of the four corners (wrapping) + wibble.
        for i in 0..n {
            for j in 0..n {
                let c = |a: usize, b: usize| map[at((a % n) * step, (b % n) * step)];
                let sum = (c(i, j) + c(i + 1, j)) + (c(i, j + 1) + c(i + 1, j + 1));
                map[at(i * step + half, j * step + half)] =
                    sum / 4.0 + wibble * rng.uniform_range(-wibble, wibble);
            }
        }
        // Diamonds: first the points between horizontal corner pairs, then the vertical ones.
        let dr = |m: &Vec<f64>, a: usize, b: usize| m[at(a * step + half, b * step + half)];
        let ul = |m: &Vec<f64>, a: usize, b: usize| m[at(a * step, b * step)];
        let mut top = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let ldr = dr(&map, i, j) + dr(&map, (i + n - 1) % n, j);
                let lul = ul(&map, i, j) + ul(&map, i, (j + 1) % n);
                top[i * n + j] = ldr + lul;
            }
        }
        for i in 0..n {
            for j in 0..n {
                map[at(i * step, j * step + half)] =
                    top[i * n + j] / 4.0 + wibble * rng.uniform_range(-wibble, wibble);
            }
        }
        let mut left = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let tdr = dr(&map, i, j) + dr(&map, i, (j + n - 1) % n);
                let tul = ul(&map, i, j) + ul(&map, (i + 1) % n, j);
                left[i * n + j] = tdr + tul;
            }
        }
        for i in 0..n {
            for j in 0..n {
                map[at(i * step + half, j * step)] =
                    left[i * n + j] / 4.0 + wibble * rng.uniform_range(-wibble, wibble);
            }
        }
        step /= 2;
        wibble /= wibble_decay;
    }
    let min = map.iter().copied().fold(f64::INFINITY, f64::min);
    for v in &mut map {
        *v -= min;
    }
    let max = map.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    map.into_iter().map(|v| v / max).collect()
}

/// Fog: a plasma heightmap of side `next_power_of_two(max(H, W))` (32 for
/// CIFAR), cropped to the image, added and renormalised by the global maximum.
pub(crate) fn fog(img: &Rgb, s: usize, rng: &mut CorruptRng) -> Vec<u8> {
    let (h, w) = (img.h, img.w);
    let (amp, decay) = FOG[s];
    let size = h.max(w).next_power_of_two();
    let plasma = plasma_fractal(size, decay, rng);
    let max_val = img.px.iter().map(|&v| f64::from(v) / 255.0).fold(f64::NEG_INFINITY, f64::max);
    let mut out = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            let add = amp * plasma[y * size + x];
            for c in 0..3 {
                let v = f64::from(img.px[(y * w + x) * 3 + c]) / 255.0 + add;
                out.push(to_level(v * max_val / (max_val + amp)));
            }
        }
    }
    out
}

/// OpenCV `Canny(img, 50, 150)` with the 3×3 Sobel (replicated border) and
/// the L1 gradient: non-maximum suppression with OpenCV's fixed-point
/// tangent test, then hysteresis. Returns 255 on edges, 0 elsewhere.
fn canny(img: &[u8], h: usize, w: usize, low: i32, high: i32) -> Vec<u8> {
    const SHIFT: i32 = 15;
    const TG22: i32 = 13573;
    let px = |y: isize, x: isize| {
        i32::from(img[Boundary::Nearest.index(y, h) * w + Boundary::Nearest.index(x, w)])
    };
    let mut dx = vec![0i32; h * w];
    let mut dy = vec![0i32; h * w];
    let mut mag = vec![0i32; h * w];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let gx = (px(y - 1, x + 1) + 2 * px(y, x + 1) + px(y + 1, x + 1))
                - (px(y - 1, x - 1) + 2 * px(y, x - 1) + px(y + 1, x - 1));
            let gy = (px(y + 1, x - 1) + 2 * px(y + 1, x) + px(y + 1, x + 1))
                - (px(y - 1, x - 1) + 2 * px(y - 1, x) + px(y - 1, x + 1));
            let i = y as usize * w + x as usize;
            dx[i] = gx;
            dy[i] = gy;
            mag[i] = gx.abs() + gy.abs();
        }
    }
    let m_at = |y: isize, x: isize| {
        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
            0
        } else {
            mag[y as usize * w + x as usize]
        }
    };
    // 0: candidate, 1: not an edge, 2: edge.
    let mut map = vec![1u8; h * w];
    let mut stack = Vec::new();
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            let m = mag[i];
            if m <= low {
                continue;
            }
            let (xs, ys) = (dx[i], dy[i]);
            let ax = xs.abs();
            let ay = ys.abs() << SHIFT;
            let tg22x = ax * TG22;
            let is_max = if ay < tg22x {
                m > m_at(y, x - 1) && m >= m_at(y, x + 1)
            } else {
                let tg67x = tg22x + (ax << (SHIFT + 1));
                if ay > tg67x {
                    m > m_at(y - 1, x) && m >= m_at(y + 1, x)
                } else {
                    let s = if (xs ^ ys) < 0 { -1 } else { 1 };
                    m > m_at(y - 1, x - s) && m > m_at(y + 1, x + s)
                }
            };
            if is_max {
                map[i] = 0;
                if m > high {
                    map[i] = 2;
                    stack.push((y, x));
                }
            }
        }
    }
    while let Some((y, x)) = stack.pop() {
        for (oy, ox) in [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)] {
            let (ny, nx) = (y + oy, x + ox);
            if ny < 0 || nx < 0 || ny >= h as isize || nx >= w as isize {
                continue;
            }
            let j = ny as usize * w + nx as usize;
            if map[j] == 0 {
                map[j] = 2;
                stack.push((ny, nx));
            }
        }
    }
    map.into_iter().map(|m| if m == 2 { 255 } else { 0 }).collect()
}

/// OpenCV `distanceTransform(src, DIST_L2, 5)`: the 5×5 chamfer (1, 1.4,
/// 2.1969) in 16-bit fixed point, distance to the nearest zero pixel.
fn distance_transform(src: &[u8], h: usize, w: usize) -> Vec<f32> {
    const B: usize = 2;
    const MAX: u32 = u32::MAX >> 2;
    let fix = |v: f32| (v * 65536.0).round_ties_even() as u32;
    let (hv, diag, long) = (fix(1.0), fix(1.4), fix(2.1969));
    let step = w + 2 * B;
    let mut t = vec![MAX; (h + 2 * B) * step];
    let idx = |y: usize, x: usize| (y + B) * step + x + B;
    for y in 0..h {
        for x in 0..w {
            if src[y * w + x] == 0 {
                t[idx(y, x)] = 0;
                continue;
            }
            let i = idx(y, x);
            let cands = [
                t[i - 2 * step - 1] + long,
                t[i - 2 * step + 1] + long,
                t[i - step - 2] + long,
                t[i - step - 1] + diag,
                t[i - step] + hv,
                t[i - step + 1] + diag,
                t[i - step + 2] + long,
                t[i - 1] + hv,
            ];
            t[i] = cands.into_iter().min().unwrap_or(MAX);
        }
    }
    let mut out = vec![0f32; h * w];
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = idx(y, x);
            let mut t0 = t[i];
            if t0 > hv {
                let cands = [
                    t[i + 2 * step + 1] + long,
                    t[i + 2 * step - 1] + long,
                    t[i + step + 2] + long,
                    t[i + step + 1] + diag,
                    t[i + step] + hv,
                    t[i + step - 1] + diag,
                    t[i + step - 2] + long,
                    t[i + 1] + hv,
                ];
                t0 = cands.into_iter().fold(t0, u32::min);
                t[i] = t0;
            }
            out[y * w + x] = t0 as f32 * (1.0 / 65536.0);
        }
    }
    out
}

/// OpenCV `blur(src, (3, 3))` on float32 with `BORDER_REFLECT_101`.
fn box3_f32(src: &[f32], h: usize, w: usize) -> Vec<f32> {
    let at = |y: isize, x: isize| {
        f64::from(src[Boundary::Reflect101.index(y, h) * w + Boundary::Reflect101.index(x, w)])
    };
    let mut out = vec![0f32; h * w];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let mut sum = 0.0;
            for dy in -1..=1 {
                sum += at(y + dy, x - 1) + at(y + dy, x) + at(y + dy, x + 1);
            }
            out[y as usize * w + x as usize] = (sum * (1.0 / 9.0)) as f32;
        }
    }
    out
}

/// OpenCV `blur(src, (3, 3))` on 8-bit images: OpenCV divides the 16-bit sums
/// by 9 with its fixed-point reciprocal, `((s + 4)·7282) >> 16`.
fn box3_u8(src: &[u8], h: usize, w: usize) -> Vec<u8> {
    let at = |y: isize, x: isize| {
        u32::from(src[Boundary::Reflect101.index(y, h) * w + Boundary::Reflect101.index(x, w)])
    };
    let mut out = vec![0u8; h * w];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let mut sum = 0;
            for dy in -1..=1 {
                sum += at(y + dy, x - 1) + at(y + dy, x) + at(y + dy, x + 1);
            }
            out[y as usize * w + x as usize] = (((sum + 4) * 7282) >> 16).min(255) as u8;
        }
    }
    out
}

/// OpenCV `equalizeHist`.
fn equalize_hist(src: &[u8]) -> Vec<u8> {
    let mut hist = [0u32; 256];
    for &v in src {
        hist[usize::from(v)] += 1;
    }
    let total = src.len() as u32;
    let Some(first) = hist.iter().position(|&c| c > 0) else {
        return src.to_vec();
    };
    let mut lut = [0u8; 256];
    if hist[first] == total {
        return vec![first as u8; src.len()];
    }
    let scale = 255.0f32 / (total - hist[first]) as f32;
    let mut sum = 0u32;
    for i in first + 1..256 {
        sum += hist[i];
        lut[i] = (sum as f32 * scale).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    src.iter().map(|&v| lut[usize::from(v)]).collect()
}

/// Spatter (an extra): liquid (turquoise sheen along the edges of thresholded
/// blobs) for severities 1–3, mud (brown blobs) for 4–5.
pub(crate) fn spatter(img: &Rgb, s: usize, rng: &mut CorruptRng) -> Vec<u8> {
    let (h, w) = (img.h, img.w);
    let (loc, scale, sigma, threshold, intensity, mud) = SPATTER[s];
    let x: Vec<f32> = img.px.iter().map(|&v| f32::from(v) / 255.0).collect();
    let mut liquid: Vec<f64> = (0..h * w).map(|_| loc + scale * rng.normal()).collect();
    gaussian_filter(&mut liquid, h, w, 1, sigma, 4.0, Boundary::Nearest);
    for v in &mut liquid {
        if *v < threshold {
            *v = 0.0;
        }
    }
    if !mud {
        // numpy's astype(uint8) wraps values above 255 as x86 does.
        let liquid_u8: Vec<u8> = liquid.iter().map(|&v| (v * 255.0) as i64 as u8).collect();
        let edges = canny(&liquid_u8, h, w, 50, 150);
        let inverted: Vec<u8> = edges.iter().map(|&e| 255 - e).collect();
        let dist: Vec<f32> = distance_transform(&inverted, h, w).into_iter().map(|d| d.min(20.0)).collect();
        let dist_u8: Vec<u8> = box3_f32(&dist, h, w).into_iter().map(|d| d as u8).collect();
        let eq = equalize_hist(&dist_u8);
        const KER: [[f32; 3]; 3] = [[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]];
        let mut emboss = vec![0u8; h * w];
        for y in 0..h as isize {
            for xx in 0..w as isize {
                let mut acc = 0f32;
                for (ky, row) in KER.iter().enumerate() {
                    for (kx, &k) in row.iter().enumerate() {
                        let sy = Boundary::Reflect101.index(y + ky as isize - 1, h);
                        let sx = Boundary::Reflect101.index(xx + kx as isize - 1, w);
                        acc += k * f32::from(eq[sy * w + sx]);
                    }
                }
                emboss[y as usize * w + xx as usize] = acc.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
        let dist_f: Vec<f32> = box3_u8(&emboss, h, w).into_iter().map(f32::from).collect();
        let m: Vec<f32> = liquid_u8.iter().zip(&dist_f).map(|(&l, &d)| f32::from(l) * d).collect();
        let max = m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let color = [175.0f32 / 255.0, 238.0 / 255.0, 238.0 / 255.0];
        let intensity = intensity as f32;
        // A zero maximum makes m NaN in the reference too, and NaN truncates to 0.
        x.chunks_exact(3)
            .zip(&m)
            .flat_map(|(p, &mv)| {
                let mm = mv / max * intensity;
                [0, 1, 2].map(|c| ((p[c] + mm * color[c]).clamp(0.0, 1.0) * 255.0) as u8)
            })
            .collect()
    } else {
        let mut m: Vec<f64> = liquid.iter().map(|&v| if v > threshold { 1.0 } else { 0.0 }).collect();
        gaussian_filter(&mut m, h, w, 1, intensity, 4.0, Boundary::Nearest);
        let color = [63.0f32 / 255.0, 42.0 / 255.0, 20.0 / 255.0];
        x.chunks_exact(3)
            .zip(&m)
            .flat_map(|(p, &mv)| {
                let mv = if mv < 0.8 { 0.0 } else { mv };
                // The float64 mask meets float32 arrays in in-place products.
                [0, 1, 2].map(|c| {
                    let kept = (f64::from(p[c]) * (1.0 - mv)) as f32;
                    let mud = (f64::from(color[c]) * mv) as f32;
                    ((kept + mud).clamp(0.0, 1.0) * 255.0) as u8
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plasma_is_normalised_and_fills_every_cell() {
        let mut rng = CorruptRng::new(9);
        for size in [8, 16, 32] {
            let p = plasma_fractal(size, 2.0, &mut rng);
            assert_eq!(p.len(), size * size);
            let min = p.iter().copied().fold(f64::INFINITY, f64::min);
            let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((min, max), (0.0, 1.0));
            // Neighbouring cells are correlated: the fractal is smooth at large scale.
            let rough: f64 = p.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / p.len() as f64;
            assert!(rough < 0.35, "size {size}: {rough}");
        }
    }

    #[test]
    fn distance_transform_counts_chamfer_steps() {
        // Single zero in the middle of a 7x7 field.
        let mut src = vec![255u8; 49];
        src[3 * 7 + 3] = 0;
        let d = distance_transform(&src, 7, 7);
        assert_eq!(d[3 * 7 + 3], 0.0);
        assert!((d[3 * 7 + 4] - 1.0).abs() < 1e-4);
        assert!((d[4 * 7 + 4] - 1.4).abs() < 1e-4);
        assert!((d[5 * 7 + 4] - 2.1969).abs() < 1e-4);
        assert!((d[3 * 7 + 6] - 3.0).abs() < 1e-4);
    }

    #[test]
    fn canny_finds_a_step_edge() {
        let (h, w) = (10, 10);
        let img: Vec<u8> = (0..h * w).map(|i| if i % w < 5 { 0 } else { 200 }).collect();
        let e = canny(&img, h, w, 50, 150);
        for y in 0..h {
            let row = &e[y * w..(y + 1) * w];
            assert_eq!(row.iter().filter(|&&v| v == 255).count(), 1, "row {y}: {row:?}");
        }
    }

    #[test]
    fn equalize_hist_spreads_levels() {
        let src = [10u8, 10, 20, 30];
        assert_eq!(equalize_hist(&src), vec![0, 0, 128, 255]);
        assert_eq!(equalize_hist(&[7u8; 5]), vec![7; 5]);
    }

    #[test]
    fn box3_u8_rounds_like_division_by_nine() {
        for s in 0..=2295u32 {
            let fixed = ((s + 4) * 7282) >> 16;
            let exact = (f64::from(s) / 9.0).round() as u32;
            assert!(fixed.abs_diff(exact) <= 1, "{s}");
        }
    }
}
