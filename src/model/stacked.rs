//! K NB201 networks of one shape and dataset as one computation. Their channels are stacked
//! (network k owns channels `k*C..(k+1)*C` of every feature map): the stem is one convolution with
//! K·C outputs, every reduction block a grouped convolution with groups = K, and each cell edge a
//! grouped convolution per operation over the networks that use it there, gathered from and added
//! back into the stacked channels. BatchNorm is per channel and the classifier a grouped 1x1
//! convolution, so each network keeps its own statistics and outputs: the arithmetic is that of K
//! separate networks, with about K times fewer (and larger) kernels.
//!
//! The stack holds its parameters in its own VarStore and knows where each solo parameter (named as
//! in [`super::TinyNetwork`]) lives in it, so networks are copied in from solo networks (which is how
//! they are initialised exactly as alone) and out again as today's weights files. May import
//! `space`, `dataset` and the rest of `model`.

use std::collections::BTreeMap;

use tch::nn;
use tch::{Kind, Tensor};

use super::{TinyNetwork, batch_norm, batch_norm_forward, count_operations};
use crate::dataset::Dataset;
use crate::space::{Arch, EDGES, NetworkShape, Op};
use crate::{Error, Result};

/// What a stack is fed: one batch all networks see, or one batch per network.
pub enum StackInput<'a> {
    /// `[B, c, h, w]` images in [0,1], the same for every network (training, clean evaluation).
    Shared(&'a Tensor),
    /// `[K, B, c, h, w]` images in [0,1], batch k for network k (attacks).
    PerNetwork(&'a Tensor),
}

/// Rows `offset..offset + len` of a stacked tensor's first dimension hold one solo parameter of
/// shape `solo_shape`.
struct Member {
    solo: String,
    stacked: Tensor,
    offset: i64,
    len: i64,
    solo_shape: Vec<i64>,
}

/// A convolution over the stacked channels of `groups` networks: weight `[groups*c_out, c_in, k, k]`.
struct GroupConv {
    weight: Tensor,
    stride: i64,
    padding: i64,
    groups: i64,
}

impl GroupConv {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        count_operations(1);
        Ok(xs.f_conv2d::<Tensor>(
            &self.weight,
            None,
            [self.stride; 2],
            [self.padding; 2],
            [1, 1],
            self.groups,
        )?)
    }
}

/// ReLU is applied by the caller (once per source node), then convolution and BatchNorm.
struct ConvBn {
    conv: GroupConv,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn forward(&self, relu_input: &Tensor, train: bool) -> Result<Tensor> {
        batch_norm_forward(&self.bn, &self.conv.forward(relu_input)?, train)
    }
}

/// Where one network's output of a cell edge comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Block `position` of convolution group `group`'s output.
    Conv {
        group: usize,
        position: usize,
    },
    /// The network's channels of the edge's input.
    Identity,
    /// The network's channels of the pooled input.
    Pool,
    Zero,
}

/// Consecutive networks whose edge outputs are consecutive blocks of one tensor.
#[derive(Clone, Copy, Debug)]
struct Run {
    first_network: usize,
    networks: usize,
    source: Source,
}

impl Run {
    /// Whether network `k` with `source` continues this run.
    fn continues(&self, k: usize, source: Source) -> bool {
        k == self.first_network + self.networks
            && match (self.source, source) {
                (Source::Conv { group: g, position: p }, Source::Conv { group, position }) => {
                    g == group && position == p + self.networks
                }
                (a, b) => a == b,
            }
    }
}

/// Consecutive runs of `sources` (one per network).
fn runs(sources: &[Source]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (k, &source) in sources.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run.continues(k, source) => run.networks += 1,
            _ => runs.push(Run { first_network: k, networks: 1, source }),
        }
    }
    runs
}

/// A convolution of one edge over the networks that use it there; `inputs` are the runs of
/// consecutive networks among them, as (first network, networks).
struct EdgeConv {
    inputs: Vec<(usize, usize)>,
    op: ConvBn,
}

/// One cell edge of every network: the convolutions in use on it, whether any network pools, and
/// where each network's output comes from.
struct StackedEdge {
    from: usize,
    to: usize,
    convs: Vec<EdgeConv>,
    pool: bool,
    runs: Vec<Run>,
}

struct StackedCell {
    /// Channels of each network's feature maps in this cell.
    channels: i64,
    edges: Vec<StackedEdge>,
}

struct StackedResBlock {
    conv_a: ConvBn,
    conv_b: ConvBn,
    shortcut: GroupConv,
}

