// h5attr.h — HDF5 attributes as ganc's files use them (shards and checkpoints): scalar numbers,
// UTF-8 strings and string lists. Writers return 0 or a negative value (wrap them in CHECK_H5 or
// test them); readers are recoverable, naming the attribute in err, since they read user files.
#ifndef GANC_H5ATTR_H
#define GANC_H5ATTR_H

#include "core/check.h"

#include <hdf5.h>

#ifdef __cplusplus
extern "C" {
#endif

// A variable-length UTF-8 string type; the caller closes it with H5Tclose.
hid_t ganc_h5_str_type(void);

int ganc_h5_attr_write_str(hid_t obj, const char *name, const char *value);
int ganc_h5_attr_write_strs(hid_t obj, const char *name, char **values, int n);
// A scalar stored as file_type (e.g. H5T_STD_I64LE) from memory of mem_type (H5T_NATIVE_INT64).
int ganc_h5_attr_write_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                           const void *value);

int ganc_h5_attr_read_num(hid_t obj, const char *name, hid_t mem_type, void *value, ganc_err *err);
// *out is malloc'd; a non-string attribute is an error.
int ganc_h5_attr_read_str(hid_t obj, const char *name, char **out, ganc_err *err);
// *out [*n] malloc'd strings.
int ganc_h5_attr_read_strs(hid_t obj, const char *name, char ***out, int *n, ganc_err *err);

#ifdef __cplusplus
}
#endif

#endif
