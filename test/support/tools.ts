/**
 * The Debian tools some tests run for real. A developer without one sees the test skipped with
 * the install line in its title; under CI=true (CI installs every one of them) a missing tool is
 * an error that fails the file, so a skipped test can never pass CI unnoticed.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export interface Tool {
  readonly name: string;
  readonly install: string;
  readonly present: boolean;
}

/** A tool probed on first use, not at import: most files need none of them. */
function tool(name: string, install: string, probe: () => boolean): Tool {
  let present: boolean | undefined;
  return {
    name,
    install,
    get present() {
      return (present ??= probe());
    },
  };
}

const runs =
  (command: string, ...args: string[]) =>
  () =>
    spawnSync(command, args, { stdio: "ignore" }).status === 0;

/** The Debian package's binary, named explicitly: another `aws` on PATH may be a broken shim. */
export const AWS_CLI_PATH = "/usr/bin/aws";

export const TOOLS = {
  awsCli: tool("aws", "apt-get install -y awscli", () => existsSync(AWS_CLI_PATH)),
  shellcheck: tool("shellcheck", "apt-get install -y shellcheck", runs("shellcheck", "--version")),
  curl: tool("curl", "apt-get install -y curl", runs("curl", "--version")),
  jq: tool("jq", "apt-get install -y jq", runs("jq", "--version")),
  cfnLint: tool("cfn-lint", "pip install cfn-lint", runs("cfn-lint", "--version")),
  systemdAnalyze: tool("systemd-analyze", "apt-get install -y systemd", runs("systemd-analyze", "--version")),
} as const;

/**
 * "" when every tool is present; otherwise the reason to skip, to append to the test's title:
 * `it.skipIf(skip)(title + skip, …)`. Under CI=true a missing tool throws instead.
 */
export function missingTools(...tools: Tool[]): string {
  const missing = tools.filter((t) => !t.present);
  if (missing.length === 0) return "";
  const names = missing.map((t) => t.name).join(", ");
  const install = missing.map((t) => t.install).join("; ");
  if (process.env.CI === "true") throw new Error(`CI=true, but ${names} is missing: ${install}`);
  return ` — skipped: install ${names} (${install})`;
}
