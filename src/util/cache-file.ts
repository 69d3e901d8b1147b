// A content-addressed cache file that several processes may want at once. Readers trust a file
// only when its embedded SHA-256 matches its payload (a same-size corruption is caught, reported
// once, and recomputed). Writers take a lock file first, so when two runs start together one
// computes and the other waits for the result instead of paying for it twice; a lock whose owner
// died (kill -9) is noticed by its dead pid and taken over.
//
// Layout: "DSTLCAC1" | sha256(payload) (32 bytes) | payload. Written to a temporary file, renamed.

import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { hostname } from "node:os";
import { writeFileAtomic } from "./fs.js";

/** Default cache folder: $DISTILL_CACHE, else .cache/distill under the working directory. */
export function defaultCacheDir(): string {
  return process.env["DISTILL_CACHE"] ?? join(process.cwd(), ".cache", "distill");
}

const MAGIC = Buffer.from("DSTLCAC1", "latin1");
const HEADER = MAGIC.length + 32;

export interface CacheOptions {
  /** Called once when a damaged file is found (before it is recomputed). */
  onWarning?: (message: string) => void;
  /** Called while another process holds the lock. */
  onWait?: (owner: LockOwner) => void;
  /** How often a waiting process looks again (ms). */
  pollMs?: number;
  /** A lock older than this (by its file's mtime) from another host is taken over (ms); same-host locks go by pid. */
  staleMs?: number;
  /** Aborted: stop waiting for another process's lock (throws). */
  signal?: AbortSignal;
}

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

export type CacheRead = { status: "hit"; payload: Uint8Array } | { status: "missing" } | { status: "damaged"; why: string };

/** Reads and verifies a cache file. */
export function readCacheFile(file: string, expectedBytes?: number): CacheRead {
  if (!existsSync(file)) return { status: "missing" };
  const buf = readFileSync(file);
  if (buf.byteLength < HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return { status: "damaged", why: "no cache header" };
  const payload = buf.subarray(HEADER);
  if (expectedBytes !== undefined && payload.byteLength !== expectedBytes) return { status: "damaged", why: `${payload.byteLength} bytes where ${expectedBytes} were expected` };
  const sum = createHash("sha256").update(payload).digest();
  if (!sum.equals(buf.subarray(MAGIC.length, HEADER))) return { status: "damaged", why: "checksum mismatch" };
  return { status: "hit", payload: new Uint8Array(payload) };
}

export function writeCacheFile(file: string, payload: Uint8Array): void {
  const sum = createHash("sha256").update(payload).digest();
  writeFileAtomic(file, Buffer.concat([MAGIC, sum, payload]));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

function readOwner(lock: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(lock, "utf8")) as LockOwner;
  } catch {
    return undefined; // being written or just removed
  }
}

/** Takes the lock, or returns its current owner. A dead owner's lock is removed and retried. */
function tryLock(lock: string, staleMs: number): { taken: true } | { taken: false; owner: LockOwner | undefined; removed?: boolean } {
  try {
    const fd = openSync(lock, "wx");
    const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    writeSync(fd, JSON.stringify(me));
    closeSync(fd);
    return { taken: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const owner = readOwner(lock);
  let ageMs = 0;
  try {
    ageMs = Date.now() - statSync(lock).mtimeMs;
  } catch {
    return { taken: false, owner }; // released meanwhile: the caller looks again
  }
  const dead = owner ? (owner.host === hostname() ? !pidAlive(owner.pid) : ageMs > staleMs) : ageMs > 10_000;
  if (dead) rmSync(lock, { force: true });
  return { taken: false, owner, removed: dead };
}

/** A lock left beside a finished file by a process killed between writing it and unlocking: removed. */
function dropDeadLock(lock: string): void {
  if (!existsSync(lock)) return;
  const owner = readOwner(lock);
  if (owner && owner.host === hostname() && !pidAlive(owner.pid)) rmSync(lock, { force: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The verified payload of `file`, computing and writing it under a lock when it is missing or
 * damaged. `computed` says whether this call ran `compute` (so callers can count real work).
 */
export async function cachedPayload(file: string, expectedBytes: number, compute: () => Promise<Uint8Array>, o: CacheOptions = {}): Promise<{ payload: Uint8Array; computed: boolean }> {
  return (await lockedPayload(file, expectedBytes, compute, o, true))!;
}

/**
 * As cachedPayload, but when another live process holds the lock it returns `undefined` at once
 * instead of waiting, so a caller with other work (the next chunk) can do that first.
 */
export async function cachedPayloadUnlessBusy(file: string, expectedBytes: number, compute: () => Promise<Uint8Array>, o: CacheOptions = {}): Promise<{ payload: Uint8Array; computed: boolean } | undefined> {
  return lockedPayload(file, expectedBytes, compute, o, false);
}

async function lockedPayload(file: string, expectedBytes: number, compute: () => Promise<Uint8Array>, o: CacheOptions, wait: boolean): Promise<{ payload: Uint8Array; computed: boolean } | undefined> {
  mkdirSync(dirname(file), { recursive: true });
  const got = await underLock(`${file}.lock`, {
    read: () => {
      const r = readCacheFile(file, expectedBytes);
      return r.status === "hit" ? { status: "hit", value: r.payload } : r.status === "damaged" ? { status: "damaged", why: `${file}: damaged cache file (${r.why})` } : r;
    },
    compute: async () => {
      const payload = await compute();
      writeCacheFile(file, payload);
      return payload;
    },
  }, o, wait);
  return got && { payload: got.value, computed: got.computed };
}

/** What a cache entry's reader found: the value, nothing, or something it cannot trust (`why` names the file). */
export type CacheLookup<T> = { status: "hit"; value: T } | { status: "missing" } | { status: "damaged"; why: string };

/**
 * The lock protocol every cache entry shares, whatever its files: read the entry; when it is
 * missing or damaged (reported once, as "<why>; recomputing it"), take `lock` and compute it
 * (`compute` writes it, atomically), or wait for the live process holding the lock and read what it
 * wrote. Without `wait`, a live owner makes it return undefined at once. `o.signal` ends a wait.
 */
export async function underLock<T>(lock: string, entry: { read(): CacheLookup<T>; compute(): Promise<T> }, o: CacheOptions, wait: boolean): Promise<{ value: T; computed: boolean } | undefined> {
  mkdirSync(dirname(lock), { recursive: true });
  let warned = false;
  for (;;) {
    const read = entry.read();
    if (read.status === "hit") {
      dropDeadLock(lock);
      return { value: read.value, computed: false };
    }
    if (read.status === "damaged" && !warned) {
      o.onWarning?.(`${read.why}; recomputing it`);
      warned = true;
    }
    const attempt = tryLock(lock, o.staleMs ?? 6 * 3600_000);
    if (attempt.taken) {
      try {
        // Another process may have finished between our read and our lock.
        const again = entry.read();
        if (again.status === "hit") return { value: again.value, computed: false };
        return { value: await entry.compute(), computed: true };
      } finally {
        rmSync(lock, { force: true });
      }
    }
    if (attempt.removed) continue; // a dead owner's lock, just removed: try again at once
    if (!wait && attempt.owner) return undefined;
    if (attempt.owner) o.onWait?.(attempt.owner);
    if (o.signal?.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error(`stopped waiting for ${lock}: aborted`);
    await sleep(o.pollMs ?? 250);
  }
}
