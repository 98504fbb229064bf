// status(): what the addon was built with and what it finds on this machine, as structured data.
// lib/backends/tensorrt.ts turns it into the one-sentence reason users see.
#pragma once

#include <napi.h>

namespace endosynth {

Napi::Value StatusJs(const Napi::CallbackInfo& info);

}  // namespace endosynth
