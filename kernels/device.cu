// device.cu — CUDA device queries and page-locked host memory (the CUDA half of core/device.h).
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int ganc_cuda_device_count(char *why, size_t why_len) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice) {
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    if (drv == 0)
      snprintf(why, why_len, "no NVIDIA driver or GPU found on this machine");
    else if (e == cudaErrorNoDevice)
      snprintf(why, why_len, "no CUDA device found (driver for CUDA %d.%d present)", drv / 1000,
               (drv % 1000) / 10);
    else
      snprintf(why, why_len,
               "the NVIDIA driver is too old for this build (driver supports CUDA %d.%d, ganc "
               "needs %d.%d); update the driver or use --device cpu",
               drv / 1000, (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
    (void)cudaGetLastError();
    return 0;
  }
  if (e != cudaSuccess || n == 0) {
    snprintf(why, why_len, "no CUDA device found (%s)",
             e == cudaSuccess ? "none visible" : cudaGetErrorString(e));
    (void)cudaGetLastError(); // clear the sticky-free error so later calls start clean
    return 0;
  }
  return n;
}

extern "C" void *ganc_cuda_host_alloc(size_t n) {
  void *p = NULL;
  if (cudaHostAlloc(&p, n ? n : 1, cudaHostAllocDefault) != cudaSuccess) {
    (void)cudaGetLastError();
    return NULL; // caller falls back to pageable memory
  }
  return p;
}

extern "C" void ganc_cuda_host_free(void *p) { cudaFreeHost(p); }
