#!/usr/bin/env python3
"""scale-model.py — docs/SCALE.md's model of a data-parallel step: the speed-up of N ranks over one
at a fixed batch per GPU, from the one-GPU step time and the all-reduce figures.

  T(N) = T1 + (1 - overlap) · Σ over the two networks [ a + 2(N-1)/N · S / bw ]

S: the network's gradient block in bytes (ganc-bench --allreduce prints them); bw: the all-reduce
bus bandwidth per GPU at that message size; a: the fixed cost of one all-reduce; overlap: the
fraction of the all-reduce time hidden behind the backward pass (0 today: ganc sums each network
after its backward). Speed-up = N · T1 / T(N) (N times the images per step in T(N)).

  scripts/scale-model.py T1_MS S_G_MB S_D_MB [--bw GB/s] [--lat US] [--overlap F] [--ranks 2,4,8]
"""
import argparse

p = argparse.ArgumentParser()
p.add_argument("t1_ms", type=float)
p.add_argument("s_g_mb", type=float)
p.add_argument("s_d_mb", type=float)
p.add_argument("--bw", type=float, default=150.0, help="bus bandwidth, GB/s")
p.add_argument("--lat", type=float, default=20.0, help="fixed cost per all-reduce, us")
p.add_argument("--overlap", type=float, default=0.0)
p.add_argument("--ranks", default="2,4,8")
a = p.parse_args()
print(f"T1 {a.t1_ms} ms, G {a.s_g_mb} MB, D {a.s_d_mb} MB, bus {a.bw} GB/s, {a.lat} us per "
      f"all-reduce, overlap {a.overlap:.0%}")
print("| ranks | all-reduce ms per step | exposed ms | step ms | speed-up | efficiency |")
print("| --- | --- | --- | --- | --- | --- |")
for n in [int(x) for x in a.ranks.split(",")]:
    ar = sum(a.lat * 1e-3 + 2 * (n - 1) / n * s * 1e6 / (a.bw * 1e9) * 1e3 for s in (a.s_g_mb, a.s_d_mb))
    exposed = (1 - a.overlap) * ar
    t = a.t1_ms + exposed
    print(f"| {n} | {ar:.3f} | {exposed:.3f} | {t:.3f} | {n * a.t1_ms / t:.2f}x | {a.t1_ms / t:.0%} |")
