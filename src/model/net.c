// net.c — building and running a layer list (see net.h).
#include "model/net.h"

#include "core/check.h"
#include "core/philox.h"
#include "ops/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void net_init(ganc_net *net, const char *name, int H, int W, int C) {
  memset(net, 0, sizeof *net);
  snprintf(net->name, sizeof net->name, "%s", name);
  net->iH = H;
  net->iW = W;
  net->iC = C;
  net->bn_eps = 1e-5f;
  net->bn_momentum = 0.1f;
}

static layer *push(ganc_net *net, layer_kind kind, const char *name) {
  if (net->nlayers == net->cap)
    net->layers =
        xrealloc(net->layers, sizeof(layer) * (size_t)(net->cap = net->cap ? net->cap * 2 : 16));
  layer *L = &net->layers[net->nlayers];
  memset(L, 0, sizeof *L);
  L->kind = kind;
  snprintf(L->name, sizeof L->name, "%s", name ? name : "");
  const layer *prev = net->nlayers ? &net->layers[net->nlayers - 1] : NULL;
  L->iH = prev ? prev->H : net->iH;
  L->iW = prev ? prev->W : net->iW;
  L->iC = prev ? prev->C : net->iC;
  L->H = L->iH;
  L->W = L->iW;
  L->C = L->iC;
  L->w = L->b = L->rm = L->rv = -1;
  net->nlayers++;
  return L;
}

static int add_tensor(ganc_tensor *table, int *n, size_t *total, const char *layer_name,
                      const char *what, int ndim, const int *shape, int init) {
  if (*n >= 64) ganc_die(GANC_EXIT_RUNTIME, "internal error: more than 64 tensors in one network");
  ganc_tensor *t = &table[*n];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s.%s", layer_name, what);
  t->ndim = ndim;
  t->count = 1;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->count *= (size_t)shape[i];
  }
  t->offset = *total;
  t->init = init;
  *total += t->count;
  return (*n)++;
}

static void conv_common(ganc_net *net, layer *L, int K, int R, int stride, int pad,
                        int transposed) {
  L->R = R;
  L->stride = stride;
  L->pad = pad;
  L->C = K;
  if (transposed) {
    L->H = (L->iH - 1) * stride - 2 * pad + R;
    L->W = (L->iW - 1) * stride - 2 * pad + R;
  } else {
    L->H = (L->iH + 2 * pad - R) / stride + 1;
    L->W = (L->iW + 2 * pad - R) / stride + 1;
  }
  if (L->H < 1 || L->W < 1)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: layer %s of %s has no output", L->name, net->name);
  // Weights [R, S, C, K] of the ordinary convolution; for a transposed one, of its adjoint, which
  // maps the output (K channels here) back to the input (iC channels).
  int shape[4] = {R, R, transposed ? K : L->iC, transposed ? L->iC : K};
  L->w = add_tensor(net->params, &net->nparams, &net->nparam_floats, L->name, "weight", 4, shape,
                    GANC_INIT_CONV);
}

void net_conv(ganc_net *net, const char *name, int K, int R, int stride, int pad) {
  conv_common(net, push(net, LAYER_CONV, name), K, R, stride, pad, 0);
}
void net_convt(ganc_net *net, const char *name, int K, int R, int stride, int pad) {
  conv_common(net, push(net, LAYER_CONVT, name), K, R, stride, pad, 1);
}
void net_bn(ganc_net *net, const char *name) {
  layer *L = push(net, LAYER_BN, name);
  int shape[1] = {L->C};
  L->w = add_tensor(net->params, &net->nparams, &net->nparam_floats, name, "gamma", 1, shape,
                    GANC_INIT_BN_GAMMA);
  L->b = add_tensor(net->params, &net->nparams, &net->nparam_floats, name, "beta", 1, shape,
                    GANC_INIT_ZERO);
  L->rm = add_tensor(net->buffers, &net->nbuffers, &net->nbuffer_floats, name, "running_mean", 1,
                     shape, GANC_INIT_ZERO);
  L->rv = add_tensor(net->buffers, &net->nbuffers, &net->nbuffer_floats, name, "running_var", 1,
                     shape, GANC_INIT_ONE);
}
void net_relu(ganc_net *net) { push(net, LAYER_RELU, "relu"); }
void net_lrelu(ganc_net *net, float slope) { push(net, LAYER_LRELU, "lrelu")->slope = slope; }
void net_tanh(ganc_net *net) { push(net, LAYER_TANH, "tanh"); }

