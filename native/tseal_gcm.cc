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
//
//   mapFile(fd, offset, length) -> ArrayBuffer over a read-only mmap of the regular file fd's
//             bytes [offset, +length) (the mapping starts at the page below offset; the buffer
//             starts at offset). The file must be at least offset + length bytes long when it
//             is mapped (fstat), otherwise RangeError; not a regular file, or mmap failing,
//             throws an Error with code ERR_TSEAL_MAP. The mapping is unmapped by unmap(), or
//             when the buffer is garbage-collected.
//   unmap(arraybuffer) -> true; detaches the buffer first (its views read as length 0 from then
//             on), then munmaps. false if it was already unmapped/detached; TypeError for an
//             ArrayBuffer that mapFile did not make.
//   linkFd(fd, path) -> names an O_TMPFILE output (native/tseal_fs.cc).
//   sealBatchAsync(...sealBatch's ten arguments, callback)
//   openBatchAsync(...openBatch's ten arguments, callback)
//             the same work on a libuv pool thread; callback(error, result) on the JS thread.
//             Arguments are validated (and thrown) at the call; src and dst must then be left
//             alone until the callback.
//   setPipeSize(fd, bytes) -> the pipe's new capacity, or -1 (not a pipe, or refused).
//   alignedBuffer(length) -> an ArrayBuffer of `length` (1 byte to 1 GiB) whose memory starts on
//             a 4096-byte boundary, for O_DIRECT writes (memory, offset and length aligned to
//             the device's block size); wiped and freed when garbage-collected.
// A file that shrinks under a mapping raises SIGBUS on access. sealBatch/openBatch catch a SIGBUS
// that hits their src range (a handler is installed on the first mapFile) and throw an Error
// with code ERR_TSEAL_INPUT_CHANGED instead; openBatch wipes the output it had written. JS code
// reading a mapping's bytes directly has no such guard: read mappings only through the addon.
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "tseal_napi.h"

namespace {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr double kMaxChunks = 274877906944.0;  // 2^38: the nonce XOR covers 38 bits
constexpr double kMaxSafe = 9007199254740991.0;
constexpr size_t kMaxChunkSize = 1u << 30;  // one EVP update per chunk: must fit an int
constexpr size_t kScratch = 64 * 1024;      // verify-only decrypts into this, piece by piece

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

// --- SIGBUS guard ------------------------------------------------------------------------------
// While a batch reads its src, its thread's guard names that range. A SIGBUS whose fault address
// lies inside it (the file behind a mapping shrank) jumps back to the batch, which throws. Any
// other SIGBUS goes to whatever handler was there before (by default: the process dies, as it
// would without us). Guards sit in a fixed table keyed by kernel thread id, so the handler finds
// its own with gettid() and plain loads: nothing it calls allocates or takes a lock (TLS in a
// dlopen'ed addon may do both on first access, and node leaves no static TLS room for it).
struct BusGuard {
  sigjmp_buf jump;
  uintptr_t lo = 0, hi = 0;
};
struct BusSlot {
  std::atomic<pid_t> tid{0};
  std::atomic<BusGuard*> guard{nullptr};
};
constexpr size_t kBusSlots = 256;
BusSlot gBusSlots[kBusSlots];
struct sigaction gPrevBus;
std::once_flag gBusOnce;
std::atomic<bool> gBusInstalled{false};  // set once, before the first mapping exists

pid_t ThreadId() {
  static thread_local pid_t tid = 0;
  if (tid == 0) tid = static_cast<pid_t>(syscall(SYS_gettid));
  return tid;
}

// Claims a slot for this thread and points it at g; null if the table is full (then the batch
// runs unguarded, as it would have without mappings: a shrinking file kills the process).
BusSlot* ArmBusGuard(BusGuard* g) {
  const pid_t me = ThreadId();
  for (size_t i = 0; i < kBusSlots; i++) {
    pid_t free = 0;
    if (gBusSlots[i].tid.compare_exchange_strong(free, me, std::memory_order_acq_rel)) {
      gBusSlots[i].guard.store(g, std::memory_order_release);
      return &gBusSlots[i];
    }
  }
  return nullptr;
}

void DisarmBusGuard(BusSlot* slot) {
  if (slot == nullptr) return;
  slot->guard.store(nullptr, std::memory_order_release);
  slot->tid.store(0, std::memory_order_release);
}

BusGuard* FindBusGuard() {
  const pid_t me = static_cast<pid_t>(syscall(SYS_gettid));
  for (size_t i = 0; i < kBusSlots; i++) {
    if (gBusSlots[i].tid.load(std::memory_order_acquire) == me)
      return gBusSlots[i].guard.load(std::memory_order_acquire);
  }
  return nullptr;
}

void OnBus(int sig, siginfo_t* si, void* uc) {
  BusGuard* g = si->si_code > 0 ? FindBusGuard() : nullptr;
  const uintptr_t a = reinterpret_cast<uintptr_t>(si->si_addr);
  if (g != nullptr && a >= g->lo && a < g->hi) siglongjmp(g->jump, 1);
  if ((gPrevBus.sa_flags & SA_SIGINFO) != 0 && gPrevBus.sa_sigaction != nullptr) {
    gPrevBus.sa_sigaction(sig, si, uc);
    return;
  }
  if (gPrevBus.sa_handler == SIG_IGN) return;
  if (gPrevBus.sa_handler != SIG_DFL && gPrevBus.sa_handler != nullptr) {
    gPrevBus.sa_handler(sig);
    return;
  }
  // Default action: put it back; a fault re-executes and kills, a sent signal is sent again.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  if (si->si_code <= 0) raise(sig);
}

void InstallBusHandler() {
  std::call_once(gBusOnce, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = OnBus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    gBusInstalled.store(sigaction(SIGBUS, &sa, &gPrevBus) == 0);
  });
}

