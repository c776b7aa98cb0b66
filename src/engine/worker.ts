/**
 * Worker thread entry: runs one chunk range per message against file descriptors shared with
 * the main thread (threads share the process's descriptor table, so every thread reads exactly
 * the file the main thread opened and checked; no path is reopened, no bulk data is posted),
 * into the job's sink: a shared descriptor, the caller's SharedArrayBuffer, or nowhere.
 * Keys arrive as private copies and are wiped when the job ends, whatever the outcome.
 */
import { parentPort } from "node:worker_threads";
import { isTensorSealError } from "../format/errors.js";
import { BatchBuffers } from "./batch.js";
import { processRange } from "./range-job.js";
import type { JobMessage, JobReply } from "./worker-protocol.js";

const bufs = new BatchBuffers();

async function run(msg: JobMessage): Promise<JobReply> {
  try {
    for (const done of processRange(msg.spec, msg, msg.inFd, msg.sink, bufs)) {
      Atomics.add(msg.progress, 0, BigInt(done));
      if (Atomics.load(msg.abort, 0) !== 0) return { id: msg.id, ok: false, aborted: true };
      await bufs.ready(); // the buffer the next batch fills: its earlier write is done
    }
    await bufs.settle(); // "done" means on the file: the caller fsyncs and renames next
    return { id: msg.id, ok: true };
  } catch (e) {
    if (isTensorSealError(e)) return { id: msg.id, ok: false, code: e.code, message: e.message };
    const code = (e as NodeJS.ErrnoException)?.code ?? "unknown error";
    return { id: msg.id, ok: false, code: "E_IO", message: `worker I/O failed: ${code}` };
  } finally {
    // Nothing may still write from these buffers once the job replied (or while they are wiped).
    await bufs.settle().catch(() => {});
    msg.aeadKey.fill(0);
    msg.baseNonce.fill(0);
    msg.resealKeys?.aeadKey.fill(0);
    msg.resealKeys?.baseNonce.fill(0);
    bufs.wipe();
  }
}

parentPort?.on("message", async (msg: JobMessage) => {
  const reply = await run(msg);
  // Tell the others to stop early on failure; the main thread also sets it.
  if (!reply.ok && !reply.aborted) Atomics.store(msg.abort, 0, 1);
  parentPort?.postMessage(reply);
});
