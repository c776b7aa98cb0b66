"""Push-based streaming sealer and opener for the payload (FORMAT.md §4).

Both are state machines that remember their first error: after a failure every call raises
the same exception again. A full-size sealed chunk is never final; the final chunk is always
shorter than the chunk size, which authenticates the message length.
"""

from __future__ import annotations

import os

from ..errors import TensorSealError, fail
from .chunked import PAYLOAD_PREFIX_SIZE, SALT_SIZE, TAG_SIZE, ChunkCipher


class PayloadSealer:
    """Seals a plaintext pushed in pieces of any size.

    Args:
        input_key: the payload input key.
        context: the chunked-encryption context.
        chunk_size: the chunk size.
        salt: 24 bytes; injectable for deterministic test vectors only (random by default).

    Example:
        >>> s = PayloadSealer(bytes(32), b"", 16384)
        >>> sealed = s.prefix + b"".join(s.push(b"hello")) + s.finish()
        >>> len(sealed)
        77
    """

    def __init__(
        self, input_key: bytes, context: bytes, chunk_size: int, salt: bytes | None = None
    ) -> None:
        salt = os.urandom(SALT_SIZE) if salt is None else bytes(salt)
        self._cipher = ChunkCipher(input_key, salt, context, chunk_size)
        self.chunk_size = chunk_size
        self.prefix = salt + self._cipher.commitment
        self._pending = bytearray()
        self._index = 0
        self._done = False

    def push(self, plaintext: bytes | memoryview) -> list[bytes]:
        """Returns the sealed chunks completed by this input (never the final one)."""
        if self._done:
            fail("E_USAGE", "sealer already finished")
        out: list[bytes] = []
        view = memoryview(plaintext).cast("B")
        pos = 0
        if self._pending:
            take = min(self.chunk_size - len(self._pending), len(view))
            self._pending += view[:take]
            pos = take
            if len(self._pending) < self.chunk_size:
                return out
            out.append(self._seal(self._pending))
            self._pending = bytearray()
        # Strictly more than a chunk left: a full chunk here is never the final one.
        while len(view) - pos >= self.chunk_size:
            out.append(self._seal(view[pos : pos + self.chunk_size]))
            pos += self.chunk_size
        self._pending += view[pos:]
        return out

    def finish(self) -> bytes:
        """Seals the final short (possibly empty) chunk."""
        if self._done:
            fail("E_USAGE", "sealer already finished")
        self._done = True
        return self._seal(bytes(self._pending))

    def _seal(self, chunk: bytes | memoryview | bytearray) -> bytes:
        sealed = self._cipher.seal(self._index, chunk)
        self._index += 1
        return sealed


class PayloadOpener:
    """Opens a payload pushed in pieces; releases only authenticated whole chunks.

    Plaintext released before :meth:`finish` belongs to chunks that authenticated, but the
    message is verified only when :meth:`finish` has opened the final chunk.

    Args:
        input_key: the payload input key (``E_KEY`` if not 32 bytes).
        context: the chunked-encryption context.
        chunk_size: the chunk size.
    """

    def __init__(self, input_key: bytes, context: bytes, chunk_size: int) -> None:
        if len(input_key) != 32:
            fail("E_KEY", f"payload key must be 32 bytes, got {len(input_key)}")
        self._input_key = bytes(input_key)
        self._context = bytes(context)
        self.chunk_size = chunk_size
        self._cipher: ChunkCipher | None = None
        self._queue = bytearray()
        self._index = 0
        self._error: TensorSealError | None = None
        self._done = False
        self.released = 0

    def push(self, ciphertext: bytes | memoryview) -> list[bytes]:
        """Returns the plaintext of the whole non-final chunks this input completes."""
        return self._guard(lambda: self._push(ciphertext))

    def finish(self) -> bytes:
        """Authenticates the final chunk (and so the length); returns its plaintext."""
        return self._guard(self._finish)

    def _push(self, ciphertext: bytes | memoryview) -> list[bytes]:
        if self._done:
            fail("E_TRAILING", "data after the end of the payload")
        self._queue += ciphertext
        out: list[bytes] = []
        if self._cipher is None:
            if len(self._queue) < PAYLOAD_PREFIX_SIZE:
                return out
            self._cipher = self._open_prefix(bytes(self._queue[:PAYLOAD_PREFIX_SIZE]))
            del self._queue[:PAYLOAD_PREFIX_SIZE]
        sealed = self.chunk_size + TAG_SIZE
        pos = 0
        view = memoryview(self._queue)
        try:
            # A sealed chunk of full size is never final: the final chunk is always shorter.
            while len(view) - pos >= sealed:
                out.append(self._open(view[pos : pos + sealed]))
                pos += sealed
        finally:
            view.release()
        del self._queue[:pos]
        return out

    def _finish(self) -> bytes:
        if self._done:
            fail("E_USAGE", "payload already finished")
        if self._cipher is None:
            fail("E_TRUNCATED", "payload ends before the salt and commitment")
        if len(self._queue) < TAG_SIZE:
            fail("E_TRUNCATED", "payload is truncated: the final chunk is missing")
        last = self._open(bytes(self._queue))
        self._queue = bytearray()
        self._done = True
        return last

    def _open_prefix(self, prefix: bytes) -> ChunkCipher:
        cipher = ChunkCipher(self._input_key, prefix[:SALT_SIZE], self._context, self.chunk_size)
        cipher.check_commitment(prefix[SALT_SIZE:])
        return cipher

    def _open(self, sealed: bytes | memoryview) -> bytes:
        assert self._cipher is not None
        pt = self._cipher.open(self._index, sealed)
        self._index += 1
        self.released += len(pt)
        return pt

    def _guard(self, fn):  # type: ignore[no-untyped-def]
        if self._error is not None:
            raise self._error
        try:
            return fn()
        except TensorSealError as e:
            self._error = e
            self._cipher = None
            raise
