// sum_order.h — the order of every floating-point sum of the resampling, spectral-norm and
// class-conditional ops, written once for both compilers (the philox_core.h way): the CPU twins
// (src/ops/resample.c, spectral.c, cond.c) walk these trees with loops, the CUDA kernels
// (kernels/resample.cu, spectral.cu, cond.cu) give each lane or chunk to a thread.
//
// Why a fixed order: a sum's bits depend on the order of its additions. Every sum below is a tree
// of DOUBLE additions that is a function of the shape alone — not of the thread count, the device,
// the launch or the order in which blocks run — so a kernel's result is the same on every run and
// bit-identical to its CPU twin's. Products of two floats are exact in double (24 + 24 bits < 53),
// so a device that fuses `acc + a·b` into an FMA rounds exactly as the CPU's separate multiply and
// add; products involving a double that is not a widened float go through ganc_dmul, which the
// device never fuses. Divisions and square roots in double are correctly rounded on both sides.
//
// The trees (each written out below as the per-lane or per-chunk function both sides call):
//   chunked rows  Σ over the R rows of one column of a [R, ld] block (a sample's H·W positions of
//                 channel c; a matrix's rows): rows [64 j, 64 j + 64) in order into chunk j's
//                 partial, then the partials in order of j. GPU: one thread per (chunk, column),
//                 so a warp reads 32 consecutive columns of a row (coalesced).
//   per class     Σ over the samples of one class: the samples in increasing order, each one's
//                 chunk partials in order of j, all into one accumulator (no per-sample subtotal).
//   lane dot      Σ_k a[k]·b[k] over a contiguous row of n: lane l of 32 sums k = l, l + 32, ... in
//                 order; then the halving tree (below). GPU: one warp per row (coalesced).
//   long sum      Σ over n values (a norm, sigma): lane t of 256 sums i = t, t + 256, ... in order;
//                 then the halving tree. GPU: one block of 256.
//   flat sum      Σ over a whole tensor: chunks of 4096 consecutive elements, each a long sum
//                 (lane t: elements t, t + 256, ... of the chunk); then the chunks' partials as
//                 one long sum. GPU: one block per chunk, then one block.
//   halving tree  over s[lanes]: for half = lanes/2, lanes/4, ..., 1: s[t] += s[t + half] for
//                 every t < half. GPU: one level per barrier.
#ifndef GANC_SUM_ORDER_H
#define GANC_SUM_ORDER_H

#include <stdint.h>

#ifndef GANC_HD
#ifdef __CUDACC__
#define GANC_HD __host__ __device__
#else
#define GANC_HD
#endif
#endif

enum {
  GANC_CHUNK_ROWS = 64,                   // chunked rows: rows per partial
  GANC_DOT_LANES = 32,                    // lane dot: one warp
  GANC_LONG_LANES = 256,                  // long sum: one block
  GANC_FLAT_CHUNK = 16 * GANC_LONG_LANES, // flat sum: elements per chunk (16 per lane)
};

// a·b in double, never fused into an FMA by nvcc (the host build is -ffp-contract=off).
GANC_HD static inline double ganc_dmul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// ---- chunked rows -------------------------------------------------------------------------------

GANC_HD static inline int64_t ganc_row_chunks(int64_t rows) {
  return (rows + GANC_CHUNK_ROWS - 1) / GANC_CHUNK_ROWS;
}

// Chunk j of column c of a [rows, ld] block: Σ a[r·ld + c] over its rows, in order.
GANC_HD static inline double ganc_chunk_sum(const float *a, int64_t ld, int64_t rows, int64_t j,
                                            int64_t c) {
  const int64_t end = (j + 1) * GANC_CHUNK_ROWS < rows ? (j + 1) * GANC_CHUNK_ROWS : rows;
  double s = 0.0;
  for (int64_t r = j * GANC_CHUNK_ROWS; r < end; r++)
    s += (double)a[r * ld + c];
  return s;
}

// The same with a weight per row: Σ a[r·ld + c]·wt[r] (float products: exact in double).
GANC_HD static inline double ganc_chunk_wsum(const float *a, int64_t ld, const float *wt,
                                             int64_t rows, int64_t j, int64_t c) {
  const int64_t end = (j + 1) * GANC_CHUNK_ROWS < rows ? (j + 1) * GANC_CHUNK_ROWS : rows;
  double s = 0.0;
  for (int64_t r = j * GANC_CHUNK_ROWS; r < end; r++)
    s += (double)a[r * ld + c] * (double)wt[r];
  return s;
}

