/**
 * The fault suite in the shape the broker is deployed: Lambda containers that serve one request
 * at a time, frozen in between, sharing only the emulated AWS (bench/lambda-shape.ts runs the
 * real handler). A container is SIGKILLed while it rotates (a request's CreateActivation calls,
 * for the current activation and its standby, are out) and while it refills the standby (the
 * self-invocation's CreateActivation is out). Afterwards
 * the pool keeps serving: every pair handed out registers a node with SSM, no activation is
 * handed out more than its limit (I1), and the dead holder's lease lapses by itself (I3).
 */
import { Agent } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type LambdaShape, startLambdaShape } from "../../bench/lambda-shape";
import { httpCall } from "../../bench/support";
import { type EmulatedAws, startEmulatedAws, TEST_CREDENTIALS, TEST_ROLE } from "../support/emulated-aws";
import { registerNode } from "../support/local";

type Pair = { ActivationId: string; ActivationCode: string };

const LIMIT = 3;
const LEASE_SECONDS = 5;

let aws: EmulatedAws | undefined;
let shape: LambdaShape | undefined;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
afterEach(async () => {
  await shape?.stop();
  await aws?.close();
  shape = undefined;
  aws = undefined;
});

async function start(containers: number) {
  aws = await startEmulatedAws();
  const table = await aws.newTable();
  shape = await startLambdaShape({
    containers,
    stderr: "ignore",
    env: {
      AWS_REGION: aws.region,
      AWS_ENDPOINT_URL: aws.url,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      BROKER_TABLE_NAME: table,
      BROKER_DEFAULT_IAM_ROLE: TEST_ROLE,
      BROKER_DEPLOYMENT: "lambda-faults",
      BROKER_POOLS: JSON.stringify({ pools: { default: { registrationLimit: LIMIT } } }),
      BROKER_LEASE_SECONDS: String(LEASE_SECONDS),
      BROKER_ROTATION_WAIT_SECONDS: "8",
      POWERTOOLS_LOG_LEVEL: "ERROR",
    },
  });
  return { aws, shape };
}

/** Vends until at least `count` pairs came back 200 (a client retries a 502/503, as install.sh does). */
async function vendPairs(s: LambdaShape, count: number, concurrency = 4): Promise<Pair[]> {
  const pairs: Pair[] = [];
  let attempts = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (pairs.length < count && attempts < count * 4) {
        attempts++;
        const answer = await httpCall(agent, `${s.url}/activations/default`);
        if (answer.status === 200) pairs.push(JSON.parse(answer.body) as Pair);
        else await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }),
  );
  return pairs;
}

async function expectInvariants(fx: { aws: EmulatedAws }, pairs: readonly Pair[]): Promise<void> {
  for (const pair of pairs) {
    expect((await registerNode(fx.aws.emulator.url, pair)).status, pair.ActivationId).toBe(200);
  }
  const perActivation = new Map<string, number>();
  for (const p of pairs) perActivation.set(p.ActivationId, (perActivation.get(p.ActivationId) ?? 0) + 1);
  for (const count of perActivation.values()) expect(count).toBeLessThanOrEqual(LIMIT);
}

describe("faults in the Lambda shape", () => {
  it("a container killed mid-rotation: its lease lapses, the others keep every invariant", async () => {
    const fx = await start(3);
    fx.aws.emulator.controls.injectFault({
      service: "ssm",
      operation: "CreateActivation",
      kind: "latency",
      latencyMs: 2000,
      count: 2,
    });
    const busy = new Set<number>();
    fx.shape.onInvocationStart((s) => s.kind === "http" && busy.add(s.container));
    const first = httpCall(agent, `${fx.shape.url}/activations/default`);
    // A cold pool: the first request rotates, creating the current activation and its standby at
    // once. Kill it while both CreateActivation calls are out.
    await expect
      .poll(() => fx.aws.emulator.controls.counters()["ssm:CreateActivation"] ?? 0, { timeout: 15_000 })
      .toBe(2);
    await fx.shape.kill([...busy][0]!);
    expect((await first).status).toBe(502);

    const pairs = await vendPairs(fx.shape, 12);
    expect(pairs.length).toBeGreaterThanOrEqual(12);
    expect(await fx.shape.settled(20_000)).toBe(true);
    await expectInvariants(fx, pairs);
  });

  it("a container killed mid-refill: the pool rotates on request meanwhile, and keeps every invariant", async () => {
    const fx = await start(3);
    const refilling: number[] = [];
    fx.shape.onInvocationStart((s) => s.kind === "event" && refilling.push(s.container));
    // The first request's rotation makes the current activation and its standby together: the
    // current one's LIMIT slots leave the stock at its depth, so no refill is asked for yet.
    const warm = await vendPairs(fx.shape, LIMIT, 1);
    expect(warm).toHaveLength(LIMIT);
    expect(fx.aws.emulator.controls.counters()["ssm:CreateActivation"]).toBe(2);
    expect(refilling).toEqual([]);
    // The refill's CreateActivation, the next one, takes 2 s.
    fx.aws.emulator.controls.injectFault({
      service: "ssm",
      operation: "CreateActivation",
      kind: "latency",
      latencyMs: 2000,
      count: 1,
    });
    // Slot 1 of the standby: the pool has no unused standby left, and this request asks for one.
    warm.push(...(await vendPairs(fx.shape, 1, 1)));
    await expect
      .poll(() => fx.aws.emulator.controls.counters()["ssm:CreateActivation"] ?? 0, { timeout: 15_000 })
      .toBe(3);
    expect(refilling).toHaveLength(1);
    await fx.shape.kill(refilling[0]!);

    const pairs = await vendPairs(fx.shape, 12);
    expect(pairs.length).toBeGreaterThanOrEqual(12);
    expect(await fx.shape.settled(20_000)).toBe(true);
    await expectInvariants(fx, [...warm, ...pairs]);
  });
});
