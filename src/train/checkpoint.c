// checkpoint.c — HDF5 checkpoints (layout and guarantees in checkpoint.h).
#include "train/checkpoint.h"

#include "core/util.h"
#include "io/h5attr.h"
#include "ops/dispatch.h"

#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ganc_ckpt_meta_free(ganc_ckpt_meta *m) {
  free(m->config);
  free(m->data_dir);
  free(m->created);
  memset(m, 0, sizeof *m);
}

// ---- writing
// -------------------------------------------------------------------------------------
static int write_tensor(hid_t group, const ganc_tensor *t, const float *host) {
  hsize_t dims[4];
  for (int i = 0; i < t->ndim; i++)
    dims[i] = (hsize_t)t->shape[i];
  hid_t s = H5Screate_simple(t->ndim, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
  int rc = -1;
  if (s < 0 || dcpl < 0) goto done;
  // One chunk per tensor (HDF5 caps a chunk at 4 GiB; DCGAN tensors are far below), checksummed.
  if (H5Pset_chunk(dcpl, t->ndim, dims) < 0 || H5Pset_fletcher32(dcpl) < 0) goto done;
  d = H5Dcreate2(group, t->name, H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (d < 0) goto done;
  rc = H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host + t->offset) < 0 ? -1 : 0;
done:
  if (d >= 0) H5Dclose(d);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (s >= 0) H5Sclose(s);
  return rc;
}

static int write_block(ganc_ctx *ctx, hid_t parent, const char *name, const ganc_tensor *t, int nt,
                       size_t total, const float *block) {
  float *host = xmalloc((total ? total : 1) * sizeof(float));
  ganc_download(ctx, host, block, total);
  hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = g < 0 ? -1 : 0;
  for (int i = 0; i < nt && rc == 0; i++)
    rc = write_tensor(g, &t[i], host);
  if (g >= 0) H5Gclose(g);
  free(host);
  return rc;
}

static int write_net(ganc_ctx *ctx, hid_t file, ganc_net *net) {
  hid_t g = H5Gcreate2(file, net->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  int rc = write_block(ctx, g, "params", net->params, net->nparams, net->nparam_floats, net->p);
  if (!rc)
    rc = write_block(ctx, g, "buffers", net->buffers, net->nbuffers, net->nbuffer_floats, net->buf);
  if (!rc && net->m) {
    rc = write_block(ctx, g, "adam_m", net->params, net->nparams, net->nparam_floats, net->m);
    if (!rc)
      rc = write_block(ctx, g, "adam_v", net->params, net->nparams, net->nparam_floats, net->v);
    if (!rc)
      rc = ganc_h5_attr_write_num(g, "adam_t", H5T_STD_I64LE, H5T_NATIVE_INT64, &net->adam_t);
  }
  char desc[256];
  net_describe(net, desc, sizeof desc);
  if (!rc) rc = ganc_h5_attr_write_str(g, "arch", desc);
  H5Gclose(g);
  return rc;
}

// fsync a file or folder by path; failures are reported (a checkpoint must reach the disk).
static int sync_path(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int ganc_ckpt_save(const char *path, ganc_ctx *ctx, const ganc_ckpt_meta *meta,
                   ganc_net *const *nets, int nnets, ganc_err *err) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  ganc_h5_quiet();
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot create %s: %s", tmp, ganc_h5_last_error(b, 512));
    return -1;
  }
  int version = GANC_CKPT_VERSION;
  double kimg = (double)meta->nimg / 1000.0;
  char created[64];
  ganc_utc_iso(created, sizeof created);
  int rc = 0;
  rc |= ganc_h5_attr_write_str(f, "format", GANC_CKPT_FORMAT);
  rc |= ganc_h5_attr_write_num(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version);
  rc |= ganc_h5_attr_write_str(f, "ganc_version", GANC_VERSION);
  rc |= ganc_h5_attr_write_str(f, "created", created);
  rc |= ganc_h5_attr_write_num(f, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &meta->step);
  rc |= ganc_h5_attr_write_num(f, "nimg", H5T_STD_I64LE, H5T_NATIVE_INT64, &meta->nimg);
  rc |= ganc_h5_attr_write_num(f, "kimg", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &kimg);
  rc |= ganc_h5_attr_write_num(f, "dataset_fingerprint", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                               &meta->fingerprint);
  rc |= ganc_h5_attr_write_str(f, "data_dir", meta->data_dir);
  rc |= ganc_h5_attr_write_num(f, "loader_seed", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                               &meta->loader.seed);
  rc |= ganc_h5_attr_write_num(f, "loader_epoch", H5T_STD_I64LE, H5T_NATIVE_INT64,
                               &meta->loader.epoch);
  rc |= ganc_h5_attr_write_num(f, "loader_cursor", H5T_STD_I64LE, H5T_NATIVE_INT64,
                               &meta->loader.cursor);
  rc |= ganc_h5_attr_write_str(f, "config", meta->config);
  for (int i = 0; i < nnets && !rc; i++)
    rc = write_net(ctx, f, nets[i]);
  if (H5Fclose(f) < 0) rc = -1;
  if (!rc && sync_path(tmp) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME,
                 "writing checkpoint %s failed: %s\n---> HINT: check free disk space; the previous "
                 "checkpoint is untouched",
                 tmp, strerror(errno));
    unlink(tmp);
    return -1;
  }
  if (rc) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_RUNTIME,
                 "writing checkpoint %s failed: %s\n---> HINT: check free disk space; the previous "
                 "checkpoint is untouched",
                 tmp, ganc_h5_last_error(b, 512));
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  char *copy = xstrdup(path);
  sync_path(dirname(copy)); // make the rename itself durable
  free(copy);
  return 0;
}

