"""NB201's TinyNetwork in PyTorch, written for nasrob's benchmarks and validations.

Module names mirror xautodl's (stem.0, cells.<i>.layers.<e>.op.1, cells.<i>.conv_a, ...), so
nasrob's safetensors weights load by name. Normalisation lives inside the model: inputs are
[0,1] pixels, as in nasrob.
"""

import gzip
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]

NORMALIZATION = {
    "cifar10": ([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]),
    "cifar10-valid": ([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]),
    "cifar100": ([129.3, 124.1, 112.4], [68.2, 65.4, 70.4]),
    "ImageNet16-120": ([122.68, 116.66, 104.01], [63.22, 61.26, 65.09]),
}


def parse_arch(arch):
    """Ops on edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3 of an NB201 arch string."""
    ops = []
    for node in arch.strip("|").split("|+|"):
        for item in node.strip("|").split("|"):
            ops.append(item.split("~")[0])
    assert len(ops) == 6 and all(o in OPS for o in ops), arch
    return ops


class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, k, stride):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x):
        return self.op(x)


class Pool(nn.Module):
    def forward(self, x):
        return nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class Cell(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        layers = []
        for op in ops:
            if op == "nor_conv_1x1":
                layers.append(ReLUConvBN(c, c, 1, 1))
            elif op == "nor_conv_3x3":
                layers.append(ReLUConvBN(c, c, 3, 1))
            elif op == "avg_pool_3x3":
                layers.append(Pool())
            elif op == "skip_connect":
                layers.append(Identity())
            else:
                layers.append(Zero())
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        nodes = [x]
        edge = 0
        for node in range(1, 4):
            total = None
            for j in range(node):
                out = self.layers[edge](nodes[j])
                total = out if total is None else total + out
                edge += 1
            nodes.append(total)
        return nodes[-1]


class ResBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    def __init__(self, arch, channels=16, cells=5, num_classes=10, in_channels=3, mean=None, std=None):
        super().__init__()
        ops = parse_arch(arch)
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers = []
        c_prev = c
        for stage in range(3):
            c_stage = c << stage
            if stage > 0:
                layers.append(ResBlock(c_prev, c_stage))
            for _ in range(cells):
                layers.append(Cell(ops, c_stage))
            c_prev = c_stage
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(c_prev, num_classes)
        mean = mean if mean is not None else [0.0] * in_channels
        std = std if std is not None else [1.0] * in_channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.lastact(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file, without the safetensors package."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=torch.float32)
        tensors[name] = t.view(info["shape"]).clone()
    return tensors, meta


def load_nasrob_weights(path, num_classes, in_channels, mean, std):
    """A TinyNetwork built from the metadata of a nasrob weights file, with its weights loaded."""
    tensors, meta = read_safetensors(path)
    model = TinyNetwork(
        meta["arch"],
        int(meta["channels"]),
        int(meta["cells_per_stage"]),
        num_classes,
        in_channels,
        mean,
        std,
    )
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    return model.eval(), meta


# The embedded Fashion-MNIST subset's normalisation (nasrob's `fashion-mini`).
FASHION_MEAN, FASHION_STD = [0.2860], [0.3530]


def fashion_test(root, n):
    with gzip.open(os.path.join(root, "test-images-idx3-ubyte.gz")) as f:
        data = f.read()
    count, rows, cols = (int.from_bytes(data[4 * i : 4 * i + 4], "big") for i in (1, 2, 3))
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 1, rows, cols)
    with gzip.open(os.path.join(root, "test-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    x = torch.from_numpy(images[:n].astype(np.float32)) / 255.0
    return x, torch.from_numpy(labels[:n].astype(np.int64))
