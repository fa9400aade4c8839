// util.h — small host helpers shared by every program: clocks, paths, hashing, progress display.
#ifndef GANC_UTIL_H
#define GANC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// Monotonic seconds, for rates and ETAs.
double ganc_now(void);
// qsort's comparison of two doubles, ascending: the medians of the benchmarks' timings.
int ganc_cmp_double(const void *a, const void *b);
// Current UTC time as ISO 8601 ("2026-11-22T10:04:05Z") into buf.
void ganc_utc_iso(char *buf, size_t n);

// Path helpers. ganc_path_join returns a malloc'd "a/b".
char *ganc_path_join(const char *a, const char *b);
int ganc_is_dir(const char *path);
int ganc_is_file(const char *path);
// mkdir -p; 0 or -1 with errno.
int ganc_mkdir_p(const char *path);
// rm -rf of a folder we created ourselves; 0 or -1 with errno.
int ganc_rm_rf(const char *path);
// Reads a whole file into a malloc'd buffer (+1 NUL byte, not counted). 0, or -1 with errno set;
// files larger than max_bytes fail with EFBIG (so a huge file is refused, not read).
int ganc_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *n);

// Command-line options as "--key value" or "--key=value". ganc_opt_split copies the key part of
// arg into key[n] and points *inline_value at the text after '=' (NULL without one);
// ganc_opt_value returns that inline value or consumes the next argument, and exits 2 naming
// `prog` when there is none, when the next argument is itself an option ("--..."), or when the
// value is empty.
void ganc_opt_split(const char *arg, char *key, size_t n, const char **inline_value);
const char *ganc_opt_value(int argc, char **argv, int *i, const char *key, const char *inline_value,
                           const char *prog);

// A 128-bit non-cryptographic hash (two independent 64-bit lanes): equal pixels ⇒ equal hash, and
// a collision between different images is ~2^-128, so equal hashes are treated as duplicates.
void ganc_hash128(const void *data, size_t n, uint64_t seed, uint64_t out[2]);

// A duration for people: "MM:SS" under an hour, "H:MM:SS" under a day, then "Dd HH:MM:SS";
// ">99999d" past that and "--:--" when unknown (negative or NaN). Never overflows. buf: 24 bytes.
void ganc_format_duration(double seconds, char *buf, size_t n);

// Progress on a terminal: one redrawn line with a bar, rate and ETA. Elsewhere (a log, CI): a plain
// line every `plain_every` seconds. Writes to `f` (stderr for the programs).
typedef struct ganc_progress {
  FILE *f;
  const char *what; // "images", "kimg", ...
  int64_t total;    // 0 = unknown
  double start, last;
  double plain_every;
  int tty;
  int drawn; // a terminal line is on screen and needs a newline before other output
} ganc_progress;

void ganc_progress_start(ganc_progress *p, FILE *f, const char *what, int64_t total);
// Redraws when due; `extra` (may be NULL) is appended, e.g. "skipped 3".
void ganc_progress_update(ganc_progress *p, int64_t done, const char *extra);
// Ends the line (final counts and the total time).
void ganc_progress_finish(ganc_progress *p, int64_t done, const char *extra);
// Call before printing other lines so a terminal bar does not get mixed into them.
void ganc_progress_clear(ganc_progress *p);

#ifdef __cplusplus
}
#endif

#endif
