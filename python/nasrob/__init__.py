"""nasrob's query layer from Python: robustness benchmarks over NAS-Bench-201.

Open a benchmark folder (written by ``nasrob import`` or ``nasrob sweep merge``) once, then look
values up by metric name and NB201 index in memory:

>>> import nasrob
>>> lookup = nasrob.Lookup("bench", "cifar10")
>>> lookup.get("pgd@1", 13714)
0.438
>>> int(numpy.nanargmax(lookup.column("clean")))
13714
>>> nasrob.space.arch_string(13714)
'|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|'

``tau`` and ``nas`` return polars DataFrames when polars is installed, pandas ones otherwise.
Bad input raises ``ValueError``, ``KeyError`` (unknown metric), ``IndexError`` (index out of
range) or ``FileNotFoundError`` (missing folder), with the message the CLI prints.
"""

from collections.abc import Sequence
from os import PathLike

from . import space
from ._native import Column, Lookup, __version__
from ._native import nas_columns as _nas_columns
from ._native import tau_columns as _tau_columns

__all__ = ["Column", "Lookup", "nas", "space", "tau", "__version__"]


def _frame(columns):
    """A DataFrame of a dict of equally long lists: polars when installed, else pandas."""
    try:
        import polars
    except ImportError:
        import pandas

        return pandas.DataFrame(columns)
    return polars.DataFrame(columns, strict=False)


def _names(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def tau(
    bench: "str | PathLike[str]",
    dataset: str = "cifar10",
    x: "str | Sequence[str]" = "clean/*",
    y: "str | Sequence[str] | None" = None,
    cross_dataset: "str | None" = None,
    rows: str = "unique",
):
    """Kendall's tau-b, Spearman's rho and Pearson's r of every ``x`` metric with every ``y``
    metric, as ``nasrob tau`` computes them: one row per pair with columns x, y, rows, n,
    kendall_tau_b, spearman, pearson.

    Metrics are names (``clean``, ``pgd@1``), globs (``pgd@*``), families (``adversarial/*``,
    ``corruption/*``, ``proxy/*``) or ``all``; ``y`` defaults to the adversarial and corruption
    metrics. ``rows`` is ``unique`` (one architecture per isomorphism class) or ``all``. With
    ``cross_dataset``, each ``x`` metric is correlated with itself on that dataset. Where the
    benchmark has metrics measured at several seeds, the columns x_noise_ceiling and
    y_noise_ceiling give each metric's Kendall tau-b between two seeds' values.

    >>> nasrob.tau("bench", "cifar10", x="clean", y=["pgd@*", "fgsm@1"])
    """
    columns = _tau_columns(bench, dataset, _names(x), _names(y), cross_dataset, rows)
    return _frame(columns)


def nas(
    bench: "str | PathLike[str]",
    dataset: str = "cifar10",
    algo: "str | Sequence[str]" = "all",
    objective: str = "clean",
    budget: int = 200,
    runs: int = 100,
    seed: int = 0,
    constraints: "str | Sequence[str] | None" = None,
    report: "str | Sequence[str] | None" = None,
):
    """Tabular NAS as ``nasrob nas`` runs it (random search, regularized evolution, local search
    or BANANAS at NASLib's settings): every query of every run, one row each, with columns
    dataset, objective, constraints, algorithm, base_seed, run, query, queried_index, value,
    incumbent_index, incumbent_value (``schemas/nas_trajectories.json``).

    ``algo`` is ``rs``, ``re``, ``ls``, ``bananas``, a list of them, or ``all``; ``objective`` a
    metric or a weighted sum such as ``"0.5*clean + 0.5*pgd@1"``; ``constraints`` such as
    ``"params<=0.5"``.

    >>> runs = nasrob.nas("bench", algo="re", objective="pgd@1", budget=100, runs=10)
    """
    columns = _nas_columns(
        bench,
        dataset,
        _names(algo),
        objective,
        budget,
        runs,
        seed,
        _names(constraints),
        None if report is None else _names(report),
    )
    return _frame(columns)