// Column c's total from its chunk partials part[j·ld + c], j = 0 .. nchunk − 1 in order.
GANC_HD static inline double ganc_chunk_total(const double *part, int64_t nchunk, int64_t ld,
                                              int64_t c) {
  double s = 0.0;
  for (int64_t j = 0; j < nchunk; j++)
    s += part[j * ld + c];
  return s;
}

// ---- per class ----------------------------------------------------------------------------------
// labels [N] are class indices; the sums of a class are made once, at its first sample (its
// "head"), over that sample and the later ones of the same class.

GANC_HD static inline int ganc_class_head(const int32_t *labels, int n) {
  for (int i = 0; i < n; i++)
    if (labels[i] == labels[n]) return 0;
  return 1;
}

// Head n's class total of per-sample chunk partials part [N, nchunk, ld] at column c.
GANC_HD static inline double ganc_class_total(const double *part, const int32_t *labels, int N,
                                              int64_t nchunk, int64_t ld, int n, int64_t c) {
  const int32_t k = labels[n];
  double s = 0.0;
  for (int i = n; i < N; i++)
    if (labels[i] == k)
      for (int64_t j = 0; j < nchunk; j++)
        s += part[((int64_t)i * nchunk + j) * ld + c];
  return s;
}

// Head n's class total of dy[i]·h[i·C + c] (float products: exact in double).
GANC_HD static inline double ganc_class_dot(const float *dy, const float *h, const int32_t *labels,
                                            int N, int64_t C, int n, int64_t c) {
  const int32_t k = labels[n];
  double s = 0.0;
  for (int i = n; i < N; i++)
    if (labels[i] == k) s += (double)dy[i] * (double)h[(int64_t)i * C + c];
  return s;
}

// ---- lane dot, long sum, flat sum, the tree --------------------------------------------------

// Lane `lane` of a lane dot of a [n] and b [n].
GANC_HD static inline double ganc_dot_lane(const float *a, const float *b, int64_t n, int lane) {
  double s = 0.0;
  for (int64_t k = lane; k < n; k += GANC_DOT_LANES)
    s += (double)a[k] * (double)b[k];
  return s;
}

// Lane t of the long sums Σ a[i]², Σ v[i]·a[i] and Σ p[i].
GANC_HD static inline double ganc_long_lane_sq(const double *a, int64_t n, int t) {
  double s = 0.0;
  for (int64_t i = t; i < n; i += GANC_LONG_LANES)
    s += ganc_dmul(a[i], a[i]);
  return s;
}
GANC_HD static inline double ganc_long_lane_dot(const float *v, const double *a, int64_t n, int t) {
  double s = 0.0;
  for (int64_t i = t; i < n; i += GANC_LONG_LANES)
    s += ganc_dmul((double)v[i], a[i]);
  return s;
}
GANC_HD static inline double ganc_long_lane_sum(const double *p, int64_t n, int t) {
  double s = 0.0;
  for (int64_t i = t; i < n; i += GANC_LONG_LANES)
    s += p[i];
  return s;
}

// Lane t of chunk `chunk` of the flat sum Σ a[i]·b[i] over n elements.
GANC_HD static inline double ganc_flat_lane_dot(const float *a, const float *b, int64_t n,
                                                int64_t chunk, int t) {
  const int64_t i0 = chunk * GANC_FLAT_CHUNK + t;
  double s = 0.0;
  for (int q = 0; q < GANC_FLAT_CHUNK / GANC_LONG_LANES; q++) {
    const int64_t i = i0 + (int64_t)q * GANC_LONG_LANES;
    if (i < n) s += (double)a[i] * (double)b[i];
  }
  return s;
}

GANC_HD static inline int64_t ganc_flat_chunks(int64_t n) {
  return (n + GANC_FLAT_CHUNK - 1) / GANC_FLAT_CHUNK;
}

// One level of the halving tree (the GPU runs one per barrier).
GANC_HD static inline void ganc_tree_level(double *s, int t, int half) {
  if (t < half) s[t] += s[t + half];
}

// The whole tree at once (the CPU twins): returns the total, s[0].
static inline double ganc_tree(double *s, int lanes) {
  for (int half = lanes / 2; half > 0; half >>= 1)
    for (int t = 0; t < half; t++)
      ganc_tree_level(s, t, half);
  return s[0];
}

#endif
