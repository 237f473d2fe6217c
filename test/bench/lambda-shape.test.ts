/**
 * The benchmark's Lambda shape (bench/lambda-shape.ts) is itself equipment the fault suite and the
 * performance figures rely on: it must run the real handler, one invocation per container at a
 * time, freeze containers between invocations, serve the standby's self-invocation through its
 * Invoke API stand-in, and replace a container killed mid-invocation.
 */
import { readFileSync } from "node:fs";
import { Agent } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { type LambdaShape, startLambdaShape } from "../../bench/lambda-shape";
import { httpCall } from "../../bench/support";
import { type EmulatedAws, startEmulatedAws, TEST_CREDENTIALS, TEST_ROLE } from "../support/emulated-aws";

let aws: EmulatedAws | undefined;
let shape: LambdaShape | undefined;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
afterEach(async () => {
  await shape?.stop();
  await aws?.close();
  shape = undefined;
  aws = undefined;
});

async function start(containers: number, limit: number): Promise<{ aws: EmulatedAws; shape: LambdaShape }> {
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
      BROKER_DEPLOYMENT: "shape-test",
      BROKER_POOLS: JSON.stringify({ pools: { default: { registrationLimit: limit } } }),
      BROKER_LEASE_SECONDS: "5",
      POWERTOOLS_LOG_LEVEL: "ERROR",
    },
  });
  return { aws, shape };
}

/** The process state letter from /proc: "T" is stopped (frozen), "S"/"R" running or waiting. */
function stateOf(pid: number | undefined): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}

const vend = (s: LambdaShape) => httpCall(agent, `${s.url}/activations/default`);

describe("the benchmark's Lambda shape", () => {
  it("answers through the real handler, one invocation per container at a time, frozen in between", async () => {
    const { shape } = await start(2, 100);
    const t0 = performance.now();
    const answers = await Promise.all(Array.from({ length: 6 }, () => vend(shape)));
    const wallMs = performance.now() - t0;

    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const pair = JSON.parse(answers[0]!.body) as { ActivationId: string };
    expect(pair.ActivationId).toMatch(/^[0-9a-f-]{36}$/);
    // Six requests at once on two containers: the others waited in the queue, none ran beside them.
    expect(shape.counters().queuePeak).toBeGreaterThanOrEqual(3);
    expect(shape.counters().invocations.http).toBe(6);
    // Billed duration: each invocation's time in its container, two containers at most at once.
    expect(shape.counters().billedMs).toBeGreaterThanOrEqual(6);
    expect(shape.counters().billedMs).toBeLessThanOrEqual(2 * wallMs + 6);
    expect(shape.containers().map((c) => c.invocations > 0)).toEqual([true, true]);
    expect(await shape.settled(20_000)).toBe(true);
    // SIGSTOP takes effect when the kernel next schedules the process: promptly, not at once.
    for (const container of shape.containers())
      await expect.poll(() => stateOf(container.pid), { timeout: 5_000 }).toBe("T");
  });

  it("runs the standby's self-invocation through the Invoke API stand-in, in a container of its own", async () => {
    const { aws, shape } = await start(2, 2);
    for (let i = 0; i < 5; i++) expect((await vend(shape)).status).toBe(200);
    expect(await shape.settled(20_000)).toBe(true);

    const { invocations, invokeApiCalls } = shape.counters();
    const events = Object.entries(invocations)
      .filter(([kind]) => kind.startsWith("event:"))
      .reduce((sum, [, n]) => sum + n, 0);
    expect(invokeApiCalls).toBeGreaterThanOrEqual(1);
    expect(events).toBe(invokeApiCalls);
    expect(invocations["event:activation-broker.refill-standby"]).toBe(invokeApiCalls);
    // Five pairs at two per activation: three activations at least, made by requests or refills.
    expect(aws.emulator.controls.counters()["ssm:CreateActivation"]).toBeGreaterThanOrEqual(3);
  });

  it("replaces a container killed mid-rotation; the request it served fails as API Gateway fails it", async () => {
    const { aws, shape } = await start(1, 10);
    aws.emulator.controls.injectFault({
      service: "ssm",
      operation: "CreateActivation",
      kind: "latency",
      latencyMs: 1500,
      count: 2,
    });
    const before = shape.containers()[0]!.pid;
    const answer = vend(shape);
    // A cold pool: the first request rotates, creating the current activation and its standby at
    // once; kill its container while both CreateActivation calls are out.
    await expect
      .poll(() => aws.emulator.controls.counters()["ssm:CreateActivation"] ?? 0, { timeout: 15_000 })
      .toBe(2);
    await shape.kill(0);

    expect((await answer).status).toBe(502);
    expect(shape.counters().functionErrors).toBe(1);
    const after = shape.containers()[0]!.pid;
    expect(after).not.toBe(before);
    // The fresh container serves the next request (the dead one's lease lapses within 5 s).
    const next = await vend(shape);
    expect([200, 503]).toContain(next.status);
    expect(shape.counters().invocations.http).toBe(2);
  });
});
