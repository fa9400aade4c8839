// sample.c — ganc-sample: images from a checkpoint's generator. Loads only the generator (G_ema by
// default), builds it from the checkpoint's own config, and writes grids, one PNG per seed, or a
// latent walk. Every latent is a pure function of its seed (Philox), so image k of a grid equals
// the single image of the same seed, and the same seed gives the same bytes on every run.
#include "sample/sample.h"

#include "core/check.h"
#include "core/device.h"
#include "core/philox.h"
#include "core/util.h"
#include "io/imgio.h"
#include "model/arch.h"
#include "ops/dispatch.h"
#include "train/checkpoint.h"
#include "train/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fputs(
      "usage: ganc-sample --ckpt FILE|RUN_DIR (--out FILE | --outdir DIR) [options]\n"
      "\n"
      "  --ckpt FILE|RUN_DIR   a checkpoint, or a run folder (its latest checkpoint)\n"
      "  --out FILE            one grid PNG (or, with --interp and a .gif name, an animation)\n"
      "  --outdir DIR          one PNG per seed (seed0042.png), or per frame with --interp\n"
      "  --seeds LIST          seeds, e.g. 0-63 or 1,7,42 or 0-3,10 (default 0-63)\n"
      "  --n N --seed S        the same as --seeds S-(S+N-1)\n"
      "  --grid RxC            grid rows x columns (default: about square)\n"
      "  --truncation PSI      pull latents toward the mean: z' = PSI * z (default 1 = none)\n"
      "  --no-ema              the raw generator instead of its moving average\n"
      "  --interp LIST         a latent walk through these seeds (spherical interpolation)\n"
      "  --frames F            frames per segment of the walk (default 24)\n"
      "  --fps N               GIF frame rate (default 12)\n"
      "  --batch N             images generated at once (default 64)\n"
      "  --device auto|cpu|cuda\n"
      "  --save-latents FILE   also write the seeds' latents (after truncation) as a NumPy file\n"
      "                        [n, z_dim] float32 (and FILE.classes.npy [n] int64 when class-\n"
      "                        conditional): the inputs of `ganc-export --onnx`'s model\n"
      "A class-conditional checkpoint (model.conditional = yes):\n"
      "  --class NAME|K        every image of this class (its name, as the dataset's sub-folder,\n"
      "                        or its number 0..classes-1); default: seed s draws class s mod\n"
      "                        the number of classes\n"
      "  --per-class           a grid of one row per class, the seeds in every row\n"
      "\n"
      "Every PNG is labelled as machine-generated (IPTC digital source type\n"
      "trainedAlgorithmicMedia) and records the checkpoint's SHA-256, the seed and truncation.\n",
      f);
}

// Limits that keep every size below int and memory reasonable.
enum { MAX_IMAGES = 100000, MAX_FRAMES = 100000 };

// Parses "0-63", "1,7,42", "0-3,10" into a malloc'd list.
static int64_t *parse_seeds(const char *s, int *n) {
  int cap = 16;
  int64_t *v = xmalloc(sizeof(int64_t) * (size_t)cap);
  *n = 0;
  const char *p = s;
  while (*p) {
    char *end;
    errno = 0;
    long long a = strtoll(p, &end, 10), b = a;
    if (end == p || a < 0 || errno) goto bad;
    p = end;
    if (*p == '-') {
      b = strtoll(p + 1, &end, 10);
      if (end == p + 1 || b < a || errno) goto bad;
      p = end;
    }
    // Counted, so a range ending at the largest seed cannot overflow the loop variable.
    if (b - a >= MAX_IMAGES || *n + (b - a) >= MAX_IMAGES)
      ganc_die(GANC_EXIT_USAGE, "--seeds %s asks for more than %d images", s, MAX_IMAGES);
    for (long long c = 0; c <= b - a; c++) {
      if (*n == cap) v = xrealloc(v, sizeof(int64_t) * (size_t)(cap *= 2));
      v[(*n)++] = a + c;
    }
    if (*p == ',')
      p++;
    else if (*p)
      goto bad;
  }
  if (*n == 0) goto bad;
  return v;
bad:
  ganc_die(GANC_EXIT_USAGE, "seed list '%s' is not like 0-63, 1,7,42 or 0-3,10", s);
}

