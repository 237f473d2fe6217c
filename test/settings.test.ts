import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../src/core/errors";
import { poolConfigSchema } from "../src/core/pool-config";
import { BROKER_VARIABLES, loadSettings, readPort, readRuntimeEnvironment } from "../src/settings";

const base = { AWS_REGION: "eu-west-1", BROKER_TABLE_NAME: "pools", BROKER_DEFAULT_IAM_ROLE: "NodeRole" };

describe("loadSettings", () => {
  it("applies the documented defaults", () => {
    const s = loadSettings(base);
    expect(s).toMatchObject({
      tableName: "pools",
      parameterPrefix: "/activation-broker",
      kmsKeyId: "alias/aws/ssm",
      region: "eu-west-1",
      deployment: "pools",
      leaseMs: 30_000,
      rotationWaitMs: 5_000,
    });
    expect([...s.pools.keys()]).toEqual(["default"]);
  });

  it("rejects an unknown BROKER_ variable, naming it", () => {
    expect(() => loadSettings({ ...base, BROKER_TABEL_NAME: "x" })).toThrow(
      "Invalid environment: BROKER_TABEL_NAME is not a setting of the broker (did you mean BROKER_TABLE_NAME?)",
    );
    expect(() => loadSettings({ ...base, BROKER_COLOUR: "x" })).toThrow(
      /^Invalid environment: BROKER_COLOUR is not a setting of the broker$/,
    );
  });

  it("suggests the setting a name leaves the unit off", () => {
    expect(() => loadSettings({ ...base, BROKER_ROTATION_WAIT: "5" })).toThrow(
      /^Invalid environment: BROKER_ROTATION_WAIT is not a setting of the broker \(did you mean BROKER_ROTATION_WAIT_SECONDS\?\)$/,
    );
    expect(() => loadSettings({ ...base, BROKER_LEASE: "30" })).toThrow(
      /\(did you mean BROKER_LEASE_SECONDS\?\)$/,
    );
  });

  it("says what became of a retired variable", () => {
    expect(() => loadSettings({ ...base, BROKER_ROTATION_WAIT_MS: "5000" })).toThrow(
      /^Invalid environment: BROKER_ROTATION_WAIT_MS is no longer a setting: now BROKER_ROTATION_WAIT_SECONDS, in seconds \(CHANGELOG\.md\)$/,
    );
    expect(() => loadSettings({ ...base, BROKER_CONFIG_FILE: "pools.json" })).toThrow(
      "BROKER_CONFIG_FILE is no longer a setting: now BROKER_POOLS, which takes a file's path too",
    );
  });

  it("reads durations in seconds, fractions allowed", () => {
    const s = loadSettings({
      ...base,
      BROKER_ROTATION_WAIT_SECONDS: "0.3",
      BROKER_KEEP_ALIVE_TIMEOUT_SECONDS: "65",
      BROKER_RECONCILE_INTERVAL_SECONDS: "1",
    });
    expect(s.rotationWaitMs).toBe(300);
    expect(s.server.keepAliveTimeoutMs).toBe(65_000);
    expect(s.reconcileIntervalMs).toBe(1_000);
    expect(() => loadSettings({ ...base, BROKER_ROTATION_WAIT_SECONDS: "26" })).toThrow(
      "BROKER_ROTATION_WAIT_SECONDS",
    );
  });

  it("says what was set when a number is expected", () => {
    expect(() => loadSettings({ ...base, BROKER_LEASE_SECONDS: "abc" })).toThrow(
      /^Invalid environment: BROKER_LEASE_SECONDS must be a number, got 'abc'$/,
    );
    expect(() => loadSettings({ ...base, BROKER_RATE_LIMIT_PER_SECOND: "ten" })).toThrow(
      /^Invalid environment: BROKER_RATE_LIMIT_PER_SECOND must be a number, got 'ten'$/,
    );
  });

  it("rejects out-of-range values and missing required ones", () => {
    expect(() => loadSettings({ ...base, BROKER_LEASE_SECONDS: "1" })).toThrow("BROKER_LEASE_SECONDS");
    expect(() => loadSettings({ AWS_REGION: "eu-west-1" })).toThrow(
      /^Invalid environment: BROKER_TABLE_NAME is required$/,
    );
    expect(() => loadSettings({ BROKER_TABLE_NAME: "pools" })).toThrow(
      /^Invalid environment: AWS_REGION is required \(e\.g\. eu-west-1\)$/,
    );
    expect(() => loadSettings({ ...base, AWS_REGION: "Ireland" })).toThrow(
      "Invalid environment: AWS_REGION must be a Region name such as eu-west-1, got 'Ireland'",
    );
    expect(loadSettings({ ...base, AWS_REGION: "us-gov-west-1" }).region).toBe("us-gov-west-1");
    expect(() => loadSettings({ ...base, BROKER_PARAMETER_PREFIX: "no-slash" })).toThrow(ConfigError);
  });

  it("reads pools from BROKER_POOLS: the document, or the path of a file holding it", () => {
    const pools = JSON.stringify({ pools: { linux: { registrationLimit: 10 } } });
    expect(loadSettings({ ...base, BROKER_POOLS: pools }).pools.get("linux")?.registrationLimit).toBe(10);
    const dir = mkdtempSync(join(tmpdir(), "settings-"));
    const file = join(dir, "pools.json");
    writeFileSync(file, pools);
    expect(loadSettings({ ...base, BROKER_POOLS: file }).pools.has("linux")).toBe(true);
    expect(loadSettings({ ...base, BROKER_POOLS: ` ${pools}` }).pools.has("linux")).toBe(true);
  });

  it("says where JSON breaks, by line and column", () => {
    expect(() => loadSettings({ ...base, BROKER_POOLS: "{bad" })).toThrow(
      "Invalid pool configuration: BROKER_POOLS is not valid JSON at line 1, column 2 (invalid symbol)",
    );
    // JSON.parse names no position for this one; the message still does.
    expect(() => loadSettings({ ...base, BROKER_POOLS: '{"pools": {\n  "a": }\n}' })).toThrow(
      "Invalid pool configuration: BROKER_POOLS is not valid JSON at line 2, column 8 (value expected)",
    );
  });

  it("says why a config file cannot be read", () => {
    const dir = mkdtempSync(join(tmpdir(), "settings-"));
    const missing = join(dir, "missing.json");
    expect(() => loadSettings({ ...base, BROKER_POOLS: missing })).toThrow(
      `Cannot read the pool configuration file ${missing}: no such file`,
    );
    expect(() => loadSettings({ ...base, BROKER_POOLS: dir })).toThrow(
      `Cannot read the pool configuration file ${dir}: it is a directory, not a file`,
    );
  });

  // root reads any file, so the refusal can only be provoked as another user.
  it.skipIf(process.getuid?.() === 0)("says a config file is not readable (as a non-root user)", () => {
    const locked = join(mkdtempSync(join(tmpdir(), "settings-")), "locked.json");
    writeFileSync(locked, "{}");
    chmodSync(locked, 0o000);
    expect(() => loadSettings({ ...base, BROKER_POOLS: locked })).toThrow(
      `Cannot read the pool configuration file ${locked}: permission denied (the broker's user may not read it)`,
    );
  });

  it("reads ports from a flag, then the variable, then the default", () => {
    expect(readPort("PORT", 8080, {})).toBe(8080);
    expect(readPort("PORT", 8080, { PORT: "0" })).toBe(0);
    expect(readPort("PORT", 8080, { PORT: "9000" }, { name: "--port", value: "9001" })).toBe(9001);
    expect(() => readPort("PORT", 8080, { PORT: "80a" })).toThrow(
      "PORT must be a port number (0-65535), got '80a'",
    );
    expect(() => readPort("PORT", 8080, {}, { name: "--port", value: "70000" })).toThrow(
      "--port must be a port number (0-65535), got '70000'",
    );
  });
});

