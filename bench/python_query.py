#!/usr/bin/env python3
"""Speed of the Python package (`nasrob.Lookup`) against the pandas forms Python users write, in
one process on the same benchmark folder:

    pip install ./python pandas
    python bench/python_query.py --bench BENCH [--dataset cifar10] [--json]

Measured:
1. open + first lookup: `nasrob.Lookup(bench, dataset)` then one `get` (the lookup index when
   fresh, else the scan);
2. lookups per second at random (metric, index) pairs: `Lookup.get(name, i)`, `Lookup.get(id, i)`
   with ids from `resolve`, and, on a DataFrame holding the same columns (index x metric),
   `DataFrame.at[i, metric]`, plus the plain-Python dict of lists as the floor of any lookup;
3. whole columns: microseconds per `Lookup.column(metric)` (a read-only view, no copy: checked
   with numpy.shares_memory) and per `DataFrame[metric].to_numpy()`;
4. peak RSS (ru_maxrss).
"""

import argparse
import json
import random
import resource
import sys
import time

import numpy
import pandas

import nasrob


def rate(count, seconds):
    return count / seconds if seconds > 0 else float("inf")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--lookups", type=int, default=2_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    lookup = nasrob.Lookup(args.bench, args.dataset)
    names = [m["qualified"] for m in lookup.metrics()]
    lookup.get(names[0], 13433)
    open_ms = (time.perf_counter() - start) * 1e3

    rng = random.Random(1)
    pairs = [(names[rng.randrange(len(names))], rng.randrange(nasrob.space.NUM_ARCHS)) for _ in range(1 << 16)]
    id_pairs = [(lookup.resolve(m), i) for m, i in pairs]
    mask = (1 << 16) - 1
    get = lookup.get
    # Each form in its own loop of the same shape (no wrapper function), so that every rate
    # carries the same Python loop overhead.
    for metric, i in pairs[:1000]:
        get(metric, i)
    start = time.perf_counter()
    for k in range(args.lookups):
        metric, i = pairs[k & mask]
        get(metric, i)
    by_name = rate(args.lookups, time.perf_counter() - start)
    start = time.perf_counter()
    for k in range(args.lookups):
        metric, i = id_pairs[k & mask]
        get(metric, i)
    by_id = rate(args.lookups, time.perf_counter() - start)

    columns = {m: lookup.column(m) for m in names}
    plain = {m: [None if numpy.isnan(v) else float(v) for v in c] for m, c in columns.items()}
    start = time.perf_counter()
    for k in range(args.lookups):
        metric, i = pairs[k & mask]
        plain[metric][i]
    dict_rate = rate(args.lookups, time.perf_counter() - start)
    frame = pandas.DataFrame({m: c.copy() for m, c in columns.items()})
    at = frame.at
    n_at = max(args.lookups // 50, 1)
    start = time.perf_counter()
    for k in range(n_at):
        metric, i = pairs[k & mask]
        at[i, metric]
    at_rate = rate(n_at, time.perf_counter() - start)

    repeats = 20_000
    start = time.perf_counter()
    for k in range(repeats):
        lookup.column(names[k % len(names)])
    column_us = (time.perf_counter() - start) / repeats * 1e6
    start = time.perf_counter()
    for k in range(repeats):
        frame[names[k % len(names)]].to_numpy()
    pandas_column_us = (time.perf_counter() - start) / repeats * 1e6
    shares = bool(numpy.shares_memory(lookup.column(names[0]), lookup.column(names[0])))

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = {
        "bench": args.bench,
        "dataset": args.dataset,
        "metrics": len(names),
        "opened_from_lookup_index": lookup.from_index,
        "open_first_lookup_ms": open_ms,
        "get_by_name_per_s": by_name,
        "get_by_id_per_s": by_id,
        "dict_of_lists_per_s": dict_rate,
        "pandas_at_per_s": at_rate,
        "get_by_name_over_pandas_at": by_name / at_rate,
        "column_us": column_us,
        "pandas_column_to_numpy_us": pandas_column_us,
        "column_shares_memory": shares,
        "peak_rss_mib": peak_mib,
        "python": sys.version.split()[0],
        "nasrob": nasrob.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"benchmark {args.bench}  dataset {args.dataset}  metrics {len(names)}  "
          f"from lookup index: {lookup.from_index}")
    print(f"open + first lookup          {open_ms:10.1f} ms")
    print(f"Lookup.get(name, i)          {by_name / 1e6:10.2f} million/s")
    print(f"Lookup.get(id, i)            {by_id / 1e6:10.2f} million/s")
    print(f"dict of lists [m][i]         {dict_rate / 1e6:10.2f} million/s")
    print(f"DataFrame.at[i, m]           {at_rate / 1e6:10.3f} million/s   (get by name: {by_name / at_rate:.0f}x)")
    print(f"Lookup.column(m)             {column_us:10.2f} us   (shares memory: {shares})")
    print(f"DataFrame[m].to_numpy()      {pandas_column_us:10.2f} us")
    print(f"peak RSS (ru_maxrss)         {peak_mib:10.1f} MiB")


if __name__ == "__main__":
    main()