// Parses --grid "RxC" (each 1..1000), or exits 2.
static void parse_grid(const char *grid, int *rows, int *cols) {
  char *end;
  errno = 0;
  long r = strtol(grid, &end, 10), c = 0;
  if (*end == 'x') c = strtol(end + 1, &end, 10);
  if (*end || errno || r < 1 || c < 1 || r > 1000 || c > 1000) // range before the int casts
    ganc_die(GANC_EXIT_USAGE, "--grid expects RxC like 8x8 (each 1..1000), got '%s'", grid);
  *rows = (int)r;
  *cols = (int)c;
}

// A NumPy .npy file (format 1.0): the magic, a header dict padded with spaces to a multiple of
// 64 bytes, then the data, C order, little-endian (descr "<f4" or "<i8"). Exits 1 naming the file
// when it cannot be written.
static void write_npy(const char *path, const char *descr, const int64_t *shape, int ndim,
                      const void *data, size_t bytes) {
  char dict[256], dims[128] = "";
  for (int i = 0; i < ndim; i++) {
    size_t l = strlen(dims);
    snprintf(dims + l, sizeof dims - l, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
  }
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     descr, dims);
  const int total = (10 + len + 1 + 63) / 64 * 64; // magic 6, version 2, header length 2
  char head[320];
  memcpy(head, "\x93NUMPY\x01\x00", 8);
  head[8] = (char)((total - 10) & 0xff);
  head[9] = (char)((total - 10) >> 8);
  memcpy(head + 10, dict, (size_t)len);
  memset(head + 10 + len, ' ', (size_t)(total - 10 - len - 1));
  head[total - 1] = '\n';
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(head, 1, (size_t)total, f) != (size_t)total ||
      fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0)
    ganc_die(GANC_EXIT_RUNTIME, "cannot write %s: %s", path, strerror(errno));
}

// Spherical interpolation between two latents (falls back to linear when nearly parallel).
static void slerp(const float *a, const float *b, int n, double t, float *out) {
  double na = 0, nb = 0, dot = 0;
  for (int i = 0; i < n; i++) {
    na += (double)a[i] * a[i];
    nb += (double)b[i] * b[i];
    dot += (double)a[i] * b[i];
  }
  double c = dot / (sqrt(na * nb) + 1e-30);
  if (c > 1) c = 1;
  if (c < -1) c = -1;
  double om = acos(c), so = sin(om);
  for (int i = 0; i < n; i++) {
    if (so < 1e-6)
      out[i] = (float)((1 - t) * a[i] + t * b[i]);
    else
      out[i] = (float)(sin((1 - t) * om) / so * a[i] + sin(t * om) / so * b[i]);
  }
}

typedef struct sampler {
  ganc_ctx ctx;
  ganc_config cfg;
  ganc_net G;
  int batch, R, C, nz;
  int ncls;            // classes of a conditional generator (0: unconditional)
  float *z;            // backend [batch, nz]
  uint8_t *u8;         // backend [batch, R, R, C]
  int32_t *labels_dev; // backend [batch]: the classes of a conditional generator's images
} sampler;

