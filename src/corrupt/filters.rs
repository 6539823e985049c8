//! Numeric building blocks that reproduce, operation for operation, the library
//! routines the reference generator calls: scipy.ndimage's Gaussian filter and
//! order-1 zoom, Pillow's BOX resampling, OpenCV's INTER_LINEAR resize of
//! 8-bit images, ImageMagick 6's `MotionBlurImage`, and scikit-image's HSV
//! conversions. Summation orders and roundings follow those sources because the
//! reference truncates its float results to `u8`, where the last bit can decide
//! the level.

/// How a filter reads outside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Boundary {
    /// scipy `nearest` / ImageMagick edge: `a a | a b c | c c`.
    Nearest,
    /// scipy `reflect` (half-sample symmetric): `b a | a b c | c b`.
    Reflect,
    /// OpenCV `BORDER_REFLECT_101` (scipy `mirror`): `c b | a b c | b a`.
    Reflect101,
}

impl Boundary {
    /// Index into `0..n` that position `i` reads, repeating the extension as
    /// often as needed for kernels longer than the line.
    pub(crate) fn index(self, i: isize, n: usize) -> usize {
        let n_i = n as isize;
        if (0..n_i).contains(&i) {
            return i as usize;
        }
        match self {
            Boundary::Nearest => i.clamp(0, n_i - 1) as usize,
            Boundary::Reflect => {
                let period = 2 * n_i;
                let m = i.rem_euclid(period);
                (if m >= n_i { period - 1 - m } else { m }) as usize
            }
            Boundary::Reflect101 => {
                if n == 1 {
                    return 0;
                }
                let period = 2 * n_i - 2;
                let m = i.rem_euclid(period);
                (if m >= n_i { period - m } else { m }) as usize
            }
        }
    }
}

/// numpy's pairwise summation of a float64 array (`np.sum`, `ndarray.sum`).
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |acc, &v| acc + v)
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_sum(&a[..n2]) + numpy_sum(&a[n2..])
    }
}

/// scipy's `_gaussian_kernel1d(sigma, 0, radius)` with `radius = int(truncate*sigma + 0.5)`.
pub(crate) fn gaussian_kernel(sigma: f64, truncate: f64) -> Vec<f64> {
    let radius = (truncate * sigma + 0.5) as i64;
    let a = -0.5 / (sigma * sigma);
    let phi: Vec<f64> = (-radius..=radius).map(|x| (a * (x * x) as f64).exp()).collect();
    let sum = numpy_sum(&phi);
    phi.into_iter().map(|p| p / sum).collect()
}

/// One symmetric correlation pass along a line, as scipy's `NI_Correlate1D`
/// does for symmetric weights: `x[i]·w0 + Σ_{d=r..1} (x[i-d] + x[i+d])·w_d`.
fn correlate_line(line: &[f64], kernel: &[f64], mode: Boundary, ext: &mut Vec<f64>, out: &mut [f64]) {
    let r = kernel.len() / 2;
    let n = line.len();
    ext.clear();
    ext.extend((0..n + 2 * r).map(|j| line[mode.index(j as isize - r as isize, n)]));
    let center = kernel[r];
    for (i, o) in out.iter_mut().enumerate() {
        let mid = i + r;
        let mut acc = ext[mid] * center;
        for d in (1..=r).rev() {
            acc += (ext[mid - d] + ext[mid + d]) * kernel[r - d];
        }
        *o = acc;
    }
}

/// scipy.ndimage `gaussian_filter` over the two spatial axes of an HWC float64
/// image (sigma 0 on the channel axis), axis 0 first. This is what
/// `skimage.filters.gaussian(x, sigma, multichannel=True)` computes.
pub(crate) fn gaussian_filter(
    data: &mut [f64],
    h: usize,
    w: usize,
    c: usize,
    sigma: f64,
    truncate: f64,
    mode: Boundary,
) {
    // scipy drops axes whose sigma is not above 1e-15.
    if sigma <= 1e-15 {
        return;
    }
    let kernel = gaussian_kernel(sigma, truncate);
    let mut ext = Vec::new();
    let mut line = vec![0.0; h.max(w)];
    let mut out = vec![0.0; h.max(w)];
    for x in 0..w {
        for k in 0..c {
            for y in 0..h {
                line[y] = data[(y * w + x) * c + k];
            }
            correlate_line(&line[..h], &kernel, mode, &mut ext, &mut out[..h]);
            for y in 0..h {
                data[(y * w + x) * c + k] = out[y];
            }
        }
    }
    for y in 0..h {
        for k in 0..c {
            for x in 0..w {
                line[x] = data[(y * w + x) * c + k];
            }
            correlate_line(&line[..w], &kernel, mode, &mut ext, &mut out[..w]);
            for x in 0..w {
                data[(y * w + x) * c + k] = out[x];
            }
        }
    }
}

