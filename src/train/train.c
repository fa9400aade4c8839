// train.c — ganc-train: the adversarial loop, its logs, snapshots and checkpoints, and resume.
//
// One step, top to bottom (as the PyTorch DCGAN example, one latent batch per step):
//   sample    real batch x from the loader; latents z (Philox: seed, row = step·B + i)
//   D step    D(x) vs 1 and D(G(z)) vs 0, one Adam step on D
//   G step    D(G(z)) vs 1 through the updated D (D's weight gradients not computed), Adam on G
//   EMA       G_ema ← β G_ema + (1 − β) G
//   log       every report_kimg: log.jsonl and the console
//   snapshot  every snapshot_kimg: fakes grid from G_ema, checkpoint, `latest` pointer
// Everything random is a function of (seed, step), and the loader's position is saved, so a run
// resumed from a checkpoint computes bit-identical parameters to one that never stopped.
//
// Data-parallel (`mpirun -np N ganc-train ...`, core/comm.h): train.batch is the global batch;
// rank r trains on rows [r·b, (r+1)·b) of it (b = batch / N: the loader's share, and the
// latents, flips, fake labels and DiffAugment draws of those global rows), each loss is scaled
// so that the sum over ranks of the gradients is the global batch's mean gradient, and each
// network's gradient block is summed over the ranks (one call) before its Adam step, which every
// rank then takes identically. Rank 0 alone writes the run folder; every rank reads the same
// checkpoint on resume. A stop signal or a non-finite loss on any rank stops every rank at the
// same step.
#include "train/train.h"

#include "core/check.h"
#include "core/comm.h"
#include "core/device.h"
#include "core/philox.h"
#include "core/util.h"
#include "data/loader.h"
#include "io/imgio.h"
#include "io/tb.h"
#include "metrics/distances.h"
#include "metrics/featnet.h"
#include "model/arch.h"
#include "ops/dispatch.h"
#include "ops/lecam_core.h" // ganc_lecam_init
#include "train/checkpoint.h"
#include "train/config.h"

#include <dirent.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

// Set by SIGINT/SIGTERM: finish the step, checkpoint, exit 0. The only file-scope state, since a
// signal handler can reach nothing else.
static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

typedef struct trainer {
  ganc_ctx ctx;
  ganc_comm comm; // the ranks (one without a launcher)
  int lead;       // rank 0: writes the run folder, the logs and the console
  ganc_config cfg;
  char *cfg_text;
  const char *run_dir;
  char *data_dir;
  ganc_loader *loader;
  const ganc_dataset *ds;
  ganc_net G, G_ema, D;
  int B, R, C;
  int Bg, row0; // the global batch (train.batch) and this rank's first row of it (B = Bg / ranks)
  int ncls;     // classes of a conditional model (0: unconditional)
  // Conditional: the real images' labels and the fakes' drawn ones (backend int32 [B]); the
  // fakes' on the host ([B]).
  int32_t *labels_dev, *flabels_dev, *host_flabels;
  float *x, *z, *dlogit, *loss; // backend: reals [B,R,R,C], latents [B,1,1,nz], [B], [1]
  float *host_z, *host_logit;
  uint8_t *u8;                // host [B·R·R·C] (the holdout's images)
  uint8_t *flip_dev, *u8_dev; // backend [B], [B·R·R·C]
  // The step's values that its ops read from backend memory (ops.h): written on the host
  // (pinned where CUDA allows) and uploaded before each step, so that one captured graph replays
  // every step (train.cuda_graph).
  ganc_step_args *host_args, *args_dev;
  int host_args_pinned;
  // Statistics summed on the backend since the last report (step_stats): D on reals (loss, Σσ,
  // Σlogit), D on fakes (the same), G (loss); [9] doubles.
  double *acc_dev;
  // train.lecam's moving averages (ops/lecam_core.h: state [4], backend), NULL when it is off.
  double *lecam_dev;
  // augment.p on the backend (what D's augmentations read; NULL when it is 1 and fixed), and
  // ADA's controller (augment.ada_target > 0): [0..1] this step's signs of D on its reals, [2..4]
  // the state, [5..6] the sum of D's outputs on this step's fakes (ops/augment_core.h); NULL
  // when ADA is off. Driven by the held-out ratio instead, only p and [4] (the last r_v) are
  // used, set at the reports on the host, and ada_real is NULL.
  float *aug_p_dev;
  double *ada_dev;
  float *ada_real;     // ADA: D's outputs on this step's reals [B], kept for ada_signs
  int ada_holdout;     // ADA driven by the held-out ratio (augment.ada_signal = holdout)
  int use_graph;       // train.cuda_graph resolved
  ganc_graph *graph;   // the captured step, or NULL
  unsigned graph_gen;  // ganc_memory_generation when captured
  int64_t eager_steps; // steps run without the graph in this process (the first captures nothing)
  int captures;        // how many times the step was captured (for the log)
  int64_t step, nimg;
  uint64_t fingerprint;
  ganc_loader_state start_pos;
  FILE *log;
  ganc_tb *tb; // TensorBoard events (log.tensorboard; rank 0), NULL when off or after a failure
  // FID during training (metrics.featnet; rank 0): the network, and the reals' statistics once
  ganc_featnet *fn;
  ganc_feat_stats fid_real;
} trainer;

// train.precision, train.conv_variant, train.bf16_activations, train.fuse_activations and
// train.recompute_batchnorm onto the context (T.cfg outlives it).
static void ctx_set_precision(ganc_ctx *ctx, const ganc_config *c) {
  ctx->precision = !strcmp(c->precision, "bf16")   ? GANC_PREC_BF16
                   : !strcmp(c->precision, "tf32") ? GANC_PREC_TF32
                                                   : GANC_PREC_FP32;
  ctx->conv_variant = strcmp(c->conv_variant, "auto") ? c->conv_variant : NULL;
  ctx->bf16_store = c->bf16_activations && ctx->precision == GANC_PREC_BF16;
  ctx->no_act_fusion = !c->fuse_activations;
  ctx->no_bn_stats_fusion = !c->fuse_batchnorm_stats;
  ctx->recompute_bn = c->recompute_batchnorm;
}

static void usage(FILE *f) {
  fputs("usage: ganc-train --data DIR --config FILE --out RUN_DIR [options]\n"
        "       ganc-train --out RUN_DIR --resume [options]\n"
        "\n"
        "Trains a GAN on the shards in DIR (made by ganc-prep) and writes RUN_DIR: config.ini,\n"
        "log.jsonl, reals.png, fakes-<kimg>.png, ckpt-<kimg>.h5 checkpoints and `latest`.\n"
        "\n"
        "options:\n"
        "  --data DIR          shard folder (on --resume: defaults to the run's own)\n"
        "  --config FILE       training recipe (configs/*.ini; keys in configs/reference.ini)\n"
        "  --out RUN_DIR       run folder; refused if it already holds a run, unless --resume\n"
        "  --resume            continue RUN_DIR from its latest checkpoint\n"
        "  --set SECTION.KEY=VALUE   override one config key (repeatable)\n"
        "  --device auto|cpu|cuda    where to train (default: the config's train.device)\n"
        "  --force             resume even with another dataset or an incompatible config\n"
        "  --print-config      print the reference config (every key, documented) and exit\n"
        "  --has-gpu-backend   exit 0 when training would run on a GPU here, else 1 (for scripts)\n"
        "  -h, --help          this text\n"
        "\n"
        "Ctrl-C (SIGINT) or SIGTERM: finish the current step, write a checkpoint, exit 0.\n"
        "\n"
        "Data-parallel: `mpirun -np N ganc-train ...` (or srun) trains on N ranks, each on its\n"
        "share of every train.batch; rank 0 writes the run. train.batchnorm = sync for the\n"
        "one-process batch-norm statistics.\n",
        f);
}

// ---- small helpers -----------------------------------------------------------------------------
static int all_finite(ganc_ctx *ctx, const float *p, size_t n) {
  float *h = xmalloc(n * sizeof(float));
  ganc_download(ctx, h, p, n);
  int ok = 1;
  for (size_t i = 0; i < n && ok; i++)
    ok = isfinite(h[i]);
  free(h);
  return ok;
}

static void ckpt_name(int64_t nimg, char *buf, size_t n) {
  snprintf(buf, n, "ckpt-%010.3f.h5", (double)nimg / 1000.0);
}

// Atomically replaces RUN_DIR/latest with the name of the newest checkpoint.
static void write_latest(const char *run_dir, const char *name) {
  char path[4200], tmp[4300];
  snprintf(path, sizeof path, "%s/latest", run_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f || fprintf(f, "%s\n", name) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    if (f) fclose(f);
    ganc_die(GANC_EXIT_RUNTIME, "cannot write %s: %s", tmp, strerror(errno));
  }
  fclose(f);
  CHECK_SYS(rename(tmp, path));
}

// By the kimg in the name, so the order stays right past the zero padding's width.
static int cmp_ckpt(const void *a, const void *b) {
  double x = atof(*(char *const *)a + 5), y = atof(*(char *const *)b + 5);
  return (x > y) - (x < y);
}

// ckpt-*.h5 names in run_dir, oldest first.
static char **list_ckpts(const char *run_dir, int *n) {
  *n = 0;
  DIR *d = opendir(run_dir);
  if (!d) return NULL;
  char **v = NULL;
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (strncmp(e->d_name, "ckpt-", 5) || l < 9 || strcmp(e->d_name + l - 3, ".h5")) continue;
    if (strstr(e->d_name, ".tmp-")) continue;
    if (*n == cap) v = xrealloc(v, sizeof(char *) * (size_t)(cap = cap ? cap * 2 : 16));
    v[(*n)++] = xstrdup(e->d_name);
  }
  closedir(d);
  if (*n) qsort(v, (size_t)*n, sizeof(char *), cmp_ckpt);
  return v;
}

static void free_list(char **v, int n) {
  for (int i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

// ---- images for people
// ---------------------------------------------------------------------------
static void write_grid_png(trainer *T, const char *name, const uint8_t *imgs, int n, int machine) {
  int g = T->cfg.grid;
  uint8_t *out = xmalloc((size_t)g * g * T->R * T->R * T->C);
  ganc_grid(imgs, n, T->R, T->R, T->C, g, g, out);
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", T->run_dir, name);
  char kimg[32], seed[32];
  snprintf(kimg, sizeof kimg, "%.3f", (double)T->nimg / 1000.0);
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)T->cfg.seed);
  ganc_png_kv kv[] = {{"ganc:kimg", kimg}, {"ganc:run-seed", seed}};
  ganc_png_meta meta = {machine, kv, 2};
  ganc_err err = {0};
  if (ganc_png_write(path, g * T->R, g * T->R, T->C, out, &meta, &err)) ganc_die_err(&err);
  free(out);
}

// TensorBoard is a view of what the run folder already holds: a failed write there says so once
// and stops the events, never the training.
static void tb_failed(trainer *T, const ganc_err *err) {
  fprintf(stderr, "warning: %s; TensorBoard events stop here (log.jsonl and the grids go on)\n",
          err->msg);
  ganc_tb_close(T->tb);
  T->tb = NULL;
}

