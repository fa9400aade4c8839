// prep.c — ganc-prep: an image folder (PNG/JPEG, nested, labels from sub-folders) or an IDX file
// → HDF5 shards (format in data/shard.h); and `--info DIR` to summarise and verify shards.
//
// Pipeline: list files (sorted, so the output does not depend on --jobs) → optional header probe
// (to choose 1 or 3 channels) → workers decode and fit images in parallel into a ring of result
// slots → the main thread commits results strictly in list order: duplicate check, shard write,
// progress. Output goes to OUT_DIR.tmp-<pid> and is renamed to OUT_DIR only when complete.
#include "prep/prep.h"

#include "core/check.h"
#include "core/util.h"
#include "data/idx.h"
#include "data/image.h"
#include "data/shard.h"

#include <ctype.h>
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- options ------------------------------------------------------------------------------------
typedef struct prep_opts {
  const char *src, *out;
  int resolution;
  int channels; // 0 = auto
  ganc_fit fit;
  int background; // 0 or 255
  int labels;     // 1 auto, 0 none
  int64_t max_images;
  int64_t shard_size;
  int jobs;
  int force;
  uint64_t max_pixels;
  int min_side;       // -1 = default (min(8, R))
  char **class_names; // IDX: --class-names, split and checked (NULL: the default names)
  int n_class_names;
} prep_opts;

static void free_names(char **v, int n) {
  for (int i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

// --class-names "a,b,c": one name per class, in label order. Spaces around a name are dropped;
// an empty name (",", "a,,b", a trailing comma), a control character or a name given twice is a
// usage error, so that no list is half used or silently mixed with the default names.
static char **split_class_names(const char *list, int *n) {
  char **v = NULL;
  int cnt = 0;
  for (const char *p = list;;) {
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    const char *a = p, *b = end;
    while (a < b && isspace((unsigned char)*a))
      a++;
    while (b > a && isspace((unsigned char)b[-1]))
      b--;
    // Errors free the names first: ganc_die exits, and LeakSanitizer would turn exit 2 into 1.
    char why[512];
    why[0] = 0;
    if (a == b)
      snprintf(why, sizeof why,
               "--class-names '%.200s': name %d is empty\n---> HINT: give one name per class, "
               "separated by commas, e.g. --class-names cat,dog",
               list, cnt + 1);
    for (const char *c = a; !why[0] && c < b; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f)
        snprintf(why, sizeof why, "--class-names: name %d holds a control character", cnt + 1);
    for (int i = 0; !why[0] && i < cnt; i++)
      if (strlen(v[i]) == (size_t)(b - a) && !memcmp(v[i], a, (size_t)(b - a)))
        snprintf(why, sizeof why, "--class-names names '%.*s' twice (names %d and %d)",
                 (int)(b - a > 200 ? 200 : b - a), a, i + 1, cnt + 1);
    if (why[0]) {
      free_names(v, cnt);
      ganc_die(GANC_EXIT_USAGE, "%s", why);
    }
    char *name = xmalloc((size_t)(b - a) + 1);
    memcpy(name, a, (size_t)(b - a));
    name[b - a] = 0;
    v = xrealloc(v, sizeof(char *) * (size_t)(cnt + 1));
    v[cnt++] = name;
    if (!*end) break;
    p = end + 1;
  }
  *n = cnt;
  return v;
}

static void usage(FILE *f) {
  fputs(
      "usage: ganc-prep SRC OUT_DIR [options]\n"
      "       ganc-prep --info DIR\n"
      "\n"
      "Turns SRC — a folder of PNG/JPEG images (searched recursively; files are recognised by\n"
      "content, not extension) or an MNIST/Fashion-MNIST IDX images file (.gz or plain) — into\n"
      "HDF5 shards OUT_DIR/shard-00000.h5, ... for ganc-train.\n"
      "\n"
      "options:\n"
      "  --resolution R        output side, a power of two in 4..1024 (default 64)\n"
      "  --channels 1|3        default: 1 when every source image is gray, else 3\n"
      "  --transform T         center-crop (default): central square, scaled to R\n"
      "                        resize: whole image stretched to RxR\n"
      "                        pad: whole image kept, letterboxed on --background (never "
      "upscaled)\n"
      "  --background white|black   colour under transparent pixels and around padding (white)\n"
      "  --labels auto|none    auto: first-level sub-folder names are classes when there are two\n"
      "                        or more (default); none: no labels. IDX labels are always kept\n"
      "                        unless none.\n"
      "  --class-names a,b,..  IDX only: one name per label value 0, 1, ..., exactly as many\n"
      "                        as there are classes, comma-separated (default: Fashion-MNIST's\n"
      "                        names when the path says fashion, else the digits)\n"
      "  --max-images N        stop after N images have been written\n"
      "  --shard-size N        images per shard (default: about 256 MB of pixels per shard)\n"
      "  --jobs N              decoding threads (default: all cores)\n"
      "  --max-pixels N        skip images with more pixels (decompression bombs; default 1e8)\n"
      "  --min-size N          skip images whose shorter side is below N (default min(8, R))\n"
      "  --force               replace an existing OUT_DIR\n"
      "  --info DIR            print a shard folder's summary and verify every shard\n"
      "  -h, --help            this text\n"
      "\n"
      "exit status: 0 when at least one image was written, 2 on bad usage or when no image could\n"
      "be used, 1 on a runtime failure (disk full, ...).\n",
      f);
}

static int64_t parse_int(const char *opt, const char *v, int64_t lo, int64_t hi) {
  char *end;
  errno = 0;
  double d = strtod(v, &end); // accepts 1e8 as well as 100000000
  // The range first: converting NaN or 1e30 to an integer is undefined behaviour.
  if (errno || end == v || *end || !(d >= (double)lo && d <= (double)hi) || d != floor(d))
    ganc_die(GANC_EXIT_USAGE, "%s expects a whole number in %lld..%lld, got '%s'", opt,
             (long long)lo, (long long)hi, v);
  return (int64_t)d;
}

// ---- interrupt handling: finish cleanly, removing the temporary folder ------------------------
static volatile sig_atomic_t g_interrupted; // set only by the signal handler
static void on_signal(int sig) { g_interrupted = sig; }

// ---- the file list ------------------------------------------------------------------------------
typedef struct item {
  char *rel; // path relative to SRC
  int label; // class index, -1 when unlabelled
} item;

typedef struct file_list {
  item *items;
  int64_t n, cap;
  char **classes;
  int nclasses;
  int64_t hidden, outside_class;
} file_list;

static void list_add(file_list *L, char *rel, int label) {
  if (L->n == L->cap)
    L->items = xrealloc(L->items, sizeof(item) * (size_t)(L->cap = L->cap ? L->cap * 2 : 1024));
  L->items[L->n++] = (item){rel, label};
}

// Recursively collects regular files under root/rel. Hidden names (".git", ".DS_Store") are
// ignored; symbolic links to files are followed, links to folders are not (no cycles).
static void walk(const char *root, const char *rel, file_list *L, int label) {
  char *dir = *rel ? ganc_path_join(root, rel) : xstrdup(root);
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "skip: %s/: cannot read folder: %s\n", *rel ? rel : ".", strerror(errno));
    free(dir);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) L->hidden++;
      continue;
    }
    char *r = *rel ? ganc_path_join(rel, e->d_name) : xstrdup(e->d_name);
    char *full = ganc_path_join(root, r);
    struct stat st, lst;
    if (lstat(full, &lst) == 0 && stat(full, &st) == 0) {
      if (S_ISDIR(st.st_mode) && !S_ISLNK(lst.st_mode)) {
        walk(root, r, L, label);
        free(r);
      } else if (S_ISREG(st.st_mode)) {
        list_add(L, r, label);
      } else {
        free(r);
      }
    } else {
      list_add(L, r, label); // reported as unreadable by the worker, with the reason
    }
    free(full);
  }
  closedir(d);
  free(dir);
}

