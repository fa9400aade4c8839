// testutil.c — see testutil.h.
#include "testutil.h"

#include "core/check.h"
#include "core/util.h"
#include "data/shard.h"
#include "model/arch.h"
#include "train/checkpoint.h"
#include "train/config.h"

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

// G, G_ema and D of a checkpoint (with Adam state), built from its own config; 0 or -1 with why.
static int load_state(ganc_ctx *ctx, const char *ckpt, ganc_net nets[3], char *why, size_t n) {
  ganc_ckpt_meta meta;
  ganc_err err = {0};
  ganc_config c;
  ganc_config_defaults(&c);
  if (ganc_ckpt_read_meta(ckpt, &meta, &err)) {
    snprintf(why, n, "%s", err.msg);
    return -1;
  }
  int rc = ganc_config_load_string(&c, meta.config, ckpt, &err);
  ganc_ckpt_meta_free(&meta);
  if (rc) {
    snprintf(why, n, "%s", err.msg);
    return -1;
  }
  ganc_build_g(&nets[0], &c, "G");
  ganc_build_g(&nets[1], &c, "G_ema");
  ganc_build_d(&nets[2], &c);
  const char *groups[3] = {"G", "G_ema", "D"};
  for (int i = 0; i < 3; i++)
    net_finalize(ctx, &nets[i], 1, 1);
  for (int i = 0; i < 3; i++)
    if (ganc_ckpt_load_net(ckpt, ctx, &nets[i], groups[i], i != 1, &err)) {
      snprintf(why, n, "%s", err.msg);
      rc = -1;
      break;
    }
  if (rc)
    for (int i = 0; i < 3; i++)
      net_free(ctx, &nets[i]);
  return rc;
}

char *tu_ckpt_state_diff(const char *a, const char *b) {
  ganc_ctx ctx;
  ganc_ctx_init_cpu(&ctx, 1);
  ganc_net na[3], nb[3];
  char why[1024] = "";
  if (load_state(&ctx, a, na, why, sizeof why)) goto out;
  if (load_state(&ctx, b, nb, why, sizeof why)) {
    for (int i = 0; i < 3; i++)
      net_free(&ctx, &na[i]);
    goto out;
  }
  for (int i = 0; i < 3 && !*why; i++) {
    size_t n = na[i].nparam_floats * sizeof(float);
    if (na[i].nparam_floats != nb[i].nparam_floats || na[i].nbuffer_floats != nb[i].nbuffer_floats)
      snprintf(why, sizeof why, "%s: the architectures differ", na[i].name);
    else if (memcmp(na[i].p, nb[i].p, n))
      snprintf(why, sizeof why, "%s parameters differ", na[i].name);
    else if (memcmp(na[i].buf, nb[i].buf, na[i].nbuffer_floats * sizeof(float)))
      snprintf(why, sizeof why,
               "%s buffers (batch-norm statistics, spectral norm's u and v) differ", na[i].name);
    else if (i != 1 && (memcmp(na[i].m, nb[i].m, n) || memcmp(na[i].v, nb[i].v, n) ||
                        na[i].adam_t != nb[i].adam_t))
      snprintf(why, sizeof why, "%s Adam state differs", na[i].name);
  }
  for (int i = 0; i < 3; i++) {
    net_free(&ctx, &na[i]);
    net_free(&ctx, &nb[i]);
  }
  // The training state kept outside the nets: train.lecam's moving averages, ADA's p.
  ganc_ckpt_meta ma, mb;
  ganc_err err = {0};
  if (!*why && !ganc_ckpt_read_meta(a, &ma, &err)) {
    if (!ganc_ckpt_read_meta(b, &mb, &err)) {
      if (ma.has_lecam != mb.has_lecam || memcmp(ma.lecam, mb.lecam, sizeof ma.lecam))
        snprintf(why, sizeof why, "LeCam's moving averages differ");
      else if (ma.has_ada != mb.has_ada || memcmp(ma.ada, mb.ada, 3 * sizeof(double)) ||
               (isnan(ma.ada[3]) != isnan(mb.ada[3])) ||
               (!isnan(ma.ada[3]) && ma.ada[3] != mb.ada[3]))
        snprintf(why, sizeof why, "ADA's p or its counts differ (p %g vs %g)", ma.ada[0],
                 mb.ada[0]);
      ganc_ckpt_meta_free(&mb);
    }
    ganc_ckpt_meta_free(&ma);
  }
  if (!*why && err.msg[0]) snprintf(why, sizeof why, "%.900s", err.msg);
out:
  ganc_ctx_free(&ctx);
  return *why ? xstrdup(why) : NULL;
}

int tu_run_child(void (*fn)(void *), void *arg, char *msg, size_t n) {
  char path[] = "/tmp/ganc-child-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) ganc_die(GANC_EXIT_RUNTIME, "mkstemp failed");
  fflush(stdout);
  fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) ganc_die(GANC_EXIT_RUNTIME, "fork failed");
  if (pid == 0) {
    dup2(fd, 2);
    fn(arg);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const ssize_t got = n > 0 ? pread(fd, msg, n - 1, 0) : 0;
  if (n > 0) msg[got > 0 ? got : 0] = 0;
  close(fd);
  unlink(path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// tu_run_self's child: nothing but the exec (the parent's CUDA state is unusable after fork()).
static void exec_self(void *arg) {
  char *const av[] = {(char *)"/proc/self/exe", (char *)arg, NULL};
  execv("/proc/self/exe", av);
  _exit(127);
}

int tu_run_self(const char *arg, char *msg, size_t n) {
  return tu_run_child(exec_self, (void *)arg, msg, n);
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
