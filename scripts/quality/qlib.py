"""qlib — the shared parts of ganc's quality measure (scripts/quality/): reading images (ganc
shards, or PNG files decoded here with zlib), the NumPy classifier's forward pass, and the
statistics (Frechet distance, KID, class histograms).

Python 3 + NumPy + h5py only (Debian: python3-numpy, python3-h5py). The scripts that import this
set OPENBLAS_NUM_THREADS before NumPy loads (see set_threads), because OpenBLAS otherwise takes
every core of a shared machine.
"""
import glob
import json
import math
import os
import re
import struct
import sys
import zlib


def set_threads(n):
    """Caps BLAS threads; must run before the first `import numpy` of the process."""
    if "numpy" in sys.modules:
        return
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def die(msg, hint=None, code=2):
    """One error line that names what failed, and what to try (exit 2: bad input, 1: runtime)."""
    print(f"error: {msg}", file=sys.stderr)
    if hint:
        print(f"---> HINT: {hint}", file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------------------------------------
# Images in

def load_shards(folder):
    """All images of a ganc shard folder (shard-*.h5, in order): uint8 [N, H, W, C], int32 labels
    [N] (all -1 when the shards carry none), each image's source path, and the class names."""
    import h5py
    import numpy as np

    paths = sorted(glob.glob(os.path.join(folder, "shard-*.h5")))
    if not paths:
        die(f"{folder}: no shard-*.h5 files",
            "make them with `build/ganc-prep SRC DIR --resolution R` (see README.md)")
    images, labels, sources, names = [], [], [], []
    for p in paths:
        with h5py.File(p, "r") as f:
            if "images" not in f:
                die(f"{p}: no `images` dataset; not a ganc shard?")
            images.append(f["images"][:])
            n = images[-1].shape[0]
            labels.append(f["labels"][:].astype(np.int32) if "labels" in f
                          else np.full(n, -1, np.int32))
            if "sources" in f:
                sources += [s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)
                            for s in f["sources"][:]]
            else:
                sources += [f"{p}#{i}" for i in range(n)]
            if not names and "class_names" in f.attrs:
                names = [s.decode() if isinstance(s, bytes) else str(s)
                         for s in f.attrs["class_names"]]
    return np.concatenate(images), np.concatenate(labels), sources, names


def _unfilter(raw, w, h, bpp, path):
    """Undoes PNG's per-row filters (spec section 9) for 8-bit samples: raw is the inflated IDAT."""
    import numpy as np

    stride = w * bpp
    data = np.frombuffer(raw, np.uint8)
    if data.size != h * (stride + 1):
        die(f"{path}: image data has {data.size} bytes, expected {h * (stride + 1)}")
    rows = data.reshape(h, stride + 1)
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ft, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if ft == 0:
            cur = line
        elif ft == 1:  # Sub: a running sum per channel, modulo 256
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(stride) & 255
        elif ft == 2:  # Up
            cur = (line + prev) & 255
        elif ft in (3, 4):  # Average, Paeth: each byte depends on the one bpp to its left
            cur = line.copy()
            for x in range(stride):
                a = int(cur[x - bpp]) if x >= bpp else 0
                b = int(prev[x])
                if ft == 3:
                    cur[x] = (cur[x] + ((a + b) >> 1)) & 255
                else:
                    c = int(prev[x - bpp]) if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                    cur[x] = (cur[x] + pred) & 255
        else:
            die(f"{path}: PNG row filter {ft} is not one of 0..4 (damaged file?)")
        out[y] = cur
        prev = cur
    return out


