import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AWS_CLI_PATH } from "./tools";

// Asynchronous on purpose: the emulator and broker run in the test's process, and a blocking
// exec would starve them.
const run = promisify(execFile);

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The real AWS CLI against an endpoint, with a throw-away HOME and config and dummy keys: nothing
 * from the developer's own AWS setup leaks in. Skip tests with missingTools(TOOLS.awsCli).
 */
export function awsCli(endpoint: string, region: string) {
  const home = mkdtempSync(join(tmpdir(), "aws-cli-"));
  writeFileSync(join(home, "config"), "[default]\n");
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    AWS_CONFIG_FILE: join(home, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "credentials"),
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_DEFAULT_REGION: region,
    AWS_PAGER: "",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  const exec = (args: string[]) =>
    run(AWS_CLI_PATH, [...args, "--endpoint-url", endpoint, "--output", "json"], { env, timeout: 30_000 });
  return {
    /** Runs `aws <args>`; a failure is an answer (exit code and stderr), not an exception. */
    async run(...args: string[]): Promise<CliResult> {
      try {
        const { stdout, stderr } = await exec(args);
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failed = error as { code?: number; stdout?: string; stderr?: string };
        return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
      }
    },
    /** Runs `aws <args>` and parses its JSON output; throws with stderr when it fails. */
    async json<T>(...args: string[]): Promise<T> {
      const { stdout } = await exec(args);
      return JSON.parse(stdout) as T;
    },
    dispose: () => rmSync(home, { recursive: true, force: true }),
  };
}