// The PNG grid just written to RUN_DIR/name, as an image event at the run's image count.
static void tb_grid(trainer *T, const char *name, const char *tag) {
  if (!T->tb) return;
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", T->run_dir, name);
  uint8_t *png;
  size_t n;
  ganc_err err = {0};
  if (ganc_read_file(path, (size_t)256 << 20, &png, &n) != 0) {
    ganc_err_set(&err, GANC_EXIT_RUNTIME, "cannot read back %s for TensorBoard", path);
    tb_failed(T, &err);
    return;
  }
  const int side = T->cfg.grid * T->R;
  if (ganc_tb_image(T->tb, T->nimg, tag, png, n, side, side, T->C, &err)) tb_failed(T, &err);
  free(png);
}

static void write_reals(trainer *T) {
  int n = T->cfg.grid * T->cfg.grid;
  if (n > T->ds->count) n = (int)T->ds->count;
  size_t ib = T->ds->image_bytes;
  uint8_t *imgs = xcalloc((size_t)n, ib);
  ganc_err err = {0};
  for (int i = 0; i < n; i++)
    if (ganc_dataset_read_image(T->ds, (int64_t)i * T->ds->count / n, imgs + i * ib, NULL, &err))
      ganc_die_err(&err);
  write_grid_png(T, "reals.png", imgs, n, 0);
  tb_grid(T, "reals.png", "reals");
  free(imgs);
}

// A conditional G's classes for images [at, at + m) of a grid of `cols` columns: one class per
// row (row r shows class r mod classes); cols = 0: image i is class i mod classes.
static void set_grid_labels(trainer *T, int at, int m, int cols) {
  if (!T->ncls) return;
  for (int i = 0; i < m; i++)
    T->host_flabels[i] = (int32_t)((cols ? (at + i) / cols : at + i) % T->ncls);
  ganc_upload_bytes(&T->ctx, T->flabels_dev, T->host_flabels, sizeof(int32_t) * (size_t)m);
}

// G_ema's batch-norm statistics for eval: the exact average over 8 batches of fixed latents
// ("precise BN"), so eval-mode samples match what the averaged weights produce in training mode.
static void recalibrate_ema(trainer *T) {
  const int K = 8;
  set_grid_labels(T, T->row0, T->B, 0); // classes in turn, as many of each
  for (int k = 0; k < K; k++) {
    for (int i = 0; i < T->B; i++)
      ganc_latent(T->cfg.seed ^ 0x5eed0bdull, (uint64_t)k * T->Bg + T->row0 + i, T->cfg.z_dim,
                  T->host_z + (size_t)i * T->cfg.z_dim);
    ganc_upload(&T->ctx, T->z, T->host_z, (size_t)T->B * T->cfg.z_dim);
    net_forward(&T->ctx, &T->G_ema, T->z, T->B, 1, 1.0f / (float)(k + 1));
  }
}

// Fixed latents for every snapshot grid: seed = run seed + 1, rows 0..grid²-1; a conditional
// generator draws row r of the grid as class r (mod the classes).
static void write_fakes(trainer *T) {
  int n = T->cfg.grid * T->cfg.grid, nz = T->cfg.z_dim;
  size_t ib = (size_t)T->R * T->R * T->C;
  uint8_t *imgs = xmalloc((size_t)n * ib);
  for (int at = 0; at < n; at += T->B) {
    int m = n - at < T->B ? n - at : T->B;
    for (int i = 0; i < m; i++)
      ganc_latent(T->cfg.seed + 1, (uint64_t)(at + i), nz, T->host_z + (size_t)i * nz);
    ganc_upload(&T->ctx, T->z, T->host_z, (size_t)m * nz);
    set_grid_labels(T, at, m, T->cfg.grid);
    const float *y = net_forward(&T->ctx, &T->G_ema, T->z, m, 0, -1);
    pixels_to_uint8(&T->ctx, (int64_t)m * ib, y, T->u8_dev);
    ganc_download_bytes(&T->ctx, imgs + (size_t)at * ib, T->u8_dev, (size_t)m * ib);
  }
  char name[64];
  snprintf(name, sizeof name, "fakes-%010.3f.png", (double)T->nimg / 1000.0);
  write_grid_png(T, name, imgs, n, 1);
  tb_grid(T, name, "fakes");
  free(imgs);
}

// ---- memorisation: D on held-out reals (log.holdout) -----------------------------------------
// D's mean raw output, in evaluation mode (batch norm's running statistics, spectral norm's saved
// vectors: nothing of D changes), on the k = ⌊holdout / Bg⌋·Bg held-out images (the dataset's
// last `holdout`, never trained on), on the first k training images, and on k fakes of G (also in
// evaluation mode: its running statistics; fixed latents, of seed train.seed ^ HOLDOUT_FAKES, rows
// 0..k-1, class i mod the classes), with the same augmentations for all three (fixed counters;
// at augment.p, which checkpoints save).
// Rank 0 measures, B images at a time. (G's batch statistics would follow the per-rank batch.) A
// D that memorises its training set rates the second set higher and higher; one that generalises
// rates both alike. All three depend on the saved state alone, never on the report window, so a
// resumed run measures what the straight one did (ADA's held-out signal below relies on it).
enum { HOLDOUT_TRAIN, HOLDOUT_HELD, HOLDOUT_FAKE };
#define HOLDOUT_FAKES 0x401d0f4ce5ull
static void holdout_eval(trainer *T, double out[3]) {
  const int B = T->B, nz = T->cfg.z_dim;
  const int64_t k = (int64_t)(T->cfg.holdout / T->Bg) * T->Bg;
  const int64_t first = T->ds->count - T->cfg.holdout;
  const size_t ib = T->ds->image_bytes;
  ganc_err err = {0};
  for (int set = 0; set < 3; set++) {
    double sum = 0;
    for (int64_t at = 0; at < k; at += B) {
      const float *x = T->x;
      if (set == HOLDOUT_FAKE) {
        for (int i = 0; i < B; i++) {
          ganc_latent(T->cfg.seed ^ HOLDOUT_FAKES, (uint64_t)(at + i), nz,
                      T->host_z + (size_t)i * nz);
          if (T->ncls) T->host_flabels[i] = (int32_t)((at + i) % T->ncls);
        }
        ganc_upload(&T->ctx, T->z, T->host_z, (size_t)B * nz);
        if (T->ncls) {
          ganc_upload_bytes(&T->ctx, T->flabels_dev, T->host_flabels, sizeof(int32_t) * (size_t)B);
          T->D.labels = T->flabels_dev;
        }
        x = net_forward(&T->ctx, &T->G, T->z, B, 0, -1);
      } else {
        int32_t *lab = T->host_flabels ? T->host_flabels : NULL;
        for (int i = 0; i < B; i++) {
          int32_t l = 0;
          if (ganc_dataset_read_image(T->ds, (set == HOLDOUT_HELD ? first : 0) + at + i,
                                      T->u8 + (size_t)i * ib, &l, &err))
            ganc_die_err(&err);
          if (lab) lab[i] = l < 0 ? 0 : l;
        }
        ganc_upload_bytes(&T->ctx, T->u8_dev, T->u8, (size_t)B * ib);
        pixels_to_float(&T->ctx, B, T->R, T->R, T->C, T->u8_dev, NULL, T->x);
        if (lab) {
          ganc_upload_bytes(&T->ctx, T->labels_dev, lab, sizeof(int32_t) * (size_t)B);
          T->D.labels = T->labels_dev;
        }
      }
      // The augmentations of image j: those of row j mod Bg of a global batch numbered by
      // j / Bg, alike for the three sets and for any number of ranks.
      net_set_aug_counter(&T->ctx, &T->D, UINT64_MAX - (uint64_t)(at / T->Bg));
      T->D.aug_row0 = (int)(at % T->Bg);
      const float *l = net_forward(&T->ctx, &T->D, x, B, 0, -1);
      T->D.aug_row0 = T->row0;
      ganc_download(&T->ctx, T->host_logit, l, B);
      for (int i = 0; i < B; i++)
        sum += T->host_logit[i];
    }
    out[set] = sum / (double)k;
  }
}

// ADA's r_v (Karras et al. 2020): (D(train) − D(held-out)) / (D(train) − D(G(z))), 0 while D
// rates unseen reals like its training reals, 1 when it rates them as low as fakes. NaN when D
// puts the fakes at or above its training reals: then nothing is memorised against them.
static double holdout_ratio(const double h[3]) {
  const double gap = h[HOLDOUT_TRAIN] - h[HOLDOUT_FAKE];
  return gap > 0 ? (h[HOLDOUT_TRAIN] - h[HOLDOUT_HELD]) / gap : NAN;
}

// ---- FID during training (metrics.featnet) --------------------------------------------------
// The reals: metrics.n images of the dataset evenly spaced (all of it when it holds fewer); the
// fakes: G_ema's images of seeds 0 .. n − 1 exactly as ganc-sample draws them (latent of seed s,
// class s mod classes), so that `ganc-metrics --featnet NET --real DATA --fake RUN -n N` gives the
// logged number again.
static void real_images(void *user, int64_t at, int m, uint8_t *out) {
  trainer *T = user;
  ganc_err err = {0};
  const int64_t n = T->cfg.metrics_n < T->ds->count ? T->cfg.metrics_n : T->ds->count;
  for (int i = 0; i < m; i++)
    if (ganc_dataset_read_image(T->ds, (at + i) * T->ds->count / n,
                                out + (size_t)i * T->ds->image_bytes, NULL, &err))
      ganc_die_err(&err);
}

static void fake_images(void *user, int64_t at, int m, uint8_t *out) {
  trainer *T = user;
  const int nz = T->cfg.z_dim;
  for (int i = 0; i < m; i++) {
    ganc_latent((uint64_t)(at + i), 0, nz, T->host_z + (size_t)i * nz);
    if (T->ncls) T->host_flabels[i] = (int32_t)((at + i) % T->ncls);
  }
  ganc_upload(&T->ctx, T->z, T->host_z, (size_t)m * nz);
  if (T->ncls)
    ganc_upload_bytes(&T->ctx, T->flabels_dev, T->host_flabels, sizeof(int32_t) * (size_t)m);
  const float *y = net_forward(&T->ctx, &T->G_ema, T->z, m, 0, -1);
  const size_t ib = (size_t)T->R * T->R * T->C;
  pixels_to_uint8(&T->ctx, (int64_t)m * ib, y, T->u8_dev);
  ganc_download_bytes(&T->ctx, out, T->u8_dev, (size_t)m * ib);
}

// FID of G_ema now (its batch-norm statistics recalibrated), to log.jsonl and TensorBoard.
static void run_metrics(trainer *T) {
  if (!T->fn) return;
  const int64_t n = T->cfg.metrics_n;
  const int d = ganc_featnet_dim(T->fn);
  ganc_err err = {0};
  double t0 = ganc_now();
  // Measured in FP32 whatever train.precision says, as ganc-metrics and ganc-sample measure and
  // sample: the figure must not move with the training precision.
  const ganc_precision prec = T->ctx.precision;
  T->ctx.precision = GANC_PREC_FP32;
  if (!T->fid_real.mu) { // the reals' statistics, once per process
    const int64_t nr = n < T->ds->count ? n : T->ds->count;
    float *f = ganc_featnet_features(T->fn, &T->ctx, nr, real_images, T, NULL);
    if (ganc_feat_stats_compute(f, nr, d, &T->fid_real, &err)) ganc_die_err(&err);
    free(f);
  }
  float *f = ganc_featnet_features(T->fn, &T->ctx, n, fake_images, T, NULL);
  ganc_feat_stats fake;
  double fid = 0;
  if (ganc_feat_stats_compute(f, n, d, &fake, &err) || ganc_fid(&T->fid_real, &fake, &fid, &err))
    ganc_die_err(&err);
  free(f);
  ganc_feat_stats_free(&fake);
  T->ctx.precision = prec;
  fprintf(stderr, "kimg %9.3f | FID %.4f (%lld images each, %s, %.1f s)\n",
          (double)T->nimg / 1000.0, fid, (long long)n, ganc_featnet_name(T->fn), ganc_now() - t0);
  fprintf(T->log, "{\"kimg\": %.3f, \"step\": %lld, \"fid\": %.6f, \"fid_n\": %lld}\n",
          (double)T->nimg / 1000.0, (long long)T->step, fid, (long long)n);
  fflush(T->log);
  if (T->tb) {
    static const char *const tags[] = {"metrics/fid"};
    if (ganc_tb_scalars(T->tb, T->nimg, tags, &fid, 1, &err)) tb_failed(T, &err);
  }
}

