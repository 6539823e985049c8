"""The Python package against the CLI on the imported reference data: same values, same
errors, and columns that share nasrob's memory."""

import gc
import os
import random
import shutil
import subprocess
import sys

import numpy
import pandas
import polars
import pyarrow.parquet as pyarrow_parquet
import pytest

import nasrob
from nasrob import space

from conftest import REPOSITORY, cli_error

SAMPLE_METRICS = [
    "jung2023:clean",
    "nb201:clean",
    "fgsm@1",
    "pgd@0.5",
    "apgd-ce@8",
    "square@1",
    "fog@3",
    "adversarial_mean",
    "corruption_mean",
    "params",
    "flops",
]


@pytest.fixture(scope="module")
def lookup(bench):
    return nasrob.Lookup(bench, "cifar10")


def test_lookups_equal_the_cli(lookup, bench, cli_json):
    rng = random.Random(0)
    indices = rng.sample(range(space.NUM_ARCHS), 12) + [0, 13714]
    args = [a for m in SAMPLE_METRICS for a in ("--metric", m)]
    compared = 0
    for index in indices:
        doc = cli_json("query", "lookup", "--bench", bench, "--dataset", "cifar10", index, *args)
        by_metric = {(v["source"], v["metric"]): v for v in doc["values"]}
        for metric in SAMPLE_METRICS:
            source, _, name = metric.rpartition(":")
            matches = [v for (s, m), v in by_metric.items() if m == name and (not source or s == source)]
            assert len(matches) == 1, (metric, by_metric.keys())
            expected = matches[0]
            assert lookup.get(metric, index) == expected["value"], (metric, index)
            assert lookup.lookup(index, metric) == expected["value"]
            if expected["value"] is not None:
                assert lookup.answer(metric, index) == (expected["value"], expected["measured_on"])
            compared += 1
        assert lookup.representative(index) == doc["isomorph"]
    assert compared == len(indices) * len(SAMPLE_METRICS)


def test_metric_ids_answer_as_names_do(lookup):
    assert lookup.resolve("apgd@8") == lookup.resolve("apgd-ce@8") == lookup.resolve("apgd-ce@8.0")
    for metric in ("pgd@1", "jung2023:clean", "params"):
        metric_id = lookup.resolve(metric)
        info = lookup.metrics()[metric_id]
        assert lookup.resolve(info["qualified"]) == metric_id
        for index in (0, 1, 5, 13714, 15624):
            assert lookup.get(metric_id, index) == lookup.get(metric, index)


def test_metrics_equal_the_cli(lookup, bench, cli_json):
    doc = cli_json("query", "metrics", "--bench", bench, "--dataset", "cifar10")
    assert lookup.metrics() == doc
    assert lookup.dataset == "cifar10" and len(lookup) == 15625
    assert lookup.from_index, "nasrob import wrote the lookup index, and it is fresh"


def test_column_equals_get_and_shares_memory(lookup):
    column = lookup.column("pgd@1")
    assert column.dtype == numpy.float64 and column.shape == (15625,)
    expected = [lookup.get("pgd@1", i) for i in range(space.NUM_ARCHS)]
    assert [None if numpy.isnan(v) else float(v) for v in column] == expected
    again = lookup.column(lookup.resolve("pgd@1"))
    assert numpy.shares_memory(column, again), "two calls return views of one buffer, not copies"
    assert not numpy.shares_memory(column, lookup.column("fgsm@1"))
    assert not column.flags.writeable
    with pytest.raises(ValueError):
        column[0] = 1.0


def test_column_outlives_its_lookup(bench):
    column = nasrob.Lookup(bench, "cifar100").column("fgsm@1")
    expected = column.copy()
    gc.collect()
    assert numpy.array_equal(column, expected, equal_nan=True)
    assert numpy.count_nonzero(~numpy.isnan(column)) > 6000


