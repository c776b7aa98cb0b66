/**
 * Attestation evidence from a program (`open --attest PROGRAM`, TENSORSEAL_ATTEST_COMMAND): the
 * runtime's own agent or a wrapper around it. It is run without a shell, given the request as
 * one JSON line on stdin ({nonce, ephemeralKeyBinding, ephemeralPublicKey (base64), kem}) and in
 * TENSORSEAL_ATTEST_NONCE / TENSORSEAL_ATTEST_KEY_BINDING, and prints the verifier's JWT on
 * stdout. The token is a credential: it is never echoed, and a failure names the program and
 * its exit status only (with the first line of its stderr, escaped).
 */
import { spawn } from "node:child_process";
import { fail, TensorSealError } from "../../format/errors.js";
import { printable } from "../../format/printable.js";
import type { EvidenceProvider, EvidenceRequest } from "./attested.js";

const TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 64 * 1024;
const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*)?/g;

export function commandEvidence(program: string): EvidenceProvider {
  if (program.length === 0) fail("E_USAGE", "--attest needs a program");
  return (r) => runEvidence(program, r);
}

function runEvidence(program: string, r: EvidenceRequest): Promise<string> {
  const what = `evidence command ${printable(program)}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [], {
      stdio: ["pipe", "pipe", "pipe"],
      env: {
        ...process.env,
        TENSORSEAL_ATTEST_NONCE: r.nonce,
        TENSORSEAL_ATTEST_KEY_BINDING: r.ephemeralKeyBinding,
      },
      timeout: TIMEOUT_MS,
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > MAX_OUTPUT) child.kill("SIGKILL");
      else out.push(d);
    });
    child.stderr.on("data", (d: Buffer) => {
      if (err.length < 4096) err += d.toString("utf8");
    });
    child.stdin.on("error", () => {}); // a program that does not read its stdin
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(failure(`${what} cannot be run (${e.code ?? e.message})`)),
    );
    child.on("close", (code, signal) => {
      const token = Buffer.concat(out).toString("utf8").trim();
      if (code !== 0 || outBytes > MAX_OUTPUT) {
        const how =
          outBytes > MAX_OUTPUT
            ? "printed too much"
            : signal
              ? `died of ${signal}`
              : `exited ${code}`;
        // A failing agent may print what it got, a token included: JWTs are masked.
        const first = err
          .split("\n")
          .find((l) => l.trim() !== "")
          ?.replace(JWT_LIKE, "[token]");
        reject(failure(`${what} ${how}${first ? `: ${printable(first.trim())}` : ""}`));
      } else if (!JWS.test(token)) {
        reject(failure(`${what} printed no JWT (expected one compact token on stdout)`));
      } else resolve(token);
    });
    child.stdin.end(
      `${JSON.stringify({
        nonce: r.nonce,
        ephemeralKeyBinding: r.ephemeralKeyBinding,
        ephemeralPublicKey: r.ephemeralPublicKey.toString("base64"),
        kem: r.kem,
      })}\n`,
    );
  });
}

function failure(message: string): TensorSealError {
  return new TensorSealError("E_PROVIDER", message);
}
