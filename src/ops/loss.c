// loss.c — GAN losses on the CPU from logits [n]; the value is a mean over n, summed in double.
// n is a batch size, so the loops are serial (and so the sum's order is fixed).
#include "ops/ops.h"

#include "core/check.h"     // ganc_die
#include "ops/lecam_core.h" // the LeCam regulariser's arithmetic, shared with kernels/loss.cu

#include <math.h>

static void loss_check(int n, float target, const char *op) {
  if (n < 1) ganc_die(GANC_EXIT_RUNTIME, "%s: no logits (n = %d)", op, n);
  if (target != 1.0f && target != -1.0f)
    ganc_die(GANC_EXIT_RUNTIME, "%s: target must be +1 (real) or -1 (fake), got %g", op,
             (double)target);
}

// softplus(a) = log(1 + e^a) without overflow: e^−|a| ≤ 1 always.
static double softplus(double a) { return (a > 0.0 ? a : 0.0) + log1p(exp(-fabs(a))); }

// σ(a) = 1 / (1 + e^−a), with the exponent never positive, for both signs of a.
static double sigmoid(double a) {
  if (a >= 0.0) return 1.0 / (1.0 + exp(-a));
  double e = exp(a);
  return e / (1.0 + e);
}

// loss = mean softplus(−t·l); ∂loss/∂l = −t·σ(−t·l) / n.
void loss_logistic_cpu(ganc_ctx *ctx, int n, const float *logit, float target, float *dlogit,
                       float *loss) {
  (void)ctx;
  loss_check(n, target, "loss_logistic_cpu");
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    double a = -(double)target * logit[i];
    sum += softplus(a);
    dlogit[i] = (float)(-(double)target * sigmoid(a) / n);
  }
  *loss = (float)(sum / n);
}

// D: loss = mean relu(1 − t·l); ∂/∂l = −t/n where 1 − t·l > 0, else 0 (relu'(0) = 0, as PyTorch).
// G: loss = −mean l; ∂/∂l = −1/n (target unused).
void loss_hinge_cpu(ganc_ctx *ctx, int n, const float *logit, float target, int generator,
                    float *dlogit, float *loss) {
  (void)ctx;
  if (generator) target = 1.0f; // unused by the generator's loss; any value passes the check
  loss_check(n, target, "loss_hinge_cpu");
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    if (generator) {
      sum -= logit[i];
      dlogit[i] = (float)(-1.0 / n);
      continue;
    }
    double margin = 1.0 - (double)target * logit[i];
    sum += margin > 0.0 ? margin : 0.0;
    dlogit[i] = margin > 0.0 ? (float)(-(double)target / n) : 0.0f;
  }
  *loss = (float)(sum / n);
}

// LeCam: the 256 lanes of the long sum in turn, then the tree (ops/lecam_core.h); each logit's
// gradient is added by its lane, as on the GPU.
void loss_lecam_cpu(ganc_ctx *ctx, int n, const float *logit, int fake, float weight, float decay,
                    double *state, float *dlogit) {
  (void)ctx;
  char why[160];
  if (ganc_lecam_invalid(n, weight, decay, state, why, sizeof why))
    ganc_die(GANC_EXIT_RUNTIME, "loss_lecam_cpu: %s", why);
  int on;
  const double anchor = ganc_lecam_anchor(state, fake, &on);
  double s[GANC_LONG_LANES];
  for (int t = 0; t < GANC_LONG_LANES; t++)
    s[t] = ganc_lecam_lane(t, n, logit, fake, weight, anchor, on, dlogit);
  ganc_lecam_finish(state, fake, decay, ganc_tree(s, GANC_LONG_LANES), n);
}

void step_stats_cpu(ganc_ctx *ctx, int n, const float *logit, const float *loss, double *acc) {
  (void)ctx;
  acc[0] += (double)*loss;
  if (!logit) return;
  double s = 0.0, r = 0.0;
  for (int i = 0; i < n; i++) {
    s += sigmoid((double)logit[i]);
    r += (double)logit[i];
  }
  acc[1] += s;
  acc[2] += r;
}