// The generator `group` of checkpoint ckpt (its metadata read) on `device`, for batches of up to
// `batch` images. Exits with a message on a checkpoint it cannot use.
static void sampler_open(sampler *S, const char *ckpt, const ganc_ckpt_meta *meta,
                         const char *device, int batch, const char *group) {
  ganc_err err = {0};
  memset(S, 0, sizeof *S);
  ganc_config_defaults(&S->cfg);
  if (ganc_config_load_string(&S->cfg, meta->config, ckpt, &err) ||
      ganc_config_validate(&S->cfg, &err))
    ganc_die_err(&err);
  if (S->cfg.resolution == 0 || S->cfg.channels == 0)
    ganc_die(GANC_EXIT_USAGE, "checkpoint %s has an unresolved model shape in its config", ckpt);
  if (ganc_ctx_init_device(&S->ctx, device, S->cfg.threads, 0, stderr, &err)) ganc_die_err(&err);
  S->batch = batch;
  S->R = S->cfg.resolution;
  S->C = S->cfg.channels;
  S->nz = S->cfg.z_dim;
  S->ncls = !strcmp(S->cfg.conditional, "yes") ? S->cfg.classes : 0;
  ganc_build_g(&S->G, &S->cfg, group);
  net_finalize(&S->ctx, &S->G, batch, 0);
  if (ganc_ckpt_load_net(ckpt, &S->ctx, &S->G, group, 0, &err)) ganc_die_err(&err);
  { // The rest of the file (D, Adam moments) is not needed here, but its damage is worth knowing.
    ganc_err v = {0};
    if (ganc_ckpt_verify(ckpt, &v))
      fprintf(stderr, "warning: %s\n(the generator sampled here, %s, passed every check)\n", v.msg,
              group);
  }
  S->z = ganc_alloc(&S->ctx, (size_t)batch * S->nz);
  if (S->ncls) {
    S->labels_dev = ganc_alloc_bytes(&S->ctx, sizeof(int32_t) * (size_t)batch);
    S->G.labels = S->labels_dev;
  }
  S->u8 = ganc_alloc_bytes(&S->ctx, (size_t)batch * S->R * S->R * S->C);
}

static void sampler_close(sampler *S) {
  ganc_free(&S->ctx, S->u8);
  ganc_free(&S->ctx, S->z);
  ganc_free(&S->ctx, S->labels_dev);
  net_free(&S->ctx, &S->G);
  ganc_ctx_release(&S->ctx);
}

// The name of class k as the checkpoint recorded it (the dataset's sub-folder), or "class k".
static const char *class_name(const ganc_ckpt_meta *m, int k) {
  static __thread char buf[32]; // a name for one message at a time
  if (k >= 0 && k < m->nclasses && m->class_names && m->class_names[k] && *m->class_names[k])
    return m->class_names[k];
  snprintf(buf, sizeof buf, "class %d", k);
  return buf;
}

// --class NAME|K: a class name the checkpoint recorded, or a number 0..ncls-1; else exit 2 with
// the classes listed.
static int parse_class(const char *arg, const ganc_ckpt_meta *m, int ncls, const char *ckpt) {
  for (int k = 0; k < m->nclasses && k < ncls; k++)
    if (m->class_names && m->class_names[k] && !strcmp(m->class_names[k], arg)) return k;
  char *end;
  errno = 0;
  long k = strtol(arg, &end, 10);
  if (*arg && !*end && !errno && k >= 0 && k < ncls) return (int)k;
  char list[1024] = "";
  for (int j = 0; j < ncls && strlen(list) < sizeof list - 64; j++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d = %s", j ? ", " : "", j,
             class_name(m, j));
  ganc_die(GANC_EXIT_USAGE, "--class %s: %s has %d classes: %s", arg, ckpt, ncls, list);
}

