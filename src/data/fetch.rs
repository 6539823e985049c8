//! The data folder: downloads from the datasets' official locations with SHA-256 checks and
//! resumption, imports of local copies, and a manifest per dataset so `nasrob data info` can say
//! what is present and intact.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::fsutil;
use crate::{Error, Result};

/// What `nasrob data fetch` can bring into the data folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchTarget {
    Cifar10,
    Cifar100,
    Nb201Splits,
    ImageNet16_120,
    FrostTextures,
}

struct Remote {
    url: &'static str,
    file: &'static str,
    sha256: &'static str,
}

const CIFAR10: Remote = Remote {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    file: "cifar-10-binary.tar.gz",
    sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
};
const CIFAR100: Remote = Remote {
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    file: "cifar-100-binary.tar.gz",
    sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
};
const NB201_SPLITS: [Remote; 3] = [
    Remote {
        url: "https://raw.githubusercontent.com/D-X-Y/AutoDL-Projects/a84f48388215d043d94c12c912e6a1defafca891/configs/nas-benchmark/cifar-split.txt",
        file: "cifar-split.txt",
        sha256: "986da6174822048d4c5a25ee8ebdb7e754cd5372b51c633ffd4898ace8db9e32",
    },
    Remote {
        url: "https://raw.githubusercontent.com/D-X-Y/AutoDL-Projects/a84f48388215d043d94c12c912e6a1defafca891/configs/nas-benchmark/cifar100-test-split.txt",
        file: "cifar100-test-split.txt",
        sha256: "14a5e3708e790ad57f987cdbcf202f724519475d6e8b0db34d0182e73b581bba",
    },
    Remote {
        url: "https://raw.githubusercontent.com/D-X-Y/AutoDL-Projects/a84f48388215d043d94c12c912e6a1defafca891/configs/nas-benchmark/imagenet-16-120-test-split.txt",
        file: "imagenet-16-120-test-split.txt",
        sha256: "c0edac1d3676a9f21acea8feeb31336202d75b1a73df62aec31c6b45bb289a18",
    },
];
const FROST_BASE: &str = "https://raw.githubusercontent.com/hendrycks/robustness/master/ImageNet-C/create_c/";
const FROST: [(&str, &str); 6] = [
    ("frost1.png", "ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755"),
    ("frost2.png", "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137"),
    ("frost3.png", "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504"),
    ("frost4.jpg", "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e"),
    ("frost5.jpg", "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2"),
    ("frost6.jpg", "1f92b2f48408748085b68dd81d816ef239f42cef3029c25d041fcb6760fb4f25"),
];

/// Where NB201 publishes its ImageNet16 copy (NATS-Bench's README): a Google Drive folder that
/// also holds its CIFAR copies. The 11 files below take about 1 GB (1.33 M images of 768 bytes).
pub const IMAGENET16_SOURCE: &str =
    "https://drive.google.com/drive/folders/1T3UIyZXUhMmIuJLOBMIYKAsJknAtrrO4";
/// NB201's ImageNet16 files and the MD5 sums its loader checks them against.
const IMAGENET16_MD5: [(&str, &str); 11] = [
    ("train_data_batch_1", "27846dcaa50de8e21a7d1a35f30f0e91"),
    ("train_data_batch_2", "c7254a054e0e795c69120a5727050e3f"),
    ("train_data_batch_3", "4333d3df2e5ffb114b05d2ffc19b1e87"),
    ("train_data_batch_4", "1620cdf193304f4a92677b695d70d10f"),
    ("train_data_batch_5", "348b3c2fdbb3940c4e9e834affd3b18d"),
    ("train_data_batch_6", "6e765307c242a1b3d7d5ef9139b48945"),
    ("train_data_batch_7", "564926d8cbf8fc4818ba23d2faac7564"),
    ("train_data_batch_8", "f4755871f718ccb653440b9dd0ebac66"),
    ("train_data_batch_9", "bb6dd660c38c58552125b1a92f86b5d4"),
    ("train_data_batch_10", "8f03f34ac4b42271a294f91bf480f29b"),
    ("val_data", "3410e3017fdaefba8d5073aaa65e4bd6"),
];
/// Images of classes 1..=120 in NB201's ImageNet16 train batches and validation file.
pub const IMAGENET16_120_IMAGES: (usize, usize) = (151_700, 6_000);

