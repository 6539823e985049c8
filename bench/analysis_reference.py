#!/usr/bin/env python3
"""Python reference for `nasrob bench analysis`: the same analytics with numpy + scipy on the
released robustness data of Jung, Lukasik & Keuper (ICLR 2023), timed the same way.

    python bench/analysis_reference.py --data ../shared/reference/jung2023 --dataset cifar10 \
        [--json out.json] [--repeats 3] [--runs 100] [--budget 200] [--seed 0]

Run it with an interpreter that has numpy and scipy (only the standard library besides). The
result is one JSON object on stdout (and in --json's file when given); a readable table goes to
stderr. Every timing is the fastest of --repeats runs, single-threaded.

Data (`--data DIR`): DIR/meta.json and DIR/<dataset>/<key>_accuracy.json, each file nested as
{dataset: {key: {"accuracy": {uid: value}}}} over the 6,466 isomorphism representatives (uid =
NB201 index of the representative). meta.json maps every NB201 index 0..15624 to its arch string
and to its representative ("isomorph"), and gives each attack's eps ladder in 1/255. The table
built from it has one row per representative, in meta.json's order (ascending NB201 index), and
the columns
- `clean`;
- `<attack>@<eps_255>` for fgsm (11 radii), pgd, apgd-ce and square (7 radii each): 32 columns,
  named as nasrob names them (`fgsm@0.1`, `pgd@1`, `apgd-ce@8`, `fgsm@255`);
- `<corruption>@<severity>` for the 15 CIFAR-10-C corruptions × severities 1..5: 75 columns.
How many it found of each is part of the output.

Measured:
1. Correlation matrix, clean against each of the other 107 columns over the representatives:
   `scipy.stats.kendalltau` (τ-b, its default), `scipy.stats.spearmanr` and `scipy.stats.pearsonr`,
   each timed on its own (nasrob computes all three in one pass, so compare its time with the
   sum). The τ-b and Spearman values go into the JSON, for comparison with nasrob's (τ-b must
   agree to 1e-12).
2. Tabular NAS with clean accuracy as the objective (maximised): --runs runs of --budget queries
   per algorithm, run r drawing from `numpy.random.default_rng(seed + r)`. The runs are plain
   Python loops over NASLib's definitions (naslib/optimizers/discrete/{rs,re,ls}/optimizer.py and
   the NB201 search space's sample_random_architecture / mutate / get_nbhd):
   - random architecture: six uniform ops (none, skip_connect, nor_conv_1x1, nor_conv_3x3,
     avg_pool_3x3), redrawn while the three edges leaving the input node (0→1, 0→2, 0→3) are all
     `none` or the three edges entering the output node (0→3, 1→3, 2→3) are all `none`;
   - rs: every query is a fresh random architecture;
   - re (regularized evolution): the first `population_size` queries are random architectures
     (NASLib's NB201 default and nasrob's `re`: 30; --population-size), each joining the
     population; after that each query mutates the best of `sample_size` (10) members drawn
     uniformly with replacement (the first of equal maxima, as Python's max), the child joins the
     population and the oldest member leaves. Mutation: one of the 6 edges uniformly, its op
     replaced by one of the 4 other ops uniformly;
   - ls (local search): `num_init` (10) random queries, the best becomes `best`. Then, one query
     per step: if the neighbourhood is empty and a centre exists that `best` does not beat, restart
     from a fresh random architecture (one query; it becomes centre and best, and its shuffled
     neighbourhood is next); otherwise, if the neighbourhood is empty, the centre becomes `best`
     and its 24 single-edge neighbours are shuffled; the next neighbour is popped from the end,
     queried, and becomes `best` if strictly better. So the search moves to the best neighbour
     after the whole neighbourhood was evaluated (NASLib does not stop at the first improvement).
   One query = one architecture proposed and looked up; repeats count again (no deduplication).
   A query maps the cell's six ops to its NB201 index (the arch string
   `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, edges 0→1, 0→2, 1→2, 0→3, 1→3, 2→3) and reads the value
   of that index's isomorphism representative; the string -> index -> representative -> value
   chain is resolved once into a table keyed by the ops' base-5 code. The incumbent is the best
   value queried so far; every query counts, including local search's restarts (NASLib's LS keeps
   restart architectures out of its history; nasrob does not). Reported per algorithm: seconds for
   all runs, and the mean ± std of the final incumbent's clean accuracy as a sanity check.
   BANANAS has no Python timing here (it needs NASLib's surrogate ensemble); the JSON says so.
"""

