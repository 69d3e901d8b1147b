// Reads a run config: YAML → paths resolved → command-line overrides → schema. Overrides are applied
// to the raw document before validation so that a bad --set value gets the same message as a bad
// file value.
//
// Paths a config reads (data, teachers) are relative to the config file's folder, as tsconfig and
// docker-compose do it, so a config works from any working directory; they are made absolute, so
// the messages name the file actually looked for and a run folder's config.yaml resumes anywhere.
// Paths given on the command line (--set) and in a library caller's object stay relative to the
// working directory, like every other command-line path. `output` is where the run writes, not a
// file it reads: it stays relative to the working directory, as its default runs/<name> does.

import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml, parseDocument } from "yaml";
import type { z } from "zod";
import { UserError } from "../errors.js";
import { distillConfigSchema, type DistillConfig } from "./schema.js";
import { isSequenceDocument, seq2seqConfigSchema, type Seq2SeqConfig } from "./seq2seq.js";

export interface ConfigOverrides {
  /** `key.path[1].sub=value` assignments; values are YAML scalars (`8` is a number, `adam` a string). */
  set?: string[];
  /** Sets `train.epochs` of every stage that has a train block. */
  epochs?: number;
  seeds?: number;
  output?: string;
}

export function loadConfig(path: string, overrides: ConfigOverrides = {}): DistillConfig {
  const origins: Origin[] = [];
  const doc = applyOverrides(readConfigDocument(path), overrides, origins);
  return validateConfig(resolveInputPaths(doc, process.cwd()), path, origins);
}

/** What `distill run` takes: a classifier config, or a sequence-to-sequence one (a sequence `data:` block). */
export type RunConfig = { task: "classifier"; config: DistillConfig } | { task: "seq2seq"; config: Seq2SeqConfig };

/** Reads a config of either task, as loadConfig does; the `data:` block tells which. */
export function loadRunConfig(path: string, overrides: ConfigOverrides = {}): RunConfig {
  const origins: Origin[] = [];
  const doc = resolveInputPaths(applyOverrides(readConfigDocument(path), overrides, origins), process.cwd());
  if (isSequenceDocument(doc)) return { task: "seq2seq", config: validateAgainst(seq2seqConfigSchema, doc, path, origins) };
  return { task: "classifier", config: validateConfig(doc, path, origins) };
}

/**
 * A config given as an object (the library's `distill()`): overrides applied to a copy, relative
 * paths resolved against `baseDir` (default: the working directory), then validated.
 */
export function configFromObject(doc: unknown, where: string, overrides: ConfigOverrides = {}, baseDir = process.cwd()): DistillConfig {
  const origins: Origin[] = [];
  const resolved = resolveInputPaths(structuredClone(doc), baseDir);
  return validateConfig(resolveInputPaths(applyOverrides(resolved, overrides, origins), process.cwd()), where, origins);
}

/** A config object as given, copied, its relative input paths made absolute against `baseDir`; not yet validated. */
export function configDocument(doc: unknown, baseDir = process.cwd()): unknown {
  return resolveInputPaths(structuredClone(doc), baseDir);
}

/**
 * The config file as parsed, its input paths made absolute against its folder; not yet validated.
 * (A search keeps this document: its trials are made from it with the searched keys set.)
 */
export function readConfigDocument(path: string): unknown {
  return resolveInputPaths(readConfigFile(path), pathBase(path));
}

/** A value the command line put at `path`: an error at or under it names `where` (the --set), not the file. */
interface Origin {
  path: Key[];
  where: string;
}

/** Validates an already-parsed document; `where` names its source in messages. */
export function validateConfig(doc: unknown, where: string, origins: readonly Origin[] = []): DistillConfig {
  if (isSequenceDocument(doc)) throw new UserError(where, "data: a sequence-to-sequence config (dataset: cmudict or format: pairs); only `distill run` and `distill resume` take one");
  return validateAgainst(distillConfigSchema, doc, where, origins);
}

/** A sequence-to-sequence run config, validated with the config's messages (as validateConfig). */
export function validateSeq2SeqConfig(doc: unknown, where: string): Seq2SeqConfig {
  return validateAgainst(seq2seqConfigSchema, doc, where, []);
}

