"""NB201's cell search space: indices, arch strings, isomorphism classes, neighbours, costs.

>>> from nasrob import space
>>> space.index_of(space.arch_string(13714))
13714
>>> space.representative(1), len(space.neighbours(0)), space.NUM_UNIQUE
"""

from ._native import space as _space

NUM_ARCHS: int = _space.NUM_ARCHS
NUM_UNIQUE: int = _space.NUM_UNIQUE
arch_string = _space.arch_string
index_of = _space.index_of
representative = _space.representative
is_representative = _space.is_representative
neighbours = _space.neighbours
cost = _space.cost

__all__ = [
    "NUM_ARCHS",
    "NUM_UNIQUE",
    "arch_string",
    "cost",
    "index_of",
    "is_representative",
    "neighbours",
    "representative",
]
