use std::collections::HashMap;

use nasrob::dataset::Dataset;
use nasrob::space::{NUM_ARCHS, NUM_UNIQUE, NetworkShape, SearchSpace, network_cost};

use crate::common::{assert_bad_input, nasrob, reference_file, stdout};

#[test]
fn indices_strings_and_classes_match_nats_bench_csv() {
    let Some(path) = reference_file("nb201/nats_bench.csv") else { return };
    let text = std::fs::read_to_string(path).unwrap();
    let space = SearchSpace::nb201();
    let mut classes_by_key: HashMap<String, Vec<usize>> = HashMap::new();
    let mut rows = 0;
    for (index, line) in text.lines().skip(1).enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 5, "row {index}");
        assert_eq!(space.arch(index).unwrap().to_nb201_string(), fields[3], "index {index}");
        assert_eq!(space.resolve(fields[3]).unwrap(), index);
        classes_by_key.entry(fields[4].to_string()).or_default().push(index);
        rows += 1;
    }
    assert_eq!(rows, NUM_ARCHS);
    assert_eq!(classes_by_key.len(), NUM_UNIQUE);
    for members in classes_by_key.values() {
        let representative = members[0];
        for &m in members {
            assert_eq!(space.representative(m).unwrap(), representative, "class of {m}");
        }
    }
}

#[test]
fn representatives_match_jung2023_meta() {
    let Some(path) = reference_file("jung2023/meta.json") else { return };
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ids = meta["ids"].as_object().unwrap();
    assert_eq!(ids.len(), NUM_ARCHS);
    let space = SearchSpace::nb201();
    for (id, entry) in ids {
        let index: usize = id.parse().unwrap();
        assert_eq!(entry["nb201-string"].as_str().unwrap(), space.arch(index).unwrap().to_nb201_string());
        let isomorph: usize = entry["isomorph"].as_str().unwrap().parse().unwrap();
        assert_eq!(space.representative(index).unwrap(), isomorph, "index {index}");
    }
}

#[test]
fn cost_ranges_over_the_space() {
    // Extremes from the notes: C10 params 0.073306..1.531546 M, FLOPs 7.78305..220.11969 M.
    let space = SearchSpace::nb201();
    let shape = NetworkShape::nb201(Dataset::Cifar10);
    let costs: Vec<_> = space.archs().iter().map(|a| network_cost(a, &shape)).collect();
    assert_eq!(costs.iter().map(|c| c.params).min(), Some(73_306));
    assert_eq!(costs.iter().map(|c| c.params).max(), Some(1_531_546));
    assert_eq!(costs.iter().map(|c| c.flops).min(), Some(7_783_050));
    assert_eq!(costs.iter().map(|c| c.flops).max(), Some(220_119_690));
    let distinct: std::collections::BTreeSet<u64> = costs.iter().map(|c| c.params).collect();
    assert_eq!(distinct.len(), 28);
}

#[test]
fn cli_show_json_and_text() {
    let out = nasrob(&["space", "show", "13714", "--json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["index"], 13714);
    assert_eq!(
        doc["arch"],
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    );
    assert_eq!(doc["costs"]["cifar10"]["params_m"], 1.073466);
    assert_eq!(doc["neighbours"].as_array().unwrap().len(), 24);
    let by_string = nasrob(&["space", "show", doc["arch"].as_str().unwrap()]);
    assert!(by_string.status.success());
    assert!(stdout(&by_string).contains("13714"));
}

#[test]
fn cli_list_unique_counts() {
    let out = nasrob(&["space", "list", "--unique"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), NUM_UNIQUE);
}

#[test]
fn cli_bad_arch_references_exit_2() {
    assert_bad_input(&nasrob(&["space", "show", "15625"]), "out of range");
    assert_bad_input(&nasrob(&["space", "show", "abc"]), "neither an architecture index");
    assert_bad_input(&nasrob(&["space", "show", "-7"]), "neither an architecture index");
    assert_bad_input(
        &nasrob(&["space", "show", "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"]),
        "expected an operation name",
    );
    assert_bad_input(&nasrob(&["space", "show", "|none~0|+|none~0|none~1|+|none~0|none~1|"]), "at byte");
    assert_bad_input(
        &nasrob(&["space", "show", "|none~0|+|none~0|none~2|+|none~0|none~1|none~2|"]),
        "input node 1",
    );
}