function validateAgainst<S extends z.ZodType>(schema: S, doc: unknown, where: string, origins: readonly Origin[]): z.output<S> {
  if (doc === null || doc === undefined) throw new UserError(where, "is empty, expected a config with name, data, teacher and student");
  const result = schema.safeParse(doc);
  if (result.success) return result.data;
  const issue = pickIssue(result.error.issues);
  const { path, text } = describeIssue(issue, doc);
  // The last override that wrote at or above the bad key is where the bad value came from. An
  // unknown key is reported at its parent, so its own name completes the path (a --set typo).
  const unknown = unknownKeyOf(issue);
  const badKey = unknown === undefined ? issue.path : [...issue.path, unknown];
  const origin = [...origins].reverse().find((o) => o.path.length <= badKey.length && o.path.every((k, i) => String(k) === String(badKey[i])));
  throw new UserError(origin?.where ?? where, path ? `${path}: ${text}` : text);
}

/** The key an unknown-key issue names: zod's own, or a method schema's (reported as a custom issue, fields.ts's message). */
function unknownKeyOf(issue: Issue): string | undefined {
  if (issue.code === "unrecognized_keys") return issue.keys[0];
  const quoted = issue.code === "custom" ? /^unknown key ("(?:[^"\\]|\\.)*")/.exec(issue.message)?.[1] : undefined;
  return quoted === undefined ? undefined : (JSON.parse(quoted) as string);
}

/**
 * Validates `doc` against a schema built from fields.ts (e.g. the sequence data block), with the
 * config's messages: one UserError naming `where` and the key path under `at` ("data.stress: …").
 */
export function validateWith<S extends z.ZodType>(schema: S, doc: unknown, where: string, at: readonly string[] = []): z.output<S> {
  const result = schema.safeParse(doc);
  if (result.success) return result.data;
  // describeIssue looks the bad value up from the document's root, so the block is put back under `at`.
  const root = at.reduceRight<unknown>((inner, key) => ({ [key]: inner }), doc);
  const { path, text } = describeIssue(pickIssue(result.error.issues), root, at);
  throw new UserError(where, path ? `${path}: ${text}` : text);
}

// ---- reading ----------------------------------------------------------------------------------

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, expected a YAML file" : `cannot read (${code ?? String(e)})`;
    throw new UserError(path, why);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? `${path}:${pos.line}:${pos.col}` : path;
    // prettyErrors appends " at line L, column C:" and a code excerpt; the position is in `where`.
    const message = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new UserError(where, message);
  }
  return doc.toJS();
}

// ---- paths ------------------------------------------------------------------------------------

/** Fields that name a file or folder the run reads; "*" is every entry of a list. */
const INPUT_PATHS: readonly (readonly string[])[] = [
  ["data", "dir"],
  ["data", "train"],
  ["data", "train", "*"],
  ["data", "test"],
  ["data", "test", "*"],
  ["data", "unlabeled", "*", "path"],
  ["teacher", "onnx"],
  ["teacher", "softTargets"],
  ["kd", "teachers", "*", "onnx"],
  ["kd", "teachers", "*", "softTargets"],
];

/** The same for a sequence-to-sequence config (its teacher.outputs is a file; a classifier's is a kind). */
const SEQUENCE_INPUT_PATHS: readonly (readonly string[])[] = [
  ["data", "dir"],
  ...(["train", "validation", "test"] as const).flatMap((split) => [["data", split], ["data", split, "*"]]),
  ["teacher", "onnx"],
  ["teacher", "outputs"],
];

/** Makes every relative input path in `doc` absolute against `base` (in place); other values are left for validation. */
function resolveInputPaths(doc: unknown, base: string): unknown {
  const visit = (node: unknown, pattern: readonly string[]): void => {
    if (pattern.length === 0 || typeof node !== "object" || node === null) return;
    const [head, ...rest] = pattern as [string, ...string[]];
    const keys = head === "*" ? (Array.isArray(node) ? node.keys() : []) : Array.isArray(node) ? [] : [head];
    for (const key of keys) {
      const container = node as Record<string | number, unknown>;
      const value = container[key];
      if (rest.length === 0) {
        if (typeof value === "string" && value !== "" && !isAbsolute(value)) container[key] = resolve(base, value);
      } else visit(value, rest);
    }
  };
  for (const pattern of isSequenceDocument(doc) ? SEQUENCE_INPUT_PATHS : INPUT_PATHS) visit(doc, pattern);
  return doc;
}

