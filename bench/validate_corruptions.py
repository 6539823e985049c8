#!/usr/bin/env python3
"""Compare nasrob's common corruptions with the reference make_cifar_c.py.

Two steps:

  validate_corruptions.py inputs --fashion DATASET_DIR --out DIR [--count N]
      writes DIR/clean.npy (uint8 [N, 32, 32, 3]) and DIR/clean_labels.npy from the embedded
      Fashion-MNIST subset (28x28 padded to 32 with zeros, replicated to RGB); every fourth
      image is tinted so that the colour corruptions see colour.

  (nasrob then writes its CIFAR-10-C layout for DIR/clean.npy into DIR/nasrob/)

  validate_corruptions.py compare --reference CHECKOUT --dir DIR [--markdown FILE]
      runs the functions of CHECKOUT/ImageNet-C/create_c/make_cifar_c.py (a checkout of
      hendrycks/robustness; nothing of it is copied here) on the same images and compares:
      deterministic corruptions pixel by pixel (share within 1 level, maximum difference),
      random ones by the per-image mean and standard deviation of the change.

The reference needs Wand with ImageMagick (Debian: imagemagick libmagickwand-dev), numpy < 2,
scipy, scikit-image, opencv-python-headless and Pillow. It imports torch/torchvision only for the
dataset loop at the bottom, which is not run; empty stand-in modules replace them, and shims map
the removed APIs it calls (np.float_, skimage gaussian's multichannel=, np.fromstring on bytes,
scipy.ndimage.interpolation) onto their current equivalents.
"""

import argparse
import gzip
import os
import sys
import time
import types

import numpy as np

DETERMINISTIC = {
    "brightness", "contrast", "saturate", "defocus_blur", "gaussian_blur", "zoom_blur",
    "pixelate", "jpeg_compression",
}
ORDER = [
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate",
]


def make_inputs(args):
    with gzip.open(os.path.join(args.fashion, "test-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    with gzip.open(os.path.join(args.fashion, "test-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    # Interleave classes: the subset is stored class by class.
    order = np.argsort(np.arange(len(images)) % 100, kind="stable")[: args.count]
    images, labels = images[order], labels[order]
    padded = np.zeros((len(images), 32, 32), np.uint8)
    padded[:, 2:30, 2:30] = images
    rgb = np.repeat(padded[..., None], 3, axis=3).astype(np.float64)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    for i in range(0, len(rgb), 4):
        tint = np.stack([0.4 + 0.6 * xx, 0.3 + 0.7 * yy, 1.0 - 0.5 * xx * yy], axis=-1)
        rgb[i] = rgb[i] * tint + 40 * (1 - tint)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "clean.npy"), np.clip(rgb, 0, 255).astype(np.uint8))
    np.save(os.path.join(args.out, "clean_labels.npy"), labels.astype(np.uint8))
    print(f"wrote {len(rgb)} images to {args.out}")


def load_reference(checkout):
    folder = os.path.join(checkout, "ImageNet-C", "create_c")
    path = os.path.join(folder, "make_cifar_c.py")
    source = open(path).read()
    cut = source.index("# /////////////// End Distortions ///////////////")

    for name in ["torch", "torch.utils", "torch.utils.data", "torchvision",
                 "torchvision.datasets", "torchvision.transforms"]:
        sys.modules.setdefault(name, types.ModuleType(name))
    if not hasattr(np, "float_"):
        np.float_ = np.float64
    np.fromstring = lambda s, dtype=float: np.frombuffer(s, dtype)
    import scipy.ndimage
    sys.modules.setdefault("scipy.ndimage.interpolation", scipy.ndimage)
    import skimage.filters
    original = skimage.filters.gaussian

    def gaussian(image, sigma=1, *a, multichannel=None, **kw):
        if multichannel:
            kw["channel_axis"] = -1
        return original(image, sigma, *a, **kw)

    skimage.filters.gaussian = gaussian
    namespace = {"__name__": "make_cifar_c_reference", "__file__": path}
    os.chdir(folder)  # frost() opens ./frost1.png ...
    exec(compile(source[:cut], path, "exec"), namespace)
    return namespace


def compare(args):
    from PIL import Image

    clean = np.load(os.path.join(args.dir, "clean.npy"))
    n = len(clean)
    ref = load_reference(os.path.abspath(args.reference))
    np.random.seed(args.seed)
    lines = [
        "| corruption | severity | kind | within 1 level | max diff | mean change ours / ref | std change ours / ref | ref images/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for name in ORDER:
        ours_all = np.load(os.path.join(args.dir, "nasrob", f"{name}.npy"))
        for s in range(1, 6):
            ours = ours_all[(s - 1) * n: s * n].astype(np.float64)
            start = time.perf_counter()
            theirs = np.stack(
                [np.uint8(ref[name](Image.fromarray(img), s)) for img in clean]
            ).astype(np.float64)
            rate = n / (time.perf_counter() - start)
            base = clean.astype(np.float64)
            d_ours, d_ref = (ours - base).reshape(n, -1), (theirs - base).reshape(n, -1)
            mo, mr = d_ours.mean(1).mean(), d_ref.mean(1).mean()
            so, sr = d_ours.std(1).mean(), d_ref.std(1).mean()
            diff = np.abs(ours - theirs)
            within = (diff <= 1).mean() * 100
            kind = "deterministic" if name in DETERMINISTIC else "random"
            lines.append(
                f"| {name} | {s} | {kind} | {within:.3f}% | {int(diff.max())} | "
                f"{mo:+.2f} / {mr:+.2f} | {so:.2f} / {sr:.2f} | {rate:.0f} |"
            )
            summary[(name, s)] = (within, diff.max(), mo, mr, so, sr, rate)
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("inputs")
    a.add_argument("--fashion", required=True, help="datasets/fashion-mini of the nasrob repository")
    a.add_argument("--out", required=True)
    a.add_argument("--count", type=int, default=256)
    b = sub.add_parser("compare")
    b.add_argument("--reference", required=True, help="checkout of hendrycks/robustness")
    b.add_argument("--dir", required=True)
    b.add_argument("--seed", type=int, default=0, help="numpy seed for the reference's random corruptions")
    b.add_argument("--markdown")
    args = p.parse_args()
    make_inputs(args) if args.cmd == "inputs" else compare(args)


if __name__ == "__main__":
    main()
