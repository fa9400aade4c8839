// philox_core.h — Philox4x32-10 rounds and the Box-Muller step, written once for the CPU
// (core/philox.c) and the GPU (kernels/pixels.cu), so that a latent is the same number on both
// backends by construction, not by two implementations agreeing.
#ifndef GANC_PHILOX_CORE_H
#define GANC_PHILOX_CORE_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define GANC_HD __host__ __device__
#else
#define GANC_HD
#endif

// One Philox4x32-10 block in place: c = philox(c, key (k0, k1)) (Salmon et al. 2011). The
// 32x32 → 64-bit products are one IMAD.WIDE on the GPU.
GANC_HD static inline void ganc_philox_rounds(uint32_t c[4], uint32_t k0, uint32_t k1) {
  uint32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int r = 0; r < 10; r++) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u; // the Weyl sequence bumps the key between rounds
    k1 += 0xBB67AE85u;
  }
  c[0] = c0;
  c[1] = c1;
  c[2] = c2;
  c[3] = c3;
}

// 32 random bits number `col` of (seed, stream, row): word col mod 4 of the block with counter
// (col / 4, row low, row high, stream) and key seed (core/philox.h's ganc_rng_u32).
GANC_HD static inline uint32_t ganc_rng_u32_core(uint64_t seed, uint32_t stream, uint64_t row,
                                                 uint32_t col) {
  uint32_t c[4] = {col / 4, (uint32_t)row, (uint32_t)(row >> 32), stream};
  ganc_philox_rounds(c, (uint32_t)seed, (uint32_t)(seed >> 32));
  return c[col % 4];
}

// Two standard normals from two Philox words, Box-Muller in double precision (u1 in (0, 1], so
// log never sees 0), each rounded once to float.
GANC_HD static inline void ganc_box_muller(uint32_t a, uint32_t b, float *n0, float *n1) {
  const double u1 = ((double)a + 1.0) / 4294967296.0;
  const double u2 = (double)b / 4294967296.0;
  const double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
  *n0 = (float)(r * cos(t));
  *n1 = (float)(r * sin(t));
}

#endif
