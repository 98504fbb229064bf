// Per-environment state of the addon (one per main thread or worker thread that loads it), kept
// with Napi::Env::SetInstanceData so the addon also works inside worker_threads.
#pragma once

#include <napi.h>

namespace endosynth {

struct AddonData {
  Napi::FunctionReference engine_constructor;
  Napi::FunctionReference host_arena_constructor;

  static AddonData& Of(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }
};

}  // namespace endosynth
