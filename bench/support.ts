/**
 * Small helpers of the benchmark: child processes, HTTP with keep-alive, percentiles, the table.
 */
import { type ChildProcess, fork, spawn } from "node:child_process";
import { Agent, request } from "node:http";

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTP exchange on a keep-alive agent; network failures resolve to status 0. */
export function httpCall(
  agent: Agent,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        agent,
        method: options.method ?? "GET",
        headers: options.headers,
        timeout: options.timeoutMs ?? 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", () => resolve({ status: 0, headers: {}, body: "" }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, headers: {}, body: "" }));
    req.end(options.body);
  });
}

export function keepAliveAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets });
}

/** Starts the emulated AWS in a child process on a free port; resolves once it listens. */
export async function startEmulatorProcess(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", "emulator/main.ts"], {
    env: { ...process.env, EMULATOR_PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(seen);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`emulator exited early (code ${code})`)));
  });
  child.stdout?.resume();
  return { url, child };
}

/** Forks bench/broker-process.ts; resolves with its URL and a way to move its clock. */
export async function startBrokerProcess(
  env: Record<string, string>,
): Promise<{ url: string; child: ChildProcess; setClockOffset(ms: number): Promise<void> }> {
  const child = fork("bench/broker-process.ts", [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.on("message", (m: { type?: string; url?: string }) => {
      if (m.type === "ready" && m.url) resolve(m.url);
    });
    child.once("exit", (code) => reject(new Error(`broker exited early (code ${code})`)));
  });
  return {
    url,
    child,
    setClockOffset: (ms) =>
      new Promise<void>((resolve) => {
        const onMessage = (m: { type?: string }) => {
          if (m.type !== "clock-set") return;
          child.off("message", onMessage);
          resolve();
        };
        child.on("message", onMessage);
        child.send({ type: "clock", offsetMs: ms });
      }),
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] as number;
}

export function latencySummary(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? 0),
  };
}

/** A plain text table: one header row, columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
