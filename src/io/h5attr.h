// h5attr.h — HDF5 files as ganc writes and reads them (shards and checkpoints): the checksummed
// file layout, the sniffing of a file before HDF5 parses it, and attributes (scalar numbers,
// fixed-length UTF-8 strings and string lists) with a SHA-256 over all of an object's attributes.
//
// Why fixed-length strings: a variable-length string lives in HDF5's global heap, which carries no
// checksum, and HDF5 1.10 reads a damaged heap out of bounds (a segfault, or an endless loop). A
// fixed-length string lives inside the object header, and with the layout of ganc_h5_fapl() every
// object header, B-tree and chunk index carries a checksum that HDF5 verifies before parsing it.
//
// Writers return 0 or a negative value (wrap them in CHECK_H5 or test them); readers are
// recoverable, naming the attribute in err, since they read user files.
#ifndef GANC_H5ATTR_H
#define GANC_H5ATTR_H

#include "core/check.h"

#include <hdf5.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The name of the attribute that holds the SHA-256 (64 lowercase hex digits) of all the other
// attributes of the same object.
#define GANC_H5_ATTR_DIGEST "attr_sha256"

// A file-access property list for writing: HDF5 1.10's own format (superblock v3, object headers
// v2, checksummed chunk indexes). Such files need HDF5 >= 1.10 (h5py included) to be read.
hid_t ganc_h5_fapl(void);

// Creation property lists for a file (its root group) and for a group that keep every attribute
// (up to 64 KiB each) and every link in the object header (compact storage) instead of moving
// more than 8 of them to a fractal heap: there they would be checksummed too, but the heap's
// free-space records (never read by a reader) would leave bytes whose damage no reader could see
// or care about, and a damaged-file test could not tell those from bytes that matter.
hid_t ganc_h5_fcpl(void);
hid_t ganc_h5_gcpl(void);

// What ganc_h5_sniff found.
enum {
  GANC_H5_CHECKSUMMED = 2, // an HDF5 file whose superblock (v2+) carries a checksum
  GANC_H5_OLD_LAYOUT = 1,  // an HDF5 file with a superblock v0/v1 (no metadata checksums)
};
// Looks at `path` before HDF5 does: it must be a regular file (a FIFO, device or folder is refused
// without being opened for reading, so it cannot block), not empty, and start with the HDF5
// signature. Returns GANC_H5_CHECKSUMMED or GANC_H5_OLD_LAYOUT, or -1 with an exit-2 error that
// says what the file is instead (the caller prefixes the file's role and name). *size (may be
// NULL) receives the file's size.
int ganc_h5_sniff(const char *path, int64_t *size, ganc_err *err);

int ganc_h5_attr_write_str(hid_t obj, const char *name, const char *value);
int ganc_h5_attr_write_strs(hid_t obj, const char *name, char **values, int n);
// A scalar stored as file_type (e.g. H5T_STD_I64LE) from memory of mem_type (H5T_NATIVE_INT64).
int ganc_h5_attr_write_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                           const void *value);
// Writes GANC_H5_ATTR_DIGEST over obj's other attributes: call it after the last attribute.
int ganc_h5_attrs_seal(hid_t obj);

// A scalar integer attribute (stored as an integer of up to 64 bits, never a float) within
// [lo, hi]; anything else is an exit-2 error that names the attribute and the value.
int ganc_h5_attr_read_i64(hid_t obj, const char *name, int64_t lo, int64_t hi, int64_t *value,
                          ganc_err *err);
// A scalar unsigned integer attribute (any 64-bit value; negative values are refused).
int ganc_h5_attr_read_u64(hid_t obj, const char *name, uint64_t *value, ganc_err *err);
// A scalar floating-point attribute (4 or 8 bytes) within [lo, hi] (NaN never is).
int ganc_h5_attr_read_f64(hid_t obj, const char *name, double lo, double hi, double *value,
                          ganc_err *err);
// A scalar fixed-length string attribute; *out is malloc'd and NUL-terminated. Variable-length
// strings (older ganc files) are refused: reading them would trust the unchecksummed heap.
int ganc_h5_attr_read_str(hid_t obj, const char *name, char **out, ganc_err *err);
// A list [*n] (1..1,000,000) of fixed-length strings, malloc'd.
int ganc_h5_attr_read_strs(hid_t obj, const char *name, char ***out, int *n, ganc_err *err);

// Checks GANC_H5_ATTR_DIGEST of obj against its other attributes. Returns 0 when it matches, 1
// when obj has no digest (a file from before digests; the caller decides), -1 with an error when
// it differs or an attribute cannot be read.
int ganc_h5_attrs_check(hid_t obj, ganc_err *err);

// The SHA-256 (hex) of a canonical serialization of obj's attributes except the digest itself:
// in name order, each attribute's name, type class, size, sign, shape and stored bytes. Only
// integer, float and fixed-length string attributes of up to 16 MiB are accepted.
int ganc_h5_attrs_digest(hid_t obj, char hex[65], ganc_err *err);

// Copies every attribute of src onto dst, turning variable-length strings into fixed-length ones
// (used to carry an older file over into the current layout).
int ganc_h5_attrs_copy(hid_t src, hid_t dst, ganc_err *err);

// A fixed-length UTF-8 string type of `size` bytes (NUL-terminated); the caller closes it.
hid_t ganc_h5_fixed_str_type(size_t size);

// 1 when `name` in group loc is a hard link (an object of this file), else 0: a soft or external
// link could lead the reader into another file (even a FIFO, which would block).
int ganc_h5_is_hard_link(hid_t loc, const char *name);

// 1 when dataset d is chunked and its filter pipeline includes Fletcher32 (every chunk's bytes
// are checked on read), else 0.
int ganc_h5_is_checksummed(hid_t d);

#ifdef __cplusplus
}
#endif

#endif