/// A checksum published with a file.
#[derive(Clone, Copy)]
enum Published {
    Sha256(&'static str),
    Md5(&'static str),
}

impl Published {
    fn check(self, path: &Path) -> Result<()> {
        let (algorithm, expected, found) = match self {
            Published::Sha256(expected) => ("SHA-256", expected, digest_file::<Sha256>(path)?),
            Published::Md5(expected) => ("MD5", expected, digest_file::<Md5>(path)?),
        };
        if found == expected {
            return Ok(());
        }
        Err(Error::input_file(
            path,
            format!(
                "{algorithm} {found} differs from the published {expected}: the file is damaged or another version; fetch it again"
            ),
        ))
    }
}

impl FetchTarget {
    pub const ALL: [FetchTarget; 5] = [
        FetchTarget::Cifar10,
        FetchTarget::Cifar100,
        FetchTarget::Nb201Splits,
        FetchTarget::ImageNet16_120,
        FetchTarget::FrostTextures,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FetchTarget::Cifar10 => "cifar10",
            FetchTarget::Cifar100 => "cifar100",
            FetchTarget::Nb201Splits => "nb201-splits",
            FetchTarget::ImageNet16_120 => "imagenet16-120",
            FetchTarget::FrostTextures => "frost-textures",
        }
    }

    pub fn parse(name: &str) -> Result<FetchTarget> {
        let lower = name.to_ascii_lowercase();
        FetchTarget::ALL.into_iter().find(|t| t.name() == lower).ok_or_else(|| {
            let names: Vec<&str> = FetchTarget::ALL.iter().map(|t| t.name()).collect();
            Error::input(format!("unknown data target '{name}': expected one of {}", names.join(", ")))
        })
    }

    /// Sub-folder of the data folder the target lives in.
    pub fn folder(self) -> &'static str {
        match self {
            FetchTarget::Cifar10 => "cifar-10-batches-bin",
            FetchTarget::Cifar100 => "cifar-100-binary",
            FetchTarget::Nb201Splits => "nb201-splits",
            FetchTarget::ImageNet16_120 => "ImageNet16",
            FetchTarget::FrostTextures => "frost",
        }
    }

    /// Files the folder must hold.
    pub fn expected_files(self) -> Vec<String> {
        match self {
            FetchTarget::Cifar10 => {
                let mut f: Vec<String> = (1..=5).map(|k| format!("data_batch_{k}.bin")).collect();
                f.push("test_batch.bin".into());
                f
            }
            FetchTarget::Cifar100 => vec!["train.bin".into(), "test.bin".into()],
            FetchTarget::Nb201Splits => NB201_SPLITS.iter().map(|r| r.file.to_string()).collect(),
            FetchTarget::ImageNet16_120 => {
                let mut f: Vec<String> = (1..=10).map(|k| format!("train_data_batch_{k}")).collect();
                f.push("val_data".into());
                f
            }
            FetchTarget::FrostTextures => FROST.iter().map(|(f, _)| f.to_string()).collect(),
        }
    }
}

const MANIFEST: &str = "SHA256SUMS.json";

fn sha256_file(path: &Path) -> Result<String> {
    digest_file::<Sha256>(path)
}

fn digest_file<D: Digest>(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::input_file(path, e))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::input_file(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads `url` to `dest`, resuming a `.part` file left by an interrupted download, and checks
/// the SHA-256 before the file takes its final name.
fn download(url: &str, dest: &Path, sha256: &str) -> Result<()> {
    if dest.is_file() && sha256_file(dest)? == sha256 {
        return Ok(());
    }
    fsutil::ensure_parent(dest)?;
    let part = dest.with_extension("part");
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut request = ureq::get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| {
        Error::input(format!("cannot download {url}: {e}; download it by other means and use --from <file>"))
    })?;
    let append = have > 0 && response.status() == 206;
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&part)
        .map_err(|e| Error::write(&part, e))?;
    let total = response.header("Content-Length").and_then(|v| v.parse::<u64>().ok());
    let bar = crate::progress::bytes_bar(total.map(|t| t + if append { have } else { 0 }), dest);
    if append {
        bar.set_position(have);
    }
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            Error::input(format!("download of {url} interrupted ({e}); run the same command again to resume"))
        })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| Error::write(&part, e))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    out.sync_all().map_err(|e| Error::write(&part, e))?;
    drop(out);
    let found = sha256_file(&part)?;
    if found != sha256 {
        let _ = fs::remove_file(&part);
        return Err(Error::input(format!(
            "{url}: SHA-256 {found} does not match the expected {sha256}; the partial file was removed, run again"
        )));
    }
    fs::rename(&part, dest).map_err(|e| Error::write(dest, e))
}

