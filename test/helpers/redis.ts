// A throwaway Debian redis-server for the queue tests (BullMQ needs a real one; `.ci/run` installs
// it). Without it those tests are skipped, and say so.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { CI } from "./optional.js";

export const redisServer = spawnSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).stdout.trim();

/**
 * node:test's `skip` option: false when redis-server is installed, else the reason. Under CI=true
 * (`.ci/run` installs it) never a skip: startRedis then fails the test, saying what is missing.
 */
export const skipWithoutRedis: false | string = redisServer || CI ? false : "redis-server is not installed (apt-get install redis-server); skipped";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts redis-server on a free local port, without persistence; resolves once it accepts connections. */
export async function startRedis(): Promise<{ url: string; process: ChildProcess }> {
  if (!redisServer) throw new Error("redis-server is not installed (apt-get install redis-server), and CI=true requires it");
  const port = await freePort();
  const redis = spawn(redisServer, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const ping = spawnSync(process.execPath, ["-e", `require("net").connect(${port},"127.0.0.1").on("connect",()=>process.exit(0)).on("error",()=>process.exit(1))`]);
    if (ping.status === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `redis://127.0.0.1:${port}`, process: redis };
}