napi_value ThrowInputChanged(napi_env env) {
  napi_throw_error(env, "ERR_TSEAL_INPUT_CHANGED",
                   "input ended early: the file changed while it was being read");
  return nullptr;
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
bool ParseBatchArgs(napi_env env, napi_value* argv, bool sealing, bool inPlace, Batch* b);

bool ParseBatch(napi_env env, napi_callback_info info, bool sealing, bool inPlace, Batch* b) {
  const size_t want = inPlace ? 8 : 10;
  size_t argc = 10;
  napi_value argv[10];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  if (argc != want) return Throw(env, false, inPlace ? "expected 8 arguments" : "expected 10 arguments");
  return ParseBatchArgs(env, argv, sealing, inPlace, b);
}

bool ParseBatchArgs(napi_env env, napi_value* argv, bool sealing, bool inPlace, Batch* b) {
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

napi_value Number(napi_env env, double v) {
  napi_value out = nullptr;
  napi_create_double(env, v, &out);
  return out;
}

// Runs body() with a SIGBUS guard over src[lo, +n) when `on` (a mapping may be the src);
// false if a SIGBUS there cut it short. The jump lands in this frame, which holds nothing that
// needs a destructor; body's own frame (a lambda over the caller's variables) is abandoned.
template <typename Body>
__attribute__((noinline)) bool Guarded(bool on, const uint8_t* lo, uint64_t n, const Body& body) {
  if (!on || !gBusInstalled.load(std::memory_order_relaxed)) {
    body();
    return true;
  }
  BusGuard guard;
  guard.lo = reinterpret_cast<uintptr_t>(lo);
  guard.hi = guard.lo + n;
  BusSlot* volatile slot = nullptr;  // read after a longjmp
  if (sigsetjmp(guard.jump, 1) != 0) {
    DisarmBusGuard(slot);
    return false;
  }
  slot = ArmBusGuard(&guard);
  body();
  DisarmBusGuard(slot);
  return true;
}

// The cipher work of a parsed batch, on whichever thread calls it (the JS thread for sealBatch,
// a libuv pool thread for sealBatchAsync). Touches no JS value.
enum RunStatus { kRunOk = 0, kRunSetupFailed, kRunCipherFailed, kRunInputChanged };

RunStatus SealRun(const Batch& b) {
  const bool inPlace = b.inPlace;
  Ctx c;
  if (c.ctx == nullptr ||
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, b.key.data, nullptr) != 1)
    return kRunSetupFailed;
  uint8_t nonce[kNonceSize];
  bool ok = true;
  const bool whole = Guarded(!inPlace, b.src.data + b.srcOffset, b.srcLength, [&] {
    const uint8_t* in = b.src.data + b.srcOffset;
    uint8_t* out = b.dst.data + b.dstOffset;
    for (uint64_t i = 0; ok && i < b.count; i++) {
      const int n = static_cast<int>(i + 1 < b.count ? b.chunkSize : b.lastPlain);
      int got = 0, fin = 0;
      ChunkNonce(b.base.data, b.first + i, nonce);
      ok = EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
           (n == 0 || EVP_EncryptUpdate(c.ctx, out, &got, in, n) == 1) && got == n &&
           EVP_EncryptFinal_ex(c.ctx, out + got, &fin) == 1 && fin == 0 &&
           EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, out + n) == 1;
      in += n + (inPlace ? kTagSize : 0);
      out += n + kTagSize;
    }
  });
  OPENSSL_cleanse(nonce, sizeof nonce);
  if (!whole) return kRunInputChanged;
  return ok ? kRunOk : kRunCipherFailed;
}

