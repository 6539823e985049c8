use std::path::Path;

use nasrob::data::{FetchTarget, data_info, import_local, load_split, read_split_file};
use nasrob::dataset::Dataset;

use crate::common::{assert_bad_input, nasrob, reference_dir};

/// A CIFAR binary file whose image i has label `label(i)` and every pixel equal to `i % 251`.
fn write_cifar(path: &Path, n: usize, label_bytes: usize, label: impl Fn(usize) -> u8) {
    let mut bytes = Vec::new();
    for i in 0..n {
        for _ in 0..label_bytes {
            bytes.push(label(i));
        }
        bytes.extend(std::iter::repeat_n((i % 251) as u8, 3072));
    }
    std::fs::write(path, bytes).unwrap();
}

fn copy_splits(reference: &Path, data_dir: &Path) {
    let dir = data_dir.join("nb201-splits");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["cifar-split.txt", "cifar100-test-split.txt", "imagenet-16-120-test-split.txt"] {
        std::fs::copy(reference.join("nb201/splits").join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn nb201_split_files_have_the_documented_sizes() {
    let Some(reference) = reference_dir() else { return };
    let splits = reference.join("nb201/splits");
    for (file, a, b, total) in [
        ("cifar-split.txt", "train", "valid", 50_000),
        ("cifar100-test-split.txt", "xvalid", "xtest", 10_000),
        ("imagenet-16-120-test-split.txt", "xvalid", "xtest", 6_000),
    ] {
        let split = read_split_file(&splits.join(file), "fix").unwrap();
        let (first, second) = split.halves(a, b).unwrap();
        assert_eq!(first.len(), total / 2, "{file}");
        assert_eq!(second.len(), total / 2, "{file}");
        let mut all: Vec<usize> = first.iter().chain(second).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..total).collect::<Vec<_>>(), "{file} must partition 0..{total}");
    }
}

#[test]
fn cifar_loaders_apply_nb201_splits() {
    let Some(reference) = reference_dir() else { return };
    let data = tempfile::tempdir().unwrap();
    let c10 = data.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&c10).unwrap();
    for k in 1..=5 {
        // Batch k holds images 10000*(k-1) .. 10000*k; label encodes the global index mod 10.
        let offset = 10_000 * (k - 1);
        write_cifar(&c10.join(format!("data_batch_{k}.bin")), 10_000, 1, |i| ((i + offset) % 10) as u8);
    }
    write_cifar(&c10.join("test_batch.bin"), 10_000, 1, |i| (i % 10) as u8);
    copy_splits(&reference, data.path());
    let full = load_split(Dataset::Cifar10, data.path()).unwrap();
    assert_eq!(full.train.len(), 50_000);
    assert!(full.valid.is_none());
    assert_eq!(full.test.0, "ori-test");
    let valid = load_split(Dataset::Cifar10Valid, data.path()).unwrap();
    let split = read_split_file(&reference.join("nb201/splits/cifar-split.txt"), "").unwrap();
    let (train_idx, valid_idx) = split.halves("train", "valid").unwrap();
    assert_eq!(valid.train.len(), 25_000);
    let (name, valid_set) = valid.valid.as_ref().unwrap();
    assert_eq!(name, "x-valid");
    for (pos, &global) in train_idx.iter().enumerate().step_by(997) {
        assert_eq!(valid.train.labels[pos] as usize, global % 10);
        assert_eq!(valid.train.image(pos)[0] as usize, (global % 10_000) % 251);
    }
    for (pos, &global) in valid_idx.iter().enumerate().step_by(991) {
        assert_eq!(valid_set.image(pos)[100] as usize, (global % 10_000) % 251);
    }

    let c100 = data.path().join("cifar-100-binary");
    std::fs::create_dir_all(&c100).unwrap();
    write_cifar(&c100.join("train.bin"), 500, 2, |i| (i % 100) as u8);
    write_cifar(&c100.join("test.bin"), 10_000, 2, |i| (i % 100) as u8);
    let sets = load_split(Dataset::Cifar100, data.path()).unwrap();
    assert_eq!(sets.valid.as_ref().unwrap().1.len(), 5_000);
    assert_eq!(sets.test.1.len(), 5_000);
    assert_eq!(sets.test.0, "x-test");
}

#[test]
fn imagenet16_loader_keeps_labels_1_to_120() {
    let Some(reference) = reference_dir() else { return };
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("ImageNet16");
    std::fs::create_dir_all(&dir).unwrap();
    let row = 768;
    for k in 1..=10 {
        // Labels 1..=122 cycle: 121 and 122 must be dropped.
        let labels: Vec<u8> = (0..244).map(|i| (i % 122 + 1) as u8).collect();
        let pixels: Vec<u8> = (0..labels.len() * row).map(|i| (i / row) as u8).collect();
        std::fs::write(dir.join(format!("train_data_batch_{k}")), pickle(&pixels, labels.len(), &labels))
            .unwrap();
    }
    let labels: Vec<u8> = (0..6000).map(|i| (i % 120 + 1) as u8).collect();
    let pixels = vec![9u8; 6000 * row];
    std::fs::write(dir.join("val_data"), pickle(&pixels, 6000, &labels)).unwrap();
    copy_splits(&reference, data.path());
    let sets = load_split(Dataset::ImageNet16_120, data.path()).unwrap();
    assert_eq!(sets.train.len(), 10 * 240);
    assert!(sets.train.labels.iter().all(|&l| l < 120));
    assert_eq!(sets.train.labels[0], 0);
    assert_eq!((sets.train.height, sets.train.channels), (16, 3));
    assert_eq!(sets.valid.as_ref().unwrap().1.len(), 3_000);
    assert_eq!(sets.test.1.len(), 3_000);
}

