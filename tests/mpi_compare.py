#!/usr/bin/python3
"""Compares the networks of two checkpoints (test_mpi.sh): G, G_ema and D parameters and buffers,
and LeCam's moving averages and ADA's p where train.lecam and augment.ada_target were on.
  mpi_compare.py exact A B          every tensor bit for bit
  mpi_compare.py close A B LR STEPS a run on N ranks against one process at the same global batch:
      the sums run in another order, so values differ by rounding (~1e-7 relative per step); Adam
      then turns a gradient component as small as that rounding into a step of up to lr either
      way, so a weight may move by at most 2·lr·steps, and only a few do. Required: every weight
      within 2·lr·steps, and at most 0.1% of them (and of the batch-norm statistics) off by more
      than 1e-5.
Prints the figures; exit 1 with the first failing tensor group."""
import sys

import h5py
import numpy as np

mode, a_path, b_path = sys.argv[1:4]
a, b = h5py.File(a_path, "r"), h5py.File(b_path, "r")
bad = []
for net in ("G", "G_ema", "D"):
    for grp in ("params", "buffers"):
        if grp not in a[net]:
            continue
        names = sorted(a[net][grp])
        if names != sorted(b[net][grp]):
            bad.append(f"{net}/{grp}: different tensors")
            continue
        worst, off, total = 0.0, 0, 0
        for k in names:
            x = a[net][grp][k][...]
            y = b[net][grp][k][...]
            if mode == "exact":
                if x.tobytes() != y.tobytes():
                    bad.append(f"{net}/{grp}/{k} differs")
                continue
            d = np.abs(x.astype(np.float64) - y.astype(np.float64))
            worst = max(worst, float(d.max()))
            off += int((d > 1e-5).sum())
            total += d.size
        if mode == "close":
            lr, steps = float(sys.argv[4]), int(sys.argv[5])
            frac = off / max(total, 1)
            print(f"{net}/{grp}: max |diff| {worst:.3g}, {off} of {total} off by > 1e-5 ({frac:.2e})")
            if grp == "params" and worst > 2 * lr * steps * 1.0001:
                bad.append(f"{net}/{grp}: max |diff| {worst:.3g} > 2·lr·steps = {2 * lr * steps:.3g}")
            if frac > 1e-3:
                bad.append(f"{net}/{grp}: {frac:.2e} of the values off by more than 1e-5 (> 1e-3)")
# train.lecam's moving averages (root attributes): the same bits, or close (their update is
# linear in D's mean outputs, which differ by rounding).
# ADA's p and its controller's counts (augment.ada_target): the same.
keys = ("lecam_ema_real", "lecam_ema_fake", "lecam_decay_pow", "augment_p", "ada_signs",
        "ada_images", "ada_rt")
for k in keys:
    if (k in a.attrs) != (k in b.attrs):
        bad.append(f"{k}: in one checkpoint only")
    elif k in a.attrs:
        x, y = float(a.attrs[k]), float(b.attrs[k])
        if (mode == "exact" and x != y) or not abs(x - y) <= 1e-5 * (1 + abs(x)):
            bad.append(f"{k}: {x!r} vs {y!r}")
        elif mode == "close":
            print(f"{k}: {x:.9g} vs {y:.9g}")
if bad:
    print("FAIL: " + "; ".join(bad[:5]))
    sys.exit(1)
print(f"OK ({mode})")
