import { describe, expect, it } from "vitest";
import { agentScripts } from "../../src/http/agent-scripts";
import {
  InvalidInstallScriptValueError,
  PLACEHOLDERS,
  fillInstallScript,
  installScriptRenderer,
  placeholderProblems,
} from "../../src/http/install-scripts";

const render = installScriptRenderer(agentScripts());
const values = { brokerUrl: "https://abc123.execute-api.eu-west-1.amazonaws.com/prod", pool: "web" };

describe("installScriptRenderer over the bundled scripts", () => {
  it("fills in the broker URL and pool, once each, in every script", () => {
    const sh = render("sh", values);
    expect(sh).toContain(
      'BROKER_URL="${BROKER_URL:-https://abc123.execute-api.eu-west-1.amazonaws.com/prod}"',
    );
    expect(sh).toContain('BROKER_POOL="${BROKER_POOL:-web}"');
    expect(sh).not.toMatch(/__BROKER_(URL|POOL)__/);
    const ps1 = render("ps1", values);
    expect(ps1).toContain("'https://abc123.execute-api.eu-west-1.amazonaws.com/prod'");
    expect(ps1).toContain("else { 'web' }");
    expect(ps1).not.toMatch(/__BROKER_(URL|POOL)__/);
    const eks = render("eks", values);
    expect(eks).toContain(
      'BROKER_URL="${BROKER_URL:-https://abc123.execute-api.eu-west-1.amazonaws.com/prod}"',
    );
    expect(eks).not.toMatch(/__BROKER_(URL|POOL)__/);
  });

  it("accepts the default pool, ports, loopback, IPv6 and a trailing slash", () => {
    expect(render("sh", { brokerUrl: "http://127.0.0.1:8080/", pool: "" })).toContain(
      'BROKER_URL="${BROKER_URL:-http://127.0.0.1:8080}"',
    );
    expect(() => render("ps1", { brokerUrl: "https://[::1]:8443/a-b", pool: "" })).not.toThrow();
  });
});

describe("fillInstallScript", () => {
  const template = `url="${PLACEHOLDERS.brokerUrl}" pool="${PLACEHOLDERS.pool}"`;

  it("replaces each placeholder and nothing else", () => {
    expect(fillInstallScript(template, { brokerUrl: "https://b.example.com/p/", pool: "a_1-B" })).toBe(
      'url="https://b.example.com/p" pool="a_1-B"',
    );
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
    expect(() => fillInstallScript(template, { brokerUrl, pool: "" })).toThrow(
      new InvalidInstallScriptValueError("brokerUrl"),
    );
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
    expect(() => fillInstallScript(template, { brokerUrl: values.brokerUrl, pool })).toThrow(
      new InvalidInstallScriptValueError("pool"),
    );
  });

  it("names the field it refuses and never echoes the value", () => {
    const error = new InvalidInstallScriptValueError("pool");
    expect(error.name).toBe("InvalidInstallScriptValueError");
    expect(error.message).toBe(
      "Refusing to render the install script: pool has characters outside its safe set.",
    );
  });
});

describe("installScriptRenderer", () => {
  it("refuses, at start-up, a script that lost a placeholder", () => {
    const ok = `${PLACEHOLDERS.brokerUrl} ${PLACEHOLDERS.pool}`;
    expect(() => installScriptRenderer({ sh: ok, ps1: ok, eks: PLACEHOLDERS.brokerUrl })).toThrow(
      "install script 'eks' must contain __BROKER_POOL__ exactly once (found 0)",
    );
    expect(() => installScriptRenderer({ sh: ok, ps1: ok, eks: ok })).not.toThrow();
  });
});

describe("placeholderProblems", () => {
  it("wants each placeholder exactly once", () => {
    expect(placeholderProblems(`${PLACEHOLDERS.brokerUrl} ${PLACEHOLDERS.pool}`)).toEqual([]);
    expect(placeholderProblems(`${PLACEHOLDERS.brokerUrl} ${PLACEHOLDERS.brokerUrl}`)).toEqual([
      "must contain __BROKER_URL__ exactly once (found 2)",
      "must contain __BROKER_POOL__ exactly once (found 0)",
    ]);
  });
});
