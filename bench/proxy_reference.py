#!/usr/bin/env python3
"""PyTorch reference for nasrob's training-free proxies (`src/proxy/`).

Two modes:

* check (default): computes every proxy on the network and inputs nasrob wrote -- our own PyTorch
  NB201 model (bench/nb201_model.py) loading nasrob's safetensors -- and prints one JSON object
  {proxy: value}. nasrob's test `proxy::python_reference_agrees` compares the two to 1e-4
  relative. Each proxy is written from its definition (NASLib's measures, as documented in
  docs/analysis-nb201.md "Proxies"), with the conventions NASLib's harness uses: cross-entropy of
  one minibatch in training mode, per-layer sums over Conv2d and Linear weights, synflow
  log-scaled, numpy's corrcoef / eig / slogdet for jacov, epe_nas and nwot.

      python bench/proxy_reference.py --weights W.safetensors --zen-weights Z.safetensors \
          --inputs I.safetensors [--batch-size 64] [--nwot-batch-size 128] [--power-iterations 20] \
          [--bound-eps-255 1]

* speed: seconds per architecture of each proxy on random CIFAR-shaped input, for
  `nasrob bench proxy` (PyTorch's default initialisation, one fresh network per proxy, as NASLib
  deep-copies the network per measure).

      python bench/proxy_reference.py --speed --arch '|nor_conv_3x3~0|+...' [--arch ...] \
          [--proxies grad_norm,synflow] [--batch-size 64] [--threads 1]
"""

import argparse
import copy
import json
import math
import os
import sys
import time
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nb201_model  # noqa: E402

DATASETS = {
    "cifar10": (3, 10),
    "cifar10-valid": (3, 10),
    "cifar100": (3, 100),
    "ImageNet16-120": (3, 120),
}
EPS = 1e-5
ZERO_COST = ["epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params", "plain",
             "snip", "synflow", "zen"]
ROBUSTNESS = ["jacob_fro", "hessian", "jacob_bound"]


# --- the network ------------------------------------------------------------------------------

def load(path, dataset):
    in_channels, classes = DATASETS[dataset]
    mean, std = nb201_model.NORMALIZATION[dataset]
    model, _ = nb201_model.load_nasrob_weights(
        path, classes, in_channels, [m / 255 for m in mean], [s / 255 for s in std])
    return model


def normalize(model, x):
    return (x - model.mean.to(x.dtype)) / model.std.to(x.dtype)


def features(model, xn):
    """The network body on normalised input, up to global pooling."""
    x = model.stem(xn)
    for cell in model.cells:
        x = cell(x)
    return model.lastact(x)


def body(model, xn):
    x = F.adaptive_avg_pool2d(features(model, xn), 1).flatten(1)
    return model.classifier(x)


def layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# --- the 13 zero-cost proxies ------------------------------------------------------------------

def loss_grads(model, x, y):
    model.train()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [(m.weight, m.weight.grad) for m in layers(model) if m.weight.grad is not None]


def grad_norm(model, x, y):
    return sum(g.norm().item() for _, g in loss_grads(model, x, y))


def snip(model, x, y):
    return sum((w * g).abs().double().sum().item() for w, g in loss_grads(model, x, y))


def plain(model, x, y):
    return sum((w * g).double().sum().item() for w, g in loss_grads(model, x, y))


def grasp(model, x, y):
    model.train()
    weights = [m.weight for m in layers(model)]
    first = torch.autograd.grad(F.cross_entropy(model(x), y), weights, allow_unused=True)
    second = torch.autograd.grad(F.cross_entropy(model(x), y), weights, create_graph=True, allow_unused=True)
    z = sum((a.detach() * b).sum() for a, b in zip(first, second) if a is not None)
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    return sum(-(w * h).double().sum().item() for w, h in zip(weights, hg) if h is not None)


def fisher(model, x, y):
    model.train()
    outputs = []

    def keep(module, inputs, output):
        output.retain_grad()
        outputs.append((module, output))

    hooks = [m.register_forward_hook(keep) for m in layers(model)]
    F.cross_entropy(model(x), y).backward()
    for h in hooks:
        h.remove()
    total = 0.0
    for module, a in outputs:
        if a.grad is None:
            continue
        g_nk = (a * a.grad).sum(dim=(2, 3)) if a.dim() > 2 else a * a.grad
        per_channel = 0.5 * g_nk.pow(2).mean(0)
        fan_in = module.weight[0].numel()
        total += per_channel.double().sum().item() * fan_in
    return total