static int is_activation(layer_kind k) {
  return k == LAYER_RELU || k == LAYER_LRELU || k == LAYER_TANH;
}

void net_finalize(ganc_ctx *ctx, ganc_net *net, int max_batch, int train) {
  net->max_batch = max_batch;
  // Every tensor's element count must fit the ops' int sizes: say so before any allocation.
  for (int i = 0; i < net->nlayers; i++) {
    const layer *L = &net->layers[i];
    conv_shape s;
    int64_t n = (int64_t)max_batch * L->H * L->W * L->C,
            m = (int64_t)max_batch * L->iH * L->iW * L->iC;
    int bad = n >= (1ll << 31) || m >= (1ll << 31);
    if (!bad && L->kind == LAYER_CONV)
      bad = conv_shape_make(&s, max_batch, L->iH, L->iW, L->iC, L->C, L->R, L->R, L->stride,
                            L->pad) != 0;
    if (!bad && L->kind == LAYER_CONVT)
      bad = conv_shape_make(&s, max_batch, L->H, L->W, L->C, L->iC, L->R, L->R, L->stride,
                            L->pad) != 0;
    if (bad)
      ganc_die(GANC_EXIT_USAGE,
               "batch %d is too large for %s at this size: layer %s would hold more than 2^31 "
               "values\n---> HINT: use a smaller batch (--set train.batch=...)",
               max_batch, net->name, L->name);
  }
  net->p = ganc_alloc(ctx, net->nparam_floats);
  net->buf = ganc_alloc(ctx, net->nbuffer_floats ? net->nbuffer_floats : 1);
  if (train) {
    net->g = ganc_alloc(ctx, net->nparam_floats);
    net->m = ganc_alloc(ctx, net->nparam_floats);
    net->v = ganc_alloc(ctx, net->nparam_floats);
  }
  size_t largest = (size_t)net->iH * net->iW * net->iC, maxc = 1;
  for (int i = 0; i < net->nlayers; i++) {
    layer *L = &net->layers[i];
    size_t sz = (size_t)L->H * L->W * L->C;
    if (sz > largest) largest = sz;
    if ((size_t)L->C > maxc) maxc = (size_t)L->C;
    // Activations run in place on their input: their backward needs only their output.
    L->out = is_activation(L->kind) && i > 0 ? net->layers[i - 1].out
                                             : ganc_alloc(ctx, (size_t)max_batch * sz);
    if (L->kind == LAYER_BN) {
      L->mean = ganc_alloc(ctx, (size_t)L->C);
      L->rstd = ganc_alloc(ctx, (size_t)L->C);
    }
  }
  if (train) {
    net->dbuf[0] = ganc_alloc(ctx, (size_t)max_batch * largest);
    net->dbuf[1] = ganc_alloc(ctx, (size_t)max_batch * largest);
    net->dscratch = ganc_alloc(ctx, net->nparam_floats);
  }
  net->finalized = 1;
}

void net_free(ganc_ctx *ctx, ganc_net *net) {
  if (!net->finalized) {
    free(net->layers);
    return;
  }
  for (int i = 0; i < net->nlayers; i++) {
    layer *L = &net->layers[i];
    if (!(is_activation(L->kind) && i > 0)) ganc_free(ctx, L->out);
    if (L->kind == LAYER_BN) {
      ganc_free(ctx, L->mean);
      ganc_free(ctx, L->rstd);
    }
  }
  ganc_free(ctx, net->p);
  ganc_free(ctx, net->buf);
  if (net->g) {
    ganc_free(ctx, net->g);
    ganc_free(ctx, net->m);
    ganc_free(ctx, net->v);
    ganc_free(ctx, net->dbuf[0]);
    ganc_free(ctx, net->dbuf[1]);
    ganc_free(ctx, net->dscratch);
  }
  free(net->layers);
  memset(net, 0, sizeof *net);
}

