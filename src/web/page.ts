// The exported page's files: index.html, app.js (an ES module that imports onnxruntime-web's wasm
// build from ./ort/ and reads ./model.json) and timing.js (app.js's clock arithmetic). They are
// assets like every page's (src/report/assets/web/), written out as they are.

import { assetText } from "../report/assets.js";

export const PAGE_FILES = ["index.html", "app.js", "timing.js"] as const;

/** The text of one of the page's files. */
export function pageFile(name: (typeof PAGE_FILES)[number]): string {
  return assetText(`web/${name}`);
}
