/**
 * PowerShell cannot run on our machines, so install.ps1 is reviewed, not executed. This static
 * check keeps it in step with install.sh (and install-eks.sh with both): placeholders, options,
 * exit codes, the order of the steps, the checks on the broker's answer and the refused-pair step.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AGENT_SCRIPT_FILES } from "../../src/http/agent-scripts";
import { PLACEHOLDERS } from "../../src/http/install-scripts";

const agentDir = fileURLToPath(new URL("../../agent/", import.meta.url));
const read = (name: string) => readFileSync(`${agentDir}${name}`, "utf8");
const sh = read(AGENT_SCRIPT_FILES.sh);
const ps1 = read(AGENT_SCRIPT_FILES.ps1);
const eks = read(AGENT_SCRIPT_FILES.eks);

// install.sh options that only make sense on Linux: the rpm/deb package method and its GPG key,
// and ssm-setup-cli's -version. Everything else exists in both scripts.
const LINUX_ONLY = new Set(["agent-key", "agent-version"]);
// install.sh options that install.ps1 gets from [CmdletBinding()] as common parameters.
const COMMON_PARAMETERS = new Set(["verbose"]);

function exitCodes(text: string, pattern: RegExp): Record<string, number> {
  return Object.fromEntries([...text.matchAll(pattern)].map((m) => [m[1]!, Number(m[2])]));
}
const SH_EXIT = /^readonly EXIT_([A-Z_]+)=(\d+) +# \S/gm;
const kebab = (name: string) => name.replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase();

describe("install.ps1 stays in step with install.sh", () => {
  it("defines and documents the same exit codes; install-eks.sh uses the same numbers", () => {
    const shCodes = exitCodes(sh, SH_EXIT);
    expect(shCodes).toEqual({
      OK: 0,
      FAILURE: 1,
      USAGE: 2,
      NOT_ROOT: 3,
      UNSUPPORTED: 4,
      BROKER_UNREACHABLE: 10,
      BROKER_REJECTED: 11,
      BROKER_BAD_ANSWER: 12,
      INSTALL_FAILED: 20,
      REGISTRATION_FAILED: 21,
      SERVICE_FAILED: 22,
    });
    expect(exitCodes(ps1, /^\$EXIT_([A-Z_]+) = (\d+) +# \S/gm)).toEqual(shCodes);
    for (const [name, code] of Object.entries(exitCodes(eks, SH_EXIT))) expect(shCodes[name]).toBe(code);
  });

  it("has the same broker placeholders, once each, with the same environment overrides", () => {
    for (const text of [sh, ps1, eks]) {
      for (const marker of Object.values(PLACEHOLDERS)) expect(text.split(marker).length - 1).toBe(1);
    }
    for (const text of [sh, eks]) {
      expect(text).toContain('BROKER_URL="${BROKER_URL:-__BROKER_URL__}"');
      expect(text).toContain('BROKER_POOL="${BROKER_POOL:-__BROKER_POOL__}"');
    }
    expect(ps1).toContain(
      "[string]$Url = $(if ($env:BROKER_URL) { $env:BROKER_URL } else { '__BROKER_URL__' })",
    );
    expect(ps1).toContain(
      "[string]$Pool = $(if ($env:BROKER_POOL) { $env:BROKER_POOL } else { '__BROKER_POOL__' })",
    );
  });

  const optionTable = sh.slice(sh.indexOf('readonly OPTIONS="'), sh.indexOf('\n"\n'));
  const shOptions = new Set([...optionTable.matchAll(/^ {2}--([a-z][a-z0-9-]*) /gm)].map((m) => m[1]!));
  const paramBlock = ps1.slice(ps1.indexOf("param("), ps1.indexOf("\n)\n"));
  const psParams = [...paramBlock.matchAll(/\[(?:string|switch|int)\]\$([A-Za-z0-9]+)/g)].map((m) => m[1]!);

  it("accepts the same options (except the Linux-only ones)", () => {
    const psOptions = new Set([...psParams.filter((p) => p !== "Help").map(kebab), ...COMMON_PARAMETERS]);
    expect(shOptions.size).toBeGreaterThanOrEqual(17);
    expect([...shOptions].filter((o) => !LINUX_ONLY.has(o)).sort()).toEqual([...psOptions].sort());
  });

  it("has the options of the fleet situations in docs/onboarding.md", () => {
    for (const option of [
      "proxy",
      "no-proxy",
      "ssm-endpoint",
      "ec2messages-endpoint",
      "ssmmessages-endpoint",
      "agent-path",
      "package",
      "agent-key",
      "mirror-url",
      "force",
      "no-start",
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
    expect(shMain.indexOf("prepare_agent\n")).toBeLessThan(shMain.indexOf("fetch_and_register\n"));
    const psMain = ps1.slice(ps1.indexOf("# --- main"));
    expect(psMain.indexOf("Install-Agent")).toBeGreaterThan(0);
    expect(psMain.indexOf("Install-Agent")).toBeLessThan(psMain.indexOf("Test-Agent\n"));
    expect(psMain.indexOf("Test-Agent\n")).toBeLessThan(psMain.indexOf("= Get-Activation"));
    // The Windows installer gets no activation: it only installs.
    expect(ps1).not.toMatch(/CODE=/);
    const eksMain = eks.slice(eks.indexOf("\nmain() {"));
    expect(eksMain.indexOf('run_nodeadm "${install[@]}"')).toBeLessThan(eksMain.indexOf("fetch_nodeconfig"));
  });

  it("reads the text answer, caps it at 64 KB and checks the same field shapes; no JSON parser", () => {
    expect(sh).toContain("readonly MAX_ANSWER_BYTES=65536");
    expect(eks).toContain("readonly MAX_ANSWER_BYTES=65536");
    expect(ps1).toContain("$MaxAnswerBytes = 65536");
    expect(sh).toContain("--header 'Accept: text/plain'");
    expect(ps1).toContain("$request.Accept = 'text/plain'");
    const uuid = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
    for (const text of [sh, eks]) {
      expect(text).toContain(`id_re='${uuid}'`);
      expect(text).toContain("^[A-Za-z0-9+/=]{20,250}$");
    }
    expect(ps1).toContain(`-cnotmatch '${uuid}'`);
    expect(ps1).toContain("'^[A-Za-z0-9+/=]{20,250}$'");
    for (const text of [sh, ps1]) {
      for (const key of ["ACTIVATION_ID", "ACTIVATION_CODE", "REGION"]) expect(text).toContain(key);
      expect(text).not.toMatch(/ConvertFrom-Json\)?\.Activation|json_parse/);
    }
  });

  it("reports a refused pair once, with ?refused=, in all three scripts", () => {
    for (const text of [sh, ps1, eks]) {
      expect(text).toContain("RegistrationLimitExceeded|InvalidActivation|ActivationExpired");
      expect(text).toMatch(/refused=\$/);
      expect(text).toContain("asking the broker once for another");
    }
  });

  it("writes the same agent configuration keys", () => {
    for (const key of ["Ssm", "Mds", "Mgs"]) {
      expect(sh).toContain(`.${key}.Endpoint`);
      expect(ps1).toContain(`@('${key}', `);
    }
  });

  it("uses the same retry budget and the regional bucket", () => {
    expect(sh).toMatch(/ MAX_WAIT=300\b/);
    expect(eks).toMatch(/ MAX_WAIT=300\b/);
    expect(ps1).toContain("[int]$MaxWait = 300");
    expect(ps1).toContain("https://amazon-ssm-$Region.s3.$Region.amazonaws.com");
    expect(sh).toContain('BUCKET="https://amazon-ssm-{region}.s3.{region}.amazonaws.com"');
    expect(ps1).toMatch(/Get-AuthenticodeSignature/);
    expect(ps1).toMatch(/Status -ne 'Valid'/);
  });
});

describe("agent/", () => {
  it("holds the three served scripts and nothing else, within 1,000 lines in all", () => {
    expect(readdirSync(agentDir).sort()).toEqual(Object.values(AGENT_SCRIPT_FILES).sort());
    const lines = [sh, ps1, eks].reduce((sum, text) => sum + text.split("\n").length - 1, 0);
    expect(lines).toBeLessThanOrEqual(1000);
  });

  it("ships no test hooks: nothing is read from INSTALL_* variables or a test root", () => {
    for (const text of [sh, ps1, eks]) {
      expect(text).not.toMatch(/(?<![A-Z_])INSTALL_[A-Z_]+|--root\b|SOURCE_ONLY/);
    }
  });
});
