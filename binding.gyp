{
  # Optional batch AES-256-GCM addon (see native/tseal_gcm.cc). It links no libssl: the EVP
  # symbols resolve from the node binary at load time, and the OpenSSL headers are node's own
  # (<nodedir>/include/node/openssl, on node-gyp's default include path).
  "targets": [
    {
      "target_name": "tseal_gcm",
      "sources": ["native/tseal_gcm.cc", "native/tseal_fs.cc", "native/tseal_prim.cc"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-O2", "-fvisibility=hidden"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O2", "-fvisibility=hidden"] }
    }
  ]
}
