// act_core.h — the forward arithmetic of ReLU and leaky ReLU, written once for the activation ops
// (src/ops/act.c, kernels/act.cu) and for the ops that apply an activation to their own output
// before writing it (batch norm: `act`), so that a fused activation is the same bits as the
// separate op after it.
#ifndef GANC_ACT_CORE_H
#define GANC_ACT_CORE_H

#ifdef __CUDACC__
#define GANC_ACT_HD __host__ __device__
#else
#define GANC_ACT_HD
#endif

// What an op applies to its output (ops.def: batch norm's `act`).
enum { GANC_ACT_NONE = 0, GANC_ACT_RELU = 1, GANC_ACT_LRELU = 2 };

GANC_ACT_HD static inline float ganc_relu(float x) {
  return x < 0.0f ? 0.0f : x; // written this way round so a NaN passes through, visibly
}
GANC_ACT_HD static inline float ganc_lrelu(float slope, float x) {
#ifdef __CUDA_ARCH__
  return x > 0.0f ? x : __fmul_rn(slope, x); // one rounded product, as the CPU's
#else
  return x > 0.0f ? x : slope * x;
#endif
}
GANC_ACT_HD static inline float ganc_act(int act, float slope, float x) {
  return act == GANC_ACT_RELU ? ganc_relu(x) : act == GANC_ACT_LRELU ? ganc_lrelu(slope, x) : x;
}
// The backward passes: dx from the activation's output y (its sign only, the same as its input's
// for slope > 0) and dy — written once here for the activation ops and for a convolution that
// applies them to the gradient it writes (ops.def: conv2d_mixed's epilogue), so that the fused
// pass is the same bits as the separate op.
GANC_ACT_HD static inline float ganc_act_grad(int act, float slope, float y, float dy) {
  if (act == GANC_ACT_RELU) return y > 0.0f ? dy : 0.0f;
  if (act == GANC_ACT_LRELU) {
#ifdef __CUDA_ARCH__
    return y > 0.0f ? dy : __fmul_rn(slope, dy); // one rounded product, as the CPU's
#else
    return y > 0.0f ? dy : slope * dy;
#endif
  }
  return dy;
}

#endif
