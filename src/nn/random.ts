// Seeded randomness: same seed → same bits on every machine (no Math.random anywhere). In JS a
// seeded generator (sfc32); inside training graphs a counter-based hash in integer ONNX ops.

import type { Value } from "../engine/graph.js";
import * as F from "../engine/functional.js";

/** FNV-1a hash of a string, for deriving independent streams ("seed 7, parameter fc1.weight"). */
export function hashString(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** sfc32: a small, fast generator that passes PractRand; seeded through splitmix32. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(seed: number, stream = "") {
    let s = hashString(stream, seed >>> 0) ^ (seed >>> 0);
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(xs: T[] | Int32Array | Uint32Array): void {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i]!;
      xs[i] = xs[j]!;
      xs[j] = t;
    }
  }
}

// ---------------------------------------------------------------- random numbers inside the graph

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
