// metrics.c — ganc-metrics: FID, KID and precision/recall between two sets of image features
// (metrics/distances.h). Today it reads the features from HDF5 files (dataset "features",
// float32 [N, d]: Inception-v3 pool features computed elsewhere, or any feature network's);
// computing them from shards, runs and folders with ganc's own Inception-v3 is the next step of
// issue 13 (docs/METRICS.md).
#include "metrics/metrics.h"

#include "core/check.h"
#include "core/device.h"
#include "core/util.h"
#include "data/shard.h"
#include "io/h5attr.h"
#include "metrics/distances.h"
#include "metrics/featnet.h"
#include "sample/sample.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
  fputs("usage: ganc-metrics --featnet NET.h5 --real DIR --fake DIR|RUN|CKPT [options]\n"
        "       ganc-metrics --features REAL.h5 FAKE.h5 [options]\n"
        "\n"
        "FID, KID and precision/recall between real and generated images, in the features of a\n"
        "feature network (NET.h5: Inception-v3 for the standard metrics; scripts/featnet.py and\n"
        "docs/METRICS.md say how to make one) computed here from two shard folders made by\n"
        "ganc-prep, or generated here by a checkpoint or a run's latest (G_ema, seeds 0, 1, ...\n"
        "as ganc-sample draws them: as many as the reals taken); or between two\n"
        "sets of features computed elsewhere (each file: dataset `features`, float32 [N, d]).\n"
        "\n"
        "options:\n"
        "  -n N              images taken from each folder, evenly spaced (default: all)\n"
        "  --batch B         images per feature-network batch (default 16)\n"
        "  --device auto|cpu|cuda\n"
        "  --save-features PREFIX   also write PREFIX-real.h5 and PREFIX-fake.h5\n"
        "  --kid-subsets N   KID's random subsets (default 100)\n"
        "  --kid-size M      rows per KID subset (default 1000; at most the smaller set)\n"
        "  --pr-k K          precision/recall's k-th neighbour (default 3; 0 = skip: it costs\n"
        "                    N² distances)\n"
        "  --seed S          KID's subsets (default 0)\n"
        "  -h, --help        this text\n"
        "\n"
        "Prints one line per metric and a JSON line.\n",
        f);
}

// The features of `path`: dataset "features", 2-D, converted to float32 by HDF5. Exits with a
// message naming the file and what is wrong.
static float *read_features(const char *path, int64_t *n, int *d) {
  if (!ganc_is_file(path))
    ganc_die(GANC_EXIT_USAGE, "%s: no such file\n---> HINT: give two HDF5 files of features", path);
  char hb[512];
  // Only HDF5's checksummed layout (superblock 2+), as for feature networks (featnet.c): HDF5 1.10
  // reads a damaged header of the old layout out of bounds instead of refusing it.
  ganc_err se = {0};
  const int layout = ganc_h5_sniff(path, NULL, &se);
  if (layout < 0) ganc_die(GANC_EXIT_USAGE, "%s %s", path, se.msg);
  if (layout != GANC_H5_CHECKSUMMED)
    ganc_die(GANC_EXIT_USAGE,
             "%s is an HDF5 file without metadata checksums (an old layout)\n---> HINT: write it "
             "with h5py.File(path, \"w\", libver=\"latest\")",
             path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    ganc_die(GANC_EXIT_USAGE, "%s is not a readable HDF5 file (%s)", path,
             ganc_h5_last_error(hb, 512));
  hid_t ds = H5Dopen2(f, "features", H5P_DEFAULT);
  if (ds < 0) {
    H5Fclose(f);
    ganc_die(GANC_EXIT_USAGE,
             "%s has no dataset `features`\n---> HINT: write the features as float32 [N, d] under "
             "/features",
             path);
  }
  hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
  hsize_t dims[2] = {0, 0};
  const int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  const int is_float = ty >= 0 && H5Tget_class(ty) == H5T_FLOAT;
  if (rank == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  if (rank != 2 || !is_float || dims[0] < 2 || dims[1] < 1 || dims[1] > 65536 ||
      dims[0] > ((hsize_t)1 << 40) / dims[1]) {
    H5Dclose(ds);
    H5Fclose(f);
    ganc_die(GANC_EXIT_USAGE,
             "%s: `features` must be floats [N, d] with N >= 2 and 1 <= d <= 65536 (it is %s, "
             "rank %d, %llu x %llu)",
             path, is_float ? "floats" : "not floats", rank, (unsigned long long)dims[0],
             (unsigned long long)dims[1]);
  }
  float *v = xmalloc(sizeof(float) * (size_t)(dims[0] * dims[1]));
  if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
    free(v);
    H5Dclose(ds);
    H5Fclose(f);
    ganc_die(GANC_EXIT_USAGE, "%s: cannot read `features` (%s)", path, ganc_h5_last_error(hb, 512));
  }
  H5Dclose(ds);
  H5Fclose(f);
  for (size_t i = 0; i < (size_t)(dims[0] * dims[1]); i++)
    if (!isfinite(v[i])) {
      free(v);
      ganc_die(GANC_EXIT_USAGE, "%s: `features` holds NaN or Inf (row %zu)", path,
               i / (size_t)dims[1]);
    }
  *n = (int64_t)dims[0];
  *d = (int)dims[1];
  return v;
}

static long parse_long(const char *opt, const char *v, long lo, long hi) {
  char *end;
  long x = strtol(v, &end, 10);
  if (end == v || *end || x < lo || x > hi)
    ganc_die(GANC_EXIT_USAGE, "%s must be a whole number from %ld to %ld, not '%s'", opt, lo, hi,
             v);
  return x;
}

// A features file: dataset `features` float32 [n, d] (written whole, then renamed).
static void write_features(const char *path, const float *f, int64_t n, int d) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS); // checksummed metadata: what read_features requires
  if (fapl >= 0) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  const hsize_t dims[2] = {(hsize_t)n, (hsize_t)d};
  hid_t sp = file >= 0 ? H5Screate_simple(2, dims, NULL) : -1;
  hid_t ds = sp >= 0 ? H5Dcreate2(file, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                                  H5P_DEFAULT)
                     : -1;
  const int ok = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f) >= 0;
  if (ds >= 0) H5Dclose(ds);
  if (sp >= 0) H5Sclose(sp);
  const int closed = file >= 0 && H5Fclose(file) >= 0;
  char hb[512];
  if (!ok || !closed || rename(tmp, path) != 0) {
    unlink(tmp);
    ganc_die(GANC_EXIT_RUNTIME, "cannot write %s (%s)", path, ganc_h5_last_error(hb, 512));
  }
}

