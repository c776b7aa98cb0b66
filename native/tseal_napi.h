// N-API helpers shared by the addon's source files (tseal_gcm.cc, tseal_prim.cc): reading a
// Uint8Array argument, throwing typed errors, and a cipher context that wipes its key schedule.
#ifndef TSEAL_NAPI_H_
#define TSEAL_NAPI_H_

#include <node_api.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>

namespace {

struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
  napi_value arraybuffer = nullptr;
  size_t byteOffset = 0;
};

// Throws (sets a pending JS exception) and returns false, so callers can `return nullptr`.
inline bool Throw(napi_env env, bool range, const char* msg) {
  if (range) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  }
  return false;
}

inline bool GetBytes(napi_env env, napi_value v, const char* name, Bytes* out) {
  bool is = false;
  char msg[128];
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
    snprintf(msg, sizeof msg, "%s must be a Uint8Array", name);
    return Throw(env, false, msg);
  }
  napi_typedarray_type type;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &out->length, &data, &out->arraybuffer,
                               &out->byteOffset) != napi_ok ||
      type != napi_uint8_array) {
    snprintf(msg, sizeof msg, "%s must be a Uint8Array", name);
    return Throw(env, false, msg);
  }
  out->data = static_cast<uint8_t*>(data);
  if (out->data == nullptr && out->length != 0) return Throw(env, false, "detached buffer");
  return true;
}

inline napi_value ThrowValue(napi_env env, bool range, const char* msg) {
  Throw(env, range, msg);
  return nullptr;
}

// Owns the cipher context for one call; the key schedule it holds is wiped by the free.
struct Ctx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~Ctx() {
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();  // leave node's OpenSSL error queue as we found it
  }
};

// One exported function of the addon, for napi_define_properties.
inline napi_property_descriptor Method(const char* name, napi_callback fn) {
  return {name, nullptr, fn, nullptr, nullptr, nullptr, napi_enumerable, nullptr};
}

inline napi_value ThrowOpenSsl(napi_env env, const char* what) {
  napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", what);
  return nullptr;
}

}  // namespace

#endif  // TSEAL_NAPI_H_
