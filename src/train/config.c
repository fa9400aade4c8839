// config.c — the table of every training key, and the INI reading, overriding, checking and
// printing built on it (config.h).
//
// The table below is the only place a key is described: its section, type, field, default,
// allowed values and one-line meaning. Parsing, --set, validation, the error messages and
// configs/reference.ini (ganc_config_to_ini of the defaults) are all generated from it.
//
// Reading. libinih splits the text into (section, key, value). Line numbers come from our own
// line reader (ini_parse_stream with one line per call) rather than INI_HANDLER_LINENO, whose
// value the installed library was built with cannot be seen from its header. The reader also
// strips leading whitespace (so an indented line is never glued to the previous value as an
// inih "multi-line" continuation), drops comment lines whatever their length, and cuts inline
// comments starting with whitespace then '#' or ';'. A load works on a copy and changes nothing
// unless the whole text is valid. Numbers are read with strtod/strtoll, so the C locale's '.' is
// the decimal point.
#include "train/config.h"

#include <ctype.h>    // isspace, tolower
#include <glob.h>     // glob: the configs/*.ini listed in the missing-file hint
#include <ini.h>      // libinih: ini_parse_stream
#include <inttypes.h> // PRIu64
#include <math.h>     // HUGE_VAL, isfinite
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>  // strcasecmp
#include <sys/stat.h> // stat: a config must be a regular file

// ---- the table ----------------------------------------------------------------------------------
typedef enum { T_INT, T_U64, T_DOUBLE, T_BOOL, T_ENUM, T_STR } key_type;

enum {
  F_ZERO = 1,    // int: 0 is allowed besides lo..hi (0 = take it from the dataset)
  F_POW2 = 2,    // int: a power of two (besides 0 when F_ZERO)
  F_LO_OPEN = 4, // double: lo itself is not allowed
  F_HI_OPEN = 8, // double: hi itself is not allowed
};

typedef struct key_def {
  const char *section, *key;
  key_type type;
  size_t off, size;  // the field in ganc_config
  const char *def;   // the default, as text: parsed like a user's value
  double lo, hi;     // int and double keys: the range (hi = HUGE_VAL: no upper bound)
  unsigned flags;    // F_*
  const char *words; // '|'-separated: an enum's words, or an int's values (NULL: lo..hi)
  const char *desc;  // one line: what the key means
} key_def;

// clang-format off
#define FIELD(f) offsetof(ganc_config, f), sizeof(((ganc_config *)0)->f)
#define INT(s, f, def, lo, hi, fl, desc) {s, #f, T_INT, FIELD(f), def, lo, hi, fl, NULL, desc}
#define INTSET(s, f, def, words, desc)   {s, #f, T_INT, FIELD(f), def, 0, 0, 0, words, desc}
#define U64(s, f, def, desc)             {s, #f, T_U64, FIELD(f), def, 0, 0, 0, NULL, desc}
#define DBL(s, f, def, lo, hi, fl, desc) {s, #f, T_DOUBLE, FIELD(f), def, lo, hi, fl, NULL, desc}
#define BOOL(s, f, def, desc)            {s, #f, T_BOOL, FIELD(f), def, 0, 1, 0, NULL, desc}
#define ENUM(s, f, def, words, desc)     {s, #f, T_ENUM, FIELD(f), def, 0, 0, 0, words, desc}
#define STR(s, k, f, def, desc)          {s, #k, T_STR, FIELD(f), def, 0, 0, 0, NULL, desc}
// A key whose field has another name (the [augment] keys live in aug_* fields).
#define BOOLK(s, k, f, def, desc)        {s, #k, T_BOOL, FIELD(f), def, 0, 1, 0, NULL, desc}
#define DBLK(s, k, f, def, lo, hi, fl, desc) {s, #k, T_DOUBLE, FIELD(f), def, lo, hi, fl, NULL, desc}
#define INTK(s, k, f, def, lo, hi, fl, desc) {s, #k, T_INT, FIELD(f), def, lo, hi, fl, NULL, desc}
#define ENUMK(s, k, f, def, words, desc) {s, #k, T_ENUM, FIELD(f), def, 0, 0, 0, words, desc}
#define INF HUGE_VAL
#define LO_OPEN F_LO_OPEN
#define HI_OPEN F_HI_OPEN

