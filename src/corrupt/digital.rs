//! Digital and geometric corruptions: brightness, contrast, saturate,
//! elastic transform, pixelate and JPEG.

use std::cell::RefCell;

use super::filters::{Boundary, gaussian_filter, hsv2rgb, pil_resize_box, rgb2hsv};
use super::noise::to_level;
use super::rng::CorruptRng;
use super::{CorruptError, Result, Rgb};

const BRIGHTNESS: [f64; 5] = [0.05, 0.1, 0.15, 0.2, 0.3];
const CONTRAST: [f64; 5] = [0.75, 0.5, 0.4, 0.3, 0.15];
/// (saturation factor, saturation offset)
const SATURATE: [(f64, f64); 5] = [(0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)];
/// Fractions of the image side: (displacement scale, displacement smoothing
/// sigma, affine jitter).
const ELASTIC: [(f64, f64, f64); 5] =
    [(0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)];
const PIXELATE: [f64; 5] = [0.95, 0.9, 0.85, 0.75, 0.65];
const JPEG_QUALITY: [i32; 5] = [80, 65, 58, 50, 40];

/// HSV round trip with scikit-image's formulas, editing (h, s, v) in place.
fn hsv_round_trip(img: &Rgb, edit: impl Fn(&mut [f64; 3])) -> Vec<u8> {
    img.px
        .chunks_exact(3)
        .flat_map(|p| {
            let [r, g, b] = [p[0], p[1], p[2]].map(|v| f64::from(v) / 255.0);
            let mut hsv = rgb2hsv(r, g, b);
            edit(&mut hsv);
            hsv2rgb(hsv[0], hsv[1], hsv[2]).map(to_level)
        })
        .collect()
}

pub(crate) fn brightness(img: &Rgb, s: usize) -> Vec<u8> {
    let c = BRIGHTNESS[s];
    hsv_round_trip(img, |hsv| hsv[2] = (hsv[2] + c).clamp(0.0, 1.0))
}

pub(crate) fn saturate(img: &Rgb, s: usize) -> Vec<u8> {
    let (factor, offset) = SATURATE[s];
    hsv_round_trip(img, |hsv| hsv[1] = (hsv[1] * factor + offset).clamp(0.0, 1.0))
}

/// `(x − mean)·c + mean` with the per-channel mean over the whole image.
pub(crate) fn contrast(img: &Rgb, s: usize) -> Vec<u8> {
    let c = CONTRAST[s];
    let n = (img.h * img.w) as f64;
    let mut means = [0.0f64; 3];
    for p in img.px.chunks_exact(3) {
        for (m, &v) in means.iter_mut().zip(p) {
            *m += f64::from(v) / 255.0;
        }
    }
    for m in &mut means {
        *m /= n;
    }
    img.px
        .chunks_exact(3)
        .flat_map(|p| [0, 1, 2].map(|k| to_level((f64::from(p[k]) / 255.0 - means[k]) * c + means[k])))
        .collect()
}

/// `PIL.Image.resize` with BOX to `int(side·c)` and back.
pub(crate) fn pixelate(img: &Rgb, s: usize) -> Vec<u8> {
    let c = PIXELATE[s];
    let (sh, sw) = (((img.h as f64) * c) as usize, ((img.w as f64) * c) as usize);
    let small = pil_resize_box(img.px, img.h, img.w, 3, sh.max(1), sw.max(1));
    pil_resize_box(&small, sh.max(1), sw.max(1), 3, img.h, img.w)
}

thread_local! {
    static JPEG: RefCell<Option<(turbojpeg::Compressor, turbojpeg::Decompressor)>> = const { RefCell::new(None) };
}

fn jpeg_err(e: turbojpeg::Error) -> CorruptError {
    CorruptError::Jpeg(e.to_string())
}

/// Encodes with libjpeg-turbo at `quality` (standard tables scaled by quality,
/// 4:2:0, accurate DCT: PIL's defaults) and decodes again.
pub(crate) fn jpeg_round_trip(px: &[u8], h: usize, w: usize, quality: i32) -> Result<Vec<u8>> {
    jpeg_codec(px, h, w, quality).map(|(_, decoded)| decoded)
}

