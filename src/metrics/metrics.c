// metrics.c — ganc-metrics: FID, KID and precision/recall between two sets of image features
// (metrics/distances.h). Today it reads the features from HDF5 files (dataset "features",
// float32 [N, d]: Inception-v3 pool features computed elsewhere, or any feature network's);
// computing them from shards, runs and folders with ganc's own Inception-v3 is the next step of
// issue 13 (docs/METRICS.md).
#include "metrics/metrics.h"

#include "core/check.h"
#include "core/util.h"
#include "metrics/distances.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fputs("usage: ganc-metrics --features REAL.h5 FAKE.h5 [options]\n"
        "\n"
        "FID, KID and precision/recall between two sets of image features: REAL.h5 and FAKE.h5\n"
        "each hold a dataset `features`, float32 [N, d] (the same d), one row per image.\n"
        "\n"
        "options:\n"
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
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    ganc_die(GANC_EXIT_USAGE, "%s is not an HDF5 file (%s)", path, ganc_h5_last_error(hb, 512));
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

int ganc_metrics_main(int argc, char **argv) {
  const char *a_path = NULL, *b_path = NULL;
  int subsets = 100, size = 1000, k = 3;
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
    static const char *const valued[] = {"--kid-subsets", "--kid-size", "--pr-k", "--seed"};
    int which = -1;
    for (int q = 0; q < 4; q++)
      if (!strcmp(a, valued[q])) which = q;
    if (which < 0) ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see ganc-metrics --help)", a);
    if (i + 1 >= argc) ganc_die(GANC_EXIT_USAGE, "%s needs a value", a);
    const char *v = argv[++i];
    if (which == 0) subsets = (int)parse_long(a, v, 1, 100000);
    if (which == 1) size = (int)parse_long(a, v, 2, 1000000);
    if (which == 2) k = (int)parse_long(a, v, 0, 1000);
    if (which == 3) seed = (uint64_t)parse_long(a, v, 0, 0x7fffffffL);
  }
  if (!a_path) {
    usage(stderr);
    return GANC_EXIT_USAGE;
  }
  int64_t na, nb;
  int da, db;
  float *fa = read_features(a_path, &na, &da);
  float *fb = read_features(b_path, &nb, &db);
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
