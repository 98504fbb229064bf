// CUDA runtime helpers: error checking that throws NativeFailure (never exits), and one RAII owner
// per kind of CUDA object. Every owner is a std::unique_ptr with the matching destroy call as its
// deleter: non-copyable, movable, and released exactly once even when construction of the object
// that holds it fails half-way.
#pragma once

#include "build_config.h"

#if ENDOSYNTH_WITH_CUDA

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>

#include "native_error.h"

namespace endosynth {

// "cudaMalloc failed with cudaErrorMemoryAllocation (2): out of memory", as a NativeFailure.
NativeFailure CudaFailure(cudaError_t status, const std::string& call);

// Throws CudaFailure unless `status` is cudaSuccess. Also clears the thread's last-error state so a
// reported, non-sticky error does not resurface in an unrelated later call.
void CheckCuda(cudaError_t status, const char* call);

// Deleters ignore errors on purpose: they run in destructors (which must not throw) and possibly
// after the CUDA runtime has begun shutting down at process exit.
struct StreamDeleter {
  void operator()(cudaStream_t stream) const noexcept { cudaStreamDestroy(stream); }
};
struct EventDeleter {
  void operator()(cudaEvent_t event) const noexcept { cudaEventDestroy(event); }
};
struct GraphDeleter {
  void operator()(cudaGraph_t graph) const noexcept { cudaGraphDestroy(graph); }
};
struct GraphExecDeleter {
  void operator()(cudaGraphExec_t exec) const noexcept { cudaGraphExecDestroy(exec); }
};
struct DeviceMemoryDeleter {
  void operator()(void* pointer) const noexcept { cudaFree(pointer); }
};
struct PinnedMemoryDeleter {
  void operator()(void* pointer) const noexcept { cudaFreeHost(pointer); }
};

using CudaStream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter>;
using CudaEvent = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter>;
using CudaGraph = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, GraphDeleter>;
using CudaGraphExec = std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, GraphExecDeleter>;
using DeviceMemory = std::unique_ptr<void, DeviceMemoryDeleter>;
using PinnedMemory = std::unique_ptr<void, PinnedMemoryDeleter>;

// A non-blocking stream (it never synchronizes with the legacy default stream).
CudaStream CreateStream();
// An event that records timing. A `blocking` event puts a thread waiting on it with
// cudaEventSynchronize to sleep instead of spinning, so a frame in flight does not hold a CPU core
// at 100% for the whole time the GPU works on it.
CudaEvent CreateEvent(bool blocking = false);
DeviceMemory AllocateDevice(std::size_t bytes);
// Page-locked host memory, portable across devices, which the GPU reads and writes by DMA.
PinnedMemory AllocatePinned(std::size_t bytes);
// Instantiates a captured graph for launching.
CudaGraphExec InstantiateGraph(cudaGraph_t graph);
// Milliseconds between two recorded, completed events.
double ElapsedMs(cudaEvent_t start, cudaEvent_t end);

}  // namespace endosynth

#endif  // ENDOSYNTH_WITH_CUDA
