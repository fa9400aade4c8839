// bench.h — ganc-bench's GPU modes (src/bench/gpu.cu when the CUDA backend is built; otherwise
// src/bench/nogpu.c, which says they need it).
#ifndef GANC_BENCH_H
#define GANC_BENCH_H

#ifdef __cplusplus
extern "C" {
#endif

// Every conv role of every G and D layer of the configs at their batch (or batch_override > 0):
// ours, cuDNN's fastest, cuBLAS where GEMM-shaped. Medians of `reps` runs. Returns an exit code.
int ganc_bench_layers(const char *const *configs, int nconfigs, int batch_override, int reps,
                      int csv);
// One role ("conv-fwd", "conv-bwd-data", "conv-bwd-weight") at "N,H,W,C,K,R,S,stride,pad".
int ganc_bench_op(const char *op, const char *shape, int reps, int csv);

#ifdef __cplusplus
}
#endif

#endif
