#!/usr/bin/python3
"""measure.py — ganc's quality measure: compares generated images with real ones in the feature
space of a classifier trained on the real data (scripts/quality/classifier.py).

  measure.py --model CLF.npz --real SHARDS --fake SHARDS      # or --fake-png DIR
  measure.py --model CLF.npz --real SHARDS --fake SHARDS --asked-class 3        # conditional
  measure.py --model CLF.npz --real SHARDS --fake SHARDS --asked asked.json    # class per image
  measure.py --model CLF.npz --real SHARDS --calibrate [--real2 OTHER_SHARDS]   # noise and scale

Prints one JSON line on stdout:
  fcd          Frechet Classifier Distance: the Frechet distance between Gaussians fitted to the
               classifier's last hidden layer (256 features, after ReLU) on --n generated and
               --n-real real images. FID's formula, in a feature space we train and document.
               Lower is better; 0 for identical statistics. Biased upward at finite N (two
               disjoint real samples of 5000 do not give 0; --calibrate measures that floor).
  kid, kid_std Kernel Inception Distance in the same features (unbiased MMD^2, cubic kernel, mean
               and spread over --kid-subsets random subsets of 1000); 0 up to noise when equal.
  classes      predicted-class histogram of the generated images and its entropy (log 10 = 2.303
               when uniform), classes_covered (classes with >= 1/4 of a fair share), tv_to_real
               (total variation to the histogram the same classifier predicts for the real
               images), confidence, classifier_score (Inception Score formula, this classifier).
  cond         with --asked/--asked-class: the fraction of generated images classified as the
               class they were asked for (acc), overall and per asked class, and `chance`, what
               it would be if the predicted class did not depend on the asked one. The ceiling is
               the classifier's own accuracy (real test images, asked = true label: 0.89).

Images are taken in a fixed order: generated ones by the seed in their name (seed0042.png, from
ganc-sample, also through ganc-prep's `sources`), the first --n; real ones a --seed-fixed random
--n-real subset. Same inputs, options and BLAS thread count → the same numbers.

Exit status: 0 ok, 1 runtime failure, 2 bad usage or input.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qlib  # noqa: E402


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="classifier .npz from classifier.py")
    ap.add_argument("--real", required=True, help="real images: a ganc shard folder")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--fake", help="generated images: a shard folder made by ganc-prep")
    g.add_argument("--fake-png", help="generated images: a folder of PNGs (8-bit, read here)")
    g.add_argument("--calibrate", action="store_true",
                   help="no generated images: measure the estimate's noise and scale on real data")
    ap.add_argument("--real2", help="with --calibrate: a second real set (e.g. the training "
                    "shards when --real is the test set), compared with --real")
    ap.add_argument("--n", type=int, default=5000, help="generated images used (default 5000)")
    ap.add_argument("--n-real", type=int, default=None, help="real images used (default --n)")
    ap.add_argument("--asked", help="file giving the class asked for each generated image: JSON "
                    "{\"seed0042.png\" or \"42\": class, ...} or a JSON list (index = seed), or "
                    "text lines `NAME_OR_SEED CLASS`; a class is a number or a class name")
    ap.add_argument("--asked-class", help="every generated image was asked for this class")
    ap.add_argument("--seed", type=int, default=0, help="picks the real subset and KID subsets")
    ap.add_argument("--kid-subsets", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5, help="--calibrate: random splits")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--tag", help="a free text copied into the JSON (e.g. the run and kimg)")
    return ap.parse_args()


def class_index(value, names, where):
    v = str(value).strip()
    if v.lstrip("-").isdigit():
        k = int(v)
    elif v in names:
        k = names.index(v)
    else:
        qlib.die(f"{where}: class {v!r} is neither a number nor one of {names}")
    if not 0 <= k < len(names):
        qlib.die(f"{where}: class {k} is outside 0..{len(names) - 1}")
    return k


def read_asked(path, fake_names, names):
    """The asked class of each generated image (in fake_names order), from --asked's file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    table = {}
    try:
        obj = json.loads(text)
        if isinstance(obj, list):
            table = {str(i): c for i, c in enumerate(obj)}
        elif isinstance(obj, dict):
            table = {str(kk): c for kk, c in obj.items()}
        else:
            raise ValueError
    except ValueError:
        for ln, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 2:
                qlib.die(f"{path}:{ln}: expected `NAME_OR_SEED CLASS`")
            table[parts[0]] = " ".join(parts[1:])
    out = []
    for n in fake_names:
        base, seed = os.path.basename(n), qlib.seed_of(n)
        key = base if base in table else (str(seed) if seed is not None else None)
        if key not in table:
            qlib.die(f"{path}: no asked class for {base}",
                     "list every generated image, by file name or seed")
        out.append(class_index(table[key], names, path))
    return out


