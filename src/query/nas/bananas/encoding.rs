//! How BANANAS feeds an architecture to its surrogate: the path encoding and the one-hot
//! adjacency encoding (see [`Encoding`]), both binary and given as the positions of their ones.

use crate::query::nas::config::Encoding;
use crate::space::{Arch, EDGES, Op};

/// Positions in [`EDGES`] of the edges along each input-to-output route: 0→3; 0→1→3; 0→2→3;
/// 0→1→2→3.
const ROUTES: [&[usize]; 4] = [&[3], &[0, 4], &[1, 5], &[0, 2, 5]];

/// The length of an encoding.
pub(super) fn dims(encoding: Encoding) -> usize {
    let n = Op::ALL.len();
    match encoding {
        Encoding::Path => n + n * n + n * n * n,
        Encoding::AdjacencyOneHot => EDGES.len() * n,
    }
}

/// The positions of the ones of `arch`'s encoding, ascending and without repeats.
pub(super) fn encode(arch: &Arch, encoding: Encoding) -> Vec<usize> {
    let n = Op::ALL.len();
    let mut ones: Vec<usize> = match encoding {
        Encoding::Path => ROUTES
            .iter()
            .map(|route| {
                // Slots of shorter sequences come first: 0..5, 5..30, 30..155.
                let offset: usize = (1..route.len()).map(|len| n.pow(len as u32)).sum();
                let slot: usize =
                    route.iter().enumerate().map(|(j, &e)| arch.ops[e].code() * n.pow(j as u32)).sum();
                offset + slot
            })
            .collect(),
        Encoding::AdjacencyOneHot => arch.ops.iter().enumerate().map(|(e, op)| e * n + op.code()).collect(),
    };
    ones.sort_unstable();
    ones.dedup();
    ones
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_encoding_marks_four_routes() {
        let all_conv = Arch { ops: [Op::NorConv3x3; 6] };
        // One one-op route, two two-op routes sharing a slot, one three-op route.
        let c = Op::NorConv3x3.code();
        assert_eq!(encode(&all_conv, Encoding::Path), vec![c, 5 + c + 5 * c, 30 + c + 5 * c + 25 * c]);
        assert_eq!(dims(Encoding::Path), 155);
        let one_hot = encode(&all_conv, Encoding::AdjacencyOneHot);
        assert_eq!(one_hot, (0..6).map(|e| e * 5 + c).collect::<Vec<_>>());
        assert!(one_hot.iter().all(|&j| j < dims(Encoding::AdjacencyOneHot)));
    }
}
