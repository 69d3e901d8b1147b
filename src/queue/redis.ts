// Where the queue lives: a Redis URL (redis:// or rediss:// for TLS, with an optional user and
// password) and, for TLS with a private certificate authority, a CA file. The password may also come
// from DISTILL_REDIS_PASSWORD, which keeps it out of `ps` and lets `distill resume` find it: it is
// never written to a state file, a log line or an error message.

import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { Redis, type RedisOptions } from "ioredis";
import { UserError } from "../errors.js";

export const PASSWORD_ENV = "DISTILL_REDIS_PASSWORD";
export const CA_ENV = "DISTILL_REDIS_CA";

/** A queue's Redis: the URL as given (it may hold the password) and a CA file for rediss://. */
export interface RedisTarget {
  url: string;
  /** PEM file of the certificate authority that signed the server's certificate (default: $DISTILL_REDIS_CA, else the system's). */
  caFile?: string;
}

const EXAMPLE = "expected a URL like redis://127.0.0.1:6379 or rediss://user:password@host:6380";

/** The URL with any password replaced by ***: what logs and messages show. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(not a URL)";
  }
}

/** The URL without its password: what a state file keeps (the password comes back from DISTILL_REDIS_PASSWORD). */
export function urlWithoutPassword(url: string): string {
  const u = new URL(url);
  u.password = "";
  return u.toString().replace(/\/$/, "");
}

/** redis[s]://[user:password@]host[:port][/db] (and the CA file) → ioredis options; anything else is a UserError. */
export function redisOptions(target: RedisTarget, where: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(target.url);
  } catch {
    throw new UserError(where, `${EXAMPLE}, got ${JSON.stringify(displayUrl(target.url))}`);
  }
  if ((u.protocol !== "redis:" && u.protocol !== "rediss:") || !u.hostname) throw new UserError(where, `${EXAMPLE}, got ${JSON.stringify(displayUrl(target.url))}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new UserError(where, `expected a database number after the port, got ${JSON.stringify(u.pathname.slice(1))}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const password = u.password ? decodeURIComponent(u.password) : process.env[PASSWORD_ENV] || undefined;
  const caFile = target.caFile ?? (process.env[CA_ENV] || undefined);
  if (caFile !== undefined && u.protocol !== "rediss:") throw new UserError(where, `a CA file (${caFile}) is for TLS: use rediss:// instead of redis://`);
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw new UserError(caFile, `cannot read the CA file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  }
  return {
    host,
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(password !== undefined ? { password } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    // SNI takes a host name, not an address (RFC 6066); an address is still checked against the certificate.
    ...(u.protocol === "rediss:" ? { tls: { ...(isIP(host) ? {} : { servername: host }), ...(ca ? { ca } : {}) } } : {}),
  };
}

/** An error text from Redis or the socket, one line, with the password (if any) masked. */
export function redisErrorText(e: unknown, options: RedisOptions): string {
  let text = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
  if (options.password) text = text.split(options.password).join("***");
  return text;
}

/** Why a connection failed, in words a user can act on. */
function explain(text: string, target: RedisTarget, options: RedisOptions): string {
  const at = `Redis at ${displayUrl(target.url)}`;
  if (/WRONGPASS|invalid password|invalid username-password/i.test(text)) return `${at} refused the user name or password (${text.split(" ")[0]})`;
  if (/NOAUTH/.test(text)) return `${at} needs a password: give it in the URL (redis://:PASSWORD@host) or in ${PASSWORD_ENV}`;
  if (/without any password configured/i.test(text)) return `${at} has no password set, but one was given; leave it out or set requirepass on the server`;
  if (/certificate|self.signed|SSL|TLS|wrong version number/i.test(text))
    return `${at}: TLS failed (${text})${options.tls ? `; give the server's CA file with --queue-ca or ${CA_ENV}` : ""}`;
  return `cannot reach ${at} (${text})`;
}

/** Fails with one line when Redis does not answer a PING within a few seconds (before anything is written). */
export async function checkRedis(target: RedisTarget, where: string): Promise<void> {
  const options = redisOptions(target, where);
  const client = new Redis({ ...options, lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let cause: unknown;
  client.on("error", (e: Error) => (cause ??= e)); // reported below, once
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    // A refused AUTH comes back from connect() itself; a socket error first reaches the listener.
    const text = redisErrorText(/NOAUTH|WRONGPASS|password/i.test(String(e)) ? e : (cause ?? e), options);
    throw new UserError(where, explain(text, target, options));
  } finally {
    client.disconnect();
  }
}
