// testutil.h — helpers shared by ganc's C tests: scratch folders, synthetic shard sets, damage.
#ifndef GANC_TESTUTIL_H
#define GANC_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

// A fresh, empty folder GANC_TEST_TMP/<name>-<pid> (malloc'd path); removed by tu_rmdir.
char *tu_tmpdir(const char *name);
void tu_rmdir(char *path);

// The pixels every synthetic dataset uses for image i: depends on i, so a read-back can be checked.
void tu_image_for(int64_t i, uint8_t *px, size_t bytes);

// Writes n synthetic images [R, R, C] into dir (which must exist) as shards of shard_size images;
// labels i % nclasses when nclasses > 0; source "img/<i>.png".
void tu_write_dataset(const char *dir, int R, int C, int64_t n, int64_t shard_size, int nclasses);

// Flips bytes in the middle of chunk `chunk` of dataset `dset` in an HDF5 file (to test checksums).
void tu_corrupt_chunk(const char *path, const char *dset, int chunk);
// Cuts a file to `keep` bytes.
void tu_truncate(const char *path, long keep);
// A path the tests need, from the environment variable `env` when it is set (the device machine
// runs tests from a bundle, away from the build tree), else the compiled-in default. Used with
// GANC_BIN_DIR (the programs), GANC_FMNIST_DIR, GANC_SOURCE_DIR and GANC_TEST_TMP.
const char *tu_path(const char *env, const char *compiled);
// The checkpoint a run folder's `latest` names, as a malloc'd path; exits 1 (failing the test)
// when the run has none.
char *tu_latest_ckpt(const char *run);
// Compares the whole training state of two checkpoints (G, G_ema and D, each built from its
// checkpoint's own config: parameters, buffers, Adam moments and steps): NULL when every bit is
// the same, else a malloc'd sentence saying what differs (or why a file could not be read).
char *tu_ckpt_state_diff(const char *a, const char *b);
// Runs a shell command, returns its exit status (-1 if it did not exit normally).
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Runs fn(arg) in a child process (exit 0 if it returns) with its stderr kept in msg [n]
// (NUL-terminated): a call that must stop the program, checked without stopping the test.
// Returns the child's exit status, or -1 if it did not exit normally.
int tu_run_child(void (*fn)(void *), void *arg, char *msg, size_t n);
// The same for a call made on a CUDA device: CUDA does not survive fork() (a forked child's first
// call fails with "initialization error"), so this runs the test binary itself afresh
// (/proc/self/exe ARG, which must do the call) with its stderr kept in msg [n]. Returns its exit
// status, or -1 if it did not exit normally.
int tu_run_self(const char *arg, char *msg, size_t n);

#endif
