"""TensorBoard's own reader on ganc-train's event files (ctest test_tensorboard; run with the
Python of scripts/test-venv.sh). A run logs 4 reports and 2 grids, is cut back to its first
checkpoint as if killed after logging past it, and is resumed: TensorBoard's event accumulator must
then read every scalar once per report with the values of log.jsonl, and the reals and fakes grids
as the PNGs the run folder holds, the interrupted run's events past its checkpoint dropped.
Usage: tb_read.py GANC_TRAIN DATA_DIR WORK_DIR CONFIG"""
import json
import os
import shutil
import subprocess
import sys

from tensorboard.backend.event_processing import event_accumulator

train, data, work, config = sys.argv[1:5]
run = os.path.join(work, "run")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
common = ["--set", "train.batch=32", "--set", "log.report_kimg=0.064", "--set",
          "log.snapshot_kimg=0.128", "--set", "train.threads=1", "--set", "log.keep=0"]
subprocess.run([train, "--data", data, "--config", config, "--out", run, "--set",
                "train.kimg=0.256"] + common, check=True, stdout=subprocess.DEVNULL)
# As if killed after logging kimg 0.192 and 0.256 but before its second checkpoint.
os.remove(os.path.join(run, "ckpt-000000.256.h5"))
with open(os.path.join(run, "latest"), "w") as f:
    f.write("ckpt-000000.128.h5\n")
subprocess.run([train, "--out", run, "--resume", "--set", "train.kimg=0.384"], check=True,
               stdout=subprocess.DEVNULL)

files = sorted(n for n in os.listdir(run) if "tfevents" in n)
assert len(files) == 2, f"want one events file per start, got {files}"
acc = event_accumulator.EventAccumulator(run, size_guidance={"scalars": 0, "images": 0})
acc.Reload()
tags = acc.Tags()
want_scalars = ["loss/D", "loss/G", "D/x", "D/G_z", "D/logit_x", "D/logit_G_z",
                "speed/img_per_s", "speed/sec_per_kimg"]
keys = {"loss/D": "loss_D", "loss/G": "loss_G", "D/x": "D_x", "D/G_z": "D_G_z",
        "D/logit_x": "logit_x", "D/logit_G_z": "logit_G_z", "speed/img_per_s": "img_per_s",
        "speed/sec_per_kimg": "sec_per_kimg"}
missing = [t for t in want_scalars if t not in tags["scalars"]]
assert not missing, f"scalar tags missing: {missing} (have {tags['scalars']})"
log = [json.loads(line) for line in open(os.path.join(run, "log.jsonl"))]
steps = [round(r["kimg"] * 1000) for r in log]
assert steps == [64, 128, 192, 256, 320, 384], f"log.jsonl steps {steps}"
for t in want_scalars:
    ev = acc.Scalars(t)
    got = [e.step for e in ev]
    assert got == steps, f"{t}: steps {got}, want {steps} (each report once, the cut ones dropped)"
    for e, r in zip(ev, log):
        want = r[keys[t]]
        # float32 in the event, 6 decimals in log.jsonl (2 for img/s, 3 for s/kimg)
        tol = 1e-5 * max(1.0, abs(want)) + (0.006 if t.startswith("speed/") else 1e-6)
        assert abs(e.value - want) <= tol, f"{t} at {e.step}: {e.value} vs log.jsonl {want}"
print(f"scalars: {len(want_scalars)} tags x {len(steps)} reports read back, equal to log.jsonl")

assert set(tags["images"]) >= {"reals", "fakes"}, f"image tags {tags['images']}"
reals = acc.Images("reals")
fakes = acc.Images("fakes")
assert [e.step for e in reals] == [0], f"reals at {[e.step for e in reals]}"
assert [e.step for e in fakes] == [128, 256, 384], f"fakes at {[e.step for e in fakes]}"
for e, name in zip([reals[0]] + fakes, ["reals.png", "fakes-000000.128.png",
                                        "fakes-000000.256.png", "fakes-000000.384.png"]):
    png = open(os.path.join(run, name), "rb").read()
    assert e.encoded_image_string == png, f"{name}: the event's image is not the run's PNG"
    assert (e.width, e.height) == (256, 256), f"{name}: {e.width}x{e.height}"
print("images: reals and 3 fakes grids read back, byte-equal to the run's PNGs "
      "(the interrupted run's grid at 256 replaced by the resumed run's)")