static const key_def KEYS[] = {
  // section  field          default    range or words            flags
  ENUM("model", arch,        "dcgan",   "dcgan|resnet",
       "network family; dcgan = transposed convolutions up, strided convolutions down, batch "
       "norm; resnet = residual blocks (SNGAN/BigGAN), nearest upsampling and average pooling"),
  ENUM("model", conditional, "no",      "auto|yes|no",
       "class-conditional G and D (conditional batch norm, projection D); auto = yes when the "
       "shards have 2+ classes"),
  INT("model", classes,      "0",       2, 1000,                  F_ZERO,
      "classes of a conditional model; 0 = the dataset's (set when training starts)"),
  ENUM("model", spectral_norm, "none",  "none|d|gd",
       "spectral normalisation of the weights: none, D's only, or both G's and D's"),
  INT("model", resolution,   "0",       32, 256,                  F_ZERO | F_POW2,
      "image size in pixels (square); 0 = the dataset's"),
  INTSET("model", channels,  "0",       "0|1|3",
         "image channels: 1 = gray, 3 = RGB; 0 = the dataset's"),
  INT("model", z_dim,        "100",     1, 4096,                  0,
      "latent vector size; nz in the PyTorch DCGAN example"),
  INT("model", g_base,       "64",      1, 4096,                  0,
      "generator channels at the output resolution (ngf); doubled per halving, up to g_max"),
  INT("model", d_base,       "64",      1, 4096,                  0,
      "discriminator channels at the input resolution (ndf); doubled per halving, up to d_max"),
  INT("model", g_max,        "512",     1, 8192,                  0,
      "cap on the generator's channels per layer"),
  INT("model", d_max,        "512",     1, 8192,                  0,
      "cap on the discriminator's channels per layer"),
  DBL("model", bn_eps,       "1e-5",    0, 1,                     LO_OPEN,
      "batch-norm epsilon"),
  DBL("model", bn_momentum,  "0.1",     0, 1,                     0,
      "batch-norm running-statistics momentum, PyTorch's convention: new = (1 - m) old + m batch"),
  DBL("model", lrelu_slope,  "0.2",     0, 1,                     HI_OPEN,
      "discriminator leaky-ReLU slope for negative inputs"),

  INT("train", batch,        "128",     1, 65536,                 0,
      "images per step, for the D step and the G step alike"),
  DBL("train", kimg,         "1000",    0, 1e9,                   LO_OPEN,
      "training length, in thousands of real images shown to D"),
  ENUM("train", loss,        "logistic", "logistic|hinge",
       "GAN loss: logistic = non-saturating (the BCE of DCGAN), hinge"),
  DBL("train", lecam,        "0",       0, 1e6,                   0,
      "LeCam regularisation of D (Tseng et al. 2021), its weight: D's outputs on reals are "
      "pulled towards its moving average on fakes and back, which bounds a D memorising a small "
      "folder; 0 = off (0.3 in the paper, with DiffAugment); the logged loss_D leaves it out"),
  DBL("train", lecam_decay,  "0.99",    0, 1,                     HI_OPEN,
      "LeCam: the decay of the moving averages of D's outputs, per step"),
  DBL("train", g_lr,         "0.0002",  0, 1,                     LO_OPEN,
      "generator Adam learning rate"),
  DBL("train", d_lr,         "0.0002",  0, 1,                     LO_OPEN,
      "discriminator Adam learning rate"),
  DBL("train", beta1,        "0.5",     0, 1,                     HI_OPEN,
      "Adam beta1, the decay of the gradient's running mean"),
  DBL("train", beta2,        "0.999",   0, 1,                     HI_OPEN,
      "Adam beta2, the decay of the squared gradient's running mean"),
  DBL("train", adam_eps,     "1e-8",    0, 1,                     LO_OPEN,
      "Adam epsilon"),
  DBL("train", ema_kimg,     "10",      0, 1e9,                   0,
      "half-life of the generator's moving average (EMA), in kimg; 0 = no EMA"),
  DBL("train", ema_rampup,   "0.05",    0, 1,                     0,
      "EMA ramp-up: the half-life is at most this fraction of the images seen so far; 0 = none"),
  BOOL("train", mirror,      "false",
       "random horizontal flips of the real images"),
  U64("train", seed,         "0",
      "seeds the initial weights, the latents and the data order"),
  ENUM("train", device,      "auto",    "auto|cpu|cuda",
       "where to train: auto = CUDA when a GPU is present, else the CPU"),
  ENUM("train", backend,     "ganc",    "ganc|cudnn",
       "CUDA convolutions: ganc = our kernels; cudnn = NVIDIA's cuDNN, to compare runs (its "
       "algorithms are chosen by timing, so cudnn runs are not bit-reproducible)"),
  ENUM("train", precision,   "fp32",    "fp32|tf32|bf16",
       "the convolutions' products: fp32 (bit-reproducible), tf32 or bf16 (tensor cores, GPUs of "
       "compute capability 8.0 and later; the CPU rounds the operands the same way); bf16 also "
       "rounds a convolution's output to bf16 where batch norm is its only reader (PyTorch's "
       "autocast rounds every one); "
       "weights, Adam state, other activations (but see bf16_activations) and every sum stay FP32"),
  STR("train", conv_variant, conv_variant, "auto",
      "CUDA convolution kernels: auto = the fastest of train.precision's variants, timed once "
      "per layer shape (run folder: kernels.log); or one variant by name (ganc-bench --variants)"),
  BOOL("train", fuse_activations, "true",
       "apply a ReLU or leaky ReLU next to a convolution in the convolution's own pass: on its "
       "output where the activation is the convolution's only reader, and its backward on the "
       "gradient the convolution reading it writes; with the same kernel variants the results "
       "are the same bits either way (false: separate passes, to measure the difference)"),
  BOOL("train", fuse_batchnorm_stats, "true",
       "train.precision = tf32 or bf16: a convolution whose output only a batch norm reads sums "
       "that batch norm's statistics (per channel, in double) as it stores the output, so the "
       "batch norm needs no passes of its own over it to find its mean and variance; the "
       "statistics then differ from the two-pass ones only in the rounding of double (fp32 runs "
       "always take the two passes; false: two passes in every precision, to measure the "
       "difference)"),
  BOOL("train", bf16_activations, "true",
       "train.precision = bf16: keep in bf16 the convolution outputs batch norm reads (rounded "
       "for it anyway), and on CUDA the batch-norm outputs (after their ReLU), the activations "
       "straight on a convolution, and the gradients batch norm passes back, where only "
       "convolutions reading bf16 operands read them, so their bytes halve; with the same kernel "
       "variants the results are the same bits, since the readers round them to bf16 anyway"),
  BOOL("train", recompute_batchnorm, "true",
       "do not keep a batch norm's output (after its ReLU) from the forward to the backward where "
       "a convolution alone reads it: make it again from the batch norm's input and statistics "
       "just before that convolution's backward, into one buffer that every such output shares; "
       "the same bits either way, less memory (docs/PERF.md), one more pass over each such output "
       "per backward (false: keep them, to measure the difference)"),
  ENUM("train", cuda_graph,  "auto",    "auto|on|off",
       "CUDA: capture one training step (D and G updates, EMA) as a CUDA graph after a first "
       "plain step, and replay it: no per-kernel launch cost, no host waits inside a step "
       "(statistics are read once per report); auto = on where possible (one process, "
       "train.backend = ganc), on = refuse to run where not; results are bit-identical to off"),
  INT("train", threads,      "0",       0, 1024,                  0,
      "CPU threads; 0 = all cores"),
  ENUM("train", batchnorm,   "local",   "local|sync",
       "batch-norm statistics in data-parallel runs (mpirun -np N): local = each rank's own "
       "share of the batch, as PyTorch DDP; sync = the whole global batch, as one process"),

  DBL("log", report_kimg,    "1",       0, 1e9,                   LO_OPEN,
      "one log line every this many kimg"),
  DBL("log", snapshot_kimg,  "50",      0, 1e9,                   LO_OPEN,
      "an image grid and a checkpoint every this many kimg"),
  INT("log", keep,           "5",       0, 100000,                0,
      "checkpoints kept (the newest ones); 0 = keep all"),
  BOOL("log", tensorboard,    "true",
       "TensorBoard event files in the run folder (scalars every report, the fakes grid every "
       "snapshot): tensorboard --logdir RUN_DIR"),
  INT("log", grid,           "8",       1, 32,                    0,
      "snapshot grids are grid x grid images, from fixed latents"),
  INT("log", holdout,        "0",       0, 100000000,             0,
      "the dataset's last this many images are never trained on; every report logs D's mean "
      "output on them beside the same on as many training images and fakes (logit_holdout, "
      "logit_train, logit_gen) and ADA's r_v = (train - holdout) / (train - gen) "
      "(holdout_ratio): a gap that grows is D memorising its training set. 0 = off"),

  STR("metrics", featnet,    metrics_featnet, "none",
      "FID during training: a feature network file (scripts/featnet.py; Inception-v3 for the "
      "standard FID), or none; relative paths from where ganc-train runs"),
  DBLK("metrics", kimg,      metrics_kimg, "0",  0, 1e9,            0,
       "FID every this many kimg; 0 = at every snapshot"),
  INTK("metrics", n,         metrics_n,   "1000", 2, 1000000,       0,
       "images of each set: the reals evenly spaced, the fakes G_ema's seeds 0..n-1 (ganc-metrics "
       "--featnet NET --real DATA --fake RUN -n N gives the same FID)"),

  INT("data", window_mb,     "256",     1, 1048576,               0,
      "loader shuffle window in MiB; with the seed it fixes the data order"),

  BOOLK("augment", color, aug_color, "false",
        "DiffAugment colour (brightness, saturation, contrast) on every image D sees, real or fake"),
  BOOLK("augment", translation, aug_translation, "false",
        "DiffAugment translation (zero-padded shifts) on every image D sees"),
  DBLK("augment", translation_ratio, aug_translation_ratio, "0.125", 0, 1, 0,
       "translation: shifts of up to this fraction of the image size"),
  BOOLK("augment", cutout, aug_cutout, "false",
        "DiffAugment cutout (a square zeroed at a random place) on every image D sees"),
  DBLK("augment", cutout_ratio, aug_cutout_ratio, "0.5", 0, 1, 0,
       "cutout: the square's side as a fraction of the image size"),
  BOOLK("augment", xflip, aug_xflip, "false",
        "ADA x-flip: every image D sees, real or fake, mirrored with probability p/2 (on top of "
        "train.mirror's flips of the reals)"),
  BOOLK("augment", rot90, aug_rot90, "false",
        "ADA rotate90: every image D sees, real or fake, turned by a random multiple of 90 "
        "degrees with probability p"),
  DBLK("augment", p, aug_p, "1", 0, 1, 0,
       "probability with which each augmentation above applies to each image (ADA's p; 1 = "
       "always, DiffAugment); with ada_target set, p's starting value"),
  DBLK("augment", ada_target, aug_ada_target, "0", 0, 1, 0,
       "0 = p fixed; else ADA adjusts p during training so that its overfitting signal "
       "(ada_signal) stays near this target: p goes up while the signal is above it"),
  ENUMK("augment", ada_signal, aug_ada_signal, "rt", "rt|holdout",
        "ADA's signal: rt = E[sign(D(x) - mean D(G(z)))] over D's outputs on its reals (ADA's "
        "r_t, target 0.6 in ADA), adjusted every ada_interval steps; holdout = the held-out "
        "ratio r_v = (D(train) - D(held-out)) / (D(train) - D(G(z))) of log.holdout's images, "
        "adjusted at every report (needs log.holdout)"),
  DBLK("augment", ada_kimg, aug_ada_kimg, "500", 0, 1e9, LO_OPEN,
       "ADA: kimg over which p can move from 0 to 1 (the adjustment's speed)"),
  INTK("augment", ada_interval, aug_ada_interval, "4", 1, 1000000, 0,
       "ADA: adjust p every this many steps"),
};
// clang-format on
#undef FIELD
#undef INT
#undef INTSET
#undef U64
#undef DBL
#undef BOOL
#undef ENUM
#undef BOOLK
#undef DBLK
#undef INTK
#undef ENUMK
#undef INF
#undef LO_OPEN
#undef HI_OPEN

