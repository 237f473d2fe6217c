import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { EXISTING_RESOURCES } from "./support";

const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, "..", "..");

/** `cdk synth` runs infra/bin/app.ts; a wrong setting must read as one line, not a stack trace. */
describe("cdk synth with a wrong setting", () => {
  it("prints one line naming it and exits 1", { timeout: 60_000 }, async () => {
    const context = {
      ...EXISTING_RESOURCES,
      Pools: { edge: { eksClusterArn: "arn:aws:eks:eu-west-1:1234:cluster/edge" } },
    };
    const failed = await run(join(repoRoot, "node_modules", ".bin", "tsx"), ["infra/bin/app.ts"], {
      cwd: repoRoot,
      env: {
        ...process.env,
        CDK_CONTEXT_JSON: JSON.stringify(context),
        CDK_OUTDIR: mkdtempSync(join(tmpdir(), "synth-errors-")),
      },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(
      "cdk synth: Invalid pool configuration: pools.edge.eksClusterArn: the account must be 12 digits, got '1234'\n",
    );
  });
});
