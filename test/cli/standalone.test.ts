import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { buildCli } from "../../scripts/build";
import { SERVE_USAGE, USAGE } from "../../src/cli/main";
import { version } from "../../package.json";

/** Its own bundle: dist/activation-broker.mjs is the operator's `npm run build`, which bin/ prefers. */
const BUNDLE = "dist/test-standalone-cli.mjs";

/**
 * Standalone mode is the same server code against "real AWS": here the bundled CLI finds the
 * emulated AWS only through the SDK's standard AWS_ENDPOINT_URL, as it would find real AWS.
 */
describe("activation-broker serve (standalone mode, bundled CLI)", () => {
  let aws: EmulatedAws;
  let emulator: Emulator;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    await buildCli(BUNDLE);
    aws = await startEmulatedAws();
    emulator = aws.emulator;
    await aws.newTable("standalone-pools");
  });

  afterAll(async () => {
    child?.kill("SIGTERM");
    await aws?.close();
  });

  async function runToEnd(args: string[], env: Record<string, string> = {}, bin?: string) {
    const { proc, exited } = run(args, env, bin);
    let stdout = "";
    let stderr = "";
    proc.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await exited;
    return { code, stdout, stderr };
  }

  function run(args: string[], env: Record<string, string> = {}, bin = BUNDLE) {
    const proc = spawn(process.execPath, [bin, ...args], {
      // Node's own warnings (a runtime's deprecation notices) are not the CLI's output.
      env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number>((resolve) => proc.on("close", (code) => resolve(code ?? -1)));
    return { proc, exited };
  }

  it("serves pairs from real adapters configured by the environment only", async () => {
    const { proc } = run(["serve", "--port", "0"], {
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: emulator.url,
      AWS_ACCESS_KEY_ID: "x",
      AWS_SECRET_ACCESS_KEY: "x",
      BROKER_TABLE_NAME: "standalone-pools",
      BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
    });
    child = proc;
    const lines = createInterface({ input: proc.stdout! });
    let port = 0;
    for await (const line of lines) {
      const entry = JSON.parse(line) as { message: string; port?: number };
      if (entry.message === "broker listening") {
        port = entry.port!;
        break;
      }
    }
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { Region: string }).Region).toBe("us-east-1");
    // The first vend's rotation made the current activation and one standby behind it (a cold
    // standby pool's depth is 1), both committed before the answer.
    expect(emulator.controls.counters()["ssm:CreateActivation"]).toBe(2);

    // `curl http://host//` used to end the process (an uncaught TypeError from new URL()).
    for (const target of ["//", "/\\", "//:", "//%zz", "//a%20b", "//%0a"]) {
      expect(await rawStatus(port, target)).toBe(400);
    }
    // Without BROKER_PUBLIC_URL the scripts are refused rather than filled from the Host header.
    const script = await fetch(`http://127.0.0.1:${port}/install.sh`, { headers: { Host: "evil.example" } });
    expect(script.status).toBe(404);
    expect(await script.text()).toContain("BROKER_PUBLIC_URL");
    expect(proc.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    // The stock was at its depth after that rotation: no background refill followed it.
    expect(emulator.controls.counters()["ssm:CreateActivation"]).toBe(2);
  });

  it("exits 2 with the offending field on a configuration error", async () => {
    const { proc, exited } = run(["serve"], {
      AWS_REGION: "us-east-1",
      BROKER_TABLE_NAME: "pools",
      BROKER_LEASE_SECOND: "5",
    });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    expect(await exited).toBe(2);
    expect(err).toBe(
      "activation-broker: Invalid environment: BROKER_LEASE_SECOND is not a setting of the broker " +
        "(did you mean BROKER_LEASE_SECONDS?)\n",
    );
  });

  it("exits 2 on an unknown command, usage on stderr; 0 on --help, usage on stdout", async () => {
    const rotate = await runToEnd(["frobnicate"]);
    expect(rotate).toMatchObject({ code: 2, stdout: "" });
    expect(rotate.stderr).toBe(`activation-broker: unknown command 'frobnicate'\n\n${USAGE}\n`);
    const help = await runToEnd(["--help"]);
    expect(help).toEqual({ code: 0, stdout: `${USAGE}\n`, stderr: "" });
  });

  it("says which option is unknown, without Node's error class", async () => {
    const result = await runToEnd(["serve", "--prot", "8080"]);
    expect(result.code).toBe(2);
    expect(result.stderr.split("\n")[0]).toBe("activation-broker: unknown option '--prot'");
    expect(result.stderr).not.toContain("ERR_PARSE_ARGS");
    expect((await runToEnd(["serve", "--port"])).stderr.split("\n")[0]).toBe(
      "activation-broker: option '--port' needs a value",
    );
  });

  it("prints its version", async () => {
    expect(await runToEnd(["--version"])).toEqual({
      code: 0,
      stdout: `activation-broker ${version}\n`,
      stderr: "",
    });
  });

  it("refuses to start against a missing table, naming the table and the Region", async () => {
    const result = await runToEnd(["serve", "--port", "0"], {
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: emulator.url,
      AWS_ACCESS_KEY_ID: "x",
      AWS_SECRET_ACCESS_KEY: "x",
      BROKER_TABLE_NAME: "no-such-table",
      BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
    });
    expect(result).toEqual({
      code: 2,
      stdout: "",
      stderr:
        "activation-broker: DynamoDB table 'no-such-table' does not exist in us-east-1: " +
        "set BROKER_TABLE_NAME and AWS_REGION to the deployed table's\n",
    });
  });

  it("names the port and the option when the port is taken", async () => {
    const holder = createServer();
    const port = await new Promise<number>((resolve) =>
      holder.listen(0, "127.0.0.1", () => resolve((holder.address() as AddressInfo).port)),
    );
    try {
      const result = await runToEnd(["serve", "--port", String(port)], {
        AWS_REGION: "us-east-1",
        AWS_ENDPOINT_URL: emulator.url,
        AWS_ACCESS_KEY_ID: "x",
        AWS_SECRET_ACCESS_KEY: "x",
        BROKER_TABLE_NAME: "standalone-pools",
        BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
        POWERTOOLS_LOG_LEVEL: "ERROR",
      });
      expect(result).toEqual({
        code: 1,
        stdout: "",
        stderr:
          `activation-broker: port ${port} on 127.0.0.1 is already in use: stop what holds it, ` +
          "or set --port to another port (0 picks a free one)\n",
      });
    } finally {
      holder.close();
    }
  });

  it("serve --help prints serve's own usage", async () => {
    expect(await runToEnd(["serve", "--help"])).toEqual({ code: 0, stdout: `${SERVE_USAGE}\n`, stderr: "" });
    expect(SERVE_USAGE).toContain("--port PORT");
  });

  it("runs the TypeScript through tsx in a checkout without the bundle (npx right after npm ci)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "unbuilt-"));
    mkdirSync(join(dir, "bin"));
    copyFileSync("bin/activation-broker.js", join(dir, "bin", "activation-broker.js"));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    for (const shared of ["src", "node_modules"]) symlinkSync(join(process.cwd(), shared), join(dir, shared));
    const result = await runToEnd(["--version"], {}, join(dir, "bin", "activation-broker.js"));
    expect(result).toEqual({ code: 0, stdout: `activation-broker ${version}\n`, stderr: "" });
  });
});

/** The status line of a raw request, so targets that fetch() would normalise reach the server as typed. */
function rawStatus(port: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    );
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString()));
    socket.on("error", reject);
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
  });
}
