#!/usr/bin/env python3
"""Python reference for `nasrob bench query`: the same measurements with pyarrow + pandas on the
same Parquet files of a nasrob benchmark folder.

    python3 -m venv /tmp/nasrob-pyref && /tmp/nasrob-pyref/bin/pip install pyarrow pandas
    /tmp/nasrob-pyref/bin/python bench/query_reference.py --bench BENCH \
        --meta ../shared/reference/jung2023/meta.json [--dataset cifar10] [--json]

Measured, in one fresh process like the Rust command:
1. cold open + first lookup: read `dataset`'s rows of `evaluations` and `proxies` (pyarrow, with a
   dataset filter and only the needed columns), name the metrics as nasrob does, average repeated
   rows, build a dict metric -> list of 15,625 values, fill isomorphic indices from their
   representative (mapping from meta.json), then one lookup;
2. lookups per second: `index[metric][i]` at random (metric, index) pairs, the fastest plain-Python
   form, and `DataFrame.at[i, metric]`, the form pandas users write;
3. a full-table aggregate: mean accuracy per dataset x source x kind x condition x eps x severity
   over all evaluations rows (pandas groupby);
4. peak RSS (ru_maxrss).
"""

import argparse
import glob
import json
import math
import os
import random
import resource
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

NUM_ARCHS = 15625


def files(bench, table):
    return sorted(
        p for p in glob.glob(os.path.join(bench, table, "*.parquet"))
        if not os.path.basename(p).startswith(".tmp-")
    )


def fmt_num(x):
    # nasrob prints radii like Rust's f64 Display: 1.0 -> "1", 0.5 -> "0.5".
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def metric_names(frame):
    """nasrob's metric name of each evaluations row (vectorised)."""
    kind = frame["kind"]
    condition = frame["condition"]
    eps = frame["eps_255"].map(lambda e: None if e is None or (isinstance(e, float) and math.isnan(e)) else fmt_num(e))
    sev = frame["severity"].map(lambda s: None if s is None or (isinstance(s, float) and math.isnan(s)) else str(int(s)))
    names = condition.where(kind == "clean", condition + "@" + eps.fillna(""))
    names = names.where(kind != "corruption", condition + "@" + sev.fillna(""))
    split = frame["split"]
    prefix = split.where(~split.isin(["test", "x-test"]), "")
    prefix = prefix.where(prefix == "", prefix + ":")
    return frame["source"] + ":" + prefix + names


def cold_open(bench, dataset, representative):
    cols = ["source", "index", "split", "kind", "condition", "norm", "eps_255", "severity", "accuracy"]
    evaluations = ds.dataset(files(bench, "evaluations"), format="parquet")
    table = evaluations.to_table(columns=cols, filter=ds.field("dataset") == dataset)
    frame = table.to_pandas()
    frame["metric"] = metric_names(frame)
    means = frame.groupby(["metric", "index"], sort=False)["accuracy"].mean()
    proxy_files = files(bench, "proxies")
    if proxy_files:
        proxies = ds.dataset(proxy_files, format="parquet").to_table(
            columns=["source", "index", "proxy", "weights", "score"],
            filter=(ds.field("dataset") == dataset) & ds.field("score").is_valid(),
        ).to_pandas()
        proxies["metric"] = proxies["source"] + ":proxy:" + proxies["proxy"]
        means = pd.concat([means, proxies.groupby(["metric", "index"], sort=False)["score"].mean()])
    index = {}
    for metric, group in means.groupby(level=0, sort=False):
        column = [None] * NUM_ARCHS
        for i, v in zip(group.index.get_level_values(1), group.values):
            column[int(i)] = float(v)
        if representative is not None:
            for i in range(NUM_ARCHS):
                if column[i] is None:
                    column[i] = column[representative[i]]
        index[metric] = column
    return index


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--meta", help="Jung et al.'s meta.json, for the isomorphism representatives")
    parser.add_argument("--lookups", type=int, default=5_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    representative = None
    if args.meta:
        with open(args.meta) as f:
            ids = json.load(f)["ids"]
        representative = [int(ids[str(i)]["isomorph"]) for i in range(NUM_ARCHS)]
    index = cold_open(args.bench, args.dataset, representative)
    metrics = list(index)
    first_metric = next((m for m in metrics if "@" in m and ":fgsm" in m), metrics[0])
    first_value = index[first_metric][13433]
    cold_ms = (time.perf_counter() - start) * 1e3

    rng = random.Random(1)
    pairs = [(metrics[rng.randrange(len(metrics))], rng.randrange(NUM_ARCHS)) for _ in range(1 << 16)]
    mask = (1 << 16) - 1
    start = time.perf_counter()
    total = 0.0
    for k in range(args.lookups):
        metric, i = pairs[k & mask]
        v = index[metric][i]
        if v is not None:
            total += v
    dict_rate = args.lookups / (time.perf_counter() - start)

    frame = pd.DataFrame(index)
    n_at = max(args.lookups // 100, 1)
    start = time.perf_counter()
    for k in range(n_at):
        metric, i = pairs[k & mask]
        frame.at[i, metric]
    at_rate = n_at / (time.perf_counter() - start)
    del frame

    start = time.perf_counter()
    evaluations = ds.dataset(files(args.bench, "evaluations"), format="parquet").to_table(
        columns=["dataset", "source", "kind", "condition", "eps_255", "severity", "accuracy"]
    ).to_pandas()
    groups = evaluations.groupby(
        ["dataset", "source", "kind", "condition", "eps_255", "severity"], dropna=False
    )["accuracy"].agg(["mean", "size"])
    aggregate_ms = (time.perf_counter() - start) * 1e3
    rows = int(groups["size"].sum())

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = {
        "dataset": args.dataset,
        "first_metric": first_metric,
        "first_value_13433": first_value,
        "cold_open_first_lookup_ms": cold_ms,
        "metrics": len(metrics),
        "lookups_dict_per_s": dict_rate,
        "lookups_pandas_at_per_s": at_rate,
        "aggregate_ms": aggregate_ms,
        "aggregate_groups": len(groups),
        "aggregate_rows": rows,
        "peak_rss_mib": peak_mib,
        "python": sys.version.split()[0],
        "pyarrow": pa.__version__,
        "pandas": pd.__version__,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"benchmark {args.bench}  dataset {args.dataset}  metrics {len(metrics)}  "
          f"first lookup {first_metric} at 13433 = {first_value}")
    print(f"aggregate: {len(groups)} groups over {rows} evaluation rows")
    print(f"cold open + first lookup   {cold_ms:10.1f} ms")
    print(f"lookups, dict of lists     {dict_rate / 1e6:10.2f} million/s")
    print(f"lookups, DataFrame.at      {at_rate / 1e6:10.3f} million/s")
    print(f"full-table aggregate       {aggregate_ms:10.1f} ms")
    print(f"peak RSS (ru_maxrss)       {peak_mib:10.1f} MiB")


if __name__ == "__main__":
    main()