// A handful per network, built once: boxing the large variant would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum StackedLayer {
    Cell(StackedCell),
    Reduction(StackedResBlock),
}

/// K NB201 networks of one shape for one dataset, run as one; see the module documentation.
pub struct StackedNetworks {
    archs: Vec<Arch>,
    dataset: Dataset,
    shape: NetworkShape,
    mean: Tensor,
    std: Tensor,
    stem: GroupConv,
    stem_bn: nn::BatchNorm,
    layers: Vec<StackedLayer>,
    last_bn: nn::BatchNorm,
    classifier_weight: Tensor,
    classifier_bias: Tensor,
    members: Vec<Vec<Member>>,
}

/// Creates stacked variables and records which solo parameter each slice is.
struct Builder {
    networks: usize,
    members: Vec<Vec<Member>>,
}

impl Builder {
    fn record(&mut self, network: usize, solo: String, stacked: &Tensor, offset: i64, solo_shape: &[i64]) {
        let len = solo_shape.first().copied().unwrap_or(1);
        self.members[network].push(Member {
            solo,
            stacked: stacked.shallow_clone(),
            offset,
            len,
            solo_shape: solo_shape.to_vec(),
        });
    }

    /// A convolution for `networks` (their solo parameter prefixes, in stack order).
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        path: nn::Path,
        owners: &[(usize, String)],
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
    ) -> GroupConv {
        let groups = owners.len() as i64;
        let weight = path.zeros("weight", &[groups * c_out, c_in, kernel, kernel]);
        for (position, (network, prefix)) in owners.iter().enumerate() {
            self.record(
                *network,
                format!("{prefix}.weight"),
                &weight,
                position as i64 * c_out,
                &[c_out, c_in, kernel, kernel],
            );
        }
        GroupConv { weight, stride, padding, groups }
    }

    fn batch_norm(&mut self, path: nn::Path, owners: &[(usize, String)], channels: i64) -> nn::BatchNorm {
        let bn = batch_norm(path, owners.len() as i64 * channels);
        for (position, (network, prefix)) in owners.iter().enumerate() {
            let offset = position as i64 * channels;
            let parts: [(&str, Option<&Tensor>); 4] = [
                ("weight", bn.ws.as_ref()),
                ("bias", bn.bs.as_ref()),
                ("running_mean", Some(&bn.running_mean)),
                ("running_var", Some(&bn.running_var)),
            ];
            for (name, tensor) in parts {
                if let Some(tensor) = tensor {
                    self.record(*network, format!("{prefix}.{name}"), tensor, offset, &[channels]);
                }
            }
        }
        bn
    }

    fn conv_bn(
        &mut self,
        path: nn::Path,
        owners: &[(usize, String)],
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
    ) -> ConvBn {
        let conv_owners: Vec<(usize, String)> =
            owners.iter().map(|(k, p)| (*k, format!("{p}.op.1"))).collect();
        let bn_owners: Vec<(usize, String)> = owners.iter().map(|(k, p)| (*k, format!("{p}.op.2"))).collect();
        ConvBn {
            conv: self.conv(&path / "conv", &conv_owners, c_in, c_out, kernel, stride, (kernel - 1) / 2),
            bn: self.batch_norm(&path / "bn", &bn_owners, c_out),
        }
    }

    fn all(&self, prefix: &str) -> Vec<(usize, String)> {
        (0..self.networks).map(|k| (k, prefix.to_string())).collect()
    }
}

/// Channels `first*c .. (first+count)*c` of `xs` along dimension 1, for each run, side by side
/// (the tensor itself when the runs cover it whole).
fn blocks(xs: &Tensor, runs: &[(usize, usize)], c: i64) -> Result<Tensor> {
    let width = xs.size()[1];
    if let [(0, count)] = runs
        && *count as i64 * c == width
    {
        return Ok(xs.shallow_clone());
    }
    let parts: Vec<Tensor> = runs
        .iter()
        .map(|&(first, count)| xs.f_narrow(1, first as i64 * c, count as i64 * c))
        .collect::<std::result::Result<_, _>>()?;
    if let [only] = parts.as_slice() {
        return Ok(only.shallow_clone());
    }
    count_operations(1);
    Ok(Tensor::f_cat(&parts, 1)?)
}

