//! Scoring many architectures into a benchmark's `proxies` table: in parallel on the CPU (one
//! libtorch thread per worker), one architecture at a time on a GPU, in chunks that each become
//! one Parquet part named after the run's configuration hash, so an interrupted run resumes by
//! skipping the parts that exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use tch::Device;

use super::{HostInputs, InputMode, Proxy, ProxyConfig, ProxyResult, SOURCE, score_arch};
use crate::dataset::Dataset;
use crate::model::read_weights_meta;
use crate::space::{NetworkShape, SearchSpace};
use crate::store::provenance::{Provenance, sha256_hex};
use crate::store::schema::PROXIES;
use crate::store::{BenchDir, Rows, Transaction};
use crate::{Error, Result};

/// Which architectures to score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchSelection {
    /// One per isomorphism class (6,466): isomorphic architectures compute the same function.
    Unique,
    /// All 15,625.
    All,
    /// These indices, in this order.
    List(Vec<usize>),
}

impl ArchSelection {
    /// `unique`, `all`, or a comma-separated list of indices, `a-b` ranges and arch strings.
    pub fn parse(spec: &str) -> Result<ArchSelection> {
        match spec.trim() {
            "unique" => return Ok(ArchSelection::Unique),
            "all" => return Ok(ArchSelection::All),
            _ => {}
        }
        let space = SearchSpace::nb201();
        let mut indices = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('-') {
                Some((a, b)) if !item.starts_with('|') => {
                    let (a, b) = (space.resolve(a)?, space.resolve(b)?);
                    if a > b {
                        return Err(Error::input(format!("empty range '{item}': the start exceeds the end")));
                    }
                    indices.extend(a..=b);
                }
                _ => indices.push(space.resolve(item)?),
            }
        }
        if indices.is_empty() {
            return Err(Error::input("no architecture selected: use unique, all or a list of indices"));
        }
        Ok(ArchSelection::List(indices))
    }

    pub fn indices(&self) -> Vec<usize> {
        match self {
            ArchSelection::Unique => SearchSpace::nb201().representatives(),
            ArchSelection::All => (0..SearchSpace::nb201().len()).collect(),
            ArchSelection::List(list) => list.clone(),
        }
    }

    fn key(&self) -> String {
        match self {
            ArchSelection::Unique => "unique".into(),
            ArchSelection::All => "all".into(),
            ArchSelection::List(list) => list.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
        }
    }
}

/// A scoring run.
#[derive(Clone, Debug)]
pub struct ScoreOptions {
    pub dataset: Dataset,
    pub proxies: Vec<Proxy>,
    pub archs: ArchSelection,
    pub config: ProxyConfig,
    pub input: InputMode,
    pub bench: PathBuf,
    /// A folder searched (recursively) for nasrob weights of `dataset`, for the robustness
    /// proxies on trained weights.
    pub weights_dir: Option<PathBuf>,
    pub device: Device,
    /// Parallel workers on the CPU (a GPU scores one architecture at a time).
    pub jobs: usize,
    /// Architectures per Parquet part.
    pub chunk_size: usize,
    pub shape: NetworkShape,
    /// The command line, for provenance.
    pub command: Option<String>,
}

/// What a run did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScoreReport {
    pub config_hash: String,
    pub architectures: usize,
    pub chunks: usize,
    /// Chunks whose part existed (an earlier run scored them).
    pub chunks_skipped: usize,
    /// Architectures scored by this run.
    pub scored: usize,
    pub rows_written: usize,
    pub null_scores: usize,
    /// Architectures with trained weights found.
    pub trained_architectures: usize,
    pub seconds: f64,
    /// Total seconds per proxy over the architectures scored in this run.
    pub proxy_seconds: BTreeMap<String, f64>,
    pub parts: Vec<PathBuf>,
    /// What recovering from interrupted writers to the benchmark folder did.
    pub notes: Vec<String>,
}

impl ScoreOptions {
    /// The identity of the run's results: everything that changes a score or the row set.
    fn config_json(&self) -> serde_json::Value {
        serde_json::json!({
            "stage": "proxies",
            "dataset": self.dataset.name(),
            "proxies": self.proxies.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "archs": self.archs.key(),
            "config": self.config,
            "input": self.input.name(),
            "weights_dir": self.weights_dir.as_ref().map(|p| p.display().to_string()),
            "channels": self.shape.channels,
            "cells_per_stage": self.shape.cells_per_stage,
            "chunk_size": self.chunk_size,
        })
    }
}

/// Finds nasrob weights of `dataset` under `dir`: NB201 index → weight files, in path order.
pub fn trained_weights_index(dir: &Path, dataset: Dataset) -> Result<BTreeMap<usize, Vec<PathBuf>>> {
    if !dir.is_dir() {
        return Err(Error::input_file(dir, "weights folder not found"));
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::input_file(&folder, e))? {
            let path = entry.map_err(|e| Error::input_file(&folder, e))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "safetensors") {
                files.push(path);
            }
        }
    }
    files.sort();
    let space = SearchSpace::nb201();
    let mut index: BTreeMap<usize, Vec<PathBuf>> = BTreeMap::new();
    for path in files {
        let Some(meta) = read_weights_meta(&path)? else { continue };
        if meta.dataset != dataset.name() {
            continue;
        }
        index.entry(space.resolve(&meta.arch)?).or_default().push(path);
    }
    Ok(index)
}