// Checkpoint + `latest` + pruning. Refuses to save non-finite weights (the last good checkpoint
// must never be replaced by a diverged one). Every rank calls it (G_ema's recalibration is a
// collective under train.batchnorm = sync); rank 0 alone writes. The ranks' weights are the
// same bits, so rank 0's check speaks for all.
// ADA's p and its controller's state from the backend, as checkpoints hold them
// (ganc_ckpt_meta.ada): p, the signs and images since the last adjustment, the last r_t.
static void ada_read(trainer *T, double ada[4]) {
  float p;
  double st[5];
  ganc_download_bytes(&T->ctx, &p, T->aug_p_dev, sizeof p);
  ganc_download_bytes(&T->ctx, st, T->ada_dev, sizeof st);
  ada[0] = p;
  memcpy(ada + 1, st + 2, 3 * sizeof(double));
}

// ADA driven by the held-out ratio (augment.ada_signal = holdout), at a report that crossed its
// mark (not the run's last, irregular one: a run stopped there and continued must move p as the
// straight run does): p moves by ± report_every / (ada_kimg · 1000) per report mark the step
// crossed (one, unless the global batch is larger than report_every) as r_v is above or below
// the target, down when r_v is undefined (D's training reals not above its fakes), clamped to
// [0, 1]; r_v is kept where r_t is (ada_read's [3]). Rank 0 measures r_v and moves p; every
// rank takes both from it (under train.batchnorm = local the ranks' running statistics, and so
// their own measures, could differ).
static void ada_holdout_adjust(trainer *T, double rv, int64_t report_every) {
  const int64_t marks = T->nimg / report_every - (T->nimg - T->Bg) / report_every;
  double v[2] = {0, rv}; // rank 0's new p and its r_v
  if (T->lead) {
    double ada[4];
    ada_read(T, ada);
    const double dir = !isfinite(rv) || rv < T->cfg.aug_ada_target ? -1.0
                       : rv > T->cfg.aug_ada_target                ? 1.0
                                                                   : 0.0;
    v[0] = ada[0] + dir * (double)(marks * report_every) / (T->cfg.aug_ada_kimg * 1000.0);
    v[0] = v[0] < 0.0 ? 0.0 : v[0] > 1.0 ? 1.0 : v[0];
  }
  if (T->comm.size > 1) ganc_comm_bcast(&T->comm, v, sizeof v, 0);
  const float p = (float)v[0];
  const double st[5] = {0, 0, 0, 0, v[1]};
  ganc_upload_bytes(&T->ctx, T->aug_p_dev, &p, sizeof p);
  ganc_upload_bytes(&T->ctx, T->ada_dev, st, sizeof st);
}

