// Shards of a labelling pass (`distill label --shard i/N`), parsed before anything heavy loads so a
// bad spec is refused at once, with nothing read or written.

import { UserError } from "../errors.js";

/** Which chunks a process takes: shard `index` of `count` holds the chunks c with c % count === index. */
export interface Shard {
  index: number;
  count: number;
}

/** "i/N" with 0 ≤ i < N; anything else is a one-line error naming the option. */
export function parseShard(spec: string): Shard {
  const where = `--shard ${spec}`;
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  if (!m) throw new UserError(where, "expected i/N (shard i of N, counting from 0), e.g. 0/2");
  const [index, count] = [Number(m[1]), Number(m[2])];
  if (!Number.isSafeInteger(count) || count < 1) throw new UserError(where, `the shard count must be at least 1, got ${m[2]}`);
  if (!(index < count)) throw new UserError(where, `shard ${m[1]} of ${count} does not exist: shards are numbered 0 to ${count - 1}`);
  return { index, count };
}
