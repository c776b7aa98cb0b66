/**
 * File outputs written around the page cache (O_DIRECT) where the file system allows it. A
 * buffered write copies every output byte into the page cache, and that copy cost more than the
 * AES-GCM itself on the 2-core VM this was tuned on (perf of a 1 GiB seal file -> file: 44% of
 * the process's samples in copy_folio_from_iter_atomic, 19% in AES-GCM; `dd bs=4M` of the same
 * GiB: 1.9-2.3 s of system time buffered + fsync, 0.22-0.27 s with oflag=direct). O_DIRECT needs
 * the memory, the file offset and the length aligned to the device's block: each batch's output
 * is placed in aligned memory at the same offset modulo DIRECT_ALIGN as its file offset, the
 * aligned middle goes straight to the device and the two unaligned edges (under 4 KiB each)
 * through the page cache on the ordinary descriptor. Durability is unchanged: the output is
 * still fsynced (which also flushes the device's cache) before it is renamed into place.
 */
import { closeSync, constants, openSync, write, writeSync } from "node:fs";
import { writeAllSync } from "./fsutil.js";
import { nativeGcm } from "./native-gcm.js";

/** The alignment used for memory, offsets and lengths (covers 512- and 4096-byte devices). */
export const DIRECT_ALIGN = 4096;

/**
 * A second descriptor on the open output `fd` with O_DIRECT (through /proc/self/fd, so an
 * O_TMPFILE output that has no name yet works too), or null where that is not available: no
 * addon to allocate aligned memory, not Linux, or a file system that refuses O_DIRECT (tmpfs).
 * TENSORSEAL_DIRECT_IO=0 turns it off (a benchmark's baseline, or a file system that misbehaves).
 */
export function openDirect(fd: number): number | null {
  if (process.env.TENSORSEAL_DIRECT_IO === "0") return null;
  if (process.platform !== "linux" || !nativeGcm?.alignedBuffer || !constants.O_DIRECT) return null;
  try {
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_DIRECT);
  } catch {
    return null;
  }
}

export function closeDirect(fd: number | null): void {
  if (fd === null) return;
  try {
    closeSync(fd);
  } catch {
    // a close error of a descriptor we only wrote through O_DIRECT: the fsync on the other decides
  }
}

/** Aligned memory of at least `length` bytes plus room to shift by an alignment's remainder. */
export function alignedBuffer(length: number): Buffer {
  const ab = nativeGcm!.alignedBuffer!(length + DIRECT_ALIGN);
  return Buffer.from(ab);
}

/**
 * Writes `length` bytes at file `position` that sit in `buf` from `at`, where `buf`'s memory is
 * aligned (alignedBuffer) and `at % DIRECT_ALIGN === position % DIRECT_ALIGN`. Returns false
 * when the file system refused the aligned write (EINVAL): the bytes were then written through
 * the page cache instead, and the caller should stop asking.
 */
export function writeDirect(
  fd: number,
  directFd: number,
  buf: Buffer,
  at: number,
  length: number,
  position: number,
): boolean {
  const end = position + length;
  const midStart = Math.min(end, Math.ceil(position / DIRECT_ALIGN) * DIRECT_ALIGN);
  const midEnd = Math.max(midStart, Math.floor(end / DIRECT_ALIGN) * DIRECT_ALIGN);
  const view = (from: number, to: number) => buf.subarray(at + from - position, at + to - position);
  if (midStart > position) writeAllSync(fd, view(position, midStart), position);
  let ok = true;
  let done = midStart;
  while (done < midEnd) {
    let n: number;
    try {
      n = writeSync(directFd, view(done, midEnd), 0, midEnd - done, done);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EINVAL") throw e;
      ok = false;
      break;
    }
    // A short direct write leaves an aligned remainder (or, oddly, not): finish through the cache.
    if (n <= 0 || n % DIRECT_ALIGN !== 0) {
      if (n > 0) done += n;
      ok = false;
      break;
    }
    done += n;
  }
  if (done < midEnd) writeAllSync(fd, view(done, midEnd), done);
  if (end > midEnd) writeAllSync(fd, view(midEnd, end), midEnd);
  return ok;
}

