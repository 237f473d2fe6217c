import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The README's first command, as a user runs it: `npm start` (here with ephemeral ports and a
 * --config file) prints the URLs and a curl line, serves pairs, and stops cleanly on Ctrl-C.
 */
function start(args: string[]) {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/entry/local.ts", ...args], {
    env: { ...process.env, PORT: "0", EMULATOR_PORT: "0", POWERTOOLS_LOG_LEVEL: "ERROR" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
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

  it("refuses an invalid config file, naming the field, with exit code 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "npm-start-"));
    const config = join(dir, "pools.json");
    writeFileSync(config, JSON.stringify({ pools: { linux: { registrationLimit: 5000 } } }));
    const run = start(["--config", config]);
    run.banner.catch(() => {});
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain("pools.linux.registrationLimit");
  });
});
