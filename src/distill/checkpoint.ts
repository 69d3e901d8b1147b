// Per-epoch training checkpoints: every state tensor (parameters, buffers, optimizer slots), the
// step count and the epoch history, in one file written atomically. Layout: "DSTLCKP1", a uint32
// header length, a JSON header, then the float32 tensors back to back.

import { existsSync, readFileSync } from "node:fs";
import type { Tensor } from "../engine/graph.js";
import type { EpochMetric } from "../eval/types.js";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";

const MAGIC = "DSTLCKP1";

export interface Checkpoint {
  stage: string;
  seed: number;
  /** Epochs completed (1-based count). */
  epochsDone: number;
  stepsTaken: number;
  history: EpochMetric[];
  state: Map<string, Tensor<"float32">>;
}

interface Header {
  stage: string;
  seed: number;
  epochsDone: number;
  stepsTaken: number;
  history: EpochMetric[];
  tensors: { name: string; shape: number[]; length: number }[];
}

export function writeCheckpoint(path: string, c: Checkpoint): void {
  const tensors = [...c.state].map(([name, t]) => ({ name, shape: t.shape, length: t.data.length }));
  const header: Header = { stage: c.stage, seed: c.seed, epochsDone: c.epochsDone, stepsTaken: c.stepsTaken, history: c.history, tensors };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header so the tensor data starts 4-byte aligned.
  const headerLen = Math.ceil(headerBytes.length / 4) * 4;
  const dataLen = tensors.reduce((n, t) => n + t.length * 4, 0);
  const out = new Uint8Array(8 + 4 + headerLen + dataLen);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, headerLen, true);
  out.fill(0x20, 12, 12 + headerLen);
  out.set(headerBytes, 12);
  let offset = 12 + headerLen;
  for (const [, t] of c.state) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), offset);
    offset += t.data.byteLength;
  }
  writeFileAtomic(path, out);
}

export function readCheckpoint(path: string): Checkpoint | undefined {
  if (!existsSync(path)) return undefined;
  const buf = readFileSync(path);
  const bad = (what: string): never => {
    throw new UserError(path, `damaged checkpoint (${what}); delete it to restart this stage from scratch`);
  };
  const magic = buf.subarray(0, 8).toString("latin1");
  // Another layout version is refused by name, never misread.
  if (buf.byteLength >= 12 && magic.startsWith("DSTLCKP") && magic !== MAGIC)
    throw new UserError(path, `checkpoint format ${magic.slice(7)} was written by another version of distill; this one reads format ${MAGIC.slice(7)}: resume with the version that wrote it, or delete the file to restart this stage`);
  if (buf.byteLength < 12 || magic !== MAGIC) bad("no checkpoint header");
  const headerLen = buf.readUInt32LE(8);
  if (12 + headerLen > buf.byteLength) bad("header runs past the end");
  let header: Header;
  try {
    header = JSON.parse(buf.subarray(12, 12 + headerLen).toString("utf8")) as Header;
  } catch {
    return bad("header is not JSON");
  }
  const state = new Map<string, Tensor<"float32">>();
  let offset = 12 + headerLen;
  const aligned = new Uint8Array(buf.byteLength);
  aligned.set(buf);
  for (const t of header.tensors) {
    if (offset + t.length * 4 > buf.byteLength) bad(`tensor ${t.name} runs past the end`);
    state.set(t.name, { dtype: "float32", shape: t.shape, data: new Float32Array(aligned.buffer, offset, t.length).slice() });
    offset += t.length * 4;
  }
  return { stage: header.stage, seed: header.seed, epochsDone: header.epochsDone, stepsTaken: header.stepsTaken, history: header.history, state };
}