import argparse
import collections
import json
import os
import platform
import sys
import time

import numpy as np
import scipy
import scipy.stats

NUM_ARCHS = 15625
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NONE = 0
# Edges in NB201 string order: 0→1, 0→2, 1→2, 0→3, 1→3, 2→3.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
FROM_INPUT = tuple(e for e, (a, _) in enumerate(EDGES) if a == 0)  # (0, 1, 3)
INTO_OUTPUT = tuple(e for e, (_, b) in enumerate(EDGES) if b == 3)  # (3, 4, 5)
# (nasrob's name, the dataset's key)
ATTACKS = (
    ("fgsm", "fgsm@Linf"),
    ("pgd", "pgd@Linf"),
    ("apgd-ce", "aa_apgd-ce@Linf"),
    ("square", "aa_square@Linf"),
)
CORRUPTIONS = (
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost", "gaussian_noise",
    "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate", "shot_noise", "snow",
    "zoom_blur",
)
SEVERITIES = 5


# --- the data ---------------------------------------------------------------------------------

def fmt_num(x):
    """A radius as nasrob prints it (Rust's f64 Display): 1.0 -> "1", 0.5 -> "0.5"."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def parse_arch(arch):
    """The six ops of an NB201 arch string, in string (= EDGES) order, as indices into OPS."""
    ops = []
    for node in arch.strip("|").split("|+|"):
        for token in node.split("|"):
            op, _ = token.split("~")
            ops.append(OPS.index(op))
    if len(ops) != len(EDGES):
        raise ValueError(f"not an NB201 arch string: {arch!r}")
    return ops


def code(ops):
    """Base-5 code of a cell (a dense key 0..15624; not the NB201 index)."""
    return ops[0] + 5 * ops[1] + 25 * ops[2] + 125 * ops[3] + 625 * ops[4] + 3125 * ops[5]


def read_accuracy(data, dataset, key):
    """{uid: value} of DIR/<dataset>/<key>_accuracy.json, or None when the file is absent."""
    path = os.path.join(data, dataset, f"{key}_accuracy.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)[dataset][key]["accuracy"]


def load(data, dataset):
    """(meta ids, representatives in meta order, {column name: float64 array over them})."""
    with open(os.path.join(data, "meta.json")) as f:
        meta = json.load(f)
    ids = meta["ids"]
    if len(ids) != NUM_ARCHS:
        raise ValueError(f"meta.json has {len(ids)} ids, expected {NUM_ARCHS}")
    reps = [uid for uid, entry in ids.items() if entry["isomorph"] == uid]
    if any(ids[entry["isomorph"]]["isomorph"] != entry["isomorph"] for entry in ids.values()):
        raise ValueError("meta.json: an 'isomorph' entry does not name a representative")

    clean = read_accuracy(data, dataset, "clean")
    if clean is None:
        raise FileNotFoundError(f"no {dataset}/clean_accuracy.json under {data}")
    columns = {"clean": np.array([clean[uid] for uid in reps], dtype=np.float64)}
    for name, key in ATTACKS:
        values = read_accuracy(data, dataset, key)
        if values is None:
            continue
        for j, eps in enumerate(meta["epsilons"][key]):
            columns[f"{name}@{fmt_num(eps)}"] = np.array([values[uid][j] for uid in reps], dtype=np.float64)
    for name in CORRUPTIONS:
        values = read_accuracy(data, dataset, name)
        if values is None:
            continue
        for s in range(SEVERITIES):
            columns[f"{name}@{s + 1}"] = np.array([values[uid][s] for uid in reps], dtype=np.float64)
    return ids, reps, columns


def value_table(ids, reps, values):
    """List over base-5 cell codes: the value of the cell's representative (arch string -> NB201
    index -> meta's 'isomorph' -> value), for O(1) queries."""
    by_uid = dict(zip(reps, values.tolist()))
    table = [None] * NUM_ARCHS
    for entry in ids.values():
        table[code(parse_arch(entry["nb201-string"]))] = by_uid[entry["isomorph"]]
    if any(v is None for v in table):
        raise ValueError("meta.json does not cover all 15,625 cells")
    return table