@pytest.mark.parametrize(
    "call, exception, cli_args",
    [
        (lambda l: l.get("nope@1", 3), KeyError, ["query", "lookup", "3", "--metric", "nope@1"]),
        (lambda l: l.get("clean", 3), ValueError, ["query", "lookup", "3", "--metric", "clean"]),
        (lambda l: l.get("pgd@1", 15625), IndexError, ["query", "lookup", "15625", "--metric", "pgd@1"]),
        (lambda l: l.lookup(-1, "pgd@1"), IndexError, None),
        (lambda l: l.column("fgsm@3.5"), KeyError, ["query", "lookup", "1", "--metric", "fgsm@3.5"]),
    ],
)
def test_bad_lookups_raise_with_the_cli_message(lookup, bench, cli, call, exception, cli_args):
    with pytest.raises(exception) as raised:
        call(lookup)
    if cli_args is not None:
        code, _, err = cli(*cli_args, "--bench", bench, "--dataset", "cifar10")
        assert code == 2
        assert raised.value.args[0] == cli_error(err)


def test_a_metric_of_the_wrong_type_is_a_type_error(lookup):
    with pytest.raises(TypeError, match="not float"):
        lookup.get(1.5, 3)
    with pytest.raises(KeyError, match="no metric has id"):
        lookup.get(10_000, 3)


def test_missing_folder_and_unknown_dataset(tmp_path, cli):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as raised:
        nasrob.Lookup(missing, "cifar10")
    code, _, err = cli("query", "lookup", "1", "--bench", missing, "--dataset", "cifar10")
    assert code == 2 and raised.value.args[0] == cli_error(err)
    with pytest.raises(ValueError) as raised:
        nasrob.Lookup(missing, "cifar11")
    assert "cifar11" in raised.value.args[0]


def test_truncated_file_is_a_value_error_and_the_interpreter_lives(bench, tmp_path, cli):
    copy = tmp_path / "bench"
    shutil.copytree(bench, copy)
    table = sorted((copy / "evaluations").glob("*.parquet"))[0]
    table.write_bytes(table.read_bytes()[:1000])
    with pytest.raises(ValueError) as raised:
        nasrob.Lookup(copy, "cifar10")
    code, _, err = cli("query", "lookup", "1", "--bench", copy, "--dataset", "cifar10")
    assert code == 2 and raised.value.args[0] == cli_error(err)
    assert str(table) in raised.value.args[0]


def test_space_equals_the_cli(cli):
    code, out, err = cli("space", "list")
    assert code == 0, err
    listed = [line.split("\t") for line in out.splitlines() if line and line[0].isdigit()]
    assert len(listed) == space.NUM_ARCHS == 15625
    for index, arch in listed:
        assert space.arch_string(int(index)) == arch
        assert space.index_of(arch) == int(index)
    assert sum(space.is_representative(i) for i in range(space.NUM_ARCHS)) == space.NUM_UNIQUE == 6466


@pytest.mark.parametrize("index", [0, 5, 13714, 15624])
def test_space_show_equals_the_cli(cli_json, index):
    doc = cli_json("space", "show", index)
    assert space.representative(index) == doc["isomorph"]
    assert space.is_representative(index) == doc["is_representative"]
    assert sorted(space.neighbours(index)) == sorted(doc["neighbours"])
    for dataset, cost in doc["costs"].items():
        assert space.cost(index, dataset) == {"params_m": cost["params_m"], "flops_m": cost["flops_m"]}


def test_space_bad_input():
    with pytest.raises(IndexError, match="out of range"):
        space.arch_string(15625)
    with pytest.raises(ValueError, match="neither an architecture index"):
        space.index_of("conv3x3")
    with pytest.raises(ValueError):
        space.index_of("|nor_conv_3x3~0|+|bogus~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")


def _records(frame):
    """Rows of a polars or pandas DataFrame as dicts, NaN and None both as None."""
    rows = frame.to_dicts() if hasattr(frame, "to_dicts") else frame.to_dict("records")
    clean = lambda v: None if v is None or (isinstance(v, float) and numpy.isnan(v)) else v
    return [{k: clean(v) for k, v in row.items()} for row in rows]


def test_tau_equals_the_cli(bench, cli_json):
    frame = nasrob.tau(bench, "cifar10", x=["jung2023:clean", "params"], y=["pgd@*", "fog@3"])
    doc = cli_json("tau", "--bench", bench, "--dataset", "cifar10", "--x", "jung2023:clean", "--x", "params", "--y", "pgd@*", "--y", "fog@3")
    got = _records(frame)
    assert len(got) == len(doc["cells"]) > 2
    for row, cell in zip(got, doc["cells"]):
        assert row["rows"] == "unique"
        for key in ("x", "y", "n", "kendall_tau_b", "spearman", "pearson"):
            assert row[key] == cell[key], key


