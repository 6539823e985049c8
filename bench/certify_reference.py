"""nasrob's certified bounds against auto_LiRPA's, on the same trained networks and images.

For each weights file (fashion-mini networks from `nasrob train`), runs `nasrob certify --json`
with the methods ibp and crown-ibp, then auto_LiRPA's IBP and CROWN-IBP on the same network
(bench/nb201_model.py, nasrob's weights loaded by name), the same first N test images and the
same L-inf balls clipped to [0,1], with the margins logit[label] - logit[j] as the
specification. Compares, per image and radius, the smallest margin lower bound and whether the
image is certified, and times both (nasrob's time includes starting the process and loading the
images). auto_LiRPA runs a second time in float64, the reference that tells rounding (both float32
bounds near it) from a different bound. Prints one JSON object.

    python bench/certify_reference.py --nasrob target/debug/nasrob --n-images 50 W1 W2 ...

auto_LiRPA must be importable (https://github.com/Verified-Intelligence/auto_LiRPA; its
PyPI release is old and pins torch < 1.13).
"""

import argparse
import copy
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nb201_model import FASHION_MEAN, FASHION_STD, fashion_test, load_nasrob_weights  # noqa: E402

from auto_LiRPA import BoundedModule, BoundedTensor  # noqa: E402
from auto_LiRPA.perturbations import PerturbationLpNorm  # noqa: E402

def nasrob_margins(binary, weights, method, n, eps):
    out = subprocess.run(
        [binary, "certify", "--weights", weights, "--method", method, "--eps", ",".join(map(str, eps)),
         "--n-images", str(n), "--radius-max", "0", "--device", "cpu", "--json"],
        check=True, capture_output=True, text=True,
    )
    result = json.loads(out.stdout)
    return {r["eps_255"]: np.array(r["margin_min"], dtype=np.float64) for r in result["certified"]}


def lirpa_margins(model, x, y, eps, method):
    classes = 10
    spec = (torch.eye(classes)[y].unsqueeze(1) - torch.eye(classes).unsqueeze(0)).to(x.dtype)
    bounded = BoundedModule(model, torch.zeros_like(x[:1]), device="cpu")
    out = {}
    for e in eps:
        ball = PerturbationLpNorm(norm=np.inf, eps=e / 255.0, x_L=(x - e / 255.0).clamp(0, 1),
                                  x_U=(x + e / 255.0).clamp(0, 1))
        lower, _ = bounded.compute_bounds(x=(BoundedTensor(x, ball),), C=spec, method=method)
        lower = lower.detach().masked_fill(torch.nn.functional.one_hot(y, classes).bool(), float("inf"))
        out[e] = lower.min(dim=1).values.double().numpy()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+")
    parser.add_argument("--nasrob", required=True)
    parser.add_argument("--n-images", type=int, default=50)
    parser.add_argument("--eps", default="0.1,0.5,1,2")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "datasets", "fashion-mini"))
    args = parser.parse_args()
    eps = [float(e) for e in args.eps.split(",")]
    x, y = fashion_test(args.data, args.n_images)
    report = []
    for weights in args.weights:
        model, meta = load_nasrob_weights(weights, 10, 1, FASHION_MEAN, FASHION_STD)
        for ours, theirs in [("ibp", "IBP"), ("crown-ibp", "CROWN-IBP")]:
            started = time.perf_counter()
            mine = nasrob_margins(args.nasrob, weights, ours, args.n_images, eps)
            nasrob_seconds = time.perf_counter() - started
            started = time.perf_counter()
            ref = lirpa_margins(model, x, y, eps, theirs)
            lirpa_seconds = time.perf_counter() - started
            exact = lirpa_margins(copy.deepcopy(model).double(), x.double(), y, eps, theirs)
            for e in eps:
                a, b = mine[e], ref[e]
                scale = np.maximum(1.0, np.abs(b))
                off = lambda bound: float((np.abs(bound - exact[e]) / np.maximum(1.0, np.abs(exact[e]))).max())
                report.append({
                    "arch": meta["arch"], "method": ours, "eps_255": e,
                    "certified_nasrob": int((a > 0).sum()), "certified_auto_lirpa": int((b > 0).sum()),
                    "outcomes_differ": int(((a > 0) != (b > 0)).sum()),
                    "max_relative_difference": float((np.abs(a - b) / scale).max()),
                    "nasrob_looser": int((a < b - 1e-4 * scale).sum()),
                    "nasrob_tighter": int((a > b + 1e-4 * scale).sum()),
                    "nasrob_vs_float64": off(a),
                    "auto_lirpa_vs_float64": off(b),
                    "seconds_nasrob_all_radii": round(nasrob_seconds, 2),
                    "seconds_auto_lirpa_all_radii": round(lirpa_seconds, 2),
                })
    print(json.dumps({"n_images": args.n_images, "torch": torch.__version__, "rows": report}, indent=1))


if __name__ == "__main__":
    main()
