// check.h — the one family of checking macros for every call that can fail.
//
// Two flavours, same shape:
//   CHECK_*(call)               fatal: prints "<call> failed at file:line: reason" and exits 1. For
//                               failures a program cannot go on from (out of host memory, a write
//                               to our own output failing).
//   TRY_*(call, err, label)     recoverable: records the same message in a ganc_err and jumps to
//                               `label`. For anything that depends on a user's input (a damaged
//                               shard, a foreign checkpoint) so the caller can name the file and
//                               say what to do next.
// User-facing text that explains what to try ends with a line "---> HINT: ..." (llm.c's habit).
#ifndef GANC_CHECK_H
#define GANC_CHECK_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
#define GANC_NORETURN [[noreturn]]
extern "C" {
#else
#define GANC_NORETURN _Noreturn
#endif

// Exit codes of every ganc program.
enum { GANC_EXIT_OK = 0, GANC_EXIT_RUNTIME = 1, GANC_EXIT_USAGE = 2 };

// A recoverable error: what went wrong, in words a user can act on.
typedef struct ganc_err {
  int code; // 0 = no error; else GANC_EXIT_RUNTIME or GANC_EXIT_USAGE (bad input)
  char msg[1024];
} ganc_err;

// Sets err (if not NULL) to a formatted message; keeps the first error when one is already set,
// so the innermost, most specific cause survives a chain of callers.
void ganc_err_set(ganc_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Prefixes context ("reading shard-00003.h5: ") to an error that is already set.
void ganc_err_prefix(ganc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prints "error: <msg>" to stderr and exits with the error's code (or 1).
GANC_NORETURN void ganc_die_err(const ganc_err *err);
// Prints "error: <formatted>" to stderr and exits with `code`.
GANC_NORETURN void ganc_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prints the fatal message for a failed call and exits 1.
GANC_NORETURN void ganc_fail_call(const char *call, const char *file, int line, const char *why);

// The innermost HDF5 error message on the current thread's error stack ("" if none); HDF5's
// own stack printing is switched off by ganc_h5_quiet() so users see one line, not fifty.
const char *ganc_h5_last_error(char *buf, size_t n);
void ganc_h5_quiet(void);
// For a program's main, before any other HDF5 call: HDF5 does not close open files in an exit
// handler. Every file ganc writes is closed explicitly; but a file whose write failed (a full
// disk) is left broken inside HDF5 1.10.8, and its exit handler crashes on it (H5F__close_cb),
// turning "disk full, exit 1" into a segfault.
void ganc_h5_no_atexit(void);

// Allocation that never returns NULL: out of host memory is fatal, with the size asked for.
void *ganc_xmalloc(size_t n, const char *file, int line);
void *ganc_xcalloc(size_t n, size_t size, const char *file, int line);
void *ganc_xrealloc(void *p, size_t n, const char *file, int line);
char *ganc_xstrdup(const char *s, const char *file, int line);
#ifdef __cplusplus
}
#endif

#define xmalloc(n) ganc_xmalloc((n), __FILE__, __LINE__)
#define xcalloc(n, s) ganc_xcalloc((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n) ganc_xrealloc((p), (n), __FILE__, __LINE__)
#define xstrdup(s) ganc_xstrdup((s), __FILE__, __LINE__)

// ---- fatal checks -------------------------------------------------------------------------
// libc calls that return -1 (or another negative) and set errno.
#define CHECK_SYS(call)                                                                            \
  do {                                                                                             \
    if ((call) < 0) ganc_fail_call(#call, __FILE__, __LINE__, strerror(errno));                    \
  } while (0)
// libc calls that return NULL and set errno (fopen, opendir, ...).
#define CHECK_PTR(call)                                                                            \
  do {                                                                                             \
    if ((call) == NULL) ganc_fail_call(#call, __FILE__, __LINE__, strerror(errno));                \
  } while (0)
// pthread-style calls that return an error number.
#define CHECK_ERRNO(call)                                                                          \
  do {                                                                                             \
    int ganc_rc_ = (call);                                                                         \
    if (ganc_rc_ != 0) ganc_fail_call(#call, __FILE__, __LINE__, strerror(ganc_rc_));              \
  } while (0)
// HDF5 calls return a negative herr_t/hid_t on failure.
#define CHECK_H5(call)                                                                             \
  do {                                                                                             \
    char ganc_h5buf_[512];                                                                         \
    if ((long long)(call) < 0)                                                                     \
      ganc_fail_call(#call, __FILE__, __LINE__, ganc_h5_last_error(ganc_h5buf_, 512));             \
  } while (0)

// ---- recoverable checks -------------------------------------------------------------------
#define TRY_SYS(call, err, label)                                                                  \
  do {                                                                                             \
    if ((call) < 0) {                                                                              \
      ganc_err_set((err), GANC_EXIT_RUNTIME, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__,  \
                   strerror(errno));                                                               \
      goto label;                                                                                  \
    }                                                                                              \
  } while (0)
#define TRY_PTR(call, err, label)                                                                  \
  do {                                                                                             \
    if ((call) == NULL) {                                                                          \
      ganc_err_set((err), GANC_EXIT_RUNTIME, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__,  \
                   strerror(errno));                                                               \
      goto label;                                                                                  \
    }                                                                                              \
  } while (0)
// A failed HDF5 read of a user's file is bad input (exit 2): the file is damaged or foreign.
#define TRY_H5(call, err, label)                                                                   \
  do {                                                                                             \
    if ((long long)(call) < 0) {                                                                   \
      char ganc_h5buf_[512];                                                                       \
      ganc_err_set((err), GANC_EXIT_USAGE, "%s failed at %s:%d: %s", #call, __FILE__, __LINE__,    \
                   ganc_h5_last_error(ganc_h5buf_, 512));                                          \
      goto label;                                                                                  \
    }                                                                                              \
  } while (0)

#endif
