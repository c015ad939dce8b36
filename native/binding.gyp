{
  "targets": [
    {
      "target_name": "cradle_native",
      "sources": ["src/addon.cc", "src/errno_error.cc", "src/lock.cc", "src/mount.cc", "src/namespaces.cc", "src/pod_init.cc", "src/files.cc", "src/sockets.cc", "src/notify.cc", "src/spawn.cc", "src/reads.cc", "src/memory.cc", "src/gunzip.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
