"""ONNX Runtime on ganc-export's models (ctest test_onnx; run with the Python of
scripts/test-venv.sh): for a DCGAN generator (batch norm, transposed convolutions, tanh) and a
class-conditional ResNet one (conditional batch norm, nearest upsampling, residual adds), the
exported model's images for the latents ganc-sample saved must be ganc-sample's own pixels.
Tolerance: ONNX Runtime sums in float32 in its own order and folds batch norm into other
arithmetic, ganc sums its own way (batch norm in double), so outputs differ by rounding, ~1e-6 of
the [-1, 1] range; a pixel whose exact value sits within that of a rounding boundary can come out
one level apart. Required: every pixel within 1 level, at most 0.5% of them off by one, and the
float outputs within 1e-4 of the values the PNG levels round from.
Usage: onnx_check.py BIN_DIR WORK_DIR NAME CKPT [CLASSES]"""
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pngread import read_png  # noqa: E402

bindir, work, name, ckpt = sys.argv[1:5]
ncls = int(sys.argv[5]) if len(sys.argv) > 5 else 0


model = os.path.join(work, name + ".onnx")
samples = os.path.join(work, name + "-samples")
lat = os.path.join(work, name + "-z.npy")
subprocess.run([os.path.join(bindir, "ganc-export"), "--onnx", model, ckpt], check=True)
subprocess.run([os.path.join(bindir, "ganc-sample"), "--ckpt", ckpt, "--seeds", "0-11",
                "--outdir", samples, "--save-latents", lat, "--device", "cpu"], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
z = np.load(lat)
feeds = {"z": z}
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
if ncls:
    cls = np.load(lat + ".classes.npy")
    assert list(cls) == [s % ncls for s in range(12)], cls
    feeds["class"] = cls
names = sorted(i.name for i in sess.get_inputs())
assert names == sorted(feeds), f"model inputs {names}"
img = sess.run(["image"], feeds)[0]  # [N, C, R, R]
assert img.shape[0] == 12, img.shape
# ganc's pixels: round((v + 1) * 127.5) half away from zero (all values here are >= 0)
levels = np.clip(np.floor((img.astype(np.float64) + 1.0) * 127.5 + 0.5), 0, 255)
levels = levels.transpose(0, 2, 3, 1)  # NHWC, as the PNGs
want = np.stack([read_png(os.path.join(samples, f"seed{s:04d}.png")) for s in range(12)])
assert want.shape == levels.shape, (want.shape, levels.shape)
d = np.abs(levels - want.astype(np.float64))
off = int((d > 0).sum())
frac = off / d.size
# The float value must be within rounding of the level ganc wrote: |v·127.5 + 127.5 − level| ≤ 0.5 + slack.
slack = float(np.max(np.abs((img.astype(np.float64).transpose(0, 2, 3, 1) + 1.0) * 127.5 - want) - 0.5))
print(f"{name}: {d.size} pixels, {off} off by one level ({frac:.2e}), max {d.max():.0f}; "
      f"float output within {max(slack, 0.0) / 127.5:.2e} of ganc's rounding intervals")
assert d.max() <= 1, f"a pixel {d.max():.0f} levels from ganc-sample's"
assert frac <= 5e-3, f"{frac:.2e} of the pixels off by one (> 0.5%)"
assert slack / 127.5 <= 1e-4, f"float outputs {slack / 127.5:.2e} outside ganc's rounding intervals"
print(f"{name}: ONNX Runtime reproduces ganc-sample's pixels")
