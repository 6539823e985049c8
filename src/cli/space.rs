use std::path::PathBuf;

use clap::{Args, Subcommand};

use nasrob::dataset::Dataset;
use nasrob::space::{ArchFeatures, EDGE_NAMES, NetworkShape, SearchSpace, network_cost};
use nasrob::store::{architecture_rows, cost_rows, write_parquet};
use nasrob::{Error, Result};

#[derive(Subcommand, Debug)]
pub enum SpaceCommand {
    /// Show one architecture: index, string, ops per edge, isomorphism class, params/FLOPs, neighbours.
    Show(ShowArgs),
    /// List architectures as `index<TAB>arch string`, in NB201 index order.
    List(ListArgs),
    /// Write the `architectures` table (one row per architecture) as a Parquet file.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// An NB201 index (0..15624) or an arch string such as
    /// '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|'.
    #[arg(allow_hyphen_values = true)]
    arch: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also draw the cell DAG (ops on the edges) to this .png or .svg file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only the 6,466 isomorphism-class representatives (the smallest index of each class).
    #[arg(long)]
    unique: bool,
    /// Print a JSON array of {index, arch} objects.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Output Parquet file for the `architectures` table.
    #[arg(long)]
    out: PathBuf,
    /// Also write the `costs` table (params and FLOPs per dataset) to this Parquet file.
    #[arg(long)]
    costs_out: Option<PathBuf>,
    /// Only the isomorphism-class representatives.
    #[arg(long)]
    unique: bool,
}

pub fn run(cmd: SpaceCommand) -> Result<()> {
    match cmd {
        SpaceCommand::Show(args) => show(args),
        SpaceCommand::List(args) => list(args),
        SpaceCommand::Export(args) => export(args),
    }
}

fn show(args: ShowArgs) -> Result<()> {
    let space = SearchSpace::nb201();
    let index = space.resolve(&args.arch)?;
    if let Some(path) = &args.plot {
        super::plot::check_output(path)?;
        nasrob::export::plot::write_figure(&nasrob::export::plot::cell_diagram(index, None)?, path)?;
        eprintln!("wrote {}", path.display());
    }
    let arch = space.arch(index)?;
    let isomorph = space.representative(index)?;
    let features = ArchFeatures::of(&arch);
    let neighbours = space.neighbours(index)?;
    let costs: Vec<(Dataset, f64, f64)> = Dataset::COST_DATASETS
        .into_iter()
        .map(|d| {
            let c = network_cost(&arch, &NetworkShape::nb201(d));
            (d, c.params_m(), c.flops_m())
        })
        .collect();
    if args.json {
        let edges: serde_json::Map<String, serde_json::Value> =
            EDGE_NAMES.iter().zip(arch.ops).map(|(e, op)| (e.to_string(), op.name().into())).collect();
        let cost_json: serde_json::Map<String, serde_json::Value> = costs
            .iter()
            .map(|(d, p, f)| (d.name().to_string(), serde_json::json!({"params_m": p, "flops_m": f})))
            .collect();
        let doc = serde_json::json!({
            "index": index,
            "arch": arch.to_nb201_string(),
            "edges": edges,
            "isomorph": isomorph,
            "is_representative": isomorph == index,
            "unique_string": space.unique_string(index)?,
            "op_counts": {
                "none": features.op_counts[0],
                "skip_connect": features.op_counts[1],
                "nor_conv_1x1": features.op_counts[2],
                "nor_conv_3x3": features.op_counts[3],
                "avg_pool_3x3": features.op_counts[4],
            },
            "output_connected": features.output_connected,
            "longest_conv_path": features.longest_conv_path,
            "costs": cost_json,
            "neighbours": neighbours,
        });
        println!("{}", serde_json::to_string_pretty(&doc).map_err(|e| Error::Internal(e.to_string()))?);
        return Ok(());
    }
    println!("index              {index}");
    println!("arch               {arch}");
    if isomorph == index {
        println!("isomorphism class  representative (smallest index of its class)");
    } else {
        println!("isomorphism class  isomorphic to {isomorph} (its class representative)");
    }
    println!("unique string      {}", space.unique_string(index)?);
    println!("edges");
    for (edge, op) in EDGE_NAMES.iter().zip(arch.ops) {
        println!("  {edge}  {op}");
    }
    println!(
        "output connected   {}",
        if features.output_connected { "yes" } else { "no (the cell outputs zeros)" }
    );
    match features.longest_conv_path {
        Some(depth) => println!("longest conv path  {depth} convolutions"),
        None => println!("longest conv path  none (output disconnected)"),
    }
    println!("costs (NB201 network, C=16, N=5)");
    println!("  {:<16} {:>10} {:>12}", "dataset", "params (M)", "FLOPs (M)");
    for (d, p, f) in &costs {
        println!("  {:<16} {:>10.6} {:>12.5}", d.name(), p, f);
    }
    let list: Vec<String> = neighbours.iter().map(usize::to_string).collect();
    println!("neighbours (24)    {}", list.join(" "));
    Ok(())
}

fn selected(unique: bool) -> Vec<usize> {
    let space = SearchSpace::nb201();
    if unique { space.representatives() } else { (0..space.len()).collect() }
}

fn list(args: ListArgs) -> Result<()> {
    let space = SearchSpace::nb201();
    let indices = selected(args.unique);
    if args.json {
        let items: Vec<serde_json::Value> = indices
            .iter()
            .map(|&i| serde_json::json!({"index": i, "arch": space.archs()[i].to_nb201_string()}))
            .collect();
        println!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for i in indices {
        if writeln!(out, "{i}\t{}", space.archs()[i]).is_err() {
            // The reader went away (e.g. `| head`); that is not an error.
            return Ok(());
        }
    }
    let _ = out.flush();
    Ok(())
}

/// Writes the architectures (and costs) files together: both are written under temp names first,
/// so a failure leaves neither.
fn export(args: ExportArgs) -> Result<()> {
    let indices = selected(args.unique);
    let mut outputs = vec![(args.out.clone(), architecture_rows(&indices)?)];
    if let Some(path) = &args.costs_out {
        outputs.push((path.clone(), cost_rows(&indices)?));
    }
    let mut staged: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for (path, rows) in &outputs {
        let tmp = nasrob::fsutil::temp_path_for(path);
        if let Err(e) = write_parquet(&tmp, rows, None) {
            for (tmp, _) in &staged {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(e);
        }
        staged.push((tmp, path));
    }
    for (tmp, path) in &staged {
        nasrob::fsutil::rename_into_place(tmp, path)?;
    }
    println!("wrote {} architectures to {}", indices.len(), args.out.display());
    if let Some((path, rows)) = outputs.get(1) {
        println!("wrote {} cost rows to {}", rows.len(), path.display());
    }
    Ok(())
}