static void snapshot(trainer *T) {
  ganc_net *nets[3] = {&T->G, &T->G_ema, &T->D};
  T->ctx.bn_sync = !strcmp(T->cfg.batchnorm, "sync");
  recalibrate_ema(T);
  T->ctx.bn_sync = 0;
  if (!T->lead) return;
  for (int i = 0; i < 3; i++)
    if (!all_finite(&T->ctx, nets[i]->p, nets[i]->nparam_floats))
      ganc_die(GANC_EXIT_RUNTIME,
               "training diverged by step %lld (kimg %.3f): %s's weights hold NaN or Inf; "
               "nothing was saved over the last good checkpoint\n---> HINT: resume from it with "
               "lower learning rates (--set train.g_lr=... --set train.d_lr=...)",
               (long long)T->step, (double)T->nimg / 1000.0, nets[i]->name);
  write_fakes(T);
  if (T->cfg.metrics_kimg == 0) run_metrics(T);
  char name[64], path[4200];
  ckpt_name(T->nimg, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", T->run_dir, name);
  ganc_ckpt_meta meta = {.version = GANC_CKPT_VERSION,
                         .step = T->step,
                         .nimg = T->nimg,
                         .fingerprint = T->fingerprint,
                         .loader = ganc_loader_position(T->loader),
                         .config = T->cfg_text,
                         .data_dir = T->data_dir};
  if (T->ncls) { // the class names, for ganc-sample --class NAME
    meta.nclasses = T->ds->meta.nclasses;
    meta.class_names = T->ds->meta.class_names;
  }
  if (T->lecam_dev) { // LeCam's averages, for an exact resume (state[3] is rewritten every step)
    double st[4];
    ganc_download_bytes(&T->ctx, st, T->lecam_dev, sizeof st);
    // What the reader would refuse is not written (D's outputs went non-finite: diverged).
    if (!(fabs(st[0]) <= FLT_MAX && fabs(st[1]) <= FLT_MAX && st[2] >= 0.0 && st[2] <= 1.0))
      ganc_die(GANC_EXIT_RUNTIME,
               "training diverged by step %lld (kimg %.3f): LeCam's averages of D's outputs are "
               "%g and %g; nothing was saved over the last good checkpoint\n---> HINT: resume "
               "from it with lower learning rates (--set train.g_lr=... --set train.d_lr=...)",
               (long long)T->step, (double)T->nimg / 1000.0, st[0], st[1]);
    meta.has_lecam = 1;
    memcpy(meta.lecam, st, sizeof meta.lecam);
  }
  if (T->ada_dev) { // ADA's p and its controller's state, for an exact resume
    ada_read(T, meta.ada);
    if (T->ada_holdout) meta.ada[3] = NAN; // r_v (unbounded, for the logs) is measured anew
    meta.has_ada = 1;
  }
  ganc_err err = {0};
  if (ganc_ckpt_save(path, &T->ctx, &meta, nets, 3, &err)) ganc_die_err(&err);
  write_latest(T->run_dir, name);
  int n;
  char **v = list_ckpts(T->run_dir, &n);
  for (int i = 0; T->cfg.keep > 0 && i < n - T->cfg.keep; i++) {
    if (!strcmp(v[i], name)) continue;
    snprintf(path, sizeof path, "%s/%s", T->run_dir, v[i]);
    unlink(path);
  }
  free_list(v, n);
}

// ---- one step
// ------------------------------------------------------------------------------------
typedef struct report_stats {
  double loss_d, loss_g, d_real, d_fake; // losses; D's mean sigmoid on reals and on fakes
  double l_real, l_fake;                 // D's mean raw output (logit) on reals and on fakes
} report_stats;

// The loss of `logit` [B] against target ±1 (or the generator's hinge), gradient into T->dlogit,
// its value and D's outputs summed into the report's statistics at acc (T->acc_dev + 0, 3, 6;
// with_logits: D's sigmoid and raw means, which with the hinge loss show how far apart D puts
// reals and fakes — the measure of a D that memorises its training images).
// lecam (train.lecam on, D's losses): 0 on the reals, 1 on the fakes adds the LeCam regulariser's
// gradient (ops/lecam_core.h); -1 none.
// With N ranks the gradient is scaled by 1/N (B = Bg / N: ∂(local mean)/N = ∂ of the global
// mean's share), so that the ranks' gradients summed are the global batch's mean gradient;
// exact when N is a power of two. The value summed stays this rank's own mean. LeCam's averages
// are then averaged over the ranks after the fakes' call: each rank updated them with its own
// share's means, and the average of those updates is the update with the global batch's means
// (they are linear in the means, and the shares are equal), so every rank holds the
// one-process averages (to rounding) and rank 0's checkpoint resumes them all.
static void loss(trainer *T, const float *logit, float target, int generator, double *acc,
                 int lecam) {
  ganc_ctx *ctx = &T->ctx;
  if (!strcmp(T->cfg.loss, "hinge"))
    loss_hinge(ctx, T->B, logit, target, generator, T->dlogit, T->loss);
  else
    loss_logistic(ctx, T->B, logit, target, T->dlogit, T->loss);
  step_stats(ctx, T->B, generator ? NULL : logit, T->loss, acc);
  if (T->lecam_dev && lecam >= 0)
    loss_lecam(ctx, T->B, logit, lecam, (float)T->cfg.lecam, (float)T->cfg.lecam_decay,
               T->lecam_dev, T->dlogit);
  if (T->comm.size > 1 && T->lecam_dev && lecam == 1) {
    double st[4];
    ganc_download_bytes(ctx, st, T->lecam_dev, sizeof st);
    ganc_comm_sum_host(&T->comm, st, 2, 1);
    st[0] /= T->comm.size;
    st[1] /= T->comm.size;
    ganc_upload_bytes(ctx, T->lecam_dev, st, sizeof st);
  }
  if (T->comm.size > 1) { // never inside a graph (one process only)
    ganc_download(&T->ctx, T->host_logit, T->dlogit, T->B);
    for (int i = 0; i < T->B; i++)
      T->host_logit[i] *= 1.0f / (float)T->comm.size;
    ganc_upload(&T->ctx, T->dlogit, T->host_logit, T->B);
  }
}

// Σ over the ranks of a network's gradient block: every rank then holds the global batch's mean
// gradient (loss() scaled each share) and takes the same Adam step.
static void sum_grads(trainer *T, ganc_net *net) {
  ganc_comm_sum(&T->comm, &T->ctx, net->g, net->nparam_floats, 0);
}

// The step's inputs, outside any graph: its values (ganc_step_args: the step, its latents' first
// index, the augmentation counters, both Adam updates' constants and the EMA's beta) and the
// real images and labels, staged (on a stream of their own, while the previous step still runs).
// The host buffers (host_args, and the loader's batch, which must stay put until then) are free
// again once ganc_stage_wait returns: the next step waits for it before reusing them.
static void step_upload(trainer *T, const uint8_t *images, const int32_t *labels) {
  ganc_ctx *ctx = &T->ctx;
  const ganc_config *c = &T->cfg;
  ganc_stage_wait(ctx);
  ganc_step_args *a = T->host_args;
  a->step = (uint64_t)T->step;
  // Every draw is keyed by the image's row in the global batch (row0 + i): the ranks together
  // draw exactly the one-process batch.
  a->latent_first = (uint64_t)T->step * (uint64_t)T->Bg + (uint64_t)T->row0;
  // Each D forward draws its own DiffAugment transforms (reals, fakes, fakes again for G), the
  // same in its backward: Philox(seed, 4·step + k), so a resume draws them again exactly.
  for (int k = 0; k < 3; k++)
    a->aug_counter[k] = 4 * (uint64_t)T->step + (uint64_t)k;
  // EMA: StyleGAN2-ADA's half-life in images, ramped up over the first images (at the image
  // count after this step).
  const double nimg = (double)(T->nimg + T->Bg);
  double ema_nimg = c->ema_kimg * 1000.0;
  if (c->ema_rampup > 0 && ema_nimg > nimg * c->ema_rampup) ema_nimg = nimg * c->ema_rampup;
  const float beta = ema_nimg > 0 ? (float)pow(0.5, T->Bg / ema_nimg) : 0.0f;
  ganc_adam_consts((float)c->d_lr, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                   T->D.adam_t + 1, 0.0f, a->adam_d);
  ganc_adam_consts((float)c->g_lr, (float)c->beta1, (float)c->beta2, (float)c->adam_eps,
                   T->G.adam_t + 1, beta, a->adam_g);
  const size_t ib = (size_t)T->B * T->R * T->R * T->C, lb = sizeof(int32_t) * (size_t)T->B;
  ganc_stage_begin(ctx, sizeof *a + ib + lb);
  ganc_stage_copy(ctx, T->args_dev, a, sizeof *a);
  ganc_stage_copy(ctx, T->u8_dev, images, ib);
  if (T->ncls) ganc_stage_copy(ctx, T->labels_dev, labels, lb);
  ganc_stage_end(ctx);
}

// One step on the backend, every value it depends on read from backend memory (T->args_dev and
// the uploaded batch): what train.cuda_graph captures once and replays. Nothing here waits for
// the device or reads its memory on the host (with one process).
static void step_body(trainer *T) {
  ganc_ctx *ctx = &T->ctx;
  const ganc_config *c = &T->cfg;
  const int B = T->B;
  const ganc_step_args *a = T->args_dev;
  ganc_prof_at(ctx, NULL, "inputs", NULL, "-"); // ganc-bench --step --profile: the places
  step_draws(ctx, a, c->seed, B, T->row0, c->z_dim, c->mirror, T->ncls, T->z, T->flip_dev,
             T->ncls ? T->flabels_dev : NULL);
  pixels_to_float(ctx, B, T->R, T->R, T->C, T->u8_dev, T->flip_dev, T->x);

  // ---- D step ----
  ctx->bn_sync = !strcmp(c->batchnorm, "sync");
  net_zero_grad(ctx, &T->D);
  T->D.labels = T->labels_dev;
  T->D.aug_counter = &a->aug_counter[0];
  const float *lr = net_forward(ctx, &T->D, T->x, B, 1, -1);
  ganc_prof_at(ctx, NULL, "loss", NULL, "D on reals");
  loss(T, lr, 1.0f, 0, T->acc_dev + 0, 0);
  if (T->ada_real) ganc_copy(ctx, T->ada_real, lr, (size_t)B); // D's next forward overwrites lr
  net_backward(ctx, &T->D, T->x, T->dlogit, B, 0, 1);
  const float *fake = net_forward(ctx, &T->G, T->z, B, 1, -1);
  T->D.labels = T->flabels_dev; // the fakes are judged as the classes they were drawn for
  T->D.aug_counter = &a->aug_counter[1];
  const float *lf = net_forward(ctx, &T->D, fake, B, 1, -1);
  ganc_prof_at(ctx, NULL, "loss", NULL, "D on fakes");
  loss(T, lf, -1.0f, 0, T->acc_dev + 3, 1);
  if (T->ada_real) { // ADA's overfitting heuristic on this step's reals, over the global batch
    ada_sum(ctx, B, lf, T->ada_dev + 5);
    if (T->comm.size > 1) ganc_comm_sum(&T->comm, ctx, T->ada_dev + 5, 2, 1);
    ada_signs(ctx, B, T->ada_real, T->ada_dev + 5, T->ada_dev);
    if (T->comm.size > 1) ganc_comm_sum(&T->comm, ctx, T->ada_dev, 2, 1);
  }
  net_backward(ctx, &T->D, fake, T->dlogit, B, 0, 1);
  sum_grads(T, &T->D);
  net_adam(ctx, &T->D, a->adam_d, NULL);

  // ---- G step: the same fakes through the updated D; D's weight gradients not computed ----
  net_zero_grad(ctx, &T->G);
  T->D.aug_counter = &a->aug_counter[2];
  lf = net_forward(ctx, &T->D, fake, B, 1, -1);
  ganc_prof_at(ctx, NULL, "loss", NULL, "G");
  loss(T, lf, 1.0f, 1, T->acc_dev + 6, -1);
  const float *dfake = net_backward(ctx, &T->D, fake, T->dlogit, B, 1, 0);
  net_backward(ctx, &T->G, T->z, dfake, B, 0, 1);
  sum_grads(T, &T->G);
  ctx->bn_sync = 0;
  // Adam on G, and G_ema ← β G_ema + (1 − β) G in the same pass (StyleGAN2-ADA's EMA; G_ema's
  // batch-norm statistics are recomputed from its own weights at each snapshot).
  net_adam(ctx, &T->G, a->adam_g, T->G_ema.param_donor ? NULL : T->G_ema.p);
  // ADA: p moves after the step (this step's three D forwards all used the same p); the same
  // sums on every rank give every rank the same p.
  if (T->ada_real)
    ada_adjust(ctx, T->ada_dev, T->ada_dev + 2, T->aug_p_dev, (float)c->aug_ada_target,
               1.0 / (c->aug_ada_kimg * 1000.0), (double)c->aug_ada_interval * T->Bg);
}

// One step on real images [B, R, R, C] (host uint8) with their labels [B] (used when
// conditional): uploads, then the body, run directly or as the captured graph. The first step of
// a process runs directly (it sizes the scratch and times the convolution variants); the next
// captures the body once and replays it from then on, captured again only if the backend's
// memory moved (ganc_memory_generation).
static void train_step(trainer *T, const uint8_t *images, const int32_t *labels) {
  ganc_ctx *ctx = &T->ctx;
  step_upload(T, images, labels);
  if (T->graph && T->graph_gen != ganc_memory_generation(ctx)) {
    ganc_graph_free(T->graph);
    T->graph = NULL;
  }
  if (T->use_graph && !T->graph && T->eager_steps > 0) {
    // Said before, so that if the device refuses something inside the capture, the last line
    // before its error says what was happening and how to go on without it.
    if (T->lead && ++T->captures == 1)
      fprintf(stderr,
              "step %lld on: each step replays one captured CUDA graph (if the capture fails, "
              "--set train.cuda_graph=off trains without it)\n",
              (long long)T->step);
    if (ganc_capture_begin(ctx))
      ganc_die(GANC_EXIT_RUNTIME, "internal error: train.cuda_graph on a backend without graphs");
    step_body(T);
    T->graph = ganc_capture_end(ctx);
    T->graph_gen = ganc_memory_generation(ctx);
  }
  if (T->graph)
    ganc_graph_launch(ctx, T->graph);
  else {
    step_body(T);
    T->eager_steps++;
  }
  T->D.adam_t++;
  T->G.adam_t++;
  T->nimg += T->Bg;
  T->step++;
}

// The statistics summed on the device since the last report (one wait for the device), as sums
// over its steps in *acc; reset: start the device's sums again from zero. Every rank calls it at
// the same steps (reports, snapshots). Non-finite losses anywhere mean training diverged: an exit
// before anything is saved, leaving the last good checkpoint untouched.
static void stats_read(trainer *T, report_stats *acc, int64_t steps, int reset) {
  double v[9];
  ganc_download_bytes(&T->ctx, v, T->acc_dev, sizeof v);
  if (reset) ganc_zero(&T->ctx, (float *)T->acc_dev, 2 * 9);
  const double B = T->B;
  acc->loss_d = v[0] + v[3];
  acc->loss_g = v[6];
  acc->d_real = v[1] / B;
  acc->l_real = v[2] / B;
  acc->d_fake = v[4] / B;
  acc->l_fake = v[5] / B;
  int finite = isfinite(acc->loss_d) && isfinite(acc->loss_g);
  if (T->comm.size > 1) finite = (int)ganc_comm_and(&T->comm, finite ? 1u : 0u);
  if (!finite)
    ganc_die(GANC_EXIT_RUNTIME,
             "training diverged by step %lld (kimg %.3f; a NaN or Inf loss in the %lld steps "
             "since the last report): loss_D = %g, loss_G = %g\n---> HINT: the last good "
             "checkpoint in %s is untouched; resume from it with lower learning rates (--resume "
             "--set train.g_lr=... --set train.d_lr=...)",
             (long long)T->step, (double)T->nimg / 1000.0, (long long)steps, acc->loss_d,
             acc->loss_g, T->run_dir);
}

// A snapshot after the losses of the `nacc` steps since the last report were read: a diverged
// loss among them stops training before anything is saved.
static void checked_snapshot(trainer *T, int64_t nacc) {
  if (nacc) {
    report_stats since;
    stats_read(T, &since, nacc, 0);
  }
  snapshot(T);
}

// The networks and step buffers for T->cfg (resolution and channels resolved).
static void trainer_alloc(trainer *T) {
  if (T->comm.size < 1) T->comm.size = 1; // a trainer made without ganc_comm_init (benchmark)
  T->Bg = T->cfg.batch;
  T->B = T->Bg / T->comm.size;
  T->row0 = T->comm.rank * T->B;
  T->R = T->cfg.resolution;
  T->C = T->cfg.channels;
  T->ncls = !strcmp(T->cfg.conditional, "yes") ? T->cfg.classes : 0;
  ganc_build_g(&T->G, &T->cfg, "G");
  ganc_build_g(&T->G_ema, &T->cfg, "G_ema");
  ganc_build_d(&T->D, &T->cfg);
  T->D.aug_seed = T->cfg.seed;
  T->D.aug_row0 = T->row0;
  net_finalize(&T->ctx, &T->G, T->B, 1);
  // G_ema runs only between steps (grids, FID, its batch-norm recalibration), when G's activations
  // are dead: one set of generator activations serves both.
  net_share_activations(&T->G_ema, &T->G);
  // Without a moving average (train.ema_kimg = 0: β = 0, G_ema ← G exactly after every step)
  // G_ema reads G's parameters: no copy of them, no EMA pass.
  if (T->cfg.ema_kimg == 0) net_share_params(&T->G_ema, &T->G);
  net_finalize(&T->ctx, &T->G_ema, T->B, 0);
  // D's backward returns (its input gradient in D's own dx) before G's begins, in both steps:
  // one set of backward scratch serves both nets.
  net_share_gradients(&T->D, &T->G);
  net_finalize(&T->ctx, &T->D, T->B, 1);
  size_t ib = (size_t)T->B * T->R * T->R * T->C;
  T->x = ganc_alloc(&T->ctx, ib);
  T->z = ganc_alloc(&T->ctx, (size_t)T->B * T->cfg.z_dim);
  T->dlogit = ganc_alloc(&T->ctx, (size_t)T->B);
  T->loss = ganc_alloc(&T->ctx, 1);
  T->host_z = xmalloc(sizeof(float) * (size_t)T->B * T->cfg.z_dim);
  T->host_logit = xmalloc(sizeof(float) * (size_t)T->B);
  T->u8 = xmalloc(ib);
  T->host_args = ganc_host_alloc(sizeof(ganc_step_args), 1, &T->host_args_pinned);
  memset(T->host_args, 0, sizeof(ganc_step_args));
  T->args_dev = ganc_alloc_bytes(&T->ctx, sizeof(ganc_step_args));
  T->acc_dev = ganc_alloc_bytes(&T->ctx, 9 * sizeof(double));
  if (T->cfg.lecam > 0) {
    double init[4];
    ganc_lecam_init(init);
    T->lecam_dev = ganc_alloc_bytes(&T->ctx, sizeof init);
    ganc_upload_bytes(&T->ctx, T->lecam_dev, init, sizeof init);
  }
  if (T->cfg.aug_p != 1.0 || T->cfg.aug_ada_target > 0) { // p = 1 fixed: the ops' NULL
    const float p = (float)T->cfg.aug_p;
    T->aug_p_dev = ganc_alloc_bytes(&T->ctx, sizeof p);
    ganc_upload_bytes(&T->ctx, T->aug_p_dev, &p, sizeof p);
    T->D.aug_p = T->aug_p_dev;
  }
  if (T->cfg.aug_ada_target > 0) {
    const double init[7] = {0, 0, 0, 0, NAN, 0, 1}; // no r_t measured yet
    T->ada_dev = ganc_alloc_bytes(&T->ctx, sizeof init);
    ganc_upload_bytes(&T->ctx, T->ada_dev, init, sizeof init);
    T->ada_holdout = !strcmp(T->cfg.aug_ada_signal, "holdout");
    if (!T->ada_holdout) T->ada_real = ganc_alloc(&T->ctx, (size_t)T->B); // r_t, in the step
  }
  // train.cuda_graph: auto = a graph wherever one can replay the step (CUDA, our kernels, one
  // process: data-parallel steps wait for the other ranks inside — with one rank too where the
  // sums still go through NCCL, GANC_NCCL_ONE_RANK: each sum waits for its stream).
  const char *why = T->ctx.backend != GANC_BACKEND_CUDA ? "the CPU has no CUDA graphs"
                    : T->ctx.cudnn_conv                 ? "train.backend = cudnn"
                    : T->comm.size > 1 || T->comm.impl
                        ? "a data-parallel step exchanges gradients between ranks"
                        : NULL;
  if (!strcmp(T->cfg.cuda_graph, "on") && why)
    ganc_die(GANC_EXIT_USAGE,
             "train.cuda_graph = on, but this run cannot replay its steps as one graph (%s)\n"
             "---> HINT: use train.cuda_graph = auto",
             why);
  T->use_graph = strcmp(T->cfg.cuda_graph, "off") && !why;
  T->u8_dev = ganc_alloc_bytes(&T->ctx, ib);
  T->flip_dev = ganc_alloc_bytes(&T->ctx, (size_t)T->B);
  if (T->ncls) {
    size_t lb = sizeof(int32_t) * (size_t)T->B;
    T->labels_dev = ganc_alloc_bytes(&T->ctx, lb);
    T->flabels_dev = ganc_alloc_bytes(&T->ctx, lb);
    T->host_flabels = xcalloc((size_t)T->B, sizeof(int32_t));
    T->G.labels = T->G_ema.labels = T->flabels_dev;
  }
}

static void trainer_free(trainer *T) {
  net_free(&T->ctx, &T->G);
  net_free(&T->ctx, &T->G_ema);
  net_free(&T->ctx, &T->D);
  ganc_free(&T->ctx, T->x);
  ganc_free(&T->ctx, T->z);
  ganc_free(&T->ctx, T->dlogit);
  ganc_free(&T->ctx, T->loss);
  ganc_free(&T->ctx, T->u8_dev);
  ganc_free(&T->ctx, T->flip_dev);
  ganc_free(&T->ctx, T->labels_dev);
  ganc_free(&T->ctx, T->flabels_dev);
  free(T->host_flabels);
  free(T->host_z);
  free(T->host_logit);
  free(T->u8);
  ganc_graph_free(T->graph);
  T->graph = NULL;
  ganc_stage_wait(&T->ctx); // the last staged copies read host_args
  ganc_host_free(T->host_args, T->host_args_pinned);
  ganc_free(&T->ctx, T->args_dev);
  ganc_free(&T->ctx, T->acc_dev);
  ganc_free(&T->ctx, T->lecam_dev);
  ganc_free(&T->ctx, T->aug_p_dev);
  ganc_free(&T->ctx, T->ada_dev);
  ganc_free(&T->ctx, T->ada_real);
}

// ---- run setup
// -----------------------------------------------------------------------------------
// A folder "holds a run" once it has a checkpoint: a run that failed before its first one left
// nothing worth keeping, and may simply be started again.
static int run_has_content(const char *dir) {
  char p[4200];
  snprintf(p, sizeof p, "%s/latest", dir);
  if (ganc_is_file(p)) return 1;
  int n;
  char **v = list_ckpts(dir, &n);
  free_list(v, n);
  return n > 0;
}

// One trainer per run folder: an exclusive lock on RUN_DIR/.lock, held until exit.
static void lock_run(const char *dir) {
  char p[4200];
  snprintf(p, sizeof p, "%s/.lock", dir);
  int fd = open(p, O_RDWR | O_CREAT, 0644);
  if (fd < 0) ganc_die(GANC_EXIT_RUNTIME, "cannot create %s: %s", p, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "";
    ssize_t r = read(fd, pid, sizeof pid - 1);
    pid[r > 0 ? r : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    ganc_die(GANC_EXIT_USAGE,
             "%s is in use by another ganc-train (pid %s)\n---> HINT: wait for it to finish or "
             "stop it (Ctrl-C writes a checkpoint), then --resume",
             dir, *pid ? pid : "?");
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
    // The pid is only informative; the lock itself is what counts.
  }
  // fd stays open (and locked) for the life of the process.
}

// A format-1 checkpoint (an older ganc's) loads, but its settings carry no checksum: say so once.
static void note_old_format(const char *path, const ganc_ckpt_meta *meta) {
  if (meta->version < GANC_CKPT_VERSION)
    fprintf(stderr,
            "note: %s is a format-%d checkpoint (made by an older ganc): its tensors are "
            "checksummed, its settings are not; this run's next checkpoints are format %d\n",
            path, meta->version, GANC_CKPT_VERSION);
}

// The checkpoint to resume from: `latest`, or else the newest one that passes every check of
// ganc_ckpt_verify (checksums, types, ranges, finite weights); each one passed over is named
// with the reason.
static char *find_resume_ckpt(const char *run_dir, ganc_ckpt_meta *meta) {
  char p[4200], name[256] = "";
  ganc_err err = {0};
  int passed_over = 0; // `latest` could not be used: say where the run resumes instead
  // A `latest` that is not a file was refused by check_run_pointer; one whose text is garbled
  // (emptied by a full disk, edited by hand) is passed over like a damaged checkpoint.
  if (ganc_ckpt_read_latest(run_dir, name, sizeof name, &err) < 0) {
    fprintf(stderr, "warning: %s; looking for the newest checkpoint that passes every check\n",
            err.msg);
    name[0] = 0;
    passed_over = 1;
  }
  if (*name) {
    snprintf(p, sizeof p, "%s/%s", run_dir, name);
    if (ganc_ckpt_verify(p, &err) == 0 && ganc_ckpt_read_meta(p, meta, &err) == 0) {
      note_old_format(p, meta);
      return xstrdup(p);
    }
    fprintf(stderr, "warning: the latest checkpoint cannot be used: %s\n", err.msg);
    passed_over = 1;
  }
  int n;
  char **v = list_ckpts(run_dir, &n);
  for (int i = n - 1; i >= 0; i--) {
    snprintf(p, sizeof p, "%s/%s", run_dir, v[i]);
    if (*name && !strcmp(v[i], name)) continue; // already checked, reason printed
    memset(&err, 0, sizeof err);
    if (ganc_ckpt_verify(p, &err) == 0 && ganc_ckpt_read_meta(p, meta, &err) == 0) {
      if (passed_over)
        fprintf(stderr,
                "warning: resuming from %s instead, the newest checkpoint that passes every "
                "check\n",
                p);
      note_old_format(p, meta);
      free_list(v, n);
      return xstrdup(p);
    }
    fprintf(stderr, "warning: skipping %s: %s\n", p, err.msg);
  }
  free_list(v, n);
  return NULL;
}

// RUN_DIR/latest must be a regular file (or a symbolic link, which rename replaces) or absent,
// and latest.tmp a regular file or absent: a folder, FIFO or device there would let a run train
// and then die at its first checkpoint (and a FIFO blocks whoever reads it). Checked at start.
static void check_run_pointer(const char *run_dir) {
  const char *names[2] = {"latest", "latest.tmp"};
  for (int i = 0; i < 2; i++) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", run_dir, names[i]);
    struct stat st;
    if (lstat(p, &st) != 0 || S_ISREG(st.st_mode) || (i == 0 && S_ISLNK(st.st_mode))) continue;
    ganc_die(GANC_EXIT_USAGE,
             "%s is %s, not a file ganc-train can replace: the run would train and then fail at "
             "its first checkpoint\n---> HINT: move it out of %s, then run again",
             p,
             S_ISDIR(st.st_mode)    ? "a folder"
             : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
             : S_ISLNK(st.st_mode)  ? "a symbolic link"
                                    : "not a regular file",
             run_dir);
  }
}

// Removes temporary files a killed run left mid-write (ckpt-*.h5.tmp-<pid> of a dead process,
// latest.tmp): they never replaced anything, so nothing is lost by removing them.
static void remove_stale_tmp(const char *run_dir) {
  DIR *d = opendir(run_dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *t = strstr(e->d_name, ".tmp");
    if (!t || !(strncmp(e->d_name, "ckpt-", 5) == 0 || strncmp(e->d_name, "fakes-", 6) == 0 ||
                strncmp(e->d_name, "reals.png", 9) == 0 || !strcmp(e->d_name, "latest.tmp") ||
                !strcmp(e->d_name, "log.jsonl.tmp")))
      continue; // only our own temporaries
    long pid = t[4] == '-' ? strtol(t + 5, NULL, 10) : 0;
    // The run folder is locked, so no other trainer is writing; a live pid is a recycled one.
    if (pid == (long)getpid()) continue;
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", run_dir, e->d_name);
    if (unlink(p) == 0) fprintf(stderr, "note: removed %s, left by an interrupted write\n", p);
  }
  closedir(d);
}

// Keeps only the log lines of steps up to `step` (a killed run may have logged past its last
// checkpoint; the resumed run logs those steps again).
static void trim_log(const char *path, int64_t step) {
  uint8_t *buf;
  size_t n;
  if (ganc_read_file(path, (size_t)1 << 30, &buf, &n) != 0) return;
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    free(buf);
    return;
  }
  for (char *line = (char *)buf, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    const char *s = strstr(line, "\"step\": ");
    long long v = s ? atoll(s + 8) : 0;
    if (s && v <= step) fprintf(f, "%s\n", line);
  }
  fclose(f);
  free(buf);
  rename(tmp, path);
}

