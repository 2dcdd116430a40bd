{
  # barbell_native.node: the native CPU backend (src/backends/native-cpu).
  # One binary for every CPU of an architecture: the addon and the scalar kernels use the baseline
  # flags; each SIMD path is a static library compiled with its own -m flags and is only called
  # after CPUID/XGETBV said the CPU and the OS support it (native/cpu/cpu_features.cc).
  # -ffp-contract=off everywhere: the scaled integer kernels must round like the JS reference.
  "variables": {
    "barbell_cflags": ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-Wall", "-Wno-unused-function", "-Wno-maybe-uninitialized"],
    "barbell_avx2": ["-mavx2", "-mfma", "-mf16c", "-mpopcnt"],
    "barbell_avx512": ["-mavx2", "-mfma", "-mf16c", "-mpopcnt", "-mavx512f", "-mavx512bw", "-mavx512vl"]
  },
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "<@(barbell_cflags)"],
    "cflags_cc!": ["-std=gnu++17", "-std=gnu++20", "-std=c++20", "-O2", "-O0"],
    "xcode_settings": {
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["<@(barbell_cflags)"],
      "GCC_OPTIMIZATION_LEVEL": "3"
    },
    "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/fp:precise"] } },
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
  },
  "targets": [
    {
      "target_name": "barbell_native",
      "sources": [
        "native/cpu/addon.cc",
        "native/cpu/block.cc",
        "native/cpu/cpu_features.cc",
        "native/cpu/executor.cc",
        "native/cpu/float_kernels.cc",
        "native/cpu/kernels_scalar.cc",
        "native/cpu/kquant.cc",
        "native/cpu/kv_cache.cc",
        "native/cpu/layers.cc",
        "native/cpu/load.cc",
        "native/cpu/probe.cc",
        "native/cpu/thread_pool.cc",
        "native/cpu/train_kernels.cc",
        "native/cpu/tq1.cc"
      ],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["barbell_avx2", "barbell_avx512bw", "barbell_avx512vnni"] }],
        ["target_arch=='arm64'", { "sources": ["native/cpu/kernels_neon.cc"] }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "barbell_avx2",
          "type": "static_library",
          "sources": ["native/cpu/kernels_avx2.cc", "native/cpu/kquant_avx2.cc", "native/cpu/load_avx2.cc"],
          "cflags_cc": ["<@(barbell_avx2)"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(barbell_avx2)"] },
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX2"] } }
        },
        {
          "target_name": "barbell_avx512bw",
          "type": "static_library",
          "sources": ["native/cpu/kernels_avx512bw.cc", "native/cpu/load_avx512.cc"],
          "cflags_cc": ["<@(barbell_avx512)"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(barbell_avx512)"] },
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX512"] } }
        },
        {
          "target_name": "barbell_avx512vnni",
          "type": "static_library",
          "sources": ["native/cpu/kernels_avx512vnni.cc", "native/cpu/kquant_avx512vnni.cc"],
          "cflags_cc": ["<@(barbell_avx512)", "-mavx512vnni"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["<@(barbell_avx512)", "-mavx512vnni"] },
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX512"] } }
        }
      ]
    }]
  ]
}
