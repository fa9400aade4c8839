#!/usr/bin/env bash
# test_train_sh.sh — ctest test_train_sh: ./train.sh on a user's image folder, as the README shows
# it (issue 11: "./train.sh --data FOLDER picks a sensible recipe for the folder's size and
# resolution and says which"):
#   - a nested image folder (two sub-folders: two classes) is prepared into shards under
#     datasets/<name>-<hash>-<resolution>/, once (a second run reuses them);
#   - under 5,000 images the recipe is configs/small-folder.ini, and train.sh says so and why;
#   - the run lands in checkpoints/00000-<shards>-small-folder/ with a checkpoint, follows the
#     data's resolution and classes (32x32 here, conditional: model.conditional = auto);
#   - ./train.sh --resume continues that run; --config FILE overrides the choice;
#   - a folder with no readable image gets ganc-prep's error, and nothing is trained.
# train.sh works in its own folder (datasets/, checkpoints/): it runs from a copy whose scripts/,
# configs/ and build/ are links to the repository's and to this build, so the tree stays clean.
# Usage: test_train_sh.sh REPO BUILD_DIR WORK_DIR
set -uo pipefail
R=$1 B=$2 W=$3
fail=0
ok() { echo "PASS $1"; }
bad() {
  echo "FAIL $1"
  fail=1
}
rm -rf "$W" && mkdir -p "$W/root" "$W/imgs/tops" "$W/imgs/shoes" "$W/empty"
cp "$R/train.sh" "$W/root/"
ln -s "$R/scripts" "$W/root/scripts"
ln -s "$R/configs" "$W/root/configs"
ln -s "$B" "$W/root/build"
# 24 small grayscale PNGs (12 per class, 40x40: ganc-prep resizes them to 32), written with zlib.
python3 - "$W/imgs" <<'EOF' || { echo "FAIL: could not write the test images"; exit 1; }
import os, random, struct, sys, zlib
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
rng = random.Random(7)
for k, cls in enumerate(["tops", "shoes"]):
    for i in range(12):
        w = h = 40
        rows = b"".join(b"\x00" + bytes((rng.randrange(256) if (x + y + k) % 3 else 40 * k)
                                         for x in range(w)) for y in range(h))
        png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
               + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
        open(os.path.join(sys.argv[1], cls, "img%02d.png" % i), "wb").write(png)
EOF
small=(--set train.kimg=0.016 --set train.batch=8 --set model.g_base=8 --set model.d_base=8
  --set model.g_max=16 --set model.d_max=16 --set log.snapshot_kimg=1 --set train.threads=1)
out=$(GANC_RESOLUTION=32 "$W/root/train.sh" --data "$W/imgs" "${small[@]}" 2>&1)
rc=$?
echo "$out" | sed 's/^/  | /' | tail -n 25
[[ $rc -eq 0 ]] && ok "train.sh --data IMAGE_FOLDER exits 0" || bad "train.sh --data IMAGE_FOLDER (exit $rc)"
shards=$(ls -d "$W/root/datasets/imgs-"*-32 2>/dev/null | head -n 1)
[[ -n "$shards" && -f "$shards/shard-00000.h5" ]] && ok "the folder was prepared into $shards" ||
  bad "no shards under $W/root/datasets/imgs-<hash>-32"
echo "$out" | grep -q "ganc: preparing $W/imgs into" && ok "train.sh says it prepares the folder" ||
  bad "train.sh did not say it prepares the folder"
echo "$out" | grep -q "ganc: recipe configs/small-folder.ini (24 images is a small folder" &&
  ok "train.sh picked small-folder.ini for 24 images and said why" ||
  bad "train.sh did not say it picked configs/small-folder.ini for 24 images"
run=$(ls -d "$W/root/checkpoints/00000-imgs-"*"-32-small-folder" 2>/dev/null | head -n 1)
if [[ -n "$run" && -e "$run/latest" ]]; then
  ok "the run is $run, with a checkpoint"
  grep -q '^resolution = 32' "$run/config.ini" && grep -q '^conditional = yes' "$run/config.ini" &&
    ok "it followed the data: 32x32, conditional on the two sub-folders" ||
    bad "the run's config.ini does not say resolution = 32 and conditional = yes"
else
  bad "no run with a checkpoint in $W/root/checkpoints/00000-imgs-<hash>-32-small-folder"
fi
# --resume: the newest run, continued to twice the images.
out=$(GANC_RESOLUTION=32 "$W/root/train.sh" --resume --set train.kimg=0.032 2>&1)
rc=$?
[[ $rc -eq 0 ]] && echo "$out" | grep -q "ganc: resuming checkpoints/00000-imgs-" &&
  ok "train.sh --resume continued the run" || bad "train.sh --resume (exit $rc): $(echo "$out" | tail -n 3)"
[[ -n "$run" && -f "$run/ckpt-000000.032.h5" ]] && ok "the resumed run reached 0.032 kimg" ||
  bad "no ckpt-000000.032.h5 in the resumed run"
# A second new run on the same folder: the shards are reused; --config picks another recipe.
out=$(GANC_RESOLUTION=32 "$W/root/train.sh" --data "$W/imgs" --config configs/resnet32.ini \
  "${small[@]}" 2>&1)
rc=$?
[[ $rc -eq 0 ]] && ! echo "$out" | grep -q "ganc: preparing" && ! echo "$out" | grep -q "ganc: recipe" &&
  [[ -d $(ls -d "$W/root/checkpoints/00001-imgs-"*"-32-resnet32" 2>/dev/null | head -n 1) ]] &&
  ok "a second run reused the shards and took --config resnet32.ini" ||
  bad "second run (exit $rc): $(echo "$out" | tail -n 3)"
# A folder with no image: ganc-prep's error, exit non-zero, no run.
out=$(GANC_RESOLUTION=32 "$W/root/train.sh" --data "$W/empty" "${small[@]}" 2>&1)
rc=$?
[[ $rc -ne 0 && ! -d $(ls -d "$W/root/checkpoints/00002-"* 2>/dev/null | head -n 1) ]] &&
  ok "an empty folder is refused (exit $rc: $(echo "$out" | grep -m1 -i error))" ||
  bad "an empty folder was not refused (exit $rc)"
exit $fail