/**
 * The unaligned tail of a thread's last batch written around the cache, held back instead of
 * written: the batch that follows it in the file (the same thread's next batch of a piece)
 * copies it into the room its aligned buffer keeps below its first byte, so the block the two
 * share goes around the cache with the rest, and only the two ends of a piece go through the
 * page cache. Why: ext4 holds the inode lock for the whole of an O_DIRECT write into blocks not
 * yet allocated, and a buffered write needs that lock, so the two edge writes per 2 MiB batch
 * blocked the encrypting thread behind the other thread's device writes (strace of a 1 GiB seal
 * on 2 threads: 0.65 s of the main thread and 0.61 s of the worker's 1.85 s).
 * It may hold plaintext (opening): wipe() clears it, flush() too once written.
 */
export class EdgeCarry {
  private readonly bytes = Buffer.alloc(DIRECT_ALIGN);
  private length = 0;
  /** File offset of bytes[0] (a block boundary); meaningful while length > 0. */
  private position = 0;
  private fd = -1;

  /** Takes a copy of `src` (under one block, starting on a block boundary) to write later. */
  hold(fd: number, src: Uint8Array, position: number): void {
    if (this.length > 0) this.flush();
    if (src.length >= DIRECT_ALIGN || position % DIRECT_ALIGN !== 0) {
      throw new RangeError("an edge carry holds less than one block from a block boundary");
    }
    this.bytes.set(src);
    this.length = src.length;
    this.position = position;
    this.fd = fd;
  }

  /**
   * Copies what is held into `buf` just below `at` when it ends exactly at `position` (where
   * `buf[at]` goes) in the same file, and lets go of it: true when it did.
   */
  takeInto(fd: number, buf: Buffer, at: number, position: number): boolean {
    if (this.length === 0 || fd !== this.fd || this.position + this.length !== position) {
      return false;
    }
    if (this.length !== at) return false; // not the same block remainder: cannot happen, be safe
    this.bytes.copy(buf, 0, 0, this.length);
    this.clear();
    return true;
  }

  /** Writes what is held through the page cache (synchronously), then clears it. */
  flush(): void {
    if (this.length === 0) return;
    const n = this.length;
    this.length = 0;
    try {
      writeAllSync(this.fd, this.bytes.subarray(0, n), this.position);
    } finally {
      this.bytes.fill(0, 0, n);
    }
  }

  /** Drops what is held without writing it (its output is being discarded). */
  clear(): void {
    this.bytes.fill(0, 0, this.length);
    this.length = 0;
  }
}

/**
 * writeDirect with the aligned middle handed to the libuv pool, so the calling thread encrypts
 * its next batch while the device takes this one (one thread's writes alone left the disk idle
 * between them). The edges (under 4 KiB each) are written now, through the cache; with a
 * `carry` the head edge comes from the carry where the previous batch ended right there, and
 * the tail edge goes into it (EdgeCarry), so neither is written now. `buf` must not be touched
 * until the promise settles; it resolves false as writeDirect returns false.
 */
export function writeDirectAsync(
  fd: number,
  directFd: number,
  buf: Buffer,
  at: number,
  length: number,
  position: number,
  carry?: EdgeCarry,
): Promise<boolean> {
  const end = position + length;
  // Carried bytes of the block this batch starts in go in front of it, from buf[0].
  const start = carry?.takeInto(fd, buf, at, position) ? position - at : position;
  const midStart = Math.min(end, Math.ceil(start / DIRECT_ALIGN) * DIRECT_ALIGN);
  const midEnd = Math.max(midStart, Math.floor(end / DIRECT_ALIGN) * DIRECT_ALIGN);
  const view = (from: number, to: number) => buf.subarray(at + from - position, at + to - position);
  if (midStart > start) {
    carry?.flush(); // bytes held from elsewhere in the file: written before their place is lost
    writeAllSync(fd, view(start, midStart), start);
  }
  if (end > midEnd) {
    // midEnd is a block boundary here: a tail exists only past a block boundary.
    if (carry) carry.hold(fd, view(midEnd, end), midEnd);
    else writeAllSync(fd, view(midEnd, end), midEnd);
  }
  return new Promise<boolean>((resolve, reject) => {
    // Through the cache from `done` (a refused or odd direct write), then settled.
    const finish = (done: number, ok: boolean) => {
      try {
        if (done < midEnd) writeAllSync(fd, view(done, midEnd), done);
        resolve(ok);
      } catch (e) {
        reject(e);
      }
    };
    const next = (done: number) => {
      if (done >= midEnd) return resolve(true);
      write(directFd, view(done, midEnd), 0, midEnd - done, done, (e, n) => {
        if (e) return e.code === "EINVAL" ? finish(done, false) : reject(e);
        if (n <= 0 || n % DIRECT_ALIGN !== 0) return finish(done + Math.max(0, n), false);
        next(done + n);
      });
    };
    next(midStart);
  });
}