double SealResult(const Batch& b) {
  return static_cast<double>(b.inPlace ? b.srcLength : b.srcLength + b.count * kTagSize);
}

napi_value Seal(napi_env env, napi_callback_info info, bool inPlace) {
  Batch b;
  if (!ParseBatch(env, info, true, inPlace, &b)) return nullptr;
  switch (SealRun(b)) {
    case kRunSetupFailed:
      return ThrowOpenSsl(env, "AES-256-GCM setup failed");
    case kRunInputChanged:
      return ThrowInputChanged(env);
    case kRunCipherFailed:
      return ThrowOpenSsl(env, "AES-256-GCM encryption failed");
    default:
      return Number(env, SealResult(b));
  }
}

// Opening's cipher work (see SealRun); *result is openBatch's return value when kRunOk.
RunStatus OpenRun(const Batch& b, double* result) {
  const bool inPlace = b.inPlace;
  Ctx c;
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, b.key.data, nullptr) != 1)
    return kRunSetupFailed;
  alignas(64) static thread_local uint8_t scratch[kScratch];
  uint8_t nonce[kNonceSize];
  const uint64_t plainLength = b.srcLength - b.count * kTagSize;
  *result = static_cast<double>(plainLength);
  const bool whole = Guarded(!inPlace, b.src.data + b.srcOffset, b.srcLength, [&] {
    const uint8_t* in = b.src.data + b.srcOffset;
    uint8_t* out = b.hasDst ? b.dst.data + b.dstOffset : nullptr;
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
        *result = -1.0 - static_cast<double>(b.first + i);
        break;
      }
      in += n + kTagSize;
      if (out != nullptr) out += n + (inPlace ? kTagSize : 0);
    }
  });
  if (!b.hasDst || !whole) OPENSSL_cleanse(scratch, sizeof scratch);
  OPENSSL_cleanse(nonce, sizeof nonce);
  if (!whole) {
    // Cut short by a shrinking input: everything decrypted is unauthenticated; wipe it all.
    if (b.hasDst) OPENSSL_cleanse(b.dst.data + b.dstOffset, plainLength);
    return kRunInputChanged;
  }
  return kRunOk;
}

napi_value Open(napi_env env, napi_callback_info info, bool inPlace) {
  Batch b;
  if (!ParseBatch(env, info, false, inPlace, &b)) return nullptr;
  double result = 0;
  switch (OpenRun(b, &result)) {
    case kRunSetupFailed:
      return ThrowOpenSsl(env, "AES-256-GCM setup failed");
    case kRunInputChanged:
      return ThrowInputChanged(env);
    default:
      return Number(env, result);
  }
}

// --- sealBatchAsync / openBatchAsync -----------------------------------------------------------
// sealBatch / openBatch on a libuv pool thread, so the JS thread reads and writes while the
// cipher runs (and two calls run on two threads). The last argument is a callback
// (error, result). The key and base nonce are copied (small typed arrays may live on the JS
// heap, which moves) and wiped when the call completes; src and dst are held by references
// until then, and the caller must not touch them before the callback.
struct AsyncBatch {
  napi_async_work work = nullptr;
  napi_ref callback = nullptr;
  napi_ref src = nullptr;
  napi_ref dst = nullptr;
  Batch b;
  bool sealing = false;
  uint8_t key[kKeySize];
  uint8_t base[kNonceSize];
  RunStatus status = kRunOk;
  double result = 0;
};

void ExecuteAsync(napi_env, void* data) {
  AsyncBatch* a = static_cast<AsyncBatch*>(data);
  if (a->sealing) {
    a->status = SealRun(a->b);
    a->result = SealResult(a->b);
  } else {
    a->status = OpenRun(a->b, &a->result);
  }
}

napi_value MakeError(napi_env env, const char* code, const char* msg) {
  napi_value c = nullptr, m = nullptr, e = nullptr;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, c, m, &e);
  return e;
}

