// featnet.c — feature networks from HDF5 (featnet.h), run on ganc's dispatched ops: conv2d_forward
// (an asymmetric padding through pad2d first), batchnorm_forward_eval, relu_forward,
// pool2d_forward, channel_copy, resize_bilinear_forward. Every node's output is kept for the batch
// (Inception-v3: about 13 M floats per image), allocated once at load for max_batch.
#include "metrics/featnet.h"

#include "core/util.h"
#include "io/h5attr.h"
#include "ops/dispatch.h"
#include "ops/featops_core.h" // GANC_POOL_*
#include "ops/precision.h"    // GANC_X_FP32

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_CONV, OP_MAXPOOL, OP_AVGPOOL, OP_CONCAT, OP_MEAN };
enum { MAX_INPUTS = 8 };
// Inception-v3 needs 1.4 M floats in its largest node and ~13 M in all, per image.
enum { MAX_NODE_FLOATS = 1 << 26 };
#define MAX_TOTAL_FLOATS ((int64_t)1 << 28)

typedef struct fnode {
  int op, in[MAX_INPUTS], nin;
  int H, W, C;                          // output per image
  int kh, kw, stride, ph, pw, relu;     // conv
  int k, pad, cip;                      // pools (cip: count_include_pad)
  float *w, *gamma, *beta, *mean, *var; // conv: [kh, kw, Cin, K] and the inference affine [K]
  double eps;
  int affine;    // gamma.. set (a batch norm, or a bias as one)
  float *out;    // [max_batch, H, W, C]
  float *padded; // conv with ph != pw: the padded input
} fnode;

struct ganc_featnet {
  char name[160];
  int S, Cin, dim; // input size and channels of the network, features
  int R, C;        // images given
  int max_batch, nnodes;
  int64_t total; // output floats per image, all nodes
  fnode *nodes;
  uint8_t *u8;        // backend [max_batch, R, R, C]
  float *x, *x3, *xs; // images as floats, as 3 channels, resized [.., S, S, Cin]
  float *host;        // host staging of weights
};

static int fail(ganc_err *err, const char *path, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(ganc_err *err, const char *path, const char *node, const char *fmt, ...) {
  char why[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  ganc_err_set(err, GANC_EXIT_USAGE, "feature network %s%s%s: %s", path, node ? ", node " : "",
               node ? node : "", why);
  return -1;
}

// An integer attribute: a scalar, or an array of exactly n (n = 1 accepts both), each in [lo, hi].
static int attr_ints(hid_t obj, const char *name, int *v, int n, int lo, int hi) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return -1;
  hid_t sp = H5Aget_space(a), ty = H5Aget_type(a);
  const hssize_t cnt = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
  const int ok_type = ty >= 0 && H5Tget_class(ty) == H5T_INTEGER;
  int rc = -1;
  if (ok_type && cnt == n) {
    int64_t buf[MAX_INPUTS * 2];
    if (n <= MAX_INPUTS * 2 && H5Aread(a, H5T_NATIVE_INT64, buf) >= 0) {
      rc = 0;
      for (int i = 0; i < n; i++) {
        if (buf[i] < lo || buf[i] > hi) rc = -1;
        v[i] = (int)buf[i];
      }
    }
  }
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  H5Aclose(a);
  return rc;
}

static int attr_count(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), sp = a >= 0 ? H5Aget_space(a) : -1;
  const int n = sp >= 0 ? (int)H5Sget_simple_extent_npoints(sp) : -1;
  if (sp >= 0) H5Sclose(sp);
  if (a >= 0) H5Aclose(a);
  return n;
}

// A float dataset of exactly `count` elements with the given rank and dims (dims NULL: rank 1),
// read into host dst.
static int read_floats(hid_t g, const char *name, int rank, const hsize_t *dims, size_t count,
                       float *dst) {
  if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return -1;
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
  hsize_t got[4] = {0, 0, 0, 0};
  int ok = sp >= 0 && ty >= 0 && H5Tget_class(ty) == H5T_FLOAT &&
           H5Sget_simple_extent_ndims(sp) == rank &&
           H5Sget_simple_extent_npoints(sp) == (hssize_t)count;
  if (ok) H5Sget_simple_extent_dims(sp, got, NULL);
  for (int i = 0; ok && dims && i < rank; i++)
    ok = got[i] == dims[i];
  ok = ok && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0;
  for (size_t i = 0; ok && i < count; i++)
    ok = isfinite(dst[i]);
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(d);
  return ok ? 0 : -1;
}