def synflow(model, shape):
    model = model.double()
    with torch.no_grad():
        for t in model.state_dict().values():
            t.abs_()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.forward = types.MethodType(lambda self, v: v, m)
    model.zero_grad()
    body(model, torch.ones([1] + list(shape), dtype=torch.float64)).sum().backward()
    s = sum((m.weight * m.weight.grad).abs().sum().item() for m in layers(model) if m.weight.grad is not None)
    return math.log(s) if s > 0 else (-math.log(-s) if s < 0 else 0.0)


def input_jacobian(model, x):
    model.train()
    xn = normalize(model, x).detach().requires_grad_(True)
    out = body(model, xn)
    out.backward(torch.ones_like(out))
    return xn.grad.detach().reshape(x.shape[0], -1).numpy(), out.shape[1]


def jacov(model, x):
    jacobian, _ = input_jacobian(model, x)
    eigenvalues, _ = np.linalg.eig(np.corrcoef(jacobian))
    return float(np.real(-np.sum(np.log(eigenvalues + EPS) + 1.0 / (eigenvalues + EPS))))


def epe_nas(model, x, y):
    jacobian, classes = input_jacobian(model, x)
    labels = y.numpy()
    scores = []
    for c in sorted(set(labels.tolist())):
        rows = jacobian[labels == c]
        if len(rows) == 1:
            if classes <= 100:
                scores.append(math.log(1 + EPS))
            continue
        s = float(np.sum(np.log(np.abs(np.corrcoef(rows)) + EPS)))
        scores.append(s / len(rows) if classes > 100 else s)
    if classes <= 100:
        return sum(abs(s) for s in scores)
    return sum(abs(a - b) for a in scores for b in scores) / len(scores) if scores else 0.0


def nwot(model, x):
    model.train()
    n = x.shape[0]
    kernel = np.zeros((n, n))

    def count(module, inputs, output):
        c = (inputs[0].reshape(n, -1) > 0).float()
        kernel[:] += (c @ c.t()).numpy() + ((1 - c) @ (1 - c).t()).numpy()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return float(np.linalg.slogdet(kernel)[1])


def zen(model, a, b):
    model.train()
    with torch.no_grad():
        fa = features(model, a)
        fb = features(model, a + 0.01 * b)
        score = torch.log(torch.abs(fa - fb).sum(dim=(1, 2, 3)).mean()).item()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                score += torch.log(torch.sqrt(m.running_var.mean())).item()
    return score


def params(model):
    return sum(p.numel() for p in model.parameters()) / 1e6


def flops(model, shape):
    """NB201's count: multiply-adds of Conv2d and Linear (plus one per Linear output for its bias)."""
    total = [0]

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.weight[0].numel()
            total[0] += k * output.numel()
        else:
            total[0] += module.weight.numel() + module.out_features

    hooks = [m.register_forward_hook(count) for m in layers(model)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros([1] + list(shape)))
    for h in hooks:
        h.remove()
    return total[0] / 1e6


def l2_norm(model):
    return sum(m.weight.norm().item() for m in layers(model))


# --- robustness proxies ------------------------------------------------------------------------

def jacobian_rows(model, x, classes):
    model.eval()
    x = x.detach().requires_grad_(True)
    logits = model(x)
    rows = [torch.autograd.grad(logits[:, k].sum(), x, retain_graph=True)[0] for k in classes]
    return rows, logits.shape[1]


def jacob_fro(model, x, classes):
    rows, k = jacobian_rows(model, x, classes)
    squares = sum(r.pow(2).double().sum(dim=(1, 2, 3)) for r in rows) * (k / len(classes))
    return squares.sqrt().mean().item()


def jacob_bound(model, x, classes, delta):
    rows, _ = jacobian_rows(model, x, classes)
    l1 = sum(r.abs().double().sum(dim=(1, 2, 3)) for r in rows)
    return -delta * l1.mean().item() / len(classes)


def hessian(model, x, y, start, iterations):
    model.eval()
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x, create_graph=True)

    def unit(v):
        return v / v.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-30)

    v = unit(start)
    eigenvalues = None
    for _ in range(iterations):
        (hv,) = torch.autograd.grad((g * v).sum(), x, retain_graph=True)
        eigenvalues = (v * hv).double().sum(dim=(1, 2, 3))
        v = unit(hv)
    return eigenvalues.mean().item()


# --- modes -------------------------------------------------------------------------------------

