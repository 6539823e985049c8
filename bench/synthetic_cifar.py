"""A synthetic 10-class dataset in CIFAR-10's binary layout or in ImageNet16-120's pickles, for
validating nasrob on 3-channel 32x32 and 16x16 networks where the real datasets cannot be
downloaded.

    python3 bench/synthetic_cifar.py --out DATA_DIR [--train 5000] [--test 1000] [--seed 0]
    python3 bench/synthetic_cifar.py --layout imagenet16 --out DATA_DIR [--train 5000]

cifar10 (standard library only): DATA_DIR/cifar-10-batches-bin/data_batch_{1..5}.bin and
test_batch.bin (1 label byte and 3,072 pixel bytes per record, channel-major), which `nasrob train
--dataset cifar10 --data-dir DATA_DIR` and `nasrob attack` read like CIFAR-10.

imagenet16 (needs numpy): DATA_DIR/ImageNet16/train_data_batch_{1..10} and val_data, pickled dicts
of uint8 `data` [n, 768] and 1-based `labels`, as NB201's ImageNet16 files are; the validation set
has ImageNet16-120's 6,000 images (its x-valid/x-test split needs them). Labels use classes 1..10
of the 120, so networks have 120 outputs and learn ten.

Class k is a sine grating of its own orientation and frequency, tinted with its own colour, at a
random phase, contrast and brightness, with pixel noise: learnable in a few epochs, not trivially.
"""

import argparse
import math
import os
import pickle
import random


def image(rng, label, size):
    angle = math.pi * label / 10
    frequency = (0.25 + 0.05 * (label % 5)) * 32 / size
    tint = [0.6 + 0.4 * math.cos(2 * math.pi * (label / 10 + c / 3)) for c in range(3)]
    phase = rng.uniform(0, 2 * math.pi)
    contrast = rng.uniform(0.05, 0.2)
    brightness = rng.uniform(0.35, 0.65)
    dx, dy = math.cos(angle), math.sin(angle)
    out = bytearray()
    for c in range(3):
        for row in range(size):
            for col in range(size):
                wave = math.sin(frequency * (col * dx + row * dy) * 2 * math.pi / 4 + phase)
                value = brightness + contrast * wave * tint[c] + rng.gauss(0, 0.2)
                out.append(min(255, max(0, round(255 * value))))
    return bytes(out)


def write_cifar(path, rng, n):
    with open(path, "wb") as f:
        for i in range(n):
            label = i % 10
            f.write(bytes([label]) + image(rng, label, 32))


def write_imagenet16(path, rng, n):
    import numpy as np

    labels = [i % 10 for i in range(n)]
    data = np.frombuffer(b"".join(image(rng, label, 16) for label in labels), dtype=np.uint8).reshape(n, 768)
    with open(path, "wb") as f:
        pickle.dump({"data": data, "labels": [label + 1 for label in labels]}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--layout", choices=["cifar10", "imagenet16"], default="cifar10")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=1000, help="test images (cifar10; imagenet16 has 6,000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    if args.layout == "cifar10":
        folder = os.path.join(args.out, "cifar-10-batches-bin")
        os.makedirs(folder, exist_ok=True)
        per_batch = args.train // 5
        for k in range(1, 6):
            write_cifar(os.path.join(folder, f"data_batch_{k}.bin"), rng, per_batch)
        write_cifar(os.path.join(folder, "test_batch.bin"), rng, args.test)
    else:
        folder = os.path.join(args.out, "ImageNet16")
        os.makedirs(folder, exist_ok=True)
        per_batch = args.train // 10
        for k in range(1, 11):
            write_imagenet16(os.path.join(folder, f"train_data_batch_{k}"), rng, per_batch)
        write_imagenet16(os.path.join(folder, "val_data"), rng, 6000)


if __name__ == "__main__":
    main()