static int cmp_item(const void *a, const void *b) {
  return strcmp(((const item *)a)->rel, ((const item *)b)->rel);
}
static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

// Lists SRC. With labels on, first-level sub-folders are the classes when there are two or more;
// files lying directly in SRC then belong to no class and are skipped (counted).
static void list_folder(const char *src, int want_labels, file_list *L) {
  memset(L, 0, sizeof *L);
  char **subs = NULL;
  int nsub = 0, cap = 0;
  DIR *d = opendir(src);
  if (!d) ganc_die(GANC_EXIT_USAGE, "cannot read folder %s: %s", src, strerror(errno));
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *full = ganc_path_join(src, e->d_name);
    struct stat st, lst;
    if (stat(full, &st) == 0 && lstat(full, &lst) == 0 && S_ISDIR(st.st_mode) &&
        !S_ISLNK(lst.st_mode)) {
      if (nsub == cap) subs = xrealloc(subs, sizeof(char *) * (size_t)(cap = cap ? cap * 2 : 16));
      subs[nsub++] = xstrdup(e->d_name);
    }
    free(full);
  }
  closedir(d);
  // qsort needs a valid pointer even for 0 elements (C11 7.22.5); subs is NULL without folders.
  if (nsub > 0) qsort(subs, (size_t)nsub, sizeof(char *), cmp_cstr);
  if (want_labels && nsub >= 2) {
    L->classes = subs;
    L->nclasses = nsub;
    // Files directly in SRC: counted as outside any class.
    file_list top = {0};
    DIR *t = opendir(src);
    while (t && (e = readdir(t))) {
      if (e->d_name[0] == '.') continue;
      char *full = ganc_path_join(src, e->d_name);
      if (ganc_is_file(full)) L->outside_class++;
      free(full);
    }
    if (t) closedir(t);
    free(top.items);
    for (int k = 0; k < nsub; k++)
      walk(src, subs[k], L, k);
  } else {
    for (int k = 0; k < nsub; k++)
      free(subs[k]);
    free(subs);
    walk(src, "", L, -1);
  }
  if (L->n > 0) qsort(L->items, (size_t)L->n, sizeof(item), cmp_item);
}

