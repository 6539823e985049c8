use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::common::fashion_weights;
use nasrob::attack::{
    ApgdConfig, ApgdLoss, AttackKind, AttackParams, AttackSpec, PgdConfig, PgdSuccess, Protocol,
    ProtocolName, ScoringSet, SquareConfig, StepSize, apgd, fgsm, parse_attacks, pgd, square,
};
use nasrob::dataset::Dataset;
use nasrob::evaluate::{Condition, Progress, Report, RowContext, Subject, evaluate};
use nasrob::model::EvalMode;
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
    let logits = tch::no_grad(|| net.try_forward_t(&x.to_device(device), false).unwrap());
    (x, logits.argmax(1, false).to_device(Device::Cpu))
}

/// The whole protocol with short attacks, so the tests stay quick.
fn quick_protocol(name: ProtocolName) -> Protocol {
    let mut protocol = Protocol::for_attacks(&AttackKind::ALL, name);
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
        for name in [ProtocolName::Jung2023, ProtocolName::Custom] {
            let (_vs, net) = random_network(device, 5);
            let (x, y) = images_for(&net, device, 10, 6);
            let report = run(&net, &x, &y, &quick_protocol(name), device);
            assert_eq!(report.clean.accuracy, 1.0);
            assert_eq!(report.attacks.len(), AttackKind::ALL.len());
            for result in &report.attacks {
                assert_eq!(result.spec.scoring, name.scoring(result.spec.kind));
                assert_eq!(result.measurements.len(), result.spec.eps_255.len());
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
            }
        }
    }
}

/// One grey pixel, two classes: class 1's logit is `10 d - 40 d^2 - 0.01` with `d = x - 0.5`, so
/// the image (x = 0.5, label 0) is classified correctly, FGSM's step pushes it across the boundary
/// at a moderate radius, and a step that saturates the pixel (d = 0.5) lands back in class 0.
fn rising_model(x: &Tensor) -> Tensor {
    let d = x.flatten(1, -1).narrow(1, 0, 1) - 0.5;
    let z1 = &d * 10.0 - d.square() * 40.0 - 0.01;
    Tensor::cat(&[z1.zeros_like(), z1], 1)
}

