// main.c — ganc-bench: how fast each part of ganc is.
//   --layers        every convolution role of every G and D layer of the recipes, ours against
//                   cuDNN's fastest algorithm and cuBLAS where the layer is a GEMM (GPU)
//   --op NAME       one kernel at one shape (GPU)
//   --step CONFIG   whole training iterations (CPU or GPU), median ms, img/s, peak memory;
//                   with --profile, where the step's time goes (core/prof.h)
//   --loader DIR    the shard loader's images/s
//   --allreduce     the sum over data-parallel ranks of each network's parameter block
//                   (under mpirun -np N; core/comm.h)
//   --device-info   the GPU ganc would use; exit 77 ("SKIP: why") when there is none
// Recipes are found like every other path a user gives: relative to the working directory. No
// path of the machine ganc was built on is compiled in (the programs run from a bundle elsewhere).
#include "bench/bench.h"
#include "core/check.h"
#include "core/comm.h"
#include "core/device.h"
#include "core/util.h"
#include "data/loader.h"
#include "model/arch.h"
#include "ops/dispatch.h"
#include "train/config.h"
#include "train/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_SKIP = 77 }; // ctest's skip code: --device-info without a usable GPU

// The recipes --layers and --op read without --config: the shipped DCGAN ones, from the ganc
// folder (tests/gpu/run.sh runs there).
static const char *const DEFAULT_CONFIGS[] = {"configs/dcgan64.ini", "configs/fmnist32.ini"};

static void usage(FILE *f) {
  const int gpu = ganc_bench_has_gpu_modes();
  fprintf(
      f,
      "usage: ganc-bench MODE [options]\n"
      "\n"
      "modes:\n"
      "  --step CONFIG   whole training iterations of recipe CONFIG on synthetic batches:\n"
      "                  median ms per iteration (CUDA events on a GPU), img/s, peak memory\n"
      "                  [--device auto|cpu|cuda] [--backend ours|cudnn] [--batch N]\n"
      "                  [--steps N (20)] [--warmup N (5)] [--set section.key=value]...\n"
      "                  [--profile: as many steps again without a CUDA graph, each op timed\n"
      "                  and attributed to its network, node and pass; tables by op and by\n"
      "                  place, and with --csv FILE every place as CSV]\n"
      "  --loader DIR    the shard loader over DIR: images/s delivered to the consumer,\n"
      "                  median of --repeats passes of --images images after a warm-up pass\n"
      "                  [--batch N (128)] [--images N (4 epochs, >= 100000)] [--repeats N (5)]\n"
      "                  [--seed S] [--window-mb M (256; smaller than the dataset makes every\n"
      "                  epoch stream its chunks from the shards again)]\n"
      "  --variants      the convolution variants (train.conv_variant) and what each needs\n"
      "  --layers        every convolution role of every G and D layer of the recipes, ours\n"
      "                  against cuDNN's fastest algorithm and cuBLAS where GEMM-shaped, and "
      "every\n"
      "                  variant the GPU supports (the CSV: one column each)%s\n"
      "                  [--config FILE]... (default: %s and %s, from the ganc folder)\n"
      "                  [--batch N (each recipe's)] [--reps N (50)] [--csv FILE (also write\n"
      "                  the table as CSV; '-': CSV on stdout instead of the table)]\n"
      "  --op NAME       one convolution role (conv-fwd, conv-bwd-data, conv-bwd-weight) at\n"
      "                  --shape N,H,W,C,K,R,S,stride,pad%s [--reps N] [--csv FILE]\n"
      "  --allreduce     under `mpirun -np N`: the sum over the ranks of G's and D's gradient\n"
      "                  blocks (what each training step exchanges), median ms, algorithm and\n"
      "                  bus bandwidth (2(N-1)/N of the bytes), for each --config recipe\n"
      "                  (default: %s and configs/resnet64.ini) [--device auto|cpu|cuda]\n"
      "                  [--reps N (50)] [--set section.key=value]...\n"
      "  --device-info   the GPU ganc would use, one line; exit 77 with \"SKIP: <why>\" when\n"
      "                  there is none (tests/gpu/run.sh asks this first)\n"
      "  -h, --help      this text\n",
      gpu ? "" : " (GPU: not in this build)", DEFAULT_CONFIGS[0], DEFAULT_CONFIGS[1],
      gpu ? "" : " (GPU: not in this build)", DEFAULT_CONFIGS[0]);
}