void CompleteAsync(napi_env env, napi_status st, void* data) {
  AsyncBatch* a = static_cast<AsyncBatch*>(data);
  OPENSSL_cleanse(a->key, sizeof a->key);
  OPENSSL_cleanse(a->base, sizeof a->base);
  napi_value argv[2] = {nullptr, nullptr};
  napi_get_undefined(env, &argv[0]);
  napi_get_undefined(env, &argv[1]);
  if (st != napi_ok) {
    argv[0] = MakeError(env, "ERR_CRYPTO_OPERATION_FAILED", "the batch did not run");
  } else if (a->status == kRunSetupFailed) {
    argv[0] = MakeError(env, "ERR_CRYPTO_OPERATION_FAILED", "AES-256-GCM setup failed");
  } else if (a->status == kRunCipherFailed) {
    argv[0] = MakeError(env, "ERR_CRYPTO_OPERATION_FAILED", "AES-256-GCM encryption failed");
  } else if (a->status == kRunInputChanged) {
    argv[0] = MakeError(env, "ERR_TSEAL_INPUT_CHANGED",
                        "input ended early: the file changed while it was being read");
  } else {
    argv[1] = Number(env, a->result);
  }
  napi_value cb = nullptr, global = nullptr;
  napi_get_reference_value(env, a->callback, &cb);
  napi_get_global(env, &global);
  napi_delete_reference(env, a->callback);
  if (a->src != nullptr) napi_delete_reference(env, a->src);
  if (a->dst != nullptr) napi_delete_reference(env, a->dst);
  napi_delete_async_work(env, a->work);
  delete a;
  if (cb != nullptr) napi_call_function(env, global, cb, 2, argv, nullptr);
}

napi_value StartAsync(napi_env env, napi_callback_info info, bool sealing) {
  size_t argc = 11;
  napi_value argv[11];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc != 11) return ThrowValue(env, false, "expected 11 arguments");
  napi_valuetype t;
  if (napi_typeof(env, argv[10], &t) != napi_ok || t != napi_function)
    return ThrowValue(env, false, "callback must be a function");
  AsyncBatch* a = new AsyncBatch();
  a->sealing = sealing;
  if (!ParseBatchArgs(env, argv, sealing, false, &a->b)) {
    delete a;
    return nullptr;
  }
  memcpy(a->key, a->b.key.data, kKeySize);
  memcpy(a->base, a->b.base.data, kNonceSize);
  a->b.key.data = a->key;
  a->b.base.data = a->base;
  napi_value name = nullptr;
  bool ok = napi_create_reference(env, argv[10], 1, &a->callback) == napi_ok &&
            napi_create_reference(env, argv[5], 1, &a->src) == napi_ok &&
            (!a->b.hasDst || napi_create_reference(env, argv[8], 1, &a->dst) == napi_ok) &&
            napi_create_string_utf8(env, "tseal.batch", NAPI_AUTO_LENGTH, &name) == napi_ok &&
            napi_create_async_work(env, nullptr, name, ExecuteAsync, CompleteAsync, a, &a->work) ==
                napi_ok &&
            napi_queue_async_work(env, a->work) == napi_ok;
  if (!ok) {
    OPENSSL_cleanse(a->key, sizeof a->key);
    if (a->callback != nullptr) napi_delete_reference(env, a->callback);
    if (a->src != nullptr) napi_delete_reference(env, a->src);
    if (a->dst != nullptr) napi_delete_reference(env, a->dst);
    if (a->work != nullptr) napi_delete_async_work(env, a->work);
    delete a;
    return ThrowOpenSsl(env, "cannot queue the batch");
  }
  napi_value undefined = nullptr;
  napi_get_undefined(env, &undefined);
  return undefined;
}

napi_value SealBatchAsync(napi_env env, napi_callback_info info) {
  return StartAsync(env, info, true);
}
napi_value OpenBatchAsync(napi_env env, napi_callback_info info) {
  return StartAsync(env, info, false);
}

// setPipeSize(fd, bytes) -> the pipe's new capacity (fcntl F_SETPIPE_SZ), or -1 when fd is not
// a pipe or the size is refused. A stream seal or open through 64 KiB pipes switches processes
// every 64 KiB; larger pipes let both sides move more per turn.
napi_value SetPipeSize(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  uint64_t fd = 0, size = 0;
  if (argc != 2 || !GetIndex(env, argv[0], "fd", INT_MAX, &fd) ||
      !GetIndex(env, argv[1], "bytes", INT_MAX, &size))
    return nullptr;
#ifdef F_SETPIPE_SZ
  const int r = fcntl(static_cast<int>(fd), F_SETPIPE_SZ, static_cast<int>(size));
  return Number(env, r < 0 ? -1.0 : static_cast<double>(r));
#else
  return Number(env, -1.0);
#endif
}