#[test]
fn fgsm_measures_each_radius_on_its_own_from_one_gradient() {
    let x = Tensor::full([3, 1, 1, 1], 0.5, (Kind::Float, Device::Cpu));
    let y = Tensor::zeros([3], (Kind::Int64, Device::Cpu));
    let mut protocol = Protocol::for_attacks(&[AttackKind::Fgsm], ProtocolName::Jung2023);
    protocol.attacks[0] = protocol.attacks[0].clone().with_ladder(&[0.1, 1.0, 255.0]).unwrap();
    protocol.batch_size = 2;
    let report =
        evaluate(&rising_model, &x, &y, &protocol, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap();
    let rows = &report.attacks[0].measurements;
    // By hand: d = 0.1/255 leaves class 1's logit negative, d = 1/255 makes it positive, and the
    // pixel clamped at 1 (d = 0.5) gives 5 - 10 - 0.01 < 0 again.
    let accuracies: Vec<f64> = rows.iter().map(|m| m.accuracy).collect();
    assert_eq!(accuracies, vec![1.0, 0.0, 1.0]);
    // One gradient per image, on the first radius's row.
    let backward: Vec<u64> = rows.iter().map(|m| m.backward_passes).collect();
    assert_eq!(backward, vec![3, 0, 0]);
}

#[test]
fn scoring_sets_choose_the_attacked_images() {
    // Label 1 for the last image: misclassified clean.
    let x = Tensor::full([3, 1, 1, 1], 0.5, (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 0, 1]);
    let mut loss_sums = Vec::new();
    for (scoring, attacked) in [(ScoringSet::AllImages, 3), (ScoringSet::CleanCorrect, 2)] {
        let mut protocol = Protocol::for_attacks(&[AttackKind::Fgsm], ProtocolName::Jung2023);
        protocol.attacks[0] = protocol.attacks[0].clone().with_ladder(&[1.0]).unwrap();
        protocol.attacks[0].scoring = scoring;
        let report =
            evaluate(&rising_model, &x, &y, &protocol, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap();
        let m = &report.attacks[0].measurements[0];
        assert_eq!(m.backward_passes, attacked, "{scoring}");
        assert_eq!(m.correct, vec![false, false, false], "{scoring}");
        match m.condition {
            Condition::Adversarial { scoring: recorded, .. } => assert_eq!(recorded, scoring),
            other => panic!("{other:?}"),
        }
        loss_sums.push(m.loss_mean * 3.0);
    }
    // Only the misclassified image is scored differently: at its FGSM point (the step lowers
    // class 1's logit: d = -1/255) with all images, at its clean input (d = 0) without.
    let logit = |d: f64| 10.0 * d - 40.0 * d * d - 0.01;
    let cross_entropy_class_1 = |d: f64| (1.0 + (-logit(d)).exp()).ln();
    let expected = cross_entropy_class_1(-1.0 / 255.0) - cross_entropy_class_1(0.0);
    assert!(
        (loss_sums[0] - loss_sums[1] - expected).abs() < 1e-4,
        "{loss_sums:?}, expected difference {expected}"
    );
}

#[test]
fn clean_correct_scoring_scores_a_robust_image_at_its_clean_input() {
    // At 0.1/255 FGSM fools no image of the rising model: under clean-correct scoring every image
    // is scored at its clean input (AutoAttack's returned point), under all images at its FGSM point.
    let x = Tensor::full([3, 1, 1, 1], 0.5, (Kind::Float, Device::Cpu));
    let y = Tensor::zeros([3], (Kind::Int64, Device::Cpu));
    let loss = |scoring| {
        let mut protocol = Protocol::for_attacks(&[AttackKind::Fgsm], ProtocolName::Jung2023);
        protocol.attacks[0] = protocol.attacks[0].clone().with_ladder(&[0.1]).unwrap();
        protocol.attacks[0].scoring = scoring;
        let report =
            evaluate(&rising_model, &x, &y, &protocol, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap();
        let m = &report.attacks[0].measurements[0];
        assert_eq!(m.correct, vec![true; 3], "{scoring}");
        (report.clean.loss_mean, m.loss_mean, report.clean.confidence_mean, m.confidence_mean)
    };
    let (clean_loss, robust_loss, clean_confidence, robust_confidence) = loss(ScoringSet::CleanCorrect);
    assert_eq!((robust_loss, robust_confidence), (clean_loss, clean_confidence));
    let (clean_loss, attacked_loss, _, _) = loss(ScoringSet::AllImages);
    assert!(attacked_loss > clean_loss, "the FGSM point raises the loss: {attacked_loss} vs {clean_loss}");
}

/// Every radius of an attack in one stacked batch (restarts included, Square reading back every 3
/// queries) gives each image the outcome the radius gives alone with Square reading back every query.
#[test]
fn batched_radii_give_each_image_the_outcome_of_its_radius_alone() {
    for device in devices() {
        for name in [ProtocolName::Jung2023, ProtocolName::Custom] {
            let (_vs, net) = random_network(device, 21);
            let (x, y) = images_for(&net, device, 8, 22);
            let mut protocol = quick_protocol(name);
            for spec in &mut protocol.attacks {
                spec.params = match spec.params {
                    AttackParams::Pgd(c) => AttackParams::Pgd(PgdConfig { restarts: 2, ..c }),
                    AttackParams::Square(c) => AttackParams::Square(SquareConfig { restarts: 2, ..c }),
                    other => other,
                };
            }
            protocol.radii_per_pass = Some(usize::MAX);
            protocol.check_every = 3;
            let together = run(&net, &x, &y, &protocol, device);
            let mut fooled_somewhere = 0;
            for (i, spec) in protocol.attacks.iter().enumerate() {
                for (k, &eps) in spec.eps_255.iter().enumerate() {
                    let mut alone = protocol.clone();
                    alone.attacks = vec![spec.clone().with_ladder(&[eps]).unwrap()];
                    alone.radii_per_pass = Some(1);
                    alone.check_every = 1;
                    let single = run(&net, &x, &y, &alone, device);
                    let (a, b) = (&together.attacks[i].measurements[k], &single.attacks[0].measurements[0]);
                    let what = format!("{} at {eps}/255, {name:?} on {device:?}", spec.kind);
                    assert_eq!(a.correct, b.correct, "{what}");
                    assert_eq!(a.predicted, b.predicted, "{what}");
                    assert_eq!(a.loss_mean, b.loss_mean, "{what}");
                    fooled_somewhere += a.correct.iter().filter(|c| !**c).count();
                }
            }
            assert!(fooled_somewhere > 0, "no attack fooled any image: the comparison shows nothing");
        }
    }
}

#[test]
fn fooled_images_return_their_last_misclassified_iterate_and_robust_ones_their_clean_input() {
    let device = Device::Cpu;
    let (_vs, net) = random_network(device, 51);
    let (x, y) = images_for(&net, device, 12, 52);
    let f = EvalMode(&net);
    let config = ApgdConfig { iterations: 10, ..ApgdConfig::default() };
    let out = apgd(&f, &x, &y, 3.0 / 255.0, &config, 5).unwrap();
    let predicted = tch::no_grad(|| net.try_forward_t(&out.examples, false).unwrap()).argmax(1, false);
    let robust = Vec::<bool>::try_from(&predicted.eq_tensor(&y)).unwrap();
    assert!(
        robust.iter().any(|r| *r) && robust.iter().any(|r| !*r),
        "need robust and fooled images: {robust:?}"
    );
    for (i, &r) in robust.iter().enumerate() {
        let same = out.examples.get(i as i64).equal(&x.get(i as i64));
        assert_eq!(same, r, "image {i}: robust {r}, returned its clean input {same}");
    }
    // PGD scored at any iterate returns a misclassified iterate for every image it fooled.
    let any = PgdConfig { steps: 10, success: PgdSuccess::AnyIterate, ..PgdConfig::default() };
    let last = PgdConfig { success: PgdSuccess::LastIterate, ..any };
    let (a, l) =
        (pgd(&f, &x, &y, 3.0 / 255.0, &any, 9).unwrap(), pgd(&f, &x, &y, 3.0 / 255.0, &last, 9).unwrap());
    let correct = |t: &Tensor| -> Vec<bool> {
        Vec::<bool>::try_from(
            &tch::no_grad(|| net.try_forward_t(t, false).unwrap()).argmax(1, false).eq_tensor(&y),
        )
        .unwrap()
    };
    // The same iterates: whatever the last iterate fools, some iterate fooled.
    for (any_robust, last_robust) in correct(&a.examples).into_iter().zip(correct(&l.examples)) {
        assert!(!any_robust || last_robust);
    }
}

#[test]
fn same_inputs_on_cpu_give_the_same_numbers() {
    let device = Device::Cpu;
    let (_vs, net) = random_network(device, 31);
    let (x, y) = images_for(&net, device, 6, 32);
    let protocol = quick_protocol(ProtocolName::Custom);
    type Stripped = (Condition, Vec<bool>, f64, f64, f64, u64, u64);
    let strip = |r: Report| -> Vec<Stripped> {
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
    let mut protocol = Protocol::for_attacks(&[AttackKind::Fgsm, AttackKind::ApgdCe], ProtocolName::Jung2023);
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
    let rows = report.rows(&ctx).unwrap();
    let (evaluations, outcomes, confusion) = (&rows.evaluations, &rows.sample_outcomes, &rows.confusion);
    assert_eq!(evaluations.len(), 1 + 11 + 7);
    assert_eq!(outcomes.len(), 19);
    assert!(confusion.len() >= 19);
    let dir = tempfile::tempdir().unwrap();
    let bench = BenchDir::new(dir.path());
    for rows in [evaluations, outcomes, confusion] {
        let path = bench.append("attack-test", rows, Some("abc")).unwrap();
        assert!(path.is_file());
    }
}

#[test]
fn bad_input_is_exit_code_2() {
    let f = |x: &Tensor| x.flatten(1, -1).narrow(1, 0, 3);
    let empty_x = Tensor::zeros([0, 1, 2, 2], (Kind::Float, Device::Cpu));
    let empty_y = Tensor::zeros([0], (Kind::Int64, Device::Cpu));
    let protocol = Protocol::standard(ProtocolName::Jung2023);
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

    assert_eq!(
        AttackSpec::new(AttackKind::Pgd, ProtocolName::Jung2023)
            .with_ladder(&[1.0, -0.5])
            .unwrap_err()
            .exit_code(),
        2
    );
    assert_eq!("0*eps".parse::<StepSize>().unwrap_err().exit_code(), 2);
    assert_eq!("sometimes".parse::<PgdSuccess>().unwrap_err().exit_code(), 2);
    let mut negative = Protocol::standard(ProtocolName::Jung2023);
    negative.attacks[0].eps_255 = vec![-1.0];
    let y = Tensor::zeros([2], (Kind::Int64, Device::Cpu));
    let err = evaluate(&f, &x, &y, &negative, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert_eq!(parse_attacks("fgsm,deepfool").unwrap_err().exit_code(), 2);

    // APGD-T on a model with too few classes for its targets.
    let targeted = Protocol::for_attacks(&[AttackKind::ApgdT], ProtocolName::Custom);
    let err = evaluate(&f, &x, &y, &targeted, &SUBJECT, Device::Cpu, &mut |_: Progress| {}).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
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
    assert_bad_input(&attack(&["--scoring", "fgsm=most"]), "unknown scoring set 'most'");
    assert_bad_input(&attack(&["--pgd-step", "fast"]), "PGD step rule 'fast'");
    assert_bad_input(&attack(&["--protocol", "madry"]), "unknown protocol 'madry'");
    assert_bad_input(&attack(&["--test-images", "half"]), "unknown test image set 'half'");
    assert_bad_input(&attack(&["--pgd-success", "sometimes"]), "PGD success rule 'sometimes'");
    let removed = attack(&["--mode", "ladder"]);
    assert_eq!(removed.status.code(), Some(2));
    assert!(crate::common::stderr(&removed).contains("--mode"));
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
    assert_bad_input(&attack(&["--eps", "fgsm=1e9"]), "must lie in 0..255");
    assert_bad_input(&attack(&["--eps", "fgsm=1", "--eps", "fgsm=2"]), "--eps gives fgsm twice");
    assert_bad_input(&attack(&["--radii-per-pass", "0"]), "at least 1");

    // Weights whose values are not finite, or whose metadata is damaged, are refused before any work.
    let tensors = tch::Tensor::read_safetensors(&weights).unwrap();
    let mut metadata = nasrob::model::read_safetensors_metadata(&weights).unwrap();
    let nan: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(name, t)| {
            (name.clone(), if name == "classifier.bias" { t.full_like(f64::NAN) } else { t.shallow_clone() })
        })
        .collect();
    let nan_path = dir.path().join("nan.safetensors");
    nasrob::model::write_safetensors(&nan_path, &nan, &metadata).unwrap();
    let nan_run = nasrob(&["attack", "--weights", nan_path.to_str().unwrap(), "--out", o, "--device", "cpu"]);
    assert_bad_input(&nan_run, "classifier.bias holds NaN or infinite values");
    metadata.insert("channels".into(), "four".into());
    let damaged = dir.path().join("damaged.safetensors");
    nasrob::model::write_safetensors(&damaged, &nan, &metadata).unwrap();
    let damaged_run =
        nasrob(&["attack", "--weights", damaged.to_str().unwrap(), "--out", o, "--device", "cpu"]);
    assert_bad_input(&damaged_run, "'channels' is 'four', not a whole number");
    assert!(!crate::common::stderr(&damaged_run).contains("pass --arch"));
    let empty = dir.path().join("no-data");
    std::fs::create_dir_all(&empty).unwrap();
    let missing_frost = corrupt(&["--corruptions", "frost", "--data-dir", empty.to_str().unwrap()]);
    assert_bad_input(&missing_frost, "nasrob data fetch frost-textures");
    assert!(
        crate::common::files_under(&out).is_empty(),
        "partial output: {:?}",
        crate::common::files_under(&out)
    );
}

/// A device failure inside the network's forward pass is an error the batch-halving retry sees,
/// not a panic: here the "device" runs out of memory above 4 images per batch.
#[test]
fn out_of_memory_in_the_forward_pass_reaches_the_retry() {
    struct SmallDevice<'a>(EvalMode<'a>);
    impl nasrob::model::Classifier for SmallDevice<'_> {
        fn logits(&self, images: &Tensor) -> nasrob::Result<Tensor> {
            if images.size()[0] > 4 {
                return Err(nasrob::Error::Internal("CUDA out of memory (simulated)".into()));
            }
            self.0.logits(images)
        }
    }
    let (_vs, net) = random_network(Device::Cpu, 61);
    let (x, y) = images_for(&net, Device::Cpu, 10, 62);
    let mut protocol = quick_protocol(ProtocolName::Jung2023);
    protocol.attacks.retain(|s| s.kind == AttackKind::Pgd);
    protocol.batch_size = 16;
    let model = SmallDevice(EvalMode(&net));
    let mut used = Vec::new();
    let report = nasrob::evaluate::halving_batch_on_oom(protocol.batch_size, |batch| {
        used.push(batch);
        let protocol = Protocol { batch_size: batch, ..protocol.clone() };
        evaluate(&model, &x, &y, &protocol, &SUBJECT, Device::Cpu, &mut |_: Progress| {})
    })
    .unwrap();
    assert_eq!(used, vec![16, 8, 4]);
    assert_eq!(report.clean.n_images(), 10);
    // The network itself returns an error for input it cannot take, rather than panicking.
    let wrong = Tensor::rand([1, 2, 3, 32, 32], (Kind::Float, Device::Cpu));
    assert!(net.try_forward_t(&wrong, false).is_err());
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
fn cli_bench_attack_counts_passes_per_attack() {
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
        "fgsm,pgd,square",
        "--pgd-steps",
        "2",
        "--square-queries",
        "40",
        "--eps",
        "square=1,8",
        "--check-every",
        "8",
        "--json",
    ]);
    assert!(run.status.success(), "{}", crate::common::stderr(&run));
    let doc: serde_json::Value = serde_json::from_str(crate::common::stdout(&run).trim()).unwrap();
    assert_eq!(doc["index"], 9930);
    assert_eq!(doc["n_images"], 64);
    assert_eq!(doc["protocol"], "jung2023");
    let measurements = doc["measurements"].as_array().unwrap();
    let rows = |attack: &str| measurements.iter().filter(|m| m["condition"] == attack).count() as u64;
    // jung2023: FGSM and PGD attack all 64 images. FGSM: one gradient per image serves its 11
    // radii. PGD: 2 gradient steps and a final forward pass per image and radius, and the
    // protocol's forward pass that scores the returned point.
    assert_eq!(rows("fgsm"), 11);
    assert_eq!(doc["attacks"]["fgsm"]["backward_passes"], 64);
    assert_eq!(doc["attacks"]["fgsm"]["forward_passes"], 64 + 11 * 64);
    assert_eq!(doc["attacks"]["pgd"]["backward_passes"].as_u64().unwrap(), rows("pgd") * 64 * 2);
    assert_eq!(doc["attacks"]["pgd"]["forward_passes"].as_u64().unwrap(), rows("pgd") * 64 * (2 + 1 + 1));
    for m in measurements.iter().filter(|m| m["condition"] == "fgsm" || m["condition"] == "pgd") {
        assert_eq!(m["scoring_set"], "all-images", "{m}");
    }
    assert!(doc["attacks"]["pgd"]["image_passes_per_second"].as_f64().unwrap() > 0.0);
    // PGD reads nothing back inside its steps; Square once per block of 8 queries.
    let syncs = |attack: &str| doc["attacks"][attack]["host_syncs_per_iteration"].as_f64().unwrap();
    assert_eq!(doc["attacks"]["pgd"]["attack_iterations"].as_u64().unwrap(), rows("pgd") * 2);
    assert_eq!(syncs("pgd"), 0.0);
    let square_iterations = doc["attacks"]["square"]["attack_iterations"].as_u64().unwrap();
    assert!(square_iterations > 0);
    assert!(syncs("square") <= 1.0 / 8.0, "square: {} host syncs per query", syncs("square"));
}
