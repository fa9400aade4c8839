// featops_core.h — the arithmetic of the feature-network ops (pool2d, resize_bilinear; ops.def),
// written once for both compilers (the augment_core.h way): the CPU twins (src/ops/featops.c) and
// the CUDA kernels (kernels/featops.cu) compute each output element by calling these functions,
// so both produce the same bits by construction. Products of doubles go through ganc_dmul (never
// fused into an FMA on the device; the host build does not contract).
#ifndef GANC_FEATOPS_CORE_H
#define GANC_FEATOPS_CORE_H

#include "ops/sum_order.h" // GANC_HD, ganc_dmul

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { GANC_POOL_MAX = 0, GANC_POOL_AVG_VALID = 1, GANC_POOL_AVG_ALL = 2 };

// Output size of a pooling window sweep (the caller has checked it is >= 1).
GANC_HD static inline int ganc_pool_out(int size, int K, int stride, int pad) {
  return (size + 2 * pad - K) / stride + 1;
}

// NULL when pool2d's arguments are valid; else why (into buf).
static inline const char *ganc_pool_invalid(int N, int H, int W, int C, int K, int stride, int pad,
                                            int mode, char *buf, size_t n) {
  if (N < 1 || H < 1 || W < 1 || C < 1)
    snprintf(buf, n, "empty or negative shape [%d,%d,%d,%d]", N, H, W, C);
  else if (K < 1 || stride < 1 || pad < 0 || pad >= K)
    snprintf(buf, n, "window %d, stride %d, pad %d (need K >= 1, stride >= 1, 0 <= pad < K)", K,
             stride, pad);
  else if (mode < GANC_POOL_MAX || mode > GANC_POOL_AVG_ALL)
    snprintf(buf, n, "mode %d (0 max, 1 mean of the valid positions, 2 mean of all K²)", mode);
  else if (H + 2 * pad < K || W + 2 * pad < K)
    snprintf(buf, n, "a %dx%d window does not fit a %dx%d input padded by %d", K, K, H, W, pad);
  else
    return NULL;
  return buf;
}

// Output element (n, p, q, c) of pool2d over x [N, H, W, C].
GANC_HD static inline float ganc_pool_at(const float *x, int H, int W, int C, int K, int stride,
                                         int pad, int mode, int64_t n, int p, int q, int c) {
  const int i0 = p * stride - pad, j0 = q * stride - pad;
  const float *xn = x + n * H * (int64_t)W * C;
  if (mode == GANC_POOL_MAX) {
    float m = 0.0f;
    int any = 0;
    for (int i = i0; i < i0 + K; i++) {
      if (i < 0 || i >= H) continue;
      for (int j = j0; j < j0 + K; j++) {
        if (j < 0 || j >= W) continue;
        const float v = xn[((int64_t)i * W + j) * C + c];
        // The first value, then any larger one; a NaN wins (as PyTorch's max_pool2d).
        if (!any || v > m || v != v) m = v;
        any = 1;
        if (m != m) return m;
      }
    }
    return m; // pad < K: every window holds at least one position of x
  }
  double s = 0.0;
  int count = 0;
  for (int i = i0; i < i0 + K; i++) {
    if (i < 0 || i >= H) continue;
    for (int j = j0; j < j0 + K; j++) {
      if (j < 0 || j >= W) continue;
      s += (double)xn[((int64_t)i * W + j) * C + c];
      count++;
    }
  }
  return (float)(s / (double)(mode == GANC_POOL_AVG_VALID ? count : K * K));
}

// Bilinear source coordinate of output index i of `out` along an axis of `in` (PyTorch's
// align_corners = False): the two neighbours and the second one's weight.
typedef struct ganc_lerp {
  int i0, i1;
  double w1; // the weight of i1; i0's is 1 − w1
} ganc_lerp;

GANC_HD static inline ganc_lerp ganc_lerp_src(int i, int in, int out) {
  const double scale = (double)in / (double)out;
  double s = ganc_dmul((double)i + 0.5, scale) - 0.5;
  if (s < 0) s = 0;
  ganc_lerp l;
  l.i0 = (int)s; // s >= 0: truncation is the floor
  if (l.i0 > in - 1) l.i0 = in - 1;
  l.i1 = l.i0 < in - 1 ? l.i0 + 1 : l.i0;
  l.w1 = s - (double)l.i0;
  return l;
}

// Output element (n, p, q, c) of resize_bilinear [N,P,Q,C] from x [N,H,W,C].
GANC_HD static inline float ganc_resize_at(const float *x, int H, int W, int C, int P, int Q,
                                           int64_t n, int p, int q, int c) {
  const ganc_lerp r = ganc_lerp_src(p, H, P), k = ganc_lerp_src(q, W, Q);
  const float *xn = x + n * H * (int64_t)W * C;
  const double x00 = xn[((int64_t)r.i0 * W + k.i0) * C + c];
  const double x01 = xn[((int64_t)r.i0 * W + k.i1) * C + c];
  const double x10 = xn[((int64_t)r.i1 * W + k.i0) * C + c];
  const double x11 = xn[((int64_t)r.i1 * W + k.i1) * C + c];
  const double a = k.w1, b = r.w1;
  const double top = ganc_dmul(1.0 - a, x00) + ganc_dmul(a, x01);
  const double bot = ganc_dmul(1.0 - a, x10) + ganc_dmul(a, x11);
  return (float)(ganc_dmul(1.0 - b, top) + ganc_dmul(b, bot));
}

#endif
