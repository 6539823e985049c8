"""Logits of NB201's own TinyNetwork (the `xautodl` package, NAS-Bench-201's reference code) with
the weights of a nasrob safetensors file, for comparing nasrob's network with NB201's.

    python bench/xautodl_logits.py --weights W.safetensors --input X.f32 --shape N,C,H,W --out L.json \
        [--guided]

X.f32 holds N*C*H*W little-endian float32 pixels in [0,1] (NCHW). xautodl's network takes
normalised images, so they are normalised here with NB201's per-dataset mean and std (xautodl's
`get_datasets`); nasrob's network normalises inside. Writes {"logits": [[...], ...]}; with
--guided also {"guided": [...]}, the N*C*H*W guided-backpropagation maps (Springenberg et al.
2015) of each image's top logit with respect to its [0,1] pixels, as the usual PyTorch recipe
computes them: a backward hook on every ReLU that lets only positive gradients through.
Needs torch and xautodl 1.0.0 (`pip install --no-deps xautodl==1.0.0`: its TinyNetwork needs
only torch).
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nb201_model  # noqa: E402  (read_safetensors: the file format only, no network code)

from xautodl.models.cell_infers.tiny_network import TinyNetwork  # noqa: E402
from xautodl.models.cell_searchs.genotypes import Structure  # noqa: E402

# NB201's normalisation (xautodl/datasets/get_dataset_with_transform.py), in [0,255] units.
NORMALIZATION = {
    "cifar10": ([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]),
    "cifar10-valid": ([125.3, 123.0, 113.9], [63.0, 62.1, 66.7]),
    "cifar100": ([129.3, 124.1, 112.4], [68.2, 65.4, 70.4]),
    "ImageNet16-120": ([122.68, 116.66, 104.01], [63.22, 61.26, 65.09]),
}
CLASSES = {"cifar10": 10, "cifar10-valid": 10, "cifar100": 100, "ImageNet16-120": 120}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--shape", required=True, help="N,C,H,W")
    ap.add_argument("--out", required=True)
    ap.add_argument("--guided", action="store_true")
    args = ap.parse_args()

    tensors, meta = nb201_model.read_safetensors(args.weights)
    dataset = meta["dataset"]
    if dataset not in CLASSES:
        sys.exit(f"{dataset}: xautodl's TinyNetwork takes 3-channel images of NB201's datasets only")
    genotype = Structure.str2structure(meta["arch"])
    net = TinyNetwork(int(meta["channels"]), int(meta["cells_per_stage"]), genotype, CLASSES[dataset])
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"parameter names differ: missing {missing}, unexpected {unexpected}")
    net.eval()

    shape = [int(v) for v in args.shape.split(",")]
    with open(args.input, "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).view(shape)
    mean, std = NORMALIZATION[dataset]
    mean = torch.tensor([m / 255 for m in mean]).view(1, -1, 1, 1)
    std = torch.tensor([s / 255 for s in std]).view(1, -1, 1, 1)
    with torch.no_grad():
        _, logits = net((x - mean) / std)
    result = {"logits": logits.tolist()}
    if args.guided:
        for module in net.modules():
            if isinstance(module, torch.nn.ReLU):
                # A backward hook cannot see an in-place ReLU's input; out of place is the same map.
                module.inplace = False
                module.register_full_backward_hook(lambda _m, grad_in, _g: (grad_in[0].clamp(min=0),))
        x = x.clone().requires_grad_(True)
        _, logits = net((x - mean) / std)
        top = logits.argmax(1, keepdim=True)
        logits.gather(1, top).sum().backward()
        result["guided"] = x.grad.flatten().tolist()
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
