import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { TOOLS, missingTools } from "../support/tools";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const skip = missingTools(TOOLS.shellcheck);
const files = [
  "agent/install.sh",
  "agent/install-eks.sh",
  ...readdirSync(`${repoRoot}test/agent/stubs`).map((name) => `test/agent/stubs/${name}`),
  "test/agent/helpers/common.bash",
];

it.skipIf(skip)(`the install scripts and the test stubs are shellcheck clean${skip}`, () => {
  const result = spawnSync("shellcheck", ["--external-sources", "--shell=bash", ...files], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  expect(result.stdout + result.stderr).toBe("");
  expect(result.status).toBe(0);
});
