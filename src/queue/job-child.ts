// The process a job runs in (spawned by runInChild): argv is the module, the name of its export
// that runs the job, and the job as JSON; the export's result goes to stdout as one JSON line.
// A watchdog thread kills this process when its parent dies (kill -9 of `distill tune` or of a
// queue worker): otherwise an orphan would keep writing a trial folder that a resumed search or
// another worker is about to continue. It is a thread because training blocks the event loop.

import { Worker } from "node:worker_threads";

const watchdog = `
const { workerData } = require("node:worker_threads");
setInterval(() => { if (process.ppid !== workerData.parent) process.kill(workerData.pid, "SIGKILL"); }, 300);
`;
const parent = Number(process.env["DISTILL_JOB_PARENT"]) || process.ppid;
if (process.ppid !== parent) process.exit(1); // the parent died while this process started
new Worker(watchdog, { eval: true, workerData: { parent, pid: process.pid } }).unref();

try {
  const [module, fn, json] = process.argv.slice(2) as [string, string, string];
  const run = (await import(module))[fn] as (job: unknown) => Promise<unknown>;
  const result = await run(JSON.parse(json));
  if (result !== undefined) process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
} catch (e) {
  const err = e instanceof Error ? e : new Error(String(e));
  const user = err.name === "UserError" || err.name === "DataFileError";
  process.stderr.write(`distill: ${err.message.replace(/\s*\n\s*/g, "; ")}\n`);
  if (!user && err.stack) process.stderr.write(err.stack + "\n");
  process.exit(user ? 2 : 1);
}