/// The JPEG file and its decoded pixels.
fn jpeg_codec(px: &[u8], h: usize, w: usize, quality: i32) -> Result<(Vec<u8>, Vec<u8>)> {
    JPEG.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some((
                turbojpeg::Compressor::new().map_err(jpeg_err)?,
                turbojpeg::Decompressor::new().map_err(jpeg_err)?,
            ));
        }
        let Some((enc, dec)) = slot.as_mut() else {
            return Err(CorruptError::Jpeg("codec initialisation failed".into()));
        };
        enc.set_quality(quality).map_err(jpeg_err)?;
        enc.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(jpeg_err)?;
        let image = turbojpeg::Image {
            pixels: px,
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        let bytes = enc.compress_to_vec(image).map_err(jpeg_err)?;
        let mut out = vec![0u8; h * w * 3];
        let target = turbojpeg::Image {
            pixels: &mut out[..],
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        dec.decompress(&bytes, target).map_err(jpeg_err)?;
        Ok((bytes, out))
    })
}

pub(crate) fn jpeg_compression(img: &Rgb, s: usize) -> Result<Vec<u8>> {
    jpeg_round_trip(img.px, img.h, img.w, JPEG_QUALITY[s])
}

/// `cv2.getAffineTransform`: the 2×3 matrix taking `src` points to `dst`
/// points (x, y), by Gaussian elimination with partial pivoting.
fn affine_from_points(src: [[f32; 2]; 3], dst: [[f32; 2]; 3]) -> [f64; 6] {
    let mut m = [0.0f64; 6];
    for out in 0..2 {
        let mut a = [[0.0f64; 4]; 3];
        for i in 0..3 {
            a[i] = [f64::from(src[i][0]), f64::from(src[i][1]), 1.0, f64::from(dst[i][out])];
        }
        for col in 0..3 {
            let pivot = (col..3).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs())).unwrap_or(col);
            a.swap(col, pivot);
            for row in col + 1..3 {
                let f = if a[col][col] != 0.0 { a[row][col] / a[col][col] } else { 0.0 };
                let pivot_row = a[col];
                for (v, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * p;
                }
            }
        }
        let mut sol = [0.0f64; 3];
        for row in (0..3).rev() {
            let mut v = a[row][3];
            for k in row + 1..3 {
                v -= a[row][k] * sol[k];
            }
            sol[row] = if a[row][row] != 0.0 { v / a[row][row] } else { 0.0 };
        }
        m[out * 3..out * 3 + 3].copy_from_slice(&sol);
    }
    m
}

/// `cv2.warpAffine(src, M, (W, H), INTER_LINEAR, BORDER_REFLECT_101)` on a
/// float32 HWC image: the inverse map in OpenCV's 10-bit fixed point, source
/// positions quantised to 1/32 pixel, float32 bilinear weights.
fn warp_affine(src: &[f32], h: usize, w: usize, c: usize, m: [f64; 6]) -> Vec<f32> {
    const AB_BITS: i32 = 10;
    const AB_SCALE: f64 = 1024.0;
    const INTER_BITS: i32 = 5;
    const ROUND_DELTA: i64 = 16;
    let mut inv = m;
    let det = m[0] * m[4] - m[1] * m[3];
    let d = if det != 0.0 { 1.0 / det } else { 0.0 };
    inv[0] = m[4] * d;
    inv[4] = m[0] * d;
    inv[1] = -m[1] * d;
    inv[3] = -m[3] * d;
    inv[2] = -inv[0] * m[2] - inv[1] * m[5];
    inv[5] = -inv[3] * m[2] - inv[4] * m[5];
    let round = |v: f64| v.round_ties_even() as i64;
    let adelta: Vec<i64> = (0..w).map(|x| round(inv[0] * x as f64 * AB_SCALE)).collect();
    let bdelta: Vec<i64> = (0..w).map(|x| round(inv[3] * x as f64 * AB_SCALE)).collect();
    let mut out = vec![0f32; src.len()];
    for y in 0..h {
        let x0 = round((inv[1] * y as f64 + inv[2]) * AB_SCALE) + ROUND_DELTA;
        let y0 = round((inv[4] * y as f64 + inv[5]) * AB_SCALE) + ROUND_DELTA;
        for x in 0..w {
            let xf = (x0 + adelta[x]) >> (AB_BITS - INTER_BITS);
            let yf = (y0 + bdelta[x]) >> (AB_BITS - INTER_BITS);
            let (sx, sy) = ((xf >> INTER_BITS) as isize, (yf >> INTER_BITS) as isize);
            let tx = (xf & 31) as f32 * (1.0 / 32.0);
            let ty = (yf & 31) as f32 * (1.0 / 32.0);
            let wts = [(1.0 - ty) * (1.0 - tx), (1.0 - ty) * tx, ty * (1.0 - tx), ty * tx];
            let xs = [Boundary::Reflect101.index(sx, w), Boundary::Reflect101.index(sx + 1, w)];
            let ys = [Boundary::Reflect101.index(sy, h), Boundary::Reflect101.index(sy + 1, h)];
            for k in 0..c {
                let v = |yy: usize, xx: usize| src[(ys[yy] * w + xs[xx]) * c + k];
                out[(y * w + x) * c + k] =
                    v(0, 0) * wts[0] + v(0, 1) * wts[1] + v(1, 0) * wts[2] + v(1, 1) * wts[3];
            }
        }
    }
    out
}