// ---- per-image work -------------------------------------------------------------------------
enum skip_kind {
  SK_NONE = 0,
  SK_UNREADABLE, // I/O error, permission
  SK_EMPTY,      // zero bytes
  SK_NOT_IMAGE,  // not PNG/JPEG by content
  SK_CORRUPT,    // truncated or damaged data
  SK_TOO_LARGE,  // pixel count above --max-pixels, or file absurdly large
  SK_TOO_SMALL,  // shorter side below --min-size
  SK_COUNT
};
static const char *skip_names[SK_COUNT] = {"",        "unreadable", "empty",    "not an image",
                                           "corrupt", "too large",  "too small"};

typedef struct result {
  int ready;
  enum skip_kind skip;
  char why[300];
  uint8_t *px; // [R, R, C]
  uint64_t hash[2];
  int upscaled;
} result;

typedef struct job {
  const prep_opts *o;
  int R, C;
  int min_side;
  // Source: a folder's file list, or an IDX array.
  const file_list *files;
  const ganc_idx *idx;
  int64_t total;
  // Ordered ring of results.
  result *ring;
  int64_t ring_n;
  int64_t next, committed;
  int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  // Probe pass.
  atomic_llong probe_next;
  signed char *gray; // [total] 1 gray, 0 colour, -1 unknown
} job;

static void process_file(job *J, int64_t i, result *r) {
  const prep_opts *o = J->o;
  char *path = ganc_path_join(o->src, J->files->items[i].rel);
  uint8_t *buf = NULL;
  size_t n = 0;
  ganc_image img = {0};
  // Files over 1 GiB are refused before reading: no PNG/JPEG a GAN trains on is that large.
  if (ganc_read_file(path, (size_t)1 << 30, &buf, &n) != 0) {
    r->skip = errno == EFBIG ? SK_TOO_LARGE : SK_UNREADABLE;
    snprintf(r->why, sizeof r->why, "%s",
             errno == EFBIG ? "file larger than 1 GiB" : strerror(errno));
    goto done;
  }
  if (n == 0) {
    r->skip = SK_EMPTY;
    snprintf(r->why, sizeof r->why, "empty file (0 bytes)");
    goto done;
  }
  ganc_img_format fmt = ganc_image_sniff(buf, n);
  if (fmt == GANC_IMG_UNKNOWN) {
    r->skip = SK_NOT_IMAGE;
    snprintf(r->why, sizeof r->why, "not a PNG or JPEG file (judged by content)");
    goto done;
  }
  ganc_image_info info;
  if (ganc_image_probe(buf, n, &info, r->why, sizeof r->why) != 0) {
    r->skip = SK_CORRUPT;
    goto done;
  }
  if (info.w < J->min_side || info.h < J->min_side) {
    r->skip = SK_TOO_SMALL;
    snprintf(r->why, sizeof r->why, "too small (%dx%d; --min-size is %d)", info.w, info.h,
             J->min_side);
    goto done;
  }
  if ((uint64_t)info.w * (uint64_t)info.h > o->max_pixels) {
    r->skip = SK_TOO_LARGE;
    snprintf(r->why, sizeof r->why, "too large (%dx%d = %llu pixels; --max-pixels is %llu)", info.w,
             info.h, (unsigned long long)info.w * info.h, (unsigned long long)o->max_pixels);
    goto done;
  }
  ganc_decode_opts dopts = {o->max_pixels, J->min_side, 0, 0};
  if (o->fit == GANC_FIT_PAD)
    dopts.reduce_long = J->R;
  else
    dopts.reduce_short = J->R;
  if (ganc_image_decode(buf, n, &dopts, &img, r->why, sizeof r->why) != 0) {
    r->skip = SK_CORRUPT;
    goto done;
  }
  uint64_t dims[3] = {(uint64_t)img.w, (uint64_t)img.h, (uint64_t)img.c}, h0[2];
  ganc_hash128(dims, sizeof dims, 0, h0);
  ganc_hash128(img.px, (size_t)img.w * img.h * img.c, h0[0], r->hash);
  r->px = xmalloc((size_t)J->R * J->R * J->C);
  if (ganc_image_fit(&img, J->R, J->C, o->fit, (uint8_t)o->background, r->px, &r->upscaled, r->why,
                     sizeof r->why) != 0) {
    r->skip = SK_CORRUPT;
    free(r->px);
    r->px = NULL;
  }
done:
  ganc_image_free(&img);
  free(buf);
  free(path);
}

static void process_idx(job *J, int64_t i, result *r) {
  const ganc_idx *x = J->idx;
  ganc_image img = {x->w, x->h, 1, x->images + (size_t)i * x->w * x->h};
  ganc_hash128(img.px, (size_t)x->w * x->h, 0, r->hash);
  r->px = xmalloc((size_t)J->R * J->R * J->C);
  if (ganc_image_fit(&img, J->R, J->C, J->o->fit, (uint8_t)J->o->background, r->px, &r->upscaled,
                     r->why, sizeof r->why) != 0) {
    r->skip = SK_CORRUPT;
    free(r->px);
    r->px = NULL;
  }
}