/**
 * The folder a config file's relative paths start from: its own. Except a run folder's config.yaml
 * (next to run.json): distill writes it with absolute paths, and one written before paths were
 * resolved holds them as given, relative to the working directory the run was started from.
 */
function pathBase(configPath: string): string {
  const folder = dirname(resolve(configPath));
  return basename(configPath) === "config.yaml" && existsSync(join(folder, "run.json")) ? process.cwd() : folder;
}

// ---- overrides --------------------------------------------------------------------------------

type Key = string | number;

function applyOverrides(doc: unknown, o: ConfigOverrides, origins: Origin[] = []): unknown {
  const hasAny = (o.set?.length ?? 0) > 0 || o.epochs !== undefined || o.seeds !== undefined || o.output !== undefined;
  if (!hasAny) return doc;
  // An empty file plus overrides is still a (probably incomplete) config; anything else non-mapping
  // is left for validation to reject.
  const root = doc === null || doc === undefined ? {} : doc;
  if (!isPlainObject(root)) return root;
  for (const assignment of o.set ?? []) {
    const eq = assignment.indexOf("=");
    if (eq <= 0) throw new UserError(`--set ${assignment}`, "expected key.path=value, e.g. kd.temperature=8");
    const keyPath = assignment.slice(0, eq).trim();
    const path = parseKeyPath(keyPath, assignment);
    let value: unknown;
    try {
      value = parseYaml(assignment.slice(eq + 1));
    } catch (e) {
      throw new UserError(`--set ${assignment}`, `value is not valid YAML (${(e as Error).message.split("\n")[0]})`);
    }
    setAt(root, path, value, assignment);
    origins.push({ path, where: `--set ${assignment}` });
  }
  if (o.epochs !== undefined)
    for (const stage of ["teacher", "student"]) {
      const train = (root as Record<string, unknown>)[stage];
      const block = isPlainObject(train) ? train["train"] : undefined;
      if (isPlainObject(block)) block["epochs"] = o.epochs;
    }
  if (o.seeds !== undefined) root["seeds"] = o.seeds;
  if (o.output !== undefined) {
    root["output"] = o.output;
    origins.push({ path: ["output"], where: `--output ${o.output}` });
  }
  return root;
}

/** "a.b[1].c" → ["a", "b", 1, "c"]. */
function parseKeyPath(text: string, assignment: string): Key[] {
  const re = /([A-Za-z_$][\w$-]*)|\[(\d+)\]|(\.)/gy;
  const out: Key[] = [];
  let m: RegExpExecArray | null;
  let expectKey = true;
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    if (m[1] !== undefined && expectKey) {
      out.push(m[1]);
      expectKey = false;
    } else if (m[2] !== undefined && !expectKey) out.push(Number(m[2]));
    else if (m[3] !== undefined && !expectKey) expectKey = true;
    else break;
  }
  if (re.lastIndex !== text.length || expectKey || out.length === 0)
    throw new UserError(`--set ${assignment}`, `"${text}" is not a key path like student.model.layers[1].units`);
  return out;
}

function setAt(root: Record<string, unknown>, path: Key[], value: unknown, assignment: string): void {
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    const last = i === path.length - 1;
    const here = formatPath(path.slice(0, i));
    if (typeof key === "number") {
      if (!Array.isArray(node))
        throw new UserError(`--set ${assignment}`, `${here} is ${describeKind(node)}, not a list`);
      if (key > node.length)
        throw new UserError(`--set ${assignment}`, `${here} has ${node.length} entries; index ${key} is out of range`);
    } else if (!isPlainObject(node)) {
      throw new UserError(`--set ${assignment}`, `${here} is ${describeKind(node)}, not a mapping`);
    }
    const container = node as Record<Key, unknown>;
    if (last) {
      container[key] = value;
      return;
    }
    // Missing intermediate levels are created so that --set can add a block the file omits.
    if (container[key] === undefined || container[key] === null) container[key] = typeof path[i + 1] === "number" ? [] : {};
    node = container[key];
  }
}

