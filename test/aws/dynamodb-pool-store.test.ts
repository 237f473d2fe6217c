import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ThrottledError, UpstreamUnavailableError } from "../../src/core/errors";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ensurePoolTable } from "../../src/aws/dynamodb-table";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const DAY = 86_400_000;

describe("DynamoDbPoolStore", () => {
  let aws: EmulatedAws;
  let tableName: string;
  let store: DynamoDbPoolStore;
  /** Same table, no SDK retries: each injected fault reaches the adapter. */
  let noRetryStore: DynamoDbPoolStore;
  let counter = 0;
  const newPool = () => `p${++counter}`;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    tableName = await aws.newTable();
    store = new DynamoDbPoolStore(aws.dynamodb, tableName);
    noRetryStore = new DynamoDbPoolStore(aws.clients({ maxAttempts: 1 }).dynamodb, tableName);
  });
  afterAll(async () => {
    await aws?.close();
  });
  afterEach(() => {
    aws.emulator.controls.clearFaults();
  });

  async function rotatedPool(limit = 10): Promise<string> {
    const pool = newPool();
    await store.acquireLease(pool, { owner: "o", generation: 0, now: NOW, deadline: NOW + 30_000 });
    await store.commitRotation(pool, {
      owner: "o",
      generation: 0,
      activation: { activationId: `act-${pool}`, expiresAt: NOW + DAY, limit },
    });
    return pool;
  }

  function callsDuring<T>(action: () => Promise<T>): Promise<{ result: T; calls: Record<string, number> }> {
    const before = aws.emulator.controls.counters();
    return action().then((result) => {
      const after = aws.emulator.controls.counters();
      const calls = Object.fromEntries(
        Object.entries(after)
          .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
          .filter(([, v]) => v > 0),
      );
      return { result, calls };
    });
  }

  describe("call budget (I4)", () => {
    it("reserves with exactly one UpdateItem and nothing else", async () => {
      const pool = await rotatedPool();
      const { result, calls } = await callsDuring(() => store.reserve(pool, NOW));
      expect(result?.slot).toBe(2);
      expect(calls).toEqual({ "dynamodb:UpdateItem": 1 });
    });

    it("spends one UpdateItem on a failed reservation too (no read before the write)", async () => {
      const { result, calls } = await callsDuring(() => store.reserve(newPool(), NOW));
      expect(result).toBeUndefined();
      expect(calls).toEqual({ "dynamodb:UpdateItem": 1 });
    });

    it("takes the lease and commits with one UpdateItem each", async () => {
      const pool = newPool();
      const lease = await callsDuring(() =>
        store.acquireLease(pool, { owner: "o", generation: 0, now: NOW, deadline: NOW + 1 }),
      );
      expect(lease.calls).toEqual({ "dynamodb:UpdateItem": 1 });
      const commit = await callsDuring(() =>
        store.commitRotation(pool, {
          owner: "o",
          generation: 0,
          activation: { activationId: "a", expiresAt: NOW + DAY, limit: 1 },
        }),
      );
      expect(commit.calls).toEqual({ "dynamodb:UpdateItem": 1 });
    });
  });

  describe("ConditionalCheckFailedException", () => {
    it("becomes undefined / false / a silent no-op, one per conditional write", async () => {
      const pool = await rotatedPool(1);
      const { calls } = await callsDuring(async () => {
        expect(await store.reserve(pool, NOW)).toBeUndefined();
        expect(await store.acquireLease(pool, { owner: "x", generation: 5, now: NOW, deadline: NOW })).toBe(
          false,
        );
        expect(
          await store.commitRotation(pool, {
            owner: "x",
            generation: 1,
            activation: { activationId: "b", expiresAt: NOW + DAY, limit: 1 },
          }),
        ).toBeUndefined();
        await store.releaseLease(pool, "x");
      });
      // Four refused writes: nothing retried, nothing read.
      expect(calls).toEqual({ "dynamodb:UpdateItem": 4 });
    });

    it("is the only error turned into 'no': a missing table is rethrown, not read as 'exhausted'", async () => {
      const missing = new DynamoDbPoolStore(aws.dynamodb, "no-such-table");
      await expect(missing.reserve("p", NOW)).rejects.toMatchObject({ name: "ResourceNotFoundException" });
      await expect(
        missing.acquireLease("p", { owner: "o", generation: 0, now: NOW, deadline: NOW }),
      ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
      await expect(missing.releaseLease("p", "o")).rejects.toMatchObject({
        name: "ResourceNotFoundException",
      });
    });
  });

  describe("throttling", () => {
    it.each([
      ["reserve", "UpdateItem", (s: DynamoDbPoolStore, pool: string) => s.reserve(pool, NOW)],
      ["read", "GetItem", (s: DynamoDbPoolStore, pool: string) => s.read(pool)],
      [
        "acquireLease",
        "UpdateItem",
        (s: DynamoDbPoolStore, pool: string) =>
          s.acquireLease(pool, { owner: "o", generation: 1, now: NOW, deadline: NOW }),
      ],
      ["releaseLease", "UpdateItem", (s: DynamoDbPoolStore, pool: string) => s.releaseLease(pool, "o")],
    ] as const)("turns a throttled %s (%s) into ThrottledError", async (_name, operation, call) => {
      const pool = await rotatedPool();
      aws.emulator.controls.injectFault({ service: "dynamodb", operation, kind: "throttle" });
      const error = await call(noRetryStore, pool).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ThrottledError);
      expect(error).toMatchObject({ service: "DynamoDB", retryAfterSeconds: 1, code: "Throttled" });
      expect((error as Error).cause).toMatchObject({ name: "ProvisionedThroughputExceededException" });
    });

    it("leaves a single throttle to the SDK's retries (maxAttempts 3)", async () => {
      const pool = await rotatedPool();
      aws.emulator.controls.injectFault({
        service: "dynamodb",
        operation: "UpdateItem",
        kind: "throttle",
        count: 1,
      });
      const { result, calls } = await callsDuring(() => store.reserve(pool, NOW));
      expect(result?.slot).toBe(2);
      expect(calls).toEqual({ "dynamodb:UpdateItem": 2 });
    });

    it("turns a sustained server error into UpstreamUnavailableError (a 503, not a 500)", async () => {
      const pool = await rotatedPool();
      aws.emulator.controls.injectFault({ service: "dynamodb", operation: "UpdateItem", kind: "error" });
      const error = await noRetryStore.reserve(pool, NOW).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({ service: "DynamoDB", cause: { name: "InternalServerError" } });
    });
  });

  describe("ensurePoolTable", () => {
    it("is idempotent", async () => {
      await expect(ensurePoolTable(aws.dynamodb, tableName)).resolves.toBeUndefined();
      const { calls } = await callsDuring(() => ensurePoolTable(aws.dynamodb, tableName));
      expect(Object.keys(calls)).toEqual(["dynamodb:DescribeTable"]);
    });
  });
});