// Renders n latents zs [n, nz] into imgs [n, R, R, C]. Exits 1 naming the checkpoint when the
// generator's output is not finite (pixels_to_uint8 would write NaN as black, and a black image
// must never pass for a sample): the loader refuses NaN weights, but finite weights can still
// overflow. cls [n]: each image's class (conditional generators; NULL otherwise).
static void render(sampler *S, const char *ckpt, const float *zs, const int32_t *cls, int n,
                   uint8_t *imgs) {
  size_t ib = (size_t)S->R * S->R * S->C;
  float *host = xmalloc(sizeof(float) * (size_t)(n < S->batch ? n : S->batch) * ib);
  for (int at = 0; at < n; at += S->batch) {
    int m = n - at < S->batch ? n - at : S->batch;
    ganc_upload(&S->ctx, S->z, zs + (size_t)at * S->nz, (size_t)m * S->nz);
    if (S->ncls) ganc_upload_bytes(&S->ctx, S->labels_dev, cls + at, sizeof(int32_t) * (size_t)m);
    const float *y = net_forward(&S->ctx, &S->G, S->z, m, 0, -1);
    ganc_download(&S->ctx, host, y, (size_t)m * ib);
    for (size_t i = 0; i < (size_t)m * ib; i++)
      if (!isfinite(host[i]))
        ganc_die(GANC_EXIT_RUNTIME,
                 "the generator of %s produced NaN or Inf (image %d of this batch): its weights "
                 "are damaged or diverged, so no image was written\n---> HINT: sample an earlier "
                 "checkpoint of the run",
                 ckpt, at + (int)(i / ib));
    pixels_to_uint8(&S->ctx, (int64_t)m * ib, y, S->u8);
    ganc_download_bytes(&S->ctx, imgs + (size_t)at * ib, S->u8, (size_t)m * ib);
  }
  free(host);
}