// ---- reading
// -------------------------------------------------------------------------------------
static hid_t open_ckpt(const char *path, ganc_err *err) {
  ganc_h5_quiet();
  if (!ganc_is_file(path)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s does not exist", path);
    return -1;
  }
  if (H5Fis_hdf5(path) <= 0) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "checkpoint %s is damaged or not an HDF5 file (truncated by a crash or a full "
                 "disk?)\n---> HINT: use an earlier checkpoint of the run (ckpt-*.h5)",
                 path);
    return -1;
  }
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    char b[512];
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s cannot be opened (damaged?): %s", path,
                 ganc_h5_last_error(b, 512));
  }
  return f;
}

int ganc_ckpt_read_meta(const char *path, ganc_ckpt_meta *m, ganc_err *err) {
  memset(m, 0, sizeof *m);
  hid_t f = open_ckpt(path, err);
  if (f < 0) return -1;
  char *fmt = NULL;
  ganc_err ignore = {0};
  if (H5Aexists(f, "format") <= 0 || ganc_h5_attr_read_str(f, "format", &fmt, &ignore) ||
      strcmp(fmt, GANC_CKPT_FORMAT) != 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "%s is an HDF5 file but not a ganc checkpoint", path);
    free(fmt);
    H5Fclose(f);
    return -1;
  }
  if (ganc_h5_attr_read_num(f, "format_version", H5T_NATIVE_INT, &m->version, err)) goto fail;
  if (m->version < 1 || m->version > GANC_CKPT_VERSION) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "checkpoint %s has format version %d; this ganc reads up to %d: update ganc", path,
                 m->version, GANC_CKPT_VERSION);
    goto fail;
  }
  if (ganc_h5_attr_read_num(f, "step", H5T_NATIVE_INT64, &m->step, err) ||
      ganc_h5_attr_read_num(f, "nimg", H5T_NATIVE_INT64, &m->nimg, err) ||
      ganc_h5_attr_read_num(f, "dataset_fingerprint", H5T_NATIVE_UINT64, &m->fingerprint, err) ||
      ganc_h5_attr_read_num(f, "loader_seed", H5T_NATIVE_UINT64, &m->loader.seed, err) ||
      ganc_h5_attr_read_num(f, "loader_epoch", H5T_NATIVE_INT64, &m->loader.epoch, err) ||
      ganc_h5_attr_read_num(f, "loader_cursor", H5T_NATIVE_INT64, &m->loader.cursor, err) ||
      ganc_h5_attr_read_str(f, "config", &m->config, err) ||
      ganc_h5_attr_read_str(f, "data_dir", &m->data_dir, err) ||
      ganc_h5_attr_read_str(f, "created", &m->created, err))
    goto fail;
  free(fmt);
  H5Fclose(f);
  return 0;
fail:
  ganc_err_prefix(err, "checkpoint %s: ", path);
  free(fmt);
  H5Fclose(f);
  ganc_ckpt_meta_free(m);
  return -1;
}

