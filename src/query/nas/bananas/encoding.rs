//! How BANANAS feeds an architecture to its surrogate: the path encoding and the one-hot
//! adjacency encoding (see [`Encoding`]).

use crate::query::nas::config::Encoding;
use crate::space::{Arch, EDGES, Op};

/// Positions in [`EDGES`] of the edges along each input-to-output route: 0→3; 0→1→3; 0→2→3;
/// 0→1→2→3.
const ROUTES: [&[usize]; 4] = [&[3], &[0, 4], &[1, 5], &[0, 2, 5]];

pub(super) fn encode(arch: &Arch, encoding: Encoding) -> Vec<f64> {
    let n = Op::ALL.len();
    match encoding {
        Encoding::Path => {
            let mut x = vec![0.0; n + n * n + n * n * n];
            for route in ROUTES {
                // Slots of shorter sequences come first: 0..5, 5..30, 30..155.
                let offset: usize = (1..route.len()).map(|len| n.pow(len as u32)).sum();
                let slot: usize =
                    route.iter().enumerate().map(|(j, &e)| arch.ops[e].code() * n.pow(j as u32)).sum();
                x[offset + slot] = 1.0;
            }
            x
        }
        Encoding::AdjacencyOneHot => {
            let mut x = vec![0.0; EDGES.len() * n];
            for (e, op) in arch.ops.iter().enumerate() {
                x[e * n + op.code()] = 1.0;
            }
            x
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_encoding_marks_four_routes() {
        let all_conv = Arch { ops: [Op::NorConv3x3; 6] };
        let x = encode(&all_conv, Encoding::Path);
        assert_eq!(x.len(), 155);
        // One one-op route, two two-op routes sharing a slot, one three-op route.
        let c = Op::NorConv3x3.code();
        let ones: Vec<usize> = x.iter().enumerate().filter(|(_, v)| **v == 1.0).map(|(i, _)| i).collect();
        assert_eq!(ones, vec![c, 5 + c + 5 * c, 30 + c + 5 * c + 25 * c]);
        assert_eq!(encode(&all_conv, Encoding::AdjacencyOneHot).iter().sum::<f64>(), 6.0);
    }
}
