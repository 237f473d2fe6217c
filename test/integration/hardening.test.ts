/**
 * Hostile callers against real components: the bundled CLI (two broker processes), the local
 * stack, dynalite and the SSM emulator with its RegisterManagedInstance and parameter quota.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../emulator/server";
import { createAwsClients } from "../../src/aws/clients";
import { ensurePoolTable } from "../../src/aws/dynamodb-table";
import { SLOT_THEFT_MESSAGE } from "../../src/core/reconcile";
import { buildCli } from "../../scripts/build";
import { aLocalStack, pools, registerNode } from "../support/local";

describe("rotation budget shared by two broker processes on one table", () => {
  let emulator: Emulator;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    await buildCli();
    emulator = await startEmulator({ port: 0 });
    const clients = createAwsClients({
      region: "us-east-1",
      endpoint: emulator.url,
      credentials: { accessKeyId: "x", secretAccessKey: "x" },
    });
    await ensurePoolTable(clients.dynamodb, "budget-pools");
    clients.dynamodb.destroy();
    clients.ssm.destroy();
  });

  afterAll(async () => {
    for (const child of children) child.kill("SIGTERM");
    await emulator?.close();
  });

  async function brokerProcess(): Promise<{ url: string; warnings: () => string[] }> {
    const proc = spawn(process.execPath, ["bin/activation-broker.js", "serve", "--port", "0"], {
      env: {
        PATH: process.env.PATH ?? "",
        AWS_REGION: "us-east-1",
        AWS_ENDPOINT_URL: emulator.url,
        AWS_ACCESS_KEY_ID: "x",
        AWS_SECRET_ACCESS_KEY: "x",
        BROKER_TABLE_NAME: "budget-pools",
        BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
        BROKER_POOLS: pools({ default: { registrationLimit: 1, maxActivationsPerHour: 3 } }),
        BROKER_RATE_LIMIT_PER_SECOND: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(proc);
    const lines: string[] = [];
    const reader = createInterface({ input: proc.stdout! });
    const port = await new Promise<number>((resolve) =>
      reader.on("line", (line) => {
        lines.push(line);
        const entry = JSON.parse(line) as { message: string; port?: number };
        if (entry.message === "broker listening") resolve(entry.port!);
      }),
    );
    // Powertools writes WARN and ERROR lines to stderr.
    const errLines: string[] = [];
    createInterface({ input: proc.stderr! }).on("line", (line) => errLines.push(line));
    const warnings = () => [...lines, ...errLines].filter((l) => l.includes('"rotation budget exhausted'));
    return { url: `http://127.0.0.1:${port}`, warnings };
  }

  it("answers 429 RotationBudgetExhausted with Retry-After past maxActivationsPerHour, wherever asked", async () => {
    const brokers = [await brokerProcess(), await brokerProcess()];
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await fetch(`${brokers[i % 2]!.url}/`)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    expect(emulator.controls.counters()["ssm:CreateActivation"]).toBe(3);

    const refused = await fetch(`${brokers[0]!.url}/`);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(3000);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await refused.json()).toMatchObject({ error: { code: "RotationBudgetExhausted" } });

    // What a drained pool still costs: per request, one read; no write (each process's last answer
    // left no slot, so its slot gate sends the request to a round), no SSM call.
    emulator.controls.resetCounters();
    for (let i = 0; i < 20; i++) await fetch(`${brokers[i % 2]!.url}/`);
    const counters = emulator.controls.counters();
    expect(Object.keys(counters).filter((k) => k.startsWith("ssm:"))).toEqual([]);
    expect(counters["dynamodb:UpdateItem"]).toBeUndefined();
    expect(counters["dynamodb:GetItem"]).toBe(20);
    // One WARN per process and minute, however many refusals.
    for (const broker of brokers) expect(broker.warnings()).toHaveLength(1);
    // And the outgoing activations' codes were deleted: one parameter, the current activation's.
    // The rotation brought the standby and the refill its successor (three, the budget), and each
    // refill retired the activation it dropped; no standby is left, the budget being spent.
    expect(emulator.controls.parameterQuota().used).toBe(1);
  });
});

describe("parameters per pool stay within its stock", () => {
  it("lets a pool rotate far past the parameter quota without reaching it", async () => {
    const stack = await aLocalStack({
      BROKER_POOLS: pools({ default: { registrationLimit: 1, maxActivationsPerHour: 1000 } }),
    });
    try {
      stack.emulator.controls.setParameterQuota(3);
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) statuses.push((await stack.get("/")).status);
      expect(statuses.every((s) => s === 200)).toBe(true);
      // One activation per vend at limit 1, and the stock behind the last one (I9). Back-to-back
      // vends outrun the refills, so the pool's depth grows, until Parameter Store refuses the
      // codes: standbys that cannot be stored are deleted, and the depth falls back to what could
      // be made, so a full Parameter Store costs at most one failed standby per vend.
      const created = stack.emulator.controls.counters()["ssm:CreateActivation"];
      expect(created).toBeGreaterThanOrEqual(25);
      expect(created).toBeLessThanOrEqual(2 * 25 + 3);
      // One code per activation the row names, within the quota: never a leak.
      expect(stack.emulator.controls.parameterQuota().used).toBeLessThanOrEqual(3);
    } finally {
      await stack.close();
    }
  });
});

describe("slot theft", () => {
  it("retires an activation registered past its pairs, warns with both counts, and rotates", async () => {
    const stack = await aLocalStack({
      BROKER_POOLS: pools({ default: { registrationLimit: 5 } }),
      BROKER_RECONCILE_INTERVAL_SECONDS: "1",
    });
    try {
      const pair = (await (await stack.get("/")).json()) as { ActivationId: string; ActivationCode: string };
      expect((await registerNode(stack.emulatorUrl, pair)).status).toBe(200);
      // The same pair again: SSM accepts it (the activation has room), the broker counted one pair.
      expect((await registerNode(stack.emulatorUrl, pair)).status).toBe(200);
      const deadline = Date.now() + 10_000;
      while (!stack.logger.lines.some((l) => l.message === SLOT_THEFT_MESSAGE) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const warning = stack.logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE);
      expect(warning).toMatchObject({
        level: "warn",
        extra: { pool: "default", activationId: pair.ActivationId, registrationsCount: 2, issued: 1 },
      });
      const next = (await (await stack.get("/")).json()) as { ActivationId: string };
      expect(next.ActivationId).not.toBe(pair.ActivationId);
      expect(stack.emulator.controls.counters()["ssm:CreateActivation"]).toBe(2);
      expect(stack.logger.text()).not.toContain(pair.ActivationCode);
    } finally {
      await stack.close();
    }
  });
});
