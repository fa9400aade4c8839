// precision.h — rounding an FP32 value to the operand precisions of train.precision (core/ctx.h),
// exactly as the tensor-core instructions round (kernels/mma.cuh): bf16 to nearest, ties to even
// (cvt.rn.bf16.f32), tf32 to nearest, ties away from zero (cvt.rna.tf32.f32). The result is the
// rounded value as an FP32 float (its low 16 or 13 bits zero). NaN and ±Inf pass through.
#ifndef GANC_PRECISION_H
#define GANC_PRECISION_H

#include <stdint.h>
#include <string.h>

static inline float ganc_round_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) == 0x7F800000u) return f; // Inf, NaN
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  memcpy(&f, &u, 4);
  return f;
}

static inline float ganc_round_tf32(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) == 0x7F800000u) return f;
  u = (u + 0x1000u) & 0xFFFFE000u;
  memcpy(&f, &u, 4);
  return f;
}

#endif
