import type { Server } from "node:http";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createBroker } from "../../src/composition";
import { REFUSED_PAIR_MESSAGE } from "../../src/core/refused-pairs";
import { SLOT_THEFT_MESSAGE } from "../../src/core/slot-theft";
import { createNodeServer, listen } from "../../src/http/node-server";
import { loadSettings } from "../../src/settings";
import { TEST_ROLE, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { CapturingLogger, RecordingMetrics } from "../support/fakes";
import { registerNode } from "../support/local";

interface Pair {
  ActivationId: string;
  ActivationCode: string;
}

/**
 * Theft at exhaustion, end to end over HTTP: the real broker (Node server, handler, vendor,
 * DynamoDB and SSM adapters) on the emulated AWS, and simulated servers that fetch a pair and
 * register it the way SSM Agent does. A thief registers its one pair five times on a limit-10
 * activation; honest servers refused with RegistrationLimitExceeded ask once more with
 * `?refused=<ActivationId>`, as the install scripts do.
 */
describe("refused pairs heal (GET /?refused=)", () => {
  let aws: EmulatedAws;
  let server: Server | undefined;

  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function aBroker() {
    const table = await aws.newTable();
    const settings = loadSettings({
      AWS_REGION: aws.region,
      BROKER_TABLE_NAME: table,
      BROKER_DEFAULT_IAM_ROLE: TEST_ROLE,
      BROKER_POOLS: JSON.stringify({ pools: { default: { registrationLimit: 10 } } }),
    });
    const logger = new CapturingLogger();
    const metrics = new RecordingMetrics();
    const broker = createBroker({ settings, clients: aws, logger, metrics });
    server = createNodeServer(broker.handler, { logger, limits: settings.server });
    const { port } = await listen(server, 0, "127.0.0.1");
    const get = async (path: string): Promise<{ status: number; body: Pair & { error?: unknown } }> => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, body: (await res.json()) as Pair };
    };
    const pair = async (path = "/") => {
      const answer = await get(path);
      expect(answer.status).toBe(200);
      return answer.body;
    };
    const register = async (p: Pair) => (await registerNode(aws.url, p)).body;
    const row = async () =>
      (await broker.vendor.idle(), (await aws.dynamodb.send(scanOf(table))).Items?.[0]) ?? {};
    return { broker, logger, metrics, get, pair, register, row };
  }

  /** An honest server: fetch, register, and once refused, ask again naming the refused pair. */
  async function honestServer(fx: Awaited<ReturnType<typeof aBroker>>, first: Pair) {
    const outcome = await fx.register(first);
    if (outcome.InstanceId) return { instanceId: outcome.InstanceId, refused: undefined };
    expect(outcome.__type).toBe("RegistrationLimitExceeded");
    const second = await fx.pair(`/?refused=${first.ActivationId}`);
    const retried = await fx.register(second);
    return { instanceId: retried.InstanceId, refused: outcome.__type, second };
  }

  it("every honest server registers, the activation is retired, WARN + RefusedPairs (once)", async () => {
    const fx = await aBroker();
    const stolen = await fx.pair();
    for (let i = 0; i < 5; i++) expect((await fx.register(stolen)).InstanceId).toBeDefined();
    // Nine honest servers get the nine slots left; the thief's extra registrations leave room for 5.
    const firsts = await Promise.all(Array.from({ length: 9 }, () => fx.pair()));
    expect(new Set(firsts.map((p) => p.ActivationId))).toEqual(new Set([stolen.ActivationId]));
    const outcomes = await Promise.all(firsts.map((p) => honestServer(fx, p)));

    expect(outcomes.every((o) => o.instanceId !== undefined)).toBe(true);
    const refused = outcomes.filter((o) => o.refused !== undefined);
    expect(refused).toHaveLength(4);
    for (const o of refused) expect(o.second?.ActivationId).not.toBe(stolen.ActivationId);
    // Retired in the pool row: whatever the replica, no further pair comes from it.
    expect((await fx.row()).activationId?.S).not.toBe(stolen.ActivationId);
    expect((await fx.pair()).ActivationId).not.toBe(stolen.ActivationId);

    const warnings = fx.logger.lines.filter((l) => l.message === REFUSED_PAIR_MESSAGE);
    expect(warnings).toHaveLength(1); // four claims, one SSM check, one retire
    expect(warnings[0]).toMatchObject({
      level: "warn",
      extra: { security: true, activationId: stolen.ActivationId, reason: "full", action: "retired" },
    });
    expect(fx.metrics.named("RefusedPairs")).toEqual([
      { kind: "count", name: "RefusedPairs", value: 1, dimensions: { Pool: "default" } },
    ]);
    const requests = fx.logger.lines.filter((l) => l.message === "request" && l.extra?.refused !== undefined);
    expect(requests.map((l) => l.extra?.refused)).toEqual(["retired", "retired", "retired", "retired"]);
    expect(fx.logger.text()).not.toContain(stolen.ActivationCode);
  });

  it("reports slot theft when the broker's own count says slots were left", async () => {
    const fx = await aBroker();
    const stolen = await fx.pair();
    for (let i = 0; i < 5; i++) await fx.register(stolen);
    // Honest servers one at a time: five register, the sixth (pair 7 of 10) is refused.
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await honestServer(fx, await fx.pair()));
    expect(results.every((o) => o.instanceId !== undefined)).toBe(true);
    expect(results.map((o) => o.refused)).toEqual([...Array(5).fill(undefined), "RegistrationLimitExceeded"]);
    const theft = fx.logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE);
    expect(theft?.extra).toMatchObject({
      activationId: stolen.ActivationId,
      issued: 7,
      registrationsCount: 10,
      action: "retired",
      detectedBy: "refused-pair",
    });
    expect(fx.metrics.named("SlotTheftDetected")).toHaveLength(1);
    // Three slots were left by the count: none of them is ever handed out.
    for (let i = 0; i < 4; i++) expect((await fx.pair()).ActivationId).not.toBe(stolen.ActivationId);
  });

  it("never trusts a claim SSM does not confirm: the activation stays in use", async () => {
    const fx = await aBroker();
    const first = await fx.pair();
    const answer = await fx.pair(`/?refused=${first.ActivationId}`);
    expect(answer.ActivationId).toBe(first.ActivationId);
    expect(fx.metrics.named("RefusedPairs")).toEqual([]);
    expect(fx.logger.lines.some((l) => l.message === REFUSED_PAIR_MESSAGE)).toBe(false);
    // A claim naming an activation the pool does not hand out costs no SSM call.
    const before = aws.emulator.controls.counters()["ssm:DescribeActivations"] ?? 0;
    await fx.pair("/activations/default?refused=00000000-0000-4000-8000-000000000000");
    expect(aws.emulator.controls.counters()["ssm:DescribeActivations"] ?? 0).toBe(before);
    // Not an activation id at all: 400, before anything is read.
    const bad = await fx.get("/?refused=..%2F..%2Fetc");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "InvalidParameter" });
  });
});

function scanOf(table: string) {
  return new ScanCommand({ TableName: table, ConsistentRead: true });
}
