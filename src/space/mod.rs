//! The NAS-Bench-201 cell search space: operations and edges, the arch string, NB201's official
//! index order (recomputed from its enumeration and CPython's seeded shuffle), isomorphism
//! classes, neighbourhoods, sampling, per-architecture features, and closed-form parameter and
//! FLOP counts. Needs no libtorch.

mod arch;
mod cost;
mod cpython_random;
mod index;

pub use arch::{Arch, ArchParseError, EDGE_NAMES, EDGES, Op};
pub use cost::{Cost, NetworkShape, network_cost};
pub use cpython_random::CPythonRandom;
pub use index::{NUM_ARCHS, NUM_UNIQUE, SearchSpace, SpaceError};

use rand::Rng;

/// A uniformly drawn architecture index.
pub fn sample_uniform<R: Rng + ?Sized>(rng: &mut R) -> usize {
    rng.random_range(0..NUM_ARCHS)
}

/// Per-architecture features stored in the `architectures` table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ArchFeatures {
    /// Count of each op in NB201's op order (none, skip_connect, nor_conv_1x1, nor_conv_3x3,
    /// avg_pool_3x3).
    pub op_counts: [usize; 5],
    pub output_connected: bool,
    /// Convolutions on the longest input-to-output path; `None` if the output is disconnected.
    pub longest_conv_path: Option<usize>,
}

impl ArchFeatures {
    pub fn of(arch: &Arch) -> ArchFeatures {
        ArchFeatures {
            op_counts: arch.op_counts(),
            output_connected: arch.output_connected(),
            longest_conv_path: arch.longest_conv_path(),
        }
    }
}
