#!/usr/bin/env python3
"""PyTorch baseline for `ganc-bench --step configs/dcgan64.ini`: the same DCGAN (the PyTorch DCGAN
example's architecture: nz 100, ngf = ndf = 64, 64x64x3, batch norm, no biases), the same
iteration (D on a real and a fake batch, then G through the updated D with the same fakes, Adam
2e-4 / 0.5 / 0.999, non-saturating logistic loss), on synthetic batches already on the GPU, timed
with CUDA events after warm-up (median of many iterations), with peak memory from PyTorch's
allocator. Variants: eager FP32 with cudnn.benchmark (the issue's baseline), and for the speed work
bf16 autocast, channels_last, and torch.compile.

Usage: python3 tests/gpu/pytorch_dcgan.py [--batch 128] [--steps 50] [--variants eager,bf16,...]
Prints one line per variant: "pytorch <variant>: median <ms> ms, <img/s> img/s, peak <MiB> MiB".
"""
import argparse
import statistics
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)


def generator(nz=100, ngf=64, nc=3):
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def discriminator(ndf=64, nc=3):
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))


def init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def run(variant, batch, steps, warmup):
    torch.manual_seed(0)
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    # "FP32" means FP32: no TF32 for the eager baseline (ganc's FP32 kernels do not use it).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    G, D = generator().to(dev), discriminator().to(dev)
    G.apply(init)
    D.apply(init)
    fmt = torch.channels_last if variant in ("channels_last", "bf16_channels_last", "compile") else torch.contiguous_format
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = (torch.rand(batch, 3, 64, 64, device=dev) * 2 - 1).to(memory_format=fmt)
    use_bf16 = variant.startswith("bf16") or variant == "compile"

    def iteration():
        z = torch.randn(batch, 100, 1, 1, device=dev)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            D.zero_grad(set_to_none=True)
            lr = D(real).float()
            (F.softplus(-lr).mean()).backward()
            fake = G(z)
            lf = D(fake.detach()).float()
            (F.softplus(lf).mean()).backward()
            optD.step()
            G.zero_grad(set_to_none=True)
            lg = D(fake).float()
            (F.softplus(-lg).mean()).backward()
            optG.step()

    step = torch.compile(iteration) if variant == "compile" else iteration
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    ms = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**20
    print(f"pytorch {variant}: median {ms:.3f} ms, {batch / ms * 1e3:.1f} img/s, peak {peak:.1f} MiB "
          f"(batch {batch}, {steps} steps after {warmup} warm-up, torch {torch.__version__})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--variants", default="eager")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device for PyTorch")
        sys.exit(77)
    for v in a.variants.split(","):
        run(v, a.batch, a.steps, a.warmup)


if __name__ == "__main__":
    main()
