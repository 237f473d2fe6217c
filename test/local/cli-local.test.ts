import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The operator's first minute, end to end: `npm start` in one terminal, then
 * `npx activation-broker --local status` in another with nothing exported. The CLI runs as a
 * checkout without a build runs it (bin/ through tsx); TMPDIR is the one variable both share,
 * because that is where `npm start` records itself.
 */

const ROOT = process.cwd();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("activation-broker --local against a running npm start", () => {
  const tmp = mkdtempSync(join(tmpdir(), "cli-local-tmp-"));
  const checkout = mkdtempSync(join(tmpdir(), "cli-local-checkout-"));
  const bin = join(checkout, "bin", "activation-broker.js");
  let npmStart: ReturnType<typeof spawn>;
  let exited: Promise<number | null>;
  let brokerUrl = "";
  let output = "";

  /** The CLI with only PATH and TMPDIR: no AWS_*, no BROKER_*, no EMULATOR_PORT. */
  function cli(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      const proc = spawn(process.execPath, [bin, ...args], {
        cwd: checkout,
        // Node's own warnings (a runtime's deprecation notices) are not the CLI's output.
        env: {
          PATH: process.env.PATH ?? "",
          TMPDIR: tmp,
          NODE_NO_WARNINGS: "1",
          AWS_EC2_METADATA_DISABLED: "true",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      proc.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  beforeAll(async () => {
    // A checkout without dist/: bin/ must run the TypeScript itself.
    mkdirSync(join(checkout, "bin"));
    copyFileSync(join(ROOT, "bin", "activation-broker.js"), bin);
    writeFileSync(join(checkout, "package.json"), JSON.stringify({ type: "module" }));
    for (const shared of ["src", "node_modules"]) symlinkSync(join(ROOT, shared), join(checkout, shared));

    const config = join(tmp, "pools.json");
    writeFileSync(config, JSON.stringify({ pools: { linux: { registrationLimit: 5 } } }));
    npmStart = spawn(process.execPath, ["--import", "tsx", "src/entry/local.ts", "--config", config], {
      env: {
        PATH: process.env.PATH ?? "",
        TMPDIR: tmp,
        PORT: "0",
        EMULATOR_PORT: "0",
        POWERTOOLS_LOG_LEVEL: "ERROR",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    exited = new Promise((resolve) => npmStart.on("close", resolve));
    await new Promise<void>((resolve, reject) => {
      npmStart.stderr!.on("data", (d: Buffer) => {
        output += d.toString();
        if (output.includes("Ctrl-C stops both.")) resolve();
      });
      npmStart.on("exit", () => reject(new Error(`npm start exited early:\n${output}`)));
    });
    brokerUrl = /Broker\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(output)![1]!;
  });

  afterAll(async () => {
    if (npmStart.exitCode === null) npmStart.kill("SIGINT");
    await exited;
  });

  it("npm start's banner names the command", () => {
    expect(output).toContain("npx activation-broker --local status");
  });

  it("status and list see npm start's pools and activations, with nothing exported", async () => {
    const pair = (await (await fetch(`${brokerUrl}/activations/linux`)).json()) as {
      ActivationId: string;
      ActivationCode: string;
    };

    const status = await cli("--local", "status");
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^linux\\s+${pair.ActivationId}\\s+1/5\\s`, "m"));
    expect(status.stdout).toMatch(/^default\s+\(none yet\)/m);

    const list = await cli("list", "--local", "--json");
    expect(list.code, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as { activationId: string; pool: string; state: string }[];
    expect(rows).toContainEqual(expect.objectContaining({ activationId: pair.ActivationId, pool: "linux" }));
    for (const run of [status, list]) expect(`${run.stdout}${run.stderr}`).not.toContain(pair.ActivationCode);
  });

  it("after npm start stops, its record is gone and --local says npm start is not running (exit 3)", async () => {
    npmStart.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(existsSync(join(tmp, `activation-broker-npm-start-${process.getuid!()}.json`))).toBe(false);
    const status = await cli("--local", "status");
    expect(status.code).toBe(3);
    expect(status.stderr).toMatch(/^activation-broker status: no running `npm start` found .+\n$/);
  });
});
