import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { buildCli } from "../../scripts/build";
import { USAGE } from "../../src/cli/main";
import { version } from "../../package.json";

/**
 * Standalone mode is the same server code against "real AWS": here the bundled CLI finds the
 * emulated AWS only through the SDK's standard AWS_ENDPOINT_URL, as it would find real AWS.
 */
describe("activation-broker serve (standalone mode, bundled CLI)", () => {
  let aws: EmulatedAws;
  let emulator: Emulator;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    await buildCli();
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

  function run(args: string[], env: Record<string, string> = {}, bin = "bin/activation-broker.js") {
    const proc = spawn(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
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
    expect(emulator.controls.counters()["ssm:CreateActivation"]).toBe(1);
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

  it("says to run the build when the bundle is missing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "unbuilt-"));
    mkdirSync(join(dir, "bin"));
    copyFileSync("bin/activation-broker.js", join(dir, "bin", "activation-broker.js"));
    const result = await runToEnd([], {}, join(dir, "bin", "activation-broker.js"));
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: "activation-broker: the CLI is not built yet: run `npm run build` first\n",
    });
  });
});