static float *upload_new(ganc_ctx *ctx, const float *h, size_t n) {
  float *d = ganc_alloc(ctx, n);
  ganc_upload(ctx, d, h, n);
  return d;
}

// One node from group g (index i); shapes follow from its inputs'. Returns 0 or -1 (err set).
static int load_node(ganc_featnet *fn, ganc_ctx *ctx, hid_t g, int i, const char *path,
                     const char *gname, ganc_err *err) {
  fnode *nd = &fn->nodes[i];
  char *op = NULL;
  ganc_err e = {0};
  if (ganc_h5_attr_read_str(g, "op", &op, &e)) return fail(err, path, gname, "%s", e.msg);
  static const char *ops[] = {"conv", "maxpool", "avgpool", "concat", "mean"};
  nd->op = -1;
  for (int k = 0; k < 5; k++)
    if (!strcmp(op, ops[k])) nd->op = k;
  if (nd->op < 0) {
    int r =
        fail(err, path, gname, "op '%s' is not one of conv, maxpool, avgpool, concat, mean", op);
    free(op);
    return r;
  }
  free(op);
  nd->nin = attr_count(g, "inputs");
  if (nd->nin < 1 || nd->nin > MAX_INPUTS || (nd->op != OP_CONCAT && nd->nin != 1) ||
      attr_ints(g, "inputs", nd->in, nd->nin, -1, i - 1))
    return fail(err, path, gname, "`inputs` must name 1 (concat: up to %d) earlier nodes or -1",
                MAX_INPUTS);
  int iH[MAX_INPUTS], iW[MAX_INPUTS], iC[MAX_INPUTS];
  for (int k = 0; k < nd->nin; k++) {
    const int j = nd->in[k];
    iH[k] = j < 0 ? fn->S : fn->nodes[j].H;
    iW[k] = j < 0 ? fn->S : fn->nodes[j].W;
    iC[k] = j < 0 ? fn->Cin : fn->nodes[j].C;
  }
  if (nd->op == OP_CONV) {
    int ks[2], pd[2];
    if (attr_ints(g, "kernel", ks, 2, 1, 64) || attr_ints(g, "stride", &nd->stride, 1, 1, 64) ||
        attr_ints(g, "pad", pd, 2, 0, 63) || attr_ints(g, "relu", &nd->relu, 1, 0, 1))
      return fail(err, path, gname,
                  "conv needs kernel [kh, kw] (1..64), stride (1..64), pad [ph, pw], relu (0/1)");
    nd->kh = ks[0], nd->kw = ks[1], nd->ph = pd[0], nd->pw = pd[1];
    if (H5Lexists(g, "weight", H5P_DEFAULT) <= 0) return fail(err, path, gname, "no `weight`");
    hid_t d = H5Dopen2(g, "weight", H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[4] = {0, 0, 0, 0};
    const int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (rank == 4) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    if (rank != 4 || dims[0] < 1 || dims[0] > 65536 || dims[1] != (hsize_t)iC[0] ||
        dims[2] != (hsize_t)nd->kh || dims[3] != (hsize_t)nd->kw)
      return fail(err, path, gname, "`weight` must be [K, %d, %d, %d] (its input has %d channels)",
                  iC[0], nd->kh, nd->kw, iC[0]);
    const int K = (int)dims[0], Ci = iC[0];
    if ((int64_t)K * Ci * nd->kh * nd->kw > MAX_NODE_FLOATS)
      return fail(err, path, gname, "a weight of %d x %d x %d x %d: over %d M floats", K, Ci,
                  nd->kh, nd->kw, MAX_NODE_FLOATS >> 20);
    nd->C = K;
    nd->H = (iH[0] + 2 * nd->ph - nd->kh) / nd->stride + 1;
    nd->W = (iW[0] + 2 * nd->pw - nd->kw) / nd->stride + 1;
    if (iH[0] + 2 * nd->ph < nd->kh || iW[0] + 2 * nd->pw < nd->kw)
      return fail(err, path, gname, "a %dx%d kernel does not fit its %dx%d input", nd->kh, nd->kw,
                  iH[0], iW[0]);
    const size_t nw = (size_t)K * Ci * nd->kh * nd->kw;
    float *pt = xmalloc(sizeof(float) * nw), *gw = xmalloc(sizeof(float) * nw);
    if (read_floats(g, "weight", 4, dims, nw, pt)) {
      free(pt), free(gw);
      return fail(err, path, gname, "`weight` cannot be read as finite floats");
    }
    // PyTorch's [K, C, kh, kw] → ganc's [kh, kw, C, K].
    for (int k = 0; k < K; k++)
      for (int c = 0; c < Ci; c++)
        for (int r = 0; r < nd->kh; r++)
          for (int s = 0; s < nd->kw; s++)
            gw[(((size_t)r * nd->kw + s) * Ci + c) * K + k] =
                pt[(((size_t)k * Ci + c) * nd->kh + r) * nd->kw + s];
    nd->w = upload_new(ctx, gw, nw);
    free(pt);
    free(gw);
    // The inference affine: a batch norm, or a bias as one (gamma 1, mean 0, var 1, eps 0: the
    // op's x·1 + b is then exact).
    float *a4 = xmalloc(sizeof(float) * 4 * (size_t)K);
    const hsize_t dk[1] = {(hsize_t)K};
    const int has_bn = H5Lexists(g, "bn_gamma", H5P_DEFAULT) > 0;
    const int has_bias = H5Lexists(g, "bias", H5P_DEFAULT) > 0;
    if (has_bn && has_bias) {
      free(a4);
      return fail(err, path, gname, "both a batch norm and a bias (fold the bias into bn_beta)");
    }
    if (has_bn) {
      double eps = 0;
      hid_t at = H5Aexists(g, "bn_eps") > 0 ? H5Aopen(g, "bn_eps", H5P_DEFAULT) : -1;
      const int ok = at >= 0 && H5Aread(at, H5T_NATIVE_DOUBLE, &eps) >= 0 && eps >= 0 && eps < 1;
      if (at >= 0) H5Aclose(at);
      if (!ok || read_floats(g, "bn_gamma", 1, dk, (size_t)K, a4) ||
          read_floats(g, "bn_beta", 1, dk, (size_t)K, a4 + K) ||
          read_floats(g, "bn_mean", 1, dk, (size_t)K, a4 + 2 * K) ||
          read_floats(g, "bn_var", 1, dk, (size_t)K, a4 + 3 * K)) {
        free(a4);
        return fail(err, path, gname,
                    "its batch norm needs bn_gamma, bn_beta, bn_mean, bn_var [%d] (finite) and "
                    "bn_eps in [0, 1)",
                    K);
      }
      for (int k = 0; k < K; k++)
        if (a4[3 * K + k] < 0) {
          free(a4);
          return fail(err, path, gname, "bn_var holds a negative variance");
        }
      nd->eps = eps;
      nd->affine = 1;
    } else if (has_bias) {
      if (read_floats(g, "bias", 1, dk, (size_t)K, a4 + K)) {
        free(a4);
        return fail(err, path, gname, "`bias` must be [%d] finite floats", K);
      }
      for (int k = 0; k < K; k++)
        a4[k] = 1.0f, a4[2 * K + k] = 0.0f, a4[3 * K + k] = 1.0f;
      nd->eps = 0;
      nd->affine = 1;
    }
    if (nd->affine) {
      nd->gamma = upload_new(ctx, a4, (size_t)K);
      nd->beta = upload_new(ctx, a4 + K, (size_t)K);
      nd->mean = upload_new(ctx, a4 + 2 * K, (size_t)K);
      nd->var = upload_new(ctx, a4 + 3 * K, (size_t)K);
    }
    free(a4);
    if (nd->ph != nd->pw) {
      const int64_t padded = (int64_t)(iH[0] + 2 * nd->ph) * (iW[0] + 2 * nd->pw) * Ci;
      if (padded > MAX_NODE_FLOATS)
        return fail(err, path, gname, "its padded input is over %d M floats",
                    MAX_NODE_FLOATS >> 20);
      nd->padded = ganc_alloc(ctx, (size_t)fn->max_batch * (size_t)padded);
    }
  } else if (nd->op == OP_MAXPOOL || nd->op == OP_AVGPOOL) {
    nd->cip = 0;
    if (attr_ints(g, "kernel", &nd->k, 1, 1, 64) || attr_ints(g, "stride", &nd->stride, 1, 1, 64) ||
        attr_ints(g, "pad", &nd->pad, 1, 0, 63) ||
        (nd->op == OP_AVGPOOL && attr_count(g, "count_include_pad") >= 0 &&
         attr_ints(g, "count_include_pad", &nd->cip, 1, 0, 1)))
      return fail(err, path, gname, "a pool needs kernel, stride (1..64) and pad (< kernel)");
    char buf[200];
    const char *why =
        ganc_pool_invalid(1, iH[0], iW[0], iC[0], nd->k, nd->stride, nd->pad, 0, buf, sizeof buf);
    if (why) return fail(err, path, gname, "%s", why);
    nd->H = ganc_pool_out(iH[0], nd->k, nd->stride, nd->pad);
    nd->W = ganc_pool_out(iW[0], nd->k, nd->stride, nd->pad);
    nd->C = iC[0];
  } else if (nd->op == OP_CONCAT) {
    nd->H = iH[0], nd->W = iW[0], nd->C = 0;
    for (int k = 0; k < nd->nin; k++) {
      if (iH[k] != nd->H || iW[k] != nd->W)
        return fail(err, path, gname, "concatenates inputs of different sizes (%dx%d, %dx%d)",
                    nd->H, nd->W, iH[k], iW[k]);
      nd->C += iC[k];
    }
  } else { // mean
    nd->H = nd->W = 1;
    nd->C = iC[0];
    nd->k = iH[0];
    if (iH[0] != iW[0])
      return fail(err, path, gname, "`mean` of a %dx%d input (square inputs only)", iH[0], iW[0]);
  }
  // Sizes stay far inside int and memory: a crafted file must not overflow or exhaust them.
  const int64_t per = (int64_t)nd->H * nd->W * nd->C;
  fn->total += per;
  if (per > MAX_NODE_FLOATS || fn->total > MAX_TOTAL_FLOATS)
    return fail(err, path, gname,
                "%dx%dx%d outputs: more than this network's limits (%d M floats per node, %d M "
                "in all, per image)",
                nd->H, nd->W, nd->C, MAX_NODE_FLOATS >> 20, (int)(MAX_TOTAL_FLOATS >> 20));
  nd->out = ganc_alloc(ctx, (size_t)fn->max_batch * (size_t)per);
  return 0;
}

int ganc_featnet_load(const char *path, ganc_ctx *ctx, int R, int C, int max_batch,
                      ganc_featnet **out, ganc_err *err) {
  *out = NULL;
  if (!ganc_is_file(path))
    return fail(
        err, path, NULL,
        "no such file\n---> HINT: for the standard FID, download pytorch-fid's Inception "
        "weights (https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth) and convert them where PyTorch is installed: "
        "python3 scripts/featnet.py inception --from-pytorch-fid "
        "pt_inception-2015-12-05-6726825d.pth %s (docs/METRICS.md)",
        path);
  // Only files with HDF5's metadata checksums (superblock 2+): HDF5 1.10 reads a damaged header
  // of the old layout out of bounds (a fuzzer found a use-after-free in H5Aexists), while a
  // checksummed one is refused by HDF5 itself. scripts/featnet.py writes libver = "latest".
  ganc_err se = {0};
  const int layout = ganc_h5_sniff(path, NULL, &se);
  if (layout < 0) return fail(err, path, NULL, "%s", se.msg);
  if (layout != GANC_H5_CHECKSUMMED)
    return fail(err, path, NULL,
                "an HDF5 file without metadata checksums (an old layout)\n---> HINT: write it "
                "with scripts/featnet.py, or with h5py.File(..., libver=\"latest\")");
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return fail(err, path, NULL, "not a readable HDF5 file (damaged?)");
  ganc_featnet *fn = xcalloc(1, sizeof *fn);
  fn->R = R, fn->C = C, fn->max_batch = max_batch;
  int version = 0, rc = -1;
  char *name = NULL;
  ganc_err e = {0};
  hid_t nodes = -1;
  if (attr_ints(f, "ganc_featnet", &version, 1, 1, 1) ||
      attr_ints(f, "input_size", &fn->S, 1, 16, 1024) ||
      attr_ints(f, "input_channels", &fn->Cin, 1, 1, 3) ||
      attr_ints(f, "feature_dim", &fn->dim, 1, 1, 65536) || (fn->Cin != 1 && fn->Cin != 3)) {
    fail(err, path, NULL,
         "not a ganc feature network (attributes ganc_featnet = 1, input_size 16..1024, "
         "input_channels 1 or 3, feature_dim)");
    goto done;
  }
  if (C != 1 && C != 3) {
    fail(err, path, NULL, "images of %d channels (1 or 3 only)", C);
    goto done;
  }
  if (C == 3 && fn->Cin == 1) {
    fail(err, path, NULL, "RGB images for a grayscale network");
    goto done;
  }
  if (ganc_h5_attr_read_str(f, "name", &name, &e) == 0) {
    snprintf(fn->name, sizeof fn->name, "%s", name);
    free(name);
  } else {
    snprintf(fn->name, sizeof fn->name, "%s", path);
  }
  nodes = H5Gopen2(f, "nodes", H5P_DEFAULT);
  H5G_info_t info;
  if (nodes < 0 || H5Gget_info(nodes, &info) < 0 || info.nlinks < 1 || info.nlinks > 100000) {
    fail(err, path, NULL, "no group /nodes with 1..100000 nodes");
    goto done;
  }
  fn->nnodes = (int)info.nlinks;
  fn->nodes = xcalloc((size_t)fn->nnodes, sizeof(fnode));
  for (int i = 0; i < fn->nnodes; i++) {
    char gname[16];
    snprintf(gname, sizeof gname, "%04d", i);
    if (H5Lexists(nodes, gname, H5P_DEFAULT) <= 0) {
      fail(err, path, gname, "missing (nodes are numbered 0000, 0001, ... without gaps)");
      goto done;
    }
    hid_t g = H5Gopen2(nodes, gname, H5P_DEFAULT);
    int r =
        g < 0 ? fail(err, path, gname, "not a group") : load_node(fn, ctx, g, i, path, gname, err);
    if (g >= 0) H5Gclose(g);
    if (r) goto done;
  }
  const fnode *last = &fn->nodes[fn->nnodes - 1];
  if (last->H != 1 || last->W != 1 || last->C != fn->dim) {
    fail(err, path, NULL, "its last node gives %dx%dx%d per image, not feature_dim %d", last->H,
         last->W, last->C, fn->dim);
    goto done;
  }
  fn->u8 = ganc_alloc_bytes(ctx, (size_t)max_batch * R * R * C);
  fn->x = ganc_alloc(ctx, (size_t)max_batch * R * R * C);
  if (C != fn->Cin) fn->x3 = ganc_alloc(ctx, (size_t)max_batch * R * R * fn->Cin);
  fn->xs = ganc_alloc(ctx, (size_t)max_batch * fn->S * fn->S * fn->Cin);
  rc = 0;
done:
  if (nodes >= 0) H5Gclose(nodes);
  H5Fclose(f);
  if (rc) {
    ganc_featnet_free(fn, ctx);
    return -1;
  }
  *out = fn;
  return 0;
}

void ganc_featnet_run(ganc_featnet *fn, ganc_ctx *ctx, const uint8_t *images, int n, float *out) {
  if (n < 1 || n > fn->max_batch)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: a batch of %d for a feature network of %d", n,
             fn->max_batch);
  const int R = fn->R, S = fn->S, Ci = fn->Cin;
  ganc_upload_bytes(ctx, fn->u8, images, (size_t)n * R * R * fn->C);
  pixels_to_float(ctx, n, R, R, fn->C, fn->u8, NULL, fn->x);
  const float *x = fn->x;
  if (fn->x3) { // grayscale → the network's 3 channels, as pytorch-fid's RGB conversion
    for (int c = 0; c < Ci; c++)
      channel_copy(ctx, (int64_t)n * R * R, 1, Ci, c, fn->x, fn->x3);
    x = fn->x3;
  }
  resize_bilinear_forward(ctx, n, R, R, Ci, S, S, x, fn->xs);
  for (int i = 0; i < fn->nnodes; i++) {
    fnode *nd = &fn->nodes[i];
    const int j = nd->in[0];
    const float *in = j < 0 ? fn->xs : fn->nodes[j].out;
    const int iH = j < 0 ? S : fn->nodes[j].H, iW = j < 0 ? S : fn->nodes[j].W;
    const int iC = j < 0 ? Ci : fn->nodes[j].C;
    if (nd->op == OP_CONV) {
      int H = iH, W = iW, pad = nd->ph;
      if (nd->padded) { // asymmetric: frame the input, then convolve without padding
        pad2d_forward(ctx, n, iH, iW, iC, nd->ph, nd->pw, in, nd->padded);
        in = nd->padded, H = iH + 2 * nd->ph, W = iW + 2 * nd->pw, pad = 0;
      }
      conv_shape s;
      if (conv_shape_make(&s, n, H, W, iC, nd->C, nd->kh, nd->kw, nd->stride, pad))
        ganc_die(GANC_EXIT_RUNTIME, "internal error: feature network node %d's shape", i);
      conv2d_forward(ctx, &s, in, nd->w, nd->out);
      const int64_t M = (int64_t)n * nd->H * nd->W;
      const int act = nd->relu ? GANC_ACT_RELU : GANC_ACT_NONE;
      if (nd->affine) // the ReLU in the same pass (the same bits as relu_forward after it)
        batchnorm_forward_eval(ctx, M, nd->C, nd->out, GANC_X_FP32, nd->gamma, nd->beta, nd->mean,
                               nd->var, (float)nd->eps, act, 0.0f, nd->out, 0);
      else if (act)
        relu_forward(ctx, M * nd->C, nd->out, nd->out);
    } else if (nd->op == OP_MAXPOOL || nd->op == OP_AVGPOOL) {
      pool2d_forward(ctx, n, iH, iW, iC, nd->k, nd->stride, nd->pad,
                     nd->op == OP_MAXPOOL ? GANC_POOL_MAX
                     : nd->cip            ? GANC_POOL_AVG_ALL
                                          : GANC_POOL_AVG_VALID,
                     in, nd->out);
    } else if (nd->op == OP_CONCAT) {
      int at = 0;
      for (int k = 0; k < nd->nin; k++) {
        const int q = nd->in[k];
        const int qc = q < 0 ? Ci : fn->nodes[q].C;
        channel_copy(ctx, (int64_t)n * nd->H * nd->W, qc, nd->C, at,
                     q < 0 ? fn->xs : fn->nodes[q].out, nd->out);
        at += qc;
      }
    } else { // mean over the square input
      pool2d_forward(ctx, n, iH, iW, iC, nd->k, 1, 0, GANC_POOL_AVG_VALID, in, nd->out);
    }
  }
  ganc_download(ctx, out, fn->nodes[fn->nnodes - 1].out, (size_t)n * fn->dim);
}

