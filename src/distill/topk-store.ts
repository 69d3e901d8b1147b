// The teacher's top-k next-symbol distributions for every training pair (word-level distillation),
// computed once per run and kept in the run folder as one compact binary file, written atomically.
// Layout: "DSTLTPK1", a uint32 header length, a JSON header {count, k, key, idBytes}, then
// int32 positions per pair, float32 log-probabilities and uint16 (or int32) ids, each
// [Σ positions × k] in pair order. CMUdict's 112k pairs at k = 8 take about 40 MB.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { UserError } from "../errors.js";
import type { TopK } from "../eval/seq2seq-decode.js";
import { writeFileAtomic } from "../util/fs.js";

const MAGIC = "DSTLTPK1";

interface Header {
  count: number;
  k: number;
  /** What the distributions were computed for (topKStoreKey): a store for other pairs is not reused. */
  key: string;
  idBytes: 2 | 4;
}

/** A digest of the pairs (ids) and k, so a store made for other pairs or another k is recomputed, never misread. */
export function topKStoreKey(pairs: readonly { source: readonly number[]; target: readonly number[] }[], k: number, teacher: string): string {
  const h = createHash("sha256").update(`${teacher}|k=${k}|`);
  for (const p of pairs) h.update(`${p.source.join(",")}>${p.target.join(",")};`);
  return h.digest("hex").slice(0, 32);
}

export function writeTopKStore(path: string, list: readonly TopK[], k: number, key: string): void {
  const total = list.reduce((n, t) => n + t.positions, 0);
  const idBytes: 2 | 4 = list.every((t) => t.ids.every((id) => id < 65536)) ? 2 : 4;
  const header: Header = { count: list.length, k, key, idBytes };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const headerLen = Math.ceil(headerBytes.length / 4) * 4;
  const body = 4 * list.length + 4 * total * k + idBytes * total * k;
  const out = new Uint8Array(12 + headerLen + body);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, headerLen, true);
  out.fill(0x20, 12, 12 + headerLen);
  out.set(headerBytes, 12);
  let at = 12 + headerLen;
  const positions = new Int32Array(out.buffer, at, list.length);
  at += 4 * list.length;
  const logProbs = new Float32Array(out.buffer, at, total * k);
  at += 4 * total * k;
  const ids = idBytes === 2 ? new Uint16Array(out.buffer, at, total * k) : new Int32Array(out.buffer, at, total * k);
  let row = 0;
  list.forEach((t, i) => {
    if (t.k < k) throw new Error(`pair ${i} has ${t.k} symbols per position, fewer than ${k}`);
    positions[i] = t.positions;
    // The first k of each position (a distribution is stored most likely first).
    for (let p = 0; p < t.positions; p++, row++)
      for (let j = 0; j < k; j++) {
        logProbs[row * k + j] = t.logProbs[p * t.k + j]!;
        ids[row * k + j] = t.ids[p * t.k + j]!;
      }
  });
  writeFileAtomic(path, out);
}

/** The stored distributions, or undefined when there is no store or it was made for other pairs (`key`). */
export function readTopKStore(path: string, key: string): TopK[] | undefined {
  if (!existsSync(path)) return undefined;
  const buf = readFileSync(path);
  const bad = (what: string): never => {
    throw new UserError(path, `damaged teacher top-k store (${what}); delete it and the run computes it again`);
  };
  if (buf.byteLength < 12 || buf.subarray(0, 8).toString("latin1") !== MAGIC) bad("not a top-k store");
  const headerLen = buf.readUInt32LE(8);
  let header: Header;
  try {
    header = JSON.parse(buf.subarray(12, 12 + headerLen).toString("utf8")) as Header;
  } catch {
    return bad("unreadable header");
  }
  if (header.key !== key) return undefined;
  const { count, k, idBytes } = header;
  // Copied out of the file's buffer: a Buffer's offset into its pool need not suit a typed array.
  const view = <T>(make: (b: ArrayBuffer) => T, from: number, bytes: number): T => {
    if (from + bytes > buf.byteLength) bad("truncated");
    return make(buf.buffer.slice(buf.byteOffset + from, buf.byteOffset + from + bytes) as ArrayBuffer);
  };
  let at = 12 + headerLen;
  const positions = view((b) => new Int32Array(b), at, 4 * count);
  at += 4 * count;
  const total = positions.reduce((n, p) => n + p, 0);
  const logProbs = view((b) => new Float32Array(b), at, 4 * total * k);
  at += 4 * total * k;
  const ids = view((b) => (idBytes === 2 ? new Uint16Array(b) : new Int32Array(b)), at, idBytes * total * k);
  if (at + idBytes * total * k !== buf.byteLength) bad("trailing bytes");
  const out: TopK[] = [];
  let row = 0;
  for (let i = 0; i < count; i++) {
    const n = positions[i]!;
    out.push({ ids: Int32Array.from(ids.subarray(row * k, (row + n) * k)), logProbs: logProbs.slice(row * k, (row + n) * k), positions: n, k });
    row += n;
  }
  return out;
}