static void *worker(void *arg) {
  job *J = arg;
  for (;;) {
    pthread_mutex_lock(&J->mu);
    while (!J->stop && J->next < J->total && J->next >= J->committed + J->ring_n)
      pthread_cond_wait(&J->cv, &J->mu);
    if (J->stop || J->next >= J->total) {
      pthread_mutex_unlock(&J->mu);
      return NULL;
    }
    int64_t i = J->next++;
    pthread_mutex_unlock(&J->mu);

    result *r = &J->ring[i % J->ring_n];
    if (J->idx)
      process_idx(J, i, r);
    else
      process_file(J, i, r);

    pthread_mutex_lock(&J->mu);
    r->ready = 1;
    pthread_cond_broadcast(&J->cv);
    pthread_mutex_unlock(&J->mu);
  }
}

// Header-only pass deciding gray vs colour, in parallel (atomic counter over the list).
static void *probe_worker(void *arg) {
  job *J = arg;
  for (;;) {
    int64_t i = atomic_fetch_add(&J->probe_next, 1);
    if (i >= J->total || g_interrupted) return NULL;
    char *path = ganc_path_join(J->o->src, J->files->items[i].rel);
    J->gray[i] = -1;
    // The header sits in the first bytes; 256 KiB covers large EXIF/ICC blocks before a JPEG's
    // frame header and a PNG's palette.
    FILE *f = fopen(path, "rb");
    if (f) {
      uint8_t *buf = xmalloc(256 << 10);
      size_t n = fread(buf, 1, 256 << 10, f);
      fclose(f);
      ganc_image_info info;
      char why[256];
      if (n > 0 && ganc_image_probe(buf, n, &info, why, sizeof why) == 0)
        J->gray[i] = (signed char)info.gray;
      free(buf);
    }
    free(path);
  }
}

// ---- hash set for duplicates -------------------------------------------------------------------
typedef struct hset {
  uint64_t *keys; // pairs; (0,0) = empty
  int64_t cap, n;
} hset;

// 1 when the hash was already present, else inserts it and returns 0.
static int hset_seen(hset *s, const uint64_t h[2]) {
  if (s->n * 2 >= s->cap) {
    hset bigger = {xcalloc((size_t)(s->cap ? s->cap * 2 : 4096) * 2, sizeof(uint64_t)),
                   s->cap ? s->cap * 2 : 4096, 0};
    for (int64_t i = 0; i < s->cap; i++)
      if (s->keys[2 * i] | s->keys[2 * i + 1]) hset_seen(&bigger, s->keys + 2 * i);
    free(s->keys);
    *s = bigger;
  }
  uint64_t a = h[0] | 1; // never (0, 0)
  for (int64_t i = (int64_t)(a % (uint64_t)s->cap);; i = (i + 1) % s->cap) {
    uint64_t *k = s->keys + 2 * i;
    if (!(k[0] | k[1])) {
      k[0] = a;
      k[1] = h[1];
      s->n++;
      return 0;
    }
    if (k[0] == a && k[1] == h[1]) return 1;
  }
}

// ---- the run ------------------------------------------------------------------------------------
static const char *fashion_names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                        "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                        "Bag",         "Ankle boot"};

static char *join_args(int argc, char **argv) {
  size_t n = 1;
  for (int i = 0; i < argc; i++)
    n += strlen(argv[i]) + 1;
  char *s = xmalloc(n);
  s[0] = 0;
  for (int i = 0; i < argc; i++) {
    if (i) strcat(s, " ");
    strcat(s, argv[i]);
  }
  return s;
}

// Removes OUT_DIR.tmp-<pid> folders left by ganc-prep runs that were killed.
static void clean_stale_tmp(const char *out) {
  char *copy = xstrdup(out), *copy2 = xstrdup(out);
  const char *dir = dirname(copy), *base = basename(copy2);
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    size_t bl = strlen(base);
    while ((e = readdir(d))) {
      if (strncmp(e->d_name, base, bl) || strncmp(e->d_name + bl, ".tmp-", 5)) continue;
      long pid = strtol(e->d_name + bl + 5, NULL, 10);
      if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        char *p = ganc_path_join(dir, e->d_name);
        if (ganc_rm_rf(p) == 0)
          fprintf(stderr, "note: removed %s, left by an interrupted run\n", p);
        free(p);
      }
    }
    closedir(d);
  }
  free(copy);
  free(copy2);
}

