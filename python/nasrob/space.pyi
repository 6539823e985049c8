"""NB201's cell search space: indices, arch strings, isomorphism classes, neighbours, costs."""

NUM_ARCHS: int
NUM_UNIQUE: int

def arch_string(index: int) -> str:
    """NB201's arch string of ``index``.

    >>> space.arch_string(0)
    '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|'
    """

def index_of(arch: str) -> int:
    """The NB201 index of an arch string.

    >>> space.index_of(space.arch_string(13714))
    13714
    """

def representative(index: int) -> int:
    """The smallest index of the isomorphism class of ``index``.

    >>> space.representative(1)
    1
    """

def is_representative(index: int) -> bool:
    """Whether ``index`` is the smallest of its isomorphism class.

    >>> sum(space.is_representative(i) for i in range(space.NUM_ARCHS))
    6466
    """

def neighbours(index: int) -> list[int]:
    """Indices of the 24 architectures that differ from ``index`` in one edge's operation.

    >>> len(space.neighbours(13714))
    24
    """

def cost(index: int, dataset: str = "cifar10") -> dict[str, float]:
    """NB201's network (C=16, N=5) on ``dataset``: millions of parameters and multiply-adds.

    >>> space.cost(13714)
    {'params_m': 1.073466, 'flops_m': 153.27297}
    """