describe("readRuntimeEnvironment", () => {
  it("reads what the runtime and the AWS tooling set, and treats an empty value as unset", () => {
    expect(
      readRuntimeEnvironment({
        AWS_LAMBDA_FUNCTION_NAME: "broker-fn",
        POWERTOOLS_LOG_LEVEL: "DEBUG",
        AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
        BROKER_TABLE_NAME: "not-a-runtime-value",
      }),
    ).toEqual({
      lambdaFunctionName: "broker-fn",
      logLevel: "DEBUG",
      awsEndpointUrl: "http://127.0.0.1:4566",
    });
    expect(readRuntimeEnvironment({ AWS_LAMBDA_FUNCTION_NAME: "", POWERTOOLS_LOG_LEVEL: "" })).toEqual({});
  });
});

describe("loadSettings: Node-server hygiene and caller limits", () => {
  it("has sane defaults", () => {
    expect(loadSettings(base).server).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5_000,
      idleTimeoutMs: 5_000,
      maxConnections: 1_000,
      maxConnectionsPerSource: 100,
      trustedProxies: [],
      ratePerSecond: 10,
      rateBurst: 100,
      maxTrackedSources: 10_000,
    });
    expect(loadSettings(base).reconcileIntervalMs).toBe(300_000);
  });

  it("reads each BROKER_* setting and rejects nonsense", () => {
    const s = loadSettings({
      ...base,
      BROKER_MAX_CONNECTIONS: "50",
      BROKER_TRUSTED_PROXIES: "10.0.0.0/8, 192.168.1.7,::1",
      BROKER_RATE_LIMIT_PER_SECOND: "0",
    });
    expect(s.server).toMatchObject({
      maxConnections: 50,
      trustedProxies: ["10.0.0.0/8", "192.168.1.7", "::1"],
      ratePerSecond: 0,
      rateBurst: 1,
    });
    // The burst is ten seconds of the rate.
    expect(loadSettings({ ...base, BROKER_RATE_LIMIT_PER_SECOND: "0.5" }).server.rateBurst).toBe(5);
    expect(() => loadSettings({ ...base, BROKER_TRUSTED_PROXIES: "10.0.0.0/33" })).toThrow(
      "BROKER_TRUSTED_PROXIES",
    );
    expect(() => loadSettings({ ...base, BROKER_TRUSTED_PROXIES: "proxy.example" })).toThrow(
      "BROKER_TRUSTED_PROXIES",
    );
    expect(() => loadSettings({ ...base, BROKER_MAX_CONNECTIONS: "0" })).toThrow("BROKER_MAX_CONNECTIONS");
  });
});

describe("docs/configuration.md", () => {
  const page = readFileSync(join(import.meta.dirname, "..", "docs", "configuration.md"), "utf8");
  /** The first cell of every table row: what the page documents, one row per setting. */
  const documented = [...page.matchAll(/^\| `([^`]+)`/gm)].map((m) => m[1]!);

  it("documents every BROKER_* variable the broker reads, in a table row", () => {
    expect(BROKER_VARIABLES).toContain("BROKER_TABLE_NAME");
    expect(BROKER_VARIABLES.filter((name) => !documented.includes(name))).toEqual([]);
  });

  it("documents no BROKER_* variable the broker would refuse", () => {
    const named = new Set(page.match(/\bBROKER_[A-Z_]+\b/g));
    expect([...named].filter((name) => !BROKER_VARIABLES.includes(name))).toEqual([]);
  });

  it("names every pool key", () => {
    const keys = Object.keys(poolConfigSchema.shape);
    expect(keys).toContain("registrationLimit");
    expect(keys.filter((key) => !page.includes(`\`${key}\``))).toEqual([]);
  });
});