/// scipy's `map_coordinate` for `mode='reflect'`: folds an out-of-range
/// coordinate back (half-sample symmetric), including its quirk of returning
/// `−in − 1` for coordinates in (−len, 0).
fn reflect_coordinate(v: f64, len: usize) -> f64 {
    let n = len as f64;
    if len <= 1 {
        return 0.0;
    }
    let sz2 = 2.0 * n;
    if v < 0.0 {
        let mut v = v;
        if v < -sz2 {
            v += sz2 * ((-v / sz2) as i64) as f64;
        }
        if v < -n { v + sz2 } else { (if v > -1e-15 { 1e-15 } else { -v }) - 1.0 }
    } else if v > n - 1.0 {
        let mut v = v - sz2 * ((v / sz2) as i64) as f64;
        if v >= n {
            v = sz2 - v - 1.0;
        }
        v
    } else {
        v
    }
}

/// Order-1 taps of one coordinate for `map_coordinates(mode='reflect')`.
fn reflect_taps(v: f64, len: usize) -> ([usize; 2], [f64; 2]) {
    let cc = reflect_coordinate(v, len);
    let start = cc.floor();
    let t = cc - start;
    let w0 = 1.0 - t;
    let s = start as isize;
    ([Boundary::Reflect.index(s, len), Boundary::Reflect.index(s + 1, len)], [w0, 1.0 - w0])
}

