import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_STANDBY_DEPTH } from "../../src/core/vend-policy";
import { aLocalStack, pools, registerNode } from "../support/local";

/**
 * The invariants (docs/architecture.md) under a burst: 2,000 servers ask at once for a pool
 * whose activations take 10 registrations each. Real HTTP, real AWS SDK, dynalite for DynamoDB, the emulator for SSM.
 */
const REQUESTS = 2_000;
const LIMIT = 10;

type Pair = { ActivationId: string; ActivationCode: string; Pool: string };

describe("burst of 2,000 concurrent requests, registration limit 10", () => {
  let stack: Awaited<ReturnType<typeof aLocalStack>>;
  const output: string[] = [];
  const restore: (() => void)[] = [];
  const pairs: Pair[] = [];
  const refusals: { status: number; retryAfter: string | null; code: string }[] = [];

  beforeAll(async () => {
    // Capture everything the process writes (the Powertools logger included) during the burst,
    // and keep it off the terminal: 2,000 log lines are the evidence, shown only for a failure.
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream);
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        output.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
        const done = rest.find((r) => typeof r === "function") as (() => void) | undefined;
        done?.();
        return true;
      }) as typeof stream.write;
      restore.push(() => (stream.write = write));
    }
    process.env.POWERTOOLS_LOG_LEVEL = "DEBUG";
    try {
      // Up to 200 rotations in seconds: above the default rotation budget (100 an hour) on purpose.
      stack = await aLocalStack(
        {
          BROKER_POOLS: pools({ default: { registrationLimit: LIMIT, maxActivationsPerHour: 1000 } }),
          BROKER_ROTATION_WAIT_SECONDS: "5",
        },
        { logger: undefined },
      );
      const responses = await Promise.all(
        Array.from({ length: REQUESTS }, async () => {
          const res = await stack.get("/");
          return { status: res.status, retryAfter: res.headers.get("retry-after"), body: await res.json() };
        }),
      );
      for (const r of responses) {
        if (r.status === 200) pairs.push(r.body as Pair);
        else
          refusals.push({
            status: r.status,
            retryAfter: r.retryAfter,
            code: (r.body as { error: { code: string } }).error.code,
          });
      }
    } catch (error) {
      console.error(`the broker's output before the burst failed (last 100 of ${output.length} writes):`);
      console.error(output.slice(-100).join(""));
      throw error;
    }
  }, 180_000);

  afterEach(({ task }) => {
    if (task.result?.state === "fail") {
      console.error(`the broker's output during the burst (last 100 of ${output.length} writes):`);
      console.error(output.slice(-100).join(""));
    }
  });

  afterAll(async () => {
    // Stop the broker before giving the streams back: requests still in flight must not log.
    await stack?.close();
    restore.forEach((undo) => undo());
    delete process.env.POWERTOOLS_LOG_LEVEL;
  });

  it("answers every request with 200, or 503 with Retry-After", () => {
    expect(pairs.length + refusals.length).toBe(REQUESTS);
    expect(pairs.length).toBeGreaterThan(0);
    for (const r of refusals) {
      expect(r.status).toBe(503);
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    console.info(`burst: ${pairs.length} pairs handed out, ${refusals.length} refused with 503`);
  });

  it("hands out no activation more than its registration limit (I1)", () => {
    const counts = new Map<string, number>();
    for (const p of pairs) counts.set(p.ActivationId, (counts.get(p.ActivationId) ?? 0) + 1);
    expect(Math.max(...counts.values())).toBeLessThanOrEqual(LIMIT);
  });

  it("uses exactly ceil(handed-out / limit) activations, plus the pool's unused stock (I5, I9)", () => {
    const expected = Math.ceil(pairs.length / LIMIT);
    expect(new Set(pairs.map((p) => p.ActivationId)).size).toBe(expected);
    const created = stack.emulator.controls.counters()["ssm:CreateActivation"] ?? 0;
    expect(created).toBeGreaterThanOrEqual(expected);
    // The burst outruns a stock of one, so the pool keeps more while it lasts, never more than
    // the deepest stock a row holds (a refill that failed under load deletes what it created).
    expect(created).toBeLessThanOrEqual(expected + MAX_STANDBY_DEPTH);
    const used = new Set(pairs.map((p) => p.ActivationId));
    const unused = stack.emulator.controls.activations().filter((a) => !used.has(a.activationId));
    expect(unused.length).toBeLessThanOrEqual(MAX_STANDBY_DEPTH);
  });

  it("hands out pairs that every one register through the agent's RegisterManagedInstance", async () => {
    const results = await Promise.all(pairs.map((p) => registerNode(stack.emulatorUrl, p)));
    const failures = results.filter((r) => r.status !== 200);
    expect(failures).toEqual([]);
    expect(new Set(results.map((r) => r.body.InstanceId)).size).toBe(pairs.length);
    expect(stack.emulator.controls.managedNodes()).toHaveLength(pairs.length);
  });

  it("never writes an Activation Code to the logs (I6)", () => {
    const text = output.join("");
    expect(text).toContain("rotated to a new activation");
    const codes = new Set(pairs.map((p) => p.ActivationCode));
    expect(codes.size).toBeGreaterThan(0);
    for (const code of codes) expect(text).not.toContain(code);
  });
});
