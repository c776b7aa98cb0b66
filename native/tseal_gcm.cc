// Batch AES-256-GCM for TensorSeal's chunked payload, using the OpenSSL that the node binary
// itself exports (no system libssl is linked). It exists because node:crypto's cipher.update()
// allocates a fresh output buffer per call, which caps a thread at about half of what the same
// OpenSSL does in place; here one JS->C call seals or opens a whole batch of chunks straight
// into a caller-provided buffer.
//
// Construction (identical to src/format/chunked.ts): chunk k of a payload is
//   AES-256-GCM(key, nonce = baseNonce XOR be38(k), no AAD) -> ciphertext || 16-byte tag.
// Tag verification is OpenSSL's (EVP_DecryptFinal_ex); nothing is compared here.
//
// JS API (all lengths and offsets are byte counts; every one is validated before any access):
//   sealBatch(key, baseNonce, firstIndex, chunkCount, chunkSize,
//             src, srcOffset, plaintextLength, dst, dstOffset) -> bytes written
//   openBatch(key, baseNonce, firstIndex, chunkCount, chunkSize,
//             src, srcOffset, sealedLength, dst | null, dstOffset) -> plaintext bytes, or -1-k
//             for the first chunk k (absolute index) that failed authentication; that chunk's
//             output is wiped. dst === null verifies only.
//   sealInPlace(key, baseNonce, firstIndex, chunkCount, chunkSize, buf, offset, sealedLength)
//   openInPlace(key, baseNonce, firstIndex, chunkCount, chunkSize, buf, offset, sealedLength)
//             the same, in place over buf[offset, +sealedLength) in the sealed layout: chunk i
//             at offset + i * (chunkSize + 16). sealInPlace expects each chunk's plaintext there
//             and fills in the tags (returns sealedLength); openInPlace leaves each chunk's
//             plaintext there (returns plaintext bytes, or -1-k as openBatch).
// A batch holds chunkCount chunks: all full (chunkSize) except the last, which may be shorter or
// empty. src and dst must not overlap (in place, each chunk is en/decrypted onto itself, which
// OpenSSL allows). Violations throw TypeError / RangeError.
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr double kMaxChunks = 274877906944.0;  // 2^38: the nonce XOR covers 38 bits
constexpr double kMaxSafe = 9007199254740991.0;
constexpr size_t kMaxChunkSize = 1u << 30;  // one EVP update per chunk: must fit an int
constexpr size_t kScratch = 64 * 1024;      // verify-only decrypts into this, piece by piece

struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
  napi_value arraybuffer = nullptr;
  size_t byteOffset = 0;
};

// Throws (sets a pending JS exception) and returns false, so callers can `return nullptr`.
bool Throw(napi_env env, bool range, const char* msg) {
  if (range) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  }
  return false;
}

