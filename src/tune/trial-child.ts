// The process a trial runs in (spawned by runTrialChild): argv[2] is the TrialJob as JSON; a
// labelling shard from the queue (kind: "label") runs here too, its result as JSON on stdout.
// A watchdog thread kills this process when its parent dies (kill -9 of `distill tune` or of a
// queue worker): otherwise an orphan would keep writing a trial folder that a resumed search or
// another worker is about to continue. It is a thread because training blocks the event loop.

import { Worker } from "node:worker_threads";
import { runTrialHere, type TrialJob } from "./trial.js";
import type { LabelJob } from "../distill/label-queue.js";

const watchdog = `
const { workerData } = require("node:worker_threads");
setInterval(() => { if (process.ppid !== workerData.parent) process.kill(workerData.pid, "SIGKILL"); }, 300);
`;
const parent = Number(process.env["DISTILL_TRIAL_PARENT"]) || process.ppid;
if (process.ppid !== parent) process.exit(1); // the parent died while this process started
new Worker(watchdog, { eval: true, workerData: { parent, pid: process.pid } }).unref();

try {
  const job = JSON.parse(process.argv[2]!) as TrialJob | LabelJob;
  if ("kind" in job && job.kind === "label") {
    const { runLabelHere } = await import("../distill/label-queue.js");
    process.stdout.write(JSON.stringify(await runLabelHere(job)) + "\n");
  } else await runTrialHere(job as TrialJob);
  process.exit(0);
} catch (e) {
  const err = e instanceof Error ? e : new Error(String(e));
  const user = err.name === "UserError" || err.name === "DataFileError";
  process.stderr.write(`distill: ${err.message.replace(/\s*\n\s*/g, "; ")}\n`);
  if (!user && err.stack) process.stderr.write(err.stack + "\n");
  process.exit(user ? 2 : 1);
}
