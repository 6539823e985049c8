use clap::Args;

use nasrob::Result;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DoctorArgs) -> Result<()> {
    let report = nasrob::build_info();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| nasrob::Error::Internal(e.to_string()))?
        );
        return Ok(());
    }
    println!("nasrob {}", report.nasrob_version);
    println!("torch feature: {}", if report.torch_feature { "on" } else { "off (query-only build)" });
    if report.torch_feature {
        println!("libtorch: {}", report.libtorch_version.as_deref().unwrap_or("unknown"));
        println!("CUDA available: {}", if report.cuda_available { "yes" } else { "no" });
        println!("CUDA devices: {}", report.cuda_device_count);
        println!("cuDNN available: {}", if report.cudnn_available { "yes" } else { "no" });
        println!("CPU threads: {}", report.cpu_threads);
    }
    Ok(())
}
