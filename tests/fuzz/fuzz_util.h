// fuzz_util.h — what the libFuzzer harnesses of tests/fuzz share: a scratch folder per process for
// the readers that take a path, and the checks every harness applies after each input (oracles
// beyond "no crash": an error must say something, HDF5 identifiers must all be closed again).
//
// A finding is reported by abort() with one line saying which promise broke, so libFuzzer saves
// the input as crash-<sha1> and prints the stack.
#ifndef GANC_FUZZ_UTIL_H
#define GANC_FUZZ_UTIL_H

#include "core/check.h"

#include <stddef.h>
#include <stdint.h>

// The process's scratch folder ($TMPDIR or /tmp, "ganc-fuzz-XXXXXX"), made on first use and
// removed at exit. libFuzzer's -fork/-jobs workers are processes of their own, each with its own.
const char *fz_dir(void);
// fz_dir()/name, in a static buffer per slot (0..3), so up to four paths can be held at once.
const char *fz_path(int slot, const char *name);
// Writes data [n] to path (created or truncated); a failure here is the harness's, so it aborts.
void fz_write(const char *path, const uint8_t *data, size_t n);
// Removes path if it exists.
void fz_unlink(const char *path);

// Aborts with `what` and the message when a failing call left err without a usable message
// (code 0, empty text), or — when `must_name` is not NULL — one that does not name that file.
void fz_check_err(const char *what, int rc, const ganc_err *err, const char *must_name);

// HDF5: fz_h5_baseline() initialises HDF5 (errors not printed, as the programs do) and records
// how many files, groups, datasets, named datatypes and attributes are open; fz_h5_check() aborts
// naming the kind when more are open after an input (an identifier leaked on some path: besides
// the leak, a file left open makes HDF5 hand the next H5Fopen of the same path the stale file).
void fz_h5_baseline(void);
void fz_h5_check(const char *what);

#endif
