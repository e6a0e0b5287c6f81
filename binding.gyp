{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["native/peercred.cc", "native/sock-diag.cc", "native/peer-binding.cc", "native/peer-relay.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"],
      "conditions": [["OS!='linux'", {"type": "none", "sources": []}]]
    }
  ]
}
