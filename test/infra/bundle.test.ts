import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { expect, it, vi } from "vitest";
import { synthBrokerApp } from "./support";

/**
 * The function bundle is built the way `cdk synth` builds it: local esbuild, no Docker. The size
 * budget here only catches accidents (a dependency left unbundled, sources inlined); the real
 * budget lives in the benchmark.
 */
const ACCIDENT_BUDGET_BYTES = 5 * 1024 * 1024;

it("builds the broker's and the janitor's bundles locally with esbuild, SDK clients included, and keeps them small", () => {
  // CDK announces "Bundling asset …" on stderr itself; keep it off a green run's output.
  const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  const { outdir } = (() => {
    try {
      return synthBrokerApp({}, { bundle: true });
    } finally {
      stderr.mockRestore();
    }
  })();
  const assets = readdirSync(outdir).filter(
    (d) => d.startsWith("asset.") && statSync(join(outdir, d)).isDirectory(),
  );
  const bundles = assets.map((d) => join(outdir, d)).filter((d) => readdirSync(d).includes("index.js"));
  expect(bundles).toHaveLength(2);
  // Only the broker's bundle vends, so only it carries the vend's errors; the janitor's is checked
  // for everything else.
  const vending = bundles.filter((d) =>
    readFileSync(join(d, "index.js"), "utf8").includes('"RotationInProgress"'),
  );
  expect(vending).toHaveLength(1);
  for (const dir of bundles) checkBundle(dir, vending.includes(dir));
});

function checkBundle(dir: string, vends: boolean): void {
  const code = readFileSync(join(dir, "index.js"), "utf8");
  const size = statSync(join(dir, "index.js")).size;
  console.log(
    `function bundle: index.js ${(size / 1024).toFixed(0)} KiB, index.js.map ${(statSync(join(dir, "index.js.map")).size / 1024).toFixed(0)} KiB`,
  );

  expect(size).toBeLessThan(ACCIDENT_BUDGET_BYTES);
  // The SDK v3 clients are inside the bundle (version pinned), not required from the runtime.
  // (The SDK's optional requires of the SigV4a signers, in try/catch and unused here, stay external.)
  const runtimeRequires = code.match(/require\(["']@aws-sdk\/[^"']+["']\)/g) ?? [];
  expect(runtimeRequires.filter((r) => !/signature-v4(a|-crt)['"]/.test(r))).toEqual([]);
  expect(code).toContain("DynamoDB_20120810");
  expect(code).toContain("AmazonSSM");
  // Logged error names survive minification: the errors a vend can log state their names as
  // literals (no `new.target.name`, which minify turns into one letter).
  expect(code).not.toContain("new.target.name");
  const logged = ["RotationInProgressError", "RotationBudgetExhaustedError", "ThrottledError"];
  for (const name of [...(vends ? logged : []), "UpstreamUnavailableError", "ConfigError"]) {
    expect(code, name).toMatch(new RegExp(`name\\s*=\\s*"${name}"`));
  }
  if (vends) expect(code).toMatch(/name\s*=\s*"PoolNotFoundError"/);
  // Source map without embedded sources: stack traces map, the bundle stays small.
  const map = JSON.parse(readFileSync(join(dir, "index.js.map"), "utf8"));
  expect(map.sourcesContent ?? []).toEqual([]);
}