enum { NKEYS = (int)(sizeof KEYS / sizeof KEYS[0]) };

// ---- small text helpers -------------------------------------------------------------------------
// Appends printf-style text to buf (size n), cutting at the end of the buffer.
__attribute__((format(printf, 3, 4))) static void cat(char *buf, size_t n, const char *fmt, ...) {
  size_t len = strlen(buf);
  if (len + 1 >= n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, n - len, fmt, ap);
  va_end(ap);
}

// The i-th word (from 0) of a '|'-separated list into buf; 0, or -1 past the last word.
static int word_at(const char *words, int i, char *buf, size_t n) {
  const char *p = words;
  for (; i > 0; i--) {
    p = strchr(p, '|');
    if (!p) return -1;
    p++;
  }
  size_t len = strcspn(p, "|");
  if (len >= n) len = n - 1;
  memcpy(buf, p, len);
  buf[len] = 0;
  return 0;
}

static int word_index(const char *words, const char *s) {
  char w[64];
  for (int i = 0; word_at(words, i, w, sizeof w) == 0; i++)
    if (!strcmp(w, s)) return i;
  return -1;
}

// Restricted Damerau-Levenshtein distance (a swap of neighbours counts one), ignoring case.
static int edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 63 || m > 63) return 1 << 20;
  int d[64][64];
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int ai = tolower((unsigned char)a[i - 1]), bj = tolower((unsigned char)b[j - 1]);
      int best = d[i - 1][j - 1] + (ai != bj);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[n][m];
}

