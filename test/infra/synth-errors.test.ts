import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { EXISTING_RESOURCES } from "./support";

const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, "..", "..");

/** `cdk synth` with these CDK context `Pools`: its exit code and what it printed on stderr. */
async function synthWithPools(pools: unknown): Promise<{ code: number; stderr: string } | undefined> {
  return run(join(repoRoot, "node_modules", ".bin", "tsx"), ["infra/bin/app.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      CDK_CONTEXT_JSON: JSON.stringify({ ...EXISTING_RESOURCES, Pools: pools }),
      CDK_OUTDIR: mkdtempSync(join(tmpdir(), "synth-errors-")),
    },
  }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
}

/** `cdk synth` runs infra/bin/app.ts; a wrong setting must read as one line, not a stack trace. */
describe("cdk synth with a wrong setting", () => {
  it("prints one line naming it and exits 1", { timeout: 60_000 }, async () => {
    const failed = await synthWithPools({
      edge: { eksClusterArn: "arn:aws:eks:eu-west-1:1234:cluster/edge" },
    });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(
      "cdk synth: Invalid pool configuration: pools.edge.eksClusterArn: the account must be 12 digits, got '1234'\n",
    );
  });

  it(
    "refuses a kubelet flag holding a space, which would break nodeadm's kubelet arguments line",
    { timeout: 60_000 },
    async () => {
      const failed = await synthWithPools({
        edge: {
          eksClusterArn: "arn:aws:eks:eu-west-1:123456789012:cluster/edge",
          kubeletFlags: ["--node-labels=team=a b"],
        },
      });
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toContain("pools.edge.kubeletFlags");
      expect(failed?.stderr).toContain("kubelet flags may not hold whitespace, quotes or backslashes");
    },
  );
});