// A whole number in [lo, hi] for option `opt`, or a usage error naming it.
static long long parse_num(const char *opt, const char *v, long long lo, long long hi) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi)
    ganc_die(GANC_EXIT_USAGE, "%s must be a whole number from %lld to %lld, not '%s'", opt, lo, hi,
             v);
  return x;
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
  qsort(rate, (size_t)repeats, sizeof(double), ganc_cmp_double);
  printf("loader: median %.0f images/s (min %.0f, max %.0f) over %d passes  [checksum %llu]\n",
         rate[repeats / 2], rate[0], rate[repeats - 1], repeats, (unsigned long long)checksum);
  free(rate);
  ganc_loader_close(L);
  return 0;
}

static int bench_step(const char *config, const char **sets, int nsets, const char *device,
                      int warmup, int steps, int profile, FILE *csv_file) {
  ganc_step_timing t;
  ganc_err err = {0};
  ganc_prof *prof = NULL;
  if (ganc_train_benchmark(config, sets, nsets, device, warmup, steps, &t, profile ? &prof : NULL,
                           &err))
    ganc_die_err(&err);
  printf("step: %s on %s: batch %d, median %.2f ms per iteration (min %.2f, %d steps after %d "
         "warm-up), %.1f img/s",
         config, t.device, t.batch, t.median_ms, t.min_ms, steps, warmup, t.img_per_s);
  if (t.peak_bytes) printf(", peak device memory %.1f MiB", t.peak_bytes / 1048576.0);
  if (t.graph) printf(", one CUDA graph per step");
  if (t.peak_bytes) printf(", the host %.3f ms to issue it", t.host_ms); // CUDA: asynchronous
  printf("\n");
  if (prof) {
    ganc_prof_report(prof, csv_file == stdout ? stderr : stdout, 40, t.graph ? t.median_ms : 0,
                     csv_file);
    ganc_prof_free(prof);
  }
  return 0;
}

// The bytes each step sums over the ranks: G's and D's parameter blocks (their gradients), per
// recipe at its own resolution (64x64x3 when the recipe follows the data).
static int bench_allreduce(int argc, char **argv, const char **configs, int nconfigs,
                           const char **sets, int nsets, const char *device, int reps) {
  ganc_comm comm;
  ganc_err err = {0};
  if (ganc_comm_init(&comm, &argc, &argv, &err)) ganc_die_err(&err);
  ganc_ctx ctx;
  if (ganc_ctx_init_device_at(&ctx, device, comm.local_rank, 1, 0, comm.rank ? NULL : stderr, &err))
    ganc_die_err(&err);
  char d[512];
  ganc_device_describe(&ctx, d, sizeof d);
  if (comm.rank == 0)
    printf("allreduce: %s on %s%s\n", comm.what, d,
           comm.size > 1 || comm.impl ? "" : " — one rank sums nothing: run under `mpirun -np N`");
  for (int k = 0; k < nconfigs; k++) {
    ganc_config c;
    ganc_config_defaults(&c);
    if (ganc_config_load_file(&c, configs[k], &err)) ganc_die_err(&err);
    for (int i = 0; i < nsets; i++)
      if (ganc_config_set(&c, sets[i], &err)) ganc_die_err(&err);
    if (!c.resolution) c.resolution = 64;
    if (!c.channels) c.channels = 3;
    if (!strcmp(c.conditional, "auto")) snprintf(c.conditional, sizeof c.conditional, "no");
    if (!strcmp(c.conditional, "yes") && !c.classes) c.classes = 10;
    if (ganc_config_validate(&c, &err)) ganc_die_err(&err);
    ganc_net nets[2];
    ganc_build_g(&nets[0], &c, "G");
    ganc_build_d(&nets[1], &c);
    for (int i = 0; i < 2; i++) {
      const size_t n = nets[i].nparam_floats;
      float *buf = ganc_alloc(&ctx, n);
      ganc_zero(&ctx, buf, n);
      const double t = ganc_comm_time_sum(&comm, &ctx, buf, n, 5, reps);
      const double bytes = (double)n * sizeof(float);
      const char *one = getenv("GANC_NCCL_ONE_RANK"); // one rank, still through NCCL
      if (comm.size == 1 && !(one && !strcmp(one, "1") && ctx.backend == GANC_BACKEND_CUDA))
        printf("allreduce: %s %s: %zu floats (%.2f MB): nothing to sum on one rank\n", configs[k],
               nets[i].name, n, bytes / 1e6);
      else if (comm.rank == 0)
        printf("allreduce: %s %s: %zu floats (%.2f MB), %d ranks: median %.3f ms, algorithm "
               "%.2f GB/s, bus %.2f GB/s\n",
               configs[k], nets[i].name, n, bytes / 1e6, comm.size, t * 1e3,
               t > 0 ? bytes / t / 1e9 : 0.0,
               t > 0 ? 2.0 * (comm.size - 1) / comm.size * bytes / t / 1e9 : 0.0);
      ganc_free(&ctx, buf);
      net_free(&ctx, &nets[i]);
    }
  }
  fflush(stdout);
  ganc_ctx_release(&ctx);
  ganc_comm_finalize(&comm);
  return 0;
}

