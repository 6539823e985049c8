use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use nasrob::attack::protocol::{Condition, Progress};
use nasrob::attack::rows::RowContext;
use nasrob::attack::{
    ApgdConfig, ApgdLoss, AttackKind, AttackParams, AttackSpec, EvalMode, LadderMode, PgdConfig, Protocol,
    Report, SquareConfig, Subject, apgd, evaluate, fgsm, parse_attacks, pgd, square,
};
use nasrob::dataset::Dataset;
use nasrob::model::TinyNetwork;
use nasrob::space::{NetworkShape, SearchSpace};
use nasrob::store::BenchDir;

/// The devices every attack test runs on: the CPU, and CUDA when present.
fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        d.push(Device::Cuda(0));
    }
    d
}

/// A linear classifier `z = W x + b` on flattened images.
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(w: &[f32], b: &[f32], classes: i64, device: Device) -> Linear {
        Linear {
            w: Tensor::from_slice(w).view([classes, -1]).to_device(device),
            b: Tensor::from_slice(b).to_device(device),
        }
    }

    fn random(classes: i64, features: i64, seed: i64, device: Device) -> Linear {
        tch::manual_seed(seed);
        let w = Tensor::randn([classes, features], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([classes], (Kind::Float, Device::Cpu)) * 0.1;
        Linear { w: w.to_device(device), b: b.to_device(device) }
    }

    fn logits(&self, x: &Tensor) -> Tensor {
        x.flatten(1, -1).matmul(&self.w.tr()) + &self.b
    }
}

fn floats(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.flatten(0, -1).to_device(Device::Cpu).to_kind(Kind::Float)).unwrap()
}

fn longs(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(&t.flatten(0, -1).to_device(Device::Cpu).to_kind(Kind::Int64)).unwrap()
}

fn predictions(model: &dyn Fn(&Tensor) -> Tensor, x: &Tensor) -> Vec<i64> {
    longs(&tch::no_grad(|| model(x)).argmax(1, false))
}

/// Largest |x' - x| and whether every value of x' lies in [0,1].
fn ball_and_box(x: &Tensor, adv: &Tensor) -> (f64, bool) {
    let dist = (adv - x).abs().max().double_value(&[]);
    let inside = adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0;
    (dist, inside)
}

#[test]
fn fgsm_matches_a_hand_computed_linear_model() {
    for device in devices() {
        // Two classes over four pixels; for label 0 the cross-entropy gradient is
        // p1 · (w1 − w0), so its sign is sign(w1 − w0) = (+, −, +, −) whatever the probabilities.
        let model = Linear::new(&[1.0, 2.0, -1.0, 0.5, 3.0, -1.0, 1.0, 0.0], &[0.0, 0.0], 2, device);
        let f = |x: &Tensor| model.logits(x);
        let x = Tensor::from_slice(&[0.5f32, 0.02, 0.99, 0.4, 0.3, 0.6, 0.1, 0.7])
            .view([2, 1, 2, 2])
            .to_device(device);
        let y = Tensor::from_slice(&[0i64, 1]).to_device(device);
        let eps = 0.05;
        let out = fgsm(&f, &x, &y, eps).unwrap();
        // Label 1: the sign flips to (−, +, −, +). Values clamp to [0,1] (pixels 0.02 − 0.05 and
        // 0.99 + 0.05).
        let want = [0.55f32, 0.0, 1.0, 0.35, 0.25, 0.65, 0.05, 0.75];
        for (g, w) in floats(&out.examples).iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{device:?}: got {:?}, want {want:?}", floats(&out.examples));
        }
        assert_eq!((out.forward_passes, out.backward_passes), (2, 2));
        assert!(!out.nonfinite_gradient);
    }
}