/// Interpolation taps of one output coordinate of scipy's order-1 zoom with
/// `mode='constant'`: `None` where the coordinate lands beyond the last input
/// sample (scipy then writes `cval = 0`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinearTap {
    pub(crate) i0: usize,
    pub(crate) i1: usize,
    pub(crate) w0: f64,
    pub(crate) w1: f64,
}

/// Taps of `scipy.ndimage.zoom(order=1, grid_mode=False)` along one axis:
/// output `o` reads input `o·(n_in−1)/(n_out−1)`.
pub(crate) fn zoom_taps(n_in: usize, n_out: usize) -> Vec<Option<LinearTap>> {
    let zoom = if n_out > 1 { (n_in - 1) as f64 / (n_out - 1) as f64 } else { 1.0 };
    (0..n_out)
        .map(|o| {
            let cc = o as f64 * zoom;
            if cc > (n_in - 1) as f64 {
                return None;
            }
            let start = cc.floor();
            let t = cc - start;
            let w0 = 1.0 - t;
            let i0 = start as usize;
            // The neighbour past the end is mirrored back in; its weight is 0 there.
            let i1 = Boundary::Reflect101.index(i0 as isize + 1, n_in);
            Some(LinearTap { i0, i1, w0, w1: 1.0 - w0 })
        })
        .collect()
}

/// Zoom factors of `np.arange(1, stop, 0.01)`: numpy fills `start + i·delta`
/// with `delta = (start + step) − start` and takes `ceil((stop − start)/step)`
/// elements, which is why the nominal end is sometimes included.
pub(crate) fn arange_zooms(stop: f64) -> Vec<f64> {
    let (start, step) = (1.0f64, 0.01f64);
    let len = ((stop - start) / step).ceil() as usize;
    let delta = (start + step) - start;
    (0..len).map(|i| start + i as f64 * delta).collect()
}

/// Geometry of the reference's `clipped_zoom` along one axis: the centred crop
/// of `ceil(n/z)` samples, zoomed to `round(ch·z)` samples and trimmed back to `n`.
pub(crate) struct ClippedZoomAxis {
    pub(crate) crop_start: usize,
    pub(crate) taps: Vec<Option<LinearTap>>,
}

impl ClippedZoomAxis {
    pub(crate) fn new(n: usize, zoom: f64) -> Self {
        let ch = (n as f64 / zoom).ceil() as usize;
        let crop_start = (n - ch) / 2;
        // Python's round() on the output shape: ties go to even.
        let n_out = (ch as f64 * zoom).round_ties_even() as usize;
        let all = zoom_taps(ch, n_out);
        let trim = n_out.saturating_sub(n) / 2;
        let taps = (0..n).map(|o| all.get(trim + o).copied().flatten()).collect();
        Self { crop_start, taps }
    }
}

/// `clipped_zoom(img, z)` of an HWC image, computing each output as scipy
/// does: the four products `(v·w_row)·w_col` in (row, column) order, summed
/// left to right in double precision; taps past the input's end give 0.
pub(crate) fn clipped_zoom(src: &[f64], h: usize, w: usize, c: usize, zoom: f64, out: &mut [f64]) {
    let rows = ClippedZoomAxis::new(h, zoom);
    let cols = ClippedZoomAxis::new(w, zoom);
    let col_taps: Vec<Option<(usize, usize, f64, f64)>> = cols
        .taps
        .iter()
        .map(|t| t.map(|t| ((cols.crop_start + t.i0) * c, (cols.crop_start + t.i1) * c, t.w0, t.w1)))
        .collect();
    for (y, ty) in rows.taps.iter().enumerate() {
        let dst = &mut out[y * w * c..(y + 1) * w * c];
        let Some(ty) = ty else {
            dst.fill(0.0);
            continue;
        };
        let row0 = &src[(rows.crop_start + ty.i0) * w * c..][..w * c];
        let row1 = &src[(rows.crop_start + ty.i1) * w * c..][..w * c];
        for (px, tx) in dst.chunks_exact_mut(c).zip(&col_taps) {
            let Some((c0, c1, wx0, wx1)) = *tx else {
                px.fill(0.0);
                continue;
            };
            let (a, b) = (&row0[c0..c0 + c], &row0[c1..c1 + c]);
            let (d, e) = (&row1[c0..c0 + c], &row1[c1..c1 + c]);
            for k in 0..c {
                px[k] = a[k] * ty.w0 * wx0 + b[k] * ty.w0 * wx1 + d[k] * ty.w1 * wx0 + e[k] * ty.w1 * wx1;
            }
        }
    }
}

