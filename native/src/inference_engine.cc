#include "inference_engine.h"

#include <exception>
#include <string>
#include <utility>

#include "addon_data.h"
#include "typed_array.h"

namespace endosynth {

SlotWorker::SlotWorker(std::unique_ptr<SlotExecutor> executor, std::function<void(Job*)> complete)
    : executor_(std::move(executor)), complete_(std::move(complete)), thread_([this] { Loop(); }) {}

SlotWorker::~SlotWorker() { Shutdown(); }

void SlotWorker::Submit(Job* job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ = job;
  }
  wake_.notify_one();
}

void SlotWorker::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void SlotWorker::Loop() {
  bool attached = false;
  for (;;) {
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return pending_ != nullptr || stopping_; });
      if (pending_ == nullptr) break;
      job = pending_;
      pending_ = nullptr;
    }
    try {
      if (!attached) {
        executor_->AttachThread();
        attached = true;
      }
      job->timings = executor_->Run(job->request);
    } catch (const NativeFailure& failure) {
      job->failure = failure;
    } catch (const std::exception& error) {
      job->failure = NativeFailure(FailureKind::kInternal, "run", error.what());
    }
    complete_(job);
  }
  // The executor is destroyed on its own thread, where its CUDA device is current.
  try {
    if (!attached) executor_->AttachThread();
  } catch (const std::exception&) {
    // Freeing still works with another device current (unified addressing); best effort.
  }
  executor_.reset();
}

void EngineCore::Shutdown() {
  std::lock_guard<std::mutex> lock(shutdown_mutex_);
  for (auto& worker : workers) worker->Shutdown();
  workers.clear();
}

namespace {

// Frees the engine's GPU resources off the JS thread (destroying TensorRT objects and freeing
// device memory synchronizes with the GPU), then settles every dispose() caller.
class EngineDisposeWorker : public Napi::AsyncWorker {
 public:
  EngineDisposeWorker(Napi::Object engine, std::shared_ptr<EngineCore> core, std::function<void(Napi::Env)> done)
      : Napi::AsyncWorker(engine.Env(), "endosynth:dispose"), engine_(Napi::Persistent(engine)), core_(std::move(core)), done_(std::move(done)) {}

 protected:
  void Execute() override { core_->Shutdown(); }
  void OnOK() override { done_(Env()); }

 private:
  Napi::ObjectReference engine_;  // `done` touches the engine object, which must outlive the worker
  std::shared_ptr<EngineCore> core_;
  std::function<void(Napi::Env)> done_;
};

std::uint32_t SlotIndex(const Napi::Value& value, std::size_t slots) {
  if (!value.IsNumber()) throw NativeFailure(FailureKind::kInput, "InferenceEngine.run", "slot must be a number");
  const double slot = value.As<Napi::Number>().DoubleValue();
  if (!(slot >= 0) || slot >= static_cast<double>(slots) || slot != static_cast<double>(static_cast<std::uint32_t>(slot))) {
    throw NativeFailure(FailureKind::kInput, "InferenceEngine.run", "slot " + std::to_string(slot) + " is not one of the engine's " + std::to_string(slots) + " slots");
  }
  return static_cast<std::uint32_t>(slot);
}

// The bytes of a typed array argument, checked against the size the engine needs.
std::pair<void*, std::size_t> BufferOf(const Napi::Value& value, napi_typedarray_type type, std::size_t expected, const char* what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw NativeFailure(FailureKind::kInput, "InferenceEngine.run", std::string(what) + (type == napi_uint8_array ? " must be a Uint8Array" : " must be a Float32Array"));
  }
  Napi::TypedArray array = value.As<Napi::TypedArray>();
  if (array.ByteLength() != expected) {
    throw NativeFailure(FailureKind::kInput, "InferenceEngine.run", std::string(what) + " has " + std::to_string(array.ByteLength()) + " bytes but the engine needs " + std::to_string(expected));
  }
  std::uint8_t* bytes = TypedArrayBytes(array);
  return {bytes, array.ByteLength()};
}

Napi::Object TimingsObject(Napi::Env env, const SlotTimings& timings) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("h2dMs", timings.h2d_ms);
  object.Set("engineMs", timings.engine_ms);
  object.Set("d2hMs", timings.d2h_ms);
  object.Set("hostCopyMs", timings.host_copy_ms);
  object.Set("graph", timings.graph);
  return object;
}

}  // namespace

