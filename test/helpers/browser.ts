// Headless Chromium for the browser tests, from npm only: @sparticuz/chromium ships the binary inside
// its tarball, so `npm ci && npm test` needs no apt package. CHROMIUM_PATH overrides it (e.g. Debian's
// /usr/bin/chromium).

import chromiumBinary from "@sparticuz/chromium";
import { chromium, type Browser } from "playwright-core";

// Flags that keep Chromium off the network (this machine has none) and out of a sandbox (root in CI).
const QUIET_FLAGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"];

export async function launchBrowser(): Promise<Browser> {
  const override = process.env["CHROMIUM_PATH"];
  if (override) {
    return chromium.launch({ executablePath: override, args: ["--no-sandbox", "--disable-gpu", ...QUIET_FLAGS] });
  }
  const executablePath = await chromiumBinary.executablePath();
  return chromium.launch({ executablePath, args: [...chromiumBinary.args, ...QUIET_FLAGS], headless: true });
}
