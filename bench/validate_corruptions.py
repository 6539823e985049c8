#!/usr/bin/env python3
"""Compare nasrob's common corruptions with the reference make_cifar_c.py.

Steps:

  validate_corruptions.py inputs --fashion DATASET_DIR --out DIR [--count N]
      writes DIR/clean.npy (uint8 [N, 32, 32, 3]) and DIR/clean_labels.npy from the embedded
      Fashion-MNIST subset (28x28 padded to 32 with zeros, replicated to RGB); every fourth
      image is tinted so that the colour corruptions see colour.

  (nasrob then writes its CIFAR-10-C layout for DIR/clean.npy into DIR/nasrob/)

  validate_corruptions.py compare --reference CHECKOUT --dir DIR [--markdown FILE] [--save OUT]
      runs the functions of CHECKOUT/ImageNet-C/create_c/make_cifar_c.py (a checkout of
      hendrycks/robustness; nothing of it is copied here) on the same images and compares:
      deterministic corruptions pixel by pixel (share within 1 level, maximum difference),
      random ones by the per-image mean and standard deviation of the change. --save writes the
      reference's images to OUT in nasrob's layout (OUT/<corruption>.npy, uint8 [5N, H, W, 3],
      severity s in rows (s-1)N..sN, and OUT/labels.npy).

  validate_corruptions.py model --weights W.safetensors --dir DIR [--noise REF2] [--markdown FILE]
      (PyTorch; see model_accuracy) a trained fashion-mini network's accuracy on nasrob's images
      (DIR/nasrob) versus the reference's (DIR/reference, written by compare --save), per
      corruption and severity.

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

    args.dir = os.path.abspath(args.dir)  # load_reference changes the working directory
    save = os.path.abspath(args.save) if args.save else None
    clean = np.load(os.path.join(args.dir, "clean.npy"))
    n = len(clean)
    if save:
        os.makedirs(save, exist_ok=True)
        labels = os.path.join(args.dir, "clean_labels.npy")
        if os.path.exists(labels):
            np.save(os.path.join(save, "labels.npy"), np.tile(np.load(labels), 5))
    ref = load_reference(os.path.abspath(args.reference))
    np.random.seed(args.seed)
    lines = [
        "| corruption | severity | kind | within 1 level | max diff | mean change ours / ref | std change ours / ref | ref images/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for name in ORDER:
        ours_all = np.load(os.path.join(args.dir, "nasrob", f"{name}.npy"))
        saved = []
        for s in range(1, 6):
            ours = ours_all[(s - 1) * n: s * n].astype(np.float64)
            start = time.perf_counter()
            theirs = np.stack([np.uint8(ref[name](Image.fromarray(img), s)) for img in clean])
            saved.append(theirs)
            theirs = theirs.astype(np.float64)
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
        if save:
            np.save(os.path.join(save, f"{name}.npy"), np.concatenate(saved))
    text = "\n".join(lines) + "\n"
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return summary


def model_accuracy(args):
    """Accuracy of a trained fashion-mini network (nasrob safetensors, loaded into the PyTorch
    NB201 model of bench/nb201_model.py) on nasrob's and the reference's corrupted images.

    Both sides go through the same mapping back to the network's input: the 2-px zero border is
    cropped (32 -> 28 px) and the gray value is the mean of the three channels, scaled to [0, 1].
    The difference of two accuracies on the same images is paired: its standard error is
    sqrt(b + c - (b - c)^2 / n) / n, b and c the images only one side classifies correctly (n the
    images of one severity, or 5N for the mean over the severities).
    """
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import nb201_model

    torch.set_num_threads(args.threads)
    _, meta = nb201_model.read_safetensors(args.weights)
    if meta.get("dataset") != "fashion-mini":
        sys.exit(f"the images are Fashion-MNIST; the weights are for {meta.get('dataset')}")
    net, meta = nb201_model.load_nasrob_weights(args.weights, 10, 1, [0.2860], [0.3530])

    def predict(images):
        x = torch.from_numpy(images[:, 2:30, 2:30, :].astype(np.float32).mean(-1) / 255.0).unsqueeze(1)
        with torch.no_grad():
            return np.concatenate(
                [net(x[i:i + args.batch_size]).argmax(1).numpy() for i in range(0, len(x), args.batch_size)]
            )

    clean = np.load(os.path.join(args.dir, "clean.npy"))
    labels = np.load(os.path.join(args.dir, "clean_labels.npy")).astype(np.int64)
    n = len(clean)
    ours_dir = args.ours or os.path.join(args.dir, "nasrob")
    ref_dir = args.theirs or os.path.join(args.dir, "reference")
    clean_ok = predict(clean) == labels
    plain = np.arange(n) % 4 != 0  # the untinted images: the test images themselves

    def predictions(folder, name):
        images = np.load(os.path.join(folder, f"{name}.npy"))
        assert images.shape[0] == 5 * n, (folder, name, images.shape)
        return predict(images).reshape(5, n)

    def paired(a, b):
        a, b = a.ravel(), b.ravel()
        m = len(a)
        diff = 100.0 * (a.mean() - b.mean())
        only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
        se = 100.0 * np.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / m, 0.0)) / m
        return diff, se

    head = (f"Network: `{meta['arch']}` (C={meta['channels']}, N={meta['cells_per_stage']}), fashion-mini; "
            f"{n} images; clean accuracy {100 * clean_ok.mean():.2f} % "
            f"({100 * clean_ok[plain].mean():.2f} % on the {int(plain.sum())} untinted images).")
    noise_cols = " | ref seed 0 − ref seed 1 (points)" if args.noise else ""
    rows = [
        f"| corruption | severity | kind | nasrob acc. | reference acc. | difference (points) | ±2 SE (points) | same prediction{noise_cols} |",
        "|---|---|---|---|---|---|---|---|" + ("---|" if args.noise else ""),
    ]
    summary_rows = [
        f"| corruption | kind | nasrob acc. (mean of 5) | reference acc. (mean of 5) | difference (points) | ±2 SE (points) | max per-severity difference | within 1 point (mean / every severity){' | ref seed 0 − seed 1: mean / max' if args.noise else ''} |",
        "|---|---|---|---|---|---|---|---|" + ("---|" if args.noise else ""),
    ]
    results = {"n": n, "clean_accuracy": float(clean_ok.mean()), "corruptions": {}}
    all_ours, all_ref = [], []
    for name in ORDER:
        kind = "deterministic" if name in DETERMINISTIC else "random"
        ours_pred, theirs_pred = predictions(ours_dir, name), predictions(ref_dir, name)
        ours, theirs = ours_pred == labels, theirs_pred == labels
        other = predictions(args.noise, name) == labels if args.noise else None
        diffs, noise_diffs = [], []
        for s in range(5):
            d, se = paired(ours[s], theirs[s])
            diffs.append(d)
            extra = ""
            if other is not None:
                nd, _ = paired(theirs[s], other[s])
                noise_diffs.append(nd)
                extra = f" | {nd:+.2f}"
            rows.append(
                f"| {name} | {s + 1} | {kind} | {100 * ours[s].mean():.2f} % | {100 * theirs[s].mean():.2f} % | "
                f"{d:+.2f} | {2 * se:.2f} | {100 * (ours_pred[s] == theirs_pred[s]).mean():.1f} %{extra} |"
            )
            print(rows[-1], flush=True)
        mean_d, mean_se = paired(ours, theirs)
        max_d = max(diffs, key=abs)
        ok_mean, ok_all = abs(mean_d) <= 1.0 + 1e-9, all(abs(d) <= 1.0 + 1e-9 for d in diffs)
        extra = ""
        if other is not None:
            extra = f" | {100.0 * (theirs.mean() - other.mean()):+.2f} / {max(noise_diffs, key=abs):+.2f}"
        summary_rows.append(
            f"| {name} | {kind} | {100 * ours.mean():.2f} % | {100 * theirs.mean():.2f} % | {mean_d:+.2f} | "
            f"{2 * mean_se:.2f} | {max_d:+.2f} | {'yes' if ok_mean else 'no'} / {'yes' if ok_all else 'no'}{extra} |"
        )
        all_ours.append(ours.mean())
        all_ref.append(theirs.mean())
        results["corruptions"][name] = {
            "kind": kind, "nasrob": ours.mean(1).tolist(), "reference": theirs.mean(1).tolist(),
            "difference_points": diffs, "reference_seed_difference_points": noise_diffs or None,
        }
    tail = (f"Mean over the 19 corruptions and 5 severities: nasrob {100 * np.mean(all_ours):.2f} %, "
            f"reference {100 * np.mean(all_ref):.2f} % (difference {100 * (np.mean(all_ours) - np.mean(all_ref)):+.2f} points).")
    text = "\n".join([head, "", *summary_rows, "", tail, "", *rows]) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        import json
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


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
    b.add_argument("--save", help="write the reference's images here, in nasrob's layout")
    m = sub.add_parser("model")
    m.add_argument("--weights", required=True, help="nasrob weights (safetensors) trained on fashion-mini")
    m.add_argument("--dir", required=True, help="folder with clean.npy and clean_labels.npy")
    m.add_argument("--ours", help="nasrob's images (default DIR/nasrob)")
    m.add_argument("--theirs", help="the reference's images (default DIR/reference)")
    m.add_argument("--noise", help="the reference's images under another seed: sampling-noise column")
    m.add_argument("--batch-size", type=int, default=1000)
    m.add_argument("--threads", type=int, default=os.cpu_count())
    m.add_argument("--markdown")
    m.add_argument("--json")
    args = p.parse_args()
    {"inputs": make_inputs, "compare": compare, "model": model_accuracy}[args.cmd](args)


if __name__ == "__main__":
    main()