// Reads every tensor of `t` from group `gname`, checking shapes; host block of `total` floats.
static int read_block(hid_t parent, const char *gname, const ganc_tensor *t, int nt, float *host,
                      const char *path, const char *group, ganc_err *err) {
  hid_t g = H5Gopen2(parent, gname, H5P_DEFAULT);
  if (g < 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s has no %s/%s", path, group, gname);
    return -1;
  }
  H5G_info_t info;
  if (H5Gget_info(g, &info) >= 0 && info.nlinks != (hsize_t)nt) {
    ganc_err_set(err, GANC_EXIT_USAGE,
                 "checkpoint %s was made by a different architecture: %s/%s holds %llu tensors, "
                 "this model has %d\n---> HINT: use the config the checkpoint was trained with",
                 path, group, gname, (unsigned long long)info.nlinks, nt);
    H5Gclose(g);
    return -1;
  }
  for (int i = 0; i < nt; i++) {
    hid_t d = H5Dopen2(g, t[i].name, H5P_DEFAULT), s = -1;
    if (d < 0) {
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "checkpoint %s was made by a different architecture: it has no tensor %s/%s/%s"
                   "\n---> HINT: use the config the checkpoint was trained with",
                   path, group, gname, t[i].name);
      H5Gclose(g);
      return -1;
    }
    hsize_t dims[8];
    s = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(s);
    int same = nd == t[i].ndim;
    if (same) {
      H5Sget_simple_extent_dims(s, dims, NULL);
      for (int k = 0; k < nd; k++)
        same &= dims[k] == (hsize_t)t[i].shape[k];
    }
    H5Sclose(s);
    if (!same) {
      char want[64];
      snprintf(want, sizeof want, "[%d,%d,%d,%d]", t[i].shape[0], t[i].ndim > 1 ? t[i].shape[1] : 0,
               t[i].ndim > 2 ? t[i].shape[2] : 0, t[i].ndim > 3 ? t[i].shape[3] : 0);
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "checkpoint %s was made by a different architecture: tensor %s/%s has another "
                   "shape than this model's %s\n---> HINT: use the config the checkpoint was "
                   "trained with (ganc-sample does this by itself)",
                   path, group, t[i].name, want);
      H5Dclose(d);
      H5Gclose(g);
      return -1;
    }
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host + t[i].offset) < 0) {
      char b[512];
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "checkpoint %s is damaged: tensor %s/%s/%s fails its checksum (%s)\n---> HINT: "
                   "use an earlier checkpoint of the run",
                   path, group, gname, t[i].name, ganc_h5_last_error(b, 512));
      H5Dclose(d);
      H5Gclose(g);
      return -1;
    }
    H5Dclose(d);
  }
  H5Gclose(g);
  return 0;
}

int ganc_ckpt_load_net(const char *path, ganc_ctx *ctx, ganc_net *net, const char *group,
                       int with_optimizer, ganc_err *err) {
  hid_t f = open_ckpt(path, err);
  if (f < 0) return -1;
  int rc = -1;
  float *host = NULL;
  hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
  if (g < 0) {
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s has no network %s", path, group);
    goto done;
  }
  size_t total =
      net->nparam_floats > net->nbuffer_floats ? net->nparam_floats : net->nbuffer_floats;
  host = xmalloc((total ? total : 1) * sizeof(float));
  if (read_block(g, "params", net->params, net->nparams, host, path, group, err)) goto done;
  ganc_upload(ctx, net->p, host, net->nparam_floats);
  if (read_block(g, "buffers", net->buffers, net->nbuffers, host, path, group, err)) goto done;
  ganc_upload(ctx, net->buf, host, net->nbuffer_floats);
  if (with_optimizer && net->m) {
    if (read_block(g, "adam_m", net->params, net->nparams, host, path, group, err)) goto done;
    ganc_upload(ctx, net->m, host, net->nparam_floats);
    if (read_block(g, "adam_v", net->params, net->nparams, host, path, group, err)) goto done;
    ganc_upload(ctx, net->v, host, net->nparam_floats);
    if (ganc_h5_attr_read_num(g, "adam_t", H5T_NATIVE_INT64, &net->adam_t, err)) goto done;
  }
  rc = 0;
done:
  free(host);
  if (g >= 0) H5Gclose(g);
  H5Fclose(f);
  return rc;
}

// H5Ovisit callback: read each float dataset whole.
typedef struct verify_state {
  ganc_err *err;
  const char *path;
} verify_state;

static herr_t verify_one(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
  verify_state *v = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  hid_t d = H5Dopen2(obj, name, H5P_DEFAULT), s = d >= 0 ? H5Dget_space(d) : -1;
  hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  int ok = n >= 0 && n < (1ll << 32);
  if (ok) {
    float *buf = xmalloc(((size_t)n ? (size_t)n : 1) * sizeof(float));
    ok = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
    free(buf);
  }
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  if (!ok) {
    char b[512];
    ganc_err_set(v->err, GANC_EXIT_USAGE, "checkpoint %s is damaged: tensor %s cannot be read (%s)",
                 v->path, name, ganc_h5_last_error(b, sizeof b));
    return 1; // stop visiting
  }
  return 0;
}

int ganc_ckpt_verify(const char *path, ganc_err *err) {
  hid_t f = open_ckpt(path, err);
  if (f < 0) return -1;
  verify_state v = {err, path};
  herr_t rc = H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, verify_one, &v, H5O_INFO_BASIC);
  H5Fclose(f);
  if (rc != 0 && err && !err->code)
    ganc_err_set(err, GANC_EXIT_USAGE, "checkpoint %s is damaged (its tensors cannot be listed)",
                 path);
  return rc == 0 ? 0 : -1;
}