// --- alignedBuffer ----------------------------------------------------------------------------
// Output written with O_DIRECT goes from this memory to the device without a copy into the page
// cache (on the 2-core VM this was tuned on, that copy cost more CPU than the AES-GCM itself).
constexpr size_t kDirectAlign = 4096;

void FreeAligned(napi_env, void* data, void* hint) {
  memset(data, 0, reinterpret_cast<size_t>(hint));  // it held plaintext when opening
  std::atomic_signal_fence(std::memory_order_seq_cst);
  free(data);
}

napi_value AlignedBuffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  uint64_t length = 0;
  if (argc != 1 || !GetIndex(env, argv[0], "length", 1 << 30, &length)) return nullptr;
  if (length < 1) return ThrowValue(env, true, "length must be at least 1");
  void* p = nullptr;
  if (posix_memalign(&p, kDirectAlign, static_cast<size_t>(length)) != 0 || p == nullptr) {
    napi_throw_error(env, "ERR_TSEAL_NOMEM", "cannot allocate an aligned buffer");
    return nullptr;
  }
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, static_cast<size_t>(length), FreeAligned,
                                       reinterpret_cast<void*>(static_cast<size_t>(length)),
                                       &ab) != napi_ok) {
    free(p);
    napi_throw_error(env, "ERR_TSEAL_NOMEM", "cannot wrap an aligned buffer");
    return nullptr;
  }
  return ab;
}

// --- mapFile / unmap ---------------------------------------------------------------------------
// A Mapping is owned by its buffer's finalizer, which always deletes it. unmap() claims the
// address range (closed = true, removed from the registry) under the lock, then detaches the
// buffer and munmaps; the finalizer, whenever it runs (detaching may run it), then only deletes.
// The registry maps a buffer's data pointer to its Mapping so unmap() accepts only our buffers;
// it is process-wide (buffers are per thread, but the lock is cheap: one entry per ~32 MiB job)
// and never destroyed, so a finalizer running during teardown always finds it.
struct Mapping {
  void* base = nullptr;
  size_t length = 0;
  bool closed = false;
};
std::mutex gMapLock;
auto* gMaps = new std::unordered_map<const void*, Mapping*>();

void FinalizeMapping(napi_env, void* data, void* hint) {
  Mapping* m = static_cast<Mapping*>(hint);
  bool unmapNow = false;
  {
    std::lock_guard<std::mutex> lock(gMapLock);
    auto it = gMaps->find(data);
    if (it != gMaps->end() && it->second == m) gMaps->erase(it);
    unmapNow = !m->closed;
    m->closed = true;
  }
  if (unmapNow) munmap(m->base, m->length);
  delete m;
}

napi_value ThrowMap(napi_env env, const char* what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "ERR_TSEAL_MAP", msg);
  return nullptr;
}

