/**
 * PowerShell cannot run on our machines, so install.ps1 is reviewed, not executed. This static
 * check keeps it in step with install.sh: placeholders, options, exit codes.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PLACEHOLDERS, SOURCES } from "../../scripts/embed-agent-scripts";

const sh = readFileSync(SOURCES.sh, "utf8");
const ps1 = readFileSync(SOURCES.ps1, "utf8");

// Options that only make sense on Linux (the test root, the rpm/deb method and its GPG key,
// ssm-setup-cli's -version, and EKS Hybrid Nodes, whose nodeadm is Linux-only); anything else
// must exist in both scripts.
const LINUX_ONLY = new Set(["root", "install-method", "agent-key", "agent-version", "eks", "nodeadm-path"]);
// install.sh options that install.ps1 gets from [CmdletBinding()] as common parameters.
const COMMON_PARAMETERS = new Set(["verbose"]);

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
    expect(Object.keys(shTable).length).toBeGreaterThanOrEqual(12);
    expect(shTable.DEREGISTER_FAILED).toBe(23);
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

  const shOptions = new Set([...sh.matchAll(/^\s+(?:-h \| )?--([a-z][a-z0-9-]*)\)/gm)].map((m) => m[1]!));
  const paramBlock = ps1.slice(ps1.indexOf("param("), ps1.indexOf("\n)\n"));
  const psParams = [...paramBlock.matchAll(/\[(?:string|switch|int)\]\$([A-Za-z0-9]+)/g)].map((m) => m[1]!);

  it("accepts the same options (except the Linux-only ones)", () => {
    const psOptions = new Set([...psParams.map(kebab), ...COMMON_PARAMETERS]);
    expect(shOptions.size).toBeGreaterThanOrEqual(25);
    expect([...shOptions].filter((o) => !LINUX_ONLY.has(o)).sort()).toEqual([...psOptions].sort());
  });

  it("has the options of onboarding in real fleets in both scripts", () => {
    for (const option of [
      "ssm-endpoint",
      "ec2messages-endpoint",
      "ssmmessages-endpoint",
      "agent-path",
      "package",
      "mirror-url",
      "no-start",
      "deregister",
      "quiet",
      "verbose",
      "log-file",
    ]) {
      expect(shOptions, option).toContain(option);
    }
    expect(ps1).toContain("[CmdletBinding()]");
    expect(ps1).toContain("$PSBoundParameters.ContainsKey('Verbose')");
  });

  it("documents every PowerShell parameter (Get-Help reads the comment above it)", () => {
    const lines = paramBlock.split("\n");
    for (const name of psParams.filter((p) => p !== "Help")) {
      const at = lines.findIndex((line) => line.includes(`$${name}`));
      expect(lines[at - 1]?.trim().startsWith("#"), `-${name} has no comment above it`).toBe(true);
    }
  });

  it("asks the broker only after the agent is installed and verified, in both scripts", () => {
    const shMain = sh.slice(sh.indexOf("\nmain() {"));
    expect(shMain.indexOf("prepare_agent\n")).toBeGreaterThan(0);
    expect(shMain.indexOf("prepare_agent\n")).toBeLessThan(shMain.indexOf("fetch_activation\n"));
    const psMain = ps1.slice(ps1.indexOf("# --- main"));
    expect(psMain.indexOf("Install-Agent\n")).toBeGreaterThan(0);
    expect(psMain.indexOf("Install-Agent\n")).toBeLessThan(psMain.indexOf("Test-Agent\n"));
    expect(psMain.indexOf("Test-Agent\n")).toBeLessThan(psMain.indexOf("= Get-Activation"));
    // The Windows installer gets no activation: it only installs.
    expect(ps1).not.toMatch(/CODE=/);
  });

  it("caps the broker's answer at 64 KB and checks the same field shapes", () => {
    expect(sh).toContain("readonly MAX_ANSWER_BYTES=65536");
    expect(ps1).toContain("$MaxAnswerBytes = 65536");
    const uuid = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
    expect(sh).toContain(`local id_re='${uuid}'`);
    expect(ps1).toContain(`-cnotmatch '${uuid}'`);
    expect(sh).toContain("^[A-Za-z0-9+/=]{20,250}$");
    expect(ps1).toContain("'^[A-Za-z0-9+/=]{20,250}$'");
  });

  it("writes the same agent configuration keys", () => {
    for (const key of ["Ssm", "Mds", "Mgs"]) {
      expect(sh).toContain(`.${key}.Endpoint`);
      expect(ps1).toContain(`@('${key}', `);
    }
  });

  it("uses the same retry defaults and the regional bucket", () => {
    expect(sh).toMatch(/MAX_WAIT="\$\{INSTALL_MAX_WAIT:-300\}"/);
    expect(ps1).toContain("[int]$MaxWait = 300");
    expect(ps1).toContain("https://amazon-ssm-$R.s3.$R.amazonaws.com/latest/$Folder/AmazonSSMAgentSetup.exe");
    expect(ps1).toMatch(/Get-AuthenticodeSignature/);
    expect(ps1).toMatch(/Status -ne 'Valid'/);
  });
});
