# node-gyp build of the native addon: the build prebuildify runs (`npm run prebuild`) and the one
# `npm run build:native` and the install script use. CMakeLists.txt (cmake-js) builds the same
# addon for CMake-based toolchains and IDEs. Both take their sources from native/sources.json and
# find the CUDA toolkit and TensorRT headers with native/locate_toolkits.cjs, so they cannot drift
# apart. See docs/native.md.
{
  "variables": {
    "cuda_root%": "<!(node native/locate_toolkits.cjs cuda)",
    "cuda_lib%": "<!(node native/locate_toolkits.cjs cuda-lib)",
    "tensorrt_include%": "<!(node native/locate_toolkits.cjs tensorrt)",
    "node_addon_api%": "<!(node -p \"require('node:path').dirname(require.resolve('node-addon-api/napi.h'))\")",
    "werror%": "<!(node -p \"process.env.ENDOSYNTH_WERROR === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "endosynth",
      "sources": ["<!@(node -p \"require('./native/sources.json').sources.join(' ')\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-fexceptions", "-frtti", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra", "-isystem", "<(node_addon_api)"],
      "ldflags": ["-Wl,--exclude-libs,ALL"],
      "conditions": [
        ["cuda_root!=''", {
          "defines": ["ENDOSYNTH_WITH_CUDA=1"],
          "cflags_cc": ["-isystem", "<(cuda_root)/include"],
          "libraries": ["<(cuda_lib)/libcudart_static.a", "-ldl", "-lpthread", "-lrt"]
        }],
        ["cuda_root!='' and tensorrt_include!=''", {
          "defines": ["ENDOSYNTH_WITH_TENSORRT=1"],
          "cflags_cc": ["-isystem", "<(tensorrt_include)"]
        }],
        ["werror==1", {
          "cflags_cc": ["-Werror"]
        }]
      ]
    }
  ]
}