/// Unpacks a `.tar.gz` and moves `inner` (a folder inside the archive) to `dest` atomically.
fn unpack(archive: &Path, inner: &str, dest: &Path) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let staging = fsutil::temp_path_for(dest);
    let file = File::open(archive).map_err(|e| Error::input_file(archive, e))?;
    let result = tar::Archive::new(flate2::read::GzDecoder::new(file)).unpack(&staging);
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(Error::input_file(archive, format!("cannot unpack ({e}); delete it and fetch again")));
    }
    let src = staging.join(inner);
    if !src.is_dir() {
        let _ = fs::remove_dir_all(&staging);
        return Err(Error::input_file(archive, format!("has no folder '{inner}'")));
    }
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(|e| Error::write(dest, e))?;
    }
    fs::create_dir_all(parent).map_err(|e| Error::write(parent, e))?;
    fs::rename(&src, dest).map_err(|e| Error::write(dest, e))?;
    let _ = fs::remove_dir_all(&staging);
    Ok(())
}

fn write_manifest(folder: &Path, target: FetchTarget) -> Result<()> {
    let mut sums = BTreeMap::new();
    for name in target.expected_files() {
        let path = folder.join(&name);
        if !path.is_file() {
            return Err(Error::input_file(&path, format!("missing after fetching {}", target.name())));
        }
        sums.insert(name, sha256_file(&path)?);
    }
    let text = serde_json::to_string_pretty(&sums).map_err(|e| Error::Internal(e.to_string()))?;
    fsutil::write_bytes_atomic(&folder.join(MANIFEST), text.as_bytes())
}

/// Downloads `target` into `data_dir` from its official location.
pub fn fetch(target: FetchTarget, data_dir: &Path) -> Result<PathBuf> {
    let folder = data_dir.join(target.folder());
    let downloads = data_dir.join("downloads");
    match target {
        FetchTarget::Cifar10 | FetchTarget::Cifar100 => {
            let remote = if target == FetchTarget::Cifar10 { &CIFAR10 } else { &CIFAR100 };
            let archive = downloads.join(remote.file);
            download(remote.url, &archive, remote.sha256)?;
            unpack(&archive, target.folder(), &folder)?;
        }
        FetchTarget::Nb201Splits => {
            for remote in &NB201_SPLITS {
                download(remote.url, &folder.join(remote.file), remote.sha256)?;
            }
        }
        FetchTarget::FrostTextures => {
            for (file, sha) in FROST {
                download(&format!("{FROST_BASE}{file}"), &folder.join(file), sha).map_err(|e| {
                    Error::input(format!(
                        "{e}. The same photographs ship in PyPI's imagecorruptions wheel: \
                         `pip download --no-deps imagecorruptions==1.1.2` and pass the .whl with --from"
                    ))
                })?;
            }
        }
        FetchTarget::ImageNet16_120 => {
            return Err(Error::input(format!(
                "ImageNet16-120 comes from NB201's Google Drive folder ({IMAGENET16_SOURCE}), which nasrob \
                 cannot download: download its ImageNet16 folder (train_data_batch_1..10 and val_data) and \
                 run `nasrob data fetch imagenet16-120 --from <that folder>`"
            )));
        }
    }
    write_manifest(&folder, target)?;
    Ok(folder)
}

