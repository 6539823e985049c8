"""Which PGD reproduces the released NB201 robustness data's PGD? Runs PGD candidates next to FGSM
and APGD-CE on trained networks with `nasrob bench attack` and compares the pattern of their
differences with the one the released CIFAR-10 data shows (medians over networks with clean
accuracy above 0.5): PGD minus APGD-CE at every radius, PGD minus FGSM at 0.1, 0.5 and 1/255.

    python3 bench/pgd_candidates.py --nasrob NASROB --weights W1 [W2 ...] --n-images 300 \
        [--data-dir DIR] [--reference $NASROB_REFERENCE_DIR/jung2023, default ../shared/reference/jung2023] [--apgd-iterations 100] [--markdown out.md]

Standard library only. Every attack runs with the `jung2023` protocol's scoring sets (FGSM and PGD
on all images, APGD-CE on the clean-correct ones); the candidates differ in steps, step rule,
random start and which iterate decides. The released data's attack settings are not published:
the table is evidence for an inference, not a recovery.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

RADII = [0.1, 0.5, 1.0, 2.0, 3.0, 4.0, 8.0]
FGSM_RADII = [0.1, 0.5, 1.0]

# (name, flags of `nasrob bench attack`)
CANDIDATES = [
    ("BIM 1/255, 10 steps, last iterate", ["--pgd-step", "1/255", "--pgd-random-start", "false", "--pgd-success", "last-iterate", "--pgd-steps", "10"]),
    ("BIM 1/255, 20 steps, last iterate", ["--pgd-step", "1/255", "--pgd-random-start", "false", "--pgd-success", "last-iterate", "--pgd-steps", "20"]),
    ("BIM 1/255, 40 steps, last iterate", ["--pgd-step", "1/255", "--pgd-random-start", "false", "--pgd-success", "last-iterate", "--pgd-steps", "40"]),
    ("torchattacks 2/255, random start, 10 steps, last iterate", ["--pgd-step", "2/255", "--pgd-random-start", "true", "--pgd-success", "last-iterate", "--pgd-steps", "10"]),
    ("torchattacks 2/255, random start, 40 steps, last iterate", ["--pgd-step", "2/255", "--pgd-random-start", "true", "--pgd-success", "last-iterate", "--pgd-steps", "40"]),
    ("2.5*eps/steps, random start, 40 steps, last iterate", ["--pgd-step", "2.5*eps/steps", "--pgd-random-start", "true", "--pgd-success", "last-iterate", "--pgd-steps", "40"]),
    ("2.5*eps/steps, random start, 40 steps, any iterate", ["--pgd-step", "2.5*eps/steps", "--pgd-random-start", "true", "--pgd-success", "any-iterate", "--pgd-steps", "40"]),
]


def released_pattern(reference):
    """Median differences (points) over the released CIFAR-10 networks with clean accuracy > 0.5."""
    def load(key):
        path = os.path.join(reference, "cifar10", f"{key}_accuracy.json")
        with open(path) as f:
            return json.load(f)["cifar10"][key]["accuracy"]

    clean, fgsm, pgd, apgd = load("clean"), load("fgsm@Linf"), load("pgd@Linf"), load("aa_apgd-ce@Linf")
    uids = [u for u in clean if clean[u] > 0.5 and u in fgsm and u in pgd and u in apgd]
    pgd_apgd = [100 * statistics.median(pgd[u][i] - apgd[u][i] for u in uids) for i in range(len(RADII))]
    pgd_fgsm = [100 * statistics.median(pgd[u][i] - fgsm[u][i] for u in uids) for i in range(len(FGSM_RADII))]
    return pgd_apgd, pgd_fgsm, len(uids)


def bench(nasrob, weights, n_images, attacks, flags, data_dir):
    cmd = [nasrob, "bench", "attack", "--weights", weights, "--device", "cpu", "--n-images", str(n_images),
           "--protocol", "jung2023", "--attacks", attacks, "--json"] + flags
    if data_dir:
        cmd += ["--data-dir", data_dir]
    print("running " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    return {(m["condition"], m["eps_255"]): m["accuracy"] for m in doc["measurements"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nasrob", required=True)
    ap.add_argument("--weights", nargs="+", required=True)
    ap.add_argument("--n-images", type=int, default=300)
    ap.add_argument("--apgd-iterations", type=int, default=100)
    reference = os.environ.get("NASROB_REFERENCE_DIR", os.path.join(os.path.dirname(__file__), "../../shared/reference"))
    ap.add_argument("--reference", default=os.path.join(reference, "jung2023"))
    ap.add_argument("--data-dir", help="nasrob's data folder (for networks of datasets that are not embedded)")
    ap.add_argument("--markdown")
    args = ap.parse_args()

    released_apgd, released_fgsm, n_released = released_pattern(args.reference)
    baseline = [bench(args.nasrob, w, args.n_images, "fgsm,apgd-ce", ["--apgd-iterations", str(args.apgd_iterations)],
                      args.data_dir)
                for w in args.weights]
    rows = []
    for name, flags in CANDIDATES:
        gaps_apgd, gaps_fgsm = [], []
        for w, base in zip(args.weights, baseline):
            pgd = bench(args.nasrob, w, args.n_images, "pgd", flags, args.data_dir)
            gaps_apgd.append([100 * (pgd[("pgd", e)] - base[("apgd-ce", e)]) for e in RADII])
            gaps_fgsm.append([100 * (pgd[("pgd", e)] - base[("fgsm", e)]) for e in FGSM_RADII])
        apgd = [statistics.median(g[i] for g in gaps_apgd) for i in range(len(RADII))]
        fgsm = [statistics.median(g[i] for g in gaps_fgsm) for i in range(len(FGSM_RADII))]
        peak = RADII[max(range(len(RADII)), key=lambda i: apgd[i])]
        # The released shape: the APGD gap peaks at 0.5-1 and vanishes at 8; PGD is weaker than FGSM
        # at 0.1 only.
        shape = (peak in (0.5, 1.0), abs(apgd[-1]) < 1.0, fgsm[0] > 0, fgsm[1] < 0 and fgsm[2] < 0)
        rows.append((name, apgd, fgsm, shape))

    fmt = lambda v: f"{v:+.1f}"
    lines = [
        f"Networks: {len(args.weights)}; {args.n_images} test images each; APGD-CE {args.apgd_iterations} iterations. "
        f"Released: medians over {n_released} CIFAR-10 networks with clean accuracy > 0.5.",
        "",
        "| PGD | PGD - APGD-CE at " + ", ".join(f"{e:g}" for e in RADII) + " (points) | PGD - FGSM at "
        + ", ".join(f"{e:g}" for e in FGSM_RADII) + " | peak at 0.5-1 | gone at 8 | weaker than FGSM at 0.1 | stronger at 0.5 and 1 |",
        "|---|---|---|---|---|---|---|",
        "| released data | " + ", ".join(map(fmt, released_apgd)) + " | " + ", ".join(map(fmt, released_fgsm)) + " | yes | yes | yes | yes |",
    ]
    for name, apgd, fgsm, shape in rows:
        marks = " | ".join("yes" if s else "no" for s in shape)
        lines.append(f"| {name} | " + ", ".join(map(fmt, apgd)) + " | " + ", ".join(map(fmt, fgsm)) + f" | {marks} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
