#include "host_memory.h"

#include <cstdlib>
#include <new>
#include <utility>

#include "build_config.h"
#include "native_error.h"

#if ENDOSYNTH_WITH_CUDA
#include "cuda_support.h"
#endif

namespace endosynth {

namespace {

// Alignment of heap blocks: the same 256 bytes cudaHostAlloc guarantees, so typed-array views of
// any element size are aligned either way.
constexpr std::size_t kHeapAlignment = 256;

void* AllocateHostMemory(std::size_t bytes, bool pinned) {
  const std::size_t rounded = (bytes + kHeapAlignment - 1) / kHeapAlignment * kHeapAlignment;
#if ENDOSYNTH_WITH_CUDA
  if (pinned) return AllocatePinned(rounded == 0 ? kHeapAlignment : rounded).release();
#else
  if (pinned) throw NativeFailure(FailureKind::kUnavailable, "cudaHostAlloc", "pinned memory needs CUDA, and the native addon was built without CUDA");
#endif
  void* data = std::aligned_alloc(kHeapAlignment, rounded == 0 ? kHeapAlignment : rounded);
  if (data == nullptr) throw NativeFailure(FailureKind::kInternal, "aligned_alloc", "out of host memory allocating " + std::to_string(bytes) + " bytes");
  return data;
}

void FreeHostMemory(void* data, bool pinned) {
#if ENDOSYNTH_WITH_CUDA
  if (pinned) {
    PinnedMemoryDeleter()(data);
    return;
  }
#else
  (void)pinned;  // without CUDA every block comes from the heap
#endif
  std::free(data);
}

void FinalizeBuffer(napi_env, void*, void* hint) {
  delete static_cast<std::shared_ptr<HostBlock>*>(hint);
}

}  // namespace

std::shared_ptr<HostBlock> HostBlock::Allocate(std::size_t bytes, bool pinned) {
  void* data = AllocateHostMemory(bytes, pinned);
  std::shared_ptr<HostBlock> block(new HostBlock(data, bytes, pinned));
  HostBlockRegistry::Instance().Add(block);
  return block;
}

HostBlock::HostBlock(void* data, std::size_t bytes, bool pinned) : data_(data), size_(bytes), pinned_(pinned) {}

HostBlock::~HostBlock() { FreeMemory(); }

bool HostBlock::Acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_requested_) return false;
  ++leases_;
  return true;
}

void HostBlock::Release() {
  bool free_now = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --leases_;
    free_now = free_requested_ && leases_ == 0;
  }
  if (free_now) FreeMemory();
}

void HostBlock::RequestFree() {
  bool free_now = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_requested_ = true;
    free_now = leases_ == 0;
  }
  if (free_now) FreeMemory();
}

void HostBlock::FreeMemory() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (freed_) return;
    freed_ = true;
    free_requested_ = true;
  }
  // Unregister before freeing so a new block that reuses the address is never shadowed.
  HostBlockRegistry::Instance().Remove(this);
  FreeHostMemory(data_, pinned_);
}

HostLease::~HostLease() {
  if (block_) block_->Release();
}

HostLease& HostLease::operator=(HostLease&& other) noexcept {
  if (this != &other) {
    if (block_) block_->Release();
    block_ = std::move(other.block_);
  }
  return *this;
}

HostBlockRegistry& HostBlockRegistry::Instance() {
  // Leaked on purpose: blocks may be finalized during static destruction at exit.
  static HostBlockRegistry* registry = new HostBlockRegistry();
  return *registry;
}

void HostBlockRegistry::Add(const std::shared_ptr<HostBlock>& block) {
  std::lock_guard<std::mutex> lock(mutex_);
  blocks_[reinterpret_cast<std::uintptr_t>(block->data())] = block;
}

void HostBlockRegistry::Remove(const HostBlock* block) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(reinterpret_cast<std::uintptr_t>(block->data()));
  if (it == blocks_.end()) return;
  std::shared_ptr<HostBlock> current = it->second.lock();
  if (current == nullptr || current.get() == block) blocks_.erase(it);
}

