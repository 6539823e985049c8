"""Shared fixtures: the nasrob CLI that the package is compared with, and a benchmark folder
imported from the reference data (Jung et al. 2023 and NB201's accuracies, CIFAR-10 and
CIFAR-100)."""

import json
import os
import pathlib
import subprocess

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def _missing(what):
    """Fails under CI (a missing prerequisite must not pass as a skip), else skips and records
    the skip where `make test` counts them."""
    if os.environ.get("CI"):
        pytest.fail(what)
    log = os.environ.get("NASROB_SKIP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"python tests: {what}\n")
    pytest.skip(what)


@pytest.fixture(scope="session")
def nasrob_bin():
    path = os.environ.get("NASROB_BIN")
    if not path or not os.path.exists(path):
        pytest.fail("NASROB_BIN must name the nasrob binary the package is compared with (make test sets it)")
    return path


@pytest.fixture(scope="session")
def cli(nasrob_bin):
    """Runs the CLI; returns (exit code, stdout, stderr)."""

    def run(*args):
        done = subprocess.run([nasrob_bin, *map(str, args)], capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr

    return run


@pytest.fixture(scope="session")
def cli_json(cli):
    def run(*args):
        code, out, err = cli(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    return run


@pytest.fixture(scope="session")
def reference():
    root = pathlib.Path(os.environ.get("NASROB_REFERENCE_DIR", REPOSITORY.parent / "shared" / "reference"))
    if not (root / "jung2023" / "meta.json").exists() or not (root / "nb201" / "nats_bench.csv").exists():
        _missing(f"{root} lacks jung2023/ or nb201/nats_bench.csv (set NASROB_REFERENCE_DIR)")
    return root


@pytest.fixture(scope="session")
def bench(tmp_path_factory, reference, cli):
    """The reference data imported by the CLI, as a user would."""
    folder = tmp_path_factory.mktemp("bench") / "bench"
    for args in (
        ("import", "jung2023", reference / "jung2023", "--bench", folder),
        ("import", "nb201-accuracy", reference / "nb201" / "nats_bench.csv", "--bench", folder),
    ):
        code, _, err = cli(*args)
        assert code == 0, err
    return folder


def cli_error(stderr):
    """The CLI's one-line message without its `error: ` prefix."""
    line = stderr.strip().splitlines()[-1]
    return line.removeprefix("error: ")