def compute(name, model, x, y, nwot_x, shape, classes, zen_inputs, args):
    if name == "zen":
        return zen(zen_inputs[0], zen_inputs[1], zen_inputs[2])
    fresh = copy.deepcopy(model)
    if name == "grad_norm":
        return grad_norm(fresh, x, y)
    if name == "snip":
        return snip(fresh, x, y)
    if name == "plain":
        return plain(fresh, x, y)
    if name == "grasp":
        return grasp(fresh, x, y)
    if name == "fisher":
        return fisher(fresh, x, y)
    if name == "synflow":
        return synflow(fresh, shape)
    if name == "jacov":
        return jacov(fresh, x)
    if name == "epe_nas":
        return epe_nas(fresh, x, y)
    if name == "nwot":
        return nwot(fresh, nwot_x)
    if name == "params":
        return params(fresh)
    if name == "flops":
        return flops(fresh, shape)
    if name == "l2_norm":
        return l2_norm(fresh)
    if name == "jacob_fro":
        return jacob_fro(fresh, x, classes)
    if name == "jacob_bound":
        return jacob_bound(fresh, x, classes, args.bound_eps_255 / 255.0)
    if name == "hessian":
        return hessian(fresh, x, y, zen_inputs[3], args.power_iterations)
    raise ValueError(f"unknown proxy {name}")


def check(args):
    inputs, meta = nb201_model.read_safetensors(args.inputs)
    dataset = meta.get("dataset", "cifar10")
    model = load(args.weights, dataset)
    zen_model = load(args.zen_weights, dataset)
    images = inputs["images"]
    labels = inputs["labels"].round().long()
    classes = inputs["classes"].round().long().tolist()
    x, y = images[: args.batch_size], labels[: args.batch_size]
    nwot_x = images[: args.nwot_batch_size]
    shape = images.shape[1:]
    extra = (zen_model, inputs["zen_a"], inputs["zen_b"], inputs["hessian_start"])
    out = {}
    for name in ZERO_COST + ROBUSTNESS:
        out[name] = compute(name, model, x, y, nwot_x, shape, classes, extra, args)
    print(json.dumps(out))


def speed(args):
    torch.set_num_threads(args.threads)
    dataset = args.dataset
    in_channels, num_classes = DATASETS[dataset]
    mean, std = nb201_model.NORMALIZATION[dataset]
    side = 16 if dataset == "ImageNet16-120" else 32
    shape = (in_channels, side, side)
    generator = torch.Generator().manual_seed(0)
    n = max(args.batch_size, args.nwot_batch_size)
    images = torch.rand((n,) + shape, generator=generator)
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    x, y = images[: args.batch_size], labels[: args.batch_size]
    classes = list(range(min(num_classes, args.projections)))
    zen_a = torch.randn((args.batch_size,) + shape, generator=generator)
    zen_b = torch.randn((args.batch_size,) + shape, generator=generator)
    start = torch.randn((args.batch_size,) + shape, generator=generator)
    names = args.proxies.split(",") if args.proxies != "all" else ZERO_COST + ROBUSTNESS
    seconds = {name: 0.0 for name in names}
    for arch in args.arch:
        torch.manual_seed(0)
        model = nb201_model.TinyNetwork(arch, args.channels, args.cells, num_classes, in_channels,
                                        [m / 255 for m in mean], [s / 255 for s in std])
        for name in names:
            t0 = time.perf_counter()
            zen_model = None
            if name == "zen":
                zen_model = copy.deepcopy(model)
                with torch.no_grad():
                    for m in zen_model.modules():
                        if isinstance(m, (nn.Conv2d, nn.Linear)):
                            nn.init.normal_(m.weight)
                            if m.bias is not None:
                                nn.init.zeros_(m.bias)
            compute(name, model, x, y, images[: args.nwot_batch_size], shape, classes,
                    (zen_model, zen_a, zen_b, start), args)
            seconds[name] += time.perf_counter() - t0
    per_arch = {name: s / len(args.arch) for name, s in seconds.items()}
    print(json.dumps({"threads": args.threads, "archs": len(args.arch), "batch_size": args.batch_size,
                      "torch": torch.__version__, "seconds_per_arch": per_arch}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights")
    p.add_argument("--zen-weights")
    p.add_argument("--inputs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nwot-batch-size", type=int, default=128)
    p.add_argument("--power-iterations", type=int, default=20)
    p.add_argument("--projections", type=int, default=10)
    p.add_argument("--bound-eps-255", type=float, default=1.0)
    p.add_argument("--speed", action="store_true")
    p.add_argument("--arch", action="append", default=[])
    p.add_argument("--proxies", default="all")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.speed:
        if not args.arch:
            p.error("--speed needs at least one --arch")
        speed(args)
    else:
        if not (args.weights and args.zen_weights and args.inputs):
            p.error("check mode needs --weights, --zen-weights and --inputs")
        check(args)


if __name__ == "__main__":
    main()
