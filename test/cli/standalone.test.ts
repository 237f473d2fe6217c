import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../emulator/server";
import { createAwsClients } from "../../src/aws/clients";
import { ensurePoolTable } from "../../src/aws/dynamodb-table";
import { buildCli } from "../../scripts/build";

/**
 * Standalone mode is the same server code against "real AWS": here the bundled CLI finds the
 * emulated AWS only through the SDK's standard AWS_ENDPOINT_URL, as it would find real AWS.
 */
describe("activation-broker serve (standalone mode, bundled CLI)", () => {
  let emulator: Emulator;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    await buildCli();
    emulator = await startEmulator({ port: 0 });
    const clients = createAwsClients({
      region: "us-east-1",
      endpoint: emulator.url,
      credentials: { accessKeyId: "x", secretAccessKey: "x" },
    });
    await ensurePoolTable(clients.dynamodb, "standalone-pools");
  });

  afterAll(async () => {
    child?.kill("SIGTERM");
    await emulator?.close();
  });

  function run(args: string[], env: Record<string, string> = {}) {
    const proc = spawn(process.execPath, ["bin/activation-broker.js", ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number>((resolve) => proc.on("exit", (code) => resolve(code ?? -1)));
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
  });

  it("exits 2 with the offending field on a configuration error", async () => {
    const { proc, exited } = run(["serve"], {
      AWS_REGION: "us-east-1",
      BROKER_TABLE_NAME: "t",
      BROKER_LEASE_SECOND: "5",
    });
    let err = "";
    proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    expect(await exited).toBe(2);
    expect(err).toContain("BROKER_LEASE_SECOND: unknown key");
  });

  it("exits 2 on an unknown command and 0 on --help", async () => {
    expect(await run(["rotate"]).exited).toBe(2);
    expect(await run(["--help"]).exited).toBe(0);
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
