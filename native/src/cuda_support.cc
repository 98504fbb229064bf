#include "cuda_support.h"

#if ENDOSYNTH_WITH_CUDA

namespace endosynth {

NativeFailure CudaFailure(cudaError_t status, const std::string& call) {
  const std::string name = cudaGetErrorName(status);
  const std::string message =
      call + " failed with " + name + " (" + std::to_string(static_cast<int>(status)) + "): " + cudaGetErrorString(status);
  NativeFailure failure(FailureKind::kCuda, call, message);
  failure.WithCudaError(static_cast<int>(status), name);
  return failure;
}

void CheckCuda(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  cudaGetLastError();
  throw CudaFailure(status, call);
}

CudaStream CreateStream() {
  cudaStream_t stream = nullptr;
  CheckCuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  return CudaStream(stream);
}

CudaEvent CreateEvent(bool blocking) {
  cudaEvent_t event = nullptr;
  CheckCuda(cudaEventCreateWithFlags(&event, blocking ? cudaEventBlockingSync : cudaEventDefault), "cudaEventCreateWithFlags");
  return CudaEvent(event);
}

DeviceMemory AllocateDevice(std::size_t bytes) {
  void* pointer = nullptr;
  CheckCuda(cudaMalloc(&pointer, bytes), "cudaMalloc");
  return DeviceMemory(pointer);
}

PinnedMemory AllocatePinned(std::size_t bytes) {
  void* pointer = nullptr;
  CheckCuda(cudaHostAlloc(&pointer, bytes, cudaHostAllocPortable), "cudaHostAlloc");
  return PinnedMemory(pointer);
}

CudaGraphExec InstantiateGraph(cudaGraph_t graph) {
  cudaGraphExec_t exec = nullptr;
  CheckCuda(cudaGraphInstantiateWithFlags(&exec, graph, 0), "cudaGraphInstantiateWithFlags");
  return CudaGraphExec(exec);
}

double ElapsedMs(cudaEvent_t start, cudaEvent_t end) {
  float ms = 0;
  CheckCuda(cudaEventElapsedTime(&ms, start, end), "cudaEventElapsedTime");
  return ms;
}

}  // namespace endosynth

#endif  // ENDOSYNTH_WITH_CUDA