impl StackedCell {
    fn new(builder: &mut Builder, path: nn::Path, archs: &[Arch], cell: usize, channels: i64) -> StackedCell {
        let mut edges = Vec::new();
        for (e, &(from, to)) in EDGES.iter().enumerate() {
            let mut sources = vec![Source::Zero; archs.len()];
            let mut convs = Vec::new();
            for op in [Op::NorConv1x1, Op::NorConv3x3] {
                let networks: Vec<usize> = (0..archs.len()).filter(|&k| archs[k].ops[e] == op).collect();
                if networks.is_empty() {
                    continue;
                }
                for (position, &k) in networks.iter().enumerate() {
                    sources[k] = Source::Conv { group: convs.len(), position };
                }
                let owners: Vec<(usize, String)> =
                    networks.iter().map(|&k| (k, format!("cells.{cell}.layers.{e}"))).collect();
                let kernel = op.conv_kernel().unwrap_or(1) as i64;
                let op_path = &path / format!("edge{e}") / op.name();
                let inputs = consecutive(&networks);
                convs.push(EdgeConv {
                    inputs,
                    op: builder.conv_bn(op_path, &owners, channels, channels, kernel, 1),
                });
            }
            for (k, arch) in archs.iter().enumerate() {
                match arch.ops[e] {
                    Op::SkipConnect => sources[k] = Source::Identity,
                    Op::AvgPool3x3 => sources[k] = Source::Pool,
                    _ => {}
                }
            }
            edges.push(StackedEdge {
                from,
                to,
                convs,
                pool: sources.contains(&Source::Pool),
                runs: runs(&sources),
            });
        }
        StackedCell { channels, edges }
    }

    /// Node j is the sum of its incoming edges, per network; returns node 3. Each node's ReLU is
    /// computed once for all the convolutions reading it; an edge's output is assembled from its
    /// operations' outputs by network.
    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let c = self.channels;
        let mut nodes: Vec<Tensor> = vec![xs.shallow_clone()];
        let mut relus: Vec<Option<Tensor>> = (0..4).map(|_| None).collect();
        let mut zeros: Option<Tensor> = None;
        let zeros_of = |zeros: &mut Option<Tensor>| -> Result<Tensor> {
            if zeros.is_none() {
                count_operations(1);
                *zeros = Some(xs.f_zeros_like()?);
            }
            Ok(zeros.as_ref().map(Tensor::shallow_clone).unwrap_or_default())
        };
        for node in 1..4 {
            let mut sum: Option<Tensor> = None;
            for edge in self.edges.iter().filter(|e| e.to == node) {
                if let [Run { source: Source::Zero, .. }] = edge.runs.as_slice() {
                    continue;
                }
                let input = nodes[edge.from].shallow_clone();
                let mut outputs = Vec::with_capacity(edge.convs.len());
                for conv in &edge.convs {
                    let relu = match &relus[edge.from] {
                        Some(relu) => relu.shallow_clone(),
                        None => {
                            count_operations(1);
                            let relu = input.f_relu()?;
                            relus[edge.from] = Some(relu.shallow_clone());
                            relu
                        }
                    };
                    outputs.push(conv.op.forward(&blocks(&relu, &conv.inputs, c)?, train)?);
                }
                let pooled = if edge.pool {
                    count_operations(1);
                    Some(input.f_avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>)?)
                } else {
                    None
                };
                let mut parts = Vec::with_capacity(edge.runs.len());
                for run in &edge.runs {
                    let (tensor, first) = match run.source {
                        Source::Conv { group, position } => (outputs[group].shallow_clone(), position),
                        Source::Identity => (input.shallow_clone(), run.first_network),
                        Source::Pool => match &pooled {
                            Some(pooled) => (pooled.shallow_clone(), run.first_network),
                            None => {
                                return Err(Error::Internal("an edge pools without a pooled input".into()));
                            }
                        },
                        Source::Zero => (zeros_of(&mut zeros)?, 0),
                    };
                    parts.push(blocks(&tensor, &[(first, run.networks)], c)?);
                }
                let out = match parts.pop() {
                    Some(only) if parts.is_empty() => only,
                    Some(last) => {
                        parts.push(last);
                        count_operations(1);
                        Tensor::f_cat(&parts, 1)?
                    }
                    None => return Err(Error::Internal("a cell edge without outputs".into())),
                };
                sum = Some(match sum {
                    Some(sum) => {
                        count_operations(1);
                        sum.f_add(&out)?
                    }
                    None => out,
                });
            }
            nodes.push(match sum {
                Some(sum) => sum,
                None => zeros_of(&mut zeros)?,
            });
        }
        Ok(nodes.swap_remove(3))
    }
}

/// Runs of consecutive entries of sorted `networks`, as (first, count).
fn consecutive(networks: &[usize]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &k in networks {
        match runs.last_mut() {
            Some((first, count)) if *first + *count == k => *count += 1,
            _ => runs.push((k, 1)),
        }
    }
    runs
}