static int run_prep(const prep_opts *o, int argc, char **argv) {
  double t0 = ganc_now();
  struct stat st;
  if (stat(o->src, &st) != 0)
    ganc_die(GANC_EXIT_USAGE, "cannot read %s: %s", o->src, strerror(errno));
  int is_idx = S_ISREG(st.st_mode);
  if (is_idx && !ganc_idx_is_images(o->src)) {
    // The reader says why (not IDX, or a damaged gzip stream before the magic number).
    ganc_idx none;
    ganc_err why = {0};
    ganc_idx_load(o->src, &none, &why);
    ganc_die(GANC_EXIT_USAGE, "%s%s", why.msg,
             strstr(why.msg, "HINT")
                 ? ""
                 : "\n---> HINT: SRC is either a folder of images or an MNIST/Fashion-MNIST "
                   "*-images-idx3-ubyte[.gz] file");
  }
  if (!is_idx && !S_ISDIR(st.st_mode))
    ganc_die(GANC_EXIT_USAGE, "%s is neither a folder nor an IDX file", o->src);
  if (ganc_is_dir(o->out) || ganc_is_file(o->out)) {
    if (!o->force)
      ganc_die(GANC_EXIT_USAGE,
               "%s already exists\n---> HINT: add --force to replace it, or choose "
               "another OUT_DIR",
               o->out);
  }
  char absrc[PATH_MAX];
  if (!realpath(o->src, absrc)) snprintf(absrc, sizeof absrc, "%s", o->src);
  {
    char absout[PATH_MAX];
    if (realpath(o->out, absout) && !is_idx) {
      size_t l = strlen(absrc);
      if (!strncmp(absout, absrc, l) && (absout[l] == '/' || absout[l] == 0))
        ganc_die(GANC_EXIT_USAGE, "OUT_DIR %s lies inside SRC %s; choose another OUT_DIR", o->out,
                 o->src);
    }
  }

  // ---- gather the inputs ----
  file_list files = {0};
  ganc_idx idx = {0};
  ganc_err err = {0};
  int64_t total;
  int nclasses = 0;
  char **class_names = NULL;
  int owned_names = 0;
  if (is_idx) {
    if (ganc_idx_load(o->src, &idx, &err)) ganc_die_err(&err);
    total = idx.n;
    if (o->labels && idx.labels) {
      int maxl = 0;
      for (int i = 0; i < idx.n; i++)
        if (idx.labels[i] > maxl) maxl = idx.labels[i];
      nclasses = maxl + 1;
      class_names = xcalloc((size_t)nclasses, sizeof(char *));
      owned_names = 1;
      // Given names replace the defaults as a whole, never a mix of the two.
      if (o->class_names && o->n_class_names != nclasses)
        ganc_die(GANC_EXIT_USAGE,
                 "--class-names gives %d name%s but the labels in %s have %d classes (values "
                 "0..%d)\n---> HINT: give exactly %d names, in label order, separated by commas",
                 o->n_class_names, o->n_class_names == 1 ? "" : "s", idx.labels_path, nclasses,
                 nclasses - 1, nclasses);
      int fashion = strcasestr(absrc, "fashion") != NULL && nclasses <= 10;
      for (int k = 0; k < nclasses; k++) {
        char num[16];
        snprintf(num, sizeof num, "%d", k);
        class_names[k] = xstrdup(o->class_names ? o->class_names[k]
                                 : fashion      ? fashion_names[k]
                                                : num);
      }
    } else if (o->class_names) {
      if (!o->labels)
        ganc_die(GANC_EXIT_USAGE, "--class-names names the labels' classes, but --labels none "
                                  "drops the labels; give one or the other");
      ganc_die(GANC_EXIT_USAGE,
               "--class-names: %s has no labels file beside it, so there are no classes to "
               "name\n---> HINT: put the matching *-labels-idx1-ubyte[.gz] file in the same "
               "folder, or drop --class-names",
               o->src);
    }
  } else {
    if (o->class_names) ganc_die(GANC_EXIT_USAGE, "--class-names applies to IDX files only");
    list_folder(o->src, o->labels, &files);
    total = files.n;
    nclasses = files.nclasses;
    class_names = files.classes;
    if (total == 0)
      ganc_die(GANC_EXIT_USAGE, "%s holds no files%s", o->src,
               files.outside_class ? " inside its class sub-folders" : "");
  }
  int R = o->resolution;
  int min_side = o->min_side >= 0 ? o->min_side : (R < 8 ? R : 8);
  int jobs = o->jobs > 0 ? o->jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (jobs < 1) jobs = 1;

  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  job J = {0};
  J.o = o;
  J.R = R;
  J.min_side = min_side;
  J.files = is_idx ? NULL : &files;
  J.idx = is_idx ? &idx : NULL;
  J.total = total;
  CHECK_ERRNO(pthread_mutex_init(&J.mu, NULL));
  CHECK_ERRNO(pthread_cond_init(&J.cv, NULL));
  pthread_t *th = xcalloc((size_t)jobs, sizeof(pthread_t));

  // ---- channels ----
  int C = o->channels;
  if (!C && is_idx) C = 1;
  if (!C) {
    fprintf(stderr, "reading %lld headers to choose 1 or 3 channels (set --channels to skip)\n",
            (long long)total);
    J.gray = xmalloc((size_t)total);
    atomic_store(&J.probe_next, 0);
    for (int t = 0; t < jobs; t++)
      CHECK_ERRNO(pthread_create(&th[t], NULL, probe_worker, &J));
    for (int t = 0; t < jobs; t++)
      pthread_join(th[t], NULL);
    if (g_interrupted) ganc_die(GANC_EXIT_RUNTIME, "interrupted; nothing was written");
    int any_color = 0, any_gray = 0;
    for (int64_t i = 0; i < total; i++) {
      any_color |= J.gray[i] == 0;
      any_gray |= J.gray[i] == 1;
    }
    C = any_gray && !any_color ? 1 : 3;
    free(J.gray);
    J.gray = NULL;
  }
  J.C = C;

  // ---- output folder ----
  clean_stale_tmp(o->out);
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", o->out, (long)getpid());
  if (ganc_mkdir_p(tmp) != 0)
    ganc_die(GANC_EXIT_RUNTIME,
             "cannot create %s: %s\n---> HINT: check that the parent folder "
             "exists and is writable",
             tmp, strerror(errno));
  char created[64];
  ganc_utc_iso(created, sizeof created);
  char *options = join_args(argc, argv);
  // Sources are relative to source_root: for an IDX file, its folder ("<file>#<index>").
  char rootdir[PATH_MAX];
  snprintf(rootdir, sizeof rootdir, "%s", absrc);
  if (is_idx) {
    char *slash = strrchr(rootdir, '/');
    if (slash) *(slash == rootdir ? slash + 1 : slash) = 0;
  }
  ganc_shard_meta meta = {GANC_SHARD_VERSION, R,       C,       nclasses,
                          class_names,        rootdir, created, options};
  ganc_shard_writer *w = ganc_shard_writer_open(tmp, &meta, o->shard_size, &err);
  if (!w) ganc_die_err(&err);

  // ---- decode in parallel, commit in order ----
  J.ring_n = (int64_t)jobs * 8 < 64 ? 64 : (int64_t)jobs * 8;
  J.ring = xcalloc((size_t)J.ring_n, sizeof(result));
  for (int t = 0; t < jobs; t++)
    CHECK_ERRNO(pthread_create(&th[t], NULL, worker, &J));

  int64_t written = 0, skipped[SK_COUNT] = {0}, dups = 0, upscaled = 0, nskipped = 0;
  int64_t *class_counts = xcalloc((size_t)(nclasses > 0 ? nclasses : 1), sizeof(int64_t));
  hset seen = {0};
  int write_failed = 0; // a shard could not be written (disk full, ...): err says why
  ganc_progress pg;
  ganc_progress_start(&pg, stderr, "images", total);
  int64_t i = 0;
  for (; i < total && !g_interrupted; i++) {
    result *r = &J.ring[i % J.ring_n];
    pthread_mutex_lock(&J.mu);
    while (!r->ready)
      pthread_cond_wait(&J.cv, &J.mu);
    pthread_mutex_unlock(&J.mu);

    const char *rel = is_idx ? NULL : files.items[i].rel;
    if (r->skip) {
      skipped[r->skip]++;
      nskipped++;
      ganc_progress_clear(&pg);
      fprintf(stderr, "skip: %s: %s\n", rel, r->why);
    } else if (hset_seen(&seen, r->hash)) {
      dups++;
    } else {
      int label = is_idx ? (nclasses > 0 ? idx.labels[i] : -1) : files.items[i].label;
      char srcname[PATH_MAX + 32];
      if (is_idx) {
        char *copy = xstrdup(o->src);
        snprintf(srcname, sizeof srcname, "%s#%lld", basename(copy), (long long)i);
        free(copy);
      }
      if (ganc_shard_writer_add(w, r->px, label, is_idx ? srcname : rel, &err)) {
        write_failed = 1; // stop the workers and remove the unfinished folder below
        free(r->px);
        memset(r, 0, sizeof *r);
        break;
      }
      written++;
      upscaled += r->upscaled;
      if (label >= 0) class_counts[label]++;
    }
    free(r->px);
    memset(r, 0, sizeof *r);
    pthread_mutex_lock(&J.mu);
    J.committed = i + 1;
    if (o->max_images > 0 && written >= o->max_images) J.stop = 1;
    pthread_cond_broadcast(&J.cv);
    pthread_mutex_unlock(&J.mu);
    char extra[96];
    snprintf(extra, sizeof extra, "written %lld  skipped %lld  duplicates %lld", (long long)written,
             (long long)nskipped, (long long)dups);
    ganc_progress_update(&pg, i + 1, extra);
    if (o->max_images > 0 && written >= o->max_images) {
      i++;
      break;
    }
  }
  pthread_mutex_lock(&J.mu);
  J.stop = 1;
  pthread_cond_broadcast(&J.cv);
  pthread_mutex_unlock(&J.mu);
  for (int t = 0; t < jobs; t++)
    pthread_join(th[t], NULL);
  for (int64_t k = 0; k < J.ring_n; k++)
    free(J.ring[k].px);
  char extra[96];
  snprintf(extra, sizeof extra, "written %lld  skipped %lld  duplicates %lld", (long long)written,
           (long long)nskipped, (long long)dups);
  ganc_progress_finish(&pg, i, extra);

  int64_t n_written = 0;
  int n_shards = 0;
  ganc_err close_err = {0};
  if (ganc_shard_writer_close(w, &n_written, &n_shards, &close_err) && !write_failed) {
    write_failed = 1;
    err = close_err;
  }
  int rc = GANC_EXIT_OK;
  if (write_failed) {
    ganc_rm_rf(tmp);
    fprintf(stderr, "error: %s\n", err.msg);
    rc = GANC_EXIT_RUNTIME;
    goto cleanup;
  }
  if (g_interrupted) {
    ganc_rm_rf(tmp);
    fprintf(stderr, "interrupted: nothing was written (%s removed)\n", tmp);
    rc = 130;
    goto cleanup; // the early exits free as the normal one does (LeakSanitizer builds check)
  }
  if (written == 0) {
    ganc_rm_rf(tmp);
    fprintf(stderr,
            "error: no image could be used from %s (%lld files skipped, %lld duplicates)\n"
            "---> HINT: the lines above give each file's reason\n",
            o->src, (long long)nskipped, (long long)dups);
    rc = GANC_EXIT_USAGE;
    goto cleanup;
  }
  // Swap the finished folder into place; an old one is moved aside first and removed last, so at
  // no moment is there an OUT_DIR that is incomplete.
  char old[PATH_MAX];
  snprintf(old, sizeof old, "%s.old-%ld", o->out, (long)getpid());
  int had_old = ganc_is_dir(o->out) || ganc_is_file(o->out);
  if (had_old && rename(o->out, old) != 0)
    ganc_die(GANC_EXIT_RUNTIME, "cannot move the old %s aside: %s (new shards are in %s)", o->out,
             strerror(errno), tmp);
  if (rename(tmp, o->out) != 0)
    ganc_die(GANC_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, o->out, strerror(errno));
  if (had_old) ganc_rm_rf(old);

  double el = ganc_now() - t0;
  printf("wrote %lld images (%dx%dx%d) in %d shard%s to %s\n", (long long)written, R, R, C,
         n_shards, n_shards == 1 ? "" : "s", o->out);
  if (nclasses > 0) {
    printf("classes (%d):", nclasses);
    for (int k = 0; k < nclasses; k++)
      printf("%s %s %lld", k ? "," : "", class_names[k], (long long)class_counts[k]);
    printf("\n");
  } else {
    printf("classes: none (unlabelled)\n");
  }
  if (nskipped) {
    printf("skipped %lld:", (long long)nskipped);
    int first = 1;
    for (int k = 1; k < SK_COUNT; k++)
      if (skipped[k]) {
        printf("%s %lld %s", first ? "" : ",", (long long)skipped[k], skip_names[k]);
        first = 0;
      }
    printf("\n");
  } else {
    printf("skipped 0\n");
  }
  printf("duplicates dropped: %lld\n", (long long)dups);
  if (upscaled)
    printf("upscaled: %lld images were smaller than %d and were enlarged\n", (long long)upscaled,
           R);
  if (files.outside_class)
    printf("ignored: %lld files directly in %s (outside the class sub-folders)\n",
           (long long)files.outside_class, o->src);
  if (files.hidden) printf("ignored: %lld hidden files or folders\n", (long long)files.hidden);
  printf("took %.1f s (%.0f images/s)\n", el, el > 0 ? (double)i / el : 0.0);

cleanup:
  free(class_counts);
  free(seen.keys);
  free(J.ring);
  free(th);
  free(options);
  for (int64_t k = 0; k < files.n; k++)
    free(files.items[k].rel);
  free(files.items);
  if (owned_names) {
    for (int k = 0; k < nclasses; k++)
      free(class_names[k]);
    free(class_names);
  } else {
    for (int k = 0; k < files.nclasses; k++)
      free(files.classes[k]);
    free(files.classes);
  }
  ganc_idx_free(&idx);
  pthread_cond_destroy(&J.cv);
  pthread_mutex_destroy(&J.mu);
  return rc;
}

