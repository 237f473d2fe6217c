import { type AttributeValue, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ThrottledError, UpstreamUnavailableError } from "../../src/core/errors";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ensurePoolTable } from "../../src/aws/dynamodb-table";
import { poolKey } from "../../src/aws/naming";
import { recordingSends, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

/** A rotation budget no test here reaches (the budget has its own cases), on a row with no window yet. */
const ANY_BUDGET = { max: 1_000_000, windowMs: 3_600_000, windowStart: undefined };

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
    await store.acquireLease(pool, {
      budget: ANY_BUDGET,
      owner: "o",
      generation: 0,
      now: NOW,
      deadline: NOW + 30_000,
    });
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

    it("takes the lease with one UpdateItem, opening a window or counting in one; commits with one", async () => {
      const pool = newPool();
      const lease = await callsDuring(() =>
        store.acquireLease(pool, {
          budget: ANY_BUDGET,
          owner: "o",
          generation: 0,
          now: NOW,
          deadline: NOW + 1,
        }),
      );
      expect(lease).toEqual({ result: true, calls: { "dynamodb:UpdateItem": 1 } });
      const commit = await callsDuring(() =>
        store.commitRotation(pool, {
          owner: "o",
          generation: 0,
          activation: { activationId: "a", expiresAt: NOW + DAY, limit: 1 },
        }),
      );
      expect(commit.calls).toEqual({ "dynamodb:UpdateItem": 1 });
      const next = await callsDuring(() =>
        store.acquireLease(pool, {
          budget: { ...ANY_BUDGET, windowStart: NOW },
          owner: "p",
          generation: 1,
          now: NOW + 2,
          deadline: NOW + 3,
        }),
      );
      expect(next).toEqual({ result: true, calls: { "dynamodb:UpdateItem": 1 } });
    });

    it("refuses a caller who lost the race for the lease with one UpdateItem", async () => {
      const pool = newPool();
      const lease = (owner: string) => ({
        budget: ANY_BUDGET,
        owner,
        generation: 0,
        now: NOW,
        deadline: NOW + 1,
      });
      expect(await store.acquireLease(pool, lease("winner"))).toBe(true);
      const loser = await callsDuring(() => store.acquireLease(pool, lease("loser")));
      expect(loser).toEqual({ result: false, calls: { "dynamodb:UpdateItem": 1 } });
    });
  });

  describe("ConditionalCheckFailedException", () => {
    it("becomes undefined / false / a silent no-op, one per conditional write", async () => {
      const pool = await rotatedPool(1);
      const { calls } = await callsDuring(async () => {
        expect(await store.reserve(pool, NOW)).toBeUndefined();
        expect(
          await store.acquireLease(pool, {
            budget: ANY_BUDGET,
            owner: "x",
            generation: 5,
            now: NOW,
            deadline: NOW,
          }),
        ).toBe(false);
        expect(
          await store.commitRotation(pool, {
            owner: "x",
            generation: 1,
            activation: { activationId: "b", expiresAt: NOW + DAY, limit: 1 },
          }),
        ).toBeUndefined();
        await store.releaseLease(pool, "x");
      });
      // Four refused writes, one each: nothing read.
      expect(calls).toEqual({ "dynamodb:UpdateItem": 4 });
    });

    it("is the only error turned into 'no': a missing table is rethrown, not read as 'exhausted'", async () => {
      const missing = new DynamoDbPoolStore(aws.dynamodb, "no-such-table");
      await expect(missing.reserve("p", NOW)).rejects.toMatchObject({ name: "ResourceNotFoundException" });
      await expect(
        missing.acquireLease("p", { budget: ANY_BUDGET, owner: "o", generation: 0, now: NOW, deadline: NOW }),
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
          s.acquireLease(pool, { budget: ANY_BUDGET, owner: "o", generation: 1, now: NOW, deadline: NOW }),
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

  describe("reads", () => {
    it("reads the row with a consistent GetItem, so it sees the write just made", async () => {
      // dynalite's reads are always consistent: only the request shows what DynamoDB would be asked.
      const pool = await rotatedPool();
      const { client, sent } = recordingSends(aws.dynamodb);
      expect(await new DynamoDbPoolStore(client, tableName).read(pool)).toMatchObject({ generation: 1 });
      expect(sent).toEqual([
        {
          command: "GetItemCommand",
          input: { TableName: tableName, Key: { pk: { S: poolKey(pool) } }, ConsistentRead: true },
        },
      ]);
    });
  });

  describe("a row edited by hand", () => {
    /** A pool row as the store writes it, with the given attributes replaced (or removed: undefined). */
    async function handEditedRow(changes: Record<string, AttributeValue | undefined>): Promise<string> {
      const pool = newPool();
      const row: Record<string, AttributeValue | undefined> = {
        pk: { S: poolKey(pool) },
        pool: { S: pool },
        generation: { N: "1" },
        activationId: { S: "act-current" },
        expiresAt: { N: String(NOW + DAY) },
        limit: { N: "10" },
        issued: { N: "1" },
        ...changes,
      };
      const item = Object.fromEntries(Object.entries(row).filter(([, v]) => v !== undefined));
      await aws.dynamodb.send(
        new PutItemCommand({ TableName: tableName, Item: item as Record<string, AttributeValue> }),
      );
      return pool;
    }

    const withQueue = (queue: AttributeValue, queueGeneration = "1") => ({
      limit: { N: "1" },
      standbyId: { S: "act-standby" },
      standbyExpiresAt: { N: String(NOW + DAY) },
      standbyLimit: { N: "1" },
      standbyEnd: { N: "2" },
      queue,
      queueIds: { L: [{ S: "act-q" }] },
      queueEnd: { N: "4" },
      queueExpiresAt: { N: String(NOW + DAY) },
      queueGeneration: { N: queueGeneration },
    });
    const entry = {
      M: { activationId: { S: "act-q" }, expiresAt: { N: String(NOW + DAY) }, limit: { N: "2" } },
    };

    it("reads a queue of this generation, with each activation's share of the counter", async () => {
      const pool = await handEditedRow({ ...withQueue({ L: [entry] }), issued: { N: "3" } });
      expect((await store.read(pool))?.links.slice(2)).toEqual([
        { activationId: "act-q", expiresAt: NOW + DAY, limit: 2, issued: 1 },
      ]);
    });

    it.each([
      [
        "another generation's queue (a release without queues rotated over it)",
        withQueue({ L: [entry] }, "0"),
      ],
      ["a queue that is not a list", withQueue({ S: "act-q" })],
      ["a queue that is one entry, not a list of them", withQueue(entry)],
      ["a queue missing beside its generation", { ...withQueue({ L: [entry] }), queue: undefined }],
      ["a queue entry that is not a map", withQueue({ L: [{ NULL: true }] })],
      ["a queue entry that is a string", withQueue({ L: [{ S: "act-q" }] })],
      [
        "a queue entry without a limit",
        withQueue({ L: [{ M: { activationId: { S: "act-q" }, expiresAt: { N: "1" } } }] }),
      ],
      ["a queue without a standby", { ...withQueue({ L: [entry] }), standbyId: undefined }],
    ])("reads %s as no queue", async (_name, changes) => {
      const pool = await handEditedRow(changes);
      expect((await store.read(pool))?.links.slice(2)).toEqual([]);
    });

    it("refuses a commit with no activation at all", async () => {
      const pool = await handEditedRow({});
      await expect(
        store.commitRefill(pool, {
          owner: "o",
          generation: 1,
          seen: ["act-current"],
          dropped: 0,
          shift: 0,
          chain: [],
          depth: 1,
          now: NOW,
        }),
      ).rejects.toThrow("A refill commits at least the pool's current activation.");
    });

    const standbyInUse = {
      limit: { N: "1" },
      standbyId: { S: "act-standby" },
      standbyExpiresAt: { N: String(NOW + DAY) },
      standbyLimit: { N: "3" },
      standbyEnd: { N: "4" },
    };

    it.each([
      ["an activation id that is not a string", { activationId: { N: "7" } }],
      [
        "no expiry on the current activation, even with the standby in use",
        { ...standbyInUse, expiresAt: undefined },
      ],
    ])("fails a reservation on %s instead of handing out half a pair", async (_what, changes) => {
      const pool = await handEditedRow(changes);
      await expect(store.reserve(pool, NOW)).rejects.toThrow(
        "Pool row is missing activation attributes after a successful reservation.",
      );
    });

    // The reservation's condition reads standbyEnd and standbyExpiresAt, never standbyId: without a
    // readable id the second slot would be handed out as slot 2 of an activation whose limit is 1.
    it.each([
      ["missing", undefined],
      ["not a string", { N: "8" }],
    ])(
      "fails a reservation into a standby whose id is %s instead of handing out a slot past the limit",
      async (_what, standbyId) => {
        const pool = await handEditedRow({ ...standbyInUse, standbyId, standbyEnd: { N: "2" } });
        await expect(store.reserve(pool, NOW)).rejects.toThrow(
          "Pool row's activations are unreadable after a successful reservation.",
        );
      },
    );

    it("fails a switch to a standby whose id is not a string instead of handing it out", async () => {
      const pool = await handEditedRow({
        expiresAt: { N: String(NOW) },
        standbyId: { N: "8" },
        standbyExpiresAt: { N: String(NOW + DAY) },
        standbyLimit: { N: "3" },
        standbyEnd: { N: "13" },
      });
      await expect(store.switchToStandby(pool, NOW + 1)).rejects.toThrow(
        "Pool row is missing standby attributes after a successful switch.",
      );
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
