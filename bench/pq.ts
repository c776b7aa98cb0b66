/**
 * The post-quantum recipient's cost next to X25519's, measured in the same run:
 *   node dist/bench/pq.js [ROUNDS]
 * For each recipient type: the stanza's size in the header (framing included), the header
 * slot body of a file sealed for that one recipient, and the latency of wrap (seal side) and
 * unwrap (open side, an identity already parsed and used once), as median and p99 over ROUNDS
 * (default 200) rounds that alternate the two types, plus a cold unwrap (identity parsed from
 * its string, first stanza: includes deriving the public key for the tag). Prints a table.
 */
import { randomBytes } from "node:crypto";
import { ByteWriter } from "../src/format/bytes.js";
import { readHeader, sealMessage } from "../src/format/message.js";
import { encodeStanza, type Identity, type Recipient, type Stanza } from "../src/format/stanza.js";
import {
  generateX25519Identity,
  parseX25519Identity,
  parseX25519Recipient,
} from "../src/keys/x25519.js";
import {
  generateXWingIdentity,
  parseXWingIdentity,
  parseXWingRecipient,
} from "../src/keys/xwing.js";

const ROUNDS = Number(process.argv[2] ?? 200);

interface Kind {
  name: string;
  recipient: Recipient;
  identityString: string;
  parse: (s: string) => Identity;
  identity: Identity;
  wrapMs: number[];
  unwrapMs: number[];
  coldMs: number[];
}

async function kinds(): Promise<Kind[]> {
  const x = generateX25519Identity();
  const pq = await generateXWingIdentity();
  const mk = (
    name: string,
    recipient: Recipient,
    identityString: string,
    parse: (s: string) => Identity,
  ): Kind => ({
    name,
    recipient,
    identityString,
    parse,
    identity: parse(identityString),
    wrapMs: [],
    unwrapMs: [],
    coldMs: [],
  });
  return [
    mk("x25519", parseX25519Recipient(x.recipient), x.identity, parseX25519Identity),
    mk("mlkem768x25519", parseXWingRecipient(pq.recipient), pq.identity, parseXWingIdentity),
  ];
}

function stanzaBytes(s: Stanza): number {
  const w = new ByteWriter();
  encodeStanza(w, s);
  return w.finish().length;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function once(k: Kind, fileKey: Buffer): Promise<void> {
  let t = process.hrtime.bigint();
  const s = await k.recipient.wrap(fileKey);
  k.wrapMs.push(ms(t));
  t = process.hrtime.bigint();
  const got = await k.identity.unwrap(s);
  k.unwrapMs.push(ms(t));
  t = process.hrtime.bigint();
  const cold = await k.parse(k.identityString).unwrap(s);
  k.coldMs.push(ms(t));
  if (!got?.equals(fileKey) || !cold?.equals(fileKey)) throw new Error(`${k.name}: wrong key`);
}

const all = await kinds();
const fileKey = randomBytes(32);
for (const k of all) await k.identity.unwrap(await k.recipient.wrap(fileKey)); // warm-up
for (const k of all) {
  k.wrapMs.length = 0;
  k.unwrapMs.length = 0;
  k.coldMs.length = 0;
}
for (let i = 0; i < ROUNDS; i++)
  for (const k of i % 2 ? [...all].reverse() : all) await once(k, fileKey);

console.log(`node ${process.version}, ${ROUNDS} rounds, alternating types`);
console.log(
  "| recipient | stanza bytes | slot body (1 recipient) | wrap p50 / p99 | unwrap p50 / p99 | cold unwrap p50 |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const k of all) {
  const s = await k.recipient.wrap(fileKey);
  const file = sealMessage(Buffer.alloc(16), fileKey, [s], { chunkSize: 1 << 14 });
  const body = readHeader(file).stanzas.reduce((n, x) => n + stanzaBytes(x), 10); // + generation, count
  const f = (xs: number[], q: number) => quantile(xs, q).toFixed(3);
  console.log(
    `| ${k.name} | ${stanzaBytes(s)} | ${body} | ${f(k.wrapMs, 0.5)} / ${f(k.wrapMs, 0.99)} ms | ${f(k.unwrapMs, 0.5)} / ${f(k.unwrapMs, 0.99)} ms | ${f(k.coldMs, 0.5)} ms |`,
  );
}