#[test]
fn imagenet16_import_checks_nb201s_md5_sums() {
    let from = tempfile::tempdir().unwrap();
    let row = 768;
    let labels: Vec<u8> = (0..120).map(|i| (i + 1) as u8).collect();
    let batch = pickle(&vec![7u8; labels.len() * row], labels.len(), &labels);
    for k in 1..=10 {
        std::fs::write(from.path().join(format!("train_data_batch_{k}")), &batch).unwrap();
    }
    std::fs::write(from.path().join("val_data"), &batch).unwrap();
    let data = tempfile::tempdir().unwrap();
    let fetch = || {
        nasrob(&[
            "data",
            "fetch",
            "imagenet16-120",
            "--from",
            from.path().to_str().unwrap(),
            "--data-dir",
            data.path().to_str().unwrap(),
        ])
    };
    assert_bad_input(&fetch(), "train_data_batch_1: MD5");
    assert_eq!(crate::common::files_under(data.path()), Vec::<std::path::PathBuf>::new(), "nothing is left");
    std::fs::remove_file(from.path().join("val_data")).unwrap();
    assert_bad_input(&fetch(), "val_data");
    let download = nasrob(&["data", "fetch", "imagenet16-120", "--data-dir", data.path().to_str().unwrap()]);
    assert_bad_input(&download, "drive.google.com");
}

/// The byte layout Python 2's pickle (protocol 2) gives `{'data': uint8 array, 'labels': [...]}`.
fn pickle(data: &[u8], rows: usize, labels: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    p.extend(b"U\x04datacnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01J");
    p.extend((rows as u32).to_le_bytes());
    p.push(b'J');
    p.extend(((data.len() / rows) as u32).to_le_bytes());
    p.extend(b"\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T");
    p.extend((data.len() as u32).to_le_bytes());
    p.extend(data);
    p.extend(b"tbU\x06labels](");
    for &l in labels {
        p.extend([b'K', l]);
    }
    p.extend(b"eu.");
    p
}

#[test]
fn missing_truncated_and_wrong_checksum_files_are_named() {
    let data = tempfile::tempdir().unwrap();
    let err = load_split(Dataset::Cifar10, data.path()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("data_batch_1.bin") && err.to_string().contains("nasrob data fetch cifar10")
    );
    let c10 = data.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&c10).unwrap();
    for k in 1..=5 {
        write_cifar(&c10.join(format!("data_batch_{k}.bin")), 3, 1, |_| 1);
    }
    std::fs::write(c10.join("test_batch.bin"), vec![0u8; 3073 * 2 + 100]).unwrap();
    let err = load_split(Dataset::Cifar10, data.path()).unwrap_err();
    assert!(err.to_string().contains("test_batch.bin") && err.to_string().contains("truncated"), "{err}");

    // A split file whose content differs from NB201's published one.
    let bogus = tempfile::tempdir().unwrap();
    for f in ["cifar-split.txt", "cifar100-test-split.txt", "imagenet-16-120-test-split.txt"] {
        std::fs::write(bogus.path().join(f), "{\"train\": [\"int\", [\"0\"]]}").unwrap();
    }
    let err = import_local(FetchTarget::Nb201Splits, bogus.path(), data.path()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("SHA-256"), "{err}");
    let info = data_info(data.path());
    let c10_info = info.iter().find(|i| i.target == "cifar10").unwrap();
    assert_eq!(c10_info.status, "incomplete");
}

#[test]
fn cli_data_errors_exit_2() {
    assert_bad_input(&nasrob(&["data", "fetch", "mnist"]), "unknown data target");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert_bad_input(
        &nasrob(&[
            "data",
            "fetch",
            "cifar10",
            "--from",
            missing.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ]),
        "not found",
    );
}

#[test]
fn embedded_fashion_mini_is_balanced() {
    let sets = load_split(Dataset::FashionMini, Path::new("/nonexistent")).unwrap();
    assert_eq!((sets.train.len(), sets.test.1.len()), (6_000, 1_000));
    assert_eq!((sets.train.channels, sets.train.height, sets.train.width), (1, 28, 28));
    for class in 0..10u16 {
        assert_eq!(sets.train.labels.iter().filter(|&&l| l == class).count(), 600);
        assert_eq!(sets.test.1.labels.iter().filter(|&&l| l == class).count(), 100);
    }
}

#[test]
fn embedded_files_match_their_documented_checksums() {
    use sha2::Digest;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/fashion-mini");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "test-images-idx3-ubyte.gz",
        "test-labels-idx1-ubyte.gz",
    ] {
        let sum: String = sha2::Sha256::digest(std::fs::read(dir.join(f)).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(readme.contains(&format!("| {f} | {sum} |")), "{f} checksum {sum} not in README");
    }
}
