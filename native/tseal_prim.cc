// One-shot primitives for the key and header work of every seal and open: HMAC, SHA-256, one
// AES-256-GCM message, random bytes, a constant-time compare and X25519. They call the OpenSSL
// inside the node binary, the one node:crypto wraps, with the same functions node:crypto calls
// for them; they exist so that a short command need not load node:crypto at all (41 of Node
// 24's internal modules and its stream stack: ~6 ms of a 1 KiB seal's CPU there, ~2.6 ms on
// Node 20; issue 11).
// src/format/primitives.ts uses them when the addon loaded and node:crypto otherwise; the tests
// hold each one to node:crypto and to Wycheproof's vectors.
//
//   hmac(bits, key, data) -> Buffer: HMAC-SHA-256 (bits 256) or HMAC-SHA-512 (bits 512)
//   sha256(data) -> Buffer(32)
//   gcmSeal(key, nonce, aad, plaintext) -> Buffer(ciphertext || 16-byte tag), AES-256-GCM (or
//             AES-128-GCM for a 16-byte key: HPKE's RFC 9180 test vectors use it)
//   gcmOpen(key, nonce, aad, sealed) -> Buffer(plaintext), or null when the tag does not verify
//             (the output written so far is wiped first). sealed is ciphertext || tag.
//   randomFill(buf) -> undefined: buf filled from OpenSSL's DRBG (RAND_bytes, as randomBytes)
//   equal(a, b) -> boolean: CRYPTO_memcmp over equal lengths; false when the lengths differ
//   x25519(privateKey, publicKey) -> Buffer(32): the X25519 shared secret (RFC 7748), or null
//             when OpenSSL refuses it (an all-zero result: a low-order public key, §6.1)
//   x25519PublicKey(privateKey) -> Buffer(32): the public key of a 32-byte private key
// key: 32 (or 16) bytes, nonce: 12 bytes; every argument a Uint8Array, else TypeError /
// RangeError.
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>

#include "tseal_napi.h"

namespace {

constexpr size_t kPrimNonceSize = 12;
constexpr size_t kPrimTagSize = 16;
// One EVP update takes an int length; larger inputs go through in pieces of this size.
constexpr size_t kPiece = 1u << 30;
// HMAC keys stand in for a NULL pointer when empty (an empty Uint8Array may have no memory).
const uint8_t kNoKey[1] = {0};

bool Args(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  if (argc != want) return Throw(env, false, "wrong number of arguments");
  return true;
}

// A Buffer of `length` bytes; its memory in *data.
napi_value NewBuffer(napi_env env, size_t length, uint8_t** data) {
  void* p = nullptr;
  napi_value out = nullptr;
  if (napi_create_buffer(env, length, &p, &out) != napi_ok) return nullptr;
  *data = static_cast<uint8_t*>(p);
  return out;
}

// A refused result: the `n` bytes written so far at `out` wiped, and JS null returned.
napi_value WipedNull(napi_env env, uint8_t* out, size_t n) {
  OPENSSL_cleanse(out, n);
  napi_value null = nullptr;
  napi_get_null(env, &null);
  return null;
}

// Feeds `in` (to `out`, or as AAD when out is null) through EVP_CipherUpdate in int-sized pieces.
bool Update(EVP_CIPHER_CTX* ctx, uint8_t* out, const uint8_t* in, size_t n) {
  for (size_t done = 0; done < n;) {
    const size_t piece = n - done < kPiece ? n - done : kPiece;
    int got = 0;
    if (EVP_CipherUpdate(ctx, out ? out + done : nullptr, &got, in + done,
                         static_cast<int>(piece)) != 1 ||
        (out && static_cast<size_t>(got) != piece)) {
      return false;
    }
    done += piece;
  }
  return true;
}

// Sets up ctx for AES-GCM (256 or 128 by the key's size) under key/nonce, encrypting or
// decrypting, and feeds the AAD.
bool Start(EVP_CIPHER_CTX* ctx, int encrypt, const Bytes& key, const Bytes& nonce,
           const Bytes& aad) {
  return ctx != nullptr &&
         EVP_CipherInit_ex(ctx, key.length == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm(), nullptr,
                           nullptr, nullptr, encrypt) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, kPrimNonceSize, nullptr) == 1 &&
         EVP_CipherInit_ex(ctx, nullptr, nullptr, key.data, nonce.data, encrypt) == 1 &&
         Update(ctx, nullptr, aad.data, aad.length);
}