def read_png(path):
    """Decodes a non-interlaced 8-bit PNG (gray, gray+alpha, RGB, RGBA; alpha dropped) — what
    ganc-sample writes — into uint8 [H, W, C] with C = 1 or 3. Anything else: use ganc-prep."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        die(f"{path}: not a PNG file")
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None or not idat:
        die(f"{path}: no IHDR or IDAT chunk (truncated PNG?)")
    w, h, depth, ctype, _, _, interlace = hdr
    planes = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or planes is None or interlace:
        die(f"{path}: PNG with bit depth {depth}, colour type {ctype}, interlace {interlace}",
            "this reader takes 8-bit gray/RGB(A) non-interlaced PNGs; run `build/ganc-prep` on "
            "the folder and pass the shard folder instead")
    px = _unfilter(zlib.decompress(b"".join(idat)), w, h, planes, path).reshape(h, w, planes)
    return px[:, :, :1] if planes in (1, 2) else px[:, :, :3]


def load_png_dir(folder):
    """Every *.png directly in a folder, in name order: uint8 [N, H, W, C] and the file names."""
    import numpy as np

    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))
    if not names:
        die(f"{folder}: no .png files")
    imgs = [read_png(os.path.join(folder, n)) for n in names]
    if len({im.shape for im in imgs}) != 1:
        die(f"{folder}: the PNGs differ in size or channels",
            "run `build/ganc-prep` on the folder to bring them to one size")
    return np.stack(imgs), names


_SEED_RE = re.compile(r"seed0*(\d+)")


def seed_of(name):
    """The seed in a ganc-sample file name (seed0042.png → 42), or None."""
    m = _SEED_RE.search(os.path.basename(name))
    return int(m.group(1)) if m else None


def order_by_seed(images, names):
    """Puts images in seed order (ganc-prep may write them in any order); names without a seed
    keep name order, after the seeded ones."""
    import numpy as np

    keys = [(0, s, "") if (s := seed_of(n)) is not None else (1, 0, os.path.basename(n))
            for n in names]
    idx = sorted(range(len(names)), key=lambda i: keys[i])
    return images[np.array(idx, dtype=np.int64)], [names[i] for i in idx]


# ---------------------------------------------------------------------------------------------
# The classifier: an MLP on pixels, its weights and input normalisation in one .npz

def load_model(path):
    import numpy as np

    if not os.path.exists(path):
        die(f"{path}: no such classifier file",
            "train one with `scripts/quality/classifier.py --train SHARDS --out FILE.npz`")
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    n_layers = meta["layers"]
    model = {"meta": meta, "mean": z["mean"], "std": float(z["std"]),
             "W": [z[f"W{i}"] for i in range(n_layers)],
             "b": [z[f"b{i}"] for i in range(n_layers)]}
    return model


def prepare(model_or_stats, images):
    """uint8 [N, H, W, C] → float32 [N, H*W*C], normalised as in training."""
    import numpy as np

    x = images.reshape(images.shape[0], -1).astype(np.float32) / 255.0
    return (x - model_or_stats["mean"]) / model_or_stats["std"]


def forward(model, images, batch=2000):
    """Penultimate-layer features (post-ReLU, float64 [N, F]) and class probabilities [N, K]."""
    import numpy as np

    meta = model["meta"]
    shape = tuple(images.shape[1:])
    if list(shape) != meta["input_shape"]:
        die(f"images are {shape[0]}x{shape[1]}x{shape[2]}, the classifier takes "
            f"{'x'.join(map(str, meta['input_shape']))}",
            "prepare the images at the classifier's resolution and channels "
            "(ganc-prep --resolution R --channels C)")
    feats, probs = [], []
    for s in range(0, images.shape[0], batch):
        h = prepare(model, images[s:s + batch])
        for i in range(len(model["W"]) - 1):
            h = np.maximum(h @ model["W"][i] + model["b"][i], 0.0)
        logits = h @ model["W"][-1] + model["b"][-1]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        feats.append(h.astype(np.float64))
        probs.append(p.astype(np.float64))
    return np.concatenate(feats), np.concatenate(probs)


# ---------------------------------------------------------------------------------------------
# Statistics

def mean_cov(f):
    import numpy as np

    mu = f.mean(axis=0)
    return mu, np.cov(f, rowvar=False)


def frechet(mu1, s1, mu2, s2):
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). tr (S1 S2)^(1/2) is computed as the sum of
    square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), which is symmetric PSD — no complex
    parts to discard, no SciPy."""
    import numpy as np

    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(ev, 0, None)).sum()
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def kid(f1, f2, subsets=50, subset_size=1000, seed=0):
    """Kernel Inception Distance (Binkowski et al. 2018) in these features: the unbiased MMD^2 with
    the cubic kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets. Returns mean, std."""
    import numpy as np

    rng = np.random.default_rng(seed)
    d = f1.shape[1]
    m = min(subset_size, f1.shape[0], f2.shape[0])
    vals = []
    for _ in range(subsets):
        x = f1[rng.choice(f1.shape[0], m, replace=False)]
        y = f2[rng.choice(f2.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                    + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    vals = np.array(vals)
    return float(vals.mean()), float(vals.std())


def class_stats(probs, n_classes, ref_hist=None):
    """Mode coverage from the predicted classes: the histogram, the entropy of the predicted-class
    histogram (log K when every class is equally common; in nats), the number of classes that get at
    least a quarter of their fair share, the mean confidence, the total-variation distance to a
    reference histogram, and the classifier score exp(E_x KL(p(y|x) || p(y))) (the Inception Score
    idea, in this classifier)."""
    import numpy as np

    pred = probs.argmax(axis=1)
    hist = np.bincount(pred, minlength=n_classes) / len(pred)
    nz = hist[hist > 0]
    py = probs.mean(axis=0)
    kl = (probs * (np.log(probs + 1e-12) - np.log(py + 1e-12))).sum(axis=1).mean()
    out = {
        "hist": [round(float(h), 4) for h in hist],
        "entropy": round(abs(float(-(nz * np.log(nz)).sum())), 4),
        "entropy_max": round(math.log(n_classes), 4),
        "classes_covered": int((hist >= 0.25 / n_classes).sum()),
        "confidence": round(float(probs.max(axis=1).mean()), 4),
        "classifier_score": round(float(np.exp(kl)), 3),
    }
    if ref_hist is not None:
        out["tv_to_real"] = round(float(0.5 * np.abs(hist - ref_hist).sum()), 4)
    return out
