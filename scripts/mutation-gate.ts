/**
 * The mutation gate (docs/testing.md, "Mutation testing").
 *
 *   tsx scripts/mutation-gate.ts full      `npm run test:mutation`: every mutant of src/core and
 *                                          src/aws; on success, refreshes the committed baseline
 *   tsx scripts/mutation-gate.ts changed   `npm run test:mutation:changed` (CI): Stryker's
 *                                          incremental mode against the committed baseline
 *
 * Both fail when Stryker does (score below `thresholds.break`), and `changed` also fails when a
 * mutant ends Survived or NoCoverage and was not already one in the baseline: one new survivor
 * fails CI even while the overall score stays far above the threshold.
 *
 * Stryker's own diff sees the mutated files and the test files, nothing else. The baseline
 * therefore records a fingerprint (sha256) of every other file its verdicts depend on: what the
 * test files import (test/support, the contract suites, the emulator, src/http, ...), the configs
 * and the lockfile. A changed config means a full sweep; a changed helper means the mutants covered
 * by the test files that import it are tested again.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, globSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import prettier from "prettier";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const BASELINE = "mutation/stryker-incremental.json";
export const RECORD = "mutation/baseline.json";
/** Where a run reads and writes its incremental file; reports/ is never committed. */
const RUN_FILE = "reports/stryker-incremental.json";

/**
 * Inputs of every verdict that the import graph cannot attribute to test files: when one changes,
 * no verdict can be reused. The fixtures are read with readFileSync, which the graph cannot see.
 */
export const CONFIG_INPUTS = [
  "stryker.config.mjs",
  "vitest.mutation.config.ts",
  "vitest.config.ts",
  "tsconfig.mutation.json",
  "tsconfig.json",
  "package-lock.json",
  "test/emulator/fixtures/**",
];

/** The mutation-testing-report-schema fields the gate reads (Stryker's incremental file is one). */
export interface Position {
  line: number;
  column: number;
}
export interface ReportMutant {
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: Position; end: Position };
}
export interface Report {
  files: Record<string, { source: string; mutants: ReportMutant[] }>;
  testFiles?: Record<string, { source?: string }>;
}
/** What the baseline's verdicts were computed from, besides the files Stryker diffs itself. */
export interface BaselineRecord {
  /** For people: the commit the sweep ran at (the fingerprints, not the history, decide). */
  commit: string;
  /** sha256 of each of CONFIG_INPUTS (a glob: of the names and contents it matched). */
  configs: Record<string, string>;
  /** sha256 of each file a test file loads that Stryker does not diff (test/support, emulator, ...). */
  helpers: Record<string, string>;
}
export interface Survivor {
  key: string;
  where: string;
  description: string;
}

const SURVIVING = new Set(["Survived", "NoCoverage"]);

/** The text a mutant replaces; the report's positions are 1-based lines and columns. */
export function originalText(source: string, { start, end }: { start: Position; end: Position }): string {
  const lines = source.split("\n");
  const offset = (p: Position) =>
    lines.slice(0, p.line - 1).reduce((n, l) => n + l.length + 1, 0) + p.column - 1;
  return source.slice(offset(start), offset(end));
}

/** Survivors keyed by file, mutator, replacement and original text: not by line, which moves. */
export function survivorsOf(report: Report): Survivor[] {
  return Object.entries(report.files).flatMap(([file, { source, mutants }]) =>
    mutants
      .filter((m) => SURVIVING.has(m.status))
      .map((m) => {
        const original = originalText(source, m.location);
        const replacement = m.replacement ?? m.mutatorName;
        return {
          key: JSON.stringify([file, m.mutatorName, replacement, original]),
          where: `${file}:${m.location.start.line}:${m.location.start.column}`,
          description: `${m.status} ${m.mutatorName}: ${oneLine(original)} → ${oneLine(replacement)}`,
        };
      }),
  );
}

const oneLine = (s: string) => (s.length > 80 ? `${s.slice(0, 77)}...` : s).replace(/\s+/g, " ");

/** The current survivors beyond the baseline's: a key surviving twice where it survived once is one. */
export function newSurvivors(baseline: Report, current: Report): Survivor[] {
  const accepted = new Map<string, number>();
  for (const s of survivorsOf(baseline)) accepted.set(s.key, (accepted.get(s.key) ?? 0) + 1);
  return survivorsOf(current).filter((s) => {
    const left = accepted.get(s.key) ?? 0;
    accepted.set(s.key, left - 1);
    return left <= 0;
  });
}

export type Plan =
  { kind: "full"; reason: string } | { kind: "incremental"; staleTestFiles: Map<string, string[]> };

/**
 * What the baseline's verdicts can still be trusted for. `deps` maps each test file Stryker runs to
 * the files it loads besides itself and the mutated files; the hash functions fingerprint as of now.
 */