# --- NAS (NASLib's definitions) ---------------------------------------------------------------

def sample_arch(rng):
    """NASLib's sample_random_architecture for NB201."""
    while True:
        ops = rng.integers(0, len(OPS), size=len(EDGES)).tolist()
        if not all(ops[e] == NONE for e in FROM_INPUT) and not all(ops[e] == NONE for e in INTO_OUTPUT):
            return ops


def mutate(ops, rng):
    """NASLib's mutate: one uniform edge gets a uniformly chosen different op."""
    child = list(ops)
    edge = int(rng.integers(len(EDGES)))
    others = [o for o in range(len(OPS)) if o != child[edge]]
    child[edge] = others[int(rng.integers(len(others)))]
    return child


def neighbours(ops, rng):
    """NASLib's get_nbhd: the 24 single-edge changes, shuffled."""
    nbhd = []
    for edge in range(len(EDGES)):
        for op in range(len(OPS)):
            if op != ops[edge]:
                child = list(ops)
                child[edge] = op
                nbhd.append(child)
    rng.shuffle(nbhd)
    return nbhd


def random_search(table, budget, rng, **_):
    best = -np.inf
    for _ in range(budget):
        best = max(best, table[code(sample_arch(rng))])
    return best


def regularized_evolution(table, budget, rng, population_size=30, sample_size=10, **_):
    population = collections.deque(maxlen=population_size)  # (ops, value), oldest first
    best = -np.inf
    for step in range(budget):
        if step < population_size:
            child = sample_arch(rng)
        else:
            picks = rng.integers(len(population), size=sample_size).tolist()
            parent = max((population[i] for i in picks), key=lambda member: member[1])
            child = mutate(parent[0], rng)
        value = table[code(child)]
        population.append((child, value))  # maxlen: the oldest member leaves
        best = max(best, value)
    return best


def local_search(table, budget, rng, num_init=10, **_):
    best_seen = -np.inf
    best = None  # (ops, value)
    chosen = None
    nbhd = []
    for step in range(budget):
        if step < num_init:
            arch = sample_arch(rng)
            value = table[code(arch)]
            if best is None or value > best[1]:
                best = (arch, value)
        elif not nbhd and chosen is not None and best[1] <= chosen[1]:
            # Local optimum: restart from a fresh random architecture.
            arch = sample_arch(rng)
            value = table[code(arch)]
            chosen = best = (arch, value)
            nbhd = neighbours(arch, rng)
        else:
            if not nbhd:
                chosen = best
                nbhd = neighbours(chosen[0], rng)
            arch = nbhd.pop()
            value = table[code(arch)]
            if value > best[1]:
                best = (arch, value)
        best_seen = max(best_seen, value)
    return best_seen


ALGORITHMS = (("rs", random_search), ("re", regularized_evolution), ("ls", local_search))


def run_many(search, table, budget, runs, seed, **settings):
    """Final incumbent value of runs 0..runs-1, run r seeded with default_rng(seed + r)."""
    return [search(table, budget, np.random.default_rng(seed + r), **settings) for r in range(runs)]


# --- timing and output ------------------------------------------------------------------------