/// A binary linear classifier has an exact L-inf robust radius, margin / ||w_y − w_o||_1, so an
/// attack must fool every image whose radius is clearly below eps and can fool none above it.
#[test]
fn attacks_find_the_exact_radius_of_a_binary_linear_model() {
    for device in devices() {
        let (c, h, w) = (1i64, 6i64, 6i64);
        let model = Linear::random(2, c * h * w, 11, device);
        let f = |x: &Tensor| model.logits(x);
        tch::manual_seed(12);
        // Pixels in [0.3, 0.7] so that no attack below eps = 0.3 meets the [0,1] box.
        let x = (Tensor::rand([300, c, h, w], (Kind::Float, Device::Cpu)) * 0.4 + 0.3).to_device(device);
        let y = tch::no_grad(|| f(&x)).argmax(1, false);
        let logits = floats(&tch::no_grad(|| f(&x)));
        let w_diff: f32 = floats(&(model.w.get(1) - model.w.get(0)).abs().sum(Kind::Float))[0];
        let radius: Vec<f32> = logits.chunks(2).map(|z| (z[0] - z[1]).abs() / w_diff).collect();
        let eps = 0.05;
        let fooled = |adv: &Tensor| -> Vec<bool> {
            let pred = predictions(&f, adv);
            pred.iter().zip(longs(&y)).map(|(p, l)| *p != l).collect()
        };
        let check = |name: &str, adv: &Tensor, must_fool_below: f32| {
            let (dist, inside) = ball_and_box(&x, adv);
            assert!(dist <= eps + 1e-6 && inside, "{name} on {device:?}: distance {dist}, in box {inside}");
            let fooled = fooled(adv);
            let mut tested = 0;
            for (i, (&r, &f)) in radius.iter().zip(&fooled).enumerate() {
                if r < must_fool_below * eps as f32 {
                    tested += 1;
                    assert!(f, "{name} on {device:?}: image {i} with radius {r} < eps {eps} not fooled");
                }
                if r > eps as f32 * 1.0001 {
                    assert!(!f, "{name} on {device:?}: image {i} with radius {r} > eps fooled");
                }
            }
            assert!(tested >= 20, "{name}: only {tested} images are within reach; the test is too weak");
        };
        check("fgsm", &fgsm(&f, &x, &y, eps).unwrap().examples, 0.999);
        let pgd_config = PgdConfig::default();
        check("pgd", &pgd(&f, &x, &y, eps, &pgd_config, 1).unwrap().examples, 0.999);
        check("apgd-ce", &apgd(&f, &x, &y, eps, &ApgdConfig::default(), 2).unwrap().examples, 0.999);
        let square_config = SquareConfig { queries: 1000, ..SquareConfig::default() };
        check("square", &square(&f, &x, &y, eps, &square_config, 3).unwrap().examples, 0.5);
    }
}

fn random_network(device: Device, seed: i64) -> (nn::VarStore, TinyNetwork) {
    tch::manual_seed(seed);
    let arch = SearchSpace::nb201().arch(9930).unwrap();
    let shape = NetworkShape::reduced(Dataset::Cifar10, 8, 1);
    let mut vs = nn::VarStore::new(device);
    let net = TinyNetwork::new(&vs.root(), &arch, &shape, Dataset::Cifar10).unwrap();
    vs.freeze();
    (vs, net)
}

/// Images the random network classifies as their labels, so that every image is attacked.
fn images_for(net: &TinyNetwork, device: Device, n: i64, seed: i64) -> (Tensor, Tensor) {
    tch::manual_seed(seed);
    let x = Tensor::rand([n, 3, 32, 32], (Kind::Float, Device::Cpu));
    let logits = tch::no_grad(|| net.forward_t(&x.to_device(device), false));
    (x, logits.argmax(1, false).to_device(Device::Cpu))
}

