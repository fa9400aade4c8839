// h5attr.c — HDF5 attribute helpers shared by shards and checkpoints (see h5attr.h).
#include "io/h5attr.h"

#include <stdlib.h>

hid_t ganc_h5_str_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

// Creates attribute `name` of `type` and shape `space` on obj and writes `data` as `mem_type`.
static int write_attr(hid_t obj, const char *name, hid_t type, hid_t space, hid_t mem_type,
                      const void *data) {
  if (space < 0) return -1;
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int rc = a < 0 || H5Awrite(a, mem_type, data) < 0 ? -1 : 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return rc;
}

int ganc_h5_attr_write_str(hid_t obj, const char *name, const char *value) {
  hid_t t = ganc_h5_str_type();
  if (t < 0) return -1;
  const char *v = value ? value : "";
  int rc = write_attr(obj, name, t, H5Screate(H5S_SCALAR), t, &v);
  H5Tclose(t);
  return rc;
}

int ganc_h5_attr_write_strs(hid_t obj, const char *name, char **values, int n) {
  hid_t t = ganc_h5_str_type();
  if (t < 0) return -1;
  hsize_t dim = (hsize_t)n;
  int rc = write_attr(obj, name, t, H5Screate_simple(1, &dim, NULL), t, values);
  H5Tclose(t);
  return rc;
}

int ganc_h5_attr_write_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                           const void *value) {
  return write_attr(obj, name, file_type, H5Screate(H5S_SCALAR), mem_type, value);
}

// A foreign or crafted file may hold an array where we expect one value: reading it into one
// scalar would overrun it, so anything but a single element is refused.
static int is_scalar(hid_t a, ganc_err *err) {
  hid_t s = H5Aget_space(a);
  hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
  if (s >= 0) H5Sclose(s);
  if (n != 1)
    ganc_err_set(err, GANC_EXIT_USAGE, "holds %lld values where one is expected", (long long)n);
  return n == 1;
}

int ganc_h5_attr_read_num(hid_t obj, const char *name, hid_t mem_type, void *value, ganc_err *err) {
  hid_t a = -1, t = -1;
  TRY_H5(a = H5Aopen(obj, name, H5P_DEFAULT), err, fail);
  if (!is_scalar(a, err)) goto fail;
  TRY_H5(t = H5Aget_type(a), err, fail);
  if (H5Tget_class(t) != H5T_INTEGER && H5Tget_class(t) != H5T_FLOAT) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is not a number");
    goto fail;
  }
  H5Tclose(t);
  t = -1;
  TRY_H5(H5Aread(a, mem_type, value), err, fail);
  H5Aclose(a);
  return 0;
fail:
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  ganc_err_prefix(err, "attribute '%s': ", name);
  return -1;
}

int ganc_h5_attr_read_str(hid_t obj, const char *name, char **out, ganc_err *err) {
  hid_t a = -1, t = -1, mt = ganc_h5_str_type();
  char *v = NULL;
  *out = NULL;
  TRY_H5(a = H5Aopen(obj, name, H5P_DEFAULT), err, fail);
  if (!is_scalar(a, err)) goto fail;
  TRY_H5(t = H5Aget_type(a), err, fail);
  if (H5Tget_class(t) != H5T_STRING || !H5Tis_variable_str(t)) {
    ganc_err_set(err, GANC_EXIT_USAGE, "not a variable-length string");
    goto fail;
  }
  TRY_H5(H5Aread(a, mt, &v), err, fail);
  *out = xstrdup(v ? v : "");
  H5free_memory(v);
  H5Tclose(t);
  H5Aclose(a);
  H5Tclose(mt);
  return 0;
fail:
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  H5Tclose(mt);
  ganc_err_prefix(err, "attribute '%s': ", name);
  return -1;
}

int ganc_h5_attr_read_strs(hid_t obj, const char *name, char ***out, int *n, ganc_err *err) {
  hid_t a = -1, s = -1, mt = ganc_h5_str_type();
  char **v = NULL;
  *out = NULL;
  *n = 0;
  TRY_H5(a = H5Aopen(obj, name, H5P_DEFAULT), err, fail);
  TRY_H5(s = H5Aget_space(a), err, fail);
  hid_t t = H5Aget_type(a);
  int is_str = t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0;
  if (t >= 0) H5Tclose(t);
  if (!is_str) {
    ganc_err_set(err, GANC_EXIT_USAGE, "is not a list of variable-length strings");
    goto fail;
  }
  hssize_t cnt = H5Sget_simple_extent_npoints(s);
  if (cnt <= 0 || cnt > 1000000) {
    ganc_err_set(err, GANC_EXIT_USAGE, "implausible count %lld", (long long)cnt);
    goto fail;
  }
  v = xcalloc((size_t)cnt, sizeof *v);
  TRY_H5(H5Aread(a, mt, v), err, fail);
  *out = xcalloc((size_t)cnt, sizeof **out);
  for (hssize_t i = 0; i < cnt; i++)
    (*out)[i] = xstrdup(v[i] ? v[i] : "");
  *n = (int)cnt;
  H5Dvlen_reclaim(mt, s, H5P_DEFAULT, v);
  free(v);
  H5Sclose(s);
  H5Aclose(a);
  H5Tclose(mt);
  return 0;
fail:
  free(v);
  if (s >= 0) H5Sclose(s);
  if (a >= 0) H5Aclose(a);
  H5Tclose(mt);
  ganc_err_prefix(err, "attribute '%s': ", name);
  return -1;
}
