// loss.cu — GAN losses on the GPU from logits [n]: the logistic (non-saturating, DCGAN's BCE) and
// hinge losses with their gradients; the CUDA twins of src/ops/loss.c, same arguments plus the
// stream.
//
// Gradient rule (ops.h): the losses' dlogit OVERWRITES; the LeCam regulariser's ADDS to it (it
// comes after the loss). *loss is one float in device memory (the mean).
//
// n is a batch size (at most 65536), so one block does it all: thread t takes logits t, t + 256,
// ..., writes their gradients and sums their losses in double; a fixed shared-memory tree adds the
// 256 partial sums and thread 0 writes the mean. No atomics, so the value is the same on every
// run. Per-element arithmetic is the CPU twin's, in double (stable softplus and sigmoid); for the
// losses only the order of the sum differs from the CPU's serial loop, far below float
// resolution; LeCam's sum is the CPU twin's tree (ops/lecam_core.h), so its bits are the same.
//
// Without a GPU, tests/gpu/cudemu (the tests' CUDA emulator) runs this file, kernels and
// launchers, on the CPU: test_gpu_ops_emu checks it against the CPU twin in CI.
#include "kernels/cuda_check.h" // CUDA_CHECK_LAUNCH, KERNEL_REQUIRE
#include "kernels/kernels.h"    // the launchers' declarations
#include "ops/lecam_core.h"     // the LeCam regulariser's arithmetic, shared with src/ops/loss.c

#include <math.h>

enum { LOSS_THREADS = 256 }; // one block; a power of two for the tree

// softplus(a) = log(1 + e^a) without overflow: e^−|a| ≤ 1 always.
__host__ __device__ static inline double softplus(double a) {
  return (a > 0.0 ? a : 0.0) + log1p(exp(-fabs(a)));
}

// σ(a) = 1 / (1 + e^−a), with the exponent never positive, for both signs of a.
__host__ __device__ static inline double sigmoid(double a) {
  if (a >= 0.0) return 1.0 / (1.0 + exp(-a));
  const double e = exp(a);
  return e / (1.0 + e);
}

// ---------------------------------------------------------------------------------------------
// per-thread bodies: thread tid's share of the sum; its gradients written

// loss = mean softplus(−t·l); ∂loss/∂l = −t·σ(−t·l) / n.
__host__ __device__ static double logistic_body(int tid, int n, const float *logit, float target,
                                                float *dlogit) {
  double sum = 0.0;
  for (int i = tid; i < n; i += LOSS_THREADS) {
    const double a = -(double)target * logit[i];
    sum += softplus(a);
    dlogit[i] = (float)(-(double)target * sigmoid(a) / n);
  }
  return sum;
}

// D: loss = mean relu(1 − t·l); ∂/∂l = −t/n where 1 − t·l > 0, else 0 (relu'(0) = 0, as PyTorch).
// G: loss = −mean l; ∂/∂l = −1/n (target unused).
__host__ __device__ static double hinge_body(int tid, int n, const float *logit, float target,
                                             int generator, float *dlogit) {
  double sum = 0.0;
  for (int i = tid; i < n; i += LOSS_THREADS) {
    if (generator) {
      sum -= logit[i];
      dlogit[i] = (float)(-1.0 / n);
      continue;
    }
    const double margin = 1.0 - (double)target * logit[i];
    sum += margin > 0.0 ? margin : 0.0;
    dlogit[i] = margin > 0.0 ? (float)(-(double)target / n) : 0.0f;
  }
  return sum;
}

// One level of the tree over s [LOSS_THREADS]; the kernel runs half = 128 .. 1 with barriers.
__host__ __device__ static inline void tree_level(double *s, int tid, int half) {
  if (tid < half) s[tid] += s[tid + half];
}

// ---------------------------------------------------------------------------------------------
// kernels: one block of LOSS_THREADS

__device__ static void finish(double *s, double part, int n, float *loss) {
  const int tid = threadIdx.x;
  s[tid] = part;
  __syncthreads();
  for (int half = LOSS_THREADS / 2; half > 0; half >>= 1) {
    tree_level(s, tid, half);
    __syncthreads();
  }
  if (tid == 0) *loss = (float)(s[0] / n);
}

__global__ static void __launch_bounds__(LOSS_THREADS)
    logistic_kernel(int n, const float *logit, float target, float *dlogit, float *loss) {
  __shared__ double s[LOSS_THREADS];
  finish(s, logistic_body(threadIdx.x, n, logit, target, dlogit), n, loss);
}

__global__ static void __launch_bounds__(LOSS_THREADS)
    hinge_kernel(int n, const float *logit, float target, int generator, float *dlogit,
                 float *loss) {
  __shared__ double s[LOSS_THREADS];
  finish(s, hinge_body(threadIdx.x, n, logit, target, generator, dlogit), n, loss);
}