/// The whole protocol with short attacks, so the tests stay quick.
fn quick_protocol(mode: LadderMode) -> Protocol {
    let mut protocol = Protocol::for_attacks(&AttackKind::ALL, mode);
    for spec in &mut protocol.attacks {
        spec.params = match spec.params {
            AttackParams::Pgd(c) => AttackParams::Pgd(PgdConfig { steps: 5, ..c }),
            AttackParams::Apgd(c) => AttackParams::Apgd(ApgdConfig {
                iterations: 12,
                loss: match c.loss {
                    ApgdLoss::DlrTargeted { .. } => ApgdLoss::DlrTargeted { target_classes: 2 },
                    other => other,
                },
                ..c
            }),
            AttackParams::Square(c) => AttackParams::Square(SquareConfig { queries: 40, ..c }),
            other => other,
        };
    }
    protocol.batch_size = 4;
    protocol
}

const SUBJECT: Subject = Subject { index: 9930, dataset: Dataset::Cifar10, training_seed: Some(1) };

fn run(net: &TinyNetwork, x: &Tensor, y: &Tensor, protocol: &Protocol, device: Device) -> Report {
    evaluate(&EvalMode(net), x, y, protocol, &SUBJECT, device, &mut |_: Progress| {}).unwrap()
}

#[test]
fn protocol_invariants_hold_on_random_networks() {
    for device in devices() {
        for mode in [LadderMode::Ladder, LadderMode::Independent] {
            let (_vs, net) = random_network(device, 5);
            let (x, y) = images_for(&net, device, 10, 6);
            let report = run(&net, &x, &y, &quick_protocol(mode), device);
            assert_eq!(report.clean.accuracy, 1.0);
            assert_eq!(report.attacks.len(), AttackKind::ALL.len());
            for result in &report.attacks {
                let accuracies: Vec<f64> = result.measurements.iter().map(|m| m.accuracy).collect();
                assert_eq!(accuracies.len(), result.spec.eps_255.len());
                for m in &result.measurements {
                    assert!(m.accuracy <= report.clean.accuracy);
                    assert_eq!(m.n_images(), 10);
                    assert_eq!(m.correct_bits().len(), 2);
                    assert_eq!(m.confusion.iter().map(|c| c.2).sum::<u64>(), 10);
                    assert!(m.flags.is_empty() || m.flags == ["gradient_masking_suspected"], "{:?}", m.flags);
                    if !result.spec.kind.uses_gradients() {
                        assert_eq!(m.backward_passes, 0);
                    }
                }
                if mode == LadderMode::Ladder {
                    for pair in result.measurements.windows(2) {
                        assert!(pair[1].accuracy <= pair[0].accuracy, "{}: {accuracies:?}", result.spec.kind);
                        for (now, before) in pair[1].correct.iter().zip(&pair[0].correct) {
                            assert!(
                                !now || *before,
                                "{}: an image fooled at a smaller eps is robust",
                                result.spec.kind
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn fgsm_ladder_reuses_one_gradient_and_equals_the_running_minimum_of_independent_runs() {
    for device in devices() {
        let (_vs, net) = random_network(device, 21);
        let (x, y) = images_for(&net, device, 12, 22);
        let mut ladder = Protocol::for_attacks(&[AttackKind::Fgsm], LadderMode::Ladder);
        ladder.batch_size = 5;
        let independent = Protocol { mode: LadderMode::Independent, ..ladder.clone() };
        let a = run(&net, &x, &y, &ladder, device);
        let b = run(&net, &x, &y, &independent, device);
        let (la, lb) = (&a.attacks[0].measurements, &b.attacks[0].measurements);
        assert_eq!(la[0].backward_passes, 12);
        assert!(la[1..].iter().all(|m| m.backward_passes == 0));
        assert!(lb.iter().all(|m| m.backward_passes == 12));
        let mut running = vec![true; 12];
        for (m_ladder, m_indep) in la.iter().zip(lb) {
            for (r, c) in running.iter_mut().zip(&m_indep.correct) {
                *r &= *c;
            }
            assert_eq!(m_ladder.correct, running, "eps {:?}", m_ladder.condition.eps_255());
        }
        // Ladder mode attacks only still-robust images, so it spends fewer forward passes.
        let forward = |r: &Report| r.attacks[0].measurements.iter().map(|m| m.forward_passes).sum::<u64>();
        assert!(forward(&a) < forward(&b));
    }
}

#[test]
fn same_inputs_on_cpu_give_the_same_numbers() {
    let device = Device::Cpu;
    let (_vs, net) = random_network(device, 31);
    let (x, y) = images_for(&net, device, 6, 32);
    let protocol = quick_protocol(LadderMode::Ladder);
    let strip = |r: Report| -> Vec<(Condition, Vec<bool>, f64, f64, f64, u64, u64)> {
        r.measurements()
            .map(|m| {
                (
                    m.condition,
                    m.correct.clone(),
                    m.accuracy,
                    m.confidence_mean,
                    m.loss_mean,
                    m.forward_passes,
                    m.backward_passes,
                )
            })
            .collect()
    };
    let first = strip(run(&net, &x, &y, &protocol, Device::Cpu));
    // Other threads reseeding libtorch's global generator must not matter.
    tch::manual_seed(999);
    let second = strip(run(&net, &x, &y, &protocol, Device::Cpu));
    assert_eq!(first, second);

    let f = EvalMode(&net);
    let a = apgd(&f, &x, &y, 2.0 / 255.0, &ApgdConfig::default(), 7).unwrap();
    let b = apgd(&f, &x, &y, 2.0 / 255.0, &ApgdConfig::default(), 7).unwrap();
    let c = pgd(&f, &x, &y, 2.0 / 255.0, &PgdConfig::default(), 8).unwrap();
    let d = pgd(&f, &x, &y, 2.0 / 255.0, &PgdConfig::default(), 9).unwrap();
    assert!(a.examples.equal(&b.examples));
    assert!(!c.examples.equal(&d.examples), "different seeds gave the same PGD start");
}

#[test]
fn reports_become_store_rows() {
    let device = Device::Cpu;
    let (_vs, net) = random_network(device, 41);
    let (x, y) = images_for(&net, device, 5, 42);
    let mut protocol = Protocol::for_attacks(&[AttackKind::Fgsm, AttackKind::ApgdCe], LadderMode::Ladder);
    for spec in &mut protocol.attacks {
        if let AttackParams::Apgd(c) = &mut spec.params {
            c.iterations = 5;
        }
    }
    let report = run(&net, &x, &y, &protocol, Device::Cpu);
    let ctx = RowContext {
        subject: &SUBJECT,
        hp: Some(12),
        channels: Some(8),
        cells_per_stage: Some(1),
        split: "test",
        image_offset: 0,
        config_hash: Some("abc"),
    };
    let evaluations = report.evaluation_rows(&ctx).unwrap();
    assert_eq!(evaluations.len(), 1 + 11 + 7);
    let outcomes = report.sample_outcome_rows(&ctx).unwrap();
    assert_eq!(outcomes.len(), 19);
    let confusion = report.confusion_rows(&ctx).unwrap();
    assert!(confusion.len() >= 19);
    let dir = tempfile::tempdir().unwrap();
    let bench = BenchDir::new(dir.path());
    for rows in [&evaluations, &outcomes, &confusion] {
        let path = bench.append("attack-test", rows, Some("abc")).unwrap();
        assert!(path.is_file());
    }
}

#[test]
fn bad_input_is_exit_code_2() {
    let f = |x: &Tensor| x.flatten(1, -1).narrow(1, 0, 3);
    let empty_x = Tensor::zeros([0, 1, 2, 2], (Kind::Float, Device::Cpu));
    let empty_y = Tensor::zeros([0], (Kind::Int64, Device::Cpu));
    let protocol = Protocol::standard(LadderMode::Ladder);
    let err = evaluate(&f, &empty_x, &empty_y, &protocol, &SUBJECT, Device::Cpu, &mut |_: Progress| {})
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("empty"), "{err}");

    let x = Tensor::full([2, 1, 2, 2], 1.5, (Kind::Float, Device::Cpu));
    let y = Tensor::zeros([2], (Kind::Int64, Device::Cpu));
    let err = evaluate(&f, &x, &y, &protocol, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");

    let x = Tensor::full([2, 1, 2, 2], 0.5, (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 7]);
    let err = evaluate(&f, &x, &y, &protocol, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("label 7"), "{err}");

    assert_eq!(AttackSpec::new(AttackKind::Pgd).with_ladder(&[1.0, -0.5]).unwrap_err().exit_code(), 2);
    let mut negative = Protocol::standard(LadderMode::Ladder);
    negative.attacks[0].eps_255 = vec![-1.0];
    let y = Tensor::zeros([2], (Kind::Int64, Device::Cpu));
    let err = evaluate(&f, &x, &y, &negative, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert_eq!(parse_attacks("fgsm,deepfool").unwrap_err().exit_code(), 2);

    // APGD-T on a model with too few classes for its targets.
    let targeted = Protocol::for_attacks(&[AttackKind::ApgdT], LadderMode::Ladder);
    let err = evaluate(&f, &x, &y, &targeted, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
}

/// Weights of an untrained reduced network (C=4, N=1) of `index` for the embedded dataset.
fn fashion_weights(dir: &std::path::Path, index: usize) -> std::path::PathBuf {
    let arch = SearchSpace::nb201().arch(index).unwrap();
    let shape = NetworkShape::reduced(Dataset::FashionMini, 4, 1);
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = TinyNetwork::new(&vs.root(), &arch, &shape, Dataset::FashionMini).unwrap();
    let meta = nasrob::model::WeightsMeta {
        arch: arch.to_nb201_string(),
        dataset: "fashion-mini".into(),
        channels: 4,
        cells_per_stage: 1,
    };
    let path = dir.join(format!("w{index}.safetensors"));
    nasrob::model::save_weights(&vs, &path, &meta).unwrap();
    path
}

/// Files under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| if e.path().is_dir() { files_under(&e.path()) } else { vec![e.path()] })
        .collect()
}

#[test]
fn cli_bad_input_exits_2_and_writes_nothing() {
    use crate::common::{assert_bad_input, nasrob};
    let dir = tempfile::tempdir().unwrap();
    let weights = fashion_weights(dir.path(), 9930);
    let w = weights.to_str().unwrap();
    let out = dir.path().join("bench");
    let o = out.to_str().unwrap();
    let attack = |args: &[&str]| {
        let mut all = vec!["attack", "--weights", w, "--out", o, "--device", "cpu"];
        all.extend_from_slice(args);
        nasrob(&all)
    };
    assert_bad_input(&attack(&["--arch", "1462"]), "weights");
    assert_bad_input(&attack(&["--dataset", "cifar10"]), "weights");
    assert_bad_input(&attack(&["--eps", "pgd=-1"]), "eps");
    assert_bad_input(&attack(&["--attacks", "fgsm,deepfool"]), "deepfool");
    assert_bad_input(&attack(&["--n-images", "0"]), "empty");
    let corrupt = |args: &[&str]| {
        let mut all = vec!["corrupt-eval", "--weights", w, "--out", o, "--device", "cpu"];
        all.extend_from_slice(args);
        nasrob(&all)
    };
    assert_bad_input(&corrupt(&["--corruptions", "smoke"]), "unknown corruption `smoke`");
    assert_bad_input(&corrupt(&["--corruptions", "fog", "--n-images", "0"]), "empty");
    assert_bad_input(
        &corrupt(&["--corruptions", "fog", "--severities", "0-5"]),
        "severity 0 is outside 1..5",
    );
    assert_bad_input(&corrupt(&["--corruptions", "fog", "--severities", "6"]), "severity 6 is outside 1..5");
    let empty = dir.path().join("no-data");
    std::fs::create_dir_all(&empty).unwrap();
    let missing_frost = corrupt(&["--corruptions", "frost", "--data-dir", empty.to_str().unwrap()]);
    assert_bad_input(&missing_frost, "nasrob data fetch frost-textures");
    assert!(files_under(&out).is_empty(), "partial output: {:?}", files_under(&out));
}

#[test]
fn cli_corrupt_eval_writes_corruption_rows() {
    let dir = tempfile::tempdir().unwrap();
    let weights = fashion_weights(dir.path(), 9930);
    let out = dir.path().join("bench");
    let args = [
        "corrupt-eval",
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
        "--n-images",
        "16",
        "--corruptions",
        "brightness,jpeg_compression",
        "--severities",
        "2-3",
    ];
    let run = crate::common::nasrob(&[&args[..], &["--json"]].concat());
    assert!(run.status.success(), "{}", crate::common::stderr(&run));
    let doc: serde_json::Value = serde_json::from_str(&crate::common::stdout(&run)).unwrap();
    let measurements = doc["measurements"].as_array().unwrap();
    let keys: Vec<(String, u64)> = measurements
        .iter()
        .map(|m| (m["corruption"].as_str().unwrap().to_string(), m["severity"].as_u64().unwrap()))
        .collect();
    let expected: Vec<(String, u64)> =
        ["brightness", "jpeg_compression"].iter().flat_map(|c| [2, 3].map(|s| (c.to_string(), s))).collect();
    assert_eq!(keys, expected);
    let lookup = nasrob::query::Lookup::open(&out, Dataset::FashionMini).unwrap();
    for m in measurements {
        let name = format!("{}@{}", m["corruption"].as_str().unwrap(), m["severity"]);
        assert_eq!(lookup.lookup(9930, &name).unwrap(), m["accuracy"].as_f64(), "{name}");
        assert_eq!(m["n_images"], 16);
    }
    let again = crate::common::nasrob(&args);
    crate::common::assert_bad_input(&again, "already exists");
}

#[test]
fn cli_bench_attack_counts_what_the_ladder_saves() {
    let dir = tempfile::tempdir().unwrap();
    let weights = fashion_weights(dir.path(), 9930);
    let run = crate::common::nasrob(&[
        "bench",
        "attack",
        "--weights",
        weights.to_str().unwrap(),
        "--device",
        "cpu",
        "--n-images",
        "64",
        "--attacks",
        "fgsm,pgd",
        "--pgd-steps",
        "2",
        "--json",
    ]);
    assert!(run.status.success(), "{}", crate::common::stderr(&run));
    let doc: serde_json::Value = serde_json::from_str(crate::common::stdout(&run).trim()).unwrap();
    assert_eq!(doc["index"], 9930);
    assert_eq!(doc["n_images"], 64);
    let clean = |mode: &str| {
        doc[mode]["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["condition"] == "clean")
            .unwrap()
            .clone()
    };
    let attacked = (clean("ladder")["accuracy"].as_f64().unwrap() * 64.0).round() as u64;
    assert_eq!(clean("ladder")["accuracy"], clean("independent")["accuracy"]);
    assert!(attacked > 0, "no image classified correctly: nothing to attack");
    let cost = |mode: &str, attack: &str| {
        let attacks = doc[mode]["attacks"].as_array().unwrap();
        attacks.iter().find(|a| a[0] == attack).unwrap()[1].clone()
    };
    // FGSM: one gradient per attacked image serves the 11 radii of the ladder; independent mode
    // computes it at every radius.
    assert_eq!(cost("ladder", "fgsm")["backward_passes"].as_u64().unwrap(), attacked);
    assert_eq!(cost("independent", "fgsm")["backward_passes"].as_u64().unwrap(), 11 * attacked);
    for mode in ["ladder", "independent"] {
        let total = &doc[mode]["total"];
        let sum: u64 = doc[mode]["attacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[1]["backward_passes"].as_u64().unwrap())
            .sum();
        assert_eq!(total["backward_passes"].as_u64().unwrap(), sum, "{mode}");
    }
    assert!(
        cost("ladder", "pgd")["backward_passes"].as_u64()
            <= cost("independent", "pgd")["backward_passes"].as_u64()
    );
}
