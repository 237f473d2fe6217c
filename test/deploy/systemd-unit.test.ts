import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { buildCli } from "../../scripts/build";
import { missingTools, TOOLS } from "../support/tools";

const run = promisify(execFile);
const UNIT = "deploy/activation-broker.service";
const skip = missingTools(TOOLS.systemdAnalyze);

/** `Key=value` lines of the unit, by key (a key may repeat). */
function directives(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) found.set(match[1]!, [...(found.get(match[1]!) ?? []), match[2]!]);
  }
  return found;
}

/** systemd-analyze on a copy in a directory of its own; its complaints come on stderr. */
async function analyze(args: string[], text: string): Promise<{ stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), "unit-"));
  const file = join(dir, "activation-broker.service");
  writeFileSync(file, text);
  return run("systemd-analyze", [...args, file], { cwd: dir });
}

describe("the systemd unit for `serve` (deploy/)", () => {
  const text = readFileSync(UNIT, "utf8");

  it.skipIf(skip)(`passes systemd-analyze verify without a single complaint${skip}`, async () => {
    const { stderr } = await analyze(["verify"], text);
    expect(stderr).toBe("");
  });

  it.skipIf(skip)(`catches a misspelled key with the same check (the check can fail)${skip}`, async () => {
    const { stderr } = await analyze(["verify"], text.replace("ProtectHome=", "ProtectHom="));
    expect(stderr).toContain("Unknown key 'ProtectHom'");
  });

  it("restarts on failure, runs unprivileged and read-only, and reads BROKER_* from a file", () => {
    const unit = directives(text);
    expect(unit.get("Restart")).toEqual(["on-failure"]);
    expect(unit.get("RestartPreventExitStatus")).toEqual(["2"]);
    expect(unit.get("EnvironmentFile")).toEqual(["/etc/activation-broker/broker.env"]);
    expect(unit.get("ExecStart")?.[0]).toMatch(/\/dist\/activation-broker\.mjs serve /);
    for (const [key, value] of [
      ["DynamicUser", "yes"],
      ["NoNewPrivileges", "yes"],
      ["ProtectSystem", "strict"],
      ["ProtectHome", "yes"],
      ["PrivateTmp", "yes"],
      ["PrivateDevices", "yes"],
      ["CapabilityBoundingSet", ""],
      ["RestrictNamespaces", "yes"],
    ]) {
      expect(unit.get(key!), key).toEqual([value]);
    }
    expect(unit.has("ReadWritePaths")).toBe(false);
  });

  it.skipIf(skip)(`is rated well by systemd-analyze security (at most 2.0 of 10)${skip}`, async () => {
    const { stdout } = await analyze(["security", "--offline=true", "--threshold=20", "--no-pager"], text);
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(stdout)?.[1]);
    expect(exposure).toBeLessThanOrEqual(2);
  });

  it("ships an environment file example with only settings the broker knows", () => {
    const example = readFileSync("deploy/broker.env.example", "utf8");
    const names = [...example.matchAll(/^#?([A-Z_]+)=/gm)].map((m) => m[1]!);
    expect(names).toContain("BROKER_TABLE_NAME");
    const settings = readFileSync("src/settings.ts", "utf8");
    for (const name of names.filter((n) => n.startsWith("BROKER_"))) expect(settings).toContain(`${name}:`);
  });

  it("runs from the bundle alone: dist/activation-broker.mjs needs no node_modules", async () => {
    const dir = mkdtempSync(join(tmpdir(), "opt-"));
    const built = join(dir, "build.mjs");
    await buildCli(built);
    // The layout the unit expects, with nothing else beside it.
    const installed = join(mkdtempSync(join(tmpdir(), "installed-")), "activation-broker.mjs");
    copyFileSync(built, installed);
    const { stdout } = await run(process.execPath, [installed, "--help"], { cwd: tmpdir() });
    expect(stdout).toContain("Usage: activation-broker");
    const failed = await run(process.execPath, [installed, "serve"], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? "" },
    }).catch((error: { code: number; stderr: string }) => error);
    // A missing setting is a usage error (exit 2): the unit does not restart it in a loop.
    expect(failed).toMatchObject({ code: 2 });
  });
});