// Keeps `cand` as the suggestion for `word` when it is within 2 edits and closer than the last.
static void suggest(const char *word, const char *cand, const char **best, int *best_d) {
  int d = edit_distance(word, cand);
  if (d <= 2 && d < (int)strlen(word) && d < *best_d) {
    *best = cand;
    *best_d = d;
  }
}

// A double as "%.17g" trimmed: the fewest significant digits (1..17) that read back as exactly
// the same value, written plainly (1000, not 1e+03) when %g chose an exponent only for being short.
static void fmt_double(double v, char *buf, size_t n) {
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, n, "%.*g", p, v);
    if (strtod(buf, NULL) == v) break;
  }
  const char *e = strchr(buf, 'e');
  if (e) {
    int ex = atoi(e + 1);
    if (ex >= 0 && ex < 17) {
      char plain[64];
      snprintf(plain, sizeof plain, "%.*g", ex + 1, v);
      if (strtod(plain, NULL) == v) snprintf(buf, n, "%s", plain);
    }
  }
}

static int is_section(const char *s) {
  for (int i = 0; i < NKEYS; i++)
    if (!strcmp(KEYS[i].section, s)) return 1;
  return 0;
}

static int find_key(const char *section, const char *key) {
  for (int i = 0; i < NKEYS; i++)
    if (!strcmp(KEYS[i].section, section) && !strcmp(KEYS[i].key, key)) return i;
  return -1;
}

// "[model], [train], [log], [data]": the sections in table order.
static void list_sections(char *buf, size_t n) {
  buf[0] = 0;
  for (int i = 0; i < NKEYS; i++)
    if (i == 0 || strcmp(KEYS[i].section, KEYS[i - 1].section))
      cat(buf, n, "%s[%s]", i ? ", " : "", KEYS[i].section);
}

// "batch, kimg, ...": the keys of one section in table order.
static void list_keys(const char *section, char *buf, size_t n) {
  buf[0] = 0;
  for (int i = 0; i < NKEYS; i++)
    if (!strcmp(KEYS[i].section, section)) cat(buf, n, "%s%s", buf[0] ? ", " : "", KEYS[i].key);
}

// ---- values -------------------------------------------------------------------------------------
// What a key allows, in words: "an integer in 1..65536", "one of logistic, hinge", ...
static const char *allowed_text(const key_def *k, char *buf, size_t n) {
  buf[0] = 0;
  char w[64], lo[32], hi[32];
  switch (k->type) {
  case T_INT:
    if (k->words) {
      cat(buf, n, "one of ");
      for (int i = 0; word_at(k->words, i, w, sizeof w) == 0; i++)
        cat(buf, n, "%s%s", i ? ", " : "", w);
    } else {
      cat(buf, n, "%s%s in %.0f..%.0f", k->flags & F_ZERO ? "0 or " : "",
          k->flags & F_POW2 ? "a power of two" : "an integer", k->lo, k->hi);
    }
    break;
  case T_U64:
    cat(buf, n, "an integer in 0..%" PRIu64, UINT64_MAX);
    break;
  case T_DOUBLE:
    fmt_double(k->lo, lo, sizeof lo);
    cat(buf, n, "a number %s %s", k->flags & F_LO_OPEN ? ">" : ">=", lo);
    if (isfinite(k->hi)) {
      fmt_double(k->hi, hi, sizeof hi);
      cat(buf, n, " and %s %s", k->flags & F_HI_OPEN ? "<" : "<=", hi);
    }
    break;
  case T_BOOL:
    cat(buf, n, "true/false, yes/no, on/off or 1/0");
    break;
  case T_ENUM:
    cat(buf, n, "one of ");
    for (int i = 0; word_at(k->words, i, w, sizeof w) == 0; i++)
      cat(buf, n, "%s%s", i ? ", " : "", w);
    break;
  case T_STR:
    if (!strcmp(k->def, "none"))
      cat(buf, n, "a path of up to %zu characters, or none", k->size - 1);
    else
      cat(buf, n, "a name of up to %zu characters", k->size - 1);
    break;
  }
  return buf;
}

