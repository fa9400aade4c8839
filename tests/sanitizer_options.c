// sanitizer_options.c — the default options of the sanitized builds (CMake GANC_SANITIZE /
// GANC_FUZZ compile this into every program, test and fuzzer), so `ctest` in such a build folder,
// or a sanitized ganc-train run by hand, behaves as ./test.sh's run does. The environment
// (ASAN_OPTIONS, LSAN_OPTIONS, UBSAN_OPTIONS) still overrides any of them.
//
// GANC_LSAN_SUPP is tests/lsan.supp in the source tree: leaks inside system libraries that are
// not ganc's (each suppression there says why).

// The sanitizer runtimes look these up by name; they have no prototypes in a header.
const char *__asan_default_options(void);
const char *__lsan_default_options(void);
const char *__ubsan_default_options(void);

const char *__asan_default_options(void) {
  // detect_leaks: LeakSanitizer runs at exit, and a leak makes the program fail (the default on
  // Linux, stated so it is not lost to an ASAN_OPTIONS without it); strict_string_checks: str*
  // calls check their whole argument, not only the bytes they read.
  // Allocation stacks stay the fast kind (frame pointers, fast_unwind_on_malloc=1): the slow kind
  // (DWARF) would show whole paths through HDF5, which has no frame pointers, but made the
  // damaged-file suite (test_damage) over 9x slower (100 s -> more than 15 min) and the HDF5
  // fuzzers 4-6x; tests/lsan.supp says what that costs in precision.
  return "detect_leaks=1:strict_string_checks=1";
}

const char *__lsan_default_options(void) {
  return "suppressions=" GANC_LSAN_SUPP ":print_suppressions=0";
}

const char *__ubsan_default_options(void) {
  // Whole stacks (UBSan prints one line by default); halt: every report fails the program.
  return "print_stacktrace=1:halt_on_error=1";
}