// ---------------------------------------------------------------------------------------------
// launchers: logit, dlogit [n], loss [1] device memory

static void loss_check(int n, float target, const char *op) {
  if (n < 1) ganc_die(GANC_EXIT_RUNTIME, "%s: no logits (n = %d)", op, n);
  if (target != 1.0f && target != -1.0f)
    ganc_die(GANC_EXIT_RUNTIME, "%s: target must be +1 (real) or -1 (fake), got %g", op,
             (double)target);
}

extern "C" void loss_logistic_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *logit,
                                   float target, float *dlogit, float *loss) {
  (void)ctx;
  loss_check(n, target, "loss_logistic_cuda");
  GANC_LAUNCH(logistic_kernel, 1, LOSS_THREADS, st)(n, logit, target, dlogit, loss);
  CUDA_CHECK_LAUNCH();
}

extern "C" void loss_hinge_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *logit,
                                float target, int generator, float *dlogit, float *loss) {
  (void)ctx;
  if (generator) target = 1.0f; // unused by the generator's loss; any value passes the check
  loss_check(n, target, "loss_hinge_cuda");
  GANC_LAUNCH(hinge_kernel, 1, LOSS_THREADS, st)(n, logit, target, generator, dlogit, loss);
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------
// LeCam: one block of LOSS_THREADS (= GANC_LONG_LANES): thread t is lane t of the long sum and
// adds its logits' gradients; the tree (ganc_tree_level, the CPU's order) makes the batch mean and
// thread 0 updates the state, so the CPU twin's bits.

static_assert((int)LOSS_THREADS == (int)GANC_LONG_LANES, "the LeCam kernel is one long sum");

__global__ static void __launch_bounds__(LOSS_THREADS)
    lecam_kernel(int n, const float *logit, int fake, float weight, float decay, double *state,
                 float *dlogit) {
  __shared__ double s[LOSS_THREADS];
  __shared__ double anchor;
  __shared__ int on;
  const int tid = threadIdx.x;
  if (tid == 0) {
    int o;
    anchor = ganc_lecam_anchor(state, fake, &o);
    on = o;
  }
  __syncthreads();
  s[tid] = ganc_lecam_lane(tid, n, logit, fake, weight, anchor, on, dlogit);
  __syncthreads();
  for (int half = LOSS_THREADS / 2; half > 0; half >>= 1) {
    ganc_tree_level(s, tid, half);
    __syncthreads();
  }
  if (tid == 0) ganc_lecam_finish(state, fake, decay, s[0], n);
}

extern "C" void loss_lecam_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *logit, int fake,
                                float weight, float decay, double *state, float *dlogit) {
  (void)ctx;
  char why[160];
  KERNEL_REQUIRE(!ganc_lecam_invalid(n, weight, decay, state, why, sizeof why), "loss_lecam_cuda",
                 "%s", why);
  GANC_LAUNCH(lecam_kernel, 1, LOSS_THREADS, st)(n, logit, fake, weight, decay, state, dlogit);
  CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------------------------
// step_stats: one block of LOSS_THREADS; thread t sums σ(l) and l over t, t + 256, ... (the CPU
// twin's per-element arithmetic), the fixed tree adds the partial sums, thread 0 accumulates.
// Its order differs from the CPU's serial loop by far less than the logs print; the value is the
// same on every run.

__global__ static void __launch_bounds__(LOSS_THREADS)
    step_stats_kernel(int n, const float *logit, const float *loss, double *acc) {
  __shared__ double s[LOSS_THREADS], r[LOSS_THREADS];
  const int tid = threadIdx.x;
  double ps = 0.0, pr = 0.0;
  if (logit)
    for (int i = tid; i < n; i += LOSS_THREADS) {
      ps += sigmoid((double)logit[i]);
      pr += (double)logit[i];
    }
  s[tid] = ps;
  r[tid] = pr;
  __syncthreads();
  for (int half = LOSS_THREADS / 2; half > 0; half >>= 1) {
    tree_level(s, tid, half);
    tree_level(r, tid, half);
    __syncthreads();
  }
  if (tid != 0) return;
  acc[0] += (double)*loss;
  if (!logit) return;
  acc[1] += s[0];
  acc[2] += r[0];
}

extern "C" void step_stats_cuda(ganc_ctx *ctx, ganc_stream st, int n, const float *logit,
                                const float *loss, double *acc) {
  (void)ctx;
  KERNEL_REQUIRE(n >= 0 && loss && acc, "step_stats_cuda", "n = %d", n);
  GANC_LAUNCH(step_stats_kernel, 1, LOSS_THREADS, st)(n, logit, loss, acc);
  CUDA_CHECK_LAUNCH();
}
