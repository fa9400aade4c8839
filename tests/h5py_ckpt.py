#!/usr/bin/python3
"""An independent reader of checkpoints: h5py opens a checkpoint that ganc-train wrote after a few
steps on Fashion-MNIST and checks its layout: G, G_ema and D parameters by layer name with the
PyTorch DCGAN shapes (as [R, S, C, K]), batch-norm running statistics, Adam moments and step
counts, the run's position and config as attributes. Exit 77 (skipped) without h5py or the data."""
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

prep, train, fmnist, work = sys.argv[1:5]
images = os.path.join(fmnist, "train-images-idx3-ubyte.gz")
if not os.path.exists(images):
    print(f"SKIP: {images} missing")
    sys.exit(77)
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
data, run = os.path.join(work, "data"), os.path.join(work, "run")
subprocess.run([prep, images, data, "--resolution", "32", "--transform", "pad", "--background", "black",
                "--max-images", "512"], check=True, stdout=subprocess.DEVNULL)
cfg = os.path.join(work, "tiny.ini")
with open(cfg, "w") as f:
    f.write("[model]\nresolution = 32\nchannels = 1\ng_base = 8\nd_base = 8\n"
            "[train]\nbatch = 16\nkimg = 0.064\nthreads = 1\n[log]\nsnapshot_kimg = 1\n")
subprocess.run([train, "--data", data, "--config", cfg, "--out", run], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
name = open(os.path.join(run, "latest")).read().strip()
with h5py.File(os.path.join(run, name), "r") as f:
    a = f.attrs
    # Strings are fixed-length (h5py reads them as bytes), every attribute is covered by a SHA-256.
    assert a["format"] == b"ganc-checkpoint" and int(a["format_version"]) == 2, dict(a)
    assert len(a["attr_sha256"]) == 64 and len(f["G"].attrs["attr_sha256"]) == 64
    assert int(a["step"]) == 4 and int(a["nimg"]) == 64, (a["step"], a["nimg"])
    config = a["config"].decode()
    assert "[model]" in config and "g_base = 8" in config
    assert int(a["loader_epoch"]) == 0 and int(a["loader_cursor"]) == 64
    assert int(a["dataset_fingerprint"]) != 0
    for net in ("G", "G_ema", "D"):
        assert net in f, net
        assert "params" in f[net] and "buffers" in f[net]
    w = f["G/params/b0.conv.weight"]  # the first transposed conv: adjoint [4, 4, C0, z]
    assert w.shape == (4, 4, 32, 100) and w.dtype == np.float32 and w.fletcher32, (w.shape, w.dtype)
    assert f["D/params/head.conv.weight"].shape == (4, 4, 32, 1)
    assert f["G/buffers/b0.bn.running_var"].shape == (32,)
    assert set(f["G/adam_m"].keys()) == set(f["G/params"].keys())
    assert int(f["G"].attrs["adam_t"]) == 4 and int(f["D"].attrs["adam_t"]) == 4
    assert "adam_m" not in f["G_ema"]
    g = f["G/params/b1.conv.weight"][...]
    assert np.isfinite(g).all() and 0.005 < g.std() < 0.05, g.std()  # N(0, 0.02) after 4 steps
    print(f"h5py {h5py.__version__}: checkpoint {name} reads cleanly "
          f"({sum(len(f[n]['params']) for n in ('G', 'D'))} parameter tensors)")