// Where images come from: a shard folder (ganc-prep) or a generator (a checkpoint, or a run
// folder's latest: G_ema, seeds 0, 1, ... as ganc-sample draws them).
typedef struct source {
  ganc_dataset ds;
  ganc_generator *gen;
  int64_t count; // images available (a generator: unlimited)
  int64_t n;     // images taken
  int R, C;
} source;

static int is_generator(const char *path) {
  char p[4200];
  snprintf(p, sizeof p, "%s/latest", path);
  return ganc_is_file(path) || (ganc_is_dir(path) && ganc_is_file(p));
}

static void source_open(source *s, const char *path, const char *device, int batch) {
  memset(s, 0, sizeof *s);
  if (is_generator(path)) {
    s->gen = ganc_generator_open(path, device, batch);
    ganc_generator_shape(s->gen, &s->R, &s->C);
    s->count = INT64_MAX;
    return;
  }
  ganc_err err = {0};
  if (ganc_dataset_open(path, &s->ds, &err)) ganc_die_err(&err);
  s->R = s->ds.meta.resolution;
  s->C = s->ds.meta.channels;
  s->count = s->ds.count;
}

// Images at .. at + m − 1 of n taken: a folder's evenly spaced, a generator's seeds.
static void source_images(source *s, int64_t at, int m, int64_t n, uint8_t *out) {
  if (s->gen) {
    ganc_generator_seeds(s->gen, at, m, out);
    return;
  }
  ganc_err err = {0};
  for (int i = 0; i < m; i++)
    if (ganc_dataset_read_image(&s->ds, (at + i) * s->ds.count / n,
                                out + (size_t)i * s->ds.image_bytes, NULL, &err))
      ganc_die_err(&err);
}

// The images callback of ganc_featnet_features: of the source's n taken.
static void source_cb(void *user, int64_t at, int m, uint8_t *out) {
  source *s = user;
  source_images(s, at, m, s->n, out);
}

static void source_close(source *s) {
  if (s->gen)
    ganc_generator_close(s->gen);
  else
    ganc_dataset_close(&s->ds);
}

// Features of n images of `path` (n <= 0: a folder's all; a generator needs n).
static float *features_of(const char *net, const char *path, const char *device, int batch,
                          int64_t n, int64_t *rows, int *dim) {
  source src;
  source_open(&src, path, device, batch);
  if (n <= 0 || n > src.count) n = src.count;
  if (n < 2)
    ganc_die(GANC_EXIT_USAGE, "%s holds %lld images; at least 2 are needed", path,
             (long long)src.count);
  ganc_ctx ctx;
  ganc_err err = {0};
  if (ganc_ctx_init_device(&ctx, device, 0, 0, NULL, &err)) ganc_die_err(&err);
  ganc_featnet *fn;
  if (ganc_featnet_load(net, &ctx, src.R, src.C, batch, &fn, &err)) ganc_die_err(&err);
  const int d = ganc_featnet_dim(fn);
  src.n = n;
  double t0 = ganc_now();
  float *f = ganc_featnet_features(fn, &ctx, n, source_cb, &src, stderr);
  const double dt = ganc_now() - t0;
  fprintf(stderr, "features of %lld %s of %s by %s: %.1f s (%.1f images/s)\n", (long long)n,
          src.gen ? "generated images (seeds 0..)" : "images",
          src.gen ? ganc_generator_path(src.gen) : path, ganc_featnet_name(fn), dt,
          dt > 0 ? (double)n / dt : 0.0);
  ganc_featnet_free(fn, &ctx);
  ganc_ctx_release(&ctx);
  source_close(&src);
  *rows = n;
  *dim = d;
  return f;
}

