#!/usr/bin/env python3
"""featnet.py — feature networks for ganc-metrics, in ganc's HDF5 layout (docs/METRICS.md).

  featnet.py inception --random SEED OUT.h5     FID's Inception-v3 graph with random weights
                                                (the tests' network; no download needed)
  featnet.py inception --from-pytorch-fid PTH OUT.h5
                                                the same graph with the weights of pytorch-fid's
                                                pt_inception-2015-12-05-6726825d.pth (needs torch)
  featnet.py run NET.h5 IMAGES.npy OUT.npy      features of uint8 images [N, H, W, C] by an
                                                independent NumPy implementation of the layout

The layout: root attributes ganc_featnet = 1, input_size, input_channels, feature_dim, name; group
/nodes with one subgroup per node ("0000", "0001", ... in order), each with attributes `op` and
`inputs` (node indices; -1 = the network's input) and, per op:
  conv      kernel [kh, kw], stride, pad [ph, pw], relu (0/1); datasets weight [K, C, kh, kw]
            (PyTorch's layout), optional bn_gamma, bn_beta, bn_mean, bn_var [K] with attribute
            bn_eps (an inference batch norm after the convolution), optional bias [K]
  maxpool   kernel, stride, pad
  avgpool   kernel, stride, pad, count_include_pad (0/1)
  concat    the inputs' channels in order
  mean      the mean over all positions: [N, C]
The last node is the output. Images enter as uint8, become v / 127.5 − 1 (pytorch-fid's
normalisation of [0, 1] images to [−1, 1]), a grayscale image is repeated to input_channels, and
the image is resized to input_size × input_size bilinearly (F.interpolate, align_corners=False).
"""
import sys

import h5py
import numpy as np


# ---- the graph -----------------------------------------------------------------------------------
class Graph:
    def __init__(self):
        self.nodes = []

    def add(self, op, inputs, **kw):
        self.nodes.append(dict(op=op, inputs=list(inputs), **kw))
        return len(self.nodes) - 1


