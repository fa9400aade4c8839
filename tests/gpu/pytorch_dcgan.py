#!/usr/bin/env python3
"""PyTorch baseline for `ganc-bench --step configs/dcgan64.ini`: the same DCGAN (the PyTorch DCGAN
example's architecture: nz 100, ngf = ndf = 64, 64x64x3, batch norm, no biases), the same
iteration (D on a real and a fake batch, then G through the updated D with the same fakes, Adam
2e-4 / 0.5 / 0.999, non-saturating logistic loss), on synthetic batches already on the GPU, timed as
ganc-bench --step times ours: CUDA events around each iteration after warm-up, the median of many
iterations; peak memory from PyTorch's allocator (ganc-bench: the most its allocator held).

Variants (an unknown name is an error):
  strict-fp32         TF32 off for cuDNN and matmuls: the fair match for ganc's FP32 kernels
  default             what a PyTorch user gets: PyTorch's own precision defaults (TF32 on for
                      cuDNN convolutions), cudnn.benchmark = True
  bf16-channels-last  autocast BF16, channels_last tensors (the usual "make it fast" lines)
  cuda-graphs         default precision, the whole iteration captured once as a CUDA graph and
                      replayed (Adam with capturable=True)
  compile             default precision, G and D through torch.compile (slow to start)
  bf16-cl-graphs      bf16-channels-last captured as one CUDA graph (autocast's weight cache
                      off, as capture needs): the fastest PyTorch we know to write for this step
Every variant sets cudnn.benchmark = True (cuDNN's fastest algorithm, as ganc's cudnn backend).

Usage: python3 tests/gpu/pytorch_dcgan.py [--batch 128] [--steps 50] [--warmup 10]
                                          [--variants strict-fp32,default,bf16-channels-last]
Prints one line per variant: "pytorch <variant>: median <ms> ms, <img/s> img/s, peak <MiB> MiB".
Exit: 0, 2 on bad usage, 77 (skip) without torch or without a CUDA device.
"""
import argparse
import gc
import statistics
import sys

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    IMPORT_ERROR = None
except ImportError as e:  # reported as SKIP after the arguments are checked
    torch = nn = F = None
    IMPORT_ERROR = e


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


VARIANTS = ("strict-fp32", "default", "bf16-channels-last", "cuda-graphs", "compile",
            "bf16-cl-graphs")


def run(variant, batch, steps, warmup):
    # The previous variant's tensors are gone; its cached blocks go too, so that this variant's
    # "reserved" is its own (the variants share one process).
    gc.collect()
    torch.cuda.empty_cache()
    torch.manual_seed(0)
    dev = torch.device("cuda")
    # The precision switches are global: set every one, each variant, to what it asks for.
    torch.backends.cudnn.benchmark = True
    strict = variant == "strict-fp32"
    torch.backends.cudnn.allow_tf32 = not strict  # PyTorch's default is True
    torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's default is False
    G, D = generator().to(dev), discriminator().to(dev)
    G.apply(init)
    D.apply(init)
    use_bf16 = variant in ("bf16-channels-last", "bf16-cl-graphs")
    fmt = torch.channels_last if use_bf16 else torch.contiguous_format
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    graphs = variant in ("cuda-graphs", "bf16-cl-graphs")
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=graphs)
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), capturable=graphs)
    real = (torch.rand(batch, 3, 64, 64, device=dev) * 2 - 1).to(memory_format=fmt)
    Gc, Dc = (torch.compile(G), torch.compile(D)) if variant == "compile" else (G, D)

    def iteration():
        z = torch.randn(batch, 100, 1, 1, device=dev)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16,
                            cache_enabled=not graphs):
            D.zero_grad(set_to_none=True)
            lr = Dc(real).float()
            (F.softplus(-lr).mean()).backward()
            fake = Gc(z)
            lf = Dc(fake.detach()).float()
            (F.softplus(lf).mean()).backward()
            optD.step()
            G.zero_grad(set_to_none=True)
            lg = Dc(fake).float()
            (F.softplus(-lg).mean()).backward()
            optG.step()

    step = iteration
    if graphs:
        # Warm-up on a side stream (cuDNN's algorithm search, Adam's state), then one capture.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                iteration()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        D.zero_grad(set_to_none=True)
        G.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            iteration()
        step = graph.replay
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
    # What the process holds on the device: the caching allocator's segments, the graph's private
    # pool among them. ganc-bench's peak counts every cudaMalloc, so this is the like number. With
    # graphs "allocated" undercounts: the capture's intermediates went back to the graph's pool
    # before the reset above, and replays allocate nothing (the H200's 106 MiB, 2026-12-04).
    reserved = torch.cuda.max_memory_reserved() / 2**20
    print(f"pytorch {variant}: median {ms:.3f} ms, {batch / ms * 1e3:.1f} img/s, peak {peak:.1f} MiB "
          f"allocated, {reserved:.1f} MiB reserved "
          f"(batch {batch}, {steps} steps after {warmup} warm-up, min {min(times):.3f} ms, "
          f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()})", flush=True)


def variant_list(text):
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown variant {', '.join(bad) or repr(text)}: choose from {', '.join(VARIANTS)}")
    return names


def main():
    ap = argparse.ArgumentParser(description="PyTorch DCGAN-64 baseline for ganc-bench --step")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--variants", type=variant_list, default=["strict-fp32", "default", "bf16-channels-last"],
                    help="comma-separated, from: " + ", ".join(VARIANTS))
    a = ap.parse_args()
    if a.batch < 1 or a.steps < 1 or a.warmup < 0:
        ap.error("--batch and --steps must be >= 1, --warmup >= 0")
    if torch is None:
        print(f"SKIP: PyTorch is not installed ({IMPORT_ERROR})")
        sys.exit(77)
    if not torch.cuda.is_available():
        print("SKIP: PyTorch sees no CUDA device")
        sys.exit(77)
    print(f"device: {torch.cuda.get_device_name(0)}", flush=True)
    failed = 0
    for v in a.variants:  # one variant failing (a capture refused, say) leaves the others' lines
        try:
            run(v, a.batch, a.steps, a.warmup)
        except Exception as e:  # noqa: BLE001 — reported, and the exit status says so
            print(f"pytorch {v}: FAILED: {type(e).__name__}: {e}", flush=True)
            failed = 1
    sys.exit(failed)


if __name__ == "__main__":
    main()
