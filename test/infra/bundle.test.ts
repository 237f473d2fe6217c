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

it("builds the function bundle locally with esbuild, SDK clients included, and keeps it small", () => {
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
  expect(bundles).toHaveLength(1);
  const dir = bundles[0]!;
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
  // Source map without embedded sources: stack traces map, the bundle stays small.
  const map = JSON.parse(readFileSync(join(dir, "index.js.map"), "utf8"));
  expect(map.sourcesContent ?? []).toEqual([]);
});
