#!/usr/bin/python3
"""ganc-metrics against an independent NumPy implementation (ctest test_metrics): FID (through
the eigenvalues of S_a·S_b, the way scipy's sqrtm-based reference arrives at the same trace),
KID (StyleGAN2-ADA's formula; one subset of all rows of two sets of one size, so no sampling enters), precision/recall
(Kynkäänniemi et al.'s k-NN balls, brute force); FID of a set against itself ≈ 0 and against
noise large; refusals of bad files. Exit 77 (skipped) without h5py/NumPy.
With Fashion-MNIST present: FID between two disjoint halves of it, in pixel space (784
features; the Inception features come with the feature network), against NumPy's.
Usage: metrics_ref.py GANC_METRICS WORK_DIR [FMNIST_DIR]"""
import json
import os
import shutil
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fidref import fid_ref, kid_ref  # noqa: E402

tool, work = sys.argv[1:3]
fmnist = sys.argv[3] if len(sys.argv) > 3 else ""
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
rng = np.random.default_rng(7)


def save(name, f):
    p = os.path.join(work, name)
    with h5py.File(p, "w", libver="latest") as h:  # checksummed metadata, as ganc requires
        h["features"] = f.astype(np.float32)
    return p


def run(a, b, *extra):
    r = subprocess.run([tool, "--features", a, b, *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def pr_ref(real, fake, k):
    def radii(p):
        d = np.sqrt(((p[:, None, :].astype(np.float64) - p[None, :, :]) ** 2).sum(-1))
        return np.partition(d, k, axis=1)[:, k]

    def cover(p, r, q):
        d = np.sqrt(((q[:, None, :].astype(np.float64) - p[None, :, :]) ** 2).sum(-1))
        return float((d <= r[None, :]).any(1).mean())

    return cover(real, radii(real), fake), cover(fake, radii(fake), real)


d = 16
real = rng.normal(size=(300, d)) @ rng.normal(size=(d, d)) * 0.5 + 1.0
fake = rng.normal(size=(300, d)) @ rng.normal(size=(d, d)) * 0.4 + 0.7
pa, pb = save("real.h5", real), save("fake.h5", fake)
real32, fake32 = real.astype(np.float32), fake.astype(np.float32)
got = run(pa, pb, "--kid-subsets", "1", "--kid-size", "100000", "--pr-k", "3")
want_fid = fid_ref(real32, fake32)
want_kid = kid_ref(real32, fake32)
want_p, want_r = pr_ref(real32, fake32, 3)
print(f"FID {got['fid']:.9g} (NumPy {want_fid:.9g}); KID {got['kid']:.9g} (NumPy {want_kid:.9g}); "
      f"precision {got['precision']} ({want_p}); recall {got['recall']} ({want_r})")
assert abs(got["fid"] - want_fid) <= 1e-7 * max(1.0, abs(want_fid)), "FID differs from NumPy's"
assert abs(got["kid"] - want_kid) <= 1e-9 + 1e-7 * abs(want_kid), "KID differs from NumPy's"
assert abs(got["precision"] - want_p) < 1e-8 and abs(got["recall"] - want_r) < 1e-8, "precision/recall differ"

same = run(pa, pa, "--kid-subsets", "1", "--kid-size", "100000", "--pr-k", "3")
assert abs(same["fid"]) < 1e-9 * fid_ref(real32, fake32) + 1e-9, f"FID(A, A) = {same['fid']}"
# KID of a set against itself is not 0: the estimator assumes independent sets, and its cross
# term then includes each row against itself; it must still be NumPy's.
assert abs(same["kid"] - kid_ref(real32, real32)) <= 1e-7 * abs(same["kid"]), same
assert same["precision"] == 1 and same["recall"] == 1, same
noise = save("noise.h5", rng.uniform(-50, 50, size=(300, d)))
far = run(pa, noise, "--pr-k", "3")
assert far["fid"] > 100 * got["fid"], f"FID against noise {far['fid']} not large"
print(f"FID(A, A) = {same['fid']:.3g}; FID(A, noise) = {far['fid']:.6g}; KID default subsets: {far['kid']:.6g}")

# Refusals: another d, a file without features, NaN.
bad = [save("d8.h5", rng.normal(size=(50, 8)))]
p = os.path.join(work, "nofeat.h5")
with h5py.File(p, "w", libver="latest") as h:
    h["other"] = np.zeros((3, 3), np.float32)
bad.append(p)
nanf = rng.normal(size=(50, d))
nanf[3, 4] = np.nan
bad.append(save("nan.h5", nanf))
p = os.path.join(work, "old-layout.h5")  # h5py's default: no metadata checksums
with h5py.File(p, "w") as h:
    h["features"] = real.astype(np.float32)
bad.append(p)
for b in bad:
    r = subprocess.run([tool, "--features", pa, b], capture_output=True, text=True)
    assert r.returncode == 2 and os.path.basename(b) in r.stderr, (b, r.returncode, r.stderr)
print("refused: another d, no `features`, NaN, an old HDF5 layout (exit 2, naming the file)")

images = os.path.join(fmnist, "train-images-idx3-ubyte.gz")
if fmnist and os.path.exists(images):
    import gzip

    raw = gzip.open(images).read()
    px = np.frombuffer(raw, np.uint8, 4000 * 784, 16).reshape(4000, 784).astype(np.float32) / 255
    h1, h2 = save("fm1.h5", px[:2000]), save("fm2.h5", px[2000:])
    g = run(h1, h2, "--pr-k", "0", "--kid-subsets", "1", "--kid-size", "100000")
    w = fid_ref(px[:2000], px[2000:])
    print(f"Fashion-MNIST halves (2,000 + 2,000 images, pixel features): FID {g['fid']:.9g}, NumPy {w:.9g}")
    assert abs(g["fid"] - w) <= 1e-6 * abs(w), "FID of the halves differs from NumPy's"
    assert abs(g["kid"] - kid_ref(px[:2000], px[2000:])) <= 1e-6 * abs(g["kid"]) + 1e-12