static void fill_block(ganc_ctx *ctx, const ganc_tensor *t, int nt, size_t total, float *dst,
                       uint64_t seed, uint32_t stream) {
  float *host = xcalloc(total ? total : 1, sizeof(float));
  for (int i = 0; i < nt; i++) {
    float *p = host + t[i].offset;
    switch (t[i].init) {
    case GANC_INIT_ONE:
      for (size_t k = 0; k < t[i].count; k++)
        p[k] = 1.0f;
      break;
    case GANC_INIT_CONV:
    case GANC_INIT_BN_GAMMA:
      ganc_rng_normals(seed, stream, (uint64_t)i, (int)t[i].count, p);
      for (size_t k = 0; k < t[i].count; k++)
        p[k] = (t[i].init == GANC_INIT_BN_GAMMA ? 1.0f : 0.0f) + 0.02f * p[k];
      break;
    default:
      break; // zero
    }
  }
  ganc_upload(ctx, dst, host, total);
  free(host);
}

void net_init_weights(ganc_ctx *ctx, ganc_net *net, uint64_t seed, uint32_t stream) {
  fill_block(ctx, net->params, net->nparams, net->nparam_floats, net->p, seed, stream);
  fill_block(ctx, net->buffers, net->nbuffers, net->nbuffer_floats, net->buf, seed, stream);
  if (net->m) {
    ganc_zero(ctx, net->m, net->nparam_floats);
    ganc_zero(ctx, net->v, net->nparam_floats);
  }
  net->adam_t = 0;
}

// The ordinary convolution a conv layer is (or, for a transposed conv, its adjoint).
static void layer_shape(const layer *L, int N, conv_shape *s) {
  int rc = L->kind == LAYER_CONV
               ? conv_shape_make(s, N, L->iH, L->iW, L->iC, L->C, L->R, L->R, L->stride, L->pad)
               : conv_shape_make(s, N, L->H, L->W, L->C, L->iC, L->R, L->R, L->stride, L->pad);
  if (rc) ganc_die(GANC_EXIT_RUNTIME, "internal error: bad shape in layer %s", L->name);
}

const float *net_forward(ganc_ctx *ctx, ganc_net *net, const float *x, int N, int train,
                         float momentum_override) {
  if (N < 1 || N > net->max_batch)
    ganc_die(GANC_EXIT_RUNTIME, "internal error: batch %d outside 1..%d for %s", N, net->max_batch,
             net->name);
  const float *in = x;
  float mom = momentum_override >= 0 ? momentum_override : net->bn_momentum;
  for (int i = 0; i < net->nlayers; i++) {
    layer *L = &net->layers[i];
    int64_t n = (int64_t)N * L->H * L->W * L->C;
    conv_shape s;
    switch (L->kind) {
    case LAYER_CONV:
      layer_shape(L, N, &s);
      conv2d_forward(ctx, &s, in, net->p + net->params[L->w].offset, L->out);
      break;
    case LAYER_CONVT:
      layer_shape(L, N, &s);
      conv2d_backward_data(ctx, &s, in, net->p + net->params[L->w].offset, L->out);
      break;
    case LAYER_BN: {
      const float *gamma = net->p + net->params[L->w].offset,
                  *beta = net->p + net->params[L->b].offset;
      float *rm = net->buf + net->buffers[L->rm].offset,
            *rv = net->buf + net->buffers[L->rv].offset;
      if (train)
        batchnorm_forward_train(ctx, (int64_t)N * L->H * L->W, L->C, in, gamma, beta, net->bn_eps,
                                mom, L->out, L->mean, L->rstd, rm, rv);
      else
        batchnorm_forward_eval(ctx, (int64_t)N * L->H * L->W, L->C, in, gamma, beta, rm, rv,
                               net->bn_eps, L->out);
      break;
    }
    case LAYER_RELU:
      relu_forward(ctx, n, in, L->out);
      break;
    case LAYER_LRELU:
      lrelu_forward(ctx, n, L->slope, in, L->out);
      break;
    case LAYER_TANH:
      tanh_forward(ctx, n, in, L->out);
      break;
    }
    in = L->out;
  }
  return in;
}

