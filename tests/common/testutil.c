// testutil.c — see testutil.h.
#include "testutil.h"

#include "core/check.h"
#include "core/util.h"
#include "data/shard.h"

#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_path(const char *env, const char *compiled) {
  const char *v = getenv(env);
  return v && *v ? v : compiled;
}

char *tu_tmpdir(const char *name) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s-%ld", tu_path("GANC_TEST_TMP", GANC_TEST_TMP), name,
           (long)getpid());
  ganc_rm_rf(buf);
  if (ganc_mkdir_p(buf) != 0) {
    perror(buf);
    exit(1);
  }
  return xstrdup(buf);
}

void tu_rmdir(char *path) {
  ganc_rm_rf(path);
  free(path);
}

void tu_image_for(int64_t i, uint8_t *px, size_t bytes) {
  uint64_t s = (uint64_t)i * 0x9e3779b97f4a7c15ULL + 12345;
  for (size_t k = 0; k < bytes; k++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    px[k] = (uint8_t)(k < 8 ? (uint8_t)(i >> (8 * k)) : (uint8_t)s); // index in the first bytes
  }
}

void tu_write_dataset(const char *dir, int R, int C, int64_t n, int64_t shard_size, int nclasses) {
  char **names = NULL;
  if (nclasses > 0) {
    names = xcalloc((size_t)nclasses, sizeof(char *));
    for (int k = 0; k < nclasses; k++) {
      char b[32];
      snprintf(b, sizeof b, "class%d", k);
      names[k] = xstrdup(b);
    }
  }
  ganc_shard_meta meta = {GANC_SHARD_VERSION,     R,     C, nclasses, names, "/src/root",
                          "2026-01-01T00:00:00Z", "test"};
  ganc_err err = {0};
  ganc_shard_writer *w = ganc_shard_writer_open(dir, &meta, shard_size, &err);
  if (!w) ganc_die_err(&err);
  size_t bytes = (size_t)R * R * C;
  uint8_t *px = xmalloc(bytes);
  for (int64_t i = 0; i < n; i++) {
    tu_image_for(i, px, bytes);
    char src[64];
    snprintf(src, sizeof src, "img/%lld.png", (long long)i);
    if (ganc_shard_writer_add(w, px, nclasses > 0 ? (int)(i % nclasses) : -1, src, &err))
      ganc_die_err(&err);
  }
  ganc_shard_writer_close(w, NULL, NULL, &err);
  free(px);
  for (int k = 0; k < nclasses; k++)
    free(names[k]);
  free(names);
}

void tu_corrupt_chunk(const char *path, const char *dset, int chunk) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
  hid_t s = H5Dget_space(d);
  hsize_t off[4];
  unsigned mask;
  haddr_t addr = 0;
  hsize_t size = 0;
  if (H5Dget_chunk_info(d, s, (hsize_t)chunk, off, &mask, &addr, &size) < 0) {
    fprintf(stderr, "tu_corrupt_chunk: no chunk %d in %s:%s\n", chunk, path, dset);
    exit(1);
  }
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  FILE *fp = fopen(path, "r+b");
  fseek(fp, (long)(addr + size / 2), SEEK_SET);
  uint8_t b[16];
  size_t n = fread(b, 1, sizeof b, fp);
  for (size_t k = 0; k < n; k++)
    b[k] ^= 0x5a;
  fseek(fp, (long)(addr + size / 2), SEEK_SET);
  fwrite(b, 1, n, fp);
  fclose(fp);
}

void tu_truncate(const char *path, long keep) {
  if (truncate(path, keep) != 0) {
    perror(path);
    exit(1);
  }
}

char *tu_latest_ckpt(const char *run) {
  char p[4400], name[256] = "";
  snprintf(p, sizeof p, "%s/latest", run);
  FILE *f = fopen(p, "r");
  if (!f || !fgets(name, sizeof name, f)) {
    fprintf(stderr, "no checkpoint pointer %s\n", p);
    exit(1);
  }
  fclose(f);
  name[strcspn(name, "\n")] = 0;
  snprintf(p, sizeof p, "%s/%s", run, name);
  return xstrdup(p);
}

int tu_system(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