int ganc_sample_main(int argc, char **argv) {
  const char *ckpt_arg = NULL, *out = NULL, *outdir = NULL, *seeds_arg = NULL, *grid = NULL;
  const char *interp = NULL, *device = "auto", *class_arg = NULL, *save_latents = NULL;
  double psi = 1.0;
  int no_ema = 0, frames = 24, fps = 12, batch = 64, per_class = 0;
  long long n_arg = -1, seed_arg = -1;
  ganc_h5_quiet();
  for (int i = 1; i < argc; i++) {
    char a[64];
    const char *inl;
    ganc_opt_split(argv[i], a, sizeof a, &inl);
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return GANC_EXIT_OK;
    }
    if (!strcmp(a, "--no-ema")) {
      if (inl) ganc_die(GANC_EXIT_USAGE, "--no-ema takes no value (see ganc-sample --help)");
      no_ema = 1;
      continue;
    }
    if (!strcmp(a, "--per-class")) {
      if (inl) ganc_die(GANC_EXIT_USAGE, "--per-class takes no value (see ganc-sample --help)");
      per_class = 1;
      continue;
    }
    // Unknown options are named as such before any value is looked for.
    static const char *const with_value[] = {
        "--ckpt",   "--out",    "--outdir",     "--seeds",  "--grid",
        "--interp", "--device", "--truncation", "--frames", "--fps",
        "--batch",  "--n",      "--seed",       "--class",  "--save-latents"};
    size_t k = 0, nk = sizeof with_value / sizeof with_value[0];
    while (k < nk && strcmp(a, with_value[k]))
      k++;
    if (k == nk) ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see ganc-sample --help)", a);
    const char *v = ganc_opt_value(argc, argv, &i, a, inl, "ganc-sample");
    char *end = NULL;
    if (!strcmp(a, "--ckpt"))
      ckpt_arg = v;
    else if (!strcmp(a, "--out"))
      out = v;
    else if (!strcmp(a, "--outdir"))
      outdir = v;
    else if (!strcmp(a, "--seeds"))
      seeds_arg = v;
    else if (!strcmp(a, "--grid"))
      grid = v;
    else if (!strcmp(a, "--interp"))
      interp = v;
    else if (!strcmp(a, "--device"))
      device = v;
    else if (!strcmp(a, "--class"))
      class_arg = v;
    else if (!strcmp(a, "--save-latents"))
      save_latents = v;
    else if (!strcmp(a, "--truncation")) {
      psi = strtod(v, &end);
      if (*end || !(psi >= 0 && psi <= 2))
        ganc_die(GANC_EXIT_USAGE, "--truncation expects a number in 0..2, got '%s'", v);
    } else if (!strcmp(a, "--frames") || !strcmp(a, "--fps") || !strcmp(a, "--batch") ||
               !strcmp(a, "--n") || !strcmp(a, "--seed")) {
      int is_seed = !strcmp(a, "--seed");
      long long hi = is_seed                  ? 1000000000000LL
                     : !strcmp(a, "--frames") ? MAX_FRAMES
                     : !strcmp(a, "--fps")    ? 100
                     : !strcmp(a, "--batch")  ? 4096
                                              : MAX_IMAGES;
      errno = 0;
      long long x = strtoll(v, &end, 10);
      if (*end || errno || x < (is_seed ? 0 : 1) || x > hi)
        ganc_die(GANC_EXIT_USAGE, "%s expects a whole number in %d..%lld, got '%s'", a,
                 is_seed ? 0 : 1, hi, v);
      if (!strcmp(a, "--frames"))
        frames = (int)x;
      else if (!strcmp(a, "--fps"))
        fps = (int)x;
      else if (!strcmp(a, "--batch"))
        batch = (int)x;
      else if (!strcmp(a, "--n"))
        n_arg = x;
      else
        seed_arg = x;
    } else
      ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see ganc-sample --help)", a);
  }
  if (!ckpt_arg || (!out && !outdir)) {
    usage(stderr);
    return GANC_EXIT_USAGE;
  }
  if (out && outdir) ganc_die(GANC_EXIT_USAGE, "give --out or --outdir, not both");
  if ((n_arg >= 0) != (seed_arg >= 0))
    ganc_die(GANC_EXIT_USAGE, "--n and --seed go together (or use --seeds)");
  if (n_arg >= 0 && seeds_arg) ganc_die(GANC_EXIT_USAGE, "give --seeds or --n/--seed, not both");
  if (interp && (seeds_arg || n_arg >= 0 || grid))
    ganc_die(GANC_EXIT_USAGE, "--interp takes its own seed list; drop --seeds/--n/--grid");
  if (per_class && (class_arg || interp || outdir || grid))
    ganc_die(GANC_EXIT_USAGE, "--per-class makes one grid (--out) of every class: drop "
                              "--class/--interp/--outdir/--grid");
  if (interp && out && (strlen(out) < 5 || strcasecmp(out + strlen(out) - 4, ".gif")))
    ganc_die(GANC_EXIT_USAGE,
             "--interp with --out writes an animated GIF: name it *.gif, or use --outdir DIR "
             "for numbered PNG frames");

  { // Seed lists and the grid are checked before the checkpoint is read: a typo costs no load.
    int m, r, c;
    if (seeds_arg || interp) free(parse_seeds(interp ? interp : seeds_arg, &m));
    if (grid) parse_grid(grid, &r, &c);
  }

  // ---- the generator, from the checkpoint's own config ----
  char *ckpt = ganc_ckpt_resolve(ckpt_arg);
  ganc_err err = {0};
  ganc_ckpt_meta meta;
  if (ganc_ckpt_read_meta(ckpt, &meta, &err)) ganc_die_err(&err);
  if (meta.version < GANC_CKPT_VERSION)
    fprintf(stderr,
            "note: %s is a format-%d checkpoint (made by an older ganc): its tensors are "
            "checksummed, its settings are not\n",
            ckpt, meta.version);
  sampler S;
  const char *group = no_ema ? "G" : "G_ema";
  sampler_open(&S, ckpt, &meta, device, batch, group);
  if (!S.ncls && (class_arg || per_class))
    ganc_die(GANC_EXIT_USAGE,
             "%s: --class and --per-class need a class-conditional checkpoint; this one was "
             "trained without classes (model.conditional = %s)",
             ckpt, S.cfg.conditional);
  int fixed_class = -1; // --class, as a number
  if (class_arg) fixed_class = parse_class(class_arg, &meta, S.ncls, ckpt);
  char sha[65];
  if (ganc_sha256_file(ckpt, sha, &err)) ganc_die_err(&err);
  char kimg[32], psis[32];
  snprintf(kimg, sizeof kimg, "%.3f", (double)meta.nimg / 1000.0);
  snprintf(psis, sizeof psis, "%g", psi);
  size_t ib = (size_t)S.R * S.R * S.C;

  // ---- latents ----
  int n = 0;
  int64_t *seeds;
  if (interp)
    seeds = parse_seeds(interp, &n);
  else if (n_arg >= 0) {
    n = (int)n_arg;
    seeds = xmalloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++)
      seeds[i] = seed_arg + i;
  } else
    seeds = parse_seeds(seeds_arg ? seeds_arg : "0-63", &n);
  // --per-class: every seed once per class, row c = class c.
  const int nseeds = n, reps = per_class ? S.ncls : 1;
  if ((int64_t)n * reps > MAX_IMAGES)
    ganc_die(GANC_EXIT_USAGE, "--per-class: %d classes x %d seeds is over %d images", reps, n,
             MAX_IMAGES);
  n *= reps;
  // Usage errors before anything is allocated or rendered: rendering first wastes the time, and
  // an exit with memory held is a leak to LeakSanitizer (exit 1 instead of 2 in the sanitized
  // build).
  int F = 0, rows = 0, cols = 0;
  if (interp) {
    int64_t F64 = (int64_t)(n - 1) * frames + 1;
    if (n < 2) {
      free(seeds);
      ganc_die(GANC_EXIT_USAGE, "--interp needs at least two seeds");
    }
    if (F64 > MAX_FRAMES) {
      free(seeds);
      ganc_die(GANC_EXIT_USAGE, "--interp: %d seeds x %d frames is %lld frames; at most %d", n,
               frames, (long long)F64, MAX_FRAMES);
    }
    F = (int)F64;
  } else if (!outdir) {
    if (per_class) { // one row per class
      rows = S.ncls;
      cols = nseeds;
    } else if (grid) {
      parse_grid(grid, &rows, &cols);
      if (rows * cols < n) {
        free(seeds);
        ganc_die(GANC_EXIT_USAGE, "--grid %s has %d cells for %d images", grid, rows * cols, n);
      }
    } else {
      cols = (int)ceil(sqrt((double)n));
      rows = (n + cols - 1) / cols;
    }
  }
  float *zs = xmalloc(sizeof(float) * (size_t)n * S.nz);
  int32_t *cls = xcalloc((size_t)n, sizeof(int32_t));
  for (int i = 0; i < n; i++) {
    const int64_t sd = seeds[i % nseeds];
    ganc_latent((uint64_t)sd, 0, S.nz, zs + (size_t)i * S.nz);
    for (int k = 0; k < S.nz; k++)
      zs[(size_t)i * S.nz + k] *= (float)psi; // the mean is 0
    // A seed's class depends on the seed alone, so image k of a grid is the image of seed k.
    if (S.ncls)
      cls[i] = per_class ? i / nseeds : fixed_class >= 0 ? fixed_class : (int32_t)(sd % S.ncls);
  }
  if (save_latents) {
    const int64_t zshape[2] = {n, S.nz}, cshape[1] = {n};
    write_npy(save_latents, "<f4", zshape, 2, zs, sizeof(float) * (size_t)n * S.nz);
    if (S.ncls) {
      int64_t *c64 = xmalloc(sizeof(int64_t) * (size_t)n);
      for (int i = 0; i < n; i++)
        c64[i] = cls[i];
      char cp[4200];
      snprintf(cp, sizeof cp, "%s.classes.npy", save_latents);
      write_npy(cp, "<i8", cshape, 1, c64, sizeof(int64_t) * (size_t)n);
      free(c64);
    }
  }
  // What the class of each image was, for the provenance text.
  char classdesc[160] = "";
  if (S.ncls) {
    if (per_class)
      snprintf(classdesc, sizeof classdesc, "one row per class, 0..%d", S.ncls - 1);
    else if (fixed_class >= 0)
      snprintf(classdesc, sizeof classdesc, "%d (%s)", fixed_class, class_name(&meta, fixed_class));
    else
      snprintf(classdesc, sizeof classdesc, "seed mod %d", S.ncls);
  }

  int rc = GANC_EXIT_OK;
  if (interp) {
    float *wz = xmalloc(sizeof(float) * (size_t)F * S.nz);
    for (int s = 0; s + 1 < n; s++)
      for (int f = 0; f < frames; f++)
        slerp(zs + (size_t)s * S.nz, zs + (size_t)(s + 1) * S.nz, S.nz, (double)f / frames,
              wz + ((size_t)s * frames + f) * S.nz);
    memcpy(wz + (size_t)(F - 1) * S.nz, zs + (size_t)(n - 1) * S.nz, sizeof(float) * S.nz);
    uint8_t *imgs = xmalloc((size_t)F * ib);
    int32_t *wcls = xcalloc((size_t)F, sizeof(int32_t)); // the walk keeps the first seed's class
    for (int f = 0; f < F; f++)
      wcls[f] = cls[0];
    render(&S, ckpt, wz, wcls, F, imgs);
    free(wcls);
    if (out) { // a .gif, checked above
      char comment[512];
      snprintf(comment, sizeof comment,
               "latent walk through seeds %s; checkpoint sha256 %s; "
               "truncation %s; network %s%s%s",
               interp, sha, psis, group, S.ncls ? "; class " : "",
               S.ncls ? class_name(&meta, cls[0]) : "");
      if (ganc_gif_write(out, F, S.R, S.R, S.C, imgs, (100 + fps / 2) / fps, comment, &err))
        ganc_die_err(&err);
      printf("wrote %s (%d frames)\n", out, F);
    } else {
      const char *dir = outdir;
      if (ganc_mkdir_p(dir) != 0)
        ganc_die(GANC_EXIT_RUNTIME, "cannot create %s: %s", dir, strerror(errno));
      for (int f = 0; f < F; f++) {
        char path[4200], fr[32];
        snprintf(path, sizeof path, "%s/frame%04d.png", dir, f);
        snprintf(fr, sizeof fr, "%d", f);
        ganc_png_kv kv[] = {{"ganc:checkpoint-sha256", sha},
                            {"ganc:interp-seeds", interp},
                            {"ganc:frame", fr},
                            {"ganc:truncation", psis},
                            {"ganc:network", group},
                            {"ganc:kimg", kimg},
                            {"ganc:class", S.ncls ? class_name(&meta, cls[0]) : ""}};
        ganc_png_meta pm = {1, kv, S.ncls ? 7 : 6};
        if (ganc_png_write(path, S.R, S.R, S.C, imgs + (size_t)f * ib, &pm, &err))
          ganc_die_err(&err);
      }
      printf("wrote %d frames to %s\n", F, dir);
    }
    free(imgs);
    free(wz);
  } else {
    uint8_t *imgs = xmalloc((size_t)n * ib);
    render(&S, ckpt, zs, cls, n, imgs);
    if (outdir) {
      if (ganc_mkdir_p(outdir) != 0)
        ganc_die(GANC_EXIT_RUNTIME, "cannot create %s: %s", outdir, strerror(errno));
      for (int i = 0; i < n; i++) {
        char path[4200], sd[32];
        snprintf(path, sizeof path, "%s/seed%04lld.png", outdir, (long long)seeds[i]);
        snprintf(sd, sizeof sd, "%lld", (long long)seeds[i]);
        char cl[96] = "";
        if (S.ncls) snprintf(cl, sizeof cl, "%d (%s)", cls[i], class_name(&meta, cls[i]));
        ganc_png_kv kv[] = {
            {"ganc:checkpoint-sha256", sha}, {"ganc:seed", sd},   {"ganc:truncation", psis},
            {"ganc:network", group},         {"ganc:kimg", kimg}, {"ganc:class", cl}};
        ganc_png_meta pm = {1, kv, S.ncls ? 6 : 5};
        if (ganc_png_write(path, S.R, S.R, S.C, imgs + (size_t)i * ib, &pm, &err))
          ganc_die_err(&err);
      }
      printf("wrote %d images to %s\n", n, outdir);
    } else {
      uint8_t *sheet = xmalloc((size_t)rows * cols * ib);
      ganc_grid(imgs, n, S.R, S.R, S.C, rows, cols, sheet);
      char seedlist[256];
      snprintf(seedlist, sizeof seedlist, "%s", seeds_arg ? seeds_arg : "");
      if (!seeds_arg)
        snprintf(seedlist, sizeof seedlist, "%lld-%lld", (long long)seeds[0],
                 (long long)seeds[n - 1]);
      ganc_png_kv kv[] = {{"ganc:checkpoint-sha256", sha},
                          {"ganc:seeds", seedlist},
                          {"ganc:grid-order", per_class ? "row-major; row = class, column = seed"
                                                        : "row-major, one seed per cell"},
                          {"ganc:truncation", psis},
                          {"ganc:network", group},
                          {"ganc:kimg", kimg},
                          {"ganc:classes", classdesc}};
      ganc_png_meta pm = {1, kv, S.ncls ? 7 : 6};
      if (ganc_png_write(out, cols * S.R, rows * S.R, S.C, sheet, &pm, &err)) ganc_die_err(&err);
      printf("wrote %s (%d images, %dx%d grid)\n", out, n, rows, cols);
      free(sheet);
    }
    free(imgs);
  }
  free(zs);
  free(cls);
  free(seeds);
  sampler_close(&S);
  ganc_ckpt_meta_free(&meta);
  free(ckpt);
  return rc;
}