def main():
    a = parse()
    qlib.set_threads(a.threads)
    import numpy as np

    if not (a.fake or a.fake_png or a.calibrate):
        qlib.die("give --fake SHARDS, --fake-png DIR or --calibrate")
    t0 = time.time()
    model = qlib.load_model(a.model)
    meta = model["meta"]
    names = meta["class_names"]
    k = len(names)
    n_real = a.n_real or a.n
    rng = np.random.default_rng(a.seed)
    r_images, _, _, _ = qlib.load_shards(a.real)
    perm = rng.permutation(len(r_images))
    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "model": os.path.abspath(a.model), "model_test_acc": meta["test_acc"],
              "real": os.path.abspath(a.real), "seed": a.seed,
              "machine": platform.platform()}
    if a.tag:
        result["tag"] = a.tag

    if a.calibrate:
        result.update(calibrate(a, model, r_images, perm, n_real, np))
        result["seconds"] = round(time.time() - t0, 1)
        print(json.dumps(result))
        return

    if len(r_images) < n_real:
        print(f"note: {a.real} has {len(r_images)} images, fewer than --n-real {n_real}; "
              "using all", file=sys.stderr)
    real = r_images[perm[:n_real]]
    if a.fake:
        f_images, _, f_names, _ = qlib.load_shards(a.fake)
    else:
        f_images, f_names = qlib.load_png_dir(a.fake_png)
    f_images, f_names = qlib.order_by_seed(f_images, f_names)
    if len(f_images) < a.n:
        print(f"note: {len(f_images)} generated images, fewer than --n {a.n} (ganc-prep keeps "
              "exact duplicates once); using all", file=sys.stderr)
    f_images, f_names = f_images[:a.n], f_names[:a.n]

    fr, pr = qlib.forward(model, real)
    ff, pf = qlib.forward(model, f_images)
    mu_r, s_r = qlib.mean_cov(fr)
    mu_f, s_f = qlib.mean_cov(ff)
    kid_m, kid_s = qlib.kid(fr, ff, subsets=a.kid_subsets, seed=a.seed)
    real_hist = np.bincount(pr.argmax(1), minlength=k) / len(pr)
    result.update({
        "fake": os.path.abspath(a.fake or a.fake_png), "n_fake": int(len(f_images)),
        "n_real": int(len(real)), "fcd": round(qlib.frechet(mu_r, s_r, mu_f, s_f), 3),
        "kid": round(kid_m, 5), "kid_std": round(kid_s, 5),
        "classes": qlib.class_stats(pf, k, real_hist),
        "real_classes": {"hist": [round(float(h), 4) for h in real_hist]},
    })
    if a.asked or a.asked_class is not None:
        asked = (read_asked(a.asked, f_names, names) if a.asked
                 else [class_index(a.asked_class, names, "--asked-class")] * len(f_names))
        asked = np.array(asked)
        pred = pf.argmax(1)
        per = {}
        for c in range(k):
            sel = asked == c
            if sel.any():
                per[names[c]] = {"n": int(sel.sum()),
                                 "acc": round(float((pred[sel] == c).mean()), 4)}
        # chance: the agreement if the predicted class were independent of the asked one.
        chance = (np.bincount(asked, minlength=k) / len(asked)) @ (np.bincount(pred, minlength=k)
                                                                  / len(pred))
        result["cond"] = {"acc": round(float((pred == asked).mean()), 4), "per_class": per,
                          "chance": round(float(chance), 4)}
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(result))


