// cudnn_emu.cc — the cuDNN convolutions (kernels/cudnn.cu) under cudemu: not available. The
// emulated build runs ganc's own kernels; cuDNN is an oracle and a baseline only on a real GPU.
#include "core/check.h"
#include "kernels/kernels.h"

#define NO_CUDNN(fn)                                                                               \
  extern "C" void fn(ganc_ctx *ctx, ganc_stream st, const conv_shape *s, const float *a,           \
                     const float *b, float *out) {                                                 \
    (void)ctx, (void)st, (void)s, (void)a, (void)b, (void)out;                                     \
    ganc_die(GANC_EXIT_RUNTIME, #fn ": cuDNN is not available under cudemu, the CUDA emulator "    \
                                    "of the tests; use backend = ganc");                           \
  }
NO_CUDNN(conv2d_forward_cudnn)
NO_CUDNN(conv2d_backward_data_cudnn)
NO_CUDNN(conv2d_backward_weight_cudnn)
