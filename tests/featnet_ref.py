#!/usr/bin/python3
"""ganc's feature network against an independent NumPy implementation (ctest test_featnet):
FID's Inception-v3 graph with random weights (scripts/featnet.py inception --random), the
features of Fashion-MNIST images (grayscale 32x32, repeated to RGB and resized to 299 like
pytorch-fid's input) computed by ganc-metrics on ganc's ops and by scripts/featnet.py's NumPy
code in double; they must agree within 1e-4 of the features' scale (float32 through 95
convolutions). Then FID/KID between two folders through the network, and refusals of damaged
networks. Exit 77 (skipped) without h5py/NumPy or the data.
Usage: featnet_ref.py BIN_DIR WORK_DIR FMNIST_DIR"""
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

bindir, work, fmnist = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "scripts"))
sys.path.insert(0, here)
import featnet  # noqa: E402  (scripts/featnet.py)

images = os.path.join(fmnist, "train-images-idx3-ubyte.gz")
if not os.path.exists(images):
    print(f"SKIP: {images} missing")
    sys.exit(77)
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
net = os.path.join(work, "inception-random.h5")
g, dim = featnet.inception_fid(featnet.random_weights(5))
featnet.write(g, net, "inception-v3-fid random seed 5", feature_dim=dim)


def prep(name, skip, n):
    out = os.path.join(work, name)
    subprocess.run([os.path.join(bindir, "ganc-prep"), images, out, "--resolution", "32",
                    "--transform", "pad", "--max-images", str(skip + n)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


real, fake = prep("real", 0, 4), prep("fake", 0, 6)
prefix = os.path.join(work, "f")
r = subprocess.run([os.path.join(bindir, "ganc-metrics"), "--featnet", net, "--real", real,
                    "--fake", fake, "--device", "cpu", "--batch", "3", "--pr-k", "1",
                    "--kid-subsets", "2", "--save-features", prefix], capture_output=True, text=True)
print(r.stderr.strip())
assert r.returncode == 0, r.stderr
got = h5py.File(prefix + "-real.h5", "r")["features"][...]
assert got.shape == (4, 2048), got.shape
ims = []
for name in sorted(os.listdir(real)):
    with h5py.File(os.path.join(real, name), "r") as f:
        ims.append(f["images"][...])
ims = np.concatenate(ims)[:4]
want = featnet.run(net, ims)
err = np.abs(got - want).max() / np.abs(want).max()
print(f"features of 4 images, 2048 each: ganc vs NumPy max error {err:.2e} of the largest feature")
assert err <= 1e-4, "ganc's features differ from the NumPy implementation's"
print(r.stdout.strip().splitlines()[-1])

# Damaged networks are refused with the node named: a weight of the wrong shape, a missing
# attribute, an op ganc does not know.
for what, edit in [("weight shape", lambda f: (f["nodes/0004"].__delitem__("weight"),
                                               f["nodes/0004"].create_dataset("weight", data=np.zeros((80, 63, 1, 1), np.float32)))),
                   ("no kernel", lambda f: f["nodes/0000"].attrs.__delitem__("kernel")),
                   ("unknown op", lambda f: f["nodes/0005"].attrs.__setitem__("op", np.bytes_("softmax")))]:
    bad = os.path.join(work, "bad.h5")
    shutil.copy(net, bad)
    with h5py.File(bad, "a") as f:
        edit(f)
    b = subprocess.run([os.path.join(bindir, "ganc-metrics"), "--featnet", bad, "--real", real,
                        "--fake", fake, "--device", "cpu"], capture_output=True, text=True)
    assert b.returncode == 2 and "bad.h5" in b.stderr and "node" in b.stderr, (what, b.returncode, b.stderr)
    print(f"refused ({what}): {b.stderr.strip().splitlines()[0][:150]}")
# A network in HDF5's old layout (h5py's default: no metadata checksums) is refused, with the fix.
old = os.path.join(work, "old-layout.h5")
with h5py.File(net, "r") as src, h5py.File(old, "w") as dst:
    for k, v in src.attrs.items():
        dst.attrs[k] = v
    src.copy("nodes", dst)
b = subprocess.run([os.path.join(bindir, "ganc-metrics"), "--featnet", old, "--real", real,
                    "--fake", fake, "--device", "cpu"], capture_output=True, text=True)
assert b.returncode == 2 and "without metadata checksums" in b.stderr and "libver" in b.stderr, b.stderr
print("refused (old HDF5 layout): " + b.stderr.strip().splitlines()[0][:150])

# Every node kind on ganc's CUDA kernels (run by the tests' CUDA emulator: ganc-metrics-emu) and
# on the CPU, against NumPy, on a small network of all of them (Inception's full size takes too
# long emulated): 3x3 stride-2 and rectangular 1x7 / 7x1 convolutions with asymmetric padding,
# a bias without batch norm, both pools with and without padding counted, concatenation, mean.
emu = os.path.join(bindir, "tests", "ganc-metrics-emu")
rng = np.random.default_rng(11)
t = featnet.Graph()


def cv(x, K, C, kh, kw, stride=1, pad=(0, 0), bias=False):
    w = dict(weight=rng.normal(0, np.sqrt(2.0 / (C * kh * kw)), (K, C, kh, kw)).astype(np.float32))
    if bias:
        w["bias"] = rng.normal(0, 0.1, K).astype(np.float32)
    else:
        w.update(bn_gamma=rng.uniform(0.8, 1.2, K).astype(np.float32),
                 bn_beta=rng.normal(0, 0.1, K).astype(np.float32),
                 bn_mean=rng.normal(0, 0.1, K).astype(np.float32),
                 bn_var=rng.uniform(0.8, 1.2, K).astype(np.float32), bn_eps=1e-3)
    return t.add("conv", [x], kernel=[kh, kw], stride=stride, pad=list(pad), relu=1, **w)


x = cv(-1, 8, 3, 3, 3, stride=2)                     # 35 → 17
a = cv(cv(x, 6, 8, 1, 7, pad=(0, 3)), 5, 6, 7, 1, pad=(3, 0))
b = cv(t.add("avgpool", [x], kernel=3, stride=1, pad=1, count_include_pad=0), 4, 8, 1, 1, bias=True)
c = t.add("avgpool", [x], kernel=3, stride=1, pad=1, count_include_pad=1)
d = t.add("maxpool", [x], kernel=3, stride=1, pad=1)
y = t.add("concat", [a, b, c, d])                    # 5 + 4 + 8 + 8 = 25
y = t.add("maxpool", [cv(y, 12, 25, 3, 3, stride=2)], kernel=3, stride=2, pad=0)
t.add("mean", [y])
small = os.path.join(work, "small.h5")
featnet.write(t, small, "all node kinds", input_size=35, feature_dim=12)
want = featnet.run(small, ims)
for tool, device in ((os.path.join(bindir, "ganc-metrics"), "cpu"), (emu, "cuda")):
    if not os.path.exists(tool):
        print(f"(no {tool}: the CUDA path is not checked in this build)")
        continue
    p = os.path.join(work, "s-" + device)
    r = subprocess.run([tool, "--featnet", small, "--real", real, "--fake", fake, "-n", "4",
                        "--device", device, "--pr-k", "1", "--kid-subsets", "1",
                        "--save-features", p], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = h5py.File(p + "-real.h5", "r")["features"][...]
    err = np.abs(got - want).max() / np.abs(want).max()
    print(f"every node kind on {'the emulated GPU' if device == 'cuda' else 'the CPU'}: max error "
          f"{err:.2e} against NumPy")
    assert err <= 1e-5, f"{device}: features differ from NumPy's"

# Generated images: a run's G_ema through the network (seeds 0..3, as ganc-sample draws them)
# against NumPy on ganc-sample's PNGs of those seeds.
from pngread import read_png  # noqa: E402

run = os.path.join(work, "run")
subprocess.run([os.path.join(bindir, "ganc-train"), "--data", real, "--config",
                os.path.join(here, "..", "configs", "cpu-demo.ini"), "--out", run, "--set",
                "train.kimg=0.008", "--set", "train.batch=4", "--set", "log.snapshot_kimg=1",
                "--set", "train.threads=1"], check=True, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
p = os.path.join(work, "gen")
r = subprocess.run([os.path.join(bindir, "ganc-metrics"), "--featnet", small, "--real", real,
                    "--fake", run, "--device", "cpu", "--pr-k", "1", "--kid-subsets", "1",
                    "--save-features", p], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
gen = h5py.File(p + "-fake.h5", "r")["features"][...]
assert gen.shape == (4, 12), gen.shape  # as many as the reals taken
outdir = os.path.join(work, "samples")
subprocess.run([os.path.join(bindir, "ganc-sample"), "--ckpt", run, "--seeds", "0-3", "--outdir",
                outdir, "--device", "cpu"], check=True, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
pngs = np.stack([read_png(os.path.join(outdir, f"seed{s:04d}.png")) for s in range(4)])
want = featnet.run(small, pngs)
err = np.abs(gen - want).max() / np.abs(want).max()
print(f"a run's generated images (seeds 0..3) through the network: max error {err:.2e} against "
      "NumPy on ganc-sample's PNGs")
assert err <= 1e-5, "the generated images' features differ"

# FID during training (metrics.featnet): the logged number is ganc-metrics' on the same run, and a
# missing network is refused before any training.
import json  # noqa: E402

run2 = os.path.join(work, "run-fid")
common = ["--data", real, "--config", os.path.join(here, "..", "configs", "cpu-demo.ini"),
          "--set", "train.batch=4", "--set", "train.threads=1", "--set", "metrics.n=6"]
r = subprocess.run([os.path.join(bindir, "ganc-train"), "--out", run2, *common, "--set",
                    "train.kimg=0.016", "--set", "log.snapshot_kimg=0.008", "--set",
                    f"metrics.featnet={small}"], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
logged = [json.loads(l) for l in open(os.path.join(run2, "log.jsonl")) if '"fid"' in l]
assert [round(l["kimg"] * 1000) for l in logged] == [8, 16], logged
m = subprocess.run([os.path.join(bindir, "ganc-metrics"), "--featnet", small, "--real", real,
                    "--fake", run2, "-n", "6", "--device", "cpu", "--pr-k", "0", "--kid-subsets",
                    "1"], capture_output=True, text=True)
assert m.returncode == 0, m.stderr
again = json.loads(m.stdout.strip().splitlines()[-1])["fid"]
print(f"FID logged during training at kimg 0.016: {logged[-1]['fid']}; ganc-metrics on the run: {again}")
assert abs(again - logged[-1]["fid"]) <= 1e-6 * abs(again) + 1e-9, "the logged FID is not ganc-metrics'"
r = subprocess.run([os.path.join(bindir, "ganc-train"), "--out", os.path.join(work, "run-nonet"),
                    *common, "--set", "metrics.featnet=/nonexistent/net.h5"], capture_output=True,
                   text=True)
assert r.returncode == 2 and "/nonexistent/net.h5" in r.stderr, (r.returncode, r.stderr)
assert not os.path.exists(os.path.join(work, "run-nonet", "latest")), "trained without its network"
print("a missing feature network stops ganc-train before training, naming it")

# FID of two disjoint halves of Fashion-MNIST (300 images each: the even- and odd-numbered of the
# first 600, written as IDX files) in the features of the network: ganc-metrics (ganc's features,
# ganc's FID) against NumPy (NumPy's features of the same shard images, fidref.py's FID).
import gzip  # noqa: E402

from fidref import fid_ref  # noqa: E402

raw = gzip.open(images).read()
px = np.frombuffer(raw, np.uint8, 600 * 784, 16).reshape(600, 28, 28)
halves = []
for h in range(2):
    idx = os.path.join(work, f"half{h}-idx3-ubyte")
    with open(idx, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (300).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
        f.write(px[h::2].tobytes())
    d = os.path.join(work, f"half{h}")
    subprocess.run([os.path.join(bindir, "ganc-prep"), idx, d, "--resolution", "32", "--transform",
                    "pad"], check=True, stdout=subprocess.DEVNULL)
    halves.append(d)
hp = os.path.join(work, "halves")
r = subprocess.run([os.path.join(bindir, "ganc-metrics"), "--featnet", small, "--real", halves[0],
                    "--fake", halves[1], "--device", "cpu", "--pr-k", "0", "--kid-subsets", "1",
                    "--save-features", hp], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
got = json.loads(r.stdout.strip().splitlines()[-1])["fid"]
feats = []
for d in halves:
    ims = np.concatenate([h5py.File(os.path.join(d, n), "r")["images"][...]
                          for n in sorted(os.listdir(d)) if n.endswith(".h5")])
    assert len(ims) == 300, len(ims)
    feats.append(featnet.run(small, ims))
want = fid_ref(feats[0], feats[1])
print(f"Fashion-MNIST halves (300 + 300 images) in the network's features: FID {got:.9g}, NumPy "
      f"{want:.9g}")
assert abs(got - want) <= 1e-5 * abs(want), "the halves' FID differs from NumPy's"
