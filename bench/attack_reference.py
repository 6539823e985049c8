#!/usr/bin/env python3
"""Validation and cost baseline of nasrob's attacks against torchattacks 3.5.1 and, with
--autoattack-dir, AutoAttack's own APGD-CE and Square.

Runs the reference protocol -- torchattacks FGSM, PGD, APGD (steps=100) and Square (5,000 queries,
resc_schedule=False, as AutoAttack runs it) at every radius of nasrob's ladders, each radius from
scratch -- on the same network and images as `nasrob bench attack --protocol custom --apgd-restarts 1
--pgd-success last-iterate` (the settings torchattacks runs here), then compares:

* robust accuracy per (attack, eps) with nasrob's (targets: FGSM identical
  predictions on >= 99.5 % of the attacked images; PGD, APGD, Square within 2 points at every eps and
  1 point on average), the mean confidence (max softmax, a robust image at its clean input) and the
  confusion matrix (how many images sit in another cell);
* image-level forward/backward passes and seconds of the reference protocol with nasrob's.

Both sides see the same batches: the images the network classifies correctly, in order, in
chunks of --batch-size (nasrob attacks exactly these; AutoAttack's APGD and Square attack only
them too, and feeding FGSM and PGD only them keeps the comparison like for like). Randomness:
each chunk's attack starts from torch.manual_seed(seed) with nasrob's per-(attack, eps) seed
(recomputed here from the documented rule and checked against nasrob's), and nasrob's generator
reproduces torch's CPU stream, so both sides start from the same random points.

The network is our own PyTorch NB201 model (bench/nb201_model.py) loading nasrob's safetensors
by parameter name; its parameters are frozen on both sides (only input gradients are needed).

Usage (from the repository root):
    python bench/attack_reference.py --weights W.safetensors --nasrob target/release/nasrob \
        [--n-images 1000] [--batch-size 500] [--threads 2] [--attacks fgsm,pgd,apgd-ce,square] \
        [--pgd-steps 40] [--apgd-steps 100] [--square-queries 5000] [--concurrent] [--json out.json] \
        [--markdown out.md]

--threads sets the CPU threads of both sides (nasrob through OMP_NUM_THREADS). On a CPU shared with
other jobs, 1 thread is much faster than 2: OpenMP's barriers stall when cores are oversubscribed.
"""

import argparse
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nb201_model  # noqa: E402

import torchattacks  # noqa: E402

LADDERS = {
    "fgsm": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 255.0],
    "pgd": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0],
    "apgd-ce": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0],
    "square": [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0],
}
PGD_STEPS = 40  # nasrob's and the released dataset's defaults; --pgd-steps, --apgd-steps change both sides
APGD_STEPS = 100
PGD_FACTOR = 2.5

# (channels, classes, mean, std) of the datasets this script can load.
DATASETS = {
    "fashion-mini": (1, 10, [0.2860], [0.3530]),
    "cifar10": (3, 10, [v / 255 for v in (125.3, 123.0, 113.9)], [v / 255 for v in (63.0, 62.1, 66.7)]),
    "ImageNet16-120": (3, 120, [v / 255 for v in (122.68, 116.66, 104.01)], [v / 255 for v in (63.22, 61.26, 65.09)]),
}


def eps_text(eps_255):
    """An f64 as Rust's Display prints it (the seed rule's form): shortest round-trip digits, no
    exponent -- 8, 0.1, 255."""
    return np.format_float_positional(float(eps_255), unique=True, trim="-")


def attack_seed(index, dataset, training_seed, attack, eps_255):
    """nasrob's documented seed rule (src/attack/seed.rs)."""
    training = "none" if training_seed is None else str(training_seed)
    text = (
        f"nasrob-attack-seed/v1|index={index}|dataset={dataset}|training_seed={training}"
        f"|attack={attack}|eps_255={eps_text(eps_255)}"
    )
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def fashion_test(root, n):
    images = read_idx(os.path.join(root, "datasets/fashion-mini/test-images-idx3-ubyte.gz"))[:n]
    labels = read_idx(os.path.join(root, "datasets/fashion-mini/test-labels-idx1-ubyte.gz"))[:n]
    x = torch.from_numpy(images.copy()).to(torch.float32).unsqueeze(1) / 255.0
    return x, torch.from_numpy(labels.astype(np.int64))


def cifar10_test(data_dir, n):
    """The first n images of CIFAR-10's binary test batch under data_dir (as nasrob reads it)."""
    with open(os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin"), "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 3073)[:n]
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32)) / 255.0
    return x, torch.from_numpy(raw[:, 0].astype(np.int64))