static int int_ok(const key_def *k, long long v) {
  if (k->words) {
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    return word_index(k->words, s) >= 0;
  }
  if (v == 0 && (k->flags & F_ZERO)) return 1;
  if ((double)v < k->lo || (double)v > k->hi) return 0;
  return !(k->flags & F_POW2) || (v > 0 && (v & (v - 1)) == 0);
}

static int double_ok(const key_def *k, double v) {
  if (!isfinite(v)) return 0;
  if (k->flags & F_LO_OPEN ? !(v > k->lo) : !(v >= k->lo)) return 0;
  if (k->flags & F_HI_OPEN ? !(v < k->hi) : !(v <= k->hi)) return 0;
  return 1;
}

// Parses `text` as key k's value and stores it in the config at `base`; 0, or -1 (and nothing
// stored) when the text is not one of the allowed values. Numbers must be the whole text.
static int parse_value(const key_def *k, const char *text, void *base) {
  char *field = (char *)base + k->off, *end = NULL;
  if (!text[0] || isspace((unsigned char)text[0])) return -1;
  errno = 0;
  switch (k->type) {
  case T_INT: {
    long long v = strtoll(text, &end, 10);
    if (errno || *end || !int_ok(k, v)) return -1;
    *(int *)field = (int)v;
    return 0;
  }
  case T_U64: {
    if (!isdigit((unsigned char)text[0])) return -1; // strtoull would take "-1" as 2^64 - 1
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end) return -1;
    *(uint64_t *)field = (uint64_t)v;
    return 0;
  }
  case T_DOUBLE: {
    double v = strtod(text, &end);
    if (*end || !double_ok(k, v)) return -1;
    *(double *)field = v;
    return 0;
  }
  case T_BOOL: {
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
      if (!strcasecmp(text, yes[i])) return *(int *)field = 1, 0;
      if (!strcasecmp(text, no[i])) return *(int *)field = 0, 0;
    }
    return -1;
  }
  case T_ENUM:
    if (word_index(k->words, text) < 0) return -1;
    if (strlen(text) >= k->size)
      ganc_die(GANC_EXIT_RUNTIME, "config.c: %s.%s word '%s' does not fit its %zu-byte field",
               k->section, k->key, text, k->size);
    snprintf(field, k->size, "%s", text);
    return 0;
  case T_STR:
    if (strlen(text) >= k->size) return -1;
    for (const char *c = text; *c; c++)
      if (iscntrl((unsigned char)*c)) return -1;
    snprintf(field, k->size, "%s", text);
    return 0;
  }
  return -1;
}

// The value of key k in c, as it is written in an INI file.
static void format_value(const key_def *k, const ganc_config *c, char *buf, size_t n) {
  const char *field = (const char *)c + k->off;
  switch (k->type) {
  case T_INT:
    snprintf(buf, n, "%d", *(const int *)field);
    break;
  case T_U64:
    snprintf(buf, n, "%" PRIu64, *(const uint64_t *)field);
    break;
  case T_DOUBLE:
    fmt_double(*(const double *)field, buf, n);
    break;
  case T_BOOL:
    snprintf(buf, n, "%s", *(const int *)field ? "true" : "false");
    break;
  case T_ENUM:
  case T_STR:
    snprintf(buf, n, "%.*s", (int)k->size, field);
    break;
  }
}

// Is the field of key k in c an allowed value? (For structs filled by code, not by parsing.)
static int field_ok(const key_def *k, const ganc_config *c) {
  const char *field = (const char *)c + k->off;
  switch (k->type) {
  case T_INT:
    return int_ok(k, *(const int *)field);
  case T_U64:
    return 1;
  case T_DOUBLE:
    return double_ok(k, *(const double *)field);
  case T_BOOL:
    return *(const int *)field == 0 || *(const int *)field == 1;
  case T_ENUM:
    return memchr(field, 0, k->size) && word_index(k->words, field) >= 0;
  case T_STR:
    return memchr(field, 0, k->size) && field[0];
  }
  return 0;
}