/// Scores `options.archs` into `options.bench`; `progress` is called with the number of
/// architectures finished (or found scored) since the last call.
pub fn score_benchmark(options: &ScoreOptions, progress: &(dyn Fn(usize) + Sync)) -> Result<ScoreReport> {
    let start = Instant::now();
    options.config.validate()?;
    if options.proxies.is_empty() {
        return Err(Error::input("no proxy to score"));
    }
    if options.chunk_size == 0 || options.jobs == 0 {
        return Err(Error::input("the chunk size and the number of jobs must be at least 1"));
    }
    let indices = options.archs.indices();
    let config = options.config_json();
    let config_hash = sha256_hex(config.to_string().as_bytes());
    let tag = &config_hash[..12];
    let bench = BenchDir::new(&options.bench);
    let trained = match &options.weights_dir {
        Some(dir) => trained_weights_index(dir, options.dataset)?,
        None => BTreeMap::new(),
    };
    let host = HostInputs::prepare(options.dataset, &options.input, &options.config)?;
    let provenance_part = format!("nasrob-proxies-{tag}");
    let mut provenance = Provenance::new(SOURCE, options.command.clone());
    provenance.config = Some(config.clone());
    let provenance = provenance.rows()?;
    let on_gpu = options.device != Device::Cpu;
    let jobs = if on_gpu { 1 } else { options.jobs };
    if !on_gpu && jobs > 1 {
        // Workers already fill the cores; libtorch's own threads would oversubscribe them.
        tch::set_num_threads(1);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Error::Internal(format!("starting {jobs} workers: {e}")))?;
    let mut report = ScoreReport {
        config_hash: config_hash.clone(),
        architectures: indices.len(),
        chunks: indices.len().div_ceil(options.chunk_size),
        chunks_skipped: 0,
        scored: 0,
        rows_written: 0,
        null_scores: 0,
        trained_architectures: indices.iter().filter(|i| trained.contains_key(i)).count(),
        seconds: 0.0,
        proxy_seconds: BTreeMap::new(),
        parts: Vec::new(),
        notes: Vec::new(),
    };
    let space = SearchSpace::nb201();
    let no_weights: Vec<PathBuf> = Vec::new();
    for (chunk_number, chunk) in indices.chunks(options.chunk_size).enumerate() {
        let part = format!("nasrob-proxies-{}-{tag}-{chunk_number:05}", options.dataset.name());
        if bench.part_path(PROXIES.name, &part).exists() {
            report.chunks_skipped += 1;
            progress(chunk.len());
            continue;
        }
        let scored: Vec<Result<(usize, Vec<ProxyResult>)>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|&index| {
                    let arch = space.arch(index)?;
                    let inputs = host.to_device(options.device)?;
                    let weights = trained.get(&index).unwrap_or(&no_weights);
                    let results = score_arch(
                        &arch,
                        options.dataset,
                        &options.shape,
                        &options.proxies,
                        &inputs,
                        &options.config,
                        weights,
                    )?;
                    progress(1);
                    Ok((index, results))
                })
                .collect()
        });
        let mut rows = Rows::new(&PROXIES);
        for item in scored {
            let (index, results) = item?;
            for r in results {
                *report.proxy_seconds.entry(r.proxy.name().to_string()).or_default() += r.seconds;
                report.null_scores += usize::from(r.score.is_none());
                rows.push(&[
                    ("source", SOURCE.into()),
                    ("index", index.into()),
                    ("dataset", options.dataset.name().into()),
                    ("seed", (options.config.seed as i64).into()),
                    ("proxy", r.proxy.name().into()),
                    ("weights", r.weights.name().into()),
                    ("score", r.score.into()),
                    ("batch_size", r.batch_size.into()),
                    ("seconds", r.seconds.into()),
                    ("reason", r.reason.into()),
                ])?;
            }
        }
        // Each chunk is its own transaction (with the provenance row, the first time), so an
        // interrupted run keeps its finished chunks and a rerun scores only the rest.
        let mut tx = Transaction::begin(&bench, "proxy score")?;
        report.notes.extend(tx.notes().iter().cloned());
        if tx.part_exists(PROXIES.name, &part) {
            report.chunks_skipped += 1;
            continue;
        }
        if !tx.part_exists("provenance", &provenance_part) {
            tx.append(&provenance_part, &provenance, Some(&config_hash))?;
        }
        report.scored += chunk.len();
        report.rows_written += rows.len();
        report.parts.push(tx.append(&part, &rows, Some(&config_hash))?);
        tx.commit()?;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}
