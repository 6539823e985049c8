//! Operations, edges and the NB201 architecture string.

use std::fmt;
use std::str::FromStr;

/// The five candidate operations of an NB201 cell edge, in NB201's order
/// (`xautodl.models.cell_operations.NAS_BENCH_201`), which is also the enumeration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    None,
    SkipConnect,
    NorConv1x1,
    NorConv3x3,
    AvgPool3x3,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::None, Op::SkipConnect, Op::NorConv1x1, Op::NorConv3x3, Op::AvgPool3x3];

    /// NB201's name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::NorConv1x1 => "nor_conv_1x1",
            Op::NorConv3x3 => "nor_conv_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// Position in [`Op::ALL`].
    pub fn code(self) -> usize {
        self as usize
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Kernel size of a convolution op, `None` for the parameter-free ops.
    pub fn conv_kernel(self) -> Option<usize> {
        match self {
            Op::NorConv1x1 => Some(1),
            Op::NorConv3x3 => Some(3),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The six edges of the cell as (from node, to node), in the order of the arch string:
/// 0→1, 0→2, 1→2, 0→3, 1→3, 2→3.
pub const EDGES: [(usize, usize); 6] = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)];

/// Edge names as used in tables and JSON (`"0->1"`, ...).
pub const EDGE_NAMES: [&str; 6] = ["0->1", "0->2", "1->2", "0->3", "1->3", "2->3"];

/// One cell of the NB201 space: the operation on each of the six edges, in [`EDGES`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch {
    pub ops: [Op; 6],
}

/// A malformed architecture string: where it went wrong and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed architecture string at byte {position}: expected {expected}, found {found}")]
pub struct ArchParseError {
    /// Byte offset into the input where parsing failed.
    pub position: usize,
    pub expected: String,
    pub found: String,
}

impl Arch {
    /// Rank of the architecture in `Structure.gen_all` order (before NB201's shuffle): the first
    /// edge is the most significant base-5 digit.
    pub fn enumeration_rank(&self) -> usize {
        self.ops.iter().fold(0, |acc, op| acc * 5 + op.code())
    }

    /// Inverse of [`Arch::enumeration_rank`]. `rank` must be below 15,625.
    pub fn from_enumeration_rank(rank: usize) -> Arch {
        let mut ops = [Op::None; 6];
        let mut rest = rank;
        for slot in ops.iter_mut().rev() {
            *slot = Op::ALL[rest % 5];
            rest /= 5;
        }
        Arch { ops }
    }

    /// The NB201 string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    pub fn to_nb201_string(&self) -> String {
        let o = &self.ops;
        format!("|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|", o[0], o[1], o[2], o[3], o[4], o[5])
    }

    /// Count of each op, in [`Op::ALL`] order.
    pub fn op_counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for op in self.ops {
            counts[op.code()] += 1;
        }
        counts
    }

    /// Whether the cell output (node 3) receives any signal from the input (node 0), i.e. a
    /// path of non-`none` edges exists. Cells without one output zeros.
    pub fn output_connected(&self) -> bool {
        let mut reach = [true, false, false, false];
        for (edge, &(from, to)) in EDGES.iter().enumerate() {
            if self.ops[edge] != Op::None && reach[from] {
                reach[to] = true;
            }
        }
        reach[3]
    }

    /// Number of convolutions on the longest input-to-output path made of non-`none` edges, or
    /// `None` when the output is disconnected.
    pub fn longest_conv_path(&self) -> Option<usize> {
        let mut best: [Option<usize>; 4] = [Some(0), None, None, None];
        for (edge, &(from, to)) in EDGES.iter().enumerate() {
            let op = self.ops[edge];
            if op == Op::None {
                continue;
            }
            if let Some(depth) = best[from] {
                let d = depth + usize::from(op.conv_kernel().is_some());
                best[to] = Some(best[to].map_or(d, |b| b.max(d)));
            }
        }
        best[3]
    }

    /// The 24 architectures that differ from this one on exactly one edge, edge by edge and
    /// within an edge in op order.
    pub fn neighbours(&self) -> Vec<Arch> {
        let mut out = Vec::with_capacity(24);
        for edge in 0..6 {
            for op in Op::ALL {
                if op != self.ops[edge] {
                    let mut ops = self.ops;
                    ops[edge] = op;
                    out.push(Arch { ops });
                }
            }
        }
        out
    }

    /// NB201's `Structure.to_unique_str(consider_zero=True)`: the key of the isomorphism class.
    /// Reproduced term for term, including that a node whose inputs are all zero reads `#+#`
    /// rather than `#`.
    pub fn unique_string(&self) -> String {
        let mut nodes: Vec<String> = vec!["0".to_string()];
        let mut edge = 0;
        for node in 1..4 {
            let mut terms: Vec<String> = Vec::with_capacity(node);
            for source in &nodes[..node] {
                let op = self.ops[edge];
                edge += 1;
                let term = if op == Op::None || source == "#" {
                    "#".to_string()
                } else if op == Op::SkipConnect {
                    source.clone()
                } else {
                    format!("({source})@{op}")
                };
                terms.push(term);
            }
            terms.sort();
            nodes.push(terms.join("+"));
        }
        nodes.pop().unwrap_or_default()
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_nb201_string())
    }
}

