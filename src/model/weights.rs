//! Weights as safetensors: float32 tensors named like NB201's PyTorch modules, plus
//! `__metadata__` naming the architecture, dataset and network size, so that weights are never
//! loaded into a network they were not trained for (parameter-free ops leave no trace in the
//! tensor names, and libtorch's copy would silently broadcast a 1x1 kernel into a 3x3 one).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::fsutil;
use crate::{Error, Result};

/// What a weights file was trained for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsMeta {
    pub arch: String,
    pub dataset: String,
    pub channels: usize,
    pub cells_per_stage: usize,
}

impl WeightsMeta {
    /// The `__metadata__` entries a weights file carries.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("format".to_string(), "nasrob-weights-1".to_string()),
            ("arch".to_string(), self.arch.clone()),
            ("dataset".to_string(), self.dataset.clone()),
            ("channels".to_string(), self.channels.to_string()),
            ("cells_per_stage".to_string(), self.cells_per_stage.to_string()),
        ])
    }

    /// `None` when the map has none of the keys (weights from elsewhere); an error naming the key
    /// when it has some of them but not all, or a value that does not parse.
    fn from_map(map: &BTreeMap<String, String>) -> std::result::Result<Option<WeightsMeta>, String> {
        const KEYS: [&str; 4] = ["arch", "dataset", "channels", "cells_per_stage"];
        if KEYS.iter().all(|k| !map.contains_key(*k)) {
            return Ok(None);
        }
        let get = |key: &str| map.get(key).ok_or_else(|| format!("it has no '{key}'"));
        let number = |key: &str| -> std::result::Result<usize, String> {
            let text = get(key)?;
            text.parse().map_err(|_| format!("'{key}' is '{text}', not a whole number"))
        };
        Ok(Some(WeightsMeta {
            arch: get("arch")?.clone(),
            dataset: get("dataset")?.clone(),
            channels: number("channels")?,
            cells_per_stage: number("cells_per_stage")?,
        }))
    }
}

/// Writes named tensors (as float32, in name order) with string metadata, atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut sorted: Vec<&(String, Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(metadata).map_err(|e| Error::Internal(e.to_string()))?,
    );
    let mut blobs: Vec<Vec<u8>> = Vec::with_capacity(sorted.len());
    let mut offset = 0usize;
    for (name, tensor) in sorted {
        let flat = tensor.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous().view([-1]);
        let values: Vec<f32> =
            Vec::<f32>::try_from(&flat).map_err(|e| Error::Internal(format!("reading {name}: {e}")))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": tensor.size(), "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
        blobs.push(bytes);
    }
    let mut header_bytes = serde_json::to_vec(&header).map_err(|e| Error::Internal(e.to_string()))?;
    while header_bytes.len() % 8 != 0 {
        header_bytes.push(b' ');
    }
    fsutil::write_atomic(path, |file| {
        let mut out = std::io::BufWriter::new(file);
        out.write_all(&(header_bytes.len() as u64).to_le_bytes())?;
        out.write_all(&header_bytes)?;
        for blob in &blobs {
            out.write_all(blob)?;
        }
        out.flush()
    })
}

/// Reads the `__metadata__` of a safetensors file.
pub fn read_safetensors_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input_file(path, "weights file not found"),
        _ => Error::input_file(path, e),
    })?;
    let bad = || Error::input_file(path, "not a safetensors file (truncated or another format)");
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
        .ok_or_else(bad)?;
    let header = bytes.get(8..8 + len).ok_or_else(bad)?;
    let doc: serde_json::Value = serde_json::from_slice(header).map_err(|_| bad())?;
    let map = doc
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default();
    Ok(map)
}

/// Saves the variables of `vs` (running statistics included) with `meta`.
pub fn save_weights(vs: &VarStore, path: &Path, meta: &WeightsMeta) -> Result<()> {
    let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    write_safetensors(path, &tensors, &meta.to_map())
}

/// The metadata of a weights file, `None` when it carries none (weights from elsewhere).
pub fn read_weights_meta(path: &Path) -> Result<Option<WeightsMeta>> {
    WeightsMeta::from_map(&read_safetensors_metadata(path)?).map_err(|problem| {
        Error::input_file(
            path,
            format!(
                "the weights file's nasrob metadata is damaged ({problem}); it was edited or not written by \
                 nasrob train: train the network again, or restore the file"
            ),
        )
    })
}

/// Loads weights into `vs` after checking they were made for `expected` (when the file says) and
/// that names and shapes match exactly.
pub fn load_weights(vs: &mut VarStore, path: &Path, expected: &WeightsMeta) -> Result<()> {
    let stored = read_weights_meta(path)?;
    if let Some(meta) = &stored
        && meta != expected
    {
        return Err(Error::input_file(
            path,
            format!(
                "weights are for {} on {} (C={}, N={}), not {} on {} (C={}, N={})",
                meta.arch,
                meta.dataset,
                meta.channels,
                meta.cells_per_stage,
                expected.arch,
                expected.dataset,
                expected.channels,
                expected.cells_per_stage
            ),
        ));
    }
    let tensors =
        Tensor::read_safetensors(path).map_err(|e| Error::input_file(path, format!("unreadable: {e}")))?;
    let file: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let variables = vs.variables();
    let mismatch = |what: String| {
        Error::input_file(
            path,
            format!("these weights do not fit this network (another architecture or dataset?): {what}"),
        )
    };
    for (name, var) in &variables {
        let Some(src) = file.get(name) else { return Err(mismatch(format!("no tensor {name}"))) };
        if src.size() != var.size() {
            return Err(mismatch(format!(
                "{name} has shape {:?}, the network needs {:?}",
                src.size(),
                var.size()
            )));
        }
        if src.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
            return Err(Error::input_file(
                path,
                format!(
                    "tensor {name} holds NaN or infinite values (the training diverged?): these weights give no \
                     meaningful measurement; train the network again"
                ),
            ));
        }
    }
    if let Some(extra) = file.keys().find(|k| !variables.contains_key(*k)) {
        return Err(mismatch(format!("the file has {extra}, which this network lacks")));
    }
    tch::no_grad(|| -> Result<()> {
        for (name, var) in &variables {
            let src = &file[name];
            let mut var = var.shallow_clone();
            var.f_copy_(&src.f_to_device(var.device())?.f_to_kind(var.kind())?)?;
        }
        Ok(())
    })
}
