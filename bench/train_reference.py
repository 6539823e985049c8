"""PyTorch-eager reference for `nasrob bench train`: training images/s of NB201 networks
(forward, backward, SGD-Nesterov step) on random CIFAR-shaped data, same architectures, batch
size and recipe as nasrob's measurement.

Usage: python bench/train_reference.py [--device cpu|cuda] [--steps 5] [--batch-size 256]
       [--bf16] [--cudnn-benchmark] [--threads N] [--arch INDEX=ARCH_STRING ...]
       [--input-channels 3] [--input-size 32] [--classes 10]
Prints one JSON object per architecture (NB201's 1462, 9930 and 4317 unless --arch is given).
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nb201_model import TinyNetwork  # noqa: E402

ARCHS = {
    1462: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    9930: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    4317: "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--cudnn-benchmark", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--arch", action="append", default=[], help="INDEX=ARCH_STRING, repeatable")
    p.add_argument("--input-channels", type=int, default=3)
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    a = p.parse_args()
    archs = dict((int(i), s) for i, s in (x.split("=", 1) for x in a.arch)) if a.arch else ARCHS
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    dtype = torch.bfloat16 if a.bf16 else torch.float32
    for index, arch in archs.items():
        torch.manual_seed(0)
        model = TinyNetwork(arch, a.channels, a.cells, a.classes, a.input_channels)
        model = model.to(device=device, dtype=dtype).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
        x = torch.rand(a.batch_size, a.input_channels, a.input_size, a.input_size, device=device, dtype=dtype)
        y = torch.randint(a.classes, (a.batch_size,), device=device)

        def step():
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(a.warmup):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(a.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(json.dumps({
            "index": index,
            "device": str(device),
            "batch_size": a.batch_size,
            "bf16": a.bf16,
            "cudnn_benchmark": a.cudnn_benchmark,
            "images_per_second": a.steps * a.batch_size / seconds,
            "seconds_per_step": seconds / a.steps,
            "torch": torch.__version__,
        }))


if __name__ == "__main__":
    main()
