import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { GENERATED, SOURCES, generateAgentScriptsModule } from "../../scripts/embed-agent-scripts";
import {
  INSTALL_PS1,
  INSTALL_SH,
  InvalidInstallScriptValueError,
  renderInstallScript,
} from "../../src/http/agent-scripts.generated";

const sh = readFileSync(SOURCES.sh, "utf8");
const ps1 = readFileSync(SOURCES.ps1, "utf8");

describe("src/http/agent-scripts.generated.ts", () => {
  it("is up to date with agent/ (run: npx tsx scripts/embed-agent-scripts.ts)", async () => {
    expect(readFileSync(GENERATED, "utf8")).toBe(await generateAgentScriptsModule(sh, ps1));
    expect(INSTALL_SH).toBe(sh);
    expect(INSTALL_PS1).toBe(ps1);
  });

  it("imports nothing", () => {
    expect(readFileSync(GENERATED, "utf8")).not.toMatch(/^\s*(import|export .* from)\b|require\(/m);
  });
});

describe("renderInstallScript", () => {
  const values = { brokerUrl: "https://abc123.execute-api.eu-west-1.amazonaws.com/prod", pool: "web" };

  it("fills in the broker URL and pool, once each, in both scripts", () => {
    const renderedSh = renderInstallScript("sh", values);
    expect(renderedSh).toContain(
      'BROKER_URL="${BROKER_URL:-https://abc123.execute-api.eu-west-1.amazonaws.com/prod}"',
    );
    expect(renderedSh).toContain('BROKER_POOL="${BROKER_POOL:-web}"');
    expect(renderedSh).not.toMatch(/__BROKER_(URL|POOL)__/);
    const renderedPs1 = renderInstallScript("ps1", values);
    expect(renderedPs1).toContain("'https://abc123.execute-api.eu-west-1.amazonaws.com/prod'");
    expect(renderedPs1).toContain("else { 'web' }");
    expect(renderedPs1).not.toMatch(/__BROKER_(URL|POOL)__/);
  });

  it("accepts the default pool, ports, loopback and a trailing slash", () => {
    expect(renderInstallScript("sh", { brokerUrl: "http://127.0.0.1:8080/", pool: "" })).toContain(
      'BROKER_URL="${BROKER_URL:-http://127.0.0.1:8080}"',
    );
    expect(() =>
      renderInstallScript("ps1", { brokerUrl: "https://[::1]:8443/a_b".replace("_", "-"), pool: "" }),
    ).not.toThrow();
  });

  const hostileUrls = [
    "https://x.example.com/$(reboot)",
    "https://x.example.com/`reboot`",
    'https://x.example.com/"; rm -rf / #',
    "https://x.example.com/'; Remove-Item C:\\ -Recurse; '",
    "https://x.example.com/${IFS}",
    "https://x.example.com/a\nrm -rf /",
    "https://x.example.com/a b",
    "https://x.example.com/\\",
    "https://x.example.com/}",
    "https://evil@x.example.com/",
    "https://x.example.com/?pool=web",
    "javascript:alert(1)",
    "ftp://x.example.com/",
    "https://x.example.com/$&",
    `https://${"a".repeat(2100)}.com/`,
  ];
  it.each(hostileUrls)("refuses a hostile broker URL %#", (brokerUrl) => {
    for (const kind of ["sh", "ps1"] as const) {
      expect(() => renderInstallScript(kind, { brokerUrl, pool: "" })).toThrow(
        InvalidInstallScriptValueError,
      );
    }
  });

  const hostilePools = [
    'web"; reboot; "',
    "web$(id)",
    "web'",
    "a b",
    "web\n",
    "x".repeat(65),
    "web/../x",
    "$&",
  ];
  it.each(hostilePools)("refuses a hostile pool %#", (pool) => {
    expect(() => renderInstallScript("sh", { brokerUrl: values.brokerUrl, pool })).toThrow(
      InvalidInstallScriptValueError,
    );
  });

  it("a rendered install.sh runs with the filled-in URL (bash parses it; --dry-run shows the endpoint)", () => {
    const dir = mkdtempSync(join(tmpdir(), "render-"));
    const file = join(dir, "install.sh");
    writeFileSync(
      file,
      renderInstallScript("sh", { brokerUrl: "https://broker.example.com/prod", pool: "web" }),
    );
    writeFileSync(join(dir, "os-release"), 'ID="debian"\nVERSION_ID="12"\n');
    const result = spawnSync("bash", [file, "--dry-run", "--root", dir], {
      env: { PATH: process.env.PATH ?? "", INSTALL_ROOT: "" },
      encoding: "utf8",
    });
    // os-release lives at <root>/etc/os-release: absent here, so the platform check fails (4) after
    // the URL and pool were accepted (a bad value would be exit 2).
    expect(result.status, result.stderr).toBe(4);
    expect(result.stderr).not.toContain("--url");
  });
});
