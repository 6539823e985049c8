//! NB201's split index files (`cifar-split.txt`, `cifar100-test-split.txt`,
//! `imagenet-16-120-test-split.txt`): JSON objects mapping a split name to `["int", [indices...]]`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

/// The named index lists of one split file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nb201Split {
    pub path: std::path::PathBuf,
    pub parts: BTreeMap<String, Vec<usize>>,
}

impl Nb201Split {
    /// The two named halves, which must be disjoint.
    pub fn halves(&self, first: &str, second: &str) -> Result<(&[usize], &[usize])> {
        let get = |name: &str| {
            self.parts.get(name).map(Vec::as_slice).ok_or_else(|| {
                Error::input_file(
                    &self.path,
                    format!("has no '{name}' list; is it the right NB201 split file?"),
                )
            })
        };
        let (a, b) = (get(first)?, get(second)?);
        let set: std::collections::HashSet<usize> = a.iter().copied().collect();
        if b.iter().any(|i| set.contains(i)) {
            return Err(Error::input_file(&self.path, format!("'{first}' and '{second}' overlap")));
        }
        Ok((a, b))
    }
}

/// Parses a split file; `fix` says how to obtain it when it is missing.
pub fn read_split_file(path: &Path, fix: &str) -> Result<Nb201Split> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input_file(path, format!("missing; {fix}")),
        _ => Error::input_file(path, format!("cannot read ({e}); {fix}")),
    })?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::input_file(path, format!("not a valid split file ({e}); {fix}")))?;
    let Some(object) = doc.as_object() else {
        return Err(Error::input_file(path, format!("not a JSON object; {fix}")));
    };
    let mut parts = BTreeMap::new();
    for (name, value) in object {
        let list = value.get(1).and_then(|v| v.as_array()).ok_or_else(|| {
            Error::input_file(path, format!("entry '{name}' is not [\"int\", [...]]; {fix}"))
        })?;
        let indices = list
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.parse::<usize>().ok(),
                serde_json::Value::Number(n) => n.as_u64().map(|n| n as usize),
                _ => None,
            })
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| {
                Error::input_file(path, format!("entry '{name}' holds a non-integer index; {fix}"))
            })?;
        parts.insert(name.clone(), indices);
    }
    Ok(Nb201Split { path: path.to_path_buf(), parts })
}