def inception_fid(weights):
    """pytorch-fid's FIDInceptionV3 (Mixed_5b .. Mixed_7c with the FID block variants: average
    pools that do not count padding, Mixed_7c's max pool). weights(name, K, C, kh, kw) returns the
    conv weight and its batch norm for the module `name` (a pytorch-fid state-dict prefix)."""
    g = Graph()

    def conv(x, name, K, C, k, stride=1, pad=(0, 0)):
        kh, kw = k if isinstance(k, tuple) else (k, k)
        w = weights(name, K, C, kh, kw)
        return g.add("conv", [x], kernel=[kh, kw], stride=stride, pad=list(pad), relu=1, **w)

    def block_a(x, name, C, pool):
        b1 = conv(x, f"{name}.branch1x1", 64, C, 1)
        b5 = conv(conv(x, f"{name}.branch5x5_1", 48, C, 1), f"{name}.branch5x5_2", 64, 48, 5, pad=(2, 2))
        b3 = conv(x, f"{name}.branch3x3dbl_1", 64, C, 1)
        b3 = conv(b3, f"{name}.branch3x3dbl_2", 96, 64, 3, pad=(1, 1))
        b3 = conv(b3, f"{name}.branch3x3dbl_3", 96, 96, 3, pad=(1, 1))
        bp = g.add("avgpool", [x], kernel=3, stride=1, pad=1, count_include_pad=0)
        bp = conv(bp, f"{name}.branch_pool", pool, C, 1)
        return g.add("concat", [b1, b5, b3, bp]), 64 + 64 + 96 + pool

    def block_b(x, name, C):
        b3 = conv(x, f"{name}.branch3x3", 384, C, 3, stride=2)
        bd = conv(x, f"{name}.branch3x3dbl_1", 64, C, 1)
        bd = conv(bd, f"{name}.branch3x3dbl_2", 96, 64, 3, pad=(1, 1))
        bd = conv(bd, f"{name}.branch3x3dbl_3", 96, 96, 3, stride=2)
        bp = g.add("maxpool", [x], kernel=3, stride=2, pad=0)
        return g.add("concat", [b3, bd, bp]), 384 + 96 + C

    def block_c(x, name, C, c7):
        b1 = conv(x, f"{name}.branch1x1", 192, C, 1)
        b7 = conv(x, f"{name}.branch7x7_1", c7, C, 1)
        b7 = conv(b7, f"{name}.branch7x7_2", c7, c7, (1, 7), pad=(0, 3))
        b7 = conv(b7, f"{name}.branch7x7_3", 192, c7, (7, 1), pad=(3, 0))
        bd = conv(x, f"{name}.branch7x7dbl_1", c7, C, 1)
        bd = conv(bd, f"{name}.branch7x7dbl_2", c7, c7, (7, 1), pad=(3, 0))
        bd = conv(bd, f"{name}.branch7x7dbl_3", c7, c7, (1, 7), pad=(0, 3))
        bd = conv(bd, f"{name}.branch7x7dbl_4", c7, c7, (7, 1), pad=(3, 0))
        bd = conv(bd, f"{name}.branch7x7dbl_5", 192, c7, (1, 7), pad=(0, 3))
        bp = g.add("avgpool", [x], kernel=3, stride=1, pad=1, count_include_pad=0)
        bp = conv(bp, f"{name}.branch_pool", 192, C, 1)
        return g.add("concat", [b1, b7, bd, bp]), 768

    def block_d(x, name, C):
        b3 = conv(x, f"{name}.branch3x3_1", 192, C, 1)
        b3 = conv(b3, f"{name}.branch3x3_2", 320, 192, 3, stride=2)
        b7 = conv(x, f"{name}.branch7x7x3_1", 192, C, 1)
        b7 = conv(b7, f"{name}.branch7x7x3_2", 192, 192, (1, 7), pad=(0, 3))
        b7 = conv(b7, f"{name}.branch7x7x3_3", 192, 192, (7, 1), pad=(3, 0))
        b7 = conv(b7, f"{name}.branch7x7x3_4", 192, 192, 3, stride=2)
        bp = g.add("maxpool", [x], kernel=3, stride=2, pad=0)
        return g.add("concat", [b3, b7, bp]), 320 + 192 + C

    def block_e(x, name, C, max_pool):
        b1 = conv(x, f"{name}.branch1x1", 320, C, 1)
        b3 = conv(x, f"{name}.branch3x3_1", 384, C, 1)
        b3a = conv(b3, f"{name}.branch3x3_2a", 384, 384, (1, 3), pad=(0, 1))
        b3b = conv(b3, f"{name}.branch3x3_2b", 384, 384, (3, 1), pad=(1, 0))
        bd = conv(x, f"{name}.branch3x3dbl_1", 448, C, 1)
        bd = conv(bd, f"{name}.branch3x3dbl_2", 384, 448, 3, pad=(1, 1))
        bda = conv(bd, f"{name}.branch3x3dbl_3a", 384, 384, (1, 3), pad=(0, 1))
        bdb = conv(bd, f"{name}.branch3x3dbl_3b", 384, 384, (3, 1), pad=(1, 0))
        if max_pool:
            bp = g.add("maxpool", [x], kernel=3, stride=1, pad=1)
        else:
            bp = g.add("avgpool", [x], kernel=3, stride=1, pad=1, count_include_pad=0)
        bp = conv(bp, f"{name}.branch_pool", 192, C, 1)
        return g.add("concat", [b1, b3a, b3b, bda, bdb, bp]), 2048

    x = conv(-1, "Conv2d_1a_3x3", 32, 3, 3, stride=2)
    x = conv(x, "Conv2d_2a_3x3", 32, 32, 3)
    x = conv(x, "Conv2d_2b_3x3", 64, 32, 3, pad=(1, 1))
    x = g.add("maxpool", [x], kernel=3, stride=2, pad=0)
    x = conv(x, "Conv2d_3b_1x1", 80, 64, 1)
    x = conv(x, "Conv2d_4a_3x3", 192, 80, 3)
    x = g.add("maxpool", [x], kernel=3, stride=2, pad=0)
    x, C = block_a(x, "Mixed_5b", 192, 32)
    x, C = block_a(x, "Mixed_5c", C, 64)
    x, C = block_a(x, "Mixed_5d", C, 64)
    x, C = block_b(x, "Mixed_6a", C)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        x, C = block_c(x, name, C, c7)
    x, C = block_d(x, "Mixed_7a", C)
    x, C = block_e(x, "Mixed_7b", C, False)
    x, C = block_e(x, "Mixed_7c", C, True)
    g.add("mean", [x])
    return g, C