impl FromStr for Arch {
    type Err = ArchParseError;

    /// Parses `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`. Surrounding whitespace is ignored.
    fn from_str(input: &str) -> Result<Arch, ArchParseError> {
        let offset = input.len() - input.trim_start().len();
        Parser { text: input.trim(), pos: 0, offset }.parse()
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    offset: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, expected: impl Into<String>) -> Result<T, ArchParseError> {
        let rest = &self.text[self.pos..];
        let found = if rest.is_empty() {
            "end of input".to_string()
        } else {
            let snippet: String = rest.chars().take(16).collect();
            format!("{snippet:?}")
        };
        Err(ArchParseError { position: self.offset + self.pos, expected: expected.into(), found })
    }

    fn expect_char(&mut self, c: char) -> Result<(), ArchParseError> {
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            self.fail(format!("'{c}'"))
        }
    }

    fn parse(mut self) -> Result<Arch, ArchParseError> {
        let mut ops = [Op::None; 6];
        let mut edge = 0;
        for node in 1..4 {
            if node > 1 {
                self.expect_char('+')?;
            }
            self.expect_char('|')?;
            for input in 0..node {
                let start = self.pos;
                let len = self.text[start..].find(['~', '|', '+']).unwrap_or(self.text.len() - start);
                let name = &self.text[start..start + len];
                let Some(op) = Op::from_name(name) else {
                    let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                    return self.fail(format!("an operation name ({})", names.join(", ")));
                };
                self.pos += len;
                self.expect_char('~')?;
                let digit = input.to_string();
                if !self.text[self.pos..].starts_with(&digit) {
                    return self.fail(format!("input node {input} for edge {}", EDGE_NAMES[edge]));
                }
                self.pos += digit.len();
                self.expect_char('|')?;
                ops[edge] = op;
                edge += 1;
            }
        }
        if self.pos != self.text.len() {
            return self.fail("end of input");
        }
        Ok(Arch { ops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX_0: &str =
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";

    #[test]
    fn string_round_trip() {
        let arch: Arch = INDEX_0.parse().unwrap();
        assert_eq!(arch.ops[0], Op::AvgPool3x3);
        assert_eq!(arch.ops[5], Op::SkipConnect);
        assert_eq!(arch.to_nb201_string(), INDEX_0);
        for rank in [0, 1, 777, 15_624] {
            let a = Arch::from_enumeration_rank(rank);
            assert_eq!(a.enumeration_rank(), rank);
            assert_eq!(a.to_nb201_string().parse::<Arch>().unwrap(), a);
        }
    }

    #[test]
    fn parse_errors_name_position_and_expectation() {
        let err = "".parse::<Arch>().unwrap_err();
        assert_eq!(err.position, 0);
        assert!(err.expected.contains('|'));
        let err = "|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|".parse::<Arch>().unwrap_err();
        assert_eq!(err.position, 1);
        assert!(err.expected.contains("operation name"), "{err}");
        let err = "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|".parse::<Arch>().unwrap_err();
        assert_eq!(err.position, 6);
        assert!(err.expected.contains("input node 0"));
        let err = "|none~0|+|none~0|none~1|+|none~0|none~1|".parse::<Arch>().unwrap_err();
        assert!(err.found.contains("end of input"));
        let err = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|x".parse::<Arch>().unwrap_err();
        assert_eq!(err.expected, "end of input");
    }

    #[test]
    fn features() {
        let arch: Arch = INDEX_0.parse().unwrap();
        assert_eq!(arch.op_counts(), [0, 3, 2, 0, 1]);
        assert!(arch.output_connected());
        assert_eq!(arch.longest_conv_path(), Some(1));
        let all_none = Arch { ops: [Op::None; 6] };
        assert!(!all_none.output_connected());
        assert_eq!(all_none.longest_conv_path(), None);
        let chain =
            Arch { ops: [Op::NorConv3x3, Op::None, Op::NorConv1x1, Op::None, Op::None, Op::NorConv3x3] };
        assert_eq!(chain.longest_conv_path(), Some(3));
        let n = arch.neighbours();
        assert_eq!(n.len(), 24);
        assert!(n.iter().all(|b| b.ops.iter().zip(arch.ops).filter(|(x, y)| **x != *y).count() == 1));
    }

    #[test]
    fn unique_string_matches_nb201_examples() {
        let arch: Arch = INDEX_0.parse().unwrap();
        assert_eq!(
            arch.unique_string(),
            "(0)@avg_pool_3x3+(0)@avg_pool_3x3+(0)@nor_conv_1x1+(0)@nor_conv_1x1"
        );
        assert_eq!(Arch { ops: [Op::None; 6] }.unique_string(), "#+#+#");
    }
}