export function plan(
  record: BaselineRecord | undefined,
  configInputs: string[],
  deps: Map<string, string[]>,
  hashConfig: (input: string) => string | undefined,
  hashHelper: (file: string) => string | undefined,
): Plan {
  if (!record) return { kind: "full", reason: `no baseline (${BASELINE}, ${RECORD})` };
  for (const input of new Set([...configInputs, ...Object.keys(record.configs)])) {
    const now = configInputs.includes(input) ? hashConfig(input) : undefined;
    if (now === undefined || record.configs[input] !== now) {
      return { kind: "full", reason: `${input} changed since the baseline (commit ${record.commit})` };
    }
  }
  const staleTestFiles = new Map<string, string[]>();
  for (const [testFile, helpers] of deps) {
    const changed = helpers.filter((h) => {
      const now = hashHelper(h);
      return now === undefined || record.helpers[h] !== now;
    });
    if (changed.length > 0) staleTestFiles.set(testFile, changed);
  }
  return { kind: "incremental", staleTestFiles };
}

/** The baseline as Stryker should read it: the stale test files' tests forgotten, so every verdict
 * they gave (a kill, or the coverage that let a survivor's verdict be reused) is tested again. */
export function withoutTestFiles(report: Report, stale: Iterable<string>): Report {
  const testFiles = { ...report.testFiles };
  for (const f of stale) delete testFiles[f];
  return { ...report, testFiles };
}

/**
 * True when Stryker would reuse every verdict without running a mutant: the same mutated files and
 * test files, each reading as the baseline recorded it (and `plan` found no helper changed). Then
 * the gate need not start Stryker at all: its dry run would only repeat `npm test`'s.
 */
export function untouched(
  baseline: Report,
  mutated: string[],
  tests: string[],
  read: (file: string) => string | undefined,
): boolean {
  const same = (recorded: Record<string, { source?: string }>, now: string[]) =>
    Object.keys(recorded).sort().join("\n") === [...now].sort().join("\n") &&
    now.every((f) => recorded[f]?.source !== undefined && recorded[f]?.source === read(f));
  return same(baseline.files, mutated) && same(baseline.testFiles ?? {}, tests);
}

// ---------------------------------------------------------------------------------------------
// The run: files, git, depcruise and Stryker.

const sha256 = (file: string) => {
  const path = join(ROOT, file);
  return existsSync(path) ? createHash("sha256").update(readFileSync(path)).digest("hex") : undefined;
};

/** A config input is a file or a glob; a glob's fingerprint covers the names and contents it matches. */
function configHash(input: string): string | undefined {
  if (!input.includes("*")) return sha256(input);
  const files = globSync(input, { cwd: ROOT })
    .filter((f) => statSync(join(ROOT, f)).isFile())
    .sort();
  return createHash("sha256")
    .update(files.map((f) => `${f}\0${sha256(f)}`).join("\n"))
    .digest("hex");
}

/** The files Stryker mutates (stryker.config.mjs) and the test files it runs (vitest.mutation.config.ts). */
export async function suiteFiles(): Promise<{ mutated: string[]; tests: string[] }> {
  const strykerConfig = pathToFileURL(join(ROOT, "stryker.config.mjs")).href;
  const { mutate } = ((await import(strykerConfig)) as { default: { mutate: string[] } }).default;
  const { default: vitestConfig } = await import("../vitest.mutation.config");
  return {
    mutated: globSync(mutate, { cwd: ROOT }).sort(),
    tests: globSync(vitestConfig.test?.include ?? [], { cwd: ROOT }).sort(),
  };
}

/** For each test file Stryker runs, the repository files it loads but itself and the mutated files. */
export async function dependencies(): Promise<Map<string, string[]>> {
  const { tests, ...files } = await suiteFiles();
  const mutated = new Set(files.mutated);
  // dependency-cruiser resolves imports as TypeScript does (lint uses it for the layering rules).
  const cruise = spawnSync(
    "npx",
    [
      "depcruise",
      "--no-config",
      "--ts-config",
      "tsconfig.json",
      "--do-not-follow",
      "node_modules",
      "--output-type",
      "json",
      ...tests,
    ],
    { cwd: ROOT, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
  );
  if (cruise.status !== 0) throw new Error(`depcruise failed: ${cruise.stderr}`);
  const { modules } = JSON.parse(cruise.stdout) as {
    modules: { source: string; dependencies: { resolved: string }[] }[];
  };
  // Packages count through package-lock.json; a symlinked node_modules resolves outside the repo.
  const inRepo = (f: string) =>
    !f.includes("node_modules/") && !f.startsWith("../") && existsSync(join(ROOT, f));
  const edges = new Map(modules.map((m) => [m.source, m.dependencies.map((d) => d.resolved).filter(inRepo)]));
  return new Map(
    tests.map((test) => {
      const seen = new Set([test]);
      const todo = [test];
      for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
        for (const next of edges.get(f) ?? []) {
          if (!seen.has(next)) todo.push(next);
          seen.add(next);
        }
      }
      return [test, [...seen].filter((f) => f !== test && !mutated.has(f)).sort()];
    }),
  );
}

