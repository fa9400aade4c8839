// mkseeds.c — writes the fuzzers' seed corpora: small valid inputs of every kind each reader
// accepts, so the fuzzers start from the inside of each format instead of from random bytes.
//
//   ganc-fuzz-mkseeds OUTDIR [image|idx|config|shard|ckpt ...]     (no kind named: all of them)
//
// writes OUTDIR/<kind>/<name> files. image, idx and config seeds are committed in
// tests/fuzz/seeds/ (made by this program; each under 5 KB). shard and ckpt seeds are HDF5 files
// of 30-300 KB that must match the format of the reader being built, so ctest (fixture
// fuzz_seeds) and scripts/fuzz.sh make them at run time instead.
#include "fuzz_ckpt.h"
#include "mkimg.h"
#include "testutil.h"

#include "core/ctx.h"
#include "core/philox.h"
#include "model/dcgan.h"
#include "train/checkpoint.h"

#include <errno.h>
#include <hdf5.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char *g_out;

// mkdir -p: each parent, then the folder itself.
static void mkdir_p(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    char c = *p;
    if (c != '/' && c != 0) continue;
    *p = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
      fprintf(stderr, "mkseeds: cannot make %s: %s\n", buf, strerror(errno));
      exit(1);
    }
    *p = c;
    if (!c) break;
  }
}

static const char *kind_dir(const char *kind) {
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s", g_out, kind);
  mkdir_p(g_out);
  mkdir_p(buf);
  return buf;
}

static void put(const char *kind, const char *name, const void *data, size_t n) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", kind_dir(kind), name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "mkseeds: cannot write %s\n", path);
    exit(1);
  }
}

// ---- images: every PNG colour type and depth image.c handles, and the three JPEG kinds ----------
static void png_seed(const char *name, int w, int h, int type, int depth, int interlace) {
  int ch = mkimg_png_channels(type);
  size_t n = (size_t)w * h * ch;
  uint8_t *px8 = malloc(n);
  uint16_t *px16 = malloc(n * 2);
  mkimg_pattern(px8, w, h, ch, 7);
  int maxv = depth == 16 ? 65535 : (1 << depth) - 1;
  if (type == PNG_COLOR_TYPE_PALETTE) maxv = 3; // four palette entries
  for (size_t i = 0; i < n; i++) {
    px16[i] = (uint16_t)(px8[i] * 257u);
    if (depth < 8 || type == PNG_COLOR_TYPE_PALETTE) px8[i] = (uint8_t)(px8[i] % (maxv + 1));
  }
  const uint8_t pal[12] = {0, 0, 0, 255, 0, 0, 0, 255, 0, 40, 40, 40};
  const uint8_t trns[4] = {0, 128, 255, 255};
  uint8_t *out = NULL;
  size_t len = 0;
  if (mkimg_png_mem(&out, &len, w, h, type, depth, interlace, depth == 16 ? (void *)px16 : px8, pal,
                    4, type == PNG_COLOR_TYPE_PALETTE ? trns : NULL,
                    type == PNG_COLOR_TYPE_PALETTE ? 4 : 0) != 0) {
    fprintf(stderr, "mkseeds: cannot make %s\n", name);
    exit(1);
  }
  put("image", name, out, len);
  free(out);
  free(px8);
  free(px16);
}

static void jpeg_seed(const char *name, int w, int h, int comps, int quality) {
  uint8_t *px = malloc((size_t)w * h * comps), *out = NULL;
  size_t len = 0;
  mkimg_pattern(px, w, h, comps, 3);
  if (mkimg_jpeg_mem(&out, &len, w, h, comps, quality, px) != 0) {
    fprintf(stderr, "mkseeds: cannot make %s\n", name);
    exit(1);
  }
  put("image", name, out, len);
  free(out);
  free(px);
}