// ---- applying one key ---------------------------------------------------------------------------
// Finds section.key; else explains, naming `where` (the key's place: "x.ini:7" or "--set"), and
// `sec_where` (the section header's place) for an unknown section. Returns the key's index or -1.
static int lookup(const char *section, const char *key, const char *where, const char *sec_where,
                  ganc_err *err) {
  int i = find_key(section, key);
  if (i >= 0) return i;
  char list[512];
  const char *best = NULL;
  int best_d = 3;
  const char *hint = "\n---> HINT: configs/reference.ini lists every key with what it means";

  if (!section[0] || !is_section(section)) {
    // Not a section of ours. A key that exists elsewhere says where it belongs.
    const char *home = NULL;
    for (int j = 0; j < NKEYS && !home; j++)
      if (!strcmp(KEYS[j].key, key)) home = KEYS[j].section;
    list_sections(list, sizeof list);
    if (!section[0]) {
      if (home)
        ganc_err_set(err, GANC_EXIT_USAGE,
                     "key '%s' in %s is outside any section; put it under [%s]", key, where, home);
      else
        ganc_err_set(err, GANC_EXIT_USAGE,
                     "key '%s' in %s is outside any section (and no section has it); the sections "
                     "are %s%s",
                     key, where, list, hint);
      return -1;
    }
    for (int j = 0; j < NKEYS; j++)
      if (j == 0 || strcmp(KEYS[j].section, KEYS[j - 1].section))
        suggest(section, KEYS[j].section, &best, &best_d);
    char mean[96] = "";
    if (best) snprintf(mean, sizeof mean, "; did you mean [%s]?", best);
    ganc_err_set(err, GANC_EXIT_USAGE, "unknown section [%s] in %s%s the sections are %s%s",
                 section, sec_where, best ? mean : ";", list, hint);
    return -1;
  }

  // A known section without this key: the section the key is in, else the closest key here.
  for (int j = 0; j < NKEYS; j++)
    if (!strcmp(KEYS[j].key, key)) {
      ganc_err_set(err, GANC_EXIT_USAGE, "unknown key %s.%s in %s: %s belongs in [%s] (%s.%s)",
                   section, key, where, key, KEYS[j].section, KEYS[j].section, key);
      return -1;
    }
  for (int j = 0; j < NKEYS; j++)
    if (!strcmp(KEYS[j].section, section)) suggest(key, KEYS[j].key, &best, &best_d);
  list_keys(section, list, sizeof list);
  char mean[96] = "";
  if (best) snprintf(mean, sizeof mean, "; did you mean %s?", best);
  ganc_err_set(err, GANC_EXIT_USAGE, "unknown key %s.%s in %s%s [%s] has: %s%s", section, key,
               where, best ? mean : ";", section, list, hint);
  return -1;
}

// Parses and stores key i's value, or explains what the key allows.
static int set_value(ganc_config *c, int i, const char *value, const char *where, ganc_err *err) {
  const key_def *k = &KEYS[i];
  if (parse_value(k, value, c) == 0) return 0;
  char allowed[256];
  ganc_err_set(err, GANC_EXIT_USAGE, "%s.%s = '%s' in %s: must be %s", k->section, k->key, value,
               where, allowed_text(k, allowed, sizeof allowed));
  return -1;
}

// ---- reading INI text ---------------------------------------------------------------------------
typedef struct loader {
  ganc_config work;    // the config being built; copied out only when all of the text is valid
  const char *origin;  // the file's path, or what the text is called
  const char *p, *end; // the text not yet handed to inih
  int line;            // the line inih is working on (1-based)
  int section_line;    // the line of the last [section] header
  int stop;            // an error was found: the reader hands out no more lines
  int fail_line;       // its line
  int set_at[NKEYS];   // the line each key was set on in this text (0 = not set)
  ganc_err err;        // the first error found by the reader or the handler
} loader;

// inih's line reader: hands out one line per call, normalised (see the top of the file).
static char *read_line(char *str, int num, void *stream) {
  loader *L = stream;
  if (L->stop || L->p >= L->end) return NULL;
  const char *nl = memchr(L->p, '\n', (size_t)(L->end - L->p));
  const char *line_end = nl ? nl : L->end, *s = L->p;
  L->p = nl ? nl + 1 : L->end;
  L->line++;

  while (s < line_end && (*s == ' ' || *s == '\t'))
    s++;
  const char *cut = line_end;
  if (s < line_end && (*s == '#' || *s == ';')) {
    cut = s; // a comment line, however long: handed on as an empty line
  } else {
    for (const char *q = s + 1; q < line_end; q++)
      if ((*q == '#' || *q == ';') && (q[-1] == ' ' || q[-1] == '\t')) {
        cut = q;
        break;
      }
    if (s < line_end && *s == '[') L->section_line = L->line;
  }
  size_t len = (size_t)(cut - s);
  if (num < 2 || len > (size_t)num - 2) {
    ganc_err_set(&L->err, GANC_EXIT_USAGE,
                 "line too long in %s:%d (%zu characters; at most %d outside comments)", L->origin,
                 L->line, len, num - 2);
    L->stop = 1;
    L->fail_line = L->line;
    return NULL;
  }
  memcpy(str, s, len);
  str[len] = '\n';
  str[len + 1] = 0;
  return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value) {
  loader *L = user;
  char where[600], sec_where[600], first[600];
  snprintf(where, sizeof where, "%s:%d", L->origin, L->line);
  snprintf(sec_where, sizeof sec_where, "%s:%d", L->origin, L->section_line);
  int i = lookup(section, name, where, sec_where, &L->err);
  if (i >= 0 && L->set_at[i]) {
    snprintf(first, sizeof first, "%s:%d", L->origin, L->set_at[i]);
    ganc_err_set(&L->err, GANC_EXIT_USAGE,
                 "%s.%s is set twice: in %s and again in %s; keep one of them", section, name,
                 first, where);
    i = -1;
  }
  if (i >= 0 && set_value(&L->work, i, value, where, &L->err) == 0) {
    L->set_at[i] = L->line;
    return 1;
  }
  L->stop = 1;
  L->fail_line = L->line;
  return 0;
}