function stryker(force: boolean): number {
  // A forced run starts from nothing, so a report left by an earlier run is never read as this one's.
  if (force) rmSync(join(ROOT, RUN_FILE), { force: true });
  const args = ["stryker", "run", "--incrementalFile", RUN_FILE, ...(force ? ["--force"] : [])];
  return spawnSync("npx", args, { cwd: ROOT, stdio: "inherit" }).status ?? 1;
}

const loadJson = <T>(file: string): T | undefined =>
  existsSync(join(ROOT, file)) ? (JSON.parse(readFileSync(join(ROOT, file), "utf8")) as T) : undefined;

/** Written as Prettier would, so `npm run lint` passes on the committed baseline. */
export async function writeJson(file: string, value: unknown) {
  mkdirSync(dirname(join(ROOT, file)), { recursive: true });
  writeFileSync(join(ROOT, file), await prettier.format(JSON.stringify(value), { parser: "json" }));
}

function listNew(baseline: Report | undefined, current: Report, label: string): Survivor[] {
  const fresh = baseline ? newSurvivors(baseline, current) : [];
  for (const s of fresh) console.error(`  ${label}: ${s.where} ${s.description}`);
  return fresh;
}

/** What a sweep at this moment computes its verdicts from (see BaselineRecord). */
export async function currentRecord(): Promise<BaselineRecord> {
  const deps = await dependencies();
  const helpers = [...new Set([...deps.values()].flat())].sort();
  return {
    commit: spawnSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim(),
    configs: Object.fromEntries(CONFIG_INPUTS.map((c) => [c, configHash(c) ?? ""])),
    helpers: Object.fromEntries(helpers.map((f) => [f, sha256(f) ?? ""])),
  };
}

async function full(): Promise<number> {
  // Fingerprinted before the run: the files the verdicts are computed from.
  const record = await currentRecord();
  const status = stryker(true);
  const current = loadJson<Report>(RUN_FILE);
  if (status !== 0 || !current) return status || 1;
  const accepted = listNew(loadJson<Report>(BASELINE), current, "survivor now accepted");
  await writeJson(BASELINE, current);
  await writeJson(RECORD, record);
  console.log(
    `mutation gate: baseline refreshed (${BASELINE}, ${RECORD}); ${accepted.length} survivor(s) ` +
      "not in the previous baseline (listed above): review them before committing.",
  );
  return 0;
}

async function changed(): Promise<number> {
  const baseline = loadJson<Report>(BASELINE);
  const record = baseline && loadJson<BaselineRecord>(RECORD);
  const decision = plan(record, CONFIG_INPUTS, await dependencies(), configHash, sha256);
  const { mutated, tests } = await suiteFiles();
  const read = (f: string) => (existsSync(join(ROOT, f)) ? readFileSync(join(ROOT, f), "utf8") : undefined);
  if (baseline && decision.kind === "incremental" && decision.staleTestFiles.size === 0) {
    if (untouched(baseline, mutated, tests, read)) {
      console.log(
        "mutation gate: nothing Stryker reads changed since the baseline " +
          `(commit ${record?.commit}): every verdict stands, no mutant to test`,
      );
      return 0;
    }
  }
  let status: number;
  if (decision.kind === "full" || !baseline) {
    console.log(`mutation gate: full sweep: ${decision.kind === "full" ? decision.reason : "no baseline"}`);
    status = stryker(true);
  } else {
    for (const [test, helpers] of decision.staleTestFiles) {
      console.log(`mutation gate: testing again what ${test} decided (${helpers.join(", ")} changed)`);
    }
    mkdirSync(dirname(join(ROOT, RUN_FILE)), { recursive: true });
    writeFileSync(
      join(ROOT, RUN_FILE),
      JSON.stringify(withoutTestFiles(baseline, decision.staleTestFiles.keys())),
    );
    status = stryker(false);
  }
  const current = loadJson<Report>(RUN_FILE);
  if (!current) return status || 1;
  const fresh = listNew(baseline, current, "new survivor");
  if (fresh.length > 0) {
    console.error(
      `mutation gate: FAILED: ${fresh.length} mutant(s) survive that the baseline does not accept. ` +
        "Kill each with a test, or mark an equivalent one (docs/testing.md).",
    );
    return 1;
  }
  console.log(
    `mutation gate: no survivor beyond the ${baseline ? survivorsOf(baseline).length : 0} of the baseline`,
  );
  return status;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const mode = process.argv[2];
  if (mode !== "full" && mode !== "changed") {
    console.error("usage: tsx scripts/mutation-gate.ts full|changed");
    process.exit(2);
  }
  process.exit(await (mode === "full" ? full() : changed()));
}
