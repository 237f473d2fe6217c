/**
 * PowerShell cannot run on our machines, so install.ps1 is reviewed, not executed. This static
 * check keeps it in step with install.sh: placeholders, options, exit codes.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PLACEHOLDERS, SOURCES } from "../../scripts/embed-agent-scripts";

const sh = readFileSync(SOURCES.sh, "utf8");
const ps1 = readFileSync(SOURCES.ps1, "utf8");

// Options that only make sense on Linux; anything else must exist in both scripts.
const LINUX_ONLY = new Set(["root", "install-method", "agent-key"]);

function exitTable(text: string): Record<string, number> {
  const block = text.slice(text.indexOf("Exit codes (install"));
  const table: Record<string, number> = {};
  for (const line of block.split("\n").slice(1)) {
    const row = /^[#\s]*(\d+)\s+([A-Z_]+)\s+\S/.exec(line);
    if (!row) break;
    table[row[2]!] = Number(row[1]);
  }
  return table;
}

function constants(text: string, pattern: RegExp): Record<string, number> {
  const found: Record<string, number> = {};
  for (const match of text.matchAll(pattern)) found[match[1]!] = Number(match[2]);
  return found;
}

const kebab = (name: string) => name.replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase();

describe("install.ps1 stays in step with install.sh", () => {
  it("documents the same exit code table, and defines the same constants", () => {
    const shTable = exitTable(sh);
    expect(Object.keys(shTable).length).toBeGreaterThanOrEqual(10);
    expect(exitTable(ps1)).toEqual(shTable);
    const shConstants = constants(sh, /^readonly EXIT_([A-Z_]+)=(\d+)$/gm);
    const psConstants = constants(ps1, /^\$EXIT_([A-Z_]+) = (\d+)$/gm);
    expect(shConstants).toEqual(shTable);
    expect(psConstants).toEqual(shTable);
  });

  it("has the same broker placeholders, once each, with the same environment overrides", () => {
    for (const marker of Object.values(PLACEHOLDERS)) {
      expect(sh.split(marker).length - 1).toBe(1);
      expect(ps1.split(marker).length - 1).toBe(1);
    }
    expect(sh).toContain('BROKER_URL="${BROKER_URL:-__BROKER_URL__}"');
    expect(sh).toContain('BROKER_POOL="${BROKER_POOL:-__BROKER_POOL__}"');
    expect(ps1).toContain(
      "[string]$Url = $(if ($env:BROKER_URL) { $env:BROKER_URL } else { '__BROKER_URL__' })",
    );
    expect(ps1).toContain(
      "[string]$Pool = $(if ($env:BROKER_POOL) { $env:BROKER_POOL } else { '__BROKER_POOL__' })",
    );
  });

  it("accepts the same options (except the Linux-only ones)", () => {
    const shOptions = new Set([...sh.matchAll(/^\s+(?:-h \| )?--([a-z][a-z-]*)\)/gm)].map((m) => m[1]!));
    const paramBlock = ps1.slice(ps1.indexOf("param("), ps1.indexOf("\n)\n"));
    const psOptions = new Set(
      [...paramBlock.matchAll(/\[(?:string|switch|int)\]\$([A-Za-z]+)/g)].map((m) => kebab(m[1]!)),
    );
    expect(shOptions.size).toBeGreaterThanOrEqual(12);
    expect([...shOptions].filter((o) => !LINUX_ONLY.has(o)).sort()).toEqual([...psOptions].sort());
  });

  it("uses the same retry defaults and the regional bucket", () => {
    expect(sh).toMatch(/MAX_WAIT="\$\{INSTALL_MAX_WAIT:-300\}"/);
    expect(ps1).toContain("[int]$MaxWait = 300");
    expect(ps1).toContain("https://amazon-ssm-$R.s3.$R.amazonaws.com/latest/$Folder/AmazonSSMAgentSetup.exe");
    expect(ps1).toMatch(/Get-AuthenticodeSignature/);
    expect(ps1).toMatch(/Status -ne 'Valid'/);
  });
});