def random_weights(seed):
    rng = np.random.default_rng(seed)

    def w(name, K, C, kh, kw):
        fan_in = C * kh * kw
        return dict(weight=rng.normal(0, np.sqrt(2.0 / fan_in), (K, C, kh, kw)).astype(np.float32),
                    bn_gamma=rng.uniform(0.8, 1.2, K).astype(np.float32),
                    bn_beta=rng.normal(0, 0.1, K).astype(np.float32),
                    bn_mean=rng.normal(0, 0.1, K).astype(np.float32),
                    bn_var=rng.uniform(0.8, 1.2, K).astype(np.float32), bn_eps=1e-3)

    return w


def pytorch_fid_weights(path):
    import torch  # only here: converting needs PyTorch, nothing else does

    sd = torch.load(path, map_location="cpu")

    def w(name, K, C, kh, kw):
        t = lambda k: sd[f"{name}.{k}"].detach().cpu().numpy().astype(np.float32)
        weight = t("conv.weight")
        assert weight.shape == (K, C, kh, kw), (name, weight.shape, (K, C, kh, kw))
        return dict(weight=weight, bn_gamma=t("bn.weight"), bn_beta=t("bn.bias"),
                    bn_mean=t("bn.running_mean"), bn_var=t("bn.running_var"), bn_eps=1e-3)

    return w


def write(g, path, name, input_size=299, input_channels=3, feature_dim=2048):
    # libver="latest": HDF5's metadata checksums, which ganc requires (a damaged header of the
    # old layout is read out of bounds by HDF5 1.10 instead of being refused).
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs["ganc_featnet"] = 1
        f.attrs["name"] = np.bytes_(name)  # fixed-length strings: what ganc's reader takes
        f.attrs["input_size"] = input_size
        f.attrs["input_channels"] = input_channels
        f.attrs["feature_dim"] = feature_dim
        nodes = f.create_group("nodes")
        for i, n in enumerate(g.nodes):
            h = nodes.create_group(f"{i:04d}")
            h.attrs["op"] = np.bytes_(n["op"])
            h.attrs["inputs"] = np.array(n["inputs"], np.int32)
            for k, v in n.items():
                if k in ("op", "inputs"):
                    continue
                if isinstance(v, np.ndarray):
                    h[k] = v
                elif isinstance(v, list):
                    h.attrs[k] = np.array(v, np.int32)
                elif isinstance(v, float):
                    h.attrs[k] = np.float64(v)
                else:
                    h.attrs[k] = np.int32(v)


# ---- the NumPy implementation (float64 throughout) ----------------------------------------------
def resize_bilinear(x, P, Q):
    """x [N, H, W, C] → [N, P, Q, C] as F.interpolate(mode='bilinear', align_corners=False)."""
    N, H, W, C = x.shape

    def axis(out, size):
        s = np.maximum((np.arange(out) + 0.5) * size / out - 0.5, 0)
        i0 = np.minimum(np.floor(s).astype(int), size - 1)
        i1 = np.minimum(i0 + 1, size - 1)
        return i0, i1, s - i0

    r0, r1, b = axis(P, H)
    c0, c1, a = axis(Q, W)
    a = a[None, None, :, None]
    b = b[None, :, None, None]
    top = (1 - a) * x[:, r0][:, :, c0] + a * x[:, r0][:, :, c1]
    bot = (1 - a) * x[:, r1][:, :, c0] + a * x[:, r1][:, :, c1]
    return (1 - b) * top + b * bot