const float *net_backward(ganc_ctx *ctx, ganc_net *net, const float *x, const float *dy, int N,
                          int need_dx, int need_wgrad) {
  if (!net->g) ganc_die(GANC_EXIT_RUNTIME, "internal error: %s has no gradients", net->name);
  const float *d = dy; // gradient w.r.t. the current layer's output
  for (int i = net->nlayers - 1; i >= 0; i--) {
    layer *L = &net->layers[i];
    const float *in = i > 0 ? net->layers[i - 1].out : x;
    int want_dx = i > 0 || need_dx;
    // The buffer for this layer's input gradient: never the one holding d.
    float *dx = d == net->dbuf[0] ? net->dbuf[1] : net->dbuf[0];
    float *gw = (need_wgrad ? net->g : net->dscratch);
    int64_t n = (int64_t)N * L->H * L->W * L->C;
    conv_shape s;
    switch (L->kind) {
    case LAYER_CONV:
      layer_shape(L, N, &s);
      if (need_wgrad) conv2d_backward_weight(ctx, &s, in, d, gw + net->params[L->w].offset);
      if (want_dx) conv2d_backward_data(ctx, &s, d, net->p + net->params[L->w].offset, dx);
      break;
    case LAYER_CONVT:
      layer_shape(L, N, &s);
      if (need_wgrad) conv2d_backward_weight(ctx, &s, d, in, gw + net->params[L->w].offset);
      if (want_dx) conv2d_forward(ctx, &s, d, net->p + net->params[L->w].offset, dx);
      break;
    case LAYER_BN:
      // Without weight gradients, dgamma/dbeta go to a scratch block nobody reads.
      batchnorm_backward(ctx, (int64_t)N * L->H * L->W, L->C, in, d,
                         net->p + net->params[L->w].offset, L->mean, L->rstd, dx,
                         gw + net->params[L->w].offset, gw + net->params[L->b].offset);
      break;
    case LAYER_RELU:
    case LAYER_LRELU:
    case LAYER_TANH:
      // In place when d is ours to overwrite.
      if (d == net->dbuf[0] || d == net->dbuf[1]) dx = (float *)d;
      if (L->kind == LAYER_RELU)
        relu_backward(ctx, n, L->out, d, dx);
      else if (L->kind == LAYER_LRELU)
        lrelu_backward(ctx, n, L->slope, L->out, d, dx);
      else
        tanh_backward(ctx, n, L->out, d, dx);
      break;
    }
    if (!want_dx) return NULL;
    d = dx;
  }
  return d;
}

void net_zero_grad(ganc_ctx *ctx, ganc_net *net) {
  if (net->g) ganc_zero(ctx, net->g, net->nparam_floats);
}

void net_adam(ganc_ctx *ctx, ganc_net *net, float lr, float b1, float b2, float eps) {
  net->adam_t++;
  adam_update(ctx, net->nparam_floats, net->p, net->g, net->m, net->v, lr, b1, b2, eps,
              net->adam_t);
}

void net_describe(const ganc_net *net, char *buf, size_t n) {
  const layer *L = &net->layers[net->nlayers - 1];
  snprintf(buf, n, "%s: %dx%dx%d -> %dx%dx%d, %d layers, %d tensors, %.2fM parameters", net->name,
           net->iH, net->iW, net->iC, L->H, L->W, L->C, net->nlayers, net->nparams,
           (double)net->nparam_floats / 1e6);
}
