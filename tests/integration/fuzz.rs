//! Bounded fuzzing of what reads user input: arch strings and indices, and the importers. Valid
//! inputs are mutated at random (seeded, so a failure reproduces from its case number); every
//! outcome must be a value or an error with exit code 2, never a panic. `NASROB_FUZZ_CASES`
//! multiplies the number of cases for a longer run.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use nasrob::space::{Arch, SearchSpace};
use nasrob::store::BenchDir;
use nasrob::store::import::{ImportOptions, import_jung2023, import_nb201_accuracy, import_zero_cost};

fn cases(base: usize) -> usize {
    let factor = std::env::var("NASROB_FUZZ_CASES").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
    base * factor.max(1)
}

/// One to four random edits of `input`: a byte replaced (by a byte of `alphabet` or any byte), a
/// range deleted or duplicated, bytes inserted, or the tail cut off.
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], alphabet: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        let at = if len == 0 { 0 } else { rng.random_range(0..len) };
        let byte = |rng: &mut ChaCha8Rng| {
            if rng.random_bool(0.8) { alphabet[rng.random_range(0..alphabet.len())] } else { rng.random() }
        };
        match rng.random_range(0..5) {
            0 if len > 0 => out[at] = byte(rng),
            1 if len > 0 => {
                let end = (at + rng.random_range(1..=8)).min(len);
                out.drain(at..end);
            }
            2 if len > 0 => {
                let end = (at + rng.random_range(1..=16)).min(len);
                let copy: Vec<u8> = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            3 => {
                for _ in 0..rng.random_range(1..=4) {
                    let b = byte(rng);
                    out.insert(at.min(out.len()), b);
                }
            }
            _ => out.truncate(at),
        }
    }
    out
}

/// An importer's outcome: fine, or bad input (2); anything else fails the case.
fn check_outcome(case: usize, what: &str, result: nasrob::Result<impl Sized>) {
    if let Err(e) = result {
        assert_eq!(e.exit_code(), 2, "{what}, case {case}: {e}");
        assert!(!e.to_string().contains('\n'), "{what}, case {case}: a multi-line message: {e}");
    }
}

#[test]
fn arch_strings_and_indices_never_panic() {
    let space = SearchSpace::nb201();
    let mut rng = ChaCha8Rng::seed_from_u64(201);
    let alphabet = b"|~+0123456789_-nonevgpolskipcx ";
    for case in 0..cases(20_000) {
        let valid = if rng.random_bool(0.8) {
            space.arch(rng.random_range(0..space.len())).unwrap().to_nb201_string()
        } else {
            rng.random_range(0..40_000u64).to_string()
        };
        let text = String::from_utf8_lossy(&mutate(&mut rng, valid.as_bytes(), alphabet)).into_owned();
        if let Ok(arch) = text.parse::<Arch>() {
            assert_eq!(arch.to_nb201_string().parse::<Arch>().unwrap(), arch, "case {case}: {text}");
        }
        if let Err(e) = space.resolve(&text) {
            assert_eq!(nasrob::Error::from(e).exit_code(), 2, "case {case}: {text}");
        }
    }
}

fn import_each(
    dir: &Path,
    name: &str,
    valid: &[u8],
    alphabet: &[u8],
    seed: u64,
    n: usize,
    import: impl Fn(&Path, &BenchDir) -> nasrob::Result<nasrob::store::import::ImportReport>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let input = dir.join(name);
    // The unmutated input imports, so the cases start from something the importer accepts.
    std::fs::write(&input, valid).unwrap();
    let bench = BenchDir::new(dir.join(format!("bench-{name}-valid")));
    if let Err(e) = import(&input, &bench) {
        panic!("{name}: the valid input is refused: {e}");
    }
    for case in 0..n {
        std::fs::write(&input, mutate(&mut rng, valid, alphabet)).unwrap();
        let bench = BenchDir::new(dir.join(format!("bench-{name}-{case}")));
        check_outcome(case, name, import(&input, &bench));
        let _ = std::fs::remove_dir_all(bench.root());
    }
}

#[test]
fn importers_never_panic_on_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let space = SearchSpace::nb201();
    let options = ImportOptions::default();
    let digits = b"0123456789.,-+eE\"\n ()|~_nan";

    let mut csv = String::from(
        "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString\n",
    );
    for i in 0..space.len() {
        csv.push_str(&format!("85.8,52.9,26.6,{},x\n", space.arch(i).unwrap().to_nb201_string()));
    }
    import_each(dir.path(), "nats_bench.csv", csv.as_bytes(), digits, 1, cases(40), |p, b| {
        import_nb201_accuracy(p, b, &options)
    });

    let zero_cost_csv = "net,net_str,synflow,jacov\n\"(4, 0, 3, 1, 4, 3)\",|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|,1.5,-3\n";
    import_each(
        dir.path(),
        "nb201_zc_proxies.csv",
        zero_cost_csv.as_bytes(),
        digits,
        2,
        cases(150),
        |p, b| import_zero_cost(p, b, None, &options),
    );

    let zero_cost_json = r#"{"cifar10": {"(4, 0, 3, 1, 4, 3)": {"synflow": {"score": 1.5, "time": 0.1}, "val_accuracy": 85.1}}}"#;
    import_each(
        dir.path(),
        "zc_nasbench201.json",
        zero_cost_json.as_bytes(),
        b"{}[]:,\"0123456789.-e ",
        3,
        cases(150),
        |p, b| import_zero_cost(p, b, None, &options),
    );

    // jung2023: a valid meta.json (written once), the measure file mutated.
    let jung = dir.path().join("jung");
    std::fs::create_dir_all(jung.join("cifar10")).unwrap();
    let meta = crate::common::jung_meta(serde_json::json!({"fgsm@Linf": [0.1, 1.0]}));
    std::fs::write(jung.join("meta.json"), meta).unwrap();
    let clean = br#"{"cifar10": {"clean": {"accuracy": {"0": 0.5, "1": 0.75}}}}"#;
    let fgsm = br#"{"cifar10": {"fgsm@Linf": {"accuracy": {"0": [0.5, 0.25], "1": [0.5, 0.125]}}}}"#;
    std::fs::write(jung.join("cifar10/fgsm@Linf_accuracy.json"), fgsm).unwrap();
    check_outcome(
        0,
        "jung2023 (valid)",
        import_jung2023(&jung, &BenchDir::new(dir.path().join("bench-jung")), &options).map(|_| ()),
    );
    assert!(dir.path().join("bench-jung/evaluations").is_dir(), "the valid jung2023 folder imports");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for case in 0..cases(60) {
        let (file, valid) = if case % 2 == 0 {
            ("cifar10/clean_accuracy.json", &clean[..])
        } else {
            ("cifar10/fgsm@Linf_accuracy.json", &fgsm[..])
        };
        std::fs::write(jung.join(file), mutate(&mut rng, valid, b"{}[]:,\"0123456789.-eNa ")).unwrap();
        let bench = BenchDir::new(dir.path().join(format!("bench-jung-{case}")));
        check_outcome(case, file, import_jung2023(&jung, &bench, &options));
        std::fs::write(jung.join(file), valid).unwrap();
        let _ = std::fs::remove_dir_all(bench.root());
    }
}
