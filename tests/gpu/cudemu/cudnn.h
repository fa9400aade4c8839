// cudnn.h — cudemu's stand-in for cuDNN's header: the handle calls of kernels/ctx.cu and nothing
// else. The emulated build has no cuDNN convolutions (conv2d_*_cudnn exit with a message,
// cudnn_emu.cc); the GPU tests compare against cuDNN only on a real GPU.
#ifndef CUDEMU_CUDNN_H
#define CUDEMU_CUDNN_H

#include <cuda_runtime.h>
#include <stddef.h>

#define CUDNN_MAJOR 9

typedef enum { CUDNN_STATUS_SUCCESS = 0, CUDNN_STATUS_NOT_SUPPORTED = 9 } cudnnStatus_t;
typedef struct cudnnContext *cudnnHandle_t;

cudnnStatus_t cudnnCreate(cudnnHandle_t *h);
cudnnStatus_t cudnnDestroy(cudnnHandle_t h);
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s);
size_t cudnnGetVersion(void);
const char *cudnnGetErrorString(cudnnStatus_t s);

#endif
