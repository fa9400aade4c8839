// util.c — clocks, paths, hashing and the progress line (see util.h).
#include "core/util.h"

#include "core/check.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double ganc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ganc_cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void ganc_utc_iso(char *buf, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *ganc_path_join(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  int slash = na > 0 && a[na - 1] != '/';
  char *p = xmalloc(na + nb + 2);
  memcpy(p, a, na);
  if (slash) p[na] = '/';
  memcpy(p + na + slash, b, nb + 1);
  return p;
}

int ganc_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ganc_is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int ganc_mkdir_p(const char *path) {
  char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      free(p);
      return -1;
    }
    *s = '/';
  }
  int rc = mkdir(p, 0777);
  free(p);
  if (rc != 0 && errno == EEXIST && ganc_is_dir(path)) return 0;
  return rc;
}

int ganc_rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(path);
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *sub = ganc_path_join(path, e->d_name);
    if (ganc_rm_rf(sub) != 0) rc = -1;
    free(sub);
  }
  closedir(d);
  if (rmdir(path) != 0) rc = -1;
  return rc;
}

int ganc_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  struct stat st;
  if (fstat(fileno(f), &st) != 0) goto fail;
  if (!S_ISREG(st.st_mode)) {
    errno = EISDIR;
    goto fail;
  }
  if ((uint64_t)st.st_size > max_bytes) {
    errno = EFBIG;
    goto fail;
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = xmalloc(size + 1);
  size_t got = fread(buf, 1, size, f);
  if (got != size && ferror(f)) {
    free(buf);
    errno = EIO;
    goto fail;
  }
  buf[got] = 0;
  fclose(f);
  *out = buf;
  *n = got;
  return 0;
fail:;
  int saved = errno;
  fclose(f);
  errno = saved;
  return -1;
}

void ganc_opt_split(const char *arg, char *key, size_t n, const char **inline_value) {
  const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
  size_t kl = eq ? (size_t)(eq - arg) : strlen(arg);
  snprintf(key, n, "%.*s", (int)kl, arg);
  *inline_value = eq ? eq + 1 : NULL;
}

const char *ganc_opt_value(int argc, char **argv, int *i, const char *key, const char *inline_value,
                           const char *prog) {
  const char *v = inline_value;
  if (!v) {
    // "--out --seeds 1": the next word is another option, not this one's value.
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
      ganc_die(GANC_EXIT_USAGE, "%s needs a value (see %s --help)", key, prog);
    v = argv[++*i];
  }
  // An empty value is never meant (an unset shell variable, `--data=`): say so here rather than
  // fail later on "" as a path, a number or a name.
  if (!*v) ganc_die(GANC_EXIT_USAGE, "%s is given an empty value (see %s --help)", key, prog);
  return v;
}

// ---- hashing: a 64-bit multiply-xorshift mix over 8-byte words, two lanes with different keys
// ----
static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

void ganc_hash128(const void *data, size_t n, uint64_t seed, uint64_t out[2]) {
  const uint8_t *p = data;
  uint64_t a = seed ^ 0x9e3779b97f4a7c15ULL ^ n, b = mix64(seed + 0x632be59bd9b4e019ULL) ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    a = (a ^ w) * 0x9fb21c651e98df25ULL;
    a ^= a >> 29;
    b = (b + w) * 0xd6e8feb86659fd93ULL;
    b = (b << 31) | (b >> 33);
  }
  uint64_t tail = 0;
  if (i < n) memcpy(&tail, p + i, n - i);
  a = mix64(a ^ tail);
  b = mix64(b + tail + a);
  out[0] = a;
  out[1] = b;
}

// ---- progress ---------------------------------------------------------------------------------
void ganc_format_duration(double s, char *buf, size_t n) {
  // Unknown (no rate yet), or past any run anyone waits for, before any integer conversion: a
  // 1e9-kimg run at a few img/s has an ETA of ~1e10 s, which the training line's ints turned
  // negative.
  if (!(s >= 0)) { // also NaN
    snprintf(buf, n, "--:--");
    return;
  }
  if (s >= 100000.0 * 86400) {
    snprintf(buf, n, ">99999d");
    return;
  }
  long long t = (long long)(s + 0.5);
  long long d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;
  if (d > 0)
    snprintf(buf, n, "%lldd %02lld:%02lld:%02lld", d, h, m, sec);
  else if (h > 0)
    snprintf(buf, n, "%lld:%02lld:%02lld", h, m, sec);
  else
    snprintf(buf, n, "%02lld:%02lld", m, sec);
}

void ganc_progress_start(ganc_progress *p, FILE *f, const char *what, int64_t total) {
  memset(p, 0, sizeof *p);
  p->f = f;
  p->what = what;
  p->total = total;
  p->start = p->last = ganc_now();
  p->plain_every = 10.0;
  p->tty = isatty(fileno(f)) && getenv("CI") == NULL;
}

static void draw(ganc_progress *p, int64_t done, const char *extra, int final) {
  double now = ganc_now(), el = now - p->start;
  double rate = el > 0 ? (double)done / el : 0;
  char eta[32], elapsed[32];
  ganc_format_duration(p->total > 0 && rate > 0 ? (double)(p->total - done) / rate : -1, eta,
                       sizeof eta);
  ganc_format_duration(el, elapsed, sizeof elapsed);
  if (p->tty) {
    char bar[31];
    int width = 30, fill = p->total > 0 ? (int)(width * (double)done / (double)p->total) : 0;
    if (fill > width) fill = width;
    for (int i = 0; i < width; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(p->f, "\r\033[K[%s] %lld/%lld %s  %.0f %s/s  %s %s%s%s", bar, (long long)done,
            (long long)p->total, p->what, rate, p->what, final ? "took" : "ETA",
            final ? elapsed : eta, extra ? "  " : "", extra ? extra : "");
    p->drawn = 1;
    if (final) {
      fputc('\n', p->f);
      p->drawn = 0;
    }
  } else {
    if (p->total > 0)
      fprintf(p->f, "%lld/%lld %s (%.1f%%)  %.0f %s/s  %s %s%s%s\n", (long long)done,
              (long long)p->total, p->what, 100.0 * (double)done / (double)p->total, rate, p->what,
              final ? "done in" : "ETA", final ? elapsed : eta, extra ? "  " : "",
              extra ? extra : "");
    else
      fprintf(p->f, "%lld %s  %.0f %s/s  elapsed %s%s%s\n", (long long)done, p->what, rate, p->what,
              elapsed, extra ? "  " : "", extra ? extra : "");
  }
  fflush(p->f);
  p->last = now;
}

void ganc_progress_update(ganc_progress *p, int64_t done, const char *extra) {
  double now = ganc_now();
  if (now - p->last < (p->tty ? 0.2 : p->plain_every)) return;
  draw(p, done, extra, 0);
}

void ganc_progress_finish(ganc_progress *p, int64_t done, const char *extra) {
  draw(p, done, extra, 1);
}

void ganc_progress_clear(ganc_progress *p) {
  if (p->tty && p->drawn) {
    fputs("\r\033[K", p->f);
    p->drawn = 0;
  }
}
