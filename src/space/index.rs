//! NB201's index order and isomorphism classes, computed once per process.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::arch::{Arch, ArchParseError};
use super::cpython_random::CPythonRandom;

/// Number of architectures in the NB201 cell space (5 ops on 6 edges).
pub const NUM_ARCHS: usize = 15_625;
/// Number of isomorphism classes under `to_unique_str(consider_zero=True)`.
pub const NUM_UNIQUE: usize = 6_466;
/// The seed NB201 shuffled its enumeration with (`random.seed(88)` in `main-tss.py`).
const NB201_SHUFFLE_SEED: u64 = 88;

/// Why an architecture reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceError {
    #[error("architecture index {index} is out of range: NB201 indices run from 0 to 15624")]
    /// The index as given (it may not fit an integer type).
    IndexOutOfRange { index: String },
    #[error(transparent)]
    Malformed(#[from] ArchParseError),
    #[error(
        "'{input}' is neither an architecture index (0..15624) nor an arch string like \
         '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|'"
    )]
    NotAnArch { input: String },
}

/// The NB201 topology search space with its official indices.
pub struct SearchSpace {
    archs: Vec<Arch>,
    index_by_rank: Vec<u32>,
    representative: Vec<u32>,
    unique_strings: Vec<String>,
    num_classes: usize,
}

impl SearchSpace {
    /// The space, built on first use (about a millisecond) and shared afterwards.
    pub fn nb201() -> &'static SearchSpace {
        static SPACE: OnceLock<SearchSpace> = OnceLock::new();
        SPACE.get_or_init(SearchSpace::build)
    }

    fn build() -> SearchSpace {
        let mut archs: Vec<Arch> = (0..NUM_ARCHS).map(Arch::from_enumeration_rank).collect();
        CPythonRandom::new(NB201_SHUFFLE_SEED).shuffle(&mut archs);
        let mut index_by_rank = vec![0u32; NUM_ARCHS];
        for (index, arch) in archs.iter().enumerate() {
            index_by_rank[arch.enumeration_rank()] = index as u32;
        }
        let unique_strings: Vec<String> = archs.iter().map(Arch::unique_string).collect();
        let mut first_of_class: HashMap<&str, u32> = HashMap::new();
        let representative: Vec<u32> = unique_strings
            .iter()
            .enumerate()
            .map(|(index, key)| *first_of_class.entry(key.as_str()).or_insert(index as u32))
            .collect();
        let num_classes = first_of_class.len();
        SearchSpace { archs, index_by_rank, representative, unique_strings, num_classes }
    }

    pub fn len(&self) -> usize {
        self.archs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.archs.is_empty()
    }

    /// All architectures in index order.
    pub fn archs(&self) -> &[Arch] {
        &self.archs
    }

    pub fn arch(&self, index: usize) -> Result<Arch, SpaceError> {
        self.archs.get(index).copied().ok_or_else(|| SpaceError::IndexOutOfRange { index: index.to_string() })
    }

    /// NB201 index of an architecture (every [`Arch`] has one).
    pub fn index_of(&self, arch: &Arch) -> usize {
        self.index_by_rank[arch.enumeration_rank()] as usize
    }

    /// Smallest index of the isomorphism class of `index`.
    pub fn representative(&self, index: usize) -> Result<usize, SpaceError> {
        self.check(index)?;
        Ok(self.representative[index] as usize)
    }

    pub fn is_representative(&self, index: usize) -> Result<bool, SpaceError> {
        Ok(self.representative(index)? == index)
    }

    /// NB201's `to_unique_str(consider_zero=True)` of `index`.
    pub fn unique_string(&self, index: usize) -> Result<&str, SpaceError> {
        self.check(index)?;
        Ok(&self.unique_strings[index])
    }

    /// Indices that represent their isomorphism class, ascending (6,466 of them).
    pub fn representatives(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| self.representative[i] as usize == i).collect()
    }

    pub fn num_isomorphism_classes(&self) -> usize {
        self.num_classes
    }

    /// Indices of the 24 single-edge neighbours of `index`.
    pub fn neighbours(&self, index: usize) -> Result<Vec<usize>, SpaceError> {
        Ok(self.arch(index)?.neighbours().iter().map(|a| self.index_of(a)).collect())
    }

    /// Resolves an index (`"13714"`) or an arch string to an NB201 index.
    pub fn resolve(&self, spec: &str) -> Result<usize, SpaceError> {
        let spec = spec.trim();
        if spec.starts_with('|') {
            let arch: Arch = spec.parse()?;
            return Ok(self.index_of(&arch));
        }
        if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
            return match spec.parse::<usize>() {
                Ok(index) if index < self.len() => Ok(index),
                _ => Err(SpaceError::IndexOutOfRange { index: spec.to_string() }),
            };
        }
        Err(SpaceError::NotAnArch { input: spec.to_string() })
    }

    fn check(&self, index: usize) -> Result<(), SpaceError> {
        if index < self.len() {
            Ok(())
        } else {
            Err(SpaceError::IndexOutOfRange { index: index.to_string() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nb201_asserted_indices() {
        // The three strings `main-tss.py` asserts after its shuffle.
        let space = SearchSpace::nb201();
        assert_eq!(space.len(), NUM_ARCHS);
        let expect = [
            (
                0,
                "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
            ),
            (9, "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
            (123, "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"),
        ];
        for (index, string) in expect {
            assert_eq!(space.arch(index).unwrap().to_nb201_string(), string);
            assert_eq!(space.resolve(string).unwrap(), index);
        }
        assert_eq!(space.num_isomorphism_classes(), NUM_UNIQUE);
        assert_eq!(space.representatives().len(), NUM_UNIQUE);
    }

    #[test]
    fn resolve_rejects_bad_references() {
        let space = SearchSpace::nb201();
        assert_eq!(space.resolve("15625"), Err(SpaceError::IndexOutOfRange { index: "15625".into() }));
        let huge = "99999999999999999999999999";
        assert_eq!(space.resolve(huge), Err(SpaceError::IndexOutOfRange { index: huge.into() }));
        assert!(matches!(space.resolve("99999999999999999999999"), Err(SpaceError::IndexOutOfRange { .. })));
        assert!(matches!(space.resolve("abc"), Err(SpaceError::NotAnArch { .. })));
        assert!(matches!(space.resolve("-1"), Err(SpaceError::NotAnArch { .. })));
        assert!(matches!(space.resolve("|none~0|+"), Err(SpaceError::Malformed(_))));
        assert_eq!(space.resolve(" 42 ").unwrap(), 42);
    }
}