def imagenet16_val(data_dir, n):
    """The first n of ImageNet16-120's validation images under data_dir (NB201's val_data pickle,
    labels 1..120 kept and made 0-based), in the order nasrob's full test set has them."""
    import pickle

    with open(os.path.join(data_dir, "ImageNet16", "val_data"), "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 16, 16)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    keep = (labels >= 1) & (labels <= 120)
    x = torch.from_numpy(data[keep][:n].astype(np.float32)) / 255.0
    return x, torch.from_numpy(labels[keep][:n] - 1)


def confusion_moved(labels, a, b):
    """Images that sit in another (label, prediction) cell of the confusion matrix under a than
    under b: half the summed absolute cell differences."""
    cells = {}
    for label, p, q in zip(labels, a, b):
        cells[(label, p)] = cells.get((label, p), 0) + 1
        cells[(label, q)] = cells.get((label, q), 0) - 1
    return sum(abs(v) for v in cells.values()) // 2


class Counted(torch.nn.Module):
    """Counts image-level forward passes, and backward passes through the output."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.forward_images = 0
        self.backward_images = 0

    def forward(self, x):
        out = self.net(x)
        n = x.shape[0]
        self.forward_images += n
        if out.requires_grad:
            out.register_hook(lambda g: self._backward(n))
        return out

    def _backward(self, n):
        self.backward_images += n


AUTOATTACK = None  # fra31/auto-attack's package when --autoattack-dir is given


def make_attack(name, model, eps, seed, budget):
    if AUTOATTACK is not None and name == "apgd-ce":
        attack = AUTOATTACK.autopgd_base.APGDAttack(model, n_iter=budget["apgd_steps"], norm="Linf", n_restarts=1,
                                                   eps=eps, seed=seed, loss="ce", eot_iter=1, rho=0.75, device="cpu")
        return attack.perturb
    if AUTOATTACK is not None and name == "square":
        attack = AUTOATTACK.square.SquareAttack(model, norm="Linf", n_queries=budget["square_queries"], eps=eps,
                                                p_init=0.8, n_restarts=1, seed=seed, verbose=False, loss="margin",
                                                resc_schedule=False, device="cpu")
        return attack.perturb
    if name == "fgsm":
        return torchattacks.FGSM(model, eps=eps)
    if name == "pgd":
        steps = budget["pgd_steps"]
        return torchattacks.PGD(model, eps=eps, alpha=PGD_FACTOR * eps / steps, steps=steps, random_start=True)
    if name == "apgd-ce":
        return torchattacks.APGD(model, norm="Linf", eps=eps, steps=budget["apgd_steps"], n_restarts=1, seed=seed,
                                 loss="ce", rho=0.75)
    if name == "square":
        return torchattacks.Square(
            model, norm="Linf", eps=eps, n_queries=budget["square_queries"], n_restarts=1, p_init=0.8, loss="margin",
            resc_schedule=False, seed=seed,
        )
    raise ValueError(name)


def predict(model, x, batch_size):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def reference_protocol(model, x, y, batch_size, seeds, attacks, budget):
    """torchattacks at every (attack, eps), each from scratch; predictions and costs per row."""
    t0 = time.perf_counter()
    clean = predict(model, x, batch_size)
    clean_cost = {"forward_passes": model.forward_images, "backward_passes": 0, "seconds": time.perf_counter() - t0}
    with torch.no_grad():
        clean_confidence = torch.cat([model.net(x[i:i + batch_size]).softmax(1).amax(1)
                                      for i in range(0, len(x), batch_size)])
    attacked = torch.nonzero(clean == y).flatten()
    rows = {}
    for name in attacks:
        for eps_255 in LADDERS[name]:
            eps = eps_255 / 255.0
            seed = seeds[(name, eps_255)]
            model.forward_images = model.backward_images = 0
            t0 = time.perf_counter()
            pred = clean.clone()
            confidence = clean_confidence.clone()
            for start in range(0, len(attacked), batch_size):
                chunk = attacked[start:start + batch_size]
                torch.manual_seed(seed)
                adv = make_attack(name, model, eps, seed, budget)(x[chunk], y[chunk])
                with torch.no_grad():
                    logits = model(adv)
                pred[chunk] = logits.argmax(1)
                # Clean-correct scoring: a robust image is scored at its clean input (AutoAttack's
                # returned point), a fooled one at its adversarial example.
                fooled = pred[chunk] != y[chunk]
                confidence[chunk[fooled]] = logits.softmax(1).amax(1)[fooled].detach()
            rows[(name, eps_255)] = {
                "predicted": pred.tolist(),
                "confidence_mean": float(confidence.double().mean()),
                "accuracy": float((pred == y).double().mean()),
                "forward_passes": model.forward_images,
                "backward_passes": model.backward_images,
                "seconds": time.perf_counter() - t0,
            }
            print(f"reference {name} eps {eps_255}/255: robust {rows[(name, eps_255)]['accuracy']:.4f} "
                  f"({rows[(name, eps_255)]['seconds']:.1f} s)", file=sys.stderr, flush=True)
    return clean.tolist(), clean_cost, rows


def start_nasrob(binary, weights, n_images, batch_size, device, training_seed, attacks, budget, threads, data_dir):
    """`nasrob bench attack --json` as a running child process."""
    cmd = [binary, "bench", "attack", "--weights", weights, "--n-images", str(n_images),
           "--batch-size", str(batch_size), "--device", device, "--attacks", ",".join(attacks),
           "--pgd-steps", str(budget["pgd_steps"]), "--apgd-iterations", str(budget["apgd_steps"]),
           "--square-queries", str(budget["square_queries"]), "--protocol", "custom", "--apgd-restarts", "1",
           "--pgd-success", "last-iterate", "--json"]
    if training_seed is not None:
        cmd += ["--training-seed", str(training_seed)]
    if data_dir is not None:
        cmd += ["--data-dir", data_dir]
    # The same number of CPU threads on both sides (libtorch reads these at start-up).
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    print("running " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def finish_nasrob(process):
    out, _ = process.communicate()
    if process.returncode != 0:
        sys.exit(f"nasrob bench attack failed with exit code {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def architecture_index(binary, arch):
    out = subprocess.run([binary, "space", "show", arch, "--json"], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout)["index"]


def totals(rows):
    keys = ("forward_passes", "backward_passes", "seconds")
    return {k: sum(r[k] for r in rows) for k in keys}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--nasrob", required=True, help="path of the nasrob binary")
    ap.add_argument("--n-images", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--training-seed", type=int, default=None)
    ap.add_argument("--attacks", default=",".join(LADDERS), help="comma-separated subset of " + ", ".join(LADDERS))
    ap.add_argument("--pgd-steps", type=int, default=PGD_STEPS, help="PGD iterations on both sides (default 40)")
    ap.add_argument("--apgd-steps", type=int, default=APGD_STEPS,
                    help="APGD iterations on both sides (AutoAttack's: 100)")
    ap.add_argument("--square-queries", type=int, default=5000,
                    help="Square's query budget on both sides (AutoAttack's: 5000)")
    ap.add_argument("--concurrent", action="store_true",
                    help="run nasrob and the reference at the same time (with --threads 1 on a machine with two "
                         "free cores, each side on its own core): the wall time is the longer side's, not the sum")
    ap.add_argument("--autoattack-dir",
                    help="a checkout of fra31/auto-attack (a392200): APGD-CE and Square then run AutoAttack's own "
                         "APGDAttack and SquareAttack instead of torchattacks' ports")
    ap.add_argument("--data-dir", help="nasrob's data folder, for cifar10 networks (passed on to nasrob)")
    ap.add_argument("--json", help="write every number here")
    ap.add_argument("--markdown", help="write the tables here")
    args = ap.parse_args()
    if args.autoattack_dir:
        global AUTOATTACK
        sys.path.insert(0, args.autoattack_dir)
        import autoattack.autopgd_base  # noqa: E402
        import autoattack.square  # noqa: E402
        AUTOATTACK = autoattack
    torch.set_num_threads(args.threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    _, meta = nb201_model.read_safetensors(args.weights)
    dataset = meta["dataset"]
    if dataset not in DATASETS:
        sys.exit(f"this script loads {', '.join(DATASETS)} images; the weights are for {dataset}")
    if dataset in ("cifar10", "ImageNet16-120") and not args.data_dir:
        sys.exit(f"{dataset} networks need --data-dir (nasrob's data folder with cifar-10-batches-bin or ImageNet16)")
    channels, classes, mean, std = DATASETS[dataset]
    net, meta = nb201_model.load_nasrob_weights(args.weights, classes, channels, mean, std)
    for p in net.parameters():
        p.requires_grad_(False)
    model = Counted(net).eval()
    if dataset == "cifar10":
        x, y = cifar10_test(args.data_dir, args.n_images)
    elif dataset == "ImageNet16-120":
        x, y = imagenet16_val(args.data_dir, args.n_images)
    else:
        x, y = fashion_test(root, args.n_images)

    attacks = [a.strip() for a in args.attacks.split(",")]
    unknown = [a for a in attacks if a not in LADDERS]
    if unknown:
        sys.exit(f"unknown attacks {unknown}: choose from {', '.join(LADDERS)}")
    budget = {"pgd_steps": args.pgd_steps, "apgd_steps": args.apgd_steps, "square_queries": args.square_queries}
    nasrob = start_nasrob(args.nasrob, args.weights, args.n_images, args.batch_size, "cpu", args.training_seed,
                          attacks, budget, args.threads, args.data_dir)
    if not args.concurrent:
        nas = finish_nasrob(nasrob)
    index = architecture_index(args.nasrob, meta["arch"])
    seeds = {(a, e): attack_seed(index, dataset, args.training_seed, a, e) for a in attacks for e in LADDERS[a]}
    clean, clean_cost, ref = reference_protocol(model, x, y, args.batch_size, seeds, attacks, budget)
    if args.concurrent:
        nas = finish_nasrob(nasrob)
    independent = {(m["condition"], m["eps_255"]): m for m in nas["measurements"] if m["eps_255"] is not None}
    for key, seed in seeds.items():
        if independent[key]["attack_seed"] != seed:
            sys.exit(f"seed rule mismatch at {key}: nasrob {independent[key]['attack_seed']}, here {seed}")

    nas_clean = next(m for m in nas["measurements"] if m["condition"] == "clean")
    clean_agree = sum(a == b for a, b in zip(clean, nas_clean["predicted"])) / len(clean)
    attacked = [i for i, (p, l) in enumerate(zip(clean, y.tolist())) if p == l]

    lines = [
        f"Network: `{meta['arch']}` (C={meta['channels']}, N={meta['cells_per_stage']}) on {dataset}; "
        f"{args.n_images} test images, clean accuracy {nas_clean['accuracy']:.4f} (nasrob) / "
        f"{sum(p == l for p, l in zip(clean, y.tolist())) / len(clean):.4f} (PyTorch), identical clean predictions "
        f"on {100 * clean_agree:.2f} % of images. Budgets: PGD {args.pgd_steps} steps, APGD {args.apgd_steps} "
        f"iterations, Square {args.square_queries} queries; {torch.get_num_threads()} CPU thread(s).",
        "",
        "Reference: torchattacks 3.5.1 for FGSM and PGD; "
        + ("AutoAttack's own APGDAttack and SquareAttack (fra31/auto-attack) for APGD-CE and Square."
           if AUTOATTACK is not None else "torchattacks 3.5.1 for APGD-CE and Square too."),
        "",
        "| attack | eps (/255) | nasrob robust acc. | reference robust acc. | difference (points) | same prediction (attacked images) | mean confidence nasrob / reference | confusion: images in another cell |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for name in attacks:
        diffs = []
        for eps_255 in LADDERS[name]:
            a, r = independent[(name, eps_255)], ref[(name, eps_255)]
            same = sum(a["predicted"][i] == r["predicted"][i] for i in attacked) / max(len(attacked), 1)
            diff = 100 * (a["accuracy"] - r["accuracy"])
            diff = 0.0 if abs(diff) < 1e-6 else diff  # float32 means: no "-0.0" in the table
            diffs.append(diff)
            moved = confusion_moved(y.tolist(), a["predicted"], r["predicted"])
            lines.append(f"| {name} | {eps_text(eps_255)} | {a['accuracy']:.4f} | {r['accuracy']:.4f} | "
                         f"{diff:+.1f} | {100 * same:.2f} % | {a['confidence_mean']:.5f} / "
                         f"{r['confidence_mean']:.5f} | {moved} |")
        summary[name] = {"max_abs_diff_points": max(abs(d) for d in diffs),
                         "mean_abs_diff_points": sum(abs(d) for d in diffs) / len(diffs)}
        lines.append(f"| {name} | mean abs. | | | {summary[name]['mean_abs_diff_points']:.2f} | | | |")

    ref_total = totals([clean_cost] + list(ref.values()))
    nas_total = nas["total"]
    lines += [
        "",
        "| protocol | forward passes | backward passes | seconds |",
        "|---|---|---|---|",
        f"| reference | {ref_total['forward_passes']:,} | {ref_total['backward_passes']:,} | {ref_total['seconds']:.1f} |",
        f"| nasrob | {nas_total['forward_passes']:,} | {nas_total['backward_passes']:,} | {nas_total['seconds']:.1f} |",
        "",
        f"Reference / nasrob: {ref_total['backward_passes'] / max(nas_total['backward_passes'], 1):.2f}x "
        f"backward passes, {ref_total['forward_passes'] / max(nas_total['forward_passes'], 1):.2f}x forward passes, "
        f"{ref_total['seconds'] / max(nas_total['seconds'], 1e-9):.2f}x time.",
        "",
        "| attack | reference backward | nasrob backward | reference forward | nasrob forward | reference s | nasrob s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in attacks:
        r = totals([ref[(name, e)] for e in LADDERS[name]])
        ours = nas["attacks"][name]
        lines.append(f"| {name} | {r['backward_passes']:,} | {ours['backward_passes']:,} | {r['forward_passes']:,} | "
                     f"{ours['forward_passes']:,} | {r['seconds']:.1f} | {ours['seconds']:.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "budget": budget, "reference": {f"{k[0]}@{k[1]}": v for k, v in ref.items()},
                       "reference_total": ref_total, "nasrob": nas, "clean_agreement": clean_agree}, f)


if __name__ == "__main__":
    main()