napi_value MapFile(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  if (argc != 3) return ThrowValue(env, false, "expected 3 arguments");
  uint64_t fd = 0, offset = 0, length = 0;
  if (!GetIndex(env, argv[0], "fd", INT_MAX, &fd) ||
      !GetIndex(env, argv[1], "offset", kMaxSafe, &offset) ||
      !GetIndex(env, argv[2], "length", kMaxSafe, &length))
    return nullptr;
  if (length < 1) return ThrowValue(env, true, "length must be at least 1");
  if (offset + length > static_cast<uint64_t>(kMaxSafe) ||
      offset + length > static_cast<uint64_t>(SIZE_MAX / 2))
    return ThrowValue(env, true, "offset + length is too large");
  struct stat st;
  if (fstat(static_cast<int>(fd), &st) != 0) return ThrowMap(env, "cannot stat the file", errno);
  if (!S_ISREG(st.st_mode)) return ThrowMap(env, "cannot map the file", ENODEV);
  if (st.st_size < 0 || offset + length > static_cast<uint64_t>(st.st_size))
    return ThrowValue(env, true, "range runs past the end of the file");
  const long page = sysconf(_SC_PAGESIZE);
  const uint64_t pageSize = page > 0 ? static_cast<uint64_t>(page) : 4096;
  const uint64_t start = offset - offset % pageSize;
  const size_t mapLength = static_cast<size_t>(length + (offset - start));
  InstallBusHandler();  // before the first mapping can be read
  // Read-only, so MAP_PRIVATE never copies. Measured on page-cached input (2 GiB, 32 MiB
  // mappings): MAP_POPULATE, MADV_WILLNEED and MADV_HUGEPAGE changed nothing or cost a little
  // system time; MADV_SEQUENTIAL widens fault readahead for input that is not cached.
  void* base = mmap(nullptr, mapLength, PROT_READ, MAP_PRIVATE, static_cast<int>(fd),
                    static_cast<off_t>(start));
  if (base == MAP_FAILED) return ThrowMap(env, "cannot map the file", errno);
  madvise(base, mapLength, MADV_SEQUENTIAL);  // advice only: failure changes nothing
  Mapping* m = new Mapping{base, mapLength, false};
  uint8_t* data = static_cast<uint8_t*>(base) + (offset - start);
  {
    std::lock_guard<std::mutex> lock(gMapLock);
    (*gMaps)[data] = m;
  }
  napi_value ab = nullptr;
  if (napi_create_external_arraybuffer(env, data, static_cast<size_t>(length), FinalizeMapping, m,
                                       &ab) != napi_ok) {
    {
      std::lock_guard<std::mutex> lock(gMapLock);
      gMaps->erase(data);
    }
    munmap(base, mapLength);
    delete m;
    // e.g. a node built with the V8 sandbox, which refuses external buffers
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, "ERR_TSEAL_MAP", "cannot wrap the mapping in an ArrayBuffer");
    return nullptr;
  }
  return ab;
}

napi_value Unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  bool is = false;
  if (argc != 1 || napi_is_arraybuffer(env, argv[0], &is) != napi_ok || !is)
    return ThrowValue(env, false, "unmap expects the ArrayBuffer that mapFile returned");
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, argv[0], &detached) != napi_ok) return nullptr;
  napi_value result = nullptr;
  if (detached) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &length) != napi_ok) return nullptr;
  void* base = nullptr;
  size_t mapLength = 0;
  {
    std::lock_guard<std::mutex> lock(gMapLock);
    auto it = data == nullptr ? gMaps->end() : gMaps->find(data);
    if (it == gMaps->end() || it->second->closed ||
        length > it->second->length)
      return ThrowValue(env, false, "unmap expects an ArrayBuffer that mapFile returned");
    Mapping* m = it->second;
    base = m->base;
    mapLength = m->length;
    m->closed = true;  // from here the finalizer only frees m; m is not touched again here
    gMaps->erase(it);
  }
  // Detach first, so no JS view can reach the pages once they are gone.
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) {
    // Not detachable (cannot happen for our external buffers): keep the pages mapped rather
    // than leave a live view over unmapped memory. The finalizer will not unmap (closed), so
    // this leaks the mapping, deliberately.
    napi_throw_error(env, "ERR_TSEAL_MAP", "cannot detach the mapped ArrayBuffer");
    return nullptr;
  }
  munmap(base, mapLength);
  napi_get_boolean(env, true, &result);
  return result;
}

napi_value SealBatch(napi_env env, napi_callback_info info) { return Seal(env, info, false); }
napi_value SealInPlace(napi_env env, napi_callback_info info) { return Seal(env, info, true); }
napi_value OpenBatch(napi_env env, napi_callback_info info) { return Open(env, info, false); }
napi_value OpenInPlace(napi_env env, napi_callback_info info) { return Open(env, info, true); }

}  // namespace

napi_value TsealLinkFd(napi_env env, napi_callback_info info);  // tseal_fs.cc
bool TsealDefinePrimitives(napi_env env, napi_value exports);     // tseal_prim.cc

NAPI_MODULE_INIT() {
  const napi_property_descriptor props[] = {
      Method("sealBatch", SealBatch),
      Method("openBatch", OpenBatch),
      Method("sealInPlace", SealInPlace),
      Method("openInPlace", OpenInPlace),
      Method("mapFile", MapFile),
      Method("unmap", Unmap),
      Method("linkFd", TsealLinkFd),
      Method("sealBatchAsync", SealBatchAsync),
      Method("openBatchAsync", OpenBatchAsync),
      Method("setPipeSize", SetPipeSize),
      Method("alignedBuffer", AlignedBuffer),
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    return nullptr;
  }
  if (!TsealDefinePrimitives(env, exports)) return nullptr;
  return exports;
}
