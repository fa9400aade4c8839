"""fidref.py — FID and KID in NumPy (float64), independent of ganc's src/metrics/distances.c: FID
through the eigenvalues of S_a·S_b (the trace scipy's sqrtm route reaches), KID with StyleGAN2-ADA's
formula over one subset of all rows (two sets of one size). For tests/metrics_ref.py and
tests/featnet_ref.py."""
import numpy as np


def fid_ref(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    ma, mb = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ev = np.linalg.eigvals(sa @ sb)
    return float(((ma - mb) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(np.clip(ev.real, 0, None)).sum())


def kid_ref(real, fake):
    x, y = fake.astype(np.float64), real.astype(np.float64)
    n, m = x.shape[1], min(len(x), len(y))
    a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
    b = (x @ y.T / n + 1) ** 3
    return float(((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m)
