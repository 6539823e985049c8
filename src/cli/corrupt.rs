use std::path::PathBuf;

use clap::Args;

use nasrob::corrupt::{
    Corruption, FrostTextures, Image, benchmark, export_cifar_c, read_npy_u8, write_preview_png,
};
use nasrob::data::{TestImages, default_data_dir, load_split};
use nasrob::dataset::Dataset;
use nasrob::{Error, Result};

#[derive(Args, Debug)]
pub struct CorruptArgs {
    /// cifar10, cifar100, ImageNet16-120 or fashion-mini: corrupts its test split.
    #[arg(long)]
    dataset: Option<String>,
    /// Corrupt the images of this uint8 .npy file ([N, H, W, C], as CIFAR-10-C's files) instead.
    #[arg(long, conflicts_with = "dataset")]
    from_npy: Option<PathBuf>,
    /// Labels for --from-npy (uint8 .npy [N]); zeros when absent.
    #[arg(long, requires = "from_npy")]
    labels_npy: Option<PathBuf>,
    /// Corruption names (comma-separated), `all` (the 15 of CIFAR-10-C) or `extended` (all 19).
    #[arg(long, default_value = "all")]
    corruptions: String,
    /// Only the first N images.
    #[arg(long)]
    n_images: Option<usize>,
    /// Seed of the corrupted dataset: image i under (corruption, severity) depends on it and i only.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder for the CIFAR-10-C layout: <corruption>.npy (uint8 [5N, H, W, C], severity s
    /// in rows (s-1)N..sN) and labels.npy.
    #[arg(long, required_unless_present = "preview")]
    out: Option<PathBuf>,
    /// Instead, write a PNG grid of one image at every corruption (rows) and severity (columns).
    #[arg(long)]
    preview: Option<PathBuf>,
    /// Image shown by --preview.
    #[arg(long, default_value_t = 0)]
    image_index: usize,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Parses `all`, `extended` or a comma-separated list of corruption names.
pub(super) fn parse_corruptions(spec: &str) -> Result<Vec<Corruption>> {
    Ok(Corruption::select(&spec.split(',').collect::<Vec<_>>())?)
}

pub fn run(args: CorruptArgs) -> Result<()> {
    let corruptions = parse_corruptions(&args.corruptions)?;
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let (images, labels): (Vec<Image>, Vec<u8>) = if let Some(path) = &args.from_npy {
        let array = read_npy_u8(path)?;
        let [n, h, w, c] = array.shape[..] else {
            return Err(Error::input_file(
                path,
                format!("expected shape [N, H, W, C], found {:?}", array.shape),
            ));
        };
        let size = h * w * c;
        let images = (0..n)
            .map(|i| Image::new(h, w, c, array.data[i * size..(i + 1) * size].to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let labels = match &args.labels_npy {
            Some(p) => read_npy_u8(p)?.data,
            None => vec![0; n],
        };
        if labels.len() != n {
            return Err(Error::input(format!("{} labels for {n} images", labels.len())));
        }
        (images, labels)
    } else {
        let Some(name) = &args.dataset else {
            return Err(Error::input("give --dataset or --from-npy"));
        };
        let dataset: Dataset = name.parse()?;
        // CIFAR-10-C and CIFAR-100-C corrupt the whole official test set.
        let test = load_split(dataset, &data_dir)?.evaluation_set(TestImages::Full).1.clone();
        let images = (0..test.len())
            .map(|i| Image::new(test.height, test.width, test.channels, test.image_hwc(i)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let labels = test.labels.iter().map(|&l| u8::try_from(l).unwrap_or(u8::MAX)).collect();
        (images, labels)
    };
    let n = args.n_images.unwrap_or(images.len()).min(images.len());
    let (images, labels) = (&images[..n], &labels[..n]);
    if images.is_empty() {
        return Err(Error::input("no images to corrupt"));
    }
    let textures = if corruptions.contains(&Corruption::Frost) {
        FrostTextures::load(&data_dir.join("frost"))?
    } else {
        FrostTextures::none()
    };
    if let Some(path) = &args.preview {
        let image = images.get(args.image_index).ok_or_else(|| {
            Error::input(format!(
                "--image-index {} is out of range ({} images)",
                args.image_index,
                images.len()
            ))
        })?;
        let zoom = (96 / image.height().max(1)).max(1);
        write_preview_png(path, image, &corruptions, args.seed, &textures, zoom)?;
        println!("wrote {}", path.display());
        return Ok(());
    }
    let Some(out) = &args.out else { return Err(Error::input("give --out or --preview")) };
    let bar = nasrob::progress::bar((corruptions.len() * 5) as u64, "corrupt");
    export_cifar_c(out, images, labels, &corruptions, args.seed, &textures, &mut |c, s| {
        bar.set_message(format!("{} {s}", c.name()));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    println!(
        "wrote {} corruptions x 5 severities of {} images to {}",
        corruptions.len(),
        images.len(),
        out.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct BenchCorruptArgs {
    /// Images corrupted at each of the 5 severities.
    #[arg(long, default_value_t = 10_000)]
    n_images: usize,
    /// Source of the images, cycled to --n-images: fashion-mini (the embedded test images, padded
    /// to 32x32 and replicated to RGB, as CIFAR-10-sized input) or a dataset's test split
    /// (cifar10, cifar100, ImageNet16-120).
    #[arg(long, default_value = "fashion-mini")]
    dataset: String,
    /// Corruption names (comma-separated), `all` (the 15 of CIFAR-10-C) or `extended` (all 19).
    #[arg(long, default_value = "all")]
    corruptions: String,
    /// Seed of the corrupted dataset.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Data folder [default: $NASROB_DATA_DIR or ~/.cache/nasrob/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Pads an HWC image with zeros to `size` x `size` (centred) and replicates gray to RGB.
fn to_rgb_32(image: &Image, size: usize) -> Result<Image> {
    let (h, w, c) = (image.height(), image.width(), image.channels());
    if h > size || w > size {
        return Ok(image.clone());
    }
    let (top, left) = ((size - h) / 2, (size - w) / 2);
    let mut data = vec![0u8; size * size * 3];
    for y in 0..h {
        for x in 0..w {
            for k in 0..3 {
                data[((y + top) * size + x + left) * 3 + k] = image.data()[(y * w + x) * c + k.min(c - 1)];
            }
        }
    }
    Ok(Image::new(size, size, 3, data)?)
}

pub fn bench(args: BenchCorruptArgs) -> Result<()> {
    let corruptions = parse_corruptions(&args.corruptions)?;
    if args.n_images == 0 {
        return Err(Error::input("--n-images must be at least 1"));
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let dataset: Dataset = args.dataset.parse()?;
    let test = load_split(dataset, &data_dir)?.test.1;
    let mut source = Vec::with_capacity(test.len());
    for i in 0..test.len() {
        let image = Image::new(test.height, test.width, test.channels, test.image_hwc(i))?;
        source.push(if dataset == Dataset::FashionMini { to_rgb_32(&image, 32)? } else { image });
    }
    if source.is_empty() {
        return Err(Error::input(format!("{dataset} has no test images")));
    }
    let images: Vec<Image> = (0..args.n_images).map(|i| source[i % source.len()].clone()).collect();
    let textures = if corruptions.contains(&Corruption::Frost) {
        FrostTextures::load(&data_dir.join("frost"))?
    } else {
        FrostTextures::none()
    };
    let start = std::time::Instant::now();
    let cpu_start = cpu_seconds();
    let rows = benchmark(&images, &corruptions, args.seed, &textures)?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_start).map(|(end, begin)| end - begin);
    let threads = rayon::current_num_threads();
    let (h, w, c) = (images[0].height(), images[0].width(), images[0].channels());
    if args.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "corruption": r.corruption.name(),
                    "images": r.images,
                    "seconds": r.seconds,
                    "images_per_second": r.images_per_second,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "dataset": dataset.name(),
                "image_shape": [h, w, c],
                "n_images": args.n_images,
                "severities": 5,
                "threads": threads,
                "wall_seconds": wall,
                "cpu_seconds": cpu,
                "corruptions": list,
            })
        );
        return Ok(());
    }
    println!(
        "{} images of {h}x{w}x{c} from {dataset} x {} corruptions x 5 severities on {threads} threads",
        args.n_images,
        corruptions.len()
    );
    println!("{:<18} {:>10} {:>9} {:>10}", "corruption", "images", "seconds", "images/s");
    for r in &rows {
        println!(
            "{:<18} {:>10} {:>9.2} {:>10.0}",
            r.corruption.name(),
            r.images,
            r.seconds,
            r.images_per_second
        );
    }
    let total: usize = rows.iter().map(|r| r.images).sum();
    println!(
        "all: {total} corrupted images in {wall:.1} s wall{}",
        cpu.map_or(String::new(), |c| format!(" ({c:.1} s CPU)"))
    );
    Ok(())
}

/// CPU time of this process (user + system) from /proc/self/stat; Linux only.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