// model.conditional = auto → yes when the shards hold 2+ classes and the family has a conditional
// form; yes → the shards must be labelled, and model.classes (0 = the dataset's) must match them.
static void resolve_classes(ganc_config *c, const ganc_dataset *ds, const char *data) {
  const int K = ds->meta.nclasses;
  if (!strcmp(c->conditional, "auto"))
    snprintf(c->conditional, sizeof c->conditional, "%s",
             K >= 2 && strcmp(c->arch, "dcgan") ? "yes" : "no");
  if (strcmp(c->conditional, "yes")) return;
  if (K < 2)
    ganc_die(GANC_EXIT_USAGE,
             "model.conditional = yes, but %s holds %s\n---> HINT: prepare the data from a folder "
             "with one sub-folder per class (ganc-prep --labels auto), or set "
             "model.conditional=no",
             data, K == 1 ? "a single class" : "no class labels");
  if (!c->classes) c->classes = K;
  if (c->classes != K)
    ganc_die(GANC_EXIT_USAGE,
             "model.classes = %d, but %s holds %d classes\n---> HINT: set model.classes=0 to "
             "follow the dataset",
             c->classes, data, K);
}

// Compares the keys a resumed run must share with its checkpoint.
static const char *incompatible(const ganc_config *a, const ganc_config *b) {
  if (strcmp(a->arch, b->arch) || a->resolution != b->resolution || a->channels != b->channels ||
      a->z_dim != b->z_dim || a->g_base != b->g_base || a->d_base != b->d_base ||
      a->g_max != b->g_max || a->d_max != b->d_max || strcmp(a->conditional, b->conditional) ||
      a->classes != b->classes || strcmp(a->spectral_norm, b->spectral_norm))
    return "the model section";
  if (a->batch != b->batch) return "train.batch";
  if (a->seed != b->seed) return "train.seed";
  if (strcmp(a->loss, b->loss)) return "train.loss";
  if (a->window_mb != b->window_mb) return "data.window_mb";
  if (a->holdout != b->holdout) return "log.holdout";
  return NULL;
}

