import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { registerNode } from "../support/local";

/**
 * The README's first command, as a user runs it: `npm start` (here with ephemeral ports and a
 * --config file) prints the URLs and a curl line, serves pairs, and stops cleanly on Ctrl-C.
 */
function start(args: string[], env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/entry/local.ts", ...args], {
    // Node's own warnings (a runtime's deprecation notices) are not npm start's output.
    // TMPDIR: where npm start records itself for `activation-broker --local`, one per test.
    env: {
      ...process.env,
      PORT: "0",
      EMULATOR_PORT: "0",
      POWERTOOLS_LOG_LEVEL: "ERROR",
      NODE_NO_WARNINGS: "1",
      TMPDIR: mkdtempSync(join(tmpdir(), "npm-start-tmp-")),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  const banner = new Promise<string>((resolve, reject) => {
    proc.stderr!.on("data", () => {
      if (stderr.includes("Ctrl-C stops both.")) resolve(stderr);
    });
    proc.on("exit", () => reject(new Error(`npm start exited early:\n${stderr}`)));
  });
  return { proc, banner, exited, stderr: () => stderr };
}

describe("npm start", () => {
  it("starts the emulated AWS and the broker with a config file, and stops on SIGINT", async () => {
    const dir = mkdtempSync(join(tmpdir(), "npm-start-"));
    const config = join(dir, "pools.json");
    writeFileSync(config, JSON.stringify({ pools: { linux: { registrationLimit: 5 } } }));
    const run = start(["--config", config]);
    const banner = await run.banner;
    const brokerUrl = /Broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)![1]!;
    expect(banner).toMatch(/Emulated AWS\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(banner).toContain(`curl -s ${brokerUrl}/ | jq -r '.ActivationCode'`);
    expect(banner).toContain("pools: default, linux");

    const res = await fetch(`${brokerUrl}/activations/linux`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ActivationCode: string };
    expect(run.stderr()).not.toContain(body.ActivationCode);

    run.proc.kill("SIGINT");
    expect(await run.exited).toBe(0);
  });

  /** Runs `npm start` expecting it to refuse: resolves with the exit code and stderr. */
  async function refusal(args: string[], env: Record<string, string> = {}) {
    const run = start(args, env);
    run.banner.catch(() => {});
    return { code: await run.exited, stderr: run.stderr() };
  }

  it("refuses an invalid config file, naming the field, with exit code 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "npm-start-"));
    const config = join(dir, "pools.json");
    writeFileSync(config, JSON.stringify({ pools: { linux: { registrationLimit: 5000 } } }));
    const { code, stderr } = await refusal(["--config", config]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^npm start: Invalid pool configuration: pools\.linux\.registrationLimit: .+\n$/);
  });

  // The same settings path as the Lambda and `serve`: the same refusals, the same exit code.
  it.each([
    [
      { BROKER_LEASE_SECOND: "30" },
      "npm start: Invalid environment: BROKER_LEASE_SECOND is not a setting of the broker (did you mean BROKER_LEASE_SECONDS?)",
    ],
    [
      { BROKER_LEASE_SECONDS: "2" },
      "npm start: Invalid environment: BROKER_LEASE_SECONDS: Too small: expected number to be >=5",
    ],
    [
      { BROKER_POOLS: "{bad" },
      "npm start: Invalid pool configuration: BROKER_POOLS is not valid JSON at line 1, column 2 (invalid symbol)",
    ],
    [
      { AWS_REGION: "moon-1" },
      "npm start: Invalid environment: AWS_REGION must be a Region name such as eu-west-1, got 'moon-1'",
    ],
  ])("refuses %o with one line and exit code 2", async (env, line) => {
    expect(await refusal([], env)).toEqual({ code: 2, stderr: `${line}\n` });
  });

  it("honours valid BROKER_* settings and AWS_REGION", async () => {
    const run = start([], {
      AWS_REGION: "eu-west-1",
      BROKER_POOLS: JSON.stringify({ pools: { web: {} } }),
    });
    const banner = await run.banner;
    expect(banner).toContain("pools: default, web");
    expect(banner).toContain("--region eu-west-1");
    const brokerUrl = /Broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)![1]!;
    const res = await fetch(`${brokerUrl}/activations/web`);
    expect(((await res.json()) as { Region: string }).Region).toBe("eu-west-1");
    run.proc.kill("SIGINT");
    expect(await run.exited).toBe(0);
  });

  it("names the port and the variable when a port is taken", async () => {
    const holder = createServer();
    const port = await new Promise<number>((resolve) =>
      holder.listen(0, "127.0.0.1", () => resolve((holder.address() as AddressInfo).port)),
    );
    try {
      expect(await refusal([], { PORT: String(port) })).toEqual({
        code: 1,
        stderr: `npm start: port ${port} on 127.0.0.1 is already in use: stop what holds it, or set PORT to another port (0 picks a free one)\n`,
      });
      expect(await refusal([], { EMULATOR_PORT: String(port) })).toEqual({
        code: 1,
        stderr: `npm start: port ${port} on 127.0.0.1 is already in use: stop what holds it, or set EMULATOR_PORT to another port (0 picks a free one)\n`,
      });
    } finally {
      holder.close();
    }
  });

  it("says which option is unknown and prints the usage to stderr, exit code 2", async () => {
    const { code, stderr } = await refusal(["--confg", "x.json"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^npm start: unknown option '--confg'\n\nUsage: npm start /);
  });

  it("moves the broker's clock with the emulated AWS's: past expiry the next pair is new and registers", async () => {
    const run = start([]);
    const banner = await run.banner;
    const brokerUrl = /Broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)![1]!;
    const emulatorUrl = /Emulated AWS\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)![1]!;
    type Pair = { ActivationId: string; ActivationCode: string; ExpirationDate: string };
    const first = (await (await fetch(`${brokerUrl}/`)).json()) as Pair;

    // A default activation lives 24 hours: 25 hours later it has expired, for both sides.
    const moved = await fetch(`${emulatorUrl}/_emulator/clock`, {
      method: "POST",
      body: JSON.stringify({ offsetSeconds: 25 * 3600 }),
    });
    expect(moved.status).toBe(200);
    const res = await fetch(`${brokerUrl}/`);
    expect(res.status).toBe(200);
    const second = (await res.json()) as Pair;
    expect(second.ActivationId).not.toBe(first.ActivationId);
    expect(Date.parse(second.ExpirationDate)).toBeGreaterThan(Date.now() + 25 * 3600_000);

    expect((await registerNode(emulatorUrl, first)).body.__type).toBe("ActivationExpired");
    const registered = await registerNode(emulatorUrl, second);
    expect(registered.status).toBe(200);
    expect(registered.body.InstanceId).toMatch(/^mi-[0-9a-f]{17}$/);

    run.proc.kill("SIGINT");
    expect(await run.exited).toBe(0);
  });
});