def calibrate(a, model, r_images, perm, n, np):
    """The noise of the estimate and a scale to read it against, all from real images:
    - real_vs_real: FCD/KID between disjoint random real sets of n (--repeats splits): the floor a
      perfect generator would get at this n, and its spread;
    - real_vs_real2: --real against a second real set (e.g. train vs test);
    - degradations of the second half, each against the first: Gaussian pixel noise, a 3x3 box blur,
      1- and 2-pixel shifts, the pixels of each image shuffled, uniform noise images, and two
      losses of modes (only images the classifier puts in 5 of the classes; only 1 class)."""
    if len(r_images) < 2 * n:
        qlib.die(f"{a.real}: {len(r_images)} images; --calibrate needs 2 x {n}",
                 f"lower --n (e.g. --n {len(r_images) // 2})")
    out = {"n": n}
    rr_f, rr_k = [], []
    for r in range(a.repeats):
        p = np.random.default_rng(a.seed + 1000 + r).permutation(len(r_images))
        fa, _ = qlib.forward(model, r_images[p[:n]])
        fb, _ = qlib.forward(model, r_images[p[n:2 * n]])
        ma, sa = qlib.mean_cov(fa)
        mb, sb = qlib.mean_cov(fb)
        rr_f.append(qlib.frechet(ma, sa, mb, sb))
        rr_k.append(qlib.kid(fa, fb, subsets=a.kid_subsets, seed=a.seed + r)[0])
    out["real_vs_real"] = {"fcd_mean": round(float(np.mean(rr_f)), 3),
                           "fcd_std": round(float(np.std(rr_f)), 3),
                           "fcd_all": [round(v, 3) for v in rr_f],
                           "kid_mean": round(float(np.mean(rr_k)), 5),
                           "kid_std": round(float(np.std(rr_k)), 5)}

    a_img, b_img = r_images[perm[:n]], r_images[perm[n:2 * n]]
    fa, pa = qlib.forward(model, a_img)
    ma, sa = qlib.mean_cov(fa)
    k = pa.shape[1]
    real_hist = np.bincount(pa.argmax(1), minlength=k) / n

    def versus(images):
        fb, pb = qlib.forward(model, images)
        mb, sb = qlib.mean_cov(fb)
        c = qlib.class_stats(pb, k, real_hist)
        return {"fcd": round(qlib.frechet(ma, sa, mb, sb), 3),
                "kid": round(qlib.kid(fa, fb, subsets=a.kid_subsets, seed=a.seed)[0], 5),
                "entropy": c["entropy"], "tv_to_real": c["tv_to_real"], "n": int(len(images))}

    r2 = None
    if a.real2:
        r2, _, _, _ = qlib.load_shards(a.real2)
        p2 = np.random.default_rng(a.seed + 1).permutation(len(r2))
        r2 = r2[p2]
        out["real_vs_real2"] = dict(versus(r2[:n]), real2=os.path.abspath(a.real2))

    rng = np.random.default_rng(a.seed + 7)
    x = b_img.astype(np.float32)
    deg = {}
    for sigma in (0.02, 0.05, 0.1, 0.2):
        noisy = np.clip(np.rint(x + rng.standard_normal(x.shape) * sigma * 255), 0, 255)
        deg[f"gauss_noise_{sigma}"] = versus(noisy.astype(np.uint8))
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(pad[:, dy:dy + x.shape[1], dx:dx + x.shape[2]] for dy in range(3)
               for dx in range(3)) / 9
    deg["box_blur_3x3"] = versus(np.rint(blur).astype(np.uint8))
    for px in (1, 2):  # down and right, wrapping around (the border is background)
        deg[f"shift_{px}px"] = versus(np.roll(b_img, (px, px), axis=(1, 2)))
    flat = b_img.reshape(n, -1, b_img.shape[3]).copy()
    for i in range(n):
        flat[i] = flat[i][rng.permutation(flat.shape[1])]
    deg["pixels_shuffled"] = versus(flat.reshape(b_img.shape))
    deg["uniform_noise"] = versus(rng.integers(0, 256, b_img.shape, dtype=np.uint8))
    # Mode loss at equal n: only images predicted in the kept classes, drawn from --real2 when given
    # (enough of them for n), else from the real images not in the first half (then fewer than n).
    pool = r2 if r2 is not None else r_images[perm[n:]]
    _, pp = qlib.forward(model, pool)
    pred = pp.argmax(1)
    for kept in (list(range(0, k, 2)), [0]):
        sel = np.flatnonzero(np.isin(pred, kept))[:n]
        deg[f"only_classes_{'_'.join(map(str, kept))}"] = versus(pool[sel])
    out["degraded"] = deg
    return out


if __name__ == "__main__":
    main()