napi_value Hmac(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  int32_t bits = 0;
  if (napi_get_value_int32(env, argv[0], &bits) != napi_ok || (bits != 256 && bits != 512)) {
    return ThrowValue(env, false, "hmac: bits must be 256 or 512");
  }
  Bytes key, data;
  if (!GetBytes(env, argv[1], "key", &key) || !GetBytes(env, argv[2], "data", &data)) {
    return nullptr;
  }
  if (key.length > INT_MAX) return ThrowValue(env, true, "hmac: key too long");
  const EVP_MD* md = bits == 256 ? EVP_sha256() : EVP_sha512();
  uint8_t* out = nullptr;
  napi_value result = NewBuffer(env, bits / 8, &out);
  if (result == nullptr) return nullptr;
  unsigned int outLength = 0;
  const uint8_t* k = key.length == 0 ? kNoKey : key.data;
  const uint8_t* d = data.length == 0 ? kNoKey : data.data;
  if (HMAC(md, k, static_cast<int>(key.length), d, data.length, out, &outLength) == nullptr ||
      outLength != static_cast<unsigned int>(bits / 8)) {
    OPENSSL_cleanse(out, bits / 8);
    ERR_clear_error();
    return ThrowOpenSsl(env, "HMAC failed");
  }
  return result;
}

napi_value Sha256(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  Bytes data;
  if (!GetBytes(env, argv[0], "data", &data)) return nullptr;
  uint8_t* out = nullptr;
  napi_value result = NewBuffer(env, 32, &out);
  if (result == nullptr) return nullptr;
  unsigned int outLength = 0;
  const uint8_t* d = data.length == 0 ? kNoKey : data.data;
  if (EVP_Digest(d, data.length, out, &outLength, EVP_sha256(), nullptr) != 1 ||
      outLength != 32) {
    ERR_clear_error();
    return ThrowOpenSsl(env, "SHA-256 failed");
  }
  return result;
}

// gcmSeal's and gcmOpen's four arguments: key, nonce, aad and the message, named `what`.
bool GcmArgs(napi_env env, napi_callback_info info, const char* what, Bytes* key, Bytes* nonce,
             Bytes* aad, Bytes* message) {
  napi_value argv[4];
  if (!Args(env, info, 4, argv)) return false;
  if (!GetBytes(env, argv[0], "key", key) || !GetBytes(env, argv[1], "nonce", nonce)) return false;
  if (key->length != 32 && key->length != 16) {
    return Throw(env, true, "key must be 32 (or 16) bytes");
  }
  if (nonce->length != kPrimNonceSize) return Throw(env, true, "nonce must be 12 bytes");
  return GetBytes(env, argv[2], "aad", aad) && GetBytes(env, argv[3], what, message);
}

napi_value GcmSeal(napi_env env, napi_callback_info info) {
  Bytes key, nonce, aad, plaintext;
  if (!GcmArgs(env, info, "plaintext", &key, &nonce, &aad, &plaintext)) return nullptr;
  uint8_t* out = nullptr;
  napi_value result = NewBuffer(env, plaintext.length + kPrimTagSize, &out);
  if (result == nullptr) return nullptr;
  Ctx c;
  int fin = 0;
  if (!Start(c.ctx, 1, key, nonce, aad) || !Update(c.ctx, out, plaintext.data, plaintext.length) ||
      EVP_CipherFinal_ex(c.ctx, out + plaintext.length, &fin) != 1 || fin != 0 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kPrimTagSize, out + plaintext.length) != 1) {
    OPENSSL_cleanse(out, plaintext.length + kPrimTagSize);
    return ThrowOpenSsl(env, "AES-256-GCM seal failed");
  }
  return result;
}