static int device_info(void) {
  ganc_ctx ctx;
  ganc_err err = {0};
  char d[512];
  if (ganc_ctx_init_device(&ctx, "cuda", 1, 0, NULL, &err)) {
    // The reason only, without the --device prefix and hint: a question, not a failed request.
    char *why = err.msg, *nl = strchr(why, '\n');
    if (nl) *nl = 0;
    if (!strncmp(why, "--device cuda: ", 15)) why += 15;
    printf("SKIP: %s\n", why);
    return EXIT_SKIP;
  }
  ganc_device_describe(&ctx, d, sizeof d);
  printf("device: %s\n", d);
  ganc_ctx_release(&ctx);
  return 0;
}

int main(int argc, char **argv) {
  ganc_h5_no_atexit();
  const char *loader = NULL, *step = NULL, *device = "auto", *backend = NULL, *op = NULL;
  const char *shape = NULL, *csv = NULL, *configs[16], *sets[64];
  int nconfigs = 0, nsets = 0, layers = 0, info = 0, steps = 20, warmup = 5, reps = 50;
  int allreduce = 0, profile = 0;
  int batch = 0, repeats = 5;
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
    if (!strcmp(a, "--device-info")) {
      info = 1;
      continue;
    }
    if (!strcmp(a, "--variants")) {
      ganc_bench_variants(stdout);
      return 0;
    }
    if (!strcmp(a, "--allreduce")) {
      allreduce = 1;
      continue;
    }
    if (!strcmp(a, "--profile")) {
      profile = 1;
      continue;
    }
    static const char *const valued[] = {
        "--loader", "--step",   "--device",  "--backend", "--op",       "--shape",
        "--config", "--set",    "--csv",     "--steps",   "--warmup",   "--reps",
        "--batch",  "--images", "--repeats", "--seed",    "--window-mb"};
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
      known |= !strcmp(a, valued[k]);
    if (!known) ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see ganc-bench --help)", a);
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
    else if (!strcmp(a, "--csv"))
      csv = v;
    else if (!strcmp(a, "--config")) {
      if (nconfigs == 16) ganc_die(GANC_EXIT_USAGE, "at most 16 --config recipes");
      configs[nconfigs++] = v;
    } else if (!strcmp(a, "--set")) {
      if (nsets == 60) ganc_die(GANC_EXIT_USAGE, "at most 60 --set overrides");
      sets[nsets++] = v;
    } else if (!strcmp(a, "--steps"))
      steps = (int)parse_num(a, v, 1, 1000000);
    else if (!strcmp(a, "--warmup"))
      warmup = (int)parse_num(a, v, 0, 1000000);
    else if (!strcmp(a, "--reps"))
      reps = (int)parse_num(a, v, 1, 1000000);
    else if (!strcmp(a, "--batch"))
      batch = (int)parse_num(a, v, 1, 1 << 20);
    else if (!strcmp(a, "--images"))
      images = parse_num(a, v, 1, (long long)1 << 40);
    else if (!strcmp(a, "--repeats"))
      repeats = (int)parse_num(a, v, 1, 1000000);
    else if (!strcmp(a, "--seed"))
      seed = (uint64_t)parse_num(a, v, 0, INT64_MAX);
    else // --window-mb
      window_mb = (size_t)parse_num(a, v, 1, 1 << 20);
  }
  const int modes = (loader != NULL) + (step != NULL) + layers + (op != NULL) + info + allreduce;
  if (modes != 1) {
    if (modes > 1)
      ganc_die(GANC_EXIT_USAGE, "one mode at a time: --step, --loader, --layers, --op, "
                                "--allreduce or --device-info (see ganc-bench --help)");
    usage(stderr);
    return GANC_EXIT_USAGE;
  }
  if (info) return device_info();
  if (allreduce) {
    static const char *const ar_default[] = {"configs/dcgan64.ini", "configs/resnet64.ini"};
    for (int k = 0; !nconfigs && k < 2; k++)
      if (!ganc_is_file(ar_default[k]))
        ganc_die(GANC_EXIT_USAGE,
                 "--allreduce: %s not found from here\n---> HINT: run ganc-bench from the ganc "
                 "folder, or name the recipes with --config FILE",
                 ar_default[k]);
    if (!nconfigs) {
      configs[nconfigs++] = ar_default[0];
      configs[nconfigs++] = ar_default[1];
    }
    return bench_allreduce(argc, argv, configs, nconfigs, sets, nsets, device, reps);
  }
  if (loader) return bench_loader(loader, batch ? batch : 128, images, repeats, seed, window_mb);
  if (profile && !step)
    ganc_die(GANC_EXIT_USAGE, "--profile goes with --step (see ganc-bench --help)");
  FILE *csv_file = NULL; // the CSV copy of the table (--step: of --profile's), when asked for
  if (csv && !strcmp(csv, "-"))
    csv_file = stdout;
  else if (csv && !(csv_file = fopen(csv, "w")))
    ganc_die(GANC_EXIT_USAGE, "cannot write --csv %s: %s", csv, strerror(errno));
  int rc;
  if (step) {
    char bset[64], beset[64];
    if (batch) {
      snprintf(bset, sizeof bset, "train.batch=%d", batch);
      sets[nsets++] = bset;
    }
    if (backend) {
      snprintf(beset, sizeof beset, "train.backend=%s", backend);
      sets[nsets++] = beset;
    }
    rc = bench_step(step, sets, nsets, device, warmup, steps, profile, csv_file);
  } else if (layers) {
    if (!nconfigs) {
      for (int k = 0; k < 2; k++) {
        if (!ganc_is_file(DEFAULT_CONFIGS[k]))
          ganc_die(GANC_EXIT_USAGE,
                   "--layers: %s not found from here\n---> HINT: run ganc-bench from the ganc "
                   "folder, or name the recipes with --config FILE",
                   DEFAULT_CONFIGS[k]);
        configs[nconfigs++] = DEFAULT_CONFIGS[k];
      }
    }
    rc = ganc_bench_layers(configs, nconfigs, batch, reps, csv_file);
  } else {
    rc = ganc_bench_op(op, shape, reps, csv_file);
  }
  fflush(stdout);
  if (csv_file && csv_file != stdout && fclose(csv_file))
    ganc_die(GANC_EXIT_RUNTIME, "cannot write --csv %s: %s", csv, strerror(errno));
  return rc;
}