float *ganc_featnet_features(ganc_featnet *fn, ganc_ctx *ctx, int64_t n, ganc_images_fn images,
                             void *user, FILE *progress) {
  const int b = fn->max_batch, d = fn->dim;
  float *f = xmalloc(sizeof(float) * (size_t)n * d);
  uint8_t *imgs = xmalloc((size_t)b * fn->R * fn->R * fn->C);
  ganc_progress pg;
  if (progress) ganc_progress_start(&pg, progress, "images", n);
  for (int64_t at = 0; at < n; at += b) {
    const int m = n - at < b ? (int)(n - at) : b;
    images(user, at, m, imgs);
    ganc_featnet_run(fn, ctx, imgs, m, f + (size_t)at * d);
    if (progress) ganc_progress_update(&pg, at + m, "");
  }
  if (progress) ganc_progress_clear(&pg);
  free(imgs);
  return f;
}

int ganc_featnet_dim(const ganc_featnet *fn) { return fn->dim; }
const char *ganc_featnet_name(const ganc_featnet *fn) { return fn->name; }

void ganc_featnet_free(ganc_featnet *fn, ganc_ctx *ctx) {
  if (!fn) return;
  for (int i = 0; fn->nodes && i < fn->nnodes; i++) {
    fnode *nd = &fn->nodes[i];
    float *bufs[] = {nd->w, nd->gamma, nd->beta, nd->mean, nd->var, nd->out, nd->padded};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
      if (bufs[k]) ganc_free(ctx, bufs[k]);
  }
  free(fn->nodes);
  if (fn->u8) ganc_free(ctx, fn->u8);
  if (fn->x) ganc_free(ctx, fn->x);
  if (fn->x3) ganc_free(ctx, fn->x3);
  if (fn->xs) ganc_free(ctx, fn->xs);
  free(fn);
}
