//! `nasrob bench`: the measurement commands report every case they time, with consistent counts.

use crate::common::{nasrob, stderr, stdout};

fn json_of(args: &[&str]) -> serde_json::Value {
    let run = nasrob(args);
    assert!(run.status.success(), "{args:?}: {}", stderr(&run));
    serde_json::from_str(stdout(&run).trim()).unwrap_or_else(|e| panic!("{args:?}: {e}\n{}", stdout(&run)))
}

#[test]
fn bench_corrupt_times_each_corruption_over_every_severity() {
    let doc = json_of(&[
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
    for row in rows {
        assert_eq!(row["images"], 30, "6 images x 5 severities: {row}");
        let (seconds, rate) = (row["seconds"].as_f64().unwrap(), row["images_per_second"].as_f64().unwrap());
        assert!(seconds > 0.0 && (rate * seconds - 30.0).abs() < 1e-6 * rate.max(1.0), "{row}");
    }
    let unknown = nasrob(&["bench", "corrupt", "--corruptions", "blurry"]);
    crate::common::assert_bad_input(&unknown, "blurry");
}

#[cfg(feature = "torch")]
#[test]
fn bench_train_reports_images_per_second_of_each_architecture() {
    let doc = json_of(&[
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
        let (rate, step) =
            (n["images_per_second"].as_f64().unwrap(), n["seconds_per_step"].as_f64().unwrap());
        assert!((rate * step - 8.0).abs() < 1e-6 * rate, "{r}");
        assert!(r["pytorch_images_per_second"].is_null(), "no --python, no reference: {r}");
    }
}
