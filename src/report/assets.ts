// Every page distill writes (run report, compare.html, tune and shrink reports, the exported web
// page) keeps its stylesheet and browser script as files in src/report/assets/, shipped with the
// package; the pages inline them, so each report stays one self-contained file.

import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

// From dist/src/report/ (compiled) back to src/report/assets/: the assets are not compiled.
const ASSETS = new URL("../../../src/report/assets/", import.meta.url);
const cache = new Map<string, string>();

/** The asset's text, as it is on disk (the exported web page writes these files out unchanged). */
export function assetText(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(name, ASSETS), "utf8");
    cache.set(name, text);
  }
  return text;
}

/** The asset, safe to inline in a <style> or <script> element: a literal "</script" or "</style" would end it early. */
export function inlineAsset(name: string): string {
  return assetText(name).replace(/<\/(script|style)/gi, "<\\/$1");
}

/** JSON that is safe inside <script>: "<" never appears raw, so neither "</script" nor "<!--" can. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

let chartJsSource: string | undefined;

/** Chart.js's UMD build (defines the global `Chart` with every controller registered), safe to inline. */
export function chartJs(): string {
  if (chartJsSource === undefined) {
    // "chart.js" resolves to dist/chart.cjs; the UMD bundle sits next to it.
    const dist = dirname(createRequire(import.meta.url).resolve("chart.js"));
    const file = ["chart.umd.js", "chart.umd.min.js"].map((f) => join(dist, f)).find((f) => existsSync(f));
    if (!file) throw new Error(`Chart.js UMD bundle not found in ${dist}`);
    // A literal "</script" inside the bundle would end the inline <script> early.
    chartJsSource = readFileSync(file, "utf8").replace(/<\/(script)/gi, "<\\/$1");
  }
  return chartJsSource;
}
