import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

// The Debian package's binary, named explicitly: another `aws` on PATH may be a broken shim.
export const AWS_CLI = "/usr/bin/aws";
export const hasAwsCli = existsSync(AWS_CLI);
const run = promisify(execFile);

/** The real AWS CLI against an endpoint, with a throw-away HOME and dummy keys. */
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
  return {
    /** Runs `aws <args>` and parses its JSON output; throws with stderr when it fails. */
    async json<T>(...args: string[]): Promise<T> {
      const { stdout } = await run(AWS_CLI, [...args, "--endpoint-url", endpoint, "--output", "json"], {
        env,
        timeout: 30_000,
      });
      return JSON.parse(stdout) as T;
    },
    dispose: () => rmSync(home, { recursive: true, force: true }),
  };
}
