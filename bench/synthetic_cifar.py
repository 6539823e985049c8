"""A synthetic 10-class dataset in CIFAR-10's binary layout, for validating nasrob on 3-channel
32x32 networks where CIFAR-10 itself cannot be downloaded.

    python3 bench/synthetic_cifar.py --out DATA_DIR [--train 5000] [--test 1000] [--seed 0]

Writes DATA_DIR/cifar-10-batches-bin/data_batch_{1..5}.bin and test_batch.bin (1 label byte and
3,072 pixel bytes per record, channel-major), which `nasrob train --dataset cifar10 --data-dir
DATA_DIR` and `nasrob attack` read like CIFAR-10. Class k is a sine grating of its own
orientation and frequency, tinted with its own colour, at a random phase, contrast and brightness,
with pixel noise: learnable in a few epochs, not trivially. Standard library only.
"""

import argparse
import math
import os
import random


def image(rng, label):
    angle = math.pi * label / 10
    frequency = 0.25 + 0.05 * (label % 5)
    tint = [0.6 + 0.4 * math.cos(2 * math.pi * (label / 10 + c / 3)) for c in range(3)]
    phase = rng.uniform(0, 2 * math.pi)
    contrast = rng.uniform(0.05, 0.2)
    brightness = rng.uniform(0.35, 0.65)
    dx, dy = math.cos(angle), math.sin(angle)
    out = bytearray()
    for c in range(3):
        for row in range(32):
            for col in range(32):
                wave = math.sin(frequency * (col * dx + row * dy) * 2 * math.pi / 4 + phase)
                value = brightness + contrast * wave * tint[c] + rng.gauss(0, 0.2)
                out.append(min(255, max(0, round(255 * value))))
    return bytes(out)


def write(path, rng, n):
    with open(path, "wb") as f:
        for i in range(n):
            label = i % 10
            f.write(bytes([label]) + image(rng, label))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = os.path.join(args.out, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(args.seed)
    per_batch = args.train // 5
    for k in range(1, 6):
        write(os.path.join(folder, f"data_batch_{k}.bin"), rng, per_batch)
    write(os.path.join(folder, "test_batch.bin"), rng, args.test)


if __name__ == "__main__":
    main()
