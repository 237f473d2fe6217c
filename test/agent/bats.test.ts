/**
 * Runs the bats suites (test/agent/*.bats) against the real agent/install.sh, with the local
 * stack and the harness started here, so `npm test` covers the bootstrap script end to end.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBatsEnvironment, type BatsEnvironment } from "./support/environment";

const here = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const bats = `${repoRoot}node_modules/bats/bin/bats`;
const suites = readdirSync(here)
  .filter((name) => name.endsWith(".bats"))
  .sort();

// The servers live in this process, so bats must run asynchronously (never spawnSync).
function runBats(file: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bats, ["--tap", file], {
      cwd: repoRoot,
      env: { ...process.env, ...env, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

describe("install.sh end to end (bats)", () => {
  let environment: BatsEnvironment;

  beforeAll(async () => {
    environment = await startBatsEnvironment();
  });
  afterAll(async () => {
    await environment?.close();
  });

  it("finds the bats suites", () => {
    expect(suites.length).toBeGreaterThanOrEqual(4);
  });

  for (const suite of suites) {
    it(`${suite} passes`, { timeout: 300_000 }, async () => {
      const { code, output } = await runBats(`${here}${suite}`, environment.env);
      const failures = output.split("\n").filter((line) => line.startsWith("not ok"));
      expect(failures, output).toEqual([]);
      expect(code, output).toBe(0);
    });
  }
});
