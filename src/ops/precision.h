// precision.h — rounding an FP32 value to the operand precisions of train.precision (core/ctx.h),
// exactly as the tensor-core instructions round (kernels/mma.cuh): bf16 to nearest, ties to even
// (cvt.rn.bf16.f32), tf32 to nearest, ties away from zero (cvt.rna.tf32.f32). The result is the
// rounded value as an FP32 float (its low 16 or 13 bits zero). NaN and ±Inf pass through.
#ifndef GANC_PRECISION_H
#define GANC_PRECISION_H

#include <stdint.h>
#include <string.h>

// Host and device (the tuner's agreement check rounds operands on the GPU, kernels/conv.cu).
#ifdef __CUDACC__
#define GANC_PREC_HD __host__ __device__
#else
#define GANC_PREC_HD
#endif

GANC_PREC_HD static inline float ganc_round_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) == 0x7F800000u) return f; // Inf, NaN
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  memcpy(&f, &u, 4);
  return f;
}

GANC_PREC_HD static inline float ganc_round_tf32(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) == 0x7F800000u) return f;
  u = (u + 0x1000u) & 0xFFFFE000u;
  memcpy(&f, &u, 4);
  return f;
}

// BF16 storage (train.bf16_activations): a tensor kept as the upper halves of its FP32 values,
// rounded to nearest even exactly as the tensor-core operand conversion of kernels/mma.cuh
// (bf16_bits, cvt.rn.bf16x2.f32) rounds them, so that a kernel reading the stored halves sees the
// bits it would have made from the FP32 value. NaN stays NaN (quiet), ±Inf stays ±Inf; a finite
// value past the largest bf16 becomes ±Inf, and a positive value below 2^-134 becomes +0.
GANC_PREC_HD static inline uint16_t ganc_bf16_store(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
GANC_PREC_HD static inline float ganc_bf16_load(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
// Two stored halves in one 32-bit word (a vector load's or store's; the lower address in the low
// bits): o[0], o[1] their values; and the word two values make.
GANC_PREC_HD static inline void ganc_bf16x2_load(uint32_t w, float *o) {
  o[0] = ganc_bf16_load((uint16_t)(w & 0xFFFFu));
  o[1] = ganc_bf16_load((uint16_t)(w >> 16));
}
GANC_PREC_HD static inline uint32_t ganc_bf16x2_store(float lo, float hi) {
  return (uint32_t)ganc_bf16_store(lo) | (uint32_t)ganc_bf16_store(hi) << 16;
}
// Element i of y, a tensor of FP32 values (bf16 = 0) or of their stored halves (bf16 = 1).
GANC_PREC_HD static inline float ganc_load_as(const void *y, int bf16, int64_t i) {
  return bf16 ? ganc_bf16_load(((const uint16_t *)y)[i]) : ((const float *)y)[i];
}
// How batch norm reads its input x (ops.def: x_mode): FP32 as stored (GANC_X_FP32), its stored
// halves (GANC_X_BF16), or FP32 rounded to bf16 as it is read (GANC_X_ROUND: the values of the
// halves a bf16 copy would hold, without the copy; a bf16 run's convolution outputs, model/net.c).
enum { GANC_X_FP32 = 0, GANC_X_BF16 = 1, GANC_X_ROUND = 2 };
GANC_PREC_HD static inline float ganc_load_x(const void *x, int mode, int64_t i) {
  if (mode == GANC_X_BF16) return ganc_bf16_load(((const uint16_t *)x)[i]);
  const float f = ((const float *)x)[i];
  return mode == GANC_X_ROUND ? ganc_bf16_load(ganc_bf16_store(f)) : f;
}
GANC_PREC_HD static inline void ganc_store_as(void *y, int bf16, int64_t i, float v) {
  if (bf16)
    ((uint16_t *)y)[i] = ganc_bf16_store(v);
  else
    ((float *)y)[i] = v;
}

#endif
