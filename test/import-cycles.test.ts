// The module graph of src/, file by file (issue #27): no import cycle, and no file importing from a
// layer above its own. Every kind of import is an edge: a type-only import ties two files'
// definitions together as much as a value import does (it is only erased at run time), and a lazy
// `await import()` hides a cycle from the loader, not from the reader.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, posix, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/**
 * The layers, lowest first: a file may import from its own layer and the ones before it. This is
 * the order the code follows. (STYLE.md's "engine → nn → distill → data, eval, compress, report →
 * cli" puts data and eval above distill, but the trainer reads data and runs the teacher through
 * eval's OnnxClassifier; data and eval sit below it, and data below nn, whose models are built
 * from a SampleSet's geometry.)
 */
const LAYERS: string[][] = [
  ["errors.ts", "util"],
  ["queue"],
  ["config"],
  ["engine"],
  ["data"],
  ["nn"],
  ["eval"],
  ["distill"],
  ["compress", "report"],
  ["run"],
  ["tune", "web"],
  ["cli", "api.ts", "index.ts"],
];

/** Imports against the layers that exist today, "from → to" with the reason and the fix. */
const KNOWN_LAYER_VIOLATIONS: Record<string, string> = {
  "eval/bias-correction.ts → compress/onnx-model.ts": "onnx-model.ts reads, edits and writes any ONNX model: it belongs in engine/ beside onnx.ts",
  "eval/evaluate.ts → distill/teacher-ensemble.ts": "`distill eval`'s command (evaluateCommand) is in eval/evaluate.ts: a command belongs in cli/",
};

type ImportKind = "value" | "type" | "lazy";
interface Edge {
  to: string;
  kind: ImportKind;
}

/** The module specifiers a file imports or re-exports, each with how it is imported. */
function importsOf(fileName: string, text: string): { specifier: string; kind: ImportKind }[] {
  const found: { specifier: string; kind: ImportKind }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      found.push({ specifier: node.moduleSpecifier.text, kind: typeOnly ? "type" : "value" });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, kind: node.isTypeOnly ? "type" : "value" });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      found.push({ specifier: node.arguments[0].text, kind: "lazy" });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ specifier: node.argument.literal.text, kind: "type" });
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  return found;
}

/** Files (paths relative to src/, "/"-separated) → the files of the same set they import. Packages and node: modules are not edges. */
function moduleGraph(sources: Map<string, string>): Map<string, Edge[]> {
  const graph = new Map<string, Edge[]>();
  for (const [file, text] of sources) {
    const edges: Edge[] = [];
    for (const { specifier, kind } of importsOf(file, text)) {
      if (!specifier.startsWith(".")) continue;
      const to = posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, ".ts");
      if (!sources.has(to)) throw new Error(`${file} imports ${specifier}, which is not a .ts file of the set`);
      edges.push({ to, kind });
    }
    graph.set(file, edges);
  }
  return graph;
}

/** Every cycle as its files (sorted) and one path around it, e.g. "a.ts →(type) b.ts → a.ts". */
function cyclesOf(graph: Map<string, Edge[]>): { files: string[]; path: string }[] {
  // Tarjan's strongly connected components: a component of two or more files, or a file that
  // imports itself, is a cycle.
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const { to } of graph.get(v) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) low.set(v, Math.min(low.get(v)!, index.get(to)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)!.some((e) => e.to === v)) components.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return components.map((files) => ({ files, path: shortestLoop(graph, files) }));
}

/** The shortest path from the component's first file back to itself, inside the component. */
function shortestLoop(graph: Map<string, Edge[]>, files: string[]): string {
  const start = files[0]!, inside = new Set(files);
  const cameFrom = new Map<string, { from: string; kind: ImportKind }>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const { to, kind } of graph.get(v)!) {
      if (!inside.has(to) || cameFrom.has(to)) continue;
      cameFrom.set(to, { from: v, kind });
      if (to === start) queue.length = 0;
      else queue.push(to);
    }
  }
  const steps: string[] = [start];
  for (let at = start; ; ) {
    const { from, kind } = cameFrom.get(at)!;
    steps.unshift(`${from} →${kind === "value" ? "" : `(${kind})`}`);
    at = from;
    if (at === start) break;
  }
  return steps.join(" ");
}

/** The .ts files under `root` (declaration files aside), by path relative to it. */
function sourcesUnder(root: string, dir = root, sources = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourcesUnder(root, path, sources);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) sources.set(relative(root, path).split(sep).join("/"), readFileSync(path, "utf8"));
  }
  return sources;
}

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

test("the scanner sees value, type-only, re-exported and lazy imports, and the cycle finder finds exactly the cycles", () => {
  const sources = new Map([
    ["a.ts", `import type { B } from "./b.js";\nimport { readFileSync } from "node:fs";\nimport { z } from "zod";\nexport const a = 1;`],
    ["b.ts", `export * from "./dir/c.js";\nexport type B = number;`],
    ["dir/c.ts", `export async function c() { return (await import("../a.js")).a; }`],
    ["t.ts", `export let t: import("./a.js").A | undefined;\nimport { type X, type Y } from "./e.js";`],
    ["e.ts", `export type X = 1; export type Y = 2;`],
    ["self.ts", `import { f } from "./self.js";\nexport const g = f;`],
  ]);
  const graph = moduleGraph(sources);
  assert.deepEqual(graph.get("a.ts"), [{ to: "b.ts", kind: "type" }]);
  assert.deepEqual(graph.get("b.ts"), [{ to: "dir/c.ts", kind: "value" }]);
  assert.deepEqual(graph.get("dir/c.ts"), [{ to: "a.ts", kind: "lazy" }]);
  assert.deepEqual(graph.get("t.ts"), [{ to: "a.ts", kind: "type" }, { to: "e.ts", kind: "type" }]);
  assert.deepEqual(cyclesOf(graph), [
    { files: ["a.ts", "b.ts", "dir/c.ts"], path: "a.ts →(type) b.ts → dir/c.ts →(lazy) a.ts" },
    { files: ["self.ts"], path: "self.ts → self.ts" },
  ]);
  assert.throws(() => moduleGraph(new Map([["a.ts", `import "./missing.js";`]])), /a\.ts imports \.\/missing\.js/);
});

test("no import cycle in src/ (type-only and lazy imports count)", () => {
  const cycles = cyclesOf(moduleGraph(sourcesUnder(SRC))).map((c) => c.path);
  assert.deepEqual(cycles, [], `import cycles in src/:\n  ${cycles.join("\n  ")}`);
});

test("layers: no file imports from a layer above its own", () => {
  const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((name) => [name, i] as const)));
  const graph = moduleGraph(sourcesUnder(SRC));
  const top = (file: string) => file.split("/")[0]!;
  const unplaced = [...new Set([...graph.keys()].map(top))].filter((name) => !layerOf.has(name));
  assert.deepEqual(unplaced, [], "src/ entries in no layer: add them to LAYERS");
  const upward = new Set([...graph].flatMap(([from, edges]) => edges.filter(({ to }) => layerOf.get(top(to))! > layerOf.get(top(from))!).map(({ to }) => `${from} → ${to}`)));
  const unexpected = [...upward].filter((v) => !(v in KNOWN_LAYER_VIOLATIONS));
  assert.deepEqual(unexpected, [], `imports from a higher layer:\n  ${unexpected.join("\n  ")}`);
  const gone = Object.keys(KNOWN_LAYER_VIOLATIONS).filter((v) => !upward.has(v));
  assert.deepEqual(gone, [], "no longer imported: remove it from KNOWN_LAYER_VIOLATIONS");
});
