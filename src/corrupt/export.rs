//! Files: the CIFAR-10-C layout (`<name>.npy`, uint8 `[5·N, H, W, C]`, severity
//! `s` in rows `(s−1)·N .. s·N`, plus `labels.npy`), a minimal `.npy` reader and
//! writer for `uint8` arrays, and the preview grid PNG.
//!
//! Every file is written to `<path>.tmp-<pid>` in the same folder, synced and
//! renamed over the target, so a reader never sees a half-written file.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{CorruptError, Corruption, FrostTextures, Image, Result, corrupt, corrupt_many, image_seed};

/// A `uint8` array read from a `.npy` file (C order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CorruptError + '_ {
    move |source| CorruptError::Io { path: path.to_path_buf(), source }
}

/// A file being written under a temporary name next to its target.
struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    fn create(target: &Path) -> Result<Self> {
        let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(format!(".tmp-{}", std::process::id()));
        let tmp = target.with_file_name(name);
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        Ok(Self { target: target.to_path_buf(), tmp, out: Some(BufWriter::new(file)) })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self.out.as_mut() {
            Some(out) => out.write_all(bytes).map_err(io_err(&self.tmp)),
            None => Ok(()),
        }
    }

    fn commit(mut self) -> Result<()> {
        if let Some(out) = self.out.take() {
            let file = out.into_inner().map_err(|e| io_err(&self.tmp)(e.into_error()))?;
            file.sync_all().map_err(io_err(&self.tmp))?;
        }
        fs::rename(&self.tmp, &self.target).map_err(|e| {
            let _ = fs::remove_file(&self.tmp);
            io_err(&self.target)(e)
        })
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Still holding the writer means commit never ran: drop the partial file.
        if self.out.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The `.npy` v1.0 header of a C-order `uint8` array, padded so the data starts
/// on a 64-byte boundary.
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut dict = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a C-order `uint8` array as `.npy` (atomically).
pub fn write_npy_u8(path: &Path, shape: &[usize], data: &[u8]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(CorruptError::Mismatch(format!("shape {shape:?} holds {n} values, got {}", data.len())));
    }
    let mut f = AtomicFile::create(path)?;
    f.write(&npy_header(shape))?;
    f.write(data)?;
    f.commit()
}

/// Reads a `uint8` `.npy` file (format versions 1–3, C order).
pub fn read_npy_u8(path: &Path) -> Result<NpyArray> {
    let bad = |reason: &str| CorruptError::Npy { path: path.to_path_buf(), reason: reason.to_string() };
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(io_err(path))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => return Err(bad("unsupported format version")),
    };
    let header = bytes.get(start..start + header_len).ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[at..].trim_start().strip_prefix(':')?.trim_start())
    };
    let descr = field("descr").ok_or_else(|| bad("no descr"))?;
    if !["'|u1'", "'u1'", "'<u1'", "'>u1'"].iter().any(|d| descr.starts_with(d)) {
        return Err(bad("dtype is not uint8"));
    }
    if !field("fortran_order").ok_or_else(|| bad("no fortran_order"))?.starts_with("False") {
        return Err(bad("Fortran order"));
    }
    let shape_text = field("shape").ok_or_else(|| bad("no shape"))?;
    let inner =
        shape_text.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or_else(|| bad("bad shape"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("bad shape")))
        .collect::<Result<Vec<_>>>()?;
    let data = bytes.split_off(start + header_len);
    if data.len() != shape.iter().product::<usize>() {
        return Err(bad("data length does not match the shape"));
    }
    Ok(NpyArray { shape, data })
}

/// Writes `<name>.npy` for every corruption and `labels.npy` into `out_dir` in
/// the CIFAR-10-C layout. `images` are the dataset's images `0..N` (their
/// position is their index for [`image_seed`]); all must share one shape.
/// `on_block` is called after each (corruption, severity) block is written.
pub fn export_cifar_c(
    out_dir: &Path,
    images: &[Image],
    labels: &[u8],
    corruptions: &[Corruption],
    dataset_seed: u64,
    textures: &FrostTextures,
    on_block: &mut dyn FnMut(Corruption, u8),
) -> Result<()> {
    let Some(first) = images.first() else {
        return Err(CorruptError::Mismatch("no images to export".into()));
    };
    let dims = (first.height(), first.width(), first.channels());
    if let Some(other) = images.iter().find(|i| (i.height(), i.width(), i.channels()) != dims) {
        return Err(CorruptError::Mismatch(format!(
            "images differ in shape: {:?} and {:?}",
            dims,
            (other.height(), other.width(), other.channels())
        )));
    }
    if labels.len() != images.len() {
        return Err(CorruptError::Mismatch(format!("{} labels for {} images", labels.len(), images.len())));
    }
    fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let n = images.len();
    let shape = [5 * n, dims.0, dims.1, dims.2];
    for &c in corruptions {
        let mut f = AtomicFile::create(&out_dir.join(format!("{}.npy", c.name())))?;
        f.write(&npy_header(&shape))?;
        for severity in 1..=5u8 {
            for img in corrupt_many(images, c, severity, dataset_seed, 0, textures)? {
                f.write(img.data())?;
            }
            on_block(c, severity);
        }
        f.commit()?;
    }
    let all_labels: Vec<u8> = (0..5).flat_map(|_| labels.iter().copied()).collect();
    write_npy_u8(&out_dir.join("labels.npy"), &[5 * n], &all_labels)
}

