// Seeded randomness inside training graphs: a counter-based hash in integer ONNX ops, so a dropout
// mask depends on (seed, step, layer, element) alone — same bits on every machine. Its JS
// counterpart, the seeded generator Rng, is in util/random.ts.

import type { Value } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import { Rng } from "../util/random.js";

/** Name of the int64 scalar input that carries a training step's random stream. */
export const RANDOM_STREAM = "random:stream";

/** The value of the random stream for step `step` (0-based) of a run seeded with `seed`. */
export function randomStreamValue(seed: number, step: number): bigint {
  return BigInt(new Rng(seed, `step ${step}`).nextUint32());
}

const LOW32 = 0xffffffff;
const MIX = 0x45d9f3b;

/**
 * A bijective 32-bit integer hash (Thomas Mueller's: x ^= x>>16; x *= 0x45d9f3b; twice, then
 * x ^= x>>16) in int64 ONNX ops. Values stay below 2^32 and products below 2^59, so int64 never
 * overflows; x>>16 is x / 65536 for non-negative x.
 */
function mix32(x: Value): Value {
  const g = x.graph;
  const shiftXor = (v: Value) => F.emit("BitwiseXor", [v, F.div(v, g.constInt64([65536], []))])[0]!;
  const times = (v: Value) => F.emit("BitwiseAnd", [F.mul(v, g.constInt64([MIX], [])), g.constInt64([LOW32], [])])[0]!;
  return shiftXor(times(shiftXor(times(shiftXor(x)))));
}

/**
 * A float32 keep-mask shaped like `like`: element i is 1/keepProbability where
 * mix32(i XOR mix32(stream XOR layerKey)) < keepProbability·2^32, else 0. Counter-based: element i
 * of step t in layer l depends on (t, l, i) alone, never on what was drawn before.
 */
export function keepMask(like: Value, stream: Value, layerKey: number, keepProbability: number): Value {
  const g = like.graph;
  const key = mix32(F.emit("BitwiseXor", [stream, g.constInt64([layerKey >>> 0], [])])[0]!);
  const count = F.emit("Size", [like])[0]!;
  const counter = F.emit("Range", [g.constInt64([0], []), count, g.constInt64([1], [])], {}, ["elements"])[0]!;
  const bits = mix32(F.emit("BitwiseXor", [counter, key])[0]!);
  const kept = F.emit("Less", [bits, g.constInt64([Math.round(keepProbability * 2 ** 32)], [])])[0]!;
  return F.reshapeLike(F.where(kept, g.constFloat([1 / keepProbability]), g.constFloat([0])), like);
}
