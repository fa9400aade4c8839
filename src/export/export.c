// export.c — ganc-export: a checkpoint's generator as an ONNX model, for use outside ganc
// (onnxruntime, TensorRT, a browser). The graph is G's own graph of nodes, node for node:
//
//   inputs   z      float32 [N, z_dim]      the latent (ganc-sample's for seed s: --save-latents)
//            class  int64   [N]             conditional generators only: each image's class
//   output   image  float32 [N, C, R, R]    NCHW in [-1, 1]; ganc's pixels are
//                                           round((v + 1) · 127.5), half away from zero
//
// ganc computes in NHWC with weights [R, S, C, K]; ONNX's Conv wants [K, C, R, S], and its
// ConvTranspose [C_in, C_out, R, S] — which is exactly the layout of the adjoint convolution ganc
// stores for a transposed one — so both take the same permutation. Batch norm is the evaluation
// form (running statistics); a conditional one is BatchNormalization with unit scale and zero
// shift, then Gather of the class's gamma and beta rows; spectral norm is folded in (W / sigma as
// the checkpoint's vectors give it, the weight ganc samples with); nearest 2x upsampling is
// Resize (nearest, asymmetric, floor: out[i] = in[i / 2]). Opset 13, IR version 8.
#include "export/export.h"

#include "core/check.h"
#include "core/device.h"
#include "core/util.h"
#include "io/onnx.pb-c.h"
#include "model/arch.h"
#include "ops/dispatch.h"
#include "train/checkpoint.h"
#include "train/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ONNX_IR_VERSION = 8, ONNX_OPSET = 13 };

static void usage(FILE *f) {
  fputs(
      "usage: ganc-export --onnx FILE [--no-ema] CKPT|RUN_DIR\n"
      "\n"
      "Writes the generator of a checkpoint (a ckpt-*.h5 file, or a run folder's `latest`) as an\n"
      "ONNX model (opset 13): input `z` float32 [N, z_dim] (and `class` int64 [N] for a\n"
      "class-conditional generator), output `image` float32 [N, C, R, R] (NCHW) in [-1, 1].\n"
      "The latents ganc-sample uses for seeds: ganc-sample --save-latents FILE.npy.\n"
      "\n"
      "options:\n"
      "  --onnx FILE   where to write the model (replaced atomically)\n"
      "  --no-ema      the trained G instead of its moving average G_ema (what ganc-sample\n"
      "                draws by default)\n"
      "  -h, --help    this text\n",
      f);
}

// ---- a graph under construction: every allocation is owned here and freed at once ------------
typedef struct onnx_b {
  GancOnnx__GraphProto g;
  size_t cap_node, cap_init, cap_in, cap_out;
  void **owned;
  size_t nowned, cap_owned;
} onnx_b;

static void *own(onnx_b *b, void *p) {
  if (b->nowned == b->cap_owned)
    b->owned =
        xrealloc(b->owned, sizeof(void *) * (b->cap_owned = b->cap_owned ? 2 * b->cap_owned : 256));
  b->owned[b->nowned++] = p;
  return p;
}
static void *ob_calloc(onnx_b *b, size_t n, size_t size) { return own(b, xcalloc(n, size)); }
static char *ob_str(onnx_b *b, const char *s) { return own(b, xstrdup(s)); }

static void *grow(void *v, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return v;
  *cap = *cap ? 2 * *cap : 64;
  return xrealloc(v, *cap * size);
}

enum { MAX_ATTRS = 8 }; // the most any node here carries is 4

static GancOnnx__NodeProto *ob_node(onnx_b *b, const char *op, const char *name,
                                    const char *const *in, int nin, const char *out) {
  GancOnnx__NodeProto *n = ob_calloc(b, 1, sizeof *n);
  ganc_onnx__node_proto__init(n);
  n->op_type = ob_str(b, op);
  n->name = ob_str(b, name);
  n->n_input = (size_t)nin;
  n->input = ob_calloc(b, (size_t)(nin ? nin : 1), sizeof(char *));
  for (int i = 0; i < nin; i++)
    n->input[i] = ob_str(b, in[i]);
  n->n_output = 1;
  n->output = ob_calloc(b, 1, sizeof(char *));
  n->output[0] = ob_str(b, out);
  n->attribute = ob_calloc(b, MAX_ATTRS, sizeof(void *));
  b->g.node = grow(b->g.node, &b->cap_node, b->g.n_node, sizeof(void *));
  b->g.node[b->g.n_node++] = n;
  return n;
}

