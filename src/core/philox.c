// philox.c — Philox4x32-10 and the draws built on it (see philox.h).
#include "core/philox.h"

#include "core/philox_core.h"

void ganc_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  for (int i = 0; i < 4; i++)
    out[i] = ctr[i];
  ganc_philox_rounds(out, key[0], key[1]);
}

// Counter = (block of 4 columns, row low, row high, stream); key = seed.
static void block(uint64_t seed, uint32_t stream, uint64_t row, uint32_t blk, uint32_t out[4]) {
  uint32_t ctr[4] = {blk, (uint32_t)row, (uint32_t)(row >> 32), stream};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  ganc_philox4x32(ctr, key, out);
}

uint32_t ganc_rng_u32(uint64_t seed, uint32_t stream, uint64_t row, uint32_t col) {
  return ganc_rng_u32_core(seed, stream, row, col);
}

void ganc_rng_normals(uint64_t seed, uint32_t stream, uint64_t row, int n, float *out) {
  for (int i = 0; i < n; i += 4) {
    uint32_t o[4];
    block(seed, stream, row, (uint32_t)(i / 4), o);
    // Two Box-Muller pairs per block.
    for (int p = 0; p < 2; p++) {
      float n0, n1;
      ganc_box_muller(o[2 * p], o[2 * p + 1], &n0, &n1);
      if (i + 2 * p < n) out[i + 2 * p] = n0;
      if (i + 2 * p + 1 < n) out[i + 2 * p + 1] = n1;
    }
  }
}