// ---- --info
// --------------------------------------------------------------------------------------
static int run_info(const char *dir) {
  ganc_dataset ds;
  ganc_err err = {0};
  if (ganc_dataset_open(dir, &ds, &err)) {
    fprintf(stderr, "error: %s\n", err.msg);
    return err.code ? err.code : GANC_EXIT_USAGE;
  }
  const ganc_shard_meta *m = &ds.meta;
  printf("%s: %lld images, %dx%dx%d, %d shard%s (format %s v%d)\n", dir, (long long)ds.count,
         m->resolution, m->resolution, m->channels, ds.nshards, ds.nshards == 1 ? "" : "s",
         GANC_SHARD_FORMAT, m->version);
  printf("sources root: %s\n", m->source_root);
  printf("created: %s\n", m->created);
  printf("made by: %s\n", m->options);
  int64_t *counts = xcalloc((size_t)(m->nclasses > 0 ? m->nclasses : 1), sizeof(int64_t));
  fflush(stdout);
  int rc = ganc_dataset_verify(&ds, counts, stderr, &err);
  if (rc == 0) {
    if (m->nclasses > 0) {
      printf("classes (%d):", m->nclasses);
      for (int k = 0; k < m->nclasses; k++)
        printf("%s %s %lld", k ? "," : "", m->class_names[k], (long long)counts[k]);
      printf("\n");
    } else {
      printf("classes: none (unlabelled)\n");
    }
    printf("verified: every shard read back cleanly (Fletcher32 checksums ok)\n");
  } else {
    fprintf(stderr, "error: %s\n---> HINT: re-run ganc-prep to rebuild this folder\n", err.msg);
  }
  free(counts);
  ganc_dataset_close(&ds);
  return rc == 0 ? GANC_EXIT_OK : (err.code ? err.code : GANC_EXIT_USAGE);
}

