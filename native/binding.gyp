{
  "target_defaults": {
    "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
    "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
  },
  "targets": [
    {
      "target_name": "threefs_crc32c",
      "sources": ["src/crc32c.cc", "src/crc32c_addon.cc"]
    },
    {
      "target_name": "threefs_chunkio",
      "sources": [
        "src/crc32c.cc",
        "src/chunkio/aligned_buffer.cc",
        "src/chunkio/crc32c_combine.cc",
        "src/chunkio/io_batch.cc",
        "src/chunkio/regions.cc",
        "src/sealed_memfd.cc",
        "src/chunkio/thread_backend.cc",
        "src/chunkio/uring_backend.cc",
        "src/chunkio/chunkio_addon.cc",
        "src/payload_pool.cc"
      ],
      "cflags_cc": ["<!@(pkg-config --cflags liburing)"],
      "libraries": ["<!@(pkg-config --libs liburing)"]
    },
    {
      "target_name": "threefs_transport",
      "sources": ["src/crc32c.cc", "src/frame_connection.cc", "src/payload_pool.cc", "src/transport_addon.cc"]
    },
    {
      "target_name": "threefs_fuse",
      "sources": ["src/fuse/fuse_bridge.cc", "src/fuse/fuse_addon.cc", "src/fuse/write_slabs.cc", "src/fuse/unflushed_writes.cc"],
      "cflags_cc": ["<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    },
    {
      "target_name": "threefs_shuffle",
      "sources": ["src/shuffle_addon.cc"]
    },
    {
      "target_name": "threefs_usrbio",
      "sources": ["src/sealed_memfd.cc", "src/usrbio/rings.cc", "src/usrbio/usrbio_addon.cc"]
    }
  ]
}
