#!/usr/bin/python3
"""An independent reader: h5py opens a shard that ganc-prep wrote from Fashion-MNIST and checks its
shape, dtype, attributes, labels and pixels against the IDX files read here with gzip/numpy.
Exit 77 (ctest: skipped) when h5py or the dataset is missing."""
import gzip
import os
import subprocess
import shutil
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # Debian's python3-h5py is installed by scripts/deps.sh --test
    print(f"SKIP: {e}")
    sys.exit(77)

prep, fmnist, work = sys.argv[1], sys.argv[2], sys.argv[3]
images_path = os.path.join(fmnist, "train-images-idx3-ubyte.gz")
labels_path = os.path.join(fmnist, "train-labels-idx1-ubyte.gz")
if not os.path.exists(images_path):
    print(f"SKIP: {images_path} missing")
    sys.exit(77)

shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
out = os.path.join(work, "shards")
n = 3000
subprocess.run([prep, images_path, out, "--resolution", "32", "--transform", "pad",
                "--background", "black", "--max-images", str(n), "--shard-size", "1000"],
               check=True, stdout=subprocess.DEVNULL)

raw = gzip.open(images_path).read()
idx = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:n]
lab = np.frombuffer(gzip.open(labels_path).read(), dtype=np.uint8, offset=8)[:n]

shards = sorted(f for f in os.listdir(out) if f.startswith("shard-"))
assert shards == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"], shards
at = 0
for name in shards:
    with h5py.File(os.path.join(out, name), "r") as f:
        im, lb, src = f["images"], f["labels"], f["sources"]
        assert im.dtype == np.uint8 and im.shape == (1000, 32, 32, 1), (im.dtype, im.shape)
        assert lb.dtype == np.int32 and lb.shape == (1000,), (lb.dtype, lb.shape)
        # Strings are fixed-length (h5py reads them as bytes): a variable-length string lives in
        # HDF5's unchecksummed global heap.
        assert f.attrs["format"] == b"ganc-shards", f.attrs["format"]
        assert int(f.attrs["format_version"]) == 2
        assert len(f.attrs["attr_sha256"]) == 64
        assert int(f.attrs["resolution"]) == 32 and int(f.attrs["channels"]) == 1
        assert int(f.attrs["image_count"]) == 1000
        names = [c.decode() for c in f.attrs["class_names"]]
        assert names[0] == "T-shirt/top" and names[9] == "Ankle boot", names
        px = im[...]
        # A 2-pixel black border around the unchanged 28x28 image.
        assert np.array_equal(px[:, 2:30, 2:30, 0], idx[at:at + 1000])
        assert px[:, :2].max() == 0 and px[:, 30:].max() == 0
        assert px[:, :, :2].max() == 0 and px[:, :, 30:].max() == 0
        assert np.array_equal(lb[...], lab[at:at + 1000].astype(np.int32))
        s = src[5].decode()
        assert s == f"train-images-idx3-ubyte.gz#{at + 5}", s
        assert src.dtype.kind == "S" and src.fletcher32, (src.dtype, src.fletcher32)
        assert lb.fletcher32
        assert im.chunks[0] >= 1 and im.chunks[1:] == (32, 32, 1), im.chunks
        assert im.fletcher32
        # HDF5 1.10's layout: superblock v3, whose metadata (object headers, chunk indexes)
        # carries checksums.
        assert f.id.get_create_plist().get_version()[0] >= 2
    at += 1000
print(f"h5py {h5py.__version__}: {len(shards)} shards, {at} images, pixels and labels match the IDX files")