int ganc_prep_main(int argc, char **argv) {
  prep_opts o = {0};
  o.resolution = 64;
  o.fit = GANC_FIT_CROP;
  o.background = 255;
  o.labels = 1;
  o.max_pixels = 100000000ull;
  o.min_side = -1;
  const char *info = NULL, *pos[2] = {0};
  int npos = 0;
  ganc_h5_quiet();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      free_names(o.class_names, o.n_class_names); // every return frees: LeakSanitizer builds
      return GANC_EXIT_OK;
    }
    char key[64];
    const char *inl;
    ganc_opt_split(a, key, sizeof key, &inl);
    if (!strcmp(key, "--force")) {
      if (inl) ganc_die(GANC_EXIT_USAGE, "--force takes no value (see ganc-prep --help)");
      o.force = 1;
      continue;
    }
    if (a[0] == '-' && a[1]) { // an option: known ones take a value, "--key value" or "--key=value"
      static const char *const with_value[] = {"--resolution", "--channels",   "--transform",
                                               "--background", "--labels",     "--class-names",
                                               "--max-images", "--shard-size", "--jobs",
                                               "--max-pixels", "--min-size",   "--info"};
      size_t k = 0, nk = sizeof with_value / sizeof with_value[0];
      while (k < nk && strcmp(key, with_value[k]))
        k++;
      if (k == nk) ganc_die(GANC_EXIT_USAGE, "unknown option %s (see ganc-prep --help)", key);
      const char *val = ganc_opt_value(argc, argv, &i, key, inl, "ganc-prep");
      if (!strcmp(key, "--resolution")) {
        o.resolution = (int)parse_int(key, val, 4, 1024);
        if (o.resolution & (o.resolution - 1))
          ganc_die(GANC_EXIT_USAGE, "--resolution must be a power of two in 4..1024, got %s", val);
      } else if (!strcmp(key, "--channels")) {
        o.channels = (int)parse_int(key, val, 1, 3);
        if (o.channels == 2) ganc_die(GANC_EXIT_USAGE, "--channels must be 1 or 3, got 2");
      } else if (!strcmp(key, "--transform")) {
        if (!strcmp(val, "center-crop"))
          o.fit = GANC_FIT_CROP;
        else if (!strcmp(val, "resize"))
          o.fit = GANC_FIT_RESIZE;
        else if (!strcmp(val, "pad"))
          o.fit = GANC_FIT_PAD;
        else
          ganc_die(GANC_EXIT_USAGE, "--transform must be center-crop, resize or pad, got '%s'",
                   val);
      } else if (!strcmp(key, "--background")) {
        if (!strcmp(val, "white"))
          o.background = 255;
        else if (!strcmp(val, "black"))
          o.background = 0;
        else
          ganc_die(GANC_EXIT_USAGE, "--background must be white or black, got '%s'", val);
      } else if (!strcmp(key, "--labels")) {
        if (!strcmp(val, "auto"))
          o.labels = 1;
        else if (!strcmp(val, "none"))
          o.labels = 0;
        else
          ganc_die(GANC_EXIT_USAGE, "--labels must be auto or none, got '%s'", val);
      } else if (!strcmp(key, "--class-names")) {
        free_names(o.class_names, o.n_class_names); // the last --class-names counts
        o.class_names = split_class_names(val, &o.n_class_names);
      } else if (!strcmp(key, "--max-images")) {
        o.max_images = parse_int(key, val, 1, INT64_MAX / 2);
      } else if (!strcmp(key, "--shard-size")) {
        o.shard_size = parse_int(key, val, 1, INT64_MAX / 2);
      } else if (!strcmp(key, "--jobs")) {
        o.jobs = (int)parse_int(key, val, 1, 1024);
      } else if (!strcmp(key, "--max-pixels")) {
        o.max_pixels = (uint64_t)parse_int(key, val, 1, INT64_MAX / 2);
      } else if (!strcmp(key, "--min-size")) {
        o.min_side = (int)parse_int(key, val, 1, 65536);
      } else { // --info
        info = val;
      }
      continue;
    }
    if (npos == 2) ganc_die(GANC_EXIT_USAGE, "unexpected argument '%s' (see ganc-prep --help)", a);
    if (!*a) ganc_die(GANC_EXIT_USAGE, "an empty argument where SRC or OUT_DIR was expected");
    pos[npos++] = a;
  }
  if (info) {
    if (npos) ganc_die(GANC_EXIT_USAGE, "--info takes only the shard folder");
    free_names(o.class_names, o.n_class_names);
    return run_info(info);
  }
  if (npos != 2) {
    usage(stderr);
    free_names(o.class_names, o.n_class_names);
    return GANC_EXIT_USAGE;
  }
  // "photos/" and "photos" are the same folder: trailing slashes would put OUT_DIR.tmp-<pid>
  // inside OUT_DIR and make the final rename fail.
  char *src = xstrdup(pos[0]), *out = xstrdup(pos[1]);
  for (char *p = src + strlen(src) - 1; p > src && *p == '/'; p--)
    *p = 0;
  for (char *p = out + strlen(out) - 1; p > out && *p == '/'; p--)
    *p = 0;
  o.src = src;
  o.out = out;
  int rc = run_prep(&o, argc, argv);
  free(src);
  free(out);
  free_names(o.class_names, o.n_class_names);
  return rc;
}
