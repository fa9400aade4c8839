// sha256.c — SHA-256 as FIPS 180-4 §6.2 defines it, for naming checkpoints (see io/imgio.h).
//
// A small streaming state (8 working words, a 64-byte block buffer, a 64-bit length) so a file is
// hashed in 1 MiB reads without holding it in memory. Words are big-endian throughout.
#include "io/imgio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes.
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// §5.3.3: the first 32 bits of the fractional parts of the square roots of the first 8 primes.
static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

typedef struct sha256_state {
  uint32_t h[8];
  uint8_t block[64];
  size_t nblock;  // bytes waiting in block (0..63)
  uint64_t total; // message length so far, in bytes
} sha256_state;

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// §4.1.2 functions.
static inline uint32_t ch(uint32_t x, uint32_t y, uint32_t z) { return (x & y) ^ (~x & z); }
static inline uint32_t maj(uint32_t x, uint32_t y, uint32_t z) {
  return (x & y) ^ (x & z) ^ (y & z);
}
static inline uint32_t big_sigma0(uint32_t x) { return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22); }
static inline uint32_t big_sigma1(uint32_t x) { return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25); }
static inline uint32_t small_sigma0(uint32_t x) { return rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3); }
static inline uint32_t small_sigma1(uint32_t x) { return rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10); }

// §6.2.2: one 512-bit block into the hash value.
static void compress(uint32_t h[8], const uint8_t *blk) {
  uint32_t W[64];
  for (int t = 0; t < 16; t++)
    W[t] = (uint32_t)blk[4 * t] << 24 | (uint32_t)blk[4 * t + 1] << 16 |
           (uint32_t)blk[4 * t + 2] << 8 | (uint32_t)blk[4 * t + 3];
  for (int t = 16; t < 64; t++)
    W[t] = small_sigma1(W[t - 2]) + W[t - 7] + small_sigma0(W[t - 15]) + W[t - 16];

  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 64; t++) {
    uint32_t T1 = hh + big_sigma1(e) + ch(e, f, g) + K[t] + W[t];
    uint32_t T2 = big_sigma0(a) + maj(a, b, c);
    hh = g;
    g = f;
    f = e;
    e = d + T1;
    d = c;
    c = b;
    b = a;
    a = T1 + T2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

static void sha256_init(sha256_state *s) {
  memcpy(s->h, H0, sizeof H0);
  s->nblock = 0;
  s->total = 0;
}

static void sha256_update(sha256_state *s, const uint8_t *p, size_t n) {
  s->total += n;
  if (s->nblock) { // top up a partial block first
    size_t take = 64 - s->nblock < n ? 64 - s->nblock : n;
    memcpy(s->block + s->nblock, p, take);
    s->nblock += take;
    p += take;
    n -= take;
    if (s->nblock < 64) return;
    compress(s->h, s->block);
    s->nblock = 0;
  }
  for (; n >= 64; p += 64, n -= 64)
    compress(s->h, p);
  memcpy(s->block, p, n);
  s->nblock = n;
}

// §5.1.1 padding: a 1 bit, zeros to 448 mod 512, then the bit length as a 64-bit big-endian word.
static void sha256_final(sha256_state *s, uint8_t out[32]) {
  uint64_t bits = s->total * 8;
  s->block[s->nblock++] = 0x80;
  if (s->nblock > 56) { // no room for the length: pad out this block, use one more
    memset(s->block + s->nblock, 0, 64 - s->nblock);
    compress(s->h, s->block);
    s->nblock = 0;
  }
  memset(s->block + s->nblock, 0, 56 - s->nblock);
  for (int i = 0; i < 8; i++)
    s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  compress(s->h, s->block);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(s->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)s->h[i];
  }
}

void ganc_sha256(const void *data, size_t n, uint8_t out[32]) {
  sha256_state s;
  sha256_init(&s);
  sha256_update(&s, data, n);
  sha256_final(&s, out);
}

int ganc_sha256_file(const char *path, char hex[65], ganc_err *err) {
  enum { CHUNK = 1 << 20 };
  hex[0] = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  uint8_t *buf = xmalloc(CHUNK);
  sha256_state s;
  sha256_init(&s);
  size_t got;
  while ((got = fread(buf, 1, CHUNK, f)) > 0)
    sha256_update(&s, buf, got);
  int failed = ferror(f), saved = errno;
  free(buf);
  fclose(f);
  if (failed) {
    ganc_err_set(err, GANC_EXIT_RUNTIME, "cannot read %s: %s", path, strerror(saved ? saved : EIO));
    return -1;
  }
  uint8_t d[32];
  sha256_final(&s, d);
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[64] = 0;
  return 0;
}
