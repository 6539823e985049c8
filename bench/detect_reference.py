"""nasrob's attack-detection scores against a PyTorch and numpy reimplementation, on the same
trained networks and images.

For each weights file (fashion-mini networks from `nasrob train`), runs `nasrob detect --json`
with FGSM at the given radii, then recomputes everything in Python: guided backpropagation as the
usual PyTorch recipe does it (bench/nb201_model.py, a backward hook on every ReLU clamping the
gradient at 0), the map as 8-bit grey levels, the entropy of every 3x3 patch with numpy, FGSM as
torchattacks defines it (x + eps * sign of the cross-entropy's gradient, clipped to [0,1]), and
the AUROC by counting pairs. Compares the clean scores, which images FGSM fooled and the AUROC,
and times the clean pass (maps and scores of every image) on both sides. Prints one JSON object.

    python bench/detect_reference.py --nasrob target/debug/nasrob --n-images 200 W1 W2 ...
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nb201_model import FASHION_MEAN, FASHION_STD, fashion_test, load_nasrob_weights  # noqa: E402


def guided_maps(model, x):
    """Guided backpropagation of each image's top logit to its [0,1] pixels."""
    handles = []
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            # A backward hook cannot see an in-place ReLU's input; out of place is the same map.
            m.inplace = False
            handles.append(m.register_full_backward_hook(lambda _m, grad_in, _g: (grad_in[0].clamp(min=0),)))
    x = x.clone().requires_grad_(True)
    logits = model(x)
    classes = logits.argmax(1)
    logits.gather(1, classes[:, None]).sum().backward()
    for h in handles:
        h.remove()
    return x.grad.detach().numpy(), classes.numpy()


def scores(maps):
    """Mean local spatial entropy (bits) of each map [n, c, h, w]."""
    maps = maps.astype(np.float32)
    low = maps.min(axis=(1, 2, 3), keepdims=True)
    span = maps.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0).mean(axis=1, dtype=np.float32)
    # Rounding half away from zero, as Rust's f32::round.
    levels = np.floor(scaled * np.float32(255) + np.float32(0.5)).clip(0, 255).astype(np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(levels, (3, 3), axis=(1, 2)).reshape(*levels.shape[:1], -1, 9)
    # Each pixel's share of its patch: H = -mean over the 9 pixels of log2(count of its level / 9).
    counts = (windows[..., :, None] == windows[..., None, :]).sum(axis=-1)
    entropy = -np.log2(counts / 9.0).mean(axis=-1)
    return entropy.mean(axis=1)


def fgsm(model, x, y, eps):
    x = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def auroc(negatives, positives):
    if len(negatives) == 0 or len(positives) == 0:
        return None
    p, n = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(((p > n) + 0.5 * (p == n)).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+")
    parser.add_argument("--nasrob", required=True)
    parser.add_argument("--n-images", type=int, default=200)
    parser.add_argument("--eps", default="1,8")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "datasets", "fashion-mini"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    eps = [float(e) for e in args.eps.split(",")]
    x, y = fashion_test(args.data, args.n_images)
    rows = []
    for weights in args.weights:
        out = subprocess.run(
            [args.nasrob, "detect", "--weights", weights, "--attacks", "fgsm", "--eps", "fgsm=" + args.eps,
             "--n-images", str(args.n_images), "--batch-size", str(args.n_images), "--device", "cpu", "--json"],
            check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        mine = json.loads(out.stdout)
        model, meta = load_nasrob_weights(weights, 10, 1, FASHION_MEAN, FASHION_STD)
        model.eval()
        started = time.perf_counter()
        maps, predicted = guided_maps(model, x)
        clean = scores(maps)
        reference_seconds = time.perf_counter() - started
        ours = np.array(mine["clean_scores_bits"])
        row = {
            "arch": meta["arch"],
            "clean_score_max_abs_difference": float(np.abs(ours - clean).max()),
            "clean_scores_differing_by_1e-6": int((np.abs(ours - clean) > 1e-6).sum()),
            "seconds_clean_pass_nasrob": round(mine["clean_seconds"], 3),
            "seconds_clean_pass_pytorch_numpy": round(reference_seconds, 3),
            "conditions": [],
        }
        correct = predicted == y.numpy()
        for condition in mine["conditions"]:
            e = condition["eps_255"]
            attacked = np.flatnonzero(correct)
            adversarial = fgsm(model, x[attacked], y[attacked], e / 255.0)
            adv_maps, adv_predicted = guided_maps(model, adversarial)
            fooled = adv_predicted != y.numpy()[attacked]
            adv_scores = scores(adv_maps)
            row["conditions"].append({
                "eps_255": e,
                "attacked_same": condition["attacked_images"] == attacked.tolist(),
                "fooled_nasrob": condition["fooled"],
                "fooled_reference": int(fooled.sum()),
                "fooled_images_differ": int((np.array(condition["fooled_images"]) != fooled).sum()),
                "auroc_nasrob": condition["auroc"],
                "auroc_reference": auroc(clean, adv_scores[fooled]),
            })
        rows.append(row)
    print(json.dumps({"n_images": args.n_images, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
