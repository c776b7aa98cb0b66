/**
 * Preloaded into `serve` by serve-shutdown.test.ts (`node --import`): right after `serve` writes
 * that it listens, the process stalls for a second, so a signal sent on seeing that line arrives
 * while the rest of the start-up summary is still to come.
 */
const write = process.stderr.write.bind(process.stderr) as (
  chunk: unknown,
  ...rest: unknown[]
) => boolean;
process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
  const written = write(chunk, ...rest);
  if (String(chunk).includes("listening on")) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
  }
  return written;
}) as typeof process.stderr.write;