int ganc_train_main(int argc, char **argv) {
  const char *data = NULL, *config = NULL, *out = NULL, *device = NULL;
  const char **sets = xcalloc((size_t)argc, sizeof(char *));
  int nsets = 0, resume = 0, force = 0;
  ganc_h5_quiet();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      free(sets); // the early returns free it: LeakSanitizer builds fail on a leak at exit
      return GANC_EXIT_OK;
    }
    if (!strcmp(a, "--print-config")) {
      ganc_config c;
      ganc_config_defaults(&c);
      char *t = ganc_config_to_ini(&c);
      fputs(t, stdout);
      free(t);
      free(sets);
      return GANC_EXIT_OK;
    }
    if (!strcmp(a, "--has-gpu-backend")) {
      // For scripts choosing a recipe: exit 0 only when training would run on a GPU here.
      ganc_ctx probe;
      ganc_err e = {0};
      if (ganc_ctx_init_device(&probe, "cuda", 1, 0, NULL, &e)) {
        printf("no: %s\n", e.msg);
        free(sets);
        return GANC_EXIT_RUNTIME;
      }
      char d[512];
      ganc_device_describe(&probe, d, sizeof d);
      printf("yes: %s\n", d);
      ganc_ctx_release(&probe);
      free(sets);
      return GANC_EXIT_OK;
    }
    if (!strcmp(a, "--resume")) {
      resume = 1;
      continue;
    }
    if (!strcmp(a, "--force")) {
      force = 1;
      continue;
    }
    char key[64];
    const char *inl;
    ganc_opt_split(a, key, sizeof key, &inl);
    const char *opts[] = {"--data", "--config", "--out", "--set", "--device"};
    int k = 0;
    while (k < 5 && strcmp(key, opts[k]))
      k++;
    if (k == 5) ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see ganc-train --help)", a);
    const char *v = ganc_opt_value(argc, argv, &i, key, inl, "ganc-train");
    if (k == 0)
      data = v;
    else if (k == 1)
      config = v;
    else if (k == 2)
      out = v;
    else if (k == 3)
      sets[nsets++] = v;
    else
      device = v;
  }
  if (!out) {
    usage(stderr);
    free(sets);
    return GANC_EXIT_USAGE;
  }

  trainer T;
  memset(&T, 0, sizeof T);
  T.run_dir = out;
  ganc_err err = {0};
  ganc_ckpt_meta meta = {0};
  char *resume_path = NULL;
  if (ganc_comm_init(&T.comm, &argc, &argv, &err)) {
    free(sets);
    ganc_die_err(&err);
  }
  T.lead = T.comm.rank == 0;

  // ---- the config: the file (or the run's own on resume), then --set ----
  ganc_config_defaults(&T.cfg);
  if (resume) {
    if (!ganc_is_dir(out))
      ganc_die(GANC_EXIT_USAGE, "--resume: %s does not exist (start a run without --resume)", out);
    if (T.lead) { // the run folder is rank 0's; the others read the checkpoint it chose
      lock_run(out);
      remove_stale_tmp(out);
      check_run_pointer(out);
      resume_path = find_resume_ckpt(out, &meta);
      if (!resume_path)
        ganc_die(GANC_EXIT_USAGE,
                 "--resume: %s holds no usable checkpoint\n---> HINT: start a new "
                 "run with another --out",
                 out);
    }
    if (T.comm.size > 1) {
      uint32_t len = resume_path ? (uint32_t)strlen(resume_path) + 1 : 0;
      ganc_comm_bcast(&T.comm, &len, sizeof len, 0);
      if (!T.lead) resume_path = xcalloc(len, 1);
      ganc_comm_bcast(&T.comm, resume_path, len, 0);
      if (!T.lead && ganc_ckpt_read_meta(resume_path, &meta, &err)) ganc_die_err(&err);
    }
    ganc_config saved;
    ganc_config_defaults(&saved);
    if (ganc_config_load_string(&saved, meta.config, resume_path, &err)) ganc_die_err(&err);
    if (config) {
      if (ganc_config_load_file(&T.cfg, config, &err)) ganc_die_err(&err);
    } else {
      T.cfg = saved;
    }
    for (int i = 0; i < nsets; i++)
      if (ganc_config_set(&T.cfg, sets[i], &err)) ganc_die_err(&err);
    // Resolved keys (0 = from the dataset) compare as the checkpoint saved them.
    if (!T.cfg.resolution) T.cfg.resolution = saved.resolution;
    if (!T.cfg.channels) T.cfg.channels = saved.channels;
    if (!strcmp(T.cfg.conditional, "auto")) memcpy(T.cfg.conditional, saved.conditional, 8);
    if (!T.cfg.classes) T.cfg.classes = saved.classes;
    const char *diff = incompatible(&T.cfg, &saved);
    if (diff && !force)
      ganc_die(GANC_EXIT_USAGE,
               "cannot resume %s: %s differs from the checkpoint's config\n---> HINT: resume "
               "without --config/--set for it, or add --force to train on anyway",
               resume_path, diff);
    if (!data) data = meta.data_dir;
    if (!data || !*data) // a damaged or foreign checkpoint; --data '' is refused when parsed
      ganc_die(GANC_EXIT_USAGE,
               "%s records no data folder (its data_dir is empty)\n---> HINT: give the shard "
               "folder this run trained on with --resume --data DIR",
               resume_path);
  } else {
    if (!config || !data)
      ganc_die(GANC_EXIT_USAGE, "a new run needs --data DIR and --config FILE (see --help)");
    if (T.lead && ganc_is_dir(out)) check_run_pointer(out);
    if (T.lead && ganc_is_dir(out) && run_has_content(out))
      ganc_die(GANC_EXIT_USAGE,
               "%s already holds a run\n---> HINT: add --resume to continue it, or choose a new "
               "--out",
               out);
    if (ganc_config_load_file(&T.cfg, config, &err)) ganc_die_err(&err);
    for (int i = 0; i < nsets; i++)
      if (ganc_config_set(&T.cfg, sets[i], &err)) ganc_die_err(&err);
  }
  free(sets);
  if (device) {
    char s[64];
    snprintf(s, sizeof s, "train.device=%s", device);
    if (ganc_config_set(&T.cfg, s, &err)) ganc_die_err(&err);
  }
  if (ganc_config_validate(&T.cfg, &err)) ganc_die_err(&err);
  if (T.cfg.batch % T.comm.size)
    ganc_die(GANC_EXIT_USAGE,
             "train.batch = %d cannot be shared equally by %d ranks\n---> HINT: make train.batch "
             "a multiple of %d (it is the global batch; each rank trains on batch / ranks)",
             T.cfg.batch, T.comm.size, T.comm.size);

  // ---- device: a rank takes the GPU of its rank on the node ----
  if (ganc_ctx_init_device_at(&T.ctx, T.cfg.device, T.comm.local_rank, T.cfg.threads,
                              !strcmp(T.cfg.backend, "cudnn"), T.lead ? stderr : NULL, &err))
    ganc_die_err(&err);
  T.ctx.comm = &T.comm;
  ctx_set_precision(&T.ctx, &T.cfg);
  if (T.ctx.backend == GANC_BACKEND_CUDA) {
    char d[512];
    ganc_device_describe(&T.ctx, d, sizeof d);
    fprintf(stderr, "%sdevice: %s%s\n", T.comm.size > 1 ? "rank " : "", d,
            T.ctx.cudnn_conv ? " (convolutions: cuDNN)" : "");
  }
  if (T.lead && T.comm.size > 1)
    fprintf(stderr, "data-parallel: %s; global batch %d, %d per rank; batch norm: %s\n",
            T.comm.what, T.cfg.batch, T.cfg.batch / T.comm.size, T.cfg.batchnorm);

  // ---- data ----
  char absdata[PATH_MAX];
  T.data_dir = xstrdup(realpath(data, absdata) ? absdata : data); // resumable from anywhere
  int64_t limit = 0; // log.holdout: the dataset's last images never reach training
  if (T.cfg.holdout) {
    ganc_dataset probe;
    if (ganc_dataset_open(data, &probe, &err)) ganc_die_err(&err);
    const int64_t count = probe.count;
    ganc_dataset_close(&probe);
    const int b = T.cfg.batch; // the global batch: the measure is the same on any number of ranks
    if (T.cfg.holdout < b || T.cfg.holdout > count / 2)
      ganc_die(GANC_EXIT_USAGE,
               "log.holdout = %d for %lld images\n---> HINT: hold out at least one batch (%d) and "
               "at most half the dataset (%lld)",
               T.cfg.holdout, (long long)count, b, (long long)(count / 2));
    limit = count - T.cfg.holdout;
  }
  ganc_loader_opts lo = {.batch = T.cfg.batch,
                         .seed = T.cfg.seed,
                         .prefetch = 4,
                         .window_bytes = (size_t)T.cfg.window_mb << 20,
                         .pinned = 0,
                         .rank = T.comm.rank,
                         .ranks = T.comm.size,
                         .limit = limit};
  if (ganc_loader_open(data, &lo, resume ? &meta.loader : NULL, &T.loader, &err))
    ganc_die_err(&err);
  T.ds = ganc_loader_dataset(T.loader);
  int dres = T.ds->meta.resolution, dch = T.ds->meta.channels;
  if (T.cfg.resolution == 0) T.cfg.resolution = dres;
  if (T.cfg.channels == 0) T.cfg.channels = dch;
  if (T.cfg.resolution != dres || T.cfg.channels != dch)
    ganc_die(GANC_EXIT_USAGE,
             "the config wants %dx%dx%d images but %s holds %dx%dx%d\n---> HINT: prepare the data "
             "with `ganc-prep SRC DIR --resolution %d --channels %d`, or set model.resolution=0 "
             "and model.channels=0 to follow the dataset",
             T.cfg.resolution, T.cfg.resolution, T.cfg.channels, data, dres, dres, dch,
             T.cfg.resolution, T.cfg.channels);
  resolve_classes(&T.cfg, T.ds, data);
  if (ganc_config_validate(&T.cfg, &err)) ganc_die_err(&err);
  T.fingerprint = ganc_dataset_fingerprint(T.ds, &err);
  if (err.code) ganc_die_err(&err);
  if (resume && meta.fingerprint != T.fingerprint && !force)
    ganc_die(GANC_EXIT_USAGE,
             "cannot resume %s: the dataset in %s is not the one this run was trained on "
             "(fingerprint differs)\n---> HINT: pass the original --data, or add --force",
             resume_path, data);
  T.cfg_text = ganc_config_to_ini(&T.cfg);

  // ---- model ----
  trainer_alloc(&T);
  if (resume) {
    if (ganc_ckpt_load_net(resume_path, &T.ctx, &T.G, "G", 1, &err) ||
        ganc_ckpt_load_net(resume_path, &T.ctx, &T.G_ema, "G_ema", 0, &err) ||
        ganc_ckpt_load_net(resume_path, &T.ctx, &T.D, "D", 1, &err))
      ganc_die_err(&err);
    T.step = meta.step;
    T.nimg = meta.nimg;
    if (T.lecam_dev && meta.has_lecam) {
      double st[4] = {meta.lecam[0], meta.lecam[1], meta.lecam[2], 0.0};
      ganc_upload_bytes(&T.ctx, T.lecam_dev, st, sizeof st);
    } else if (T.lecam_dev && T.lead) {
      fprintf(stderr,
              "note: %s holds no LeCam averages (train.lecam was off): they start "
              "afresh at step %lld\n",
              resume_path, (long long)T.step);
    } else if (meta.has_lecam && T.lead) {
      fprintf(stderr,
              "note: train.lecam is off now: %s's LeCam averages are not used, and later "
              "checkpoints will not hold them\n",
              resume_path);
    }
    if (T.ada_dev && meta.has_ada) { // ADA goes on where it stopped
      const float p = (float)meta.ada[0];
      // Driven by r_v, none of r_t's counts (from a run with ada_signal = rt) are carried on.
      const double st[5] = {0, 0, T.ada_holdout ? 0 : meta.ada[1], T.ada_holdout ? 0 : meta.ada[2],
                            T.ada_holdout ? NAN : meta.ada[3]};
      ganc_upload_bytes(&T.ctx, T.aug_p_dev, &p, sizeof p);
      ganc_upload_bytes(&T.ctx, T.ada_dev, st, sizeof st);
      if (T.lead && p != (float)T.cfg.aug_p)
        fprintf(stderr,
                "note: ADA's p goes on from %s's %g (augment.p = %g sets only where a run starts "
                "it)\n",
                resume_path, (double)p, T.cfg.aug_p);
    } else if (T.ada_dev && T.lead) {
      fprintf(stderr, "note: %s holds no ADA state (augment.ada_target was 0): p starts at %g\n",
              resume_path, T.cfg.aug_p);
    } else if (meta.has_ada && T.lead) {
      fprintf(stderr,
              "note: augment.ada_target is 0 now: %s's adapted p (%g) is not used; p = %g "
              "(augment.p)\n",
              resume_path, meta.ada[0], T.cfg.aug_p);
    }
  } else {
    net_init_weights(&T.ctx, &T.G, T.cfg.seed, GANC_RNG_INIT_G);
    net_init_weights(&T.ctx, &T.D, T.cfg.seed, GANC_RNG_INIT_D);
    if (!T.G_ema.param_donor) ganc_copy(&T.ctx, T.G_ema.p, T.G.p, T.G.nparam_floats);
    ganc_copy(&T.ctx, T.G_ema.buf, T.G.buf, T.G.nbuffer_floats);
  }
  // ---- run folder: rank 0's ----
  if (T.lead) {
    if (ganc_mkdir_p(out) != 0)
      ganc_die(GANC_EXIT_RUNTIME, "cannot create %s: %s", out, strerror(errno));
    if (!resume) {
      lock_run(out);
      if (run_has_content(out)) // another trainer started it meanwhile
        ganc_die(GANC_EXIT_USAGE, "%s already holds a run\n---> HINT: add --resume", out);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.ini", out);
    FILE *cf = fopen(path, "w");
    if (!cf || fputs(T.cfg_text, cf) < 0 || fclose(cf) != 0)
      ganc_die(GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    if (resume) trim_log(path, T.step);
    T.log = fopen(path, resume ? "a" : "w");
    if (!T.log) ganc_die(GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    // The convolution variants the CUDA backend picks by timing, one line per role and shape.
    if (T.ctx.backend == GANC_BACKEND_CUDA) {
      snprintf(path, sizeof path, "%s/kernels.log", out);
      // A resumed run keeps the variants it chose before (its numbers stay those of one run).
      if (resume) {
        const int n = ganc_tune_read(&T.ctx, path);
        if (n && T.lead) fprintf(stderr, "convolution variants: %d choices from %s\n", n, path);
      }
      T.ctx.tune_log = fopen(path, "a");
      if (!T.ctx.tune_log)
        ganc_die(GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
    }
    // TensorBoard: a new events file per start; its START just past this image count makes
    // TensorBoard drop what an interrupted run logged past the checkpoint it resumes from (it
    // drops every earlier event at or after the START's step).
    if (T.cfg.tensorboard && ganc_tb_open(out, T.nimg ? T.nimg + 1 : 0, &T.tb, &err)) {
      fprintf(stderr, "warning: %s; training without TensorBoard events\n", err.msg);
      memset(&err, 0, sizeof err);
    }
    if (!resume) write_reals(&T);
    if (strcmp(T.cfg.metrics_featnet, "none")) { // checked now: a bad file fails before training
      const int fb = T.B < 32 ? T.B : 32;        // Inception keeps ~50 MB of activations per image
      if (ganc_featnet_load(T.cfg.metrics_featnet, &T.ctx, T.R, T.C, fb, &T.fn, &err))
        ganc_die_err(&err);
      fprintf(stderr, "FID: %s, %d images each, %s\n", ganc_featnet_name(T.fn), T.cfg.metrics_n,
              T.cfg.metrics_kimg > 0 ? "on its own schedule (metrics.kimg)" : "at every snapshot");
    }

    char desc[3][256];
    net_describe(&T.G, desc[0], 256);
    net_describe(&T.D, desc[1], 256);
    printf("%s\n%s\ndata: %s (%lld images)\n", desc[0], desc[1], data, (long long)T.ds->count);
    size_t gb = 0, db = 0;
    const int gn = net_bf16_outputs(&T.G, &gb), dn = net_bf16_outputs(&T.D, &db);
    const int gg = net_bf16_gradients(&T.G), dg = net_bf16_gradients(&T.D);
    if (gn + dn + gg + dg) // train.bf16_activations: which tensors live in bf16
      printf("bf16 activations: G %d, D %d (%.2f MB less); bf16 gradients: G %d, D %d\n", gn, dn,
             (double)(gb + db) / 1e6, gg, dg);
    size_t gr = 0, dr = 0;
    const int grn = net_recomputed(&T.G, &gr), drn = net_recomputed(&T.D, &dr);
    if (grn + drn) // train.recompute_batchnorm: outputs made again for their backward
      printf("batch-norm outputs recomputed: G %d, D %d (%.2f MB not kept; a %.2f MB buffer for "
             "them)\n",
             grn, drn, (double)(gr + dr) / 1e6, (double)(T.G.rbuf_n + T.D.rbuf_n) * 4 / 1e6);
    const int gs = net_bn_stats_fused(&T.G), ds = net_bn_stats_fused(&T.D);
    if (gs + ds) // train.fuse_batchnorm_stats: convolutions that sum their batch norm's statistics
      printf("batch-norm statistics summed by their convolutions: G %d, D %d (a %.2f MB buffer)\n",
             gs, ds, (double)(T.G.bnbuf_n + T.D.bnbuf_n) * 4 / 1e6);
    const int gw = net_bf16_weights(&T.G), dw = net_bf16_weights(&T.D);
    if (gw + dw) // the convolutions given their weights' halves (net.h: net->ph)
      printf("bf16 weight copies: G %d, D %d convolutions (%.2f MB)\n", gw, dw,
             (double)((T.G.ph ? T.G.nparam_floats : 0) + (T.D.ph ? T.D.nparam_floats : 0)) * 2 /
                 1e6);
    if (resume)
      printf("resuming from %s at kimg %.3f (step %lld)\n", resume_path, (double)T.nimg / 1000.0,
             (long long)T.step);
    fflush(stdout);
  }

  // ---- the loop ----
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int64_t total = (int64_t)(T.cfg.kimg * 1000.0 + 0.5);
  int64_t report_every = (int64_t)(T.cfg.report_kimg * 1000.0 + 0.5);
  int64_t snap_every = (int64_t)(T.cfg.snapshot_kimg * 1000.0 + 0.5);
  if (report_every < 1) report_every = 1;
  if (snap_every < 1) snap_every = 1;
  int64_t next_report = (T.nimg / report_every + 1) * report_every;
  int64_t next_snap = (T.nimg / snap_every + 1) * snap_every;
  const int64_t metrics_every = (int64_t)(T.cfg.metrics_kimg * 1000.0 + 0.5);
  int64_t next_metrics = metrics_every > 0 ? (T.nimg / metrics_every + 1) * metrics_every : 0;
  double t0 = ganc_now(), t_report = t0;
  int64_t nimg_report = T.nimg, start_nimg = T.nimg;
  report_stats acc = {0};
  int nacc = 0, saved_now = 0;
  ganc_progress pg;
  ganc_progress_start(&pg, stderr, "img", total);
  pg.plain_every = 1e30;               // plain lines come from the report interval below
  double shown_d = NAN, shown_g = NAN; // the progress line's losses: the last report's means
  while (T.nimg < total && !g_stop) {
    const ganc_batch *b;
    ganc_stage_wait(&T.ctx); // the previous batch was read: the loader may reuse its buffer
    if (ganc_loader_next(T.loader, &b, &err)) ganc_die_err(&err);
    train_step(&T, b->images, b->labels);
    if (T.comm.size > 1) { // every rank leaves at the same step: a stop anywhere is all's
      unsigned f = ganc_comm_and(&T.comm, g_stop ? 0u : 2u);
      if (!(f & 2u) && !g_stop) g_stop = SIGTERM;
    }
    nacc++;
    saved_now = 0;
    char extra[160];
    if (isnan(shown_d))
      snprintf(extra, sizeof extra, "kimg %.1f", (double)T.nimg / 1000.0);
    else
      snprintf(extra, sizeof extra, "kimg %.1f  loss_D %.3f  loss_G %.3f", (double)T.nimg / 1000.0,
               shown_d, shown_g);
    if (T.lead) ganc_progress_update(&pg, T.nimg, extra);
    if (T.nimg >= next_report || T.nimg >= total) {
      const int regular = T.nimg >= next_report; // else the run's last, a partial window
      ganc_progress_clear(&pg);
      stats_read(&T, &acc, nacc, 1); // waits for the device: the timing below is of finished work
      shown_d = acc.loss_d / nacc;
      shown_g = acc.loss_g / nacc;
      if (T.comm.size > 1) { // the means over the ranks' shares: the global batch's
        double v[6] = {acc.loss_d, acc.loss_g, acc.d_real, acc.d_fake, acc.l_real, acc.l_fake};
        ganc_comm_sum_host(&T.comm, v, 6, 1);
        acc = (report_stats){v[0] / T.comm.size, v[1] / T.comm.size, v[2] / T.comm.size,
                             v[3] / T.comm.size, v[4] / T.comm.size, v[5] / T.comm.size};
      }
      double hold[3] = {0, 0, 0}; // log.holdout: D on training, held-out and fake images
      if (T.cfg.holdout && T.lead) holdout_eval(&T, hold);
      if (T.ada_holdout && regular) ada_holdout_adjust(&T, holdout_ratio(hold), report_every);
      double now = ganc_now(), dt = now - t_report;
      double ips = dt > 0 ? (double)(T.nimg - nimg_report) / dt : 0;
      if (T.lead) {
        fprintf(
            T.log,
            "{\"kimg\": %.3f, \"step\": %lld, \"loss_D\": %.6f, \"loss_G\": %.6f, \"D_x\": %.6f, "
            "\"D_G_z\": %.6f, \"img_per_s\": %.2f, \"sec_per_kimg\": %.3f, \"elapsed_s\": %.2f, "
            "\"logit_x\": %.6f, \"logit_G_z\": %.6f",
            (double)T.nimg / 1000.0, (long long)T.step, acc.loss_d / nacc, acc.loss_g / nacc,
            acc.d_real / nacc, acc.d_fake / nacc, ips, ips > 0 ? 1000.0 / ips : 0.0, now - t0,
            acc.l_real / nacc, acc.l_fake / nacc);
        if (T.ada_dev) { // ADA: p now, and its signal at its last adjustment (if measured)
          double ada[4];
          ada_read(&T, ada);
          const char *sig = T.ada_holdout ? "ada_rv" : "ada_rt";
          fprintf(T.log, ", \"aug_p\": %.6f", ada[0]);
          if (isfinite(ada[3])) fprintf(T.log, ", \"%s\": %.6f", sig, ada[3]);
          if (T.tb) {
            const char *atags[] = {"augment/p",
                                   T.ada_holdout ? "augment/ada_rv" : "augment/ada_rt"};
            const double av[] = {ada[0], ada[3]};
            if (ganc_tb_scalars(T.tb, T.nimg, atags, av, isfinite(ada[3]) ? 2 : 1, &err)) {
              tb_failed(&T, &err);
              memset(&err, 0, sizeof err);
            }
          }
        }
        if (T.cfg.holdout) {
          const double rv = holdout_ratio(hold);
          fprintf(T.log, ", \"logit_train\": %.6f, \"logit_holdout\": %.6f, \"logit_gen\": %.6f",
                  hold[HOLDOUT_TRAIN], hold[HOLDOUT_HELD], hold[HOLDOUT_FAKE]);
          if (isfinite(rv)) fprintf(T.log, ", \"holdout_ratio\": %.6f", rv);
          if (T.tb) {
            static const char *const htags[] = {"D/logit_train", "D/logit_holdout", "D/logit_gen",
                                                "D/holdout_ratio"};
            const double hv[] = {hold[HOLDOUT_TRAIN], hold[HOLDOUT_HELD], hold[HOLDOUT_FAKE], rv};
            if (ganc_tb_scalars(T.tb, T.nimg, htags, hv, isfinite(rv) ? 4 : 3, &err)) {
              tb_failed(&T, &err);
              memset(&err, 0, sizeof err);
            }
          }
        }
        fputs("}\n", T.log);
        fflush(T.log);
        if (T.tb) { // the same numbers as the log line, at the run's image count
          static const char *const tags[] = {"loss/D",
                                             "loss/G",
                                             "D/x",
                                             "D/G_z",
                                             "D/logit_x",
                                             "D/logit_G_z",
                                             "speed/img_per_s",
                                             "speed/sec_per_kimg"};
          const double v[] = {acc.loss_d / nacc,
                              acc.loss_g / nacc,
                              acc.d_real / nacc,
                              acc.d_fake / nacc,
                              acc.l_real / nacc,
                              acc.l_fake / nacc,
                              ips,
                              ips > 0 ? 1000.0 / ips : 0.0};
          if (ganc_tb_scalars(T.tb, T.nimg, tags, v, 8, &err)) {
            tb_failed(&T, &err);
            memset(&err, 0, sizeof err);
          }
        }
        { // one fixed-width line per report; on a terminal above the progress bar
          ganc_progress_clear(&pg);
          char eta[32];
          int64_t left = total > T.nimg ? total - T.nimg : 0; // the last batch may overshoot
          ganc_format_duration(ips > 0 ? (double)left / ips : -1, eta, sizeof eta);
          fprintf(stderr,
                  "kimg %9.3f | loss_D %6.3f | loss_G %6.3f | D(x) %5.3f | D(G(z)) %5.3f | "
                  "%7.1f img/s | %7.2f s/kimg | ETA %s\n",
                  (double)T.nimg / 1000.0, acc.loss_d / nacc, acc.loss_g / nacc, acc.d_real / nacc,
                  acc.d_fake / nacc, ips, ips > 0 ? 1000.0 / ips : 0.0, eta);
          fflush(stderr);
        }
      }
      memset(&acc, 0, sizeof acc);
      nacc = 0;
      t_report = now;
      nimg_report = T.nimg;
      while (next_report <= T.nimg)
        next_report += report_every;
    }
    if (T.nimg >= next_snap) {
      ganc_progress_clear(&pg);
      checked_snapshot(&T, nacc);
      saved_now = 1;
      while (next_snap <= T.nimg)
        next_snap += snap_every;
    }
    if (metrics_every > 0 && T.nimg >= next_metrics) { // FID on its own schedule
      ganc_progress_clear(&pg);
      T.ctx.bn_sync = !strcmp(T.cfg.batchnorm, "sync");
      recalibrate_ema(&T); // every rank: a collective under train.batchnorm = sync
      T.ctx.bn_sync = 0;
      if (T.lead) run_metrics(&T);
      while (next_metrics <= T.nimg)
        next_metrics += metrics_every;
    }
  }
  ganc_progress_clear(&pg);
  if (!saved_now && T.nimg > start_nimg) { // the end of the run, or a stop signal
    checked_snapshot(&T, nacc);
  }
  double el = ganc_now() - t0;
  if (T.lead)
    printf("%s at kimg %.3f (step %lld) after %.1f s (%.1f img/s); checkpoint: %s/latest\n",
           g_stop ? "stopped" : "finished", (double)T.nimg / 1000.0, (long long)T.step, el,
           el > 0 ? (double)(T.nimg - start_nimg) / el : 0.0, out);

  if (T.log) fclose(T.log);
  if (T.ctx.tune_log) fclose(T.ctx.tune_log);
  T.ctx.tune_log = NULL;
  ganc_tb_close(T.tb);
  ganc_featnet_free(T.fn, &T.ctx);
  ganc_feat_stats_free(&T.fid_real);
  ganc_loader_close(T.loader);
  trainer_free(&T);
  free(T.cfg_text);
  free(T.data_dir);
  free(resume_path);
  ganc_ckpt_meta_free(&meta);
  ganc_ctx_release(&T.ctx);
  ganc_comm_finalize(&T.comm); // every rank is here: the last snapshot was the last collective
  return GANC_EXIT_OK;
}

// ---- benchmark: whole iterations on synthetic batches
// ---------------------------------------------
int ganc_train_benchmark(const char *config, const char *const *sets, int nsets, const char *device,
                         int warmup, int steps, ganc_step_timing *out, ganc_prof **profile,
                         ganc_err *err) {
  trainer T;
  memset(&T, 0, sizeof T);
  ganc_config_defaults(&T.cfg);
  if (ganc_config_load_file(&T.cfg, config, err)) return -1;
  for (int i = 0; i < nsets; i++)
    if (ganc_config_set(&T.cfg, sets[i], err)) return -1;
  if (!T.cfg.resolution) T.cfg.resolution = 64;
  if (!T.cfg.channels) T.cfg.channels = 3;
  // No dataset here: a conditional recipe is timed with 10 classes unless it names its own.
  if (!strcmp(T.cfg.conditional, "auto")) snprintf(T.cfg.conditional, 8, "no");
  if (!strcmp(T.cfg.conditional, "yes") && !T.cfg.classes) T.cfg.classes = 10;
  if (ganc_config_validate(&T.cfg, err)) return -1;
  if (ganc_ctx_init_device(&T.ctx, device, T.cfg.threads, !strcmp(T.cfg.backend, "cudnn"), NULL,
                           err))
    return -1;
  ctx_set_precision(&T.ctx, &T.cfg);
  trainer_alloc(&T);
  net_init_weights(&T.ctx, &T.G, T.cfg.seed, GANC_RNG_INIT_G);
  net_init_weights(&T.ctx, &T.D, T.cfg.seed, GANC_RNG_INIT_D);
  if (!T.G_ema.param_donor) ganc_copy(&T.ctx, T.G_ema.p, T.G.p, T.G.nparam_floats);
  // Synthetic real images: the loader's speed is measured on its own (ganc-bench --loader).
  size_t ib = (size_t)T.B * T.R * T.R * T.C;
  uint8_t *images = xmalloc(ib);
  for (size_t i = 0; i < ib; i++)
    images[i] = (uint8_t)(ganc_rng_u32(1, 7, i / 4096, (uint32_t)(i % 4096)));
  int32_t *labels = xcalloc((size_t)T.B, sizeof(int32_t));
  for (int i = 0; i < T.B; i++)
    labels[i] = T.ncls ? i % T.ncls : -1;
  double *ms = xmalloc(sizeof(double) * (size_t)(steps > 0 ? steps : 1));
  double *host = xmalloc(sizeof(double) * (size_t)(steps > 0 ? steps : 1));
  for (int i = 0; i < warmup + steps; i++) { // CUDA events on a GPU, as the PyTorch baseline
    double t0;
    ganc_stopwatch_start(&T.ctx, &t0);
    const double h0 = ganc_now();
    train_step(&T, images, labels);
    const double h = (ganc_now() - h0) * 1e3; // the host's share: issuing the step's work
    double t = ganc_stopwatch_ms(&T.ctx, t0);
    if (i >= warmup) ms[i - warmup] = t, host[i - warmup] = h;
    if (i == warmup - 1)
      ganc_backend_reset_peak(&T.ctx); // steady state, as PyTorch (no warm-up: all)
  }
  qsort(ms, (size_t)steps, sizeof(double), ganc_cmp_double);
  qsort(host, (size_t)steps, sizeof(double), ganc_cmp_double);
  out->host_ms = host[steps / 2];
  free(host);
  out->median_ms = ms[steps / 2];
  out->min_ms = ms[0];
  out->img_per_s = 1e3 * T.B / out->median_ms;
  out->batch = T.B;
  out->peak_bytes = ganc_backend_peak_bytes(&T.ctx);
  out->graph = T.graph != NULL;
  ganc_device_describe(&T.ctx, out->device, sizeof out->device);
  if (profile) {
    // As many steps again, eagerly, with each op between two marks (core/prof.h): the kernels of
    // a replayed graph cannot be told apart.
    ganc_graph_free(T.graph);
    T.graph = NULL;
    T.use_graph = 0;
    *profile = ganc_prof_new(steps);
    T.ctx.prof = *profile;
    for (int i = 0; i < steps; i++) {
      double t0;
      ganc_prof_step_begin(&T.ctx);
      ganc_stopwatch_start(&T.ctx, &t0);
      train_step(&T, images, labels);
      ganc_prof_step_end(&T.ctx, ganc_stopwatch_ms(&T.ctx, t0));
    }
    T.ctx.prof = NULL;
  }
  free(ms);
  free(images);
  free(labels);
  trainer_free(&T);
  ganc_ctx_release(&T.ctx);
  return 0;
}
