// bench.h — ganc-bench's GPU modes (src/bench/gpu.cu when the CUDA backend is built; otherwise
// src/bench/nogpu.c, which says they need it).
#ifndef GANC_BENCH_H
#define GANC_BENCH_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// 1 when this build has the GPU modes (--layers, --op), 0 when they only say they need CUDA.
int ganc_bench_has_gpu_modes(void);

// Every conv role of every G and D layer of the configs at their batch (or batch_override > 0):
// ours, cuDNN's fastest, cuBLAS where GEMM-shaped. Medians of `reps` runs. A table on stdout and,
// when csv is not NULL, the same rows as CSV there (csv == stdout: the CSV instead of the table).
// Returns an exit code.
int ganc_bench_layers(const char *const *configs, int nconfigs, int batch_override, int reps,
                      FILE *csv);
// The convolution variants of this build (kernels/conv.cu's table), one per line.
void ganc_bench_variants(FILE *f);
// One role ("conv-fwd", "conv-bwd-data", "conv-bwd-weight") at "N,H,W,C,K,R,S,stride,pad".
int ganc_bench_op(const char *op, const char *shape, int reps, FILE *csv);

#ifdef __cplusplus
}
#endif

#endif
