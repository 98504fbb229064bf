// Host memory handed to JavaScript as external ArrayBuffers: page-locked (pinned) on CUDA builds,
// so a caller decodes a frame straight into it and the GPU reads it by DMA with no staging copy.
//
// Ownership: a HostBlock is shared by the HostArena that made it and by its ArrayBuffer's
// finalizer. A session frees its blocks deterministically on dispose by first detaching their
// ArrayBuffers (JS can no longer reach the memory) and then freeing; an inference that still
// reads or writes a block holds a lease, and the memory is released when the last lease ends,
// never under a running DMA.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace endosynth {

class HostBlock {
 public:
  // `pinned` memory comes from cudaHostAlloc; otherwise from the C heap (builds without CUDA, tests).
  static std::shared_ptr<HostBlock> Allocate(std::size_t bytes, bool pinned);
  ~HostBlock();
  HostBlock(const HostBlock&) = delete;
  HostBlock& operator=(const HostBlock&) = delete;

  void* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool pinned() const { return pinned_; }

  // Takes a lease (false once a free was requested).
  bool Acquire();
  // Ends a lease; frees the memory if a free was requested and this was the last lease.
  void Release();
  // Frees the memory now, or when the last lease ends.
  void RequestFree();

 private:
  HostBlock(void* data, std::size_t bytes, bool pinned);
  void FreeMemory();

  std::mutex mutex_;
  void* data_;
  std::size_t size_;
  bool pinned_;
  int leases_ = 0;
  bool free_requested_ = false;
  bool freed_ = false;
};

// A lease on the block that holds a byte range (empty when no live block holds it): while it
// exists the range stays allocated.
class HostLease {
 public:
  HostLease() = default;
  explicit HostLease(std::shared_ptr<HostBlock> block) : block_(std::move(block)) {}
  ~HostLease();
  HostLease(HostLease&& other) noexcept = default;
  HostLease& operator=(HostLease&& other) noexcept;
  HostLease(const HostLease&) = delete;
  HostLease& operator=(const HostLease&) = delete;

  explicit operator bool() const { return block_ != nullptr; }
  bool pinned() const { return block_ && block_->pinned(); }

 private:
  std::shared_ptr<HostBlock> block_;
};

// Every live block, by address, so an inference can tell whether the caller's buffer is one of
// ours (read it directly) or ordinary memory (copy it through pinned staging first).
class HostBlockRegistry {
 public:
  static HostBlockRegistry& Instance();
  void Add(const std::shared_ptr<HostBlock>& block);
  void Remove(const HostBlock* block);
  // A lease on the live block containing [data, data + bytes), or an empty lease.
  HostLease Lease(const void* data, std::size_t bytes);

 private:
  std::mutex mutex_;
  std::map<std::uintptr_t, std::weak_ptr<HostBlock>> blocks_;
};

// JS class `HostArena`: allocates host blocks as ArrayBuffers for one session and frees them all
// on dispose(). `allocate(bytes)` returns null where external ArrayBuffers are forbidden
// (Electron's V8 sandbox); the caller then uses ordinary memory and each run copies once.
class HostArena : public Napi::ObjectWrap<HostArena> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  explicit HostArena(const Napi::CallbackInfo& info);
  ~HostArena() override;

 private:
  struct Allocation {
    std::shared_ptr<HostBlock> block;
    Napi::Reference<Napi::ArrayBuffer> buffer;  // weak: the arena must not keep buffers alive
  };

  Napi::Value Allocate(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsPinned(const Napi::CallbackInfo& info);
  Napi::Value LiveBlocks(const Napi::CallbackInfo& info);
  void Prune();

  bool pinned_ = true;
  bool external_buffers_ = true;
  bool disposed_ = false;
  std::vector<Allocation> allocations_;
};

}  // namespace endosynth