// The text of line `n` (1-based) of [p, end), trimmed, into buf.
static void line_text(const char *p, const char *end, int n, char *buf, size_t size) {
  for (int i = 1; i < n && p < end; i++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;
  }
  const char *e = memchr(p, '\n', (size_t)(end - p));
  if (!e) e = end;
  while (p < e && isspace((unsigned char)*p))
    p++;
  while (e > p && isspace((unsigned char)e[-1]))
    e--;
  size_t len = (size_t)(e - p);
  if (len > 80) len = 80;
  snprintf(buf, size, "%.*s%s", (int)len, p, (size_t)(e - p) > len ? "..." : "");
}

static int load_text(ganc_config *c, const char *text, size_t n, const char *origin,
                     ganc_err *err) {
  loader *L = calloc(1, sizeof *L);
  if (!L) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "out of memory reading %s", origin);
    return -1;
  }
  L->work = *c;
  L->origin = origin;
  L->p = text;
  L->end = text + n;
  int rc = ini_parse_stream(read_line, L, on_key, L);
  if (rc > 0 && (!L->err.code || rc < L->fail_line)) {
    // inih's own complaint (it cannot parse the line), earlier than any of ours.
    char bad[96];
    line_text(text, text + n, rc, bad, sizeof bad);
    L->err.code = 0;
    ganc_err_set(&L->err, GANC_EXIT_USAGE,
                 "cannot parse '%s' in %s:%d: a line is `key = value`, `[section]`, blank, or a "
                 "comment starting with # or ;",
                 bad, origin, rc);
  } else if (rc < 0 && !L->err.code) {
    ganc_err_set(&L->err, GANC_EXIT_RUNTIME, "inih failed (%d) reading %s", rc, origin);
  }
  int ok = !L->err.code;
  if (ok)
    *c = L->work;
  else
    ganc_err_set(err, L->err.code, "%s", L->err.msg);
  free(L);
  return ok ? 0 : -1;
}

// ---- the public functions -----------------------------------------------------------------------
void ganc_config_defaults(ganc_config *c) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < NKEYS; i++)
    if (parse_value(&KEYS[i], KEYS[i].def, c) != 0)
      ganc_die(GANC_EXIT_RUNTIME, "config.c: the default of %s.%s ('%s') is not an allowed value",
               KEYS[i].section, KEYS[i].key, KEYS[i].def);
}

int ganc_config_load_string(ganc_config *c, const char *text, const char *origin, ganc_err *err) {
  return load_text(c, text, strlen(text), origin ? origin : "<string>", err);
}

// Where recipes live, for the hint of a missing file: the configs/*.ini seen from here, if any.
static void configs_hint(char *buf, size_t n) {
  buf[0] = 0;
  glob_t g;
  if (glob("configs/*.ini", 0, NULL, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++)
      cat(buf, n, "%s%s", i ? ", " : " (here: ", g.gl_pathv[i]);
    cat(buf, n, ")");
  }
  globfree(&g);
}

int ganc_config_load_file(ganc_config *c, const char *path, ganc_err *err) {
  enum { MAX_BYTES = 1 << 20 };
  char hint[512];
  // A FIFO or device would block the open or the read: only regular files are configs.
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "config %s is not a regular file (a %s)", path,
                 S_ISDIR(st.st_mode) ? "folder" : "FIFO, socket or device");
    return -1;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    configs_hint(hint, sizeof hint);
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "cannot open config %s: %s\n---> HINT: recipes live in configs/*.ini%s; "
                 "configs/reference.ini lists every key",
                 path, strerror(e), hint);
    return -1;
  }
  char *text = malloc(MAX_BYTES + 1);
  if (!text) {
    fclose(f);
    ganc_err_set(err, GANC_EXIT_RUNTIME, "out of memory reading %s", path);
    return -1;
  }
  size_t n = fread(text, 1, MAX_BYTES + 1, f);
  int rc = -1;
  if (ferror(f))
    ganc_err_set(err, GANC_EXIT_USAGE, "cannot read config %s: %s", path, strerror(errno));
  else if (n > MAX_BYTES)
    ganc_err_set(err, GANC_EXIT_USAGE, "config %s is over %d bytes: is it really a config?", path,
                 MAX_BYTES);
  else if (memchr(text, 0, n))
    ganc_err_set(err, GANC_EXIT_USAGE, "config %s holds a NUL byte: is it really a text file?",
                 path);
  else
    rc = load_text(c, text, n, path, err);
  free(text);
  fclose(f);
  return rc;
}

int ganc_config_set(ganc_config *c, const char *assignment, ganc_err *err) {
  const char *eq = strchr(assignment, '=');
  const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
  char section[64], key[64], value[256];
  // section = [assignment, dot), key = (dot, eq), value = after '=': each trimmed (and cut to its
  // buffer: a name that long is unknown anyway, and a value that long is not an allowed one).
  const char *parts[3][2] = {
      {assignment, dot}, {dot ? dot + 1 : NULL, eq}, {eq ? eq + 1 : NULL, NULL}};
  char *outs[3] = {section, key, value};
  size_t sizes[3] = {sizeof section, sizeof key, sizeof value};
  int ok = dot != NULL;
  for (int i = 0; i < 3 && ok; i++) {
    const char *s = parts[i][0], *e = parts[i][1] ? parts[i][1] : s + strlen(s);
    while (s < e && isspace((unsigned char)*s))
      s++;
    while (e > s && isspace((unsigned char)e[-1]))
      e--;
    if (i < 2 && e == s) ok = 0; // an empty section or key; an empty value is a bad value
    snprintf(outs[i], sizes[i], "%.*s", (int)(e - s), s);
  }
  if (!ok) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "--set '%s' is not an assignment: expected --set section.key=value, e.g. --set "
                 "train.batch=64",
                 assignment);
    return -1;
  }
  int i = lookup(section, key, "--set", "--set", err);
  if (i < 0) return -1;
  ganc_config work = *c;
  if (set_value(&work, i, value, "--set", err) != 0) return -1;
  *c = work;
  return 0;
}