int ganc_metrics_main(int argc, char **argv) {
  const char *a_path = NULL, *b_path = NULL, *net = NULL, *real = NULL, *fake = NULL;
  const char *device = "auto", *save = NULL;
  int subsets = 100, size = 1000, k = 3, batch = 16;
  int64_t nimg = 0;
  uint64_t seed = 0;
  ganc_h5_quiet();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return GANC_EXIT_OK;
    }
    if (!strcmp(a, "--features")) {
      if (i + 2 >= argc) ganc_die(GANC_EXIT_USAGE, "--features needs two files (REAL FAKE)");
      a_path = argv[++i];
      b_path = argv[++i];
      continue;
    }
    static const char *const valued[] = {"--kid-subsets", "--kid-size", "--pr-k",         "--seed",
                                         "--featnet",     "--real",     "--fake",         "-n",
                                         "--batch",       "--device",   "--save-features"};
    int which = -1;
    for (int q = 0; q < 11; q++)
      if (!strcmp(a, valued[q])) which = q;
    if (which < 0) ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see ganc-metrics --help)", a);
    if (i + 1 >= argc) ganc_die(GANC_EXIT_USAGE, "%s needs a value", a);
    const char *v = argv[++i];
    if (which == 0) subsets = (int)parse_long(a, v, 1, 100000);
    if (which == 1) size = (int)parse_long(a, v, 2, 1000000);
    if (which == 2) k = (int)parse_long(a, v, 0, 1000);
    if (which == 3) seed = (uint64_t)parse_long(a, v, 0, 0x7fffffffL);
    if (which == 4) net = v;
    if (which == 5) real = v;
    if (which == 6) fake = v;
    if (which == 7) nimg = parse_long(a, v, 2, 100000000);
    if (which == 8) batch = (int)parse_long(a, v, 1, 4096);
    if (which == 9) device = v;
    if (which == 10) save = v;
  }
  const int by_net = net || real || fake;
  if ((!a_path && !by_net) || (a_path && by_net) || (by_net && (!net || !real || !fake))) {
    usage(stderr);
    return GANC_EXIT_USAGE;
  }
  int64_t na, nb;
  int da, db;
  float *fa, *fb;
  if (by_net) {
    if (is_generator(real))
      ganc_die(GANC_EXIT_USAGE,
               "--real %s is a checkpoint or run; the reals are a shard folder "
               "(ganc-prep)",
               real);
    fa = features_of(net, real, device, batch, nimg, &na, &da);
    // A generator makes as many images as the reals taken (the same n for both sets).
    fb = features_of(net, fake, device, batch, nimg > 0 ? nimg : na, &nb, &db);
    if (save) {
      char p[4200];
      snprintf(p, sizeof p, "%s-real.h5", save);
      write_features(p, fa, na, da);
      snprintf(p, sizeof p, "%s-fake.h5", save);
      write_features(p, fb, nb, db);
    }
  } else {
    fa = read_features(a_path, &na, &da);
    fb = read_features(b_path, &nb, &db);
  }
  if (da != db) {
    free(fa);
    free(fb);
    ganc_die(GANC_EXIT_USAGE, "%s has %d features per image, %s has %d: not comparable", a_path, da,
             b_path, db);
  }
  ganc_err err = {0};
  ganc_feat_stats sa, sb;
  double fid = 0, kid = 0, kid_std = 0, prec = -1, rec = -1;
  if (ganc_feat_stats_compute(fa, na, da, &sa, &err) ||
      ganc_feat_stats_compute(fb, nb, db, &sb, &err) || ganc_fid(&sa, &sb, &fid, &err) ||
      ganc_kid(fa, na, fb, nb, da, subsets, size, seed, &kid, &kid_std, &err) ||
      (k > 0 && ganc_precision_recall(fa, na, fb, nb, da, k, &prec, &rec, &err)))
    ganc_die_err(&err);
  printf("FID        %.6f\n", fid);
  printf("KID        %.8f (std %.8f over %d subsets of %lld)\n", kid, kid_std, subsets,
         (long long)(size < na ? (size < nb ? size : nb) : (na < nb ? na : nb)));
  if (k > 0) printf("precision  %.6f\nrecall     %.6f   (k = %d)\n", prec, rec, k);
  printf("{\"fid\": %.9g, \"kid\": %.9g, \"kid_std\": %.9g, \"precision\": %.9g, \"recall\": "
         "%.9g, \"n_real\": %lld, \"n_fake\": %lld, \"dims\": %d}\n",
         fid, kid, kid_std, prec, rec, (long long)na, (long long)nb, da);
  ganc_feat_stats_free(&sa);
  ganc_feat_stats_free(&sb);
  free(fa);
  free(fb);
  return GANC_EXIT_OK;
}
