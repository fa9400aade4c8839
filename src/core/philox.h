// philox.h — the counter-based RNG (Philox4x32-10, Salmon et al. 2011) behind every random number
// in ganc. A number is a pure function of (seed, stream, row, column): latent k of seed s is the
// same on every backend, at every batch size, after any resume — there is no RNG state to save.
#ifndef GANC_PHILOX_H
#define GANC_PHILOX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Streams: what the numbers are for, so that two uses of one seed never share numbers.
enum {
  GANC_RNG_LATENT = 0x4c41544e, // 'LATN' latents: row = latent index, column = element
  GANC_RNG_INIT_G = 0x494e4947, // 'INIG' generator initial weights: row = tensor index
  GANC_RNG_INIT_D = 0x494e4944, // 'INID' discriminator initial weights
  GANC_RNG_FLIP = 0x464c4950,   // 'FLIP' augmentation: row = step, column = image in batch
  GANC_RNG_LABEL = 0x4c41424c,  // 'LABL' the fakes' classes: row = step, column = image in batch
  // 'AUGM' DiffAugment (src/ops/augment_core.h): row = the caller's call counter, column =
  // 16·image + 4·transform + word (transform 0 colour, 1 translation, 2 cutout)
  GANC_RNG_AUGMENT = 0x4155474d,
};

// One Philox4x32-10 block: out = philox(counter, key).
void ganc_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

// 32 random bits number `col` of (seed, stream, row).
uint32_t ganc_rng_u32(uint64_t seed, uint32_t stream, uint64_t row, uint32_t col);
// Standard normals out[i] = N(0,1) number i of (seed, stream, row), i = 0..n-1, by Box-Muller in
// double precision, rounded to float.
void ganc_rng_normals(uint64_t seed, uint32_t stream, uint64_t row, int n, float *out);

// The latent of seed `seed` at index k: z [z_dim] = ganc_rng_normals(seed, GANC_RNG_LATENT, k).
static inline void ganc_latent(uint64_t seed, uint64_t k, int z_dim, float *z) {
  ganc_rng_normals(seed, GANC_RNG_LATENT, k, z_dim, z);
}

#ifdef __cplusplus
}
#endif

#endif