int ganc_config_validate(const ganc_config *c, ganc_err *err) {
  char v[64], allowed[256];
  for (int i = 0; i < NKEYS; i++)
    if (!field_ok(&KEYS[i], c)) {
      format_value(&KEYS[i], c, v, sizeof v);
      ganc_err_set(err, GANC_EXIT_USAGE, "%s.%s = %s: must be %s", KEYS[i].section, KEYS[i].key, v,
                   allowed_text(&KEYS[i], allowed, sizeof allowed));
      return -1;
    }
  if (c->g_max < c->g_base) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "model.g_max = %d is below model.g_base = %d: the cap on generator channels must "
                 "be at least the base width; raise g_max or lower g_base",
                 c->g_max, c->g_base);
    return -1;
  }
  if (c->d_max < c->d_base) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "model.d_max = %d is below model.d_base = %d: the cap on discriminator channels "
                 "must be at least the base width; raise d_max or lower d_base",
                 c->d_max, c->d_base);
    return -1;
  }
  if (!strcmp(c->conditional, "yes") && !strcmp(c->arch, "dcgan")) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "model.conditional = yes needs model.arch = resnet (DCGAN has no conditional "
                 "form); use a resnet recipe (configs/resnet32.ini) or model.conditional = no");
    return -1;
  }
  if (strcmp(c->precision, "fp32") && !strcmp(c->backend, "cudnn")) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "train.backend = cudnn runs FP32 convolutions (the baseline), but train.precision "
                 "= %s; use train.backend = ganc for %s, or train.precision = fp32",
                 c->precision, c->precision);
    return -1;
  }
  if (!strcmp(c->cuda_graph, "on") && !strcmp(c->backend, "cudnn")) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "train.cuda_graph = on replays ganc's own kernels, but train.backend = cudnn; use "
                 "train.backend = ganc, or train.cuda_graph = auto");
    return -1;
  }
  if (!strcmp(c->cuda_graph, "on") && !strcmp(c->device, "cpu")) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "train.cuda_graph = on needs CUDA, but train.device = cpu; use train.cuda_graph "
                 "= auto (or off) on the CPU");
    return -1;
  }
  if (!strcmp(c->device, "cpu") && strcmp(c->conv_variant, "auto")) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "train.conv_variant = %s chooses a CUDA kernel, but train.device = cpu; use "
                 "train.conv_variant = auto on the CPU (train.precision alone sets its rounding)",
                 c->conv_variant);
    return -1;
  }
  const int any_aug =
      c->aug_color || c->aug_translation || c->aug_cutout || c->aug_xflip || c->aug_rot90;
  if ((c->aug_ada_target > 0 || c->aug_p != 1.0) && !any_aug) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "augment.%s is set, but no augmentation is on; turn some on (augment.xflip, "
                 "rot90, color, translation, cutout: configs/small-folder.ini), or leave it at "
                 "its default",
                 c->aug_ada_target > 0 ? "ada_target" : "p");
    return -1;
  }
  if (c->aug_ada_target > 0 && !strcmp(c->aug_ada_signal, "holdout") && c->holdout == 0) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "augment.ada_signal = holdout measures D on held-out images, but log.holdout "
                 "is 0; hold some out (--set log.holdout=64: the dataset's last 64 images), or "
                 "use augment.ada_signal = rt");
    return -1;
  }
  if (!strcmp(c->device, "cpu") && !strcmp(c->backend, "cudnn")) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "train.backend = cudnn needs CUDA, but train.device = cpu; use train.backend = "
                 "ganc on the CPU, or train.device = cuda (or auto)");
    return -1;
  }
  return 0;
}

char *ganc_config_to_ini(const ganc_config *c) {
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  CHECK_PTR(f);
  fputs(
      "# ganc training configuration: every key, with its value, what it means, what it allows\n"
      "# and its default. Written by ganc_config_to_ini (ganc-train --print-config);\n"
      "# configs/reference.ini is this for the defaults. A recipe in configs/ lists only the keys\n"
      "# it changes, and --set section.key=value overrides one key on the command line.\n",
      f);
  ganc_config d;
  ganc_config_defaults(&d);
  char v[64], dv[64], allowed[256];
  for (int i = 0; i < NKEYS; i++) {
    const key_def *k = &KEYS[i];
    if (i == 0 || strcmp(k->section, KEYS[i - 1].section))
      fprintf(f, "\n[%s]\n", k->section);
    else
      fputc('\n', f); // a blank line between the keys of a section
    format_value(k, c, v, sizeof v);
    format_value(k, &d, dv, sizeof dv);
    fprintf(f, "# %s (allowed: %s; default: %s)\n%s = %s\n", k->desc,
            allowed_text(k, allowed, sizeof allowed), dv, k->key, v);
  }
  CHECK_SYS(fclose(f));
  return text;
}