def conv(x, w, stride, ph, pw):
    """x [N, H, W, C], w [K, C, kh, kw] → [N, P, Q, K] (cross-correlation, zero padding)."""
    N, H, W, C = x.shape
    K, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    P = (H + 2 * ph - kh) // stride + 1
    Q = (W + 2 * pw - kw) // stride + 1
    cols = np.empty((N, P, Q, kh, kw, C))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i:i + stride * P:stride, j:j + stride * Q:stride, :]
    wm = w.transpose(2, 3, 1, 0).reshape(kh * kw * C, K).astype(np.float64)
    return (cols.reshape(N * P * Q, kh * kw * C) @ wm).reshape(N, P, Q, K)


def pool(x, k, stride, pad, mode, count_include_pad=0):
    N, H, W, C = x.shape
    P = (H + 2 * pad - k) // stride + 1
    Q = (W + 2 * pad - k) // stride + 1
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=fill)
    ones = np.pad(np.ones((1, H, W, 1)), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.full((N, P, Q, C), fill)
    cnt = np.zeros((1, P, Q, 1))
    for i in range(k):
        for j in range(k):
            win = xp[:, i:i + stride * P:stride, j:j + stride * Q:stride, :]
            out = np.maximum(out, win) if mode == "max" else out + win
            cnt += ones[:, i:i + stride * P:stride, j:j + stride * Q:stride, :]
    if mode == "max":
        return out
    return out / (k * k if count_include_pad else cnt)


def run(path, images):
    with h5py.File(path, "r") as f:
        size, chans = int(f.attrs["input_size"]), int(f.attrs["input_channels"])
        x = images.astype(np.float64) / 127.5 - 1.0
        if x.shape[3] == 1 and chans == 3:
            x = np.repeat(x, 3, axis=3)
        x = resize_bilinear(x, size, size)
        outs = []
        for name in sorted(f["nodes"]):
            h = f["nodes"][name]
            op = h.attrs["op"]
            op = op.decode() if isinstance(op, bytes) else op
            ins = [x if i < 0 else outs[i] for i in h.attrs["inputs"]]
            if op == "conv":
                ph, pw = (int(v) for v in h.attrs["pad"])
                y = conv(ins[0], h["weight"][...], int(h.attrs["stride"]), ph, pw)
                if "bn_gamma" in h:
                    g, b = h["bn_gamma"][...].astype(np.float64), h["bn_beta"][...].astype(np.float64)
                    m, v = h["bn_mean"][...].astype(np.float64), h["bn_var"][...].astype(np.float64)
                    y = (y - m) / np.sqrt(v + float(h.attrs["bn_eps"])) * g + b
                if "bias" in h:
                    y = y + h["bias"][...].astype(np.float64)
                if int(h.attrs["relu"]):
                    y = np.maximum(y, 0)
            elif op in ("maxpool", "avgpool"):
                y = pool(ins[0], int(h.attrs["kernel"]), int(h.attrs["stride"]), int(h.attrs["pad"]),
                         "max" if op == "maxpool" else "avg",
                         int(h.attrs.get("count_include_pad", 0)))
            elif op == "concat":
                y = np.concatenate(ins, axis=3)
            elif op == "mean":
                y = ins[0].mean(axis=(1, 2))
            else:
                raise SystemExit(f"unknown op {op}")
            outs.append(y)
        return outs[-1]


def main(argv):
    if len(argv) >= 4 and argv[0] == "inception" and argv[1] in ("--random", "--from-pytorch-fid"):
        if argv[1] == "--random":
            weights, name = random_weights(int(argv[2])), f"inception-v3-fid random seed {argv[2]}"
        else:
            weights, name = pytorch_fid_weights(argv[2]), "pt_inception-2015-12-05 (pytorch-fid)"
        g, C = inception_fid(weights)
        write(g, argv[3], name, feature_dim=C)
        print(f"wrote {argv[3]}: {len(g.nodes)} nodes, {C} features ({name})")
        return 0
    if len(argv) == 4 and argv[0] == "run":
        feats = run(argv[1], np.load(argv[2]))
        np.save(argv[3], feats)
        print(f"features {feats.shape}")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