Napi::Function InferenceEngine::DefineClass(Napi::Env env) {
  return ObjectWrap<InferenceEngine>::DefineClass(
      env, "InferenceEngine",
      {
          InstanceMethod<&InferenceEngine::Run>("run"),
          InstanceMethod<&InferenceEngine::Dispose>("dispose"),
          InstanceMethod<&InferenceEngine::Info>("info"),
          InstanceAccessor<&InferenceEngine::BusySlots>("busySlots"),
      });
}

Napi::Object InferenceEngine::NewInstance(Napi::Env env, std::unique_ptr<LoadedEngine> loaded) {
  // The constructor moves the engine out of `loaded`; if it is never reached (e.g. creating the
  // External fails), `loaded` still owns it and frees it here.
  return AddonData::Of(env).engine_constructor.New({Napi::External<std::unique_ptr<LoadedEngine>>::New(env, &loaded)});
}

InferenceEngine::InferenceEngine(const Napi::CallbackInfo& info) : ObjectWrap<InferenceEngine>(info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "InferenceEngine cannot be constructed from JavaScript; use loadEngine()");
  }
  std::unique_ptr<LoadedEngine> loaded = std::move(*info[0].As<Napi::External<std::unique_ptr<LoadedEngine>>>().Data());
  core_ = std::make_shared<EngineCore>();
  core_->geometry = loaded->geometry;
  core_->description = loaded->description;
  core_->graphs = loaded->graphs;
  core_->pinned_staging = loaded->pinned_staging;
  busy_.assign(loaded->slots.size(), false);

  // Node destroys the function after its last release, or on its own when the environment is torn
  // down (process exit, a worker thread ending) even while slot threads may still call it. Its
  // finalizer therefore stops the slot threads (Node's rule: no thread may use the function once
  // the finalizer returns) and records that it is gone, so the engine never releases it twice.
  auto finalizer_core = std::make_unique<std::shared_ptr<EngineCore>>(core_);
  completion_ = Completion::New(
      env, "endosynth:inference", 0, 1, this,
      [](Napi::Env, std::shared_ptr<EngineCore>* core, InferenceEngine*) {
        std::unique_ptr<std::shared_ptr<EngineCore>> owned(core);
        (*core)->completion_finalized = true;
        (*core)->Shutdown();
      },
      finalizer_core.get());
  finalizer_core.release();
  // Unreferenced while idle so that an engine alone never keeps the process alive; referenced
  // while frames are in flight so that their promises always settle.
  completion_.Unref(env);
  Completion completion = completion_;
  for (auto& slot : loaded->slots) {
    core_->workers.push_back(std::make_unique<SlotWorker>(std::move(slot), [completion](Job* job) mutable {
      // Fails only while the environment is torn down (the finalizer above is then waiting for this
      // thread): JS is gone, and the job's JS references cannot be freed off the JS thread, so it
      // is left to the process.
      completion.NonBlockingCall(job);
    }));
  }
}

InferenceEngine::~InferenceEngine() {
  // Backstop for an engine nobody disposed. No frame can be in flight (each holds a reference to
  // this object), so the slot threads are idle and stop at once. At environment teardown Node has
  // already destroyed the completion function by the time this runs.
  if (!disposed_) {
    core_->Shutdown();
    if (!core_->completion_finalized) completion_.Release();
  }
}

Napi::Value InferenceEngine::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (disposed_) throw NativeFailure(FailureKind::kDisposed, "InferenceEngine.run", "the TensorRT engine has been disposed");
    if (info.Length() != 3) throw NativeFailure(FailureKind::kInput, "InferenceEngine.run", "run(slot, input, output) takes 3 arguments");
    const std::uint32_t slot = SlotIndex(info[0], busy_.size());
    if (busy_[slot]) throw NativeFailure(FailureKind::kInput, "InferenceEngine.run", "slot " + std::to_string(slot) + " is already running a frame");
    auto [input, input_bytes] = BufferOf(info[1], napi_uint8_array, core_->geometry.InputBytes(), "input");
    auto [output, output_bytes] = BufferOf(info[2], napi_float32_array, core_->geometry.OutputBytes(), "output");

    auto job = std::make_unique<Job>(env);
    job->slot = slot;
    job->input_lease = HostBlockRegistry::Instance().Lease(input, input_bytes);
    job->output_lease = HostBlockRegistry::Instance().Lease(output, output_bytes);
    job->request = SlotRequest{static_cast<const std::uint8_t*>(input), static_cast<bool>(job->input_lease),
                               static_cast<float*>(output), static_cast<bool>(job->output_lease)};
    job->input_ref = Napi::Persistent(info[1]);
    job->output_ref = Napi::Persistent(info[2]);
    job->owner_ref = Napi::Persistent(Value());
    Napi::Promise promise = job->deferred.Promise();

    busy_[slot] = true;
    if (in_flight_++ == 0) completion_.Ref(env);
    core_->workers[slot]->Submit(job.release());
    return promise;
  } catch (const NativeFailure& failure) {
    throw ToJsError(env, failure);
  }
}

