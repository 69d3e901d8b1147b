// A throwaway Debian redis-server for the queue tests (BullMQ needs a real one; `.ci/run` installs
// it) on a free 127.0.0.1 port, optionally with a password (requirepass) or TLS only. Without
// redis-server those tests are skipped, and say so; under CI=true they fail instead.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { CI } from "./optional.js";

export const redisServer = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim();

/** node:test's `skip` option: false when redis-server is installed (or under CI, where its absence fails the test), else the reason. */
export const skipWithoutRedis: false | string = redisServer || CI ? false : "redis-server is not installed (apt-get install redis-server); skipped";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisOptions {
  /** Default: a free one (give the old one to restart a server in its place). */
  port?: number;
  /** requirepass */
  password?: string;
  /** TLS only (no plain port): the server's certificate and key files. */
  tls?: { cert: string; key: string };
}

export interface RunningRedis {
  url: string;
  port: number;
  process: ChildProcess;
  /** SIGKILL, and resolves once the process has exited (deadline 10 s). */
  kill(): Promise<void>;
}

/** Starts redis-server without persistence; resolves once it accepts connections (deadline 10 s) or rejects saying why. */
export async function startRedis(o: RedisOptions = {}): Promise<RunningRedis> {
  if (!redisServer) throw new Error("redis-server is not installed, and CI=true: the queue tests must run (apt-get install redis-server)");
  const port = o.port ?? (await freePort());
  const args = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  if (o.tls) args.push("--port", "0", "--tls-port", String(port), "--tls-cert-file", o.tls.cert, "--tls-key-file", o.tls.key, "--tls-auth-clients", "no");
  else args.push("--port", String(port));
  if (o.password !== undefined) args.push("--requirepass", o.password);
  const redis = spawn(redisServer, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  redis.stdout!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  redis.stderr!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => redis.once("exit", () => r()));
  for (let i = 0; ; i++) {
    if (redis.exitCode !== null) throw new Error(`redis-server ${args.join(" ")} exited: ${output.trim().split("\n").pop()}`);
    const ping = spawnSync(process.execPath, ["-e", `require("net").connect(${port},"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))`]);
    if (ping.status === 0) break;
    if (i >= 100) {
      redis.kill("SIGKILL");
      throw new Error(`redis-server did not accept connections on ${port} within 10 s: ${output.trim().split("\n").pop()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const kill = async () => {
    if (redis.exitCode === null && redis.signalCode === null) redis.kill("SIGKILL");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("redis-server did not exit within 10 s of SIGKILL")), 10_000)))]);
    clearTimeout(timer);
  };
  return { url: `${o.tls ? "rediss" : "redis"}://127.0.0.1:${port}`, port, process: redis, kill };
}