// A new attribute of node n (room for MAX_ATTRS was made with the node).
static GancOnnx__AttributeProto *ob_attr(onnx_b *b, GancOnnx__NodeProto *n, const char *name,
                                         GancOnnx__AttributeProto__AttributeType type) {
  if (n->n_attribute == MAX_ATTRS)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: node %s has too many attributes", n->name);
  GancOnnx__AttributeProto *a = ob_calloc(b, 1, sizeof *a);
  ganc_onnx__attribute_proto__init(a);
  a->name = ob_str(b, name);
  a->has_type = 1;
  a->type = type;
  n->attribute[n->n_attribute++] = a;
  return a;
}
static void attr_int(onnx_b *b, GancOnnx__NodeProto *n, const char *name, int64_t v) {
  GancOnnx__AttributeProto *a =
      ob_attr(b, n, name, GANC_ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = 1;
  a->i = v;
}
static void attr_float(onnx_b *b, GancOnnx__NodeProto *n, const char *name, float v) {
  GancOnnx__AttributeProto *a =
      ob_attr(b, n, name, GANC_ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = 1;
  a->f = v;
}
static void attr_ints(onnx_b *b, GancOnnx__NodeProto *n, const char *name, const int64_t *v,
                      int k) {
  GancOnnx__AttributeProto *a =
      ob_attr(b, n, name, GANC_ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = (size_t)k;
  a->ints = ob_calloc(b, (size_t)k, sizeof(int64_t));
  memcpy(a->ints, v, sizeof(int64_t) * (size_t)k);
}
static void attr_str(onnx_b *b, GancOnnx__NodeProto *n, const char *name, const char *v) {
  GancOnnx__AttributeProto *a =
      ob_attr(b, n, name, GANC_ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = 1;
  a->s.data = (uint8_t *)ob_str(b, v);
  a->s.len = strlen(v);
}

// An initializer (a constant input): float32 or int64 data, copied, little-endian like x86.
static void ob_init(onnx_b *b, const char *name, const int64_t *dims, int ndim, const void *data,
                    int int64) {
  GancOnnx__TensorProto *t = ob_calloc(b, 1, sizeof *t);
  ganc_onnx__tensor_proto__init(t);
  t->name = ob_str(b, name);
  t->n_dims = (size_t)ndim;
  t->dims = ob_calloc(b, (size_t)(ndim ? ndim : 1), sizeof(int64_t));
  size_t count = 1;
  for (int i = 0; i < ndim; i++)
    count *= (size_t)(t->dims[i] = dims[i]);
  t->has_data_type = 1;
  t->data_type =
      int64 ? GANC_ONNX__TENSOR_PROTO__DATA_TYPE__INT64 : GANC_ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  const size_t bytes = count * (int64 ? sizeof(int64_t) : sizeof(float));
  t->has_raw_data = 1;
  t->raw_data.len = bytes;
  t->raw_data.data = ob_calloc(b, bytes ? bytes : 1, 1);
  memcpy(t->raw_data.data, data, bytes);
  b->g.initializer = grow(b->g.initializer, &b->cap_init, b->g.n_initializer, sizeof(void *));
  b->g.initializer[b->g.n_initializer++] = t;
}

// A graph input or output: elem type, dims (-1: the batch, named "N").
static void ob_value(onnx_b *b, int output, const char *name, int elem, const int64_t *dims,
                     int ndim) {
  GancOnnx__ValueInfoProto *v = ob_calloc(b, 1, sizeof *v);
  ganc_onnx__value_info_proto__init(v);
  v->name = ob_str(b, name);
  GancOnnx__TypeProto *tp = ob_calloc(b, 1, sizeof *tp);
  ganc_onnx__type_proto__init(tp);
  GancOnnx__TypeProto__Tensor *tt = ob_calloc(b, 1, sizeof *tt);
  ganc_onnx__type_proto__tensor__init(tt);
  GancOnnx__TensorShapeProto *sh = ob_calloc(b, 1, sizeof *sh);
  ganc_onnx__tensor_shape_proto__init(sh);
  sh->n_dim = (size_t)ndim;
  sh->dim = ob_calloc(b, (size_t)ndim, sizeof(void *));
  for (int i = 0; i < ndim; i++) {
    GancOnnx__TensorShapeProto__Dimension *d = ob_calloc(b, 1, sizeof *d);
    ganc_onnx__tensor_shape_proto__dimension__init(d);
    if (dims[i] < 0) {
      d->value_case = GANC_ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = ob_str(b, "N");
    } else {
      d->value_case = GANC_ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = dims[i];
    }
    sh->dim[i] = d;
  }
  tt->has_elem_type = 1;
  tt->elem_type = elem;
  tt->shape = sh;
  tp->value_case = GANC_ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  v->type = tp;
  if (output) {
    b->g.output = grow(b->g.output, &b->cap_out, b->g.n_output, sizeof(void *));
    b->g.output[b->g.n_output++] = v;
  } else {
    b->g.input = grow(b->g.input, &b->cap_in, b->g.n_input, sizeof(void *));
    b->g.input[b->g.n_input++] = v;
  }
}

static void ob_free(onnx_b *b) {
  for (size_t i = 0; i < b->nowned; i++)
    free(b->owned[i]);
  free(b->owned);
  free(b->g.node);
  free(b->g.initializer);
  free(b->g.input);
  free(b->g.output);
}

// ---- G → graph
// -----------------------------------------------------------------------------------
static const char *tensor_name(const ganc_net *net, int t) { return net->params[t].name; }

// The name of node j's output in the graph (the net's input: the reshaped latent).
static void out_name(const ganc_net *net, int j, char *buf, size_t n) {
  if (j == GANC_NET_INPUT)
    snprintf(buf, n, "z_nchw");
  else if (j == net->nnodes - 1)
    snprintf(buf, n, "image");
  else
    snprintf(buf, n, "%s:%d", net->nodes[j].name, j);
}

// Builds the graph of G (weights in host memory: a CPU context). Returns 0, or -1 with err set
// for a node kind ONNX export does not know.
static int build_graph(onnx_b *b, ganc_net *G, const ganc_config *cfg, int ncls, ganc_err *err) {
  const int64_t zdims[2] = {-1, cfg->z_dim}, cdims[1] = {-1};
  const int64_t odims[4] = {-1, cfg->channels, cfg->resolution, cfg->resolution};
  ob_value(b, 0, "z", GANC_ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, zdims, 2);
  if (ncls) ob_value(b, 0, "class", GANC_ONNX__TENSOR_PROTO__DATA_TYPE__INT64, cdims, 1);
  ob_value(b, 1, "image", GANC_ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, odims, 4);
  { // [N, nz] → [N, nz, 1, 1]: ganc's latent is [N, 1, 1, nz] NHWC, the same numbers
    const int64_t shape[4] = {-1, cfg->z_dim, 1, 1}, d1[1] = {4};
    ob_init(b, "z_shape", d1, 1, shape, 1);
    const char *in[2] = {"z", "z_shape"};
    ob_node(b, "Reshape", "latent", in, 2, "z_nchw");
  }
  char x[96], y[96], a[160], c2[160];
  for (int i = 0; i < G->nnodes; i++) {
    ganc_node *nd = &G->nodes[i];
    const char *kind = net_node_kind_name(nd);
    out_name(G, nd->in[0], x, sizeof x);
    out_name(G, i, y, sizeof y);
    if (!strcmp(kind, "conv") || !strcmp(kind, "convt")) {
      const ganc_tensor *t = &G->params[nd->w];
      const int R = t->shape[0], S = t->shape[1], C = t->shape[2], K = t->shape[3];
      // The weight ganc computes with (W / sigma under spectral norm, made by the forward run
      // before this), permuted [R, S, C, K] → [K, C, R, S].
      const float *w = nd->sn ? nd->w_sn : G->p + t->offset;
      float *p = xmalloc(sizeof(float) * t->count);
      for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++)
          for (int c = 0; c < C; c++)
            for (int k = 0; k < K; k++)
              p[(((size_t)k * C + c) * R + r) * S + s] = w[(((size_t)r * S + s) * C + c) * K + k];
      const int64_t dims[4] = {K, C, R, S};
      ob_init(b, tensor_name(G, nd->w), dims, 4, p, 0);
      free(p);
      const char *in[2] = {x, tensor_name(G, nd->w)};
      GancOnnx__NodeProto *n =
          ob_node(b, !strcmp(kind, "conv") ? "Conv" : "ConvTranspose", nd->name, in, 2, y);
      const int64_t ks[2] = {R, S}, st[2] = {nd->stride, nd->stride},
                    pd[4] = {nd->pad, nd->pad, nd->pad, nd->pad};
      attr_ints(b, n, "kernel_shape", ks, 2);
      attr_ints(b, n, "strides", st, 2);
      attr_ints(b, n, "pads", pd, 4);
    } else if (!strcmp(kind, "bn")) {
      const int C = nd->C;
      const int64_t dc[1] = {C};
      snprintf(a, sizeof a, "%s.running_mean", nd->name);
      ob_init(b, a, dc, 1, G->buf + G->buffers[nd->rm].offset, 0);
      snprintf(a, sizeof a, "%s.running_var", nd->name);
      ob_init(b, a, dc, 1, G->buf + G->buffers[nd->rv].offset, 0);
      char rm[160], rv[160], sc[160], sh[160];
      snprintf(rm, sizeof rm, "%s.running_mean", nd->name);
      snprintf(rv, sizeof rv, "%s.running_var", nd->name);
      if (!nd->cond) {
        snprintf(sc, sizeof sc, "%s", tensor_name(G, nd->w));
        snprintf(sh, sizeof sh, "%s", tensor_name(G, nd->b));
        ob_init(b, sc, dc, 1, G->p + G->params[nd->w].offset, 0);
        ob_init(b, sh, dc, 1, G->p + G->params[nd->b].offset, 0);
        const char *in[5] = {x, sc, sh, rm, rv};
        attr_float(b, ob_node(b, "BatchNormalization", nd->name, in, 5, y), "epsilon", G->bn_eps);
      } else { // normalise (scale 1, shift 0), then the class's gamma and beta rows
        float *one = xmalloc(sizeof(float) * (size_t)C), *zero = xcalloc((size_t)C, sizeof(float));
        for (int k = 0; k < C; k++)
          one[k] = 1.0f;
        snprintf(sc, sizeof sc, "%s.ones", nd->name);
        snprintf(sh, sizeof sh, "%s.zeros", nd->name);
        ob_init(b, sc, dc, 1, one, 0);
        ob_init(b, sh, dc, 1, zero, 0);
        free(one);
        free(zero);
        char xh[160];
        snprintf(xh, sizeof xh, "%s.xhat:%d", nd->name, i);
        const char *in[5] = {x, sc, sh, rm, rv};
        attr_float(b, ob_node(b, "BatchNormalization", xh, in, 5, xh), "epsilon", G->bn_eps);
        const int64_t tab[2] = {ncls, C}, r4[4] = {-1, C, 1, 1}, d1[1] = {4};
        ob_init(b, tensor_name(G, nd->w), tab, 2, G->p + G->params[nd->w].offset, 0);
        ob_init(b, tensor_name(G, nd->b), tab, 2, G->p + G->params[nd->b].offset, 0);
        snprintf(c2, sizeof c2, "%s.shape4", nd->name);
        ob_init(b, c2, d1, 1, r4, 1);
        char g2[160], g4[160], b2[160], b4[160], m[160];
        snprintf(g2, sizeof g2, "%s.gamma_rows:%d", nd->name, i);
        snprintf(g4, sizeof g4, "%s.gamma_nchw:%d", nd->name, i);
        snprintf(b2, sizeof b2, "%s.beta_rows:%d", nd->name, i);
        snprintf(b4, sizeof b4, "%s.beta_nchw:%d", nd->name, i);
        snprintf(m, sizeof m, "%s.scaled:%d", nd->name, i);
        const char *gi[2] = {tensor_name(G, nd->w), "class"},
                   *bi[2] = {tensor_name(G, nd->b), "class"};
        attr_int(b, ob_node(b, "Gather", g2, gi, 2, g2), "axis", 0);
        attr_int(b, ob_node(b, "Gather", b2, bi, 2, b2), "axis", 0);
        const char *gr[2] = {g2, c2}, *br[2] = {b2, c2};
        ob_node(b, "Reshape", g4, gr, 2, g4);
        ob_node(b, "Reshape", b4, br, 2, b4);
        const char *mi[2] = {xh, g4}, *ai[2] = {m, b4};
        ob_node(b, "Mul", m, mi, 2, m);
        ob_node(b, "Add", nd->name, ai, 2, y);
      }
    } else if (!strcmp(kind, "relu")) {
      const char *in[1] = {x};
      ob_node(b, "Relu", y, in, 1, y);
    } else if (!strcmp(kind, "lrelu")) {
      const char *in[1] = {x};
      attr_float(b, ob_node(b, "LeakyRelu", y, in, 1, y), "alpha", nd->slope);
    } else if (!strcmp(kind, "tanh")) {
      const char *in[1] = {x};
      ob_node(b, "Tanh", y, in, 1, y);
    } else if (!strcmp(kind, "upsample")) {
      const float scales[4] = {1, 1, 2, 2};
      const int64_t d1[1] = {4};
      snprintf(a, sizeof a, "%s.scales", nd->name);
      ob_init(b, a, d1, 1, scales, 0);
      const char *in[3] = {x, "", a}; // "": the optional roi left out
      GancOnnx__NodeProto *n = ob_node(b, "Resize", nd->name, in, 3, y);
      attr_str(b, n, "mode", "nearest");
      attr_str(b, n, "coordinate_transformation_mode", "asymmetric");
      attr_str(b, n, "nearest_mode", "floor");
    } else if (!strcmp(kind, "add")) {
      char x2[96];
      out_name(G, nd->in[1], x2, sizeof x2);
      const char *in[2] = {x, x2};
      ob_node(b, "Add", nd->name, in, 2, y);
    } else {
      ganc_err_set(err, GANC_EXIT_USAGE,
                   "the generator has a '%s' node (%s), which ganc-export does not write to ONNX",
                   kind, nd->name);
      return -1;
    }
  }
  return 0;
}

// The model, serialised, to a temporary file renamed over `path` (never half a file there).
static void write_model(onnx_b *b, const char *path, const char *doc) {
  GancOnnx__OperatorSetIdProto ops = GANC_ONNX__OPERATOR_SET_ID_PROTO__INIT;
  ops.domain = "";
  ops.has_version = 1;
  ops.version = ONNX_OPSET;
  GancOnnx__OperatorSetIdProto *opsp = &ops;
  b->g.name = "ganc_generator";
  b->g.doc_string = (char *)doc;
  GancOnnx__ModelProto m = GANC_ONNX__MODEL_PROTO__INIT;
  m.has_ir_version = 1;
  m.ir_version = ONNX_IR_VERSION;
  m.producer_name = "ganc";
  m.producer_version = GANC_VERSION;
  m.graph = &b->g;
  m.n_opset_import = 1;
  m.opset_import = &opsp;
  const size_t n = ganc_onnx__model_proto__get_packed_size(&m);
  uint8_t *buf = xmalloc(n);
  ganc_onnx__model_proto__pack(&m, buf);
  b->g.name = NULL;
  b->g.doc_string = NULL;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f || fwrite(buf, 1, n, f) != n || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    int e = errno;
    if (f) fclose(f);
    unlink(tmp);
    free(buf);
    ganc_die(GANC_EXIT_RUNTIME, "cannot write %s: %s\n---> HINT: check the folder and free space",
             tmp, strerror(e));
  }
  fclose(f);
  free(buf);
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    ganc_die(GANC_EXIT_RUNTIME, "cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
}

int ganc_export_main(int argc, char **argv) {
  const char *onnx = NULL, *src = NULL;
  int no_ema = 0;
  ganc_h5_quiet();
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return GANC_EXIT_OK;
    }
    if (!strcmp(a, "--no-ema")) {
      no_ema = 1;
      continue;
    }
    if (!strncmp(a, "--onnx", 6)) {
      char key[64];
      const char *inl;
      ganc_opt_split(a, key, sizeof key, &inl);
      if (strcmp(key, "--onnx")) ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see --help)", a);
      onnx = ganc_opt_value(argc, argv, &i, key, inl, "ganc-export");
      continue;
    }
    if (a[0] == '-' && a[1]) ganc_die(GANC_EXIT_USAGE, "unknown option '%s' (see --help)", a);
    if (src)
      ganc_die(GANC_EXIT_USAGE, "one checkpoint or run folder at a time (got %s and %s)", src, a);
    src = a;
  }
  if (!onnx || !src) {
    usage(stderr);
    return GANC_EXIT_USAGE;
  }
  char *ckpt = ganc_ckpt_resolve(src);
  ganc_err err = {0};
  ganc_ckpt_meta meta;
  if (ganc_ckpt_read_meta(ckpt, &meta, &err)) ganc_die_err(&err);
  ganc_config cfg;
  ganc_config_defaults(&cfg);
  if (ganc_config_load_string(&cfg, meta.config, ckpt, &err) || ganc_config_validate(&cfg, &err))
    ganc_die_err(&err);
  if (cfg.resolution == 0 || cfg.channels == 0)
    ganc_die(GANC_EXIT_USAGE, "checkpoint %s has an unresolved model shape in its config", ckpt);
  const int ncls = !strcmp(cfg.conditional, "yes") ? cfg.classes : 0;
  ganc_ctx ctx; // the CPU: the weights are read from host memory
  ganc_ctx_init_cpu(&ctx, 1);
  const char *group = no_ema ? "G" : "G_ema";
  ganc_net G;
  ganc_build_g(&G, &cfg, group);
  net_finalize(&ctx, &G, 1, 0);
  if (ganc_ckpt_load_net(ckpt, &ctx, &G, group, 0, &err)) ganc_die_err(&err);
  // One evaluation forward: it makes each spectrally normalised weight W / sigma exactly as
  // ganc-sample computes with it.
  float *z = ganc_alloc(&ctx, (size_t)cfg.z_dim);
  ganc_zero(&ctx, z, (size_t)cfg.z_dim);
  int32_t label = 0;
  G.labels = &label;
  net_forward(&ctx, &G, z, 1, 0, -1);
  onnx_b b;
  memset(&b, 0, sizeof b);
  ganc_onnx__graph_proto__init(&b.g);
  if (build_graph(&b, &G, &cfg, ncls, &err)) ganc_die_err(&err);
  char doc[1024];
  snprintf(doc, sizeof doc,
           "%s of %s (kimg %.3f), exported by ganc %s. Inputs: z float32 [N, %d]%s. Output: image "
           "float32 [N, %d, %d, %d] (NCHW) in [-1, 1]; ganc's pixels are round((v + 1) * 127.5).",
           group, ckpt, (double)meta.nimg / 1000.0, GANC_VERSION, cfg.z_dim,
           ncls ? ", class int64 [N] (0 .. classes-1)" : "", cfg.channels, cfg.resolution,
           cfg.resolution);
  write_model(&b, onnx, doc);
  printf("wrote %s: %s of %s, %d nodes, %zu weights tensors, opset %d; input z [N, %d]%s, output "
         "image [N, %d, %d, %d]\n",
         onnx, group, ckpt, (int)b.g.n_node, b.g.n_initializer, ONNX_OPSET, cfg.z_dim,
         ncls ? " and class [N]" : "", cfg.channels, cfg.resolution, cfg.resolution);
  ob_free(&b);
  ganc_free(&ctx, z);
  net_free(&ctx, &G);
  ganc_ctx_free(&ctx);
  ganc_ckpt_meta_free(&meta);
  free(ckpt);
  return GANC_EXIT_OK;
}
