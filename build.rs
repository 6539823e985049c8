//! Links libtorch so that the binary runs without `LD_LIBRARY_PATH` and sees CUDA when the
//! machine has it: an rpath to libtorch's lib folder, and `libtorch.so` kept in DT_NEEDED
//! (`--no-as-needed`), because it is what pulls in `libtorch_cuda.so`. tch's own build script
//! cannot do this for us: link arguments of a dependency's build script do not reach our binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    // Set because we depend on torch-sys directly (it declares `links = "tch"`).
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report libtorch's lib folder; no rpath embedded");
        return;
    };
    let lib_dir = std::path::PathBuf::from(lib_dir);
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    println!("cargo:rustc-env=NASROB_LIBTORCH_VERSION={}", libtorch_version(&lib_dir));
}

/// The version of the libtorch we link: `torch/version.py` of a pip install, or `build-version`
/// of a libtorch archive.
fn libtorch_version(lib_dir: &std::path::Path) -> String {
    let Some(root) = lib_dir.parent() else { return "unknown".into() };
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                let v = rest.trim_start_matches([' ', '=', ':']).trim();
                let v = v.split('=').next_back().unwrap_or(v).trim().trim_matches(['\'', '"']);
                if !v.is_empty() {
                    return v.to_string();
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(root.join("build-version")) {
        return text.trim().to_string();
    }
    "unknown".into()
}
