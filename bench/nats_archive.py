"""Writes NATS-Bench topology archive files (`000123.pickle.pbz2`) for a few NB201 networks with
random weights, through NATS-Bench's own classes and pickling (the `nats_bench` package), and the
logits of each network (NB201's TinyNetwork from `xautodl`) on given images, for checking that
nasrob converts the archive's weights faithfully.

    python bench/nats_archive.py --out DIR --arch 1462='|...|' --arch 9930='|...|' \
        --datasets cifar10,cifar100 --seeds 777 --hp 200 --input X.f32 --shape N,3,32,32 --logits L.json

The weights are PyTorch's initialisation followed by a seeded random perturbation of every
tensor (BatchNorm's running statistics included), so that a misplaced tensor changes the logits.
The file is written the way NATS-Bench wrote its archive: `pickle_save` of a dict from schedule
("200") to `ArchResults.state_dict()`. Needs torch, xautodl 1.0.0 and nats_bench 1.8 (both
installed with --no-deps; they need only torch). X.f32 holds N*C*H*W little-endian float32
pixels in [0,1]; logits are those of normalised images, as NB201 feeds its networks.
"""

import argparse
import json
import os
import sys

import torch
from nats_bench.api_utils import ArchResults, ResultsCount, pickle_load, pickle_save
from xautodl.models.cell_infers.tiny_network import TinyNetwork
from xautodl.models.cell_searchs.genotypes import Structure

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xautodl_logits import CLASSES, NORMALIZATION  # noqa: E402


def network(arch, dataset, seed):
    torch.manual_seed(seed)
    net = TinyNetwork(16, 5, Structure.str2structure(arch), CLASSES[dataset])
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            else:
                tensor.add_(0.05 * torch.randn_like(tensor))
    return net.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", action="append", required=True, help="INDEX=ARCH_STRING (NB201's)")
    ap.add_argument("--datasets", required=True)
    ap.add_argument("--seeds", default="777")
    ap.add_argument("--hp", default="200")
    ap.add_argument("--input", required=True)
    ap.add_argument("--shape", required=True, help="N,C,H,W")
    ap.add_argument("--logits", required=True)
    args = ap.parse_args()

    shape = [int(v) for v in args.shape.split(",")]
    with open(args.input, "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).view(shape)
    os.makedirs(args.out, exist_ok=True)
    logits = {}
    for pair in args.arch:
        index, arch = pair.split("=", 1)
        index = int(index)
        by_hp = {}
        for hp in args.hp.split(","):
            results = ArchResults(index, arch)
            for dataset in args.datasets.split(","):
                for seed in [int(s) for s in args.seeds.split(",")]:
                    net = network(arch, dataset, seed * 1000 + index)
                    config = {"name": "infer.tiny", "channel": 16, "num_cells": 5, "arch_str": arch,
                              "class_num": CLASSES[dataset]}
                    run = ResultsCount(dataset, net.state_dict(), None, None, 0.0, 0.0, config, seed,
                                       int(hp), None)
                    results.update(dataset, seed, run)
                    # Through NATS-Bench's reader too, as its users get the weights.
                    mean, std = NORMALIZATION[dataset]
                    mean = torch.tensor([m / 255 for m in mean]).view(1, -1, 1, 1)
                    std = torch.tensor([s / 255 for s in std]).view(1, -1, 1, 1)
                    with torch.no_grad():
                        _, out = net((x - mean) / std)
                    logits[f"{index}/{dataset}/{hp}/{seed}"] = out.tolist()
            by_hp[hp] = results.state_dict()
        path = os.path.join(args.out, f"{index:06d}.pickle")
        pickle_save(by_hp, path)
        reread = pickle_load(path + ".pbz2")
        check = ArchResults.create_from_state_dict(reread[args.hp.split(",")[0]])
        assert check.arch_str == arch and check.get_net_param(args.datasets.split(",")[0], int(args.seeds.split(",")[0]))
    with open(args.logits, "w") as f:
        json.dump(logits, f)


if __name__ == "__main__":
    main()