def fastest(repeats, work):
    """(fastest wall-clock seconds of `repeats` calls, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def correlations(func, x, ys):
    return [float(func(x, y).statistic) for y in ys]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with meta.json and <dataset>/*_accuracy.json")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--json", help="also write the JSON result to this file")
    parser.add_argument("--repeats", type=int, default=3, help="timings are the fastest of this many")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="run r uses default_rng(seed + r)")
    parser.add_argument("--population-size", type=int, default=30, help="regularized evolution (NASLib NB201: 30)")
    parser.add_argument("--sample-size", type=int, default=10, help="regularized evolution (NASLib NB201: 10)")
    parser.add_argument("--num-init", type=int, default=10, help="local search (NASLib NB201: 10)")
    args = parser.parse_args()

    ids, reps, columns = load(args.data, args.dataset)
    names = [n for n in columns if n != "clean"]
    attack_names = [n for n in names if n.split("@")[0] in {a for a, _ in ATTACKS}]
    corruption_names = [n for n in names if n.split("@")[0] in CORRUPTIONS]
    clean = columns["clean"]
    ys = [columns[n] for n in names]

    # 1. clean vs every other column.
    kendall_s, taus = fastest(args.repeats, lambda: correlations(scipy.stats.kendalltau, clean, ys))
    spearman_s, rhos = fastest(args.repeats, lambda: correlations(scipy.stats.spearmanr, clean, ys))
    pearson_s, _ = fastest(args.repeats, lambda: correlations(scipy.stats.pearsonr, clean, ys))

    # 2. NAS on clean accuracy.
    table = value_table(ids, reps, clean)
    settings = {"population_size": args.population_size, "sample_size": args.sample_size, "num_init": args.num_init}
    nas = []
    for name, search in ALGORITHMS:
        seconds, finals = fastest(
            args.repeats, lambda: run_many(search, table, args.budget, args.runs, args.seed, **settings))
        finals = np.array(finals)
        nas.append({
            "algorithm": name,
            "seconds": seconds,
            "mean_final_incumbent": float(finals.mean()),
            "std_final_incumbent": float(finals.std()),
            "runs_reaching_optimum": int((finals == clean.max()).sum()),
        })
    nas.append({"algorithm": "bananas", "seconds": None,
                "note": "no Python timing here (BANANAS is not implemented in this reference)"})

    result = {
        "data": os.path.abspath(args.data),
        "dataset": args.dataset,
        "rows": len(reps),
        "columns": {"clean": 1, "attack": len(attack_names), "corruption": len(corruption_names),
                    "compared_with_clean": len(names)},
        "repeats": max(1, args.repeats),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "threads": 1,
        "tau_matrix": {
            "x_columns": 1,
            "y_columns": len(names),
            "kendall_seconds": kendall_s,
            "spearman_seconds": spearman_s,
            "pearson_seconds": pearson_s,
            "all_three_seconds": kendall_s + spearman_s + pearson_s,
            "kendall_tau_b": dict(zip(names, taus)),
            "spearman": dict(zip(names, rhos)),
        },
        "nas": {
            "objective": "clean",
            "optimum": float(clean.max()),
            "runs": args.runs,
            "budget": args.budget,
            "base_seed": args.seed,
            "settings": settings,
            "algorithms": nas,
        },
    }

    err = sys.stderr
    print(f"{args.dataset}: {len(reps)} representatives; columns: clean + {len(attack_names)} attack "
          f"+ {len(corruption_names)} corruption", file=err)
    print(f"\nclean vs {len(names)} columns (fastest of {result['repeats']}):", file=err)
    for label, seconds in (("kendalltau (b)", kendall_s), ("spearmanr", spearman_s), ("pearsonr", pearson_s)):
        print(f"  {label:<16}{seconds:10.4f} s", file=err)
    print(f"\n  {'column':<14}{'tau-b':>10}{'spearman':>10}", file=err)
    for n, t, r in zip(names, taus, rhos):
        if n in attack_names:
            print(f"  {n:<14}{t:10.4f}{r:10.4f}", file=err)
    print(f"\nNAS on clean (optimum {clean.max():.3f}), {args.runs} runs x {args.budget} queries:", file=err)
    print(f"  {'algorithm':<10}{'seconds':>10}{'mean final':>12}{'std':>8}", file=err)
    for row in nas:
        if row["seconds"] is None:
            print(f"  {row['algorithm']:<10}{'-':>10}  {row['note']}", file=err)
        else:
            print(f"  {row['algorithm']:<10}{row['seconds']:10.4f}{row['mean_final_incumbent']:12.4f}"
                  f"{row['std_final_incumbent']:8.4f}", file=err)

    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
