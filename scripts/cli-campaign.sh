#!/usr/bin/env bash
# cli-campaign.sh — the bad-CLI campaign of issue 10: 155 command lines of ganc-prep,
# ganc-train and ganc-sample, each run under an ASan+UBSan build with leak checking; prints one
# line per case (ok/BAD, exit status, expected status, SANITIZER when a report appeared, the first
# line of stderr) and a count. Needs Debian's dataset-fashion-mnist.
#   cmake -S . -B build-asan -DGANC_CUDA=OFF -DGANC_SANITIZE=ON && cmake --build build-asan -j2
#   B=$PWD/build-asan scripts/cli-campaign.sh   (./test.sh makes build-asan; docs/RELIABILITY.md)
# Also ctest's test_cli_campaign in every build (the sanitized one above all): exit 1 when any
# case is unexpected, 77 (skip) without the dataset. GANC_FMNIST_DIR: where the IDX files are.
B=${B:?set B to an ASan+UBSan build folder}
FM=${GANC_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
if [[ ! -f "$FM/t10k-images-idx3-ubyte.gz" ]]; then
  echo "SKIP: no $FM/t10k-images-idx3-ubyte.gz (Debian: dataset-fashion-mnist)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >tiny.ini <<'INI'
[model]
resolution = 32
channels = 1
z_dim = 8
g_base = 4
d_base = 4
[train]
batch = 8
kimg = 0.032
ema_kimg = 0.01
threads = 1
[log]
report_kimg = 0.016
snapshot_kimg = 0.016
keep = 3
grid = 2
INI
mkdir flat && echo text >flat/x.txt
"$B/ganc-prep" "$FM/t10k-images-idx3-ubyte.gz" data --resolution 32 \
  --max-images 64 >/dev/null 2>&1 || { echo "setup: ganc-prep failed"; exit 1; }
"$B/ganc-train" --data data --config tiny.ini --out run1 >/dev/null 2>&1 ||
  { echo "setup: ganc-train failed"; exit 1; }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
n=0; bad=0
run() { # expected-rc program args...
  local want=$1; shift
  rm -rf w; mkdir w
  "$B/$1" "${@:2}" >w.out 2>w.err; local rc=$?
  local san=""
  grep -qE "Sanitizer|runtime error" w.err && san=" SANITIZER"
  n=$((n+1))
  local mark="ok "; if [[ "$want" != "$rc" || -n "$san" ]]; then mark="BAD"; bad=$((bad+1)); fi
  printf '%s rc=%s want=%s%s | %s' "$mark" "$rc" "$want" "$san" "$*"
  printf ' | %s\n' "$(grep -v '^$' w.err | head -1 | cut -c1-150)"
}
D=data; C=tiny.ini; K=run1/ckpt-000000.032.h5
IDX=$FM/t10k-images-idx3-ubyte.gz
for p in ganc-prep ganc-train ganc-sample; do
  run 0 $p --help; run 0 $p -h; run 2 $p; run 2 $p --bogus; run 2 $p --bogus 1; run 2 $p -x
  run 2 $p --bogus=1; run 2 $p ''
done
# ganc-prep
run 2 ganc-prep $IDX w/o --resolution; run 2 ganc-prep $IDX w/o --resolution ''
run 2 ganc-prep $IDX w/o --resolution=; run 2 ganc-prep $IDX w/o --resolution abc
run 2 ganc-prep $IDX w/o --resolution -32; run 2 ganc-prep $IDX w/o --resolution 1e30
run 2 ganc-prep $IDX w/o --resolution nan; run 2 ganc-prep $IDX w/o --resolution inf
run 2 ganc-prep $IDX w/o --resolution 32.5; run 2 ganc-prep $IDX w/o --resolution 99999999999999999999999
run 2 ganc-prep $IDX w/o --max-images 0; run 2 ganc-prep $IDX w/o --max-images -1
run 2 ganc-prep $IDX w/o --max-images 1e300; run 2 ganc-prep $IDX w/o --jobs 0
run 2 ganc-prep $IDX w/o --jobs 100000; run 2 ganc-prep $IDX w/o --shard-size -5
run 2 ganc-prep $IDX w/o --max-pixels 0; run 2 ganc-prep $IDX w/o --min-size 0
run 2 ganc-prep $IDX w/o --channels 2; run 2 ganc-prep $IDX w/o --transform ''
run 2 ganc-prep $IDX w/o --force=yes; run 2 ganc-prep $IDX w/o extra
run 2 ganc-prep '' w/o; run 2 ganc-prep $IDX ''; run 2 ganc-prep --info ''; run 2 ganc-prep --info
run 2 ganc-prep --info w; run 2 ganc-prep --info data extra; run 2 ganc-prep --info /nonexistent
run 2 ganc-prep $IDX w/o --class-names ''; run 2 ganc-prep $IDX w/o --class-names ,
run 2 ganc-prep $IDX w/o --class-names a,b; run 2 ganc-prep $IDX w/o --class-names a,,c,d,e,f,g,h,i,j
run 2 ganc-prep $IDX w/o --class-names a,b,c,d,e,f,g,h,i,j,k
run 2 ganc-prep $IDX w/o --class-names a,b,c,d,e,f,g,h,i,j,
run 2 ganc-prep $IDX w/o --class-names a,a,c,d,e,f,g,h,i,j
run 2 ganc-prep $IDX w/o --labels none --class-names a,b,c,d,e,f,g,h,i,j
run 2 ganc-prep --class-names a; run 0 ganc-prep --class-names a --help; run 2 ganc-prep --class-names a --info /nonexistent
run 0 ganc-prep $IDX w/o "--class-names= a , b,c,d,e,f,g,h,i,j " --max-images 5 --resolution 8
run 2 ganc-prep $IDX w/o --class-names "$(printf "a\tb"),c"
run 2 ganc-prep flat w/o; run 2 ganc-prep w w/o --labels none; run 0 ganc-prep data/.. w/o --max-images 1 --channels 1 --resolution 8
run 0 ganc-prep $IDX w/o --class-names a,b,c,d,e,f,g,h,i,j --max-images 20 --resolution 8
run 2 ganc-prep w w/o --class-names a,b
run 2 ganc-prep /nonexistent w/o; run 2 ganc-prep /dev/null w/o; run 2 ganc-prep w w/o
run 2 ganc-prep $IDX data; run 2 ganc-prep --resolution --info data
# ganc-train
run 2 ganc-train --out; run 2 ganc-train --out ''; run 2 ganc-train --out=
run 2 ganc-train --data '' --config $C --out w/r; run 2 ganc-train --data $D --config '' --out w/r
run 2 ganc-train --data $D --config $C --out w/r --set; run 2 ganc-train --data $D --config $C --out w/r --set ''
run 2 ganc-train --data $D --config $C --out w/r --set x; run 2 ganc-train --data $D --config $C --out w/r --set =
run 2 ganc-train --data $D --config $C --out w/r --set train.kimg=abc
run 2 ganc-train --data $D --config $C --out w/r --set train.kimg=-1
run 2 ganc-train --data $D --config $C --out w/r --set train.kimg=nan
run 2 ganc-train --data $D --config $C --out w/r --set train.kimg=1e400
run 2 ganc-train --data $D --config $C --out w/r --set train.batch=99999999999999999999
run 2 ganc-train --data $D --config $C --out w/r --set train.seed=-1
run 2 ganc-train --data $D --config $C --out w/r --device ''; run 2 ganc-train --data $D --config $C --out w/r --device tpu
run 2 ganc-train --data $D --config $C --out w/r --device
run 2 ganc-train --data $D --out w/r; run 2 ganc-train --config $C --out w/r
run 2 ganc-train --data /nonexistent --config $C --out w/r; run 2 ganc-train --data $D --config /nonexistent --out w/r
run 2 ganc-train --out w/none --resume; run 2 ganc-train --resume; run 2 ganc-train --data $D --config $C --out run1
run 2 ganc-train --data $D --config $C --out w/r extra; run 2 ganc-train --resume=1 --out w/r
run 1 ganc-train --has-gpu-backend; run 0 ganc-train --print-config
run 0 ganc-train --data $D --config $C --out w/r --set train.kimg=0.016
# ganc-sample
run 2 ganc-sample --ckpt $K; run 2 ganc-sample --out w/a.png; run 2 ganc-sample --ckpt '' --out w/a.png
run 2 ganc-sample --ckpt $K --out ''; run 2 ganc-sample --ckpt $K --out w/a.png --outdir w/d
run 2 ganc-sample --ckpt $K --out w/a.png --seeds abc; run 2 ganc-sample --ckpt $K --out w/a.png --seeds ''
run 2 ganc-sample --ckpt $K --out w/a.png --seeds -5; run 2 ganc-sample --ckpt $K --out w/a.png --seeds 5-3
run 2 ganc-sample --ckpt $K --out w/a.png --seeds 0-99999999999999999999
run 2 ganc-sample --ckpt $K --out w/a.png --seeds 0-9223372036854775807
run 0 ganc-sample --ckpt $K --out w/a.png --seeds 9223372036854775807-9223372036854775807
run 2 ganc-sample --ckpt $K --out w/a.png --seeds 1,,2; run 2 ganc-sample --ckpt $K --out w/a.png --seeds ,
run 2 ganc-sample --ckpt $K --out w/a.png --n 0 --seed 1; run 2 ganc-sample --ckpt $K --out w/a.png --n -1 --seed 1
run 2 ganc-sample --ckpt $K --out w/a.png --n 4; run 2 ganc-sample --ckpt $K --out w/a.png --n 4 --seed -1
run 2 ganc-sample --ckpt $K --out w/a.png --n 99999999999999999999 --seed 0
run 2 ganc-sample --ckpt $K --out w/a.png --n 4 --seed 1e3; run 2 ganc-sample --ckpt $K --out w/a.png --seeds 1 --n 1 --seed 1
run 2 ganc-sample --ckpt $K --out w/a.png --grid 0x0; run 2 ganc-sample --ckpt $K --out w/a.png --grid 4294967297x8
run 2 ganc-sample --ckpt $K --out w/a.png --grid 8; run 2 ganc-sample --ckpt $K --out w/a.png --grid x
run 2 ganc-sample --ckpt $K --out w/a.png --grid 2x2 --seeds 0-9
run 2 ganc-sample --ckpt $K --out w/a.png --truncation nan; run 2 ganc-sample --ckpt $K --out w/a.png --truncation -1
run 2 ganc-sample --ckpt $K --out w/a.png --truncation ''; run 2 ganc-sample --ckpt $K --out w/a.png --truncation 3
run 2 ganc-sample --ckpt $K --out w/a.png --batch 0; run 2 ganc-sample --ckpt $K --out w/a.png --batch 1e9
run 2 ganc-sample --ckpt $K --out w/a.png --frames 0; run 2 ganc-sample --ckpt $K --out w/a.png --fps 1000
run 2 ganc-sample --ckpt $K --out w/a.png --interp 1,2; run 2 ganc-sample --ckpt $K --out w/a.gif --interp 1
run 2 ganc-sample --ckpt $K --out w/a.gif --interp 0-99999 --frames 100
run 2 ganc-sample --ckpt $K --out w/a.png --no-ema=1; run 2 ganc-sample --ckpt $K --out w/a.png --device ''
run 2 ganc-sample --ckpt $K --out w/a.png --device tpu; run 2 ganc-sample --ckpt /nonexistent --out w/a.png
run 2 ganc-sample --ckpt w --out w/a.png; run 1 ganc-sample --ckpt $K --out w/nodir/a.png
run 2 ganc-sample --ckpt $C --out w/a.png; run 2 ganc-sample --ckpt /dev/null --out w/a.png
run 2 ganc-sample --ckpt $K --out --seeds 1
run 0 ganc-sample --ckpt $K --out w/a.png --seeds 0-3; run 0 ganc-sample --ckpt run1 --outdir w/d --n 2 --seed 5
run 0 ganc-sample --ckpt $K --out w/a.gif --interp 1,2 --frames 2
echo "cases: $n  unexpected: $bad"
[[ $bad -eq 0 ]]