/// Imports a local copy: a downloaded archive (CIFAR) or a folder holding the target's files.
/// Archives and files with published checksums are checked against them.
pub fn import_local(target: FetchTarget, from: &Path, data_dir: &Path) -> Result<PathBuf> {
    let folder = data_dir.join(target.folder());
    if from.is_file() && target == FetchTarget::FrostTextures {
        import_frost_archive(from, &folder)?;
    } else if from.is_file() {
        let remote = match target {
            FetchTarget::Cifar10 => &CIFAR10,
            FetchTarget::Cifar100 => &CIFAR100,
            _ => {
                return Err(Error::input_file(
                    from,
                    format!("{} is imported from a folder, not a file", target.name()),
                ));
            }
        };
        let found = sha256_file(from)?;
        if found != remote.sha256 {
            return Err(Error::input_file(
                from,
                format!("SHA-256 {found} is not that of the official {} ({})", remote.file, remote.sha256),
            ));
        }
        unpack(from, target.folder(), &folder)?;
    } else if from.is_dir() {
        let known: BTreeMap<&str, Published> = match target {
            FetchTarget::Nb201Splits => {
                NB201_SPLITS.iter().map(|r| (r.file, Published::Sha256(r.sha256))).collect()
            }
            FetchTarget::FrostTextures => {
                FROST.into_iter().map(|(f, sha)| (f, Published::Sha256(sha))).collect()
            }
            FetchTarget::ImageNet16_120 => {
                IMAGENET16_MD5.into_iter().map(|(f, md5)| (f, Published::Md5(md5))).collect()
            }
            _ => BTreeMap::new(),
        };
        let staging = fsutil::temp_path_for(&folder);
        fs::create_dir_all(&staging).map_err(|e| Error::write(&staging, e))?;
        let copy = || -> Result<()> {
            let names = target.expected_files();
            // Every file is looked for before any is read: a missing one is named at once.
            if let Some(missing) = names.iter().map(|name| from.join(name)).find(|src| !src.is_file()) {
                return Err(Error::input_file(
                    &missing,
                    format!("missing: {} needs {}", target.name(), names.join(", ")),
                ));
            }
            for name in names {
                let src = from.join(&name);
                if let Some(published) = known.get(name.as_str()) {
                    published.check(&src)?;
                }
                fs::copy(&src, staging.join(&name)).map_err(|e| Error::write(staging.join(&name), e))?;
            }
            if target == FetchTarget::ImageNet16_120 {
                check_imagenet16_120_counts(from, &staging)?;
            }
            Ok(())
        };
        if let Err(e) = copy() {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        if folder.exists() {
            fs::remove_dir_all(&folder).map_err(|e| Error::write(&folder, e))?;
        }
        fs::rename(&staging, &folder).map_err(|e| Error::write(&folder, e))?;
    } else {
        return Err(Error::input_file(from, "not found"));
    }
    write_manifest(&folder, target)?;
    Ok(folder)
}

/// Counts the images of classes 1..=120 in the ImageNet16 files copied to `staging` and checks
/// them against NB201's (which its loader asserts).
fn check_imagenet16_120_counts(from: &Path, staging: &Path) -> Result<()> {
    let fix = format!("import NB201's copy ({IMAGENET16_SOURCE})");
    let mut train = 0;
    for k in 1..=10 {
        train += super::formats::read_imagenet16_batch(&staging.join(format!("train_data_batch_{k}")), &fix)?
            .len();
    }
    let valid = super::formats::read_imagenet16_batch(&staging.join("val_data"), &fix)?.len();
    match imagenet16_120_count_mismatch(train, valid) {
        Some(why) => Err(Error::input_file(from, format!("{why}; {fix}"))),
        None => Ok(()),
    }
}

/// What differs between the counted images and NB201's ImageNet16-120, if anything.
fn imagenet16_120_count_mismatch(train: usize, valid: usize) -> Option<String> {
    let (nb201_train, nb201_valid) = IMAGENET16_120_IMAGES;
    let mut wrong = Vec::new();
    if train != nb201_train {
        wrong.push(format!(
            "train_data_batch_1..10 hold {train} images of classes 1..120, NB201's {nb201_train}"
        ));
    }
    if valid != nb201_valid {
        wrong.push(format!("val_data holds {valid} images of classes 1..120, NB201's {nb201_valid}"));
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

/// Imports the frost photographs from a zip archive holding them, such as the PyPI wheel of
/// `imagecorruptions` (which ships the same six files as hendrycks' repository), checking each
/// against its published SHA-256.
fn import_frost_archive(archive: &Path, folder: &Path) -> Result<()> {
    let file = File::open(archive).map_err(|e| Error::input_file(archive, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| Error::input_file(archive, format!("not a zip archive or wheel ({e})")))?;
    let staging = fsutil::temp_path_for(folder);
    fs::create_dir_all(&staging).map_err(|e| Error::write(&staging, e))?;
    let mut extract = || -> Result<()> {
        for (name, sha) in FROST {
            let entry = (0..zip.len()).find(|&i| {
                zip.by_index(i).map(|f| f.name().rsplit('/').next() == Some(name)).unwrap_or(false)
            });
            let Some(i) = entry else {
                return Err(Error::input_file(archive, format!("holds no {name}")));
            };
            let mut bytes = Vec::new();
            zip.by_index(i)
                .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
                .map_err(|e| Error::input_file(archive, format!("cannot read {name} ({e})")))?;
            let found = hex(&Sha256::digest(&bytes));
            if found != sha {
                return Err(Error::input_file(
                    archive,
                    format!("{name} has SHA-256 {found}, not the published {sha}"),
                ));
            }
            fs::write(staging.join(name), &bytes).map_err(|e| Error::write(staging.join(name), e))?;
        }
        Ok(())
    };
    if let Err(e) = extract() {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if folder.exists() {
        fs::remove_dir_all(folder).map_err(|e| Error::write(folder, e))?;
    }
    fs::rename(&staging, folder).map_err(|e| Error::write(folder, e))
}

/// State of one target in the data folder.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TargetInfo {
    pub target: &'static str,
    pub folder: PathBuf,
    /// `verified`, `missing`, `incomplete` or `modified`.
    pub status: String,
    pub detail: String,
}

/// What is present in `data_dir` and whether it still matches the manifest written at fetch time.
pub fn data_info(data_dir: &Path) -> Vec<TargetInfo> {
    FetchTarget::ALL
        .into_iter()
        .map(|target| {
            let folder = data_dir.join(target.folder());
            let info = |status: &str, detail: String| TargetInfo {
                target: target.name(),
                folder: folder.clone(),
                status: status.into(),
                detail,
            };
            if !folder.is_dir() {
                return info("missing", format!("run `nasrob data fetch {}`", target.name()));
            }
            let manifest: Option<BTreeMap<String, String>> =
                fs::read_to_string(folder.join(MANIFEST)).ok().and_then(|t| serde_json::from_str(&t).ok());
            let Some(manifest) = manifest else {
                return info(
                    "incomplete",
                    format!("no {MANIFEST}; run `nasrob data fetch {}` again", target.name()),
                );
            };
            for name in target.expected_files() {
                let path = folder.join(&name);
                match (manifest.get(&name), sha256_file(&path)) {
                    (Some(expected), Ok(found)) if *expected == found => {}
                    (_, Err(_)) => return info("incomplete", format!("{name} is missing")),
                    _ => {
                        return info("modified", format!("{name} changed since it was fetched; fetch again"));
                    }
                }
            }
            info("verified", format!("{} files match their SHA-256", target.expected_files().len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_checksums_match_the_reference_copies() {
        use crate::prerequisites::{Installed, reference_path, require};
        let Some(dir) = require(reference_path("nb201/splits"), Installed::Elsewhere) else { return };
        for remote in &NB201_SPLITS {
            assert_eq!(sha256_file(&dir.join(remote.file)).unwrap(), remote.sha256, "{}", remote.file);
        }
    }

    #[test]
    fn md5_and_sha256_of_the_rfc_test_vector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        fs::write(&path, "abc").unwrap();
        // RFC 1321's and FIPS 180-2's digests of "abc".
        Published::Md5("900150983cd24fb0d6963f7d28e17f72").check(&path).unwrap();
        Published::Sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            .check(&path)
            .unwrap();
        let err = Published::Md5("27846dcaa50de8e21a7d1a35f30f0e91").check(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("MD5 900150983cd24fb0d6963f7d28e17f72 differs"), "{err}");
    }

    #[test]
    fn imagenet16_120_counts_are_nb201s() {
        assert_eq!(imagenet16_120_count_mismatch(151_700, 6_000), None);
        let train = imagenet16_120_count_mismatch(151_699, 6_000).unwrap();
        assert!(
            train.contains("train_data_batch_1..10 hold 151699") && !train.contains("val_data"),
            "{train}"
        );
        let valid = imagenet16_120_count_mismatch(151_700, 50_000).unwrap();
        assert!(valid.contains("val_data holds 50000") && !valid.contains("train_data"), "{valid}");
    }

    #[test]
    fn frost_checksums_match_the_reference_copies() {
        use crate::prerequisites::{Installed, reference_path, require};
        let Some(dir) = require(reference_path("cifar-c/frost"), Installed::Elsewhere) else { return };
        for (file, sha) in FROST {
            assert_eq!(sha256_file(&dir.join(file)).unwrap(), sha, "{file}");
        }
    }
}