// ---- the generator for other programs (ganc-metrics) -------------------------------------------
struct ganc_generator {
  sampler S;
  char *ckpt;
};

ganc_generator *ganc_generator_open(const char *ckpt_or_run, const char *device, int batch) {
  ganc_generator *g = xcalloc(1, sizeof *g);
  g->ckpt = ganc_ckpt_resolve(ckpt_or_run);
  ganc_err err = {0};
  ganc_ckpt_meta meta;
  if (ganc_ckpt_read_meta(g->ckpt, &meta, &err)) ganc_die_err(&err);
  sampler_open(&g->S, g->ckpt, &meta, device, batch, "G_ema");
  ganc_ckpt_meta_free(&meta);
  return g;
}

void ganc_generator_shape(const ganc_generator *g, int *R, int *C) {
  *R = g->S.R;
  *C = g->S.C;
}

void ganc_generator_seeds(ganc_generator *g, int64_t seed0, int n, uint8_t *images) {
  sampler *S = &g->S;
  float *zs = xmalloc(sizeof(float) * (size_t)n * S->nz);
  int32_t *cls = xcalloc((size_t)n, sizeof(int32_t));
  for (int i = 0; i < n; i++) { // as ganc-sample --seeds: seed s, class s mod classes
    ganc_latent((uint64_t)(seed0 + i), 0, S->nz, zs + (size_t)i * S->nz);
    if (S->ncls) cls[i] = (int32_t)((seed0 + i) % S->ncls);
  }
  render(S, g->ckpt, zs, cls, n, images);
  free(zs);
  free(cls);
}

const char *ganc_generator_path(const ganc_generator *g) { return g->ckpt; }

void ganc_generator_close(ganc_generator *g) {
  if (!g) return;
  sampler_close(&g->S);
  free(g->ckpt);
  free(g);
}