bool GetBytes(napi_env env, napi_value v, const char* name, Bytes* out) {
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

// A non-negative whole number no larger than `max`.
bool GetIndex(napi_env env, napi_value v, const char* name, double max, uint64_t* out) {
  char msg[128];
  napi_valuetype t;
  double d = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, v, &d) != napi_ok) {
    snprintf(msg, sizeof msg, "%s must be a number", name);
    return Throw(env, false, msg);
  }
  if (!(d >= 0) || d > max || std::floor(d) != d) {
    snprintf(msg, sizeof msg, "%s must be a whole number from 0 to %.0f", name, max);
    return Throw(env, true, msg);
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

struct Batch {
  Bytes key, base, src, dst;
  bool hasDst = false;
  bool inPlace = false;  // src === dst, both in the sealed layout (chunk i at i * (size + tag))
  uint64_t first = 0, count = 0, chunkSize = 0, srcOffset = 0, srcLength = 0, dstOffset = 0;
  uint64_t lastPlain = 0;  // plaintext length of the batch's final chunk
};

bool Overlaps(const uint8_t* a, uint64_t an, const uint8_t* b, uint64_t bn) {
  if (an == 0 || bn == 0) return false;
  uintptr_t a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + bn && b0 < a0 + an;
}

// Parses and validates the arguments: ten, or eight in place (no dst, dstOffset). `sealing`
// picks which side carries the tags; in place, the buffer is in the sealed layout both ways.
bool ParseBatch(napi_env env, napi_callback_info info, bool sealing, bool inPlace, Batch* b) {
  const size_t want = inPlace ? 8 : 10;
  size_t argc = 10;
  napi_value argv[10];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  if (argc != want) return Throw(env, false, inPlace ? "expected 8 arguments" : "expected 10 arguments");
  b->inPlace = inPlace;
  const bool srcTagged = !sealing || inPlace;
  if (!GetBytes(env, argv[0], "key", &b->key) || !GetBytes(env, argv[1], "baseNonce", &b->base))
    return false;
  if (b->key.length != kKeySize) return Throw(env, true, "key must be 32 bytes");
  if (b->base.length != kNonceSize) return Throw(env, true, "baseNonce must be 12 bytes");
  if (!GetIndex(env, argv[2], "firstIndex", kMaxChunks - 1, &b->first) ||
      !GetIndex(env, argv[3], "chunkCount", kMaxChunks, &b->count) ||
      !GetIndex(env, argv[4], "chunkSize", kMaxChunkSize, &b->chunkSize) ||
      !GetBytes(env, argv[5], "src", &b->src) ||
      !GetIndex(env, argv[6], "srcOffset", kMaxSafe, &b->srcOffset) ||
      !GetIndex(env, argv[7], srcTagged ? "sealedLength" : "plaintextLength", kMaxSafe,
                &b->srcLength))
    return false;
  if (inPlace) {
    b->hasDst = true;
    b->dst = b->src;
    b->dstOffset = b->srcOffset;
  }
  napi_valuetype dt;
  if (!inPlace) {
    if (napi_typeof(env, argv[8], &dt) != napi_ok) return false;
    b->hasDst = !(dt == napi_null && !sealing);
    if (b->hasDst && !GetBytes(env, argv[8], "dst", &b->dst)) return false;
    if (!GetIndex(env, argv[9], "dstOffset", kMaxSafe, &b->dstOffset)) return false;
  }

  if (b->count < 1) return Throw(env, true, "chunkCount must be at least 1");
  if (b->chunkSize < 1) return Throw(env, true, "chunkSize must be at least 1");
  if (b->first + b->count > static_cast<uint64_t>(kMaxChunks))
    return Throw(env, true, "chunk indices exceed the 2^38 chunk limit");
  // Every chunk but the last is full; the last holds 0..chunkSize plaintext bytes (and, when
  // opening, its tag). The size check comes first so the products below cannot overflow.
  const uint64_t stride = b->chunkSize + (srcTagged ? kTagSize : 0);
  if (b->count - 1 > b->srcLength / stride)
    return Throw(env, true, "length does not match chunkCount and chunkSize");
  const uint64_t fullPart = (b->count - 1) * stride + (srcTagged ? kTagSize : 0);
  if (b->srcLength < fullPart || b->srcLength - fullPart > b->chunkSize)
    return Throw(env, true, "length does not match chunkCount and chunkSize");
  b->lastPlain = b->srcLength - fullPart;
  if (b->srcOffset > b->src.length || b->srcLength > b->src.length - b->srcOffset)
    return Throw(env, true, "src range is out of bounds");
  if (b->hasDst && !inPlace) {
    const uint64_t outLength =
        sealing ? b->srcLength + b->count * kTagSize : b->srcLength - b->count * kTagSize;
    if (b->dstOffset > b->dst.length || outLength > b->dst.length - b->dstOffset)
      return Throw(env, true, "dst range is out of bounds");
    if (Overlaps(b->src.data + b->srcOffset, b->srcLength, b->dst.data + b->dstOffset, outLength))
      return Throw(env, true, "src and dst must not overlap");
  }
  return true;
}

void ChunkNonce(const uint8_t* base, uint64_t index, uint8_t out[kNonceSize]) {
  memcpy(out, base, kNonceSize);
  out[7] ^= static_cast<uint8_t>((index >> 32) & 0x3f);
  out[8] ^= static_cast<uint8_t>(index >> 24);
  out[9] ^= static_cast<uint8_t>(index >> 16);
  out[10] ^= static_cast<uint8_t>(index >> 8);
  out[11] ^= static_cast<uint8_t>(index);
}

// Owns the cipher context for one call; the key schedule it holds is wiped by the free.
struct Ctx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~Ctx() {
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();  // leave node's OpenSSL error queue as we found it
  }
};

napi_value ThrowOpenSsl(napi_env env, const char* what) {
  napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", what);
  return nullptr;
}

napi_value Number(napi_env env, double v) {
  napi_value out = nullptr;
  napi_create_double(env, v, &out);
  return out;
}

