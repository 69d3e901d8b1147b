#!/usr/bin/env node
// The `distill` executable (package.json "bin"). Everything testable lives in args.ts.

import { runCli } from "./args.js";

const code = await runCli(process.argv);
// Exit explicitly on failure: a progress bar timer or native thread left by the failed stage must
// not keep the process alive. On success, let pending output drain and exit naturally.
if (code !== 0) process.exit(code);
process.exitCode = 0;
