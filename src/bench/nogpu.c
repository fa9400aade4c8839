// nogpu.c — ganc-bench's GPU modes in a build without the CUDA backend.
#include "bench/bench.h"

#include "core/check.h"

int ganc_bench_has_gpu_modes(void) { return 0; }

int ganc_bench_layers(const char *const *configs, int nconfigs, int batch_override, int reps,
                      FILE *csv) {
  (void)configs, (void)nconfigs, (void)batch_override, (void)reps, (void)csv;
  ganc_die(GANC_EXIT_USAGE, "--layers times GPU kernels: this build of ganc has no CUDA backend");
}

void ganc_bench_variants(FILE *f) {
  fprintf(f, "this build of ganc has no CUDA backend: the CPU runs every train.precision by "
             "rounding the operands (no variants)\n");
}

int ganc_bench_op(const char *op, const char *shape, int reps, FILE *csv) {
  (void)op, (void)shape, (void)reps, (void)csv;
  ganc_die(GANC_EXIT_USAGE, "--op times GPU kernels: this build of ganc has no CUDA backend");
}