/// Pillow's `precompute_coeffs` for the BOX filter followed by
/// `normalize_coeffs_8bpc`: per output sample the first input index and the
/// 22-bit fixed-point weights.
fn pil_box_coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    const PRECISION_BITS: u32 = 32 - 8 - 2;
    let support_unit = 0.5;
    // Pillow computes (in1 - in0) in float before widening.
    let scale = f64::from(in_size as f32) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support_unit * filterscale;
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
            let count = (xmax - xmin).max(0);
            let mut k: Vec<f64> = (0..count)
                .map(|x| {
                    let arg = ((x + xmin) as f64 - center + 0.5) * ss;
                    if arg > -0.5 && arg <= 0.5 { 1.0 } else { 0.0 }
                })
                .collect();
            let ww: f64 = k.iter().sum();
            if ww != 0.0 {
                for v in &mut k {
                    *v /= ww;
                }
            }
            let fixed = k.into_iter().map(|v| (0.5 + v * f64::from(1u32 << PRECISION_BITS)) as i32).collect();
            (xmin as usize, fixed)
        })
        .collect()
}

fn pil_clip8(acc: i32) -> u8 {
    (acc >> 22).clamp(0, 255) as u8
}

/// `PIL.Image.resize((out_w, out_h), Image.BOX)` of an 8-bit image: horizontal
/// pass first, rounded to 8 bits, then the vertical pass.
pub(crate) fn pil_resize_box(
    src: &[u8],
    h: usize,
    w: usize,
    c: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<u8> {
    let half = 1i32 << 21;
    let mut tmp;
    let mut cur_w = w;
    let mut cur: &[u8] = src;
    if out_w != w {
        let coeffs = pil_box_coeffs(w, out_w);
        tmp = vec![0u8; h * out_w * c];
        for y in 0..h {
            for (xx, (xmin, k)) in coeffs.iter().enumerate() {
                for ch in 0..c {
                    let mut acc = half;
                    for (j, &kj) in k.iter().enumerate() {
                        acc += i32::from(src[(y * w + xmin + j) * c + ch]) * kj;
                    }
                    tmp[(y * out_w + xx) * c + ch] = pil_clip8(acc);
                }
            }
        }
        cur = &tmp;
        cur_w = out_w;
    }
    if out_h == h {
        return cur.to_vec();
    }
    let coeffs = pil_box_coeffs(h, out_h);
    let mut out = vec![0u8; out_h * cur_w * c];
    for (yy, (ymin, k)) in coeffs.iter().enumerate() {
        for x in 0..cur_w {
            for ch in 0..c {
                let mut acc = half;
                for (j, &kj) in k.iter().enumerate() {
                    acc += i32::from(cur[((ymin + j) * cur_w + x) * c + ch]) * kj;
                }
                out[(yy * cur_w + x) * c + ch] = pil_clip8(acc);
            }
        }
    }
    out
}

/// OpenCV's `saturate_cast<int>(double)`: round half to even.
fn cv_round(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// Per output column (or row) of OpenCV's INTER_LINEAR: source index and the
/// two 11-bit fixed-point weights, after OpenCV's edge clamping.
fn cv_linear_coeffs(src_n: usize, dst_n: usize, scale: f64) -> (Vec<usize>, Vec<[i32; 2]>, usize) {
    let mut ofs = Vec::with_capacity(dst_n);
    let mut alpha = Vec::with_capacity(dst_n);
    let mut xmax = dst_n;
    for d in 0..dst_n {
        let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let mut s = f.floor() as i64;
        let mut frac = f - s as f32;
        if s < 0 {
            frac = 0.0;
            s = 0;
        }
        if s + 1 >= src_n as i64 {
            xmax = xmax.min(d);
            if s >= src_n as i64 - 1 {
                frac = 0.0;
                s = src_n as i64 - 1;
            }
        }
        ofs.push(s as usize);
        let a0 = cv_round(f64::from((1.0f32 - frac) * 2048.0)) as i32;
        let a1 = cv_round(f64::from(frac * 2048.0)) as i32;
        alpha.push([a0, a1]);
    }
    (ofs, alpha, xmax)
}

/// `cv2.resize(src, (0, 0), fx=f, fy=f)` with the default INTER_LINEAR on an
/// 8-bit image: output size `cvRound(n·f)`, 11-bit weights, and OpenCV's
/// fixed-point vertical pass. Returns (pixels, height, width).
pub(crate) fn cv_resize_linear_u8(
    src: &[u8],
    h: usize,
    w: usize,
    c: usize,
    f: f64,
) -> (Vec<u8>, usize, usize) {
    let dw = cv_round(w as f64 * f).max(1) as usize;
    let dh = cv_round(h as f64 * f).max(1) as usize;
    let scale = 1.0 / f;
    let (xofs, xalpha, xmax) = cv_linear_coeffs(w, dw, scale);
    let horizontal = |row: usize, buf: &mut [i32]| {
        let s = &src[row * w * c..(row + 1) * w * c];
        for dx in 0..dw {
            let sx = xofs[dx];
            for k in 0..c {
                buf[dx * c + k] = if dx < xmax {
                    i32::from(s[sx * c + k]) * xalpha[dx][0] + i32::from(s[(sx + 1) * c + k]) * xalpha[dx][1]
                } else {
                    i32::from(s[sx * c + k]) * 2048
                };
            }
        }
    };
    let mut out = vec![0u8; dh * dw * c];
    let mut r0 = vec![0i32; dw * c];
    let mut r1 = vec![0i32; dw * c];
    for dy in 0..dh {
        let fy = ((dy as f64 + 0.5) * scale - 0.5) as f32;
        let sy = fy.floor() as i64;
        let frac = fy - sy as f32;
        let b0 = cv_round(f64::from((1.0f32 - frac) * 2048.0)) as i32;
        let b1 = cv_round(f64::from(frac * 2048.0)) as i32;
        let clamp = |v: i64| v.clamp(0, h as i64 - 1) as usize;
        horizontal(clamp(sy), &mut r0);
        horizontal(clamp(sy + 1), &mut r1);
        for i in 0..dw * c {
            let v = (((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2;
            out[dy * dw * c + i] = v.clamp(0, 255) as u8;
        }
    }
    (out, dh, dw)
}

/// ImageMagick 6 (Q16, non-HDRI) `MotionBlurImage(radius, sigma, angle)` on an
/// 8-bit image read from and written back to an 8-bit PNG: a one-sided
/// Gaussian of `2·ceil(radius)+1` taps, tap `i` reading the pixel
/// `(ceil(i·cos a − 0.5), ceil(i·sin a − 0.5))` away with edge virtual pixels,
/// summed in 16-bit quantum units and rounded (`ClampToQuantum`).
pub(crate) fn motion_blur_im6(
    src: &[u8],
    h: usize,
    w: usize,
    c: usize,
    radius: f64,
    sigma: f64,
    angle: f64,
) -> Vec<u8> {
    const EPS: f64 = 1.0e-12;
    const SQ2PI: f64 = 2.506_628_274_631_000_241_612_355_239_340_104_162_693_023_681_640_62;
    const QUANTUM_RANGE: f64 = 65535.0;
    // GetOptimalKernelWidth1D for a positive radius (every caller passes one).
    let width = (2.0 * radius.max(EPS).ceil() + 1.0) as usize;
    let s = if sigma.abs() < EPS { EPS } else { sigma };
    let mut kernel: Vec<f64> =
        (0..width).map(|i| (-((i * i) as f64) / (2.0 * s * s)).exp() / (SQ2PI * s)).collect();
    let normalize: f64 = kernel.iter().fold(0.0, |a, &k| a + k);
    for k in &mut kernel {
        *k /= normalize;
    }
    let rad = std::f64::consts::PI * angle / 180.0;
    let px = width as f64 * rad.sin();
    let py = width as f64 * rad.cos();
    let hyp = px.hypot(py);
    let offsets: Vec<(isize, isize)> = (0..width)
        .map(|i| {
            let ox = ((i as f64 * py) / hyp - 0.5).ceil() as isize;
            let oy = ((i as f64 * px) / hyp - 0.5).ceil() as isize;
            (ox, oy)
        })
        .collect();
    // Edge-replicated copy in 16-bit quantum units, so taps need no border logic.
    let pad_x = offsets.iter().map(|o| o.0.unsigned_abs()).max().unwrap_or(0);
    let pad_y = offsets.iter().map(|o| o.1.unsigned_abs()).max().unwrap_or(0);
    let (ph, pw) = (h + 2 * pad_y, w + 2 * pad_x);
    let mut padded = vec![0.0f64; ph * pw * c];
    for y in 0..ph {
        let sy = Boundary::Nearest.index(y as isize - pad_y as isize, h);
        for x in 0..pw {
            let sx = Boundary::Nearest.index(x as isize - pad_x as isize, w);
            for ch in 0..c {
                padded[(y * pw + x) * c + ch] = f64::from(u32::from(src[(sy * w + sx) * c + ch]) * 257);
            }
        }
    }
    let taps: Vec<(usize, f64)> = kernel
        .iter()
        .zip(&offsets)
        .map(|(&k, &(ox, oy))| {
            ((((pad_y as isize + oy) * pw as isize + pad_x as isize + ox) as usize) * c, k)
        })
        .collect();
    let mut out = vec![0u8; src.len()];
    let mut q = vec![0.0f64; c];
    for y in 0..h {
        for x in 0..w {
            q.fill(0.0);
            let base = (y * pw + x) * c;
            for &(off, k) in &taps {
                for (qc, &v) in q.iter_mut().zip(&padded[base + off..base + off + c]) {
                    *qc += k * v;
                }
            }
            for (ch, &qc) in q.iter().enumerate() {
                let quantum: u32 = if qc <= 0.0 {
                    0
                } else if qc >= QUANTUM_RANGE {
                    65535
                } else {
                    (qc + 0.5) as u32
                };
                // The 8-bit PNG that Wand hands back holds quantum / 257 truncated
                // (measured against ImageMagick 6.9.11-60 Q16: exact at every pixel).
                out[(y * w + x) * c + ch] = (quantum / 257) as u8;
            }
        }
    }
    out
}

/// scikit-image `rgb2hsv` of one pixel in [0, 1] (blue wins ties, then green).
pub(crate) fn rgb2hsv(r: f64, g: f64, b: f64) -> [f64; 3] {
    let v = r.max(g).max(b);
    let delta = v - r.min(g).min(b);
    let s = if delta == 0.0 { 0.0 } else { delta / v };
    let mut h = if b == v {
        4.0 + (r - g) / delta
    } else if g == v {
        2.0 + (b - r) / delta
    } else {
        (g - b) / delta
    };
    h = (h / 6.0).rem_euclid(1.0);
    if delta == 0.0 || h.is_nan() {
        h = 0.0;
    }
    [h, if s.is_nan() { 0.0 } else { s }, v]
}

/// scikit-image `hsv2rgb` of one pixel.
pub(crate) fn hsv2rgb(h: f64, s: f64, v: f64) -> [f64; 3] {
    let hi = (h * 6.0).floor();
    let f = h * 6.0 - hi;
    let p = v * (1.0 - s);
    let q = v * (1.0 - f * s);
    let t = v * (1.0 - (1.0 - f) * s);
    // numpy's astype(uint8) of the float sector, then % 6.
    match (hi as u8) % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arange_lengths_and_ends_match_numpy() {
        let stops = [1.06, 1.11, 1.16, 1.21, 1.26];
        let lens: Vec<usize> = stops.iter().map(|&s| arange_zooms(s).len()).collect();
        assert_eq!(lens, vec![7, 12, 16, 21, 26]);
        let ends = [1.06, 1.11, 1.15, 1.20, 1.25];
        for (&s, &e) in stops.iter().zip(&ends) {
            let z = arange_zooms(s);
            assert!((z[z.len() - 1] - e).abs() < 1e-9, "stop {s}: last {}", z[z.len() - 1]);
            assert_eq!(z[0], 1.0);
        }
    }

    #[test]
    fn boundary_modes_extend_as_documented() {
        let idx = |m: Boundary| -> Vec<usize> { (-3..6).map(|i| m.index(i, 3)).collect() };
        assert_eq!(idx(Boundary::Nearest), vec![0, 0, 0, 0, 1, 2, 2, 2, 2]);
        assert_eq!(idx(Boundary::Reflect), vec![2, 1, 0, 0, 1, 2, 2, 1, 0]);
        assert_eq!(idx(Boundary::Reflect101), vec![1, 2, 1, 0, 1, 2, 1, 0, 1]);
    }

    #[test]
    fn numpy_sum_matches_plain_sum_closely() {
        let a: Vec<f64> = (0..300).map(|i| (i as f64 * 0.37).sin()).collect();
        let plain: f64 = a.iter().sum();
        assert!((numpy_sum(&a) - plain).abs() < 1e-12);
        assert_eq!(numpy_sum(&[1.0, 2.0, 3.0]), 6.0);
    }

    #[test]
    fn gaussian_kernel_is_normalised_and_sized_like_scipy() {
        let k = gaussian_kernel(1.0, 4.0);
        assert_eq!(k.len(), 9);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(gaussian_kernel(0.4, 4.0).len(), 5);
        assert_eq!(gaussian_kernel(6.4, 3.0).len(), 39);
    }

    #[test]
    fn gaussian_filter_keeps_constant_image() {
        let mut d = vec![0.25; 8 * 9 * 3];
        gaussian_filter(&mut d, 8, 9, 3, 1.3, 4.0, Boundary::Nearest);
        assert!(d.iter().all(|&v| (v - 0.25).abs() < 1e-12));
    }

    #[test]
    fn zoom_taps_map_corners_to_corners() {
        let t = zoom_taps(31, 33);
        let first = t[0].unwrap();
        assert_eq!((first.i0, first.w0), (0, 1.0));
        let last = t[32].unwrap();
        assert_eq!(last.i0, 30);
        assert!(last.w1.abs() < 1e-12);
    }

    #[test]
    fn pil_box_downscale_by_two_averages_pairs() {
        // 4x1 single channel to 2x1: (10+20)/2 = 15, (30+41)/2 = 35.5 -> 36 (round half up).
        let out = pil_resize_box(&[10, 20, 30, 41], 1, 4, 1, 1, 2);
        assert_eq!(out, vec![15, 36]);
    }

    #[test]
    fn cv_resize_by_fifth_samples_pixel_centres() {
        let w = 20;
        let h = 10;
        let src: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
        let (out, dh, dw) = cv_resize_linear_u8(&src, h, w, 1, 0.2);
        assert_eq!((dh, dw), (2, 4));
        for y in 0..dh {
            for x in 0..dw {
                assert_eq!(out[y * dw + x], src[(5 * y + 2) * w + 5 * x + 2]);
            }
        }
    }

    #[test]
    fn motion_blur_of_flat_image_is_flat() {
        let src = vec![77u8; 10 * 12 * 3];
        let out = motion_blur_im6(&src, 10, 12, 3, 6.0, 2.0, 30.0);
        assert!(out.iter().all(|&v| v == 77));
    }

    #[test]
    fn motion_blur_at_zero_degrees_reads_to_the_right() {
        // A single bright column at x = 5; blur along +x pulls it into x <= 5 only.
        let (h, w) = (3, 12);
        let mut src = vec![0u8; h * w];
        for y in 0..h {
            src[y * w + 5] = 255;
        }
        let out = motion_blur_im6(&src, h, w, 1, 3.0, 1.0, 0.0);
        for y in 0..h {
            assert!(out[y * w + 5] > 0 && out[y * w + 4] > 0);
            assert_eq!(out[y * w + 6], 0);
            assert!(out[y * w + 5] > out[y * w + 4]);
        }
    }

    #[test]
    fn hsv_round_trip_recovers_rgb() {
        for &(r, g, b) in
            &[(0.2, 0.5, 0.9), (0.9, 0.1, 0.4), (0.3, 0.3, 0.3), (0.0, 0.0, 0.0), (1.0, 0.5, 0.0)]
        {
            let [h, s, v] = rgb2hsv(r, g, b);
            let [r2, g2, b2] = hsv2rgb(h, s, v);
            assert!((r - r2).abs() < 1e-12 && (g - g2).abs() < 1e-12 && (b - b2).abs() < 1e-12);
        }
    }
}