def test_cross_dataset_tau_equals_the_cli(bench, cli_json):
    frame = nasrob.tau(bench, "cifar10", x="fgsm@1", cross_dataset="cifar100", rows="all")
    doc = cli_json("tau", "--bench", bench, "--dataset", "cifar10", "--x", "fgsm@1", "--cross-dataset", "cifar100", "--rows", "all")
    got = _records(frame)
    assert [(r["x"], r["y"], r["n"], r["kendall_tau_b"]) for r in got] == [
        (c["x"], c["y"], c["n"], c["kendall_tau_b"]) for c in doc["cells"]
    ]


def test_tau_bad_input(bench):
    with pytest.raises(ValueError, match="unknown row set"):
        nasrob.tau(bench, rows="some")
    with pytest.raises(ValueError, match="unknown metric family"):
        nasrob.tau(bench, y="attacks/*")


def test_nas_equals_the_cli_trajectories(bench, cli, tmp_path):
    out = tmp_path / "runs.parquet"
    args = ["--algo", "re,ls,bananas", "--objective", "0.5*jung2023:clean + 0.5*pgd@1", "--budget", "30", "--runs", "3", "--seed", "7"]
    code, _, err = cli("nas", "--bench", bench, "--dataset", "cifar10", *args, "--constraint", "params<=1", "--out", out)
    assert code == 0, err
    frame = nasrob.nas(
        bench,
        "cifar10",
        algo=["re", "ls", "bananas"],
        objective="0.5*jung2023:clean + 0.5*pgd@1",
        budget=30,
        runs=3,
        seed=7,
        constraints="params<=1",
    )
    expected = pyarrow_parquet.read_table(out).to_pylist()
    got = _records(frame)
    assert len(got) == len(expected) == 3 * 3 * 30
    for row, want in zip(got, expected):
        assert row == {k: (None if isinstance(v, float) and numpy.isnan(v) else v) for k, v in want.items()}


def test_nas_bad_input(bench):
    with pytest.raises(ValueError, match="unknown algorithm 'sa'"):
        nasrob.nas(bench, algo="sa", objective="pgd@1")
    with pytest.raises(KeyError):
        nasrob.nas(bench, objective="pgd@99", runs=1, budget=5)
    with pytest.raises(ValueError, match="budget"):
        nasrob.nas(bench, objective="pgd@1", budget=0)


def test_frames_are_pandas_without_polars(bench, monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)
    frame = nasrob.tau(bench, x="jung2023:clean", y="pgd@1")
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.columns) == ["x", "y", "rows", "n", "kendall_tau_b", "spearman", "pearson"]


def test_frames_are_polars_when_installed(bench):
    frame = nasrob.tau(bench, x="jung2023:clean", y="pgd@1")
    assert isinstance(frame, polars.DataFrame)
    assert frame.columns == ["x", "y", "rows", "n", "kendall_tau_b", "spearman", "pearson"]


RUN_NOTEBOOK = """
import json, sys
import nbformat
path = sys.argv[1]
nbformat.validate(nbformat.read(path, as_version=4))
namespace = {"display": print, "__name__": "__main__"}
for cell in json.load(open(path))["cells"]:
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), f"{path}:{cell['id']}", "exec"), namespace)
print("regret shape", namespace["regret"].shape)
"""


def test_nas_loop_notebook_runs_top_to_bottom(bench):
    notebook = REPOSITORY / "notebooks-export" / "nas_loop_python.ipynb"
    environment = dict(os.environ, NASROB_BENCH=str(bench), NASROB_OBJECTIVE="pgd@1", MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-c", RUN_NOTEBOOK, str(notebook)], capture_output=True, text=True, env=environment
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "regret shape (20, 200)" in done.stdout
    lookup = nasrob.Lookup(bench, "cifar10")
    optimum = float(numpy.nanmax(lookup.column("pgd@1")))
    assert f"pgd@1: optimum {optimum:.4f}" in done.stdout