impl StackedResBlock {
    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        count_operations(4);
        let a = self.conv_a.forward(&xs.f_relu()?, train)?;
        let residual = self.conv_b.forward(&a.f_relu()?, train)?;
        let pooled = xs.f_avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)?;
        Ok(self.shortcut.forward(&pooled)?.f_add(&residual)?)
    }
}

impl StackedNetworks {
    /// A stack of `archs` (at least one) with `shape` for `dataset`, its parameters under `vs`.
    /// Its weights are placeholders until every network is copied in with
    /// [`StackedNetworks::load_network`].
    pub fn new(
        vs: &nn::Path,
        archs: &[Arch],
        shape: &NetworkShape,
        dataset: Dataset,
    ) -> Result<StackedNetworks> {
        if archs.is_empty() {
            return Err(Error::input("a stack needs at least one network (group size 0 was asked for)"));
        }
        TinyNetwork::check_shape(shape, dataset)?;
        let k = archs.len();
        let device = vs.device();
        let mut builder = Builder { networks: k, members: (0..k).map(|_| Vec::new()).collect() };
        let c = shape.channels as i64;
        let c_in = shape.input_channels as i64;
        let stem = builder.conv(vs / "stem" / "conv", &builder.all("stem.0"), c_in, c, 3, 1, 1);
        let stem_bn = builder.batch_norm(vs / "stem" / "bn", &builder.all("stem.1"), c);
        let mut layers = Vec::new();
        let mut c_prev = c;
        for stage in 0..3 {
            let c_stage = c << stage;
            if stage > 0 {
                let i = layers.len();
                let path = vs / "cells" / i;
                let prefix = format!("cells.{i}");
                let block = StackedResBlock {
                    conv_a: builder.conv_bn(
                        &path / "conv_a",
                        &builder.all(&format!("{prefix}.conv_a")),
                        c_prev,
                        c_stage,
                        3,
                        2,
                    ),
                    conv_b: builder.conv_bn(
                        &path / "conv_b",
                        &builder.all(&format!("{prefix}.conv_b")),
                        c_stage,
                        c_stage,
                        3,
                        1,
                    ),
                    shortcut: builder.conv(
                        &path / "shortcut",
                        &builder.all(&format!("{prefix}.downsample.1")),
                        c_prev,
                        c_stage,
                        1,
                        1,
                        0,
                    ),
                };
                layers.push(StackedLayer::Reduction(block));
            }
            for _ in 0..shape.cells_per_stage {
                let i = layers.len();
                layers.push(StackedLayer::Cell(StackedCell::new(
                    &mut builder,
                    vs / "cells" / i,
                    archs,
                    i,
                    c_stage,
                )));
            }
            c_prev = c_stage;
        }
        let last_bn = builder.batch_norm(vs / "lastact", &builder.all("lastact.0"), c_prev);
        let classes = shape.num_classes as i64;
        let classifier = vs / "classifier";
        let classifier_weight = classifier.zeros("weight", &[k as i64 * classes, c_prev, 1, 1]);
        let classifier_bias = classifier.zeros("bias", &[k as i64 * classes]);
        for network in 0..k {
            let offset = network as i64 * classes;
            builder.record(
                network,
                "classifier.weight".into(),
                &classifier_weight,
                offset,
                &[classes, c_prev],
            );
            builder.record(network, "classifier.bias".into(), &classifier_bias, offset, &[classes]);
        }
        let (mean, std) = dataset.normalization();
        let as_tensor = |v: &[f64]| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(v)?.f_to_kind(Kind::Float)?.f_view([1, -1, 1, 1])?.f_to_device(device)?)
        };
        Ok(StackedNetworks {
            archs: archs.to_vec(),
            dataset,
            shape: *shape,
            mean: as_tensor(&mean)?,
            std: as_tensor(&std)?,
            stem,
            stem_bn,
            layers,
            last_bn,
            classifier_weight,
            classifier_bias,
            members: builder.members,
        })
    }

    /// Networks in the stack.
    pub fn len(&self) -> usize {
        self.archs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.archs.is_empty()
    }

    pub fn archs(&self) -> &[Arch] {
        &self.archs
    }

    pub fn shape(&self) -> &NetworkShape {
        &self.shape
    }

    pub fn dataset(&self) -> Dataset {
        self.dataset
    }

    /// Copies network `k`'s parameters and running statistics from a solo network's variables
    /// (named as [`TinyNetwork`] names them); the solo network must have the stack's shape and
    /// network k's architecture.
    pub fn load_network(&self, k: usize, solo: &BTreeMap<String, Tensor>) -> Result<()> {
        let members = self.network_members(k)?;
        if solo.len() != members.len() {
            return Err(Error::input(format!(
                "network {k} of the stack has {} tensors but the solo network {} (another architecture or size?)",
                members.len(),
                solo.len()
            )));
        }
        tch::no_grad(|| -> Result<()> {
            for member in members {
                let source = solo.get(&member.solo).ok_or_else(|| {
                    Error::input(format!(
                        "the solo network lacks {}, which network {k} of the stack has",
                        member.solo
                    ))
                })?;
                if source.size() != member.solo_shape {
                    return Err(Error::input(format!(
                        "{} has shape {:?}, the stack expects {:?}",
                        member.solo,
                        source.size(),
                        member.solo_shape
                    )));
                }
                let mut slot = member.stacked.f_narrow(0, member.offset, member.len)?;
                let source = source.f_to_device(slot.device())?.f_to_kind(slot.kind())?;
                slot.f_copy_(&source.f_view(slot.size().as_slice())?)?;
            }
            Ok(())
        })
    }

    /// Network `k`'s parameters and running statistics as a solo network names and shapes them
    /// (views into the stack; copy them before the stack changes if they must stay).
    pub fn network_tensors(&self, k: usize) -> Result<Vec<(String, Tensor)>> {
        self.network_members(k)?
            .iter()
            .map(|m| {
                let slot = m.stacked.f_narrow(0, m.offset, m.len)?.f_detach()?;
                Ok((m.solo.clone(), slot.f_reshape(m.solo_shape.as_slice())?))
            })
            .collect()
    }

    /// The gradient of network `k`'s parameter `solo` (a solo network's name), shaped as alone.
    pub fn network_gradient(&self, k: usize, solo: &str) -> Result<Tensor> {
        let member = self
            .network_members(k)?
            .iter()
            .find(|m| m.solo == solo)
            .ok_or_else(|| Error::input(format!("network {k} of the stack has no parameter {solo}")))?;
        let grad = member.stacked.grad();
        if !grad.defined() {
            return Err(Error::input(format!("{solo} of network {k} has no gradient yet")));
        }
        Ok(grad.f_narrow(0, member.offset, member.len)?.f_reshape(member.solo_shape.as_slice())?)
    }

    fn network_members(&self, k: usize) -> Result<&[Member]> {
        self.members
            .get(k)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::Internal(format!("network {k} asked of a stack of {}", self.archs.len())))
    }

    /// Logits `[K, B, classes]` of [0,1] images; `train` puts BatchNorm in training mode.
    pub fn forward(&self, input: StackInput<'_>, train: bool) -> Result<Tensor> {
        let k = self.archs.len() as i64;
        let stem = match input {
            StackInput::Shared(xs) => {
                let kind = xs.kind();
                count_operations(3);
                let normalized = xs.f_sub(&self.mean.f_to_kind(kind)?)?.f_div(&self.std.f_to_kind(kind)?)?;
                normalized.f_conv2d::<Tensor>(&self.stem.weight, None, [1, 1], [1, 1], [1, 1], 1)?
            }
            StackInput::PerNetwork(xs) => {
                let size = xs.size();
                if size.len() != 5 || size[0] != k {
                    return Err(Error::Internal(format!(
                        "a stack of {k} was given inputs of shape {size:?}"
                    )));
                }
                let kind = xs.kind();
                count_operations(3);
                let normalized = xs
                    .f_sub(&self.mean.f_unsqueeze(0)?.f_to_kind(kind)?)?
                    .f_div(&self.std.f_unsqueeze(0)?.f_to_kind(kind)?)?;
                let stacked =
                    normalized.f_transpose(0, 1)?.f_reshape([size[1], k * size[2], size[3], size[4]])?;
                self.stem.forward(&stacked)?
            }
        };
        let mut x = batch_norm_forward(&self.stem_bn, &stem, train)?;
        for layer in &self.layers {
            x = match layer {
                StackedLayer::Cell(cell) => cell.forward(&x, train)?,
                StackedLayer::Reduction(block) => block.forward(&x, train)?,
            };
        }
        count_operations(3);
        let features =
            batch_norm_forward(&self.last_bn, &x, train)?.f_relu()?.f_adaptive_avg_pool2d([1, 1])?;
        let logits = features.f_conv2d(
            &self.classifier_weight,
            Some(&self.classifier_bias),
            [1, 1],
            [0, 0],
            [1, 1],
            k,
        )?;
        let batch = logits.size()[0];
        Ok(logits.f_view([batch, k, -1])?.f_transpose(0, 1)?)
    }
}
