// What this binary was built with. The build files define ENDOSYNTH_WITH_CUDA when a CUDA toolkit
// was found and ENDOSYNTH_WITH_TENSORRT when TensorRT headers were given; every CUDA or TensorRT
// line is guarded by them so that the same source list builds a working (if reduced) addon on any
// machine, and installing the package never fails for lack of a GPU toolchain.
#pragma once

#ifndef ENDOSYNTH_WITH_CUDA
#define ENDOSYNTH_WITH_CUDA 0
#endif

#ifndef ENDOSYNTH_WITH_TENSORRT
#define ENDOSYNTH_WITH_TENSORRT 0
#endif

#if ENDOSYNTH_WITH_TENSORRT && !ENDOSYNTH_WITH_CUDA
#error "TensorRT support needs the CUDA toolkit: the build files must not define ENDOSYNTH_WITH_TENSORRT without ENDOSYNTH_WITH_CUDA"
#endif
