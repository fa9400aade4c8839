// check.c — error recording, fatal exits and the HDF5 error-stack reader behind check.h.
#include "core/check.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

void ganc_err_set(ganc_err *err, int code, const char *fmt, ...) {
  if (!err || err->code) return; // keep the innermost cause
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  err->code = code ? code : GANC_EXIT_RUNTIME;
}

void ganc_err_prefix(ganc_err *err, const char *fmt, ...) {
  if (!err || !err->code) return;
  // Build "<prefix><old message>" and cut it to the buffer (the tail of a very long chain goes).
  char both[2 * sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(both, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n >= (int)sizeof err->msg) n = (int)sizeof err->msg - 1;
  memcpy(both + n, err->msg, sizeof err->msg);
  both[sizeof err->msg - 1] = 0;
  memcpy(err->msg, both, sizeof err->msg);
}

GANC_NORETURN void ganc_die_err(const ganc_err *err) {
  fprintf(stderr, "error: %s\n", err && err->code ? err->msg : "unknown error");
  exit(err && err->code ? err->code : GANC_EXIT_RUNTIME);
}

GANC_NORETURN void ganc_die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(code);
}

GANC_NORETURN void ganc_fail_call(const char *call, const char *file, int line, const char *why) {
  fprintf(stderr, "error: %s failed at %s:%d: %s\n", call, file, line, why ? why : "");
  exit(GANC_EXIT_RUNTIME);
}

// H5Ewalk callback: remember the deepest frame's description (walked upward, so the first seen).
typedef struct {
  char *buf;
  size_t n;
  int seen;
} h5walk;

static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  h5walk *w = data;
  if (w->seen) return 0;
  char maj[128] = "", min[128] = "";
  H5Eget_msg(e->maj_num, NULL, maj, sizeof maj);
  H5Eget_msg(e->min_num, NULL, min, sizeof min);
  const char *desc = e->desc ? e->desc : "";
  // HDF5's low-level I/O errors dump the whole call ("file write failed: time = ..., filename =
  // ..., errno = 27, error message = 'File too large', buf = 0x..., ..."): keep what it was doing
  // and the system's reason, which is what a user can act on.
  const char *em = strstr(desc, "error message = '"), *colon = strchr(desc, ':');
  if (em && colon && colon < em) {
    em += strlen("error message = '");
    const char *q = strchr(em, '\'');
    int lm = q ? (int)(q - em) : (int)strlen(em);
    snprintf(w->buf, w->n, "HDF5: %.*s: %.*s (%s; %s)", (int)(colon - desc), desc, lm, em, maj,
             min);
  } else {
    snprintf(w->buf, w->n, "HDF5: %s (%s; %s)", desc, maj, min);
  }
  w->seen = 1;
  return 0;
}

const char *ganc_h5_last_error(char *buf, size_t n) {
  if (!n) return buf;
  buf[0] = 0;
  h5walk w = {buf, n, 0};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_cb, &w);
  if (!w.seen) snprintf(buf, n, "HDF5 reported an error");
  return buf;
}

void ganc_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
void ganc_h5_no_atexit(void) { H5dont_atexit(); }

static GANC_NORETURN void oom(size_t n, const char *file, int line) {
  fprintf(stderr,
          "error: out of host memory asking for %zu bytes at %s:%d\n"
          "---> HINT: close other programs, or use smaller batches / fewer --jobs\n",
          n, file, line);
  exit(GANC_EXIT_RUNTIME);
}

void *ganc_xmalloc(size_t n, const char *file, int line) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n, file, line);
  return p;
}

void *ganc_xcalloc(size_t n, size_t size, const char *file, int line) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom(n * size, file, line);
  return p;
}

void *ganc_xrealloc(void *p, size_t n, const char *file, int line) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n, file, line);
  return q;
}

char *ganc_xstrdup(const char *s, const char *file, int line) {
  size_t n = strlen(s) + 1;
  char *p = ganc_xmalloc(n, file, line);
  memcpy(p, s, n);
  return p;
}
