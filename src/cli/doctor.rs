use clap::Args;

use nasrob::Result;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Fail (exit code 1, one line saying why) unless this is usable: cuda (a CUDA device that
    /// libtorch can use). Emitted cluster jobs run it before any work.
    #[arg(long, value_name = "WHAT")]
    require: Option<String>,
}

pub fn run(args: DoctorArgs) -> Result<()> {
    let report = nasrob::build_info();
    match args.require.as_deref() {
        None => {}
        Some("cuda") => {
            if !report.torch_feature {
                return Err(nasrob::Error::Environment(
                    "no CUDA: this nasrob was built without libtorch (the query-only build); install the default build (`make install` puts it beside this one as nasrob-engine)".into(),
                ));
            }
            if !report.cuda_available || report.cuda_device_count == 0 {
                return Err(nasrob::Error::Environment(format!(
                    "no usable CUDA device: libtorch {} sees {} (check that the job requested a GPU, \
                     `nvidia-smi` on the node, and that the driver supports CUDA 13)",
                    report.libtorch_version.as_deref().unwrap_or("unknown"),
                    report.cuda_device_count
                )));
            }
        }
        Some(other) => {
            return Err(nasrob::Error::input(format!("--require {other}: the only requirement is cuda")));
        }
    }
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
