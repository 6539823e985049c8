"""Types of nasrob's compiled extension (see the package documentation)."""

from os import PathLike
from typing import Any

import numpy
import numpy.typing

from . import space as space

__version__: str

class Lookup:
    """One dataset of a benchmark folder in memory: every metric aligned by NB201 index.

    >>> lookup = nasrob.Lookup("bench", "cifar10")
    >>> lookup.get("jung2023:clean", 13714)
    0.946
    """

    def __init__(self, bench: str | PathLike[str], dataset: str = "cifar10") -> None: ...
    def get(self, metric: str | int, index: int) -> float | None:
        """The value of ``metric`` (a name or an id from ``resolve``) at ``index``, or None.

        >>> lookup.get("pgd@1", 13714)
        0.438
        """
    def lookup(self, index: int, metric: str | int) -> float | None:
        """``get`` with the index first.

        >>> lookup.lookup(13714, "fgsm@1")
        0.65
        """
    def answer(self, metric: str | int, index: int) -> tuple[float, int] | None:
        """The value and the index it was measured on (``index`` or a member of its class).

        >>> lookup.answer("clean", 13714)
        (0.946, 13714)
        """
    def resolve(self, metric: str) -> int:
        """The metric's id, for loops that call ``get`` millions of times.

        >>> pgd = lookup.resolve("pgd@1"); lookup.get(pgd, 13714)
        0.438
        """
    def column(self, metric: str | int) -> numpy.typing.NDArray[numpy.float64]:
        """The whole column (15,625 values, NaN where none), read-only, sharing nasrob's memory.

        >>> int(numpy.nanargmax(lookup.column("clean")))
        13714
        """
    def metrics(self) -> list[dict[str, Any]]:
        """Every metric: metric, source, qualified, family, measured, answerable (as the CLI's JSON).

        >>> [m["qualified"] for m in lookup.metrics()][:2]
        ['jung2023:clean', 'jung2023:apgd-ce@0.1']
        """
    def representative(self, index: int) -> int:
        """The smallest index of the isomorphism class of ``index``.

        >>> lookup.representative(1)
        1
        """
    @property
    def dataset(self) -> str: ...
    @property
    def bench(self) -> str: ...
    @property
    def from_index(self) -> bool: ...
    def __len__(self) -> int: ...

class Column:
    """A lookup column behind Python's buffer protocol (``numpy.frombuffer`` shares it)."""

def tau_columns(
    bench: str | PathLike[str],
    dataset: str = "cifar10",
    x: list[str] = ...,
    y: list[str] = ...,
    cross_dataset: str | None = None,
    rows: str = "unique",
) -> dict[str, list[Any]]: ...
def nas_columns(
    bench: str | PathLike[str],
    dataset: str = "cifar10",
    algo: list[str] = ...,
    objective: str = "clean",
    budget: int = 200,
    runs: int = 100,
    seed: int = 0,
    constraints: list[str] = ...,
    report: list[str] | None = None,
) -> dict[str, list[Any]]: ...