function describeKind(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null || v === undefined) return "empty";
  return typeof v === "object" ? "a mapping" : `${JSON.stringify(v)} (a ${typeof v})`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---- messages ---------------------------------------------------------------------------------

type Issue = z.core.$ZodIssue;

/**
 * The issue to report. Usually the first; but a missing key next to an unknown one is almost always
 * a typo (`epoch:` for `epochs:`), and the unknown key is the more useful message.
 */
function pickIssue(issues: readonly Issue[]): Issue {
  const first = issues[0]!;
  if (first.code === "invalid_type" && first.path.length > 0) {
    const parent = first.path.slice(0, -1);
    const typo = issues.find((i) => i.code === "unrecognized_keys" && samePath(i.path, parent));
    if (typo) return typo;
  }
  return first;
}

function samePath(a: readonly PropertyKey[], b: readonly PropertyKey[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

function describeIssue(issue: Issue, doc: unknown, prefix: readonly PropertyKey[] = []): { path: string; text: string } {
  const fullPath = [...prefix, ...issue.path];
  const path = formatPath(fullPath);
  const { found, value } = lookup(doc, fullPath);
  switch (issue.code) {
    case "unrecognized_keys":
      return { path, text: issue.message.startsWith("unknown key") ? issue.message : `unknown key ${JSON.stringify(issue.keys[0])}` };
    case "custom":
      // Refinements state their whole message; those phrased "expected …" also get the value.
      if (!issue.message.startsWith("expected")) return { path, text: issue.message };
      break;
    case "invalid_union": {
      // A plain union (not discriminated): report the branch that got furthest into the value, e.g.
      // the bad element of a seeds list rather than "not a number or a list".
      if (!("discriminator" in issue) || issue.discriminator === undefined) {
        const deepest = issue.errors
          .map((branch) => branch[0])
          .filter((i): i is Issue => i !== undefined)
          .sort((a, b) => b.path.length - a.path.length)[0];
        if (deepest && deepest.path.length > 0) return describeIssue(deepest, doc, fullPath);
      }
      break;
    }
  }
  if (!found) return { path, text: issue.code === "invalid_type" ? "required" : `required (${expectedText(issue).replace(/^expected /, "")})` };
  return { path, text: `${expectedText(issue)}, got ${preview(value)}` };
}

/** "expected …" for an issue: the schema's own text when it has one, else derived from the code. */
function expectedText(issue: Issue): string {
  if (issue.message.startsWith("expected")) return issue.message;
  switch (issue.code) {
    case "invalid_type":
      return `expected ${withArticle(issue.expected)}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => String(v)).join(", ")}`;
    case "invalid_union":
      return "options" in issue && Array.isArray(issue.options) ? `expected one of ${issue.options.join(", ")}` : "expected a different kind of value";
    case "too_small":
      return issue.origin === "array" ? `expected at least ${issue.minimum} entries` : `expected ${issue.inclusive ? "≥" : ">"} ${issue.minimum}`;
    case "too_big":
      return issue.origin === "array" ? `expected at most ${issue.maximum} entries` : `expected ${issue.inclusive ? "≤" : "<"} ${issue.maximum}`;
    case "invalid_format":
      return `expected ${issue.format} format`;
    default:
      return `expected something else (${issue.message})`;
  }
}

function withArticle(type: string): string {
  const words: Record<string, string> = { object: "a mapping", array: "a list", int: "an integer", number: "a number", string: "a string", boolean: "true or false" };
  return words[type] ?? `a ${type}`;
}

function lookup(doc: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let node: unknown = doc;
  for (const key of path) {
    if (typeof node !== "object" || node === null || !Object.prototype.hasOwnProperty.call(node, key)) return { found: false, value: undefined };
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return { found: node !== undefined, value: node };
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  if (typeof value === "number" && !Number.isFinite(value)) text = String(value); // JSON would say null
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** ["student", "model", "layers", 1, "units"] → "student.model.layers[1].units". */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}