void InferenceEngine::DeliverCompletion(Napi::Env env, Napi::Function, InferenceEngine* engine, Job* job) {
  if (env == nullptr) {
    // The environment is being torn down: JS is gone, so only native resources are released.
    job->input_ref.SuppressDestruct();
    job->output_ref.SuppressDestruct();
    job->owner_ref.SuppressDestruct();
    delete job;
    return;
  }
  engine->Settle(env, job);
}

void InferenceEngine::Settle(Napi::Env env, Job* job) {
  std::unique_ptr<Job> owned(job);
  busy_[job->slot] = false;
  if (--in_flight_ == 0 && !dispose_done_) completion_.Unref(env);
  // Leases end before the promise settles: a caller that disposes as soon as its last frame
  // resolves must find every block free to release.
  job->input_lease = HostLease();
  job->output_lease = HostLease();
  if (job->failure) {
    job->deferred.Reject(ToJsError(env, *job->failure).Value());
  } else {
    job->deferred.Resolve(TimingsObject(env, job->timings));
  }
}

Napi::Value InferenceEngine::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = Napi::Promise::Deferred::New(env);
  Napi::Promise promise = deferred.Promise();
  if (dispose_done_) {
    deferred.Resolve(env.Undefined());
    return promise;
  }
  dispose_waiters_.push_back(deferred);
  if (disposed_) return promise;
  disposed_ = true;
  auto* worker = new EngineDisposeWorker(Value(), core_, [this](Napi::Env done_env) {
    dispose_done_ = true;
    if (!core_->completion_finalized) completion_.Release();
    for (auto& waiter : dispose_waiters_) waiter.Resolve(done_env.Undefined());
    dispose_waiters_.clear();
  });
  worker->Queue();
  return promise;
}

Napi::Value InferenceEngine::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object object = Napi::Object::New(env);
  object.Set("height", static_cast<double>(core_->geometry.height));
  object.Set("width", static_cast<double>(core_->geometry.width));
  object.Set("channels", static_cast<double>(core_->geometry.channels));
  object.Set("slots", static_cast<double>(busy_.size()));
  object.Set("description", core_->description);
  object.Set("graphs", core_->graphs);
  object.Set("pinnedStaging", core_->pinned_staging);
  object.Set("disposed", disposed_);
  return object;
}

Napi::Value InferenceEngine::BusySlots(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), in_flight_);
}

EngineLoadWorker::EngineLoadWorker(Napi::Env env, std::function<std::unique_ptr<LoadedEngine>()> load, Napi::Value keep_alive)
    : Napi::AsyncWorker(env, "endosynth:load-engine"),
      load_(std::move(load)),
      keep_alive_(Napi::Persistent(keep_alive)),
      deferred_(Napi::Promise::Deferred::New(env)) {}

void EngineLoadWorker::Execute() {
  try {
    loaded_ = load_();
  } catch (const NativeFailure& failure) {
    failure_ = failure;
    SetError(failure.what());
  } catch (const std::exception& error) {
    failure_ = NativeFailure(FailureKind::kInternal, "loadEngine", error.what());
    SetError(error.what());
  }
}

void EngineLoadWorker::OnOK() {
  Napi::Env env = Env();
  try {
    deferred_.Resolve(InferenceEngine::NewInstance(env, std::move(loaded_)));
  } catch (const Napi::Error& error) {
    deferred_.Reject(error.Value());
  }
}

void EngineLoadWorker::OnError(const Napi::Error& error) {
  if (failure_) {
    deferred_.Reject(ToJsError(Env(), *failure_).Value());
  } else {
    deferred_.Reject(error.Value());
  }
}

}  // namespace endosynth
