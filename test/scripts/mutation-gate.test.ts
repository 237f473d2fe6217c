import { globSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  dependencies,
  newSurvivors,
  originalText,
  plan,
  survivorsOf,
  untouched,
  withoutTestFiles,
  type BaselineRecord,
  type Report,
  type ReportMutant,
} from "../../scripts/mutation-gate";

const SOURCE = ["export function ok(a: number) {", "  return a < 10 && a > 0;", "}", ""].join("\n");

/** A mutant of SOURCE's `a < 10` (line 2, columns 10–16) unless told otherwise. */
function mutant(status: string, over: Partial<ReportMutant> = {}): ReportMutant {
  return {
    mutatorName: "EqualityOperator",
    replacement: "a <= 10",
    status,
    location: { start: { line: 2, column: 10 }, end: { line: 2, column: 16 } },
    ...over,
  };
}

const report = (mutants: ReportMutant[], source = SOURCE): Report => ({
  files: { "src/core/x.ts": { source, mutants } },
});

describe("mutation gate: survivors", () => {
  it("reads the replaced text from 1-based positions, across lines", () => {
    expect(originalText(SOURCE, { start: { line: 2, column: 10 }, end: { line: 2, column: 16 } })).toBe(
      "a < 10",
    );
    expect(originalText(SOURCE, { start: { line: 1, column: 31 }, end: { line: 3, column: 2 } })).toBe(
      "{\n  return a < 10 && a > 0;\n}",
    );
  });

  it("counts Survived and NoCoverage, not Killed, Timeout or CompileError", () => {
    const statuses = ["Survived", "NoCoverage", "Killed", "Timeout", "CompileError", "Ignored"];
    const found = survivorsOf(report(statuses.map((s) => mutant(s))));
    expect(found.map((s) => s.description.split(" ")[0])).toEqual(["Survived", "NoCoverage"]);
    expect(found[0]?.where).toBe("src/core/x.ts:2:10");
    expect(found[0]?.description).toBe("Survived EqualityOperator: a < 10 → a <= 10");
  });

  it("accepts a baseline survivor that only moved to another line", () => {
    const moved = `// a comment\n\n${SOURCE}`;
    const at = (line: number) => ({ start: { line, column: 10 }, end: { line, column: 16 } });
    const current = report([mutant("Survived", { location: at(4) })], moved);
    expect(newSurvivors(report([mutant("Survived")]), current)).toEqual([]);
  });

  it("fails a survivor the baseline had killed, or had not seen", () => {
    const current = report([mutant("Survived")]);
    expect(newSurvivors(report([mutant("Killed")]), current)).toHaveLength(1);
    expect(newSurvivors(report([]), current)).toHaveLength(1);
  });

  it("tells mutants apart by mutator, replacement, text and file", () => {
    const baseline = report([mutant("Survived")]);
    const other = (over: Partial<ReportMutant>) => newSurvivors(baseline, report([mutant("Survived", over)]));
    expect(other({ replacement: "a >= 10" })).toHaveLength(1);
    expect(other({ mutatorName: "ConditionalExpression", replacement: "true" })).toHaveLength(1);
    // Same columns, other text: `a > 0;` is not `a < 10`.
    expect(
      other({ location: { start: { line: 2, column: 20 }, end: { line: 2, column: 25 } } }),
    ).toHaveLength(1);
    const elsewhere: Report = {
      files: { "src/core/y.ts": report([mutant("Survived")]).files["src/core/x.ts"]! },
    };
    expect(newSurvivors(baseline, elsewhere)).toHaveLength(1);
  });

  it("counts duplicates: one accepted survivor does not accept a second identical one", () => {
    const twice = `${SOURCE}\nexport function ok2(a: number) {\n  return a < 10 && a > 0;\n}\n`;
    const second = { start: { line: 6, column: 10 }, end: { line: 6, column: 16 } };
    const current = report([mutant("Survived"), mutant("Survived", { location: second })], twice);
    const fresh = newSurvivors(report([mutant("Survived")]), current);
    expect(fresh).toHaveLength(1);
    expect(fresh[0]?.where).toBe("src/core/x.ts:6:10");
  });
});

