//! Rows of the tables that describe the search space itself.

use super::schema::{ARCHITECTURES, COSTS};
use super::write::{Rows, Value};
use crate::Result;
use crate::dataset::Dataset;
use crate::space::{ArchFeatures, NetworkShape, SearchSpace, network_cost};

/// One `architectures` row per index in `indices`.
pub fn architecture_rows(indices: &[usize]) -> Result<Rows> {
    let space = SearchSpace::nb201();
    let mut rows = Rows::new(&ARCHITECTURES);
    for &index in indices {
        let arch = space.arch(index)?;
        let features = ArchFeatures::of(&arch);
        let isomorph = space.representative(index)?;
        let op = |e: usize| Value::from(arch.ops[e].name());
        let count = |o: usize| Value::from(features.op_counts[o]);
        rows.push(&[
            ("index", index.into()),
            ("arch", arch.to_nb201_string().into()),
            ("op_0_1", op(0)),
            ("op_0_2", op(1)),
            ("op_1_2", op(2)),
            ("op_0_3", op(3)),
            ("op_1_3", op(4)),
            ("op_2_3", op(5)),
            ("isomorph", isomorph.into()),
            ("is_representative", (isomorph == index).into()),
            ("unique_string", space.unique_string(index)?.into()),
            ("output_connected", features.output_connected.into()),
            ("count_none", count(0)),
            ("count_skip_connect", count(1)),
            ("count_nor_conv_1x1", count(2)),
            ("count_nor_conv_3x3", count(3)),
            ("count_avg_pool_3x3", count(4)),
            ("longest_conv_path", features.longest_conv_path.into()),
        ])?;
    }
    Ok(rows)
}

/// `costs` rows of NB201's network (C=16, N=5) on CIFAR-10, CIFAR-100 and ImageNet16-120.
pub fn cost_rows(indices: &[usize]) -> Result<Rows> {
    let space = SearchSpace::nb201();
    let mut rows = Rows::new(&COSTS);
    for &index in indices {
        let arch = space.arch(index)?;
        for dataset in Dataset::COST_DATASETS {
            let shape = NetworkShape::nb201(dataset);
            let cost = network_cost(&arch, &shape);
            rows.push(&[
                ("index", index.into()),
                ("dataset", dataset.name().into()),
                ("channels", shape.channels.into()),
                ("cells_per_stage", shape.cells_per_stage.into()),
                ("params_m", cost.params_m().into()),
                ("flops_m", cost.flops_m().into()),
            ])?;
        }
    }
    Ok(rows)
}