napi_value Seal(napi_env env, napi_callback_info info, bool inPlace) {
  Batch b;
  if (!ParseBatch(env, info, true, inPlace, &b)) return nullptr;
  Ctx c;
  if (c.ctx == nullptr ||
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, b.key.data, nullptr) != 1)
    return ThrowOpenSsl(env, "AES-256-GCM setup failed");
  const uint8_t* in = b.src.data + b.srcOffset;
  uint8_t* out = b.dst.data + b.dstOffset;
  uint8_t nonce[kNonceSize];
  for (uint64_t i = 0; i < b.count; i++) {
    const int n = static_cast<int>(i + 1 < b.count ? b.chunkSize : b.lastPlain);
    int got = 0, fin = 0;
    ChunkNonce(b.base.data, b.first + i, nonce);
    if (EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, nullptr, nonce) != 1 ||
        (n > 0 && EVP_EncryptUpdate(c.ctx, out, &got, in, n) != 1) || got != n ||
        EVP_EncryptFinal_ex(c.ctx, out + got, &fin) != 1 || fin != 0 ||
        EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, out + n) != 1) {
      OPENSSL_cleanse(nonce, sizeof nonce);
      return ThrowOpenSsl(env, "AES-256-GCM encryption failed");
    }
    in += n + (inPlace ? kTagSize : 0);
    out += n + kTagSize;
  }
  OPENSSL_cleanse(nonce, sizeof nonce);
  return Number(env, static_cast<double>(inPlace ? b.srcLength : b.srcLength + b.count * kTagSize));
}

napi_value Open(napi_env env, napi_callback_info info, bool inPlace) {
  Batch b;
  if (!ParseBatch(env, info, false, inPlace, &b)) return nullptr;
  Ctx c;
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, b.key.data, nullptr) != 1)
    return ThrowOpenSsl(env, "AES-256-GCM setup failed");
  alignas(64) static thread_local uint8_t scratch[kScratch];
  const uint8_t* in = b.src.data + b.srcOffset;
  uint8_t* out = b.hasDst ? b.dst.data + b.dstOffset : nullptr;
  uint8_t nonce[kNonceSize];
  double result = static_cast<double>(b.srcLength - b.count * kTagSize);
  for (uint64_t i = 0; i < b.count; i++) {
    const size_t n = i + 1 < b.count ? b.chunkSize : b.lastPlain;
    ChunkNonce(b.base.data, b.first + i, nonce);
    // SET_TAG takes a non-const pointer but only copies the 16 bytes in.
    bool ok = EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
              EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagSize,
                                  const_cast<uint8_t*>(in + n)) == 1;
    for (size_t q = 0; ok && q < n;) {
      const size_t piece = out != nullptr ? n : (n - q < kScratch ? n - q : kScratch);
      int got = 0;
      uint8_t* to = out != nullptr ? out : scratch;
      ok = EVP_DecryptUpdate(c.ctx, to, &got, in + q, static_cast<int>(piece)) == 1 &&
           static_cast<size_t>(got) == piece;
      q += piece;
    }
    int fin = 0;
    uint8_t* finOut = out != nullptr ? out + n : scratch;
    if (!ok || EVP_DecryptFinal_ex(c.ctx, finOut, &fin) != 1 || fin != 0) {
      // Authentication failed (or OpenSSL refused): unauthenticated plaintext is wiped.
      if (out != nullptr) OPENSSL_cleanse(out, n);
      result = -1.0 - static_cast<double>(b.first + i);
      break;
    }
    in += n + kTagSize;
    if (out != nullptr) out += n + (inPlace ? kTagSize : 0);
  }
  if (!b.hasDst) OPENSSL_cleanse(scratch, sizeof scratch);
  OPENSSL_cleanse(nonce, sizeof nonce);
  return Number(env, result);
}

napi_value SealBatch(napi_env env, napi_callback_info info) { return Seal(env, info, false); }
napi_value SealInPlace(napi_env env, napi_callback_info info) { return Seal(env, info, true); }
napi_value OpenBatch(napi_env env, napi_callback_info info) { return Open(env, info, false); }
napi_value OpenInPlace(napi_env env, napi_callback_info info) { return Open(env, info, true); }

}  // namespace

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"sealBatch", nullptr, SealBatch, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"openBatch", nullptr, OpenBatch, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"sealInPlace", nullptr, SealInPlace, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"openInPlace", nullptr, OpenInPlace, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, 4, props) != napi_ok) return nullptr;
  return exports;
}