static void image_seeds(void) {
  png_seed("gray8.png", 9, 7, PNG_COLOR_TYPE_GRAY, 8, 0);
  png_seed("gray1.png", 16, 5, PNG_COLOR_TYPE_GRAY, 1, 0);
  png_seed("gray4-adam7.png", 11, 13, PNG_COLOR_TYPE_GRAY, 4, 1);
  png_seed("gray-alpha16.png", 6, 6, PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0);
  png_seed("palette-trns.png", 8, 8, PNG_COLOR_TYPE_PALETTE, 2, 0);
  png_seed("rgb8-adam7.png", 10, 6, PNG_COLOR_TYPE_RGB, 8, 1);
  png_seed("rgb16.png", 5, 9, PNG_COLOR_TYPE_RGB, 16, 0);
  png_seed("rgba8.png", 12, 12, PNG_COLOR_TYPE_RGBA, 8, 0);
  jpeg_seed("gray.jpg", 16, 16, 1, 75);
  jpeg_seed("rgb.jpg", 24, 16, 3, 60);
  jpeg_seed("cmyk.jpg", 16, 8, 4, 50);
}

// ---- IDX: fuzz_idx.c's layout (flags, images length, images file, labels file) ----------------
static size_t gzip_mem(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  // windowBits 15 + 16: a gzip wrapper (header, CRC-32, length), as MNIST's .gz files have.
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
  z.next_in = (uint8_t *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
  size_t len = z.total_out;
  deflateEnd(&z);
  return len;
}

static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void idx_seed(const char *name, int n, int h, int w, int labels, int gz) {
  uint8_t img[16 + 512], lab[8 + 64], out[2048], zimg[1024], zlab[512];
  size_t ni = 16 + (size_t)n * h * w, nl = 8 + (size_t)n;
  be32(img, 0x00000803), be32(img + 4, (uint32_t)n), be32(img + 8, (uint32_t)h);
  be32(img + 12, (uint32_t)w);
  mkimg_pattern(img + 16, w, h * n, 1, 5);
  be32(lab, 0x00000801), be32(lab + 4, (uint32_t)n);
  for (int i = 0; i < n; i++)
    lab[8 + i] = (uint8_t)(i % 10);
  const uint8_t *pi = img, *pl = lab;
  if (gz) {
    ni = gzip_mem(img, ni, zimg, sizeof zimg), pi = zimg;
    nl = gzip_mem(lab, nl, zlab, sizeof zlab), pl = zlab;
  }
  out[0] = (uint8_t)((labels ? 1 : 0) | (gz ? 2 : 0));
  be32(out + 1, (uint32_t)ni);
  memcpy(out + 5, pi, ni);
  size_t len = 5 + ni;
  if (labels) memcpy(out + len, pl, nl), len += nl;
  put("idx", name, out, len);
}

static void idx_seeds(void) {
  idx_seed("plain-labelled", 3, 4, 5, 1, 0);
  idx_seed("plain-unlabelled", 2, 6, 6, 0, 0);
  idx_seed("gzip-labelled", 4, 5, 4, 1, 1);
  idx_seed("gzip-unlabelled", 1, 8, 8, 0, 1);
}

// ---- config: INI texts, with and without --set assignments (fuzz_config.c's layout) -------------
static void config_seeds(void) {
  static const char a[] = "# a small run\n[model]\nresolution = 32\nchannels = 1\nz_dim = 64\n"
                          "[train]\nbatch = 16\nkimg = 2.5\nloss = hinge ; inline comment\n"
                          "g_lr = 2e-4\nmirror = on\nseed = 18446744073709551615\n"
                          "[log]\nsnapshot_kimg = 1\nkeep = 0\n[data]\nwindow_mb = 8\n";
  put("config", "small.ini", a, sizeof a - 1);
  static const char b[] = "[train]\nkimg = 1\n\0train.batch=8\0model.g_base = 16\0"
                          "train.device=cpu\0log.grid=4";
  put("config", "with-set", b, sizeof b - 1);
  static const char c[] = "  [model]\n  arch=dcgan\n\tbn_eps=1e-5\nlrelu_slope=0.2\n"
                          "[train]\nbeta1=0.5\nbeta2=0.999\nema_kimg=10\nema_rampup=0.05\n"
                          "backend=cudnn\nthreads=0\n";
  put("config", "indented.ini", c, sizeof c - 1);
  ganc_config d;
  ganc_config_defaults(&d);
  char *text = ganc_config_to_ini(&d);
  put("config", "reference.ini", text, strlen(text));
  free(text);
}

// ---- shards: labelled gray and unlabelled colour, made by the writer being built ----------------
static void shard_seed(const char *name, int R, int C, int n, int nclasses) {
  char *dir = tu_tmpdir("fuzz-seed-shard");
  tu_write_dataset(dir, R, C, n, n, nclasses);
  char path[4200];
  snprintf(path, sizeof path, "%s/shard-00000.h5", dir);
  uint8_t *data = NULL;
  size_t len = 0;
  if (mkimg_read_file(path, &data, &len) != 0) {
    fprintf(stderr, "mkseeds: cannot read %s\n", path);
    exit(1);
  }
  put("shard", name, data, len);
  free(data);
  tu_rmdir(dir);
}

static void shard_seeds(void) {
  shard_seed("gray-labelled.h5", 8, 1, 5, 3);
  shard_seed("rgb-unlabelled.h5", 4, 3, 3, 0);
}

// ---- checkpoints: G, G_ema and D of fz_ckpt_config's DCGAN, as ganc-train saves them ------------
static void ckpt_seed(const char *name, int adam) {
  ganc_ctx ctx;
  ganc_ctx_init_cpu(&ctx, 1);
  ganc_config c;
  fz_ckpt_config(&c);
  ganc_net G, G_ema, D;
  dcgan_build_g(&G, &c, "G");
  dcgan_build_g(&G_ema, &c, "G_ema");
  dcgan_build_d(&D, &c);
  net_finalize(&ctx, &G, 1, adam);
  net_finalize(&ctx, &G_ema, 1, 0);
  net_finalize(&ctx, &D, 1, adam);
  net_init_weights(&ctx, &G, 1, GANC_RNG_INIT_G);
  net_init_weights(&ctx, &G_ema, 1, GANC_RNG_INIT_G);
  net_init_weights(&ctx, &D, 1, GANC_RNG_INIT_D);
  G.adam_t = D.adam_t = adam ? 3 : 0;
  char *text = ganc_config_to_ini(&c);
  ganc_ckpt_meta meta = {0};
  meta.version = GANC_CKPT_VERSION;
  meta.step = 3;
  meta.nimg = 96;
  meta.fingerprint = 0x1234;
  meta.loader.seed = 5;
  meta.loader.cursor = 96;
  meta.config = text;
  meta.data_dir = "datasets/x";
  char *dir = tu_tmpdir("fuzz-seed-ckpt");
  char path[4200];
  snprintf(path, sizeof path, "%s/ckpt.h5", dir);
  ganc_net *nets[3] = {&G, &G_ema, &D};
  ganc_err err = {0};
  if (ganc_ckpt_save(path, &ctx, &meta, nets, 3, &err) != 0) ganc_die_err(&err);
  uint8_t *data = NULL;
  size_t len = 0;
  if (mkimg_read_file(path, &data, &len) != 0) exit(1);
  put("ckpt", name, data, len);
  free(data);
  tu_rmdir(dir);
  free(text);
  net_free(&ctx, &G);
  net_free(&ctx, &G_ema);
  net_free(&ctx, &D);
  ganc_ctx_free(&ctx);
}

// One seed: with Adam moments (as ganc-train saves); a file without them (as an inference-only
// export would be) costs the fuzzer half the time per input and is reached by mutation anyway.
static void ckpt_seeds(void) { ckpt_seed("train.h5", 1); }

// ---- feature networks: every node kind, tiny (src/metrics/featnet.c's layout) ------------------
static void h5_int(hid_t o, const char *name, const int *v, int n) {
  hsize_t d[1] = {(hsize_t)n};
  hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, d, NULL);
  hid_t a = H5Acreate2(o, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, v);
  H5Aclose(a);
  H5Sclose(sp);
}
static void h5_str(hid_t o, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(t, strlen(v));
  hid_t a = H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, t, v);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
}
static void h5_floats(hid_t o, const char *name, int rank, const hsize_t *dims, unsigned seed) {
  hsize_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= dims[i];
  float v[512]; // the largest seed tensor: 4 x 8 x 3 x 3 = 288
  if (n > 512) exit(1);
  for (hsize_t i = 0; i < n; i++)
    v[i] = 0.5f + 0.25f * (float)((seed * 31u + (unsigned)i * 17u) % 7u) / 7.0f;
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t d = H5Dcreate2(o, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
  H5Dclose(d);
  H5Sclose(sp);
}
// A node group: op, inputs; conv nodes get a weight [K, C, kh, kw] and a batch norm or a bias.
static hid_t fn_node(hid_t nodes, int i, const char *op, const int *in, int nin) {
  char name[16];
  snprintf(name, sizeof name, "%04d", i);
  hid_t g = H5Gcreate2(nodes, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  h5_str(g, "op", op);
  h5_int(g, "inputs", in, nin);
  return g;
}
static void fn_conv(hid_t g, int K, int C, int kh, int kw, int stride, int ph, int pw, int bn) {
  const int ks[2] = {kh, kw}, pd[2] = {ph, pw}, one = 1;
  h5_int(g, "kernel", ks, 2);
  h5_int(g, "stride", &stride, 1);
  h5_int(g, "pad", pd, 2);
  h5_int(g, "relu", &one, 1);
  const hsize_t w[4] = {(hsize_t)K, (hsize_t)C, (hsize_t)kh, (hsize_t)kw}, k[1] = {(hsize_t)K};
  h5_floats(g, "weight", 4, w, 1);
  if (bn) {
    h5_floats(g, "bn_gamma", 1, k, 2), h5_floats(g, "bn_beta", 1, k, 3);
    h5_floats(g, "bn_mean", 1, k, 4), h5_floats(g, "bn_var", 1, k, 5);
    const double eps = 1e-3;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(g, "bn_eps", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &eps);
    H5Aclose(a);
    H5Sclose(sp);
  } else {
    h5_floats(g, "bias", 1, k, 6);
  }
}
static void fn_pool(hid_t g, int k, int stride, int pad, int cip) {
  h5_int(g, "kernel", &k, 1);
  h5_int(g, "stride", &stride, 1);
  h5_int(g, "pad", &pad, 1);
  if (cip >= 0) h5_int(g, "count_include_pad", &cip, 1);
}

static void featnet_seeds(void) {
  char *dir = tu_tmpdir("fuzz-seed-featnet");
  char path[4200];
  snprintf(path, sizeof path, "%s/net.h5", dir);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS); // checksummed metadata, as featnet.c requires
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  const int one = 1, size = 16, chans = 3, dim = 4;
  h5_int(f, "ganc_featnet", &one, 1);
  h5_str(f, "name", "fuzz seed: every node kind");
  h5_int(f, "input_size", &size, 1);
  h5_int(f, "input_channels", &chans, 1);
  h5_int(f, "feature_dim", &dim, 1);
  hid_t nodes = H5Gcreate2(f, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const int in_x[1] = {-1}, in0[1] = {0}, in01[2] = {0, 1}, in2[1] = {2}, in3[1] = {3},
            in4[1] = {4};
  hid_t g = fn_node(nodes, 0, "conv", in_x, 1);
  fn_conv(g, 4, 3, 1, 3, 1, 0, 1, 1); // 16x16x4, an asymmetric pad
  H5Gclose(g);
  g = fn_node(nodes, 1, "avgpool", in0, 1);
  fn_pool(g, 3, 1, 1, 0);
  H5Gclose(g);
  g = fn_node(nodes, 2, "concat", in01, 2); // 16x16x8
  H5Gclose(g);
  g = fn_node(nodes, 3, "maxpool", in2, 1);
  fn_pool(g, 3, 2, 0, -1); // 7x7x8
  H5Gclose(g);
  g = fn_node(nodes, 4, "conv", in3, 1);
  fn_conv(g, 4, 8, 3, 3, 2, 1, 1, 0); // 4x4x4, a bias
  H5Gclose(g);
  g = fn_node(nodes, 5, "mean", in4, 1);
  H5Gclose(g);
  H5Gclose(nodes);
  H5Fclose(f);
  uint8_t *data = NULL;
  size_t len = 0;
  if (mkimg_read_file(path, &data, &len) != 0) {
    fprintf(stderr, "mkseeds: cannot read %s\n", path);
    exit(1);
  }
  put("featnet", "every-kind.h5", data, len);
  free(data);
  tu_rmdir(dir);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s OUTDIR [image|idx|config|shard|ckpt|featnet ...]\n", argv[0]);
    return 2;
  }
  g_out = argv[1];
  static const struct {
    const char *kind;
    void (*make)(void);
  } KINDS[] = {{"image", image_seeds}, {"idx", idx_seeds},   {"config", config_seeds},
               {"shard", shard_seeds}, {"ckpt", ckpt_seeds}, {"featnet", featnet_seeds}};
  for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
    int want = argc == 2;
    for (int i = 2; i < argc; i++)
      want |= strcmp(argv[i], KINDS[k].kind) == 0;
    if (want) KINDS[k].make();
  }
  return 0;
}