/// Writes a PNG grid of `image`: one row per corruption, the clean image in
/// the first column and severities 1–5 after it, each cell enlarged `zoom`
/// times (nearest neighbour) with a 2-pixel white gap between cells. The image
/// is treated as index 0 of a dataset with seed `dataset_seed`.
pub fn write_preview_png(
    path: &Path,
    image: &Image,
    corruptions: &[Corruption],
    dataset_seed: u64,
    textures: &FrostTextures,
    zoom: usize,
) -> Result<()> {
    const GAP: usize = 2;
    let zoom = zoom.max(1);
    let (h, w) = (image.height() * zoom, image.width() * zoom);
    let (cols, rows) = (6, corruptions.len());
    let (grid_w, grid_h) = (cols * w + (cols + 1) * GAP, rows * h + (rows + 1) * GAP);
    let mut canvas = vec![255u8; grid_w * grid_h * 3];
    let mut paint = |row: usize, col: usize, img: &Image| {
        let (y0, x0) = (GAP + row * (h + GAP), GAP + col * (w + GAP));
        let ch = img.channels();
        for y in 0..h {
            for x in 0..w {
                let src = ((y / zoom) * img.width() + x / zoom) * ch;
                let dst = ((y0 + y) * grid_w + x0 + x) * 3;
                for k in 0..3 {
                    canvas[dst + k] = img.data()[src + if ch == 3 { k } else { 0 }];
                }
            }
        }
    };
    for (row, &c) in corruptions.iter().enumerate() {
        paint(row, 0, image);
        for severity in 1..=5u8 {
            let out = corrupt(image, c, severity, image_seed(dataset_seed, c, severity, 0), textures)?;
            paint(row, usize::from(severity), &out);
        }
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, grid_w as u32, grid_h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let png_err = |e: png::EncodingError| CorruptError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        };
        let mut writer = enc.write_header().map_err(png_err)?;
        writer.write_image_data(&canvas).map_err(png_err)?;
        writer.finish().map_err(png_err)?;
    }
    let mut f = AtomicFile::create(path)?;
    f.write(&png_bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::test_image;
    use super::*;

    #[test]
    fn npy_round_trips_and_aligns_data() {
        let dir = tempfile::tempdir().unwrap();
        for shape in [vec![7], vec![2, 3, 4, 1], vec![0, 5]] {
            let n: usize = shape.iter().product();
            let data: Vec<u8> = (0..n).map(|i| (i * 13 % 256) as u8).collect();
            let path = dir.path().join("a.npy");
            write_npy_u8(&path, &shape, &data).unwrap();
            let bytes = fs::read(&path).unwrap();
            assert_eq!((bytes.len() - n) % 64, 0);
            let back = read_npy_u8(&path).unwrap();
            assert_eq!(back, NpyArray { shape: shape.clone(), data });
        }
        assert!(write_npy_u8(&dir.path().join("b.npy"), &[3], &[1, 2]).is_err());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn reader_rejects_other_dtypes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npy");
        let mut bytes = npy_header(&[2]);
        let text = String::from_utf8(bytes[10..].to_vec()).unwrap().replace("|u1", "<f4");
        bytes.truncate(10);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(&[0; 8]);
        fs::write(&path, bytes).unwrap();
        assert!(matches!(read_npy_u8(&path), Err(CorruptError::Npy { .. })));
    }

    #[test]
    fn export_layout_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<Image> = (0..4).map(|v| test_image(16, 16, v)).collect();
        let labels = [3u8, 1, 4, 1];
        let cs = [Corruption::Contrast, Corruption::GaussianNoise];
        let mut blocks = Vec::new();
        export_cifar_c(dir.path(), &images, &labels, &cs, 77, &FrostTextures::none(), &mut |c, s| {
            blocks.push((c, s))
        })
        .unwrap();
        assert_eq!(blocks.len(), 10);
        let lab = read_npy_u8(&dir.path().join("labels.npy")).unwrap();
        assert_eq!(lab.shape, vec![20]);
        assert_eq!(&lab.data[8..12], &labels);
        for c in cs {
            let arr = read_npy_u8(&dir.path().join(format!("{}.npy", c.name()))).unwrap();
            assert_eq!(arr.shape, vec![20, 16, 16, 3]);
            let per = 16 * 16 * 3;
            for severity in 1..=5u8 {
                for (i, img) in images.iter().enumerate() {
                    let row = (usize::from(severity) - 1) * 4 + i;
                    let expect = corrupt(
                        img,
                        c,
                        severity,
                        image_seed(77, c, severity, i as u64),
                        &FrostTextures::none(),
                    )
                    .unwrap();
                    assert_eq!(
                        &arr.data[row * per..(row + 1) * per],
                        expect.data(),
                        "{c} s{severity} image {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn export_rejects_mismatched_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let images = vec![test_image(16, 16, 0), test_image(16, 17, 0)];
        let none = FrostTextures::none();
        let err = export_cifar_c(dir.path(), &images, &[0, 0], &[Corruption::Fog], 0, &none, &mut |_, _| {});
        assert!(matches!(err, Err(CorruptError::Mismatch(_))));
        let err =
            export_cifar_c(dir.path(), &images[..1], &[0, 0], &[Corruption::Fog], 0, &none, &mut |_, _| {});
        assert!(matches!(err, Err(CorruptError::Mismatch(_))));
    }

    #[test]
    fn preview_has_one_cell_per_corruption_and_severity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let img = test_image(16, 16, 1);
        let cs = [Corruption::Fog, Corruption::Pixelate, Corruption::Brightness];
        write_preview_png(&path, &img, &cs, 0, &FrostTextures::none(), 2).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width as usize, 6 * 32 + 7 * 2);
        assert_eq!(info.height as usize, 3 * 32 + 4 * 2);
    }
}
