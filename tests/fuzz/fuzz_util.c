// fuzz_util.c — see fuzz_util.h.
#include "fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[4096];

// Removes the scratch folder's files (the harnesses make only plain files in it) and the folder.
static void remove_dir(void) {
  if (!g_dir[0]) return;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", g_dir);
}

const char *fz_dir(void) {
  if (g_dir[0]) return g_dir;
  const char *tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/ganc-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(g_dir)) {
    fprintf(stderr, "fuzz: cannot make a scratch folder %s: %s\n", g_dir, strerror(errno));
    abort();
  }
  atexit(remove_dir);
  return g_dir;
}

const char *fz_path(int slot, const char *name) {
  static char paths[4][4200];
  if (slot < 0 || slot > 3) abort();
  snprintf(paths[slot], sizeof paths[slot], "%s/%s", fz_dir(), name);
  return paths[slot];
}

void fz_write(const char *path, const uint8_t *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    fprintf(stderr, "fuzz: cannot create %s: %s\n", path, strerror(errno));
    abort();
  }
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w <= 0) {
      fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
      abort();
    }
    data += w;
    n -= (size_t)w;
  }
  close(fd);
}

void fz_unlink(const char *path) {
  if (unlink(path) != 0 && errno != ENOENT) {
    fprintf(stderr, "fuzz: cannot remove %s: %s\n", path, strerror(errno));
    abort();
  }
}

void fz_check_err(const char *what, int rc, const ganc_err *err, const char *must_name) {
  if (rc == 0) return;
  if (err->code != GANC_EXIT_RUNTIME && err->code != GANC_EXIT_USAGE) {
    fprintf(stderr, "FINDING: %s failed with error code %d (message: '%s')\n", what, err->code,
            err->msg);
    abort();
  }
  if (!err->msg[0]) {
    fprintf(stderr, "FINDING: %s failed with an empty message\n", what);
    abort();
  }
  if (must_name && !strstr(err->msg, must_name)) {
    fprintf(stderr, "FINDING: %s failed with a message that does not name %s: '%s'\n", what,
            must_name, err->msg);
    abort();
  }
}

// What a reader may leave open, as HDF5 counts it over all files (H5Inmembers would count
// dataspaces and property lists too, but HDF5 refuses it for the library's own identifier kinds).
static const struct {
  unsigned kind;
  const char *name;
} KINDS[] = {{H5F_OBJ_FILE, "file"},
             {H5F_OBJ_GROUP, "group"},
             {H5F_OBJ_DATASET, "dataset"},
             {H5F_OBJ_DATATYPE, "named datatype"},
             {H5F_OBJ_ATTR, "attribute"}};
enum { NKINDS = sizeof KINDS / sizeof KINDS[0] };
static ssize_t g_base[NKINDS];
static int g_have_base;

void fz_h5_baseline(void) {
  H5open();
  ganc_h5_quiet();
  for (int i = 0; i < NKINDS; i++)
    g_base[i] = H5Fget_obj_count(H5F_OBJ_ALL, KINDS[i].kind);
  g_have_base = 1;
}

void fz_h5_check(const char *what) {
  if (!g_have_base) abort();
  for (int i = 0; i < NKINDS; i++) {
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, KINDS[i].kind);
    if (n > g_base[i]) {
      fprintf(stderr, "FINDING: %s left %lld HDF5 %s identifier(s) open\n", what,
              (long long)(n - g_base[i]), KINDS[i].name);
      abort();
    }
  }
}
