// main.c — ganc-bench: how fast each part of ganc is.
//   --layers       every convolution role of every G and D layer of the shipped configs, ours
//                  against cuDNN's fastest algorithm and cuBLAS where the layer is a GEMM (GPU)
//   --op NAME      one kernel at one shape (GPU)
//   --step CONFIG  whole training iterations (CPU or GPU), median ms, img/s, peak memory
//   --loader DIR   the shard loader's images/s
#include "bench/bench.h"
#include "core/check.h"
#include "core/util.h"
#include "data/loader.h"
#include "train/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fputs("usage: ganc-bench --loader DIR [--batch N] [--images N] [--repeats N] [--seed S] "
        "[--window-mb M]\n"
        "\n"
        "  --loader DIR   time the shard loader over DIR: images/s delivered to the consumer,\n"
        "                 median of --repeats passes of --images images (after one warm-up pass)\n"
        "  --batch N      batch size (default 128)\n"
        "  --images N     images per timed pass (default: 4 epochs' worth, at least 100000)\n"
        "  --repeats N    timed passes (default 5)\n"
        "  --window-mb M  shuffle window in MiB (default 256); smaller than the dataset makes\n"
        "                 every epoch stream its chunks from the shards again\n",
        f);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int bench_loader(const char *dir, int batch, int64_t images, int repeats, uint64_t seed,
                        size_t window_mb) {
  ganc_loader *L;
  ganc_err err = {0};
  ganc_loader_opts o = {.batch = batch, .seed = seed, .window_bytes = window_mb << 20};
  if (ganc_loader_open(dir, &o, NULL, &L, &err)) ganc_die_err(&err);
  const ganc_dataset *ds = ganc_loader_dataset(L);
  if (images <= 0) images = ds->count * 4 > 100000 ? ds->count * 4 : 100000;
  int64_t nb = (images + batch - 1) / batch;
  printf("loader: %s, %lld images of %dx%dx%d, batch %d, %lld batches per pass, window %s\n", dir,
         (long long)ds->count, ds->meta.resolution, ds->meta.resolution, ds->meta.channels, batch,
         (long long)nb, window_mb ? "set by --window-mb" : "default (256 MiB)");
  if (window_mb && (int64_t)(window_mb << 20) < ds->count * (int64_t)ds->image_bytes)
    printf(
        "loader: windows smaller than the dataset: every epoch re-reads every chunk from HDF5\n");
  double *rate = xmalloc(sizeof(double) * (size_t)repeats);
  uint64_t checksum = 0;
  for (int r = -1; r < repeats; r++) { // r = -1: warm-up (page cache, first window read)
    double t0 = ganc_now();
    for (int64_t k = 0; k < nb; k++) {
      const ganc_batch *b;
      if (ganc_loader_next(L, &b, &err)) ganc_die_err(&err);
      checksum += b->images[(size_t)(k % b->n) * ds->image_bytes] + (uint64_t)b->index[0];
    }
    double dt = ganc_now() - t0;
    if (r >= 0) rate[r] = (double)(nb * batch) / dt;
  }
  qsort(rate, (size_t)repeats, sizeof(double), cmp_d);
  printf("loader: median %.0f images/s (min %.0f, max %.0f) over %d passes  [checksum %llu]\n",
         rate[repeats / 2], rate[0], rate[repeats - 1], repeats, (unsigned long long)checksum);
  free(rate);
  ganc_loader_close(L);
  return 0;
}

int main(int argc, char **argv) {
  const char *loader = NULL, *step = NULL, *device = "auto", *backend = NULL, *op = NULL;
  const char *shape = NULL, *configs[16], *sets[64];
  int nconfigs = 0, nsets = 0, layers = 0, csv = 0, steps = 20, warmup = 5, reps = 50;
  int batch_set = 0;
  int batch = 128, repeats = 5;
  int64_t images = 0;
  uint64_t seed = 0;
  size_t window_mb = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--layers")) {
      layers = 1;
      continue;
    }
    if (!strcmp(a, "--csv")) {
      csv = 1;
      continue;
    }
    if (i + 1 >= argc) ganc_die(GANC_EXIT_USAGE, "%s needs a value (see ganc-bench --help)", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--loader"))
      loader = v;
    else if (!strcmp(a, "--step"))
      step = v;
    else if (!strcmp(a, "--device"))
      device = v;
    else if (!strcmp(a, "--backend"))
      backend = v;
    else if (!strcmp(a, "--op"))
      op = v;
    else if (!strcmp(a, "--shape"))
      shape = v;
    else if (!strcmp(a, "--config") && nconfigs < 16)
      configs[nconfigs++] = v;
    else if (!strcmp(a, "--set") && nsets < 60)
      sets[nsets++] = v;
    else if (!strcmp(a, "--steps"))
      steps = atoi(v);
    else if (!strcmp(a, "--warmup"))
      warmup = atoi(v);
    else if (!strcmp(a, "--reps"))
      reps = atoi(v);
    else if (!strcmp(a, "--batch"))
      batch = atoi(v), batch_set = 1;
    else if (!strcmp(a, "--images"))
      images = atoll(v);
    else if (!strcmp(a, "--repeats"))
      repeats = atoi(v);
    else if (!strcmp(a, "--seed"))
      seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--window-mb"))
      window_mb = (size_t)atoll(v);
    else
      ganc_die(GANC_EXIT_USAGE, "unknown option %s (see ganc-bench --help)", a);
  }
  if (batch < 1 || repeats < 1 || steps < 1 || warmup < 0 || reps < 1)
    ganc_die(GANC_EXIT_USAGE, "--batch, --repeats, --steps and --reps must be >= 1");
  if (loader) return bench_loader(loader, batch, images, repeats, seed, window_mb);
  if (step) {
    char bset[64], beset[64];
    if (batch_set && nsets < 62) {
      snprintf(bset, sizeof bset, "train.batch=%d", batch);
      sets[nsets++] = bset;
    }
    if (backend && nsets < 62) {
      snprintf(beset, sizeof beset, "train.backend=%s", backend);
      sets[nsets++] = beset;
    }
    ganc_step_timing t;
    ganc_err err = {0};
    if (ganc_train_benchmark(step, sets, nsets, device, warmup, steps, &t, &err))
      ganc_die_err(&err);
    printf("step: %s on %s: batch %d, median %.2f ms per iteration (min %.2f, %d steps after %d "
           "warm-up), %.1f img/s",
           step, t.device, t.batch, t.median_ms, t.min_ms, steps, warmup, t.img_per_s);
    if (t.peak_bytes) printf(", peak device memory %.1f MiB", t.peak_bytes / 1048576.0);
    printf("\n");
    return 0;
  }
  if (layers || op) {
    const char *defaults[2] = {GANC_SOURCE_DIR "/configs/dcgan64.ini",
                               GANC_SOURCE_DIR "/configs/fmnist32.ini"};
    if (!nconfigs) {
      configs[0] = defaults[0];
      configs[1] = defaults[1];
      nconfigs = 2;
    }
    return layers ? ganc_bench_layers(configs, nconfigs, batch_set ? batch : 0, reps, csv)
                  : ganc_bench_op(op, shape, reps, csv);
  }
  usage(stderr);
  return GANC_EXIT_USAGE;
}
