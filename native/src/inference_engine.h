// JS class `InferenceEngine`: one loaded engine and its pool of slots. `run(slot, input, output)`
// queues a frame on a slot's thread and returns a Promise of the timings; completions come back
// to the JS thread through one thread-safe function. `dispose()` lets queued frames finish, then
// frees every GPU resource on a worker thread and resolves; the destructor is only the backstop
// for an engine that was never disposed.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "host_memory.h"
#include "native_error.h"
#include "slot_executor.h"

namespace endosynth {

// One frame in flight. Created and settled on the JS thread; its slot thread only reads the
// request and writes the outcome.
struct Job {
  SlotRequest request;
  SlotTimings timings;
  std::optional<NativeFailure> failure;
  // JS-thread only:
  std::uint32_t slot = 0;
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Value> input_ref;   // keeps the input buffer alive during the DMA
  Napi::Reference<Napi::Value> output_ref;  // keeps the output buffer alive
  Napi::ObjectReference owner_ref;          // keeps the engine alive while the frame runs
  HostLease input_lease;
  HostLease output_lease;

  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// A slot's thread: runs one job at a time and hands each finished job to `complete`.
class SlotWorker {
 public:
  SlotWorker(std::unique_ptr<SlotExecutor> executor, std::function<void(Job*)> complete);
  ~SlotWorker();
  SlotWorker(const SlotWorker&) = delete;
  SlotWorker& operator=(const SlotWorker&) = delete;

  void Submit(Job* job);
  // Finishes the queued job, then stops the thread, which destroys the executor (freeing its GPU
  // memory) before it exits.
  void Shutdown();

 private:
  void Loop();

  std::unique_ptr<SlotExecutor> executor_;
  std::function<void(Job*)> complete_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Job* pending_ = nullptr;
  bool stopping_ = false;
  std::thread thread_;
};

class InferenceEngine;

// The part of an engine that worker threads touch, shared so that neither a disposing worker nor
// a slot thread depends on the JS object staying alive.
struct EngineCore {
  EngineGeometry geometry;
  std::string description;
  bool graphs = false;
  bool pinned_staging = false;
  std::vector<std::unique_ptr<SlotWorker>> workers;
  // Set (on the JS thread) once Node has destroyed the completion thread-safe function: at
  // environment teardown Node destroys it on its own, before the engine's finalizer runs, and a
  // release after that would touch freed memory.
  bool completion_finalized = false;
  // Stops every slot thread; idempotent, and returns only once they are all gone, whichever thread
  // calls it (the dispose worker and the completion finalizer may both do so at teardown).
  void Shutdown();

 private:
  std::mutex shutdown_mutex_;
};

class InferenceEngine : public Napi::ObjectWrap<InferenceEngine> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // Only called by NewInstance: JS cannot construct engines directly.
  explicit InferenceEngine(const Napi::CallbackInfo& info);
  ~InferenceEngine() override;

  // Wraps a loaded engine in a new JS InferenceEngine.
  static Napi::Object NewInstance(Napi::Env env, std::unique_ptr<LoadedEngine> loaded);

 private:
  friend class DisposeWorker;

  static void DeliverCompletion(Napi::Env env, Napi::Function, InferenceEngine* engine, Job* job);
  using Completion = Napi::TypedThreadSafeFunction<InferenceEngine, Job, &InferenceEngine::DeliverCompletion>;

  void Settle(Napi::Env env, Job* job);

  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value BusySlots(const Napi::CallbackInfo& info);

  std::shared_ptr<EngineCore> core_;
  Completion completion_;
  std::vector<bool> busy_;
  std::uint32_t in_flight_ = 0;
  bool disposed_ = false;
  std::vector<Napi::Promise::Deferred> dispose_waiters_;
  bool dispose_done_ = false;
};

// Runs `load` on a worker thread and resolves with a new InferenceEngine.
class EngineLoadWorker : public Napi::AsyncWorker {
 public:
  EngineLoadWorker(Napi::Env env, std::function<std::unique_ptr<LoadedEngine>()> load, Napi::Value keep_alive);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  std::function<std::unique_ptr<LoadedEngine>()> load_;
  Napi::Reference<Napi::Value> keep_alive_;
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<LoadedEngine> loaded_;
  std::optional<NativeFailure> failure_;
};

}  // namespace endosynth
