// philox.c — Philox4x32-10 and the draws built on it (see philox.h).
#include "core/philox.h"

#include <math.h>

void ganc_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u; // the Weyl sequence bumps the key between rounds
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// Counter = (block of 4 columns, row low, row high, stream); key = seed.
static void block(uint64_t seed, uint32_t stream, uint64_t row, uint32_t blk, uint32_t out[4]) {
  uint32_t ctr[4] = {blk, (uint32_t)row, (uint32_t)(row >> 32), stream};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  ganc_philox4x32(ctr, key, out);
}

uint32_t ganc_rng_u32(uint64_t seed, uint32_t stream, uint64_t row, uint32_t col) {
  uint32_t o[4];
  block(seed, stream, row, col / 4, o);
  return o[col % 4];
}

void ganc_rng_normals(uint64_t seed, uint32_t stream, uint64_t row, int n, float *out) {
  for (int i = 0; i < n; i += 4) {
    uint32_t o[4];
    block(seed, stream, row, (uint32_t)(i / 4), o);
    // Two Box-Muller pairs per block. u1 in (0, 1] so log never sees 0.
    for (int p = 0; p < 2; p++) {
      double u1 = ((double)o[2 * p] + 1.0) / 4294967296.0;
      double u2 = (double)o[2 * p + 1] / 4294967296.0;
      double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
      if (i + 2 * p < n) out[i + 2 * p] = (float)(r * cos(t));
      if (i + 2 * p + 1 < n) out[i + 2 * p + 1] = (float)(r * sin(t));
    }
  }
}