describe("mutation gate: what the baseline is still good for", () => {
  const configs = ["stryker.config.mjs", "package-lock.json"];
  const record: BaselineRecord = {
    commit: "abc",
    configs: { "stryker.config.mjs": "s1", "package-lock.json": "l1" },
    helpers: { "test/support/fakes.ts": "f1", "emulator/server.ts": "e1" },
  };
  const deps = new Map([
    ["test/core/vend.test.ts", ["test/support/fakes.ts"]],
    ["test/aws/x.test.ts", ["emulator/server.ts", "test/support/fakes.ts"]],
  ]);
  const hashes = (over: Record<string, string | undefined>) => (f: string) =>
    f in over ? over[f] : { ...record.configs, ...record.helpers }[f];

  it("reuses every verdict when nothing Stryker cannot see changed", () => {
    expect(plan(record, configs, deps, hashes({}), hashes({}))).toEqual({
      kind: "incremental",
      staleTestFiles: new Map(),
    });
  });

  it("sweeps everything without a baseline", () => {
    expect(plan(undefined, configs, deps, hashes({}), hashes({}))).toMatchObject({ kind: "full" });
  });

  it("sweeps everything when a config or the lockfile changed, appeared or went", () => {
    const changed = plan(record, configs, deps, hashes({ "package-lock.json": "l2" }), hashes({}));
    expect(changed).toEqual({
      kind: "full",
      reason: "package-lock.json changed since the baseline (commit abc)",
    });
    expect(
      plan(record, [...configs, "new.json"], deps, hashes({ "new.json": "n" }), hashes({})),
    ).toMatchObject({
      kind: "full",
    });
    expect(plan(record, ["package-lock.json"], deps, hashes({}), hashes({}))).toMatchObject({ kind: "full" });
    const deleted = hashes({ "stryker.config.mjs": undefined });
    expect(plan(record, configs, deps, deleted, hashes({}))).toMatchObject({ kind: "full" });
  });

  it("retests only the test files that load a changed, new or deleted helper", () => {
    const emulator = plan(record, configs, deps, hashes({}), hashes({ "emulator/server.ts": "e2" }));
    expect(emulator).toEqual({
      kind: "incremental",
      staleTestFiles: new Map([["test/aws/x.test.ts", ["emulator/server.ts"]]]),
    });
    const fakes = plan(record, configs, deps, hashes({}), hashes({ "test/support/fakes.ts": undefined }));
    expect(fakes.kind === "incremental" && [...fakes.staleTestFiles.keys()]).toEqual([
      "test/core/vend.test.ts",
      "test/aws/x.test.ts",
    ]);
    const withNew = new Map([...deps, ["test/core/vend.test.ts", ["test/support/new.ts"]]]);
    const added = plan(record, configs, withNew, hashes({}), hashes({ "test/support/new.ts": "n1" }));
    expect(added.kind === "incremental" && [...added.staleTestFiles.keys()]).toEqual([
      "test/core/vend.test.ts",
    ]);
  });

  it("hands Stryker the baseline without the stale test files, so their verdicts are not reused", () => {
    const baseline: Report = { ...report([]), testFiles: { "test/a.test.ts": {}, "test/b.test.ts": {} } };
    expect(withoutTestFiles(baseline, ["test/a.test.ts"]).testFiles).toEqual({ "test/b.test.ts": {} });
    expect(baseline.testFiles).toHaveProperty("test/a.test.ts");
  });
});

describe("mutation gate: skipping Stryker", () => {
  const baseline: Report = {
    files: { "src/core/x.ts": { source: "x", mutants: [] } },
    testFiles: { "test/core/x.test.ts": { source: "t" } },
  };
  const disk =
    (over: Record<string, string | undefined> = {}) =>
    (f: string) =>
      f in over
        ? over[f]
        : ({ "src/core/x.ts": "x", "test/core/x.test.ts": "t" } as Record<string, string>)[f];
  const check = (mutated: string[], tests: string[], read = disk()) =>
    untouched(baseline, mutated, tests, read);

  it("only when every mutated and test file reads as the baseline recorded it", () => {
    expect(check(["src/core/x.ts"], ["test/core/x.test.ts"])).toBe(true);
    expect(check(["src/core/x.ts"], ["test/core/x.test.ts"], disk({ "src/core/x.ts": "y" }))).toBe(false);
    expect(check(["src/core/x.ts"], ["test/core/x.test.ts"], disk({ "test/core/x.test.ts": "u" }))).toBe(
      false,
    );
  });

  it("not when a file was added or removed on either side", () => {
    expect(check(["src/core/x.ts", "src/core/new.ts"], ["test/core/x.test.ts"])).toBe(false);
    expect(check(["src/core/x.ts"], ["test/core/x.test.ts", "test/core/new.test.ts"])).toBe(false);
    expect(check([], ["test/core/x.test.ts"])).toBe(false);
    expect(check(["src/core/x.ts"], [])).toBe(false);
  });
});

describe("mutation gate: the files Stryker's own diff cannot see", () => {
  it("follows each test file's imports through helpers into the emulator and src/http", async () => {
    const deps = await dependencies();
    const contract = deps.get("test/contract/activation-provider.contract.test.ts") ?? [];
    expect(contract).toEqual(
      expect.arrayContaining([
        "test/contract/activation-provider.contract.ts",
        "test/support/local.ts",
        "src/http/node-server.ts",
        "emulator/server.ts",
      ]),
    );
    expect(deps.get("test/core/vend.test.ts")).toEqual(expect.arrayContaining(["test/support/fakes.ts"]));
    // Stryker diffs these itself: the test file and the mutated files are never helpers.
    const all = [...deps.values()].flat();
    expect(all.filter((f) => f.endsWith(".test.ts") || /^src\/(core|aws)\//.test(f))).toEqual([]);
    // Packages count through package-lock.json, wherever node_modules lives (a symlink, here).
    expect(all.filter((f) => f.includes("node_modules") || f.startsWith(".."))).toEqual([]);
    // Every suite Stryker runs (vitest.mutation.config.ts) has an entry.
    expect([...deps.keys()]).toEqual(globSync("test/{core,contract,aws}/**/*.test.ts").sort());
  }, 120_000);
});
