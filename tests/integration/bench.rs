//! `nasrob bench`: the measurement commands report every case they time, with consistent counts.

use crate::common::{nasrob, stderr, stdout};

/// The command's JSON report and the wall-clock seconds the command took, measured here: the
/// times a report claims must fit inside it.
fn timed_json_of(args: &[&str]) -> (serde_json::Value, f64) {
    let start = std::time::Instant::now();
    let run = nasrob(args);
    let wall_seconds = start.elapsed().as_secs_f64();
    assert!(run.status.success(), "{args:?}: {}", stderr(&run));
    let doc = serde_json::from_str(stdout(&run).trim())
        .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", stdout(&run)));
    (doc, wall_seconds)
}

#[test]
fn bench_corrupt_times_each_corruption_over_every_severity() {
    let (doc, wall_seconds) = timed_json_of(&[
        "bench",
        "corrupt",
        "--n-images",
        "6",
        "--corruptions",
        "brightness,gaussian_noise",
        "--json",
    ]);
    assert_eq!(doc["n_images"], 6);
    assert_eq!(doc["severities"], 5);
    let rows = doc["corruptions"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["corruption"].as_str().unwrap()).collect();
    assert_eq!(names, ["brightness", "gaussian_noise"]);
    let mut timed = 0.0;
    for row in rows {
        assert_eq!(row["images"], 30, "6 images x 5 severities: {row}");
        let seconds = row["seconds"].as_f64().unwrap();
        assert!(seconds > 0.0, "{row}");
        timed += seconds;
    }
    assert!(timed <= wall_seconds, "the rows claim {timed} s, the command ran {wall_seconds} s");
    let unknown = nasrob(&["bench", "corrupt", "--corruptions", "blurry"]);
    crate::common::assert_bad_input(&unknown, "blurry");
}

#[cfg(feature = "torch")]
#[test]
fn bench_train_reports_images_per_second_of_each_architecture() {
    let (doc, wall_seconds) = timed_json_of(&[
        "bench",
        "train",
        "--archs",
        "9930,1462",
        "--dataset",
        "fashion-mini",
        "--channels",
        "4",
        "--cells",
        "1",
        "--batch-size",
        "8",
        "--warmup",
        "0",
        "--steps",
        "1",
        "--device",
        "cpu",
        "--json",
    ]);
    let results = doc["results"].as_array().unwrap();
    let indices: Vec<u64> = results.iter().map(|r| r["nasrob"]["index"].as_u64().unwrap()).collect();
    assert_eq!(indices, [9930, 1462]);
    for r in results {
        let n = &r["nasrob"];
        assert_eq!(n["batch_size"], 8);
        let step = n["seconds_per_step"].as_f64().unwrap();
        assert!(
            step > 0.0 && step <= wall_seconds,
            "one timed step of {step} s in a {wall_seconds} s run: {r}"
        );
        assert!(r["pytorch_images_per_second"].is_null(), "no --python, no reference: {r}");
    }
}

/// `bench train --stack`: a stack's throughput against the same networks one at a time, and the
/// operations each launches; a stack of two mixed networks launches fewer per network.
#[cfg(feature = "torch")]
#[test]
fn bench_train_stack_compares_a_stack_with_one_at_a_time() {
    let common = ["--dataset", "fashion-mini", "--channels", "4", "--cells", "1", "--batch-size", "8"];
    let mut args = vec!["bench", "train", "--stack", "1,2", "--solo-sample", "2", "--warmup", "0"];
    args.extend(common);
    args.extend(["--steps", "1", "--device", "cpu", "--json"]);
    let (doc, wall_seconds) = timed_json_of(&args);
    assert_eq!(doc["solo_sample"], serde_json::json!([1462, 3939]));
    let stacks = doc["stacks"].as_array().unwrap();
    assert_eq!(stacks.iter().map(|r| r["networks"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    for row in stacks {
        let stacked = &row["stacked"];
        let k = row["networks"].as_f64().unwrap();
        let step = stacked["seconds_per_step"].as_f64().unwrap();
        assert!(step > 0.0 && step <= wall_seconds, "{row}");
        assert!(
            (stacked["optimizer_operations_per_network_step"].as_f64().unwrap() * k - 9.0).abs() < 1e-9,
            "{row}"
        );
    }
    let pair = &stacks[1];
    let (together, alone) = (
        pair["stacked"]["forward_operations_per_network_step"].as_f64().unwrap(),
        pair["one_at_a_time_forward_operations_per_network_step"].as_f64().unwrap(),
    );
    assert!(
        together < alone,
        "a stack of 2 launches {together} forward operations per network, alone {alone}"
    );
    let mut zero = vec!["bench", "train", "--stack", "0"];
    zero.extend(common);
    crate::common::assert_bad_input(&nasrob(&zero), "--stack");
    let bf16 = nasrob(&["bench", "train", "--stack", "2", "--bf16", "--device", "cpu"]);
    crate::common::assert_bad_input(&bf16, "--bf16");
}