/// Elastic transform: a random affine warp of three anchor points, then a
/// smoothed random displacement field sampled bilinearly (scipy
/// `map_coordinates`, order 1, mode `reflect`). All three parameters are
/// fractions of the image side.
pub(crate) fn elastic_transform(img: &Rgb, s: usize, rng: &mut CorruptRng) -> Vec<u8> {
    let (h, w) = (img.h, img.w);
    let side = h.min(w) as f64;
    let (alpha_f, sigma_f, jitter_f) = ELASTIC[s];
    let (alpha, sigma, jitter) = (side * alpha_f, side * sigma_f, side * jitter_f);
    let image: Vec<f32> = img.px.iter().map(|&v| f32::from(v) / 255.0).collect();

    // The reference builds the anchors from (rows, cols) but hands them to
    // OpenCV as (x, y); for square images the two agree.
    let center = [(h / 2) as f32, (w / 2) as f32];
    let sq = (h.min(w) / 3) as f32;
    let pts1 = [
        [center[0] + sq, center[1] + sq],
        [center[0] + sq, center[1] - sq],
        [center[0] - sq, center[1] - sq],
    ];
    let mut pts2 = pts1;
    for p in &mut pts2 {
        for v in p.iter_mut() {
            *v += rng.uniform_range(-jitter, jitter) as f32;
        }
    }
    let warped = warp_affine(&image, h, w, 3, affine_from_points(pts1, pts2));

    let mut field = || {
        let mut f: Vec<f64> = (0..h * w).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
        gaussian_filter(&mut f, h, w, 1, sigma, 3.0, Boundary::Reflect);
        f.into_iter().map(|v| (v * alpha) as f32).collect::<Vec<f32>>()
    };
    let dx = field();
    let dy = field();

    let mut out = Vec::with_capacity(h * w * 3);
    for y in 0..h {
        for x in 0..w {
            let (ry, wy) = reflect_taps(y as f64 + f64::from(dy[y * w + x]), h);
            let (rx, wx) = reflect_taps(x as f64 + f64::from(dx[y * w + x]), w);
            for k in 0..3 {
                let v = |a: usize, b: usize| f64::from(warped[(ry[a] * w + rx[b]) * 3 + k]);
                let t = v(0, 0) * wy[0] * wx[0]
                    + v(0, 1) * wy[0] * wx[1]
                    + v(1, 0) * wy[1] * wx[0]
                    + v(1, 1) * wy[1] * wx[1];
                out.push(((t as f32).clamp(0.0, 1.0) * 255.0) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(px: &[u8], h: usize, w: usize) -> Rgb<'_> {
        Rgb { h, w, px }
    }

    #[test]
    fn contrast_matches_the_formula_computed_independently() {
        let px: Vec<u8> = (0..4 * 4 * 3).map(|i| (i * 37 % 256) as u8).collect();
        for (s, &factor) in CONTRAST.iter().enumerate() {
            let out = contrast(&rgb(&px, 4, 4), s);
            for k in 0..3 {
                let vals: Vec<f64> = px.iter().skip(k).step_by(3).map(|&v| f64::from(v)).collect();
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                for (i, &v) in vals.iter().enumerate() {
                    let expected = ((v - mean) * factor + mean).clamp(0.0, 255.0);
                    let got = f64::from(out[i * 3 + k]);
                    // Truncation: got = floor(expected) up to one level where the
                    // two roundings of the same real number disagree.
                    assert!(
                        (expected - got) >= -1e-9 && (expected - got) < 1.0 + 1e-9,
                        "{got} vs {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn brightness_on_gray_adds_to_value() {
        let px = vec![100u8, 100, 100, 250, 250, 250];
        let out = brightness(&rgb(&px, 1, 2), 4);
        // V = 100/255 + 0.3 -> 176.5 -> 176; 250/255 + 0.3 clips to 1 -> 255.
        assert_eq!(out, vec![176, 176, 176, 255, 255, 255]);
    }

    #[test]
    fn brightness_keeps_hue_and_saturation_of_a_color() {
        // Pure-ish red (200, 50, 50): V 200/255 -> +0.1 -> 225.5; S and H kept, so
        // G = B = V·(1 − S) = (225.5/255)·(1 − 150/200)·255 = 56.375 -> 56.
        let out = brightness(&rgb(&[200, 50, 50], 1, 1), 1);
        assert_eq!(out, vec![225, 56, 56]);
    }

    #[test]
    fn saturate_factor_zero_point_one_nearly_grays_out() {
        let out = saturate(&rgb(&[200, 50, 50], 1, 1), 1);
        // S = 0.75·0.1 = 0.075: G = B = 200·(1 − 0.075) = 185.
        assert_eq!(out, vec![200, 185, 185]);
    }

    #[test]
    fn pixelate_box_average_by_hand() {
        // Pillow's BOX weights an input pixel 1 when its centre falls inside the
        // output pixel's footprint. 10 -> 6 columns: footprints of width 10/6
        // centred at 0.83, 2.5, 4.17, 5.83, 7.5, 9.17 hold the centres of inputs
        // {0,1}, {2}, {3,4}, {5,6}, {7}, {8,9}; means round half up.
        let v = [0u8, 150, 30, 40, 41, 100, 200, 7, 9, 10];
        let px: Vec<u8> = v.iter().flat_map(|&x| [x, x, x]).collect();
        let small = pil_resize_box(&px, 1, 10, 3, 1, 6);
        let firsts: Vec<u8> = small.chunks_exact(3).map(|p| p[0]).collect();
        assert_eq!(firsts, vec![75, 30, 41, 150, 7, 10]);
        // Back up to 10: footprints of width 0.6 pick the small pixel under each
        // output centre, floor((x + 0.5)·0.6).
        let big = pil_resize_box(&small, 1, 6, 3, 1, 10);
        let picks = [0usize, 0, 1, 2, 2, 3, 3, 4, 5, 5];
        let expect: Vec<u8> = picks.iter().map(|&i| firsts[i]).collect();
        let got: Vec<u8> = big.chunks_exact(3).map(|p| p[0]).collect();
        assert_eq!(got, expect);
        // pixelate at severity 5 (0.65) on a 10-pixel row is exactly this pair of resizes.
        assert_eq!(pixelate(&rgb(&px, 1, 10), 4), big);
    }

    #[test]
    fn pixelate_of_flat_image_is_identity() {
        let px = vec![123u8; 32 * 32 * 3];
        for s in 0..5 {
            assert_eq!(pixelate(&rgb(&px, 32, 32), s), px);
        }
    }

    #[test]
    fn affine_from_identical_points_is_identity() {
        let p = [[16.0f32, 16.0], [16.0, 5.0], [5.0, 5.0]];
        let m = affine_from_points(p, p);
        let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        for (a, b) in m.iter().zip(id) {
            assert!((a - b).abs() < 1e-12);
        }
        let src: Vec<f32> = (0..8 * 8).map(|i| i as f32).collect();
        assert_eq!(warp_affine(&src, 8, 8, 1, m), src);
    }

    #[test]
    fn reflect_coordinate_follows_scipy() {
        assert_eq!(reflect_coordinate(3.0, 5), 3.0);
        assert!((reflect_coordinate(-1.3, 5) - 0.3).abs() < 1e-12);
        assert!((reflect_coordinate(5.3, 5) - 3.7).abs() < 1e-12);
        // Coordinates in (-1, 0) stay negative and read sample 0 twice.
        let (idx, _) = reflect_taps(-0.3, 5);
        assert_eq!(idx, [0, 0]);
    }

    /// Runs `script` under the test Python with `input` on stdin and returns stdout, or `None`
    /// (the skip recorded) when no Python with Pillow is available.
    fn with_pillow(script: &str, input: &[u8]) -> Option<Vec<u8>> {
        use crate::prerequisites::{Installed, require, test_python};
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let python = require(test_python(&["PIL"]), Installed::ByMakeTest)?;
        let mut child = Command::new(python)
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "the Pillow script failed");
        Some(out.stdout)
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }

    #[test]
    fn jpeg_decodes_alike_elsewhere_and_loses_more_at_lower_quality() {
        let img = super::super::test_support::test_image(32, 32, 4);
        let mut last = f64::INFINITY;
        for &q in &JPEG_QUALITY {
            let (bytes, ours) = jpeg_codec(img.data(), 32, 32, q).unwrap();
            let mut dec = jpeg_decoder::Decoder::new(&bytes[..]);
            let other = dec.decode().unwrap();
            let info = dec.info().unwrap();
            assert_eq!((info.width, info.height), (32, 32));
            // Another decoder (different IDCT and upsampling) agrees to a few levels.
            let max_diff = ours.iter().zip(&other).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
            assert!(max_diff <= 4, "quality {q}: decoders differ by {max_diff}");
            let p = psnr(img.data(), &ours);
            assert!(p > 25.0 && p < last + 0.5, "quality {q}: PSNR {p} after {last}");
            last = p;
        }
    }

    #[test]
    fn jpeg_matches_pillow_bit_for_bit() {
        let script = "import sys, io\nfrom PIL import Image\nd = sys.stdin.buffer.read()\nout = b''\nfor q in (80, 65, 58, 50, 40):\n    b = io.BytesIO()\n    Image.frombytes('RGB', (32, 32), d).save(b, 'JPEG', quality=q)\n    out += Image.open(io.BytesIO(b.getvalue())).convert('RGB').tobytes()\nsys.stdout.buffer.write(out)\n";
        let img = super::super::test_support::test_image(32, 32, 5);
        let Some(pil) = with_pillow(script, img.data()) else { return };
        for (i, &q) in JPEG_QUALITY.iter().enumerate() {
            let ours = jpeg_round_trip(img.data(), 32, 32, q).unwrap();
            assert_eq!(&pil[i * 3072..(i + 1) * 3072], &ours[..], "quality {q} differs from Pillow");
        }
    }

    #[test]
    fn pixelate_matches_pillow_bit_for_bit() {
        let script = "import sys\nfrom PIL import Image\nd = sys.stdin.buffer.read()\nout = b''\nfor c in (0.95, 0.9, 0.85, 0.75, 0.65):\n    x = Image.frombytes('RGB', (32, 32), d)\n    x = x.resize((int(32 * c), int(32 * c)), Image.BOX).resize((32, 32), Image.BOX)\n    out += x.tobytes()\nsys.stdout.buffer.write(out)\n";
        let img = super::super::test_support::test_image(32, 32, 6);
        let Some(pil) = with_pillow(script, img.data()) else { return };
        for s in 0..5 {
            let ours = pixelate(&rgb(img.data(), 32, 32), s);
            assert_eq!(&pil[s * 3072..(s + 1) * 3072], &ours[..], "severity {} differs from Pillow", s + 1);
        }
    }
}