napi_value GcmOpen(napi_env env, napi_callback_info info) {
  Bytes key, nonce, aad, sealed;
  if (!GcmArgs(env, info, "sealed", &key, &nonce, &aad, &sealed)) return nullptr;
  if (sealed.length < kPrimTagSize) return ThrowValue(env, true, "sealed is shorter than its tag");
  const size_t n = sealed.length - kPrimTagSize;
  uint8_t tag[kPrimTagSize];
  std::memcpy(tag, sealed.data + n, kPrimTagSize);
  uint8_t* out = nullptr;
  napi_value result = NewBuffer(env, n, &out);
  if (result == nullptr) return nullptr;
  Ctx c;
  uint8_t none[1];
  int fin = 0;
  const bool ok = Start(c.ctx, 0, key, nonce, aad) && Update(c.ctx, out, sealed.data, n) &&
                  EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kPrimTagSize, tag) == 1 &&
                  EVP_CipherFinal_ex(c.ctx, none, &fin) == 1 && fin == 0;
  return ok ? result : WipedNull(env, out, n);
}

napi_value RandomFill(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  Bytes buf;
  if (!GetBytes(env, argv[0], "buf", &buf)) return nullptr;
  for (size_t done = 0; done < buf.length;) {
    const size_t piece = buf.length - done < kPiece ? buf.length - done : kPiece;
    if (RAND_bytes(buf.data + done, static_cast<int>(piece)) != 1) {
      OPENSSL_cleanse(buf.data, buf.length);
      ERR_clear_error();
      return ThrowOpenSsl(env, "the random generator failed");
    }
    done += piece;
  }
  return nullptr;
}

napi_value Equal(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Bytes a, b;
  if (!GetBytes(env, argv[0], "a", &a) || !GetBytes(env, argv[1], "b", &b)) return nullptr;
  const bool same = a.length == b.length &&
                    (a.length == 0 || CRYPTO_memcmp(a.data, b.data, a.length) == 0);
  napi_value out = nullptr;
  napi_get_boolean(env, same, &out);
  return out;
}

// An X25519 key from 32 raw bytes (private or public), freed with the object.
struct X25519Key {
  EVP_PKEY* pkey = nullptr;
  X25519Key(const Bytes& raw, bool isPrivate) {
    pkey = isPrivate ? EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, raw.data, 32)
                     : EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, raw.data, 32);
  }
  ~X25519Key() {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
  }
};

bool GetX25519Bytes(napi_env env, napi_value v, const char* name, Bytes* out) {
  if (!GetBytes(env, v, name, out)) return false;
  if (out->length != 32) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s must be 32 bytes", name);
    return Throw(env, true, msg);
  }
  return true;
}

napi_value X25519(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, 2, argv)) return nullptr;
  Bytes sk, pk;
  if (!GetX25519Bytes(env, argv[0], "privateKey", &sk) ||
      !GetX25519Bytes(env, argv[1], "publicKey", &pk)) {
    return nullptr;
  }
  X25519Key mine(sk, true), theirs(pk, false);
  if (mine.pkey == nullptr || theirs.pkey == nullptr) return ThrowOpenSsl(env, "X25519 key");
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(mine.pkey, nullptr);
  uint8_t* out = nullptr;
  napi_value result = NewBuffer(env, 32, &out);
  size_t length = 32;
  const bool ok = ctx != nullptr && result != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
                  EVP_PKEY_derive_set_peer(ctx, theirs.pkey) == 1 &&
                  EVP_PKEY_derive(ctx, out, &length) == 1 && length == 32;
  EVP_PKEY_CTX_free(ctx);
  if (result == nullptr) return nullptr;
  return ok ? result : WipedNull(env, out, 32);
}

napi_value X25519PublicKey(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, 1, argv)) return nullptr;
  Bytes sk;
  if (!GetX25519Bytes(env, argv[0], "privateKey", &sk)) return nullptr;
  X25519Key key(sk, true);
  uint8_t* out = nullptr;
  napi_value result = NewBuffer(env, 32, &out);
  if (result == nullptr) return nullptr;
  size_t length = 32;
  if (key.pkey == nullptr || EVP_PKEY_get_raw_public_key(key.pkey, out, &length) != 1 ||
      length != 32) {
    return ThrowOpenSsl(env, "X25519 public key");
  }
  return result;
}

}  // namespace

// Adds the functions above to the addon's exports (tseal_gcm.cc's module init).
bool TsealDefinePrimitives(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      Method("hmac", Hmac),
      Method("sha256", Sha256),
      Method("gcmSeal", GcmSeal),
      Method("gcmOpen", GcmOpen),
      Method("randomFill", RandomFill),
      Method("equal", Equal),
      Method("x25519", X25519),
      Method("x25519PublicKey", X25519PublicKey),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
