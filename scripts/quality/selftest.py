#!/usr/bin/python3
"""selftest.py — checks the quality measure on synthetic data in seconds (run by selftest.sh).

Makes shards of three synthetic classes (16x16 gray: a horizontal bar, a vertical bar, a disc, at
random positions and brightness, with pixel noise) in ganc's shard layout, trains a small classifier
on them with classifier.py, and checks with measure.py that
  - the PNG reader decodes all five PNG row filters exactly (against a tiny encoder written here);
  - frechet() matches the closed form for diagonal Gaussians;
  - real vs real (disjoint) is near 0: FCD below a tenth of the pixel-shuffled distance, KID within
    noise of 0; pixels shuffled and uniform noise are far (FCD > 10x the real floor);
  - a "generated" set equal to real images, with asked classes = true labels, agrees with the asked
    class about as often as the classifier is accurate, and with wrong labels, rarely;
  - the measure is deterministic (two runs give the same JSON numbers).
With ganc-prep given (argv[2]), also that ganc-prep's shards of the PNGs hold the same pixels.
Exit 0 when all pass, 1 otherwise.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import qlib  # noqa: E402

qlib.set_threads(1)
import h5py  # noqa: E402
import numpy as np  # noqa: E402

work = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ganc-quality-selftest"
prep = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
py = sys.executable
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def synth(n, rng, res=16):
    """n images of 3 classes, uint8 [n, res, res, 1], and their labels."""
    labels = rng.integers(0, 3, n).astype(np.int32)
    yy, xx = np.mgrid[0:res, 0:res]
    img = np.zeros((n, res, res), np.float32)
    for i in range(n):
        cy, cx = rng.integers(5, res - 5, 2)
        v = rng.uniform(150, 255)
        if labels[i] == 0:
            img[i, cy - 1:cy + 2, cx - 5:cx + 5] = v
        elif labels[i] == 1:
            img[i, cy - 5:cy + 5, cx - 1:cx + 2] = v
        else:
            img[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] = v
    img += rng.normal(0, 10, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)[..., None], labels


def write_shards(folder, images, labels, names=None):
    os.makedirs(folder, exist_ok=True)
    with h5py.File(os.path.join(folder, "shard-00000.h5"), "w") as f:
        f["images"] = images
        f["labels"] = labels
        names = names or [f"synthetic/{i}" for i in range(len(images))]
        f["sources"] = np.array([n.encode() for n in names], dtype="S64")
        f.attrs["class_names"] = np.array([b"hbar", b"vbar", b"disc"])


def png_bytes(img, filters):
    """A minimal PNG encoder (8-bit gray or RGB) using the given filter type for each row."""
    h, w, c = img.shape
    bpp, rows, prev = c, [], np.zeros(w * c, np.int32)
    for y in range(h):
        cur = img[y].reshape(-1).astype(np.int32)
        left = np.concatenate([np.zeros(bpp, np.int32), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        ft = filters[y % len(filters)]
        if ft == 0:
            f = cur
        elif ft == 1:
            f = cur - left
        elif ft == 2:
            f = cur - prev
        elif ft == 3:
            f = cur - (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            f = cur - pred
        rows.append(bytes([ft]) + (f & 255).astype(np.uint8).tobytes())
        prev = cur

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def run_json(args):
    out = subprocess.run([py, os.path.join(here, "measure.py")] + args, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
rng = np.random.default_rng(123)

# PNG reader against the encoder, every filter, gray and RGB.
pngdir = os.path.join(work, "png")
os.makedirs(pngdir)
test_imgs = []
for i in range(6):
    c = 1 if i < 4 else 3
    im = rng.integers(0, 256, (16, 16, c), dtype=np.uint8)
    im[4:8] = 0  # runs of equal bytes, where filters matter most
    filters = [[0, 1, 2, 3, 4], [4], [3], [1, 2]][i % 4]
    with open(os.path.join(pngdir, f"seed{i:04d}.png"), "wb") as f:
        f.write(png_bytes(im, filters))
    test_imgs.append(im)
check(all(np.array_equal(qlib.read_png(os.path.join(pngdir, f"seed{i:04d}.png")), test_imgs[i])
          for i in range(6)), "read_png decodes PNG filters 0-4, gray and RGB, exactly")

# Frechet distance: closed form for diagonal covariances.
a, b = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
check(abs(qlib.frechet(mu1, np.diag(a), mu2, np.diag(b)) - want) < 1e-9,
      "frechet() equals |mu1-mu2|^2 + sum (sqrt a - sqrt b)^2 for diagonal covariances")

# Synthetic shards, a classifier, and the measure.
tr_img, tr_lab = synth(6000, rng)
te_img, te_lab = synth(4000, rng)
write_shards(os.path.join(work, "train"), tr_img, tr_lab)
write_shards(os.path.join(work, "test"), te_img, te_lab)
model = os.path.join(work, "clf.npz")
subprocess.run([py, os.path.join(here, "classifier.py"), "--train", os.path.join(work, "train"),
                "--test", os.path.join(work, "test"), "--out", model, "--hidden", "64,32",
                "--epochs", "4"], check=True, stdout=subprocess.DEVNULL)
acc = qlib.load_model(model)["meta"]["test_acc"]
check(acc > 0.95, f"classifier on synthetic classes: test accuracy {acc:.3f} > 0.95")

cal = run_json(["--model", model, "--real", os.path.join(work, "test"), "--calibrate",
                "--n", "1000", "--repeats", "3", "--kid-subsets", "10"])
rr = cal["real_vs_real"]
shuf = cal["degraded"]["pixels_shuffled"]["fcd"]
unif = cal["degraded"]["uniform_noise"]["fcd"]
print(f"     real vs real FCD {rr['fcd_mean']:.3f} +- {rr['fcd_std']:.3f}, "
      f"KID {rr['kid_mean']:.5f} +- {rr['kid_std']:.5f}; "
      f"pixels shuffled {shuf:.2f}; uniform noise {unif:.2f}")
check(rr["fcd_mean"] < 0.1 * shuf, "real vs real FCD < 1/10 of real vs pixel-shuffled")
check(abs(rr["kid_mean"]) < 3 * rr["kid_std"] + 1e-3, "real vs real KID is 0 within its noise")
check(shuf > 10 * rr["fcd_mean"] and unif > 10 * rr["fcd_mean"],
      "pixels shuffled and uniform noise are > 10x the real-vs-real floor")

# "Generated" = real test images named like ganc-sample's, with asked classes.
fake = os.path.join(work, "fake")
names = [f"seed{i:04d}.png" for i in range(1000)]
order = rng.permutation(1000)  # stored out of order, as ganc-prep --jobs N may
write_shards(fake, te_img[order], te_lab[order], [names[i] for i in order])
asked = os.path.join(work, "asked.json")
with open(asked, "w") as f:
    json.dump({names[i]: int(te_lab[i]) for i in range(1000)}, f)
wrong = os.path.join(work, "wrong.txt")
with open(wrong, "w") as f:
    f.write("".join(f"{i} {(te_lab[i] + 1) % 3}\n" for i in range(1000)))
args = ["--model", model, "--real", os.path.join(work, "train"), "--fake", fake, "--n", "1000",
        "--kid-subsets", "10"]
r1 = run_json(args + ["--asked", asked])
r2 = run_json(args + ["--asked", asked])
rw = run_json(args + ["--asked", wrong])
check(abs(r1["cond"]["acc"] - acc) < 0.03,
      f"asked = true class: agreement {r1['cond']['acc']:.3f} ~ classifier accuracy {acc:.3f}")
check(rw["cond"]["acc"] < 0.05, f"asked = a wrong class: agreement {rw['cond']['acc']:.3f} < 0.05")
check(r1["classes"]["classes_covered"] == 3 and r1["classes"]["tv_to_real"] < 0.05,
      "real images as generated: all 3 classes covered, histogram close to the real one")
drop = ("date", "seconds")
check({k: v for k, v in r1.items() if k not in drop} == {k: v for k, v in r2.items()
                                                           if k not in drop},
      "two runs of measure.py give the same numbers")

if prep:
    out = os.path.join(work, "prep")
    gray = os.path.join(work, "png-gray")
    os.makedirs(gray)
    for i in range(4):
        shutil.copy(os.path.join(pngdir, f"seed{i:04d}.png"), gray)
    subprocess.run([prep, gray, out, "--resolution", "16", "--labels", "none", "--jobs", "1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    im, _, src, _ = qlib.load_shards(out)
    im, src = qlib.order_by_seed(im, src)
    check(np.array_equal(im, np.stack(test_imgs[:4])),
          "ganc-prep's shards of the PNGs hold exactly the pixels read_png decodes")

print("selftest: " + ("all passed" if not failures else f"{len(failures)} FAILED"))
sys.exit(1 if failures else 0)