HostLease HostBlockRegistry::Lease(const void* data, std::size_t bytes) {
  std::shared_ptr<HostBlock> block;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto address = reinterpret_cast<std::uintptr_t>(data);
    auto it = blocks_.upper_bound(address);
    if (it == blocks_.begin()) return HostLease();
    --it;
    block = it->second.lock();
    if (block == nullptr || address + bytes > it->first + block->size()) return HostLease();
  }
  // Acquired outside the registry lock: FreeMemory takes the block lock then the registry lock.
  if (!block->Acquire()) return HostLease();
  return HostLease(std::move(block));
}

Napi::Function HostArena::DefineClass(Napi::Env env) {
  return ObjectWrap<HostArena>::DefineClass(
      env, "HostArena",
      {
          InstanceMethod<&HostArena::Allocate>("allocate"),
          InstanceMethod<&HostArena::Dispose>("dispose"),
          InstanceAccessor<&HostArena::IsPinned>("pinned"),
          InstanceAccessor<&HostArena::LiveBlocks>("liveBlocks"),
      });
}

// new HostArena({ pinned?: boolean = true, externalBuffers?: boolean = true })
HostArena::HostArena(const Napi::CallbackInfo& info) : ObjectWrap<HostArena>(info) {
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object options = info[0].As<Napi::Object>();
    if (options.Has("pinned")) pinned_ = options.Get("pinned").ToBoolean();
    if (options.Has("externalBuffers")) external_buffers_ = options.Get("externalBuffers").ToBoolean();
  }
}

HostArena::~HostArena() {
  // A forgotten arena lets its buffers live on: each block is then freed by its buffer's
  // finalizer, so nothing here may free memory JS can still reach.
}

Napi::Value HostArena::Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) throw ToJsError(env, NativeFailure(FailureKind::kDisposed, "HostArena.allocate", "the host memory arena has been disposed"));
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "allocate(byteLength) needs a number");
  const double requested = info[0].As<Napi::Number>().DoubleValue();
  if (!(requested >= 0) || requested > 1e12) throw Napi::RangeError::New(env, "allocate(byteLength): byteLength out of range");
  if (!external_buffers_) return env.Null();
  Prune();

  std::shared_ptr<HostBlock> block;
  try {
    block = HostBlock::Allocate(static_cast<std::size_t>(requested), pinned_);
  } catch (const NativeFailure& failure) {
    throw ToJsError(env, failure);
  }
  auto* hint = new std::shared_ptr<HostBlock>(block);
  napi_value buffer = nullptr;
  const napi_status status = napi_create_external_arraybuffer(env, block->data(), block->size(), FinalizeBuffer, hint, &buffer);
  if (status != napi_ok) {
    delete hint;
    block->RequestFree();
    if (status == napi_no_external_buffers_allowed) {
      external_buffers_ = false;
      return env.Null();
    }
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  }
  Napi::ArrayBuffer array_buffer(env, buffer);
  allocations_.push_back(Allocation{block, Napi::Reference<Napi::ArrayBuffer>::New(array_buffer, 0)});
  return array_buffer;
}

Napi::Value HostArena::Dispose(const Napi::CallbackInfo& info) {
  if (disposed_) return info.Env().Undefined();
  disposed_ = true;
  for (Allocation& allocation : allocations_) {
    if (!allocation.buffer.IsEmpty()) {
      Napi::ArrayBuffer buffer = allocation.buffer.Value();
      if (!buffer.IsEmpty() && !buffer.IsDetached()) buffer.Detach();
    }
    allocation.block->RequestFree();
  }
  allocations_.clear();
  return info.Env().Undefined();
}

Napi::Value HostArena::IsPinned(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), pinned_); }

Napi::Value HostArena::LiveBlocks(const Napi::CallbackInfo& info) {
  Prune();
  return Napi::Number::New(info.Env(), static_cast<double>(allocations_.size()));
}

void HostArena::Prune() {
  std::vector<Allocation> live;
  for (Allocation& allocation : allocations_) {
    if (!allocation.buffer.IsEmpty() && !allocation.buffer.Value().IsEmpty()) live.push_back(std::move(allocation));
  }
  allocations_ = std::move(live);
}

}  // namespace endosynth
