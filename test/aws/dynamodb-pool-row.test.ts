/**
 * The pool row as DynamoDB bills it (I4): a write consumes one write capacity unit per started KB
 * of the larger of the item before and after it, an item's size being its attribute names' UTF-8
 * lengths plus its values' sizes
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
 * The emulated DynamoDB (dynalite) answers `ReturnConsumedCapacity: "TOTAL"` by the same rule, so
 * each test measures the units its writes consumed as well as the row's size.
 *
 * Also: the packed queue's format, and rows in the previous release's layout (a list of maps
 * beside a list of ids) read, reserved from and rewritten by this code.
 */
import { randomUUID } from "node:crypto";
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DynamoDbPoolStore,
  packedQueueSize,
  packQueue,
  unpackQueue,
} from "../../src/aws/dynamodb-pool-store";
import { DynamoDbPoolInventory } from "../../src/aws/dynamodb-pool-inventory";
import { poolKey } from "../../src/aws/naming";
import type { NewActivation } from "../../src/core/ports";
import { linksOf, MAX_STANDBY_DEPTH, queuedOf } from "../../src/core/vend-policy";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const DAY = 86_400_000;
const KB = 1024;

/** The activations a row keeps after its standby: the queue (none without a row). */

/** An item's size by the documented rule; numbers at their upper bound (1 byte + 1 per 2 digits). */
function itemSize(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce(
    (size, [name, value]) => size + Buffer.byteLength(name) + valueSize(value),
    0,
  );
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.B !== undefined) return value.B.length;
  if (value.N !== undefined) {
    const digits = value.N.replace(/[-.]/g, "").replace(/^0+/, "").replace(/0+$/, "");
    return 1 + Math.ceil(digits.length / 2);
  }
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.L !== undefined) return 3 + value.L.reduce((sum, v) => sum + 1 + valueSize(v), 0);
  if (value.M !== undefined) {
    return (
      3 + Object.entries(value.M).reduce((sum, [k, v]) => sum + 1 + Buffer.byteLength(k) + valueSize(v), 0)
    );
  }
  throw new Error(`no size rule for ${Object.keys(value).join()}`);
}

/** The client with every write asking for its consumed capacity, and what each one consumed. */
function measuringWrites(client: DynamoDBClient): { client: DynamoDBClient; units: number[] } {
  const units: number[] = [];
  const measuring = Object.create(client) as DynamoDBClient;
  const send = client.send.bind(client) as (command: object) => Promise<unknown>;
  Object.assign(measuring, {
    send: async (command: { input: Record<string, unknown> }) => {
      const write = command instanceof UpdateItemCommand;
      if (write) command.input.ReturnConsumedCapacity = "TOTAL";
      try {
        const output = (await send(command)) as { ConsumedCapacity?: { CapacityUnits?: number } };
        if (write) units.push(output.ConsumedCapacity?.CapacityUnits ?? Number.NaN);
        return output;
      } catch (error) {
        // A refused condition is billed too (by the item as it stands): count it as one unit
        // only if the row is within 1 KB, which the size assertions check separately.
        if (write) units.push(Number.NaN);
        throw error;
      }
    },
  });
  return { client: measuring, units };
}

const activation = (expiresAt: number, limit = 1000): NewActivation => ({
  activationId: randomUUID(),
  expiresAt,
  limit,
});

describe("the pool row in DynamoDB", () => {
  let aws: EmulatedAws;
  let tableName: string;
  let counter = 0;
  /** The longest pool name there is (POOL_NAME_PATTERN: 64 characters), unique per test. */
  const longestPoolName = () => `${"p".repeat(60)}${String(++counter).padStart(4, "0")}`;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    tableName = await aws.newTable();
  });
  afterAll(async () => {
    await aws?.close();
  });

  async function rawRow(pool: string): Promise<Record<string, AttributeValue>> {
    const { Item } = await aws.dynamodb.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: { S: poolKey(pool) } }, ConsistentRead: true }),
    );
    if (!Item) throw new Error(`no row for ${pool}`);
    return Item;
  }

  async function handEdit(pool: string, update: string, values: Record<string, unknown>): Promise<void> {
    const names = Object.fromEntries([...update.matchAll(/#(\w+)/g)].map((m) => [m[0], m[1] as string]));
    await aws.dynamodb.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { pk: { S: poolKey(pool) } },
        UpdateExpression: update,
        ExpressionAttributeNames: names,
        ...(Object.keys(values).length > 0 && { ExpressionAttributeValues: marshall(values) }),
      }),
    );
  }

  it("stays within 1 KB at the deepest stock, with every attribute at its largest: one unit per write (I4)", async () => {
    const { client, units } = measuringWrites(aws.dynamodb);
    const store = new DynamoDbPoolStore(client, tableName);
    const pool = longestPoolName();
    const generation = 123_456_789_012;
    const budget = { max: 10_000, windowMs: DAY, count: 1 + MAX_STANDBY_DEPTH, windowStart: undefined };
    const now = NOW + 123_457;
    // Expiries up to SSM's 30 days, none on a whole second where a real one would be (the worst
    // case for the numbers' sizes).
    const expiry = (i: number) => NOW + 30 * DAY - i * 3_600_123 - 7;
    const chain = Array.from({ length: 1 + MAX_STANDBY_DEPTH }, (_, i) => activation(expiry(i)));
    const [current, ...standbys] = chain as [NewActivation, ...NewActivation[]];

    // A rotation that makes the deepest stock there is, then everything else a row can carry:
    // a lease held, a rotation window nearly spent, an activation marked revoked.
    const owner = randomUUID();
    expect(
      await store.acquireLease(pool, { owner, generation: 0, now, deadline: now + 30_123, budget }),
    ).toBe(true);
    await handEdit(pool, "SET #generation = :g", { ":g": generation });
    const rotated = await store.commitRotation(pool, {
      owner,
      generation,
      activation: current,
      standbys,
      depth: MAX_STANDBY_DEPTH,
      refilledAt: now,
    });
    expect(rotated).toMatchObject({ activationId: current.activationId, slot: 1 });
    expect(
      await store.acquireLease(pool, {
        owner: randomUUID(),
        generation: generation + 1,
        now: now + 1,
        deadline: now + 30_123,
        budget: { ...budget, windowStart: now },
      }),
    ).toBe(true);
    await handEdit(pool, "SET #rotationsInWindow = :r, #revokedActivationId = :id, #issued = :i", {
      ":r": 9_999,
      ":id": randomUUID(),
      // The last slot but one of the last queued activation: the counter at its largest.
      ":i": 1000 * chain.length - 2,
    });
    const state = await store.read(pool);
    expect(linksOf(state).map((l) => l.activationId)).toEqual(chain.map((a) => a.activationId));

    const reserved = await store.reserve(pool, NOW);
    expect(reserved).toMatchObject({ activationId: chain.at(-1)?.activationId, slot: 999, next: [] });

    const row = await rawRow(pool);
    const size = itemSize(row);
    console.info(`largest pool row: ${size} bytes (${Object.keys(row).length} attributes)`);
    expect(size).toBeLessThanOrEqual(KB);
    // The lease, two commits-worth of writes and the hand edits all fit in one unit too.
    expect(units.every((u) => u === 1)).toBe(true);
    expect(units.length).toBeGreaterThanOrEqual(4);
  });

  it("the previous layout's row at the same depth costs three units a reservation: the measure can tell", async () => {
    const { client, units } = measuringWrites(aws.dynamodb);
    const pool = longestPoolName();
    const [current, standby, ...queue] = Array.from({ length: 1 + MAX_STANDBY_DEPTH }, (_, i) =>
      activation(NOW + DAY + i * 1000, 10),
    ) as [NewActivation, NewActivation, ...NewActivation[]];
    await aws.dynamodb.send(
      new PutItemCommand({
        TableName: tableName,
        Item: marshall(legacyRow(pool, 7, { current, standby, queue, issued: 20 })),
      }),
    );
    // Served from its first queued activation, as the release that wrote it would.
    const reserved = await new DynamoDbPoolStore(client, tableName).reserve(pool, NOW);
    expect(reserved).toMatchObject({ activationId: queue[0]?.activationId, slot: 1, generation: 7 });
    expect(itemSize(await rawRow(pool))).toBeGreaterThan(2 * KB);
    expect(units).toEqual([3]);
  });

  describe("a row the previous release wrote (a queue as a list of maps)", () => {
    async function legacyPool(issued: number) {
      const pool = longestPoolName();
      const [current, standby, ...queue] = Array.from({ length: 5 }, (_, i) =>
        activation(NOW + DAY + i * 1000, 2),
      ) as [NewActivation, NewActivation, ...NewActivation[]];
      await aws.dynamodb.send(
        new PutItemCommand({
          TableName: tableName,
          Item: marshall(legacyRow(pool, 3, { current, standby, queue, issued })),
        }),
      );
      return { pool, current, standby, queue };
    }

    it("is read with each queued activation's share of the counter", async () => {
      const { pool, queue } = await legacyPool(5);
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      expect(queuedOf(await store.read(pool))).toEqual([
        { ...queue[0], issued: 1 },
        { ...queue[1], issued: 0 },
        { ...queue[2], issued: 0 },
      ]);
    });

    it("is rewritten in the packed layout by the next refill, which keeps every slot taken", async () => {
      const { pool, current, standby, queue } = await legacyPool(5);
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      expect(await store.acquireLease(pool, leaseAt(3))).toBe(true);
      const added = activation(NOW + 2 * DAY, 2);
      const seen = [current, standby, ...queue].map((a) => a.activationId);
      expect(
        await store.commitRefill(pool, {
          owner: "o",
          generation: 3,
          seen,
          dropped: 2,
          shift: 4,
          chain: [...queue, added],
          depth: 3,
          now: NOW,
        }),
      ).toBe(true);
      const row = await rawRow(pool);
      expect(Object.keys(row).filter((k) => k.startsWith("queue") || k === "pool")).toEqual([]);
      expect(row.qGeneration).toEqual({ N: "5" });
      // Slot 1 of the first one was taken before the rewrite: the next reservation takes slot 2.
      expect(await store.reserve(pool, NOW)).toMatchObject({ activationId: queue[0]?.activationId, slot: 2 });
      expect(linksOf(await store.read(pool)).map((l) => l.activationId)).toEqual([
        ...queue.map((a) => a.activationId),
        added.activationId,
      ]);
    });

    it("is left with neither its queue nor `pool` by a rotation that brings a standby alone", async () => {
      const { pool } = await legacyPool(4);
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      expect(await store.acquireLease(pool, leaseAt(3))).toBe(true);
      const [current, standby] = [activation(NOW + 2 * DAY, 2), activation(NOW + 3 * DAY, 2)];
      expect(
        await store.commitRotation(pool, {
          owner: "o",
          generation: 3,
          activation: current,
          standbys: [standby],
          depth: 1,
          refilledAt: NOW,
        }),
      ).toMatchObject({ activationId: current.activationId, slot: 1 });
      // Both queue layouts' attributes start with "q" (queue*, q*); no other attribute does.
      const left = Object.keys(await rawRow(pool)).filter((k) => k === "pool" || k.startsWith("q"));
      expect(left).toEqual([]);
      expect(linksOf(await store.read(pool)).map((l) => l.activationId)).toEqual([
        current.activationId,
        standby.activationId,
      ]);
    });

    it("refuses a refill commit over it once a revoke dropped it", async () => {
      const { pool, current, standby, queue } = await legacyPool(4);
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      expect(await store.acquireLease(pool, leaseAt(3))).toBe(true);
      await handEdit(pool, "REMOVE #queue, #queueIds, #queueEnd, #queueExpiresAt, #queueGeneration", {});
      const seen = [current, standby, ...queue].map((a) => a.activationId);
      const refill = { owner: "o", generation: 3, seen, dropped: 0, shift: 0, depth: 3, now: NOW };
      expect(await store.commitRefill(pool, { ...refill, chain: [current, standby, ...queue] })).toBe(false);
    });

    it("is revoked from by dropping the queue when nobody used it (I8)", async () => {
      const { pool, queue } = await legacyPool(4); // current and standby exhausted, queue unused
      const inventory = new DynamoDbPoolInventory(aws.dynamodb, tableName);
      expect(await inventory.retire(pool, queue[1]?.activationId ?? "", { revoked: true })).toBe(true);
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      expect((await store.read(pool))?.links.slice(2)).toEqual([]);
      expect(await store.reserve(pool, NOW)).toBeUndefined();
      expect((await rawRow(pool)).revokedActivationId).toEqual({ S: queue[1]?.activationId });
    });

    it("is revoked from by taking all the queue's slots once it is in use (I8)", async () => {
      const { pool, queue } = await legacyPool(5); // slot 1 of the first queued one taken
      const inventory = new DynamoDbPoolInventory(aws.dynamodb, tableName);
      expect(await inventory.retire(pool, queue[1]?.activationId ?? "")).toBe(true);
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      expect(queuedOf(await store.read(pool)).map((q) => q.issued)).toEqual([2, 2, 2]);
      expect(await store.reserve(pool, NOW)).toBeUndefined();
    });

    it("never serves a previous-layout queue that shares its generation with a packed one", async () => {
      // Only a release without packed queues could have written it there (a refill racing one of
      // ours); the packed queue is the one read back, so it is the only one reserved from.
      const { pool, current, standby } = await legacyPool(4);
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      const packed = activation(NOW + DAY, 1);
      const { bytes, base } = packQueue([packed]);
      await handEdit(pool, "SET #q = :q, #qEnd = :end, #qExpiresAt = :base, #qGeneration = :gen", {
        ":q": bytes,
        ":end": 5,
        ":base": base,
        ":gen": 3,
      });
      expect(queuedOf(await store.read(pool))).toMatchObject([{ ...packed, issued: 0 }]);
      expect(await store.reserve(pool, NOW)).toMatchObject({ activationId: packed.activationId, slot: 1 });
      expect(await store.reserve(pool, NOW)).toBeUndefined(); // the other queue is not reachable
      expect(linksOf(await store.read(pool)).map((l) => l.activationId)).toEqual([
        current.activationId,
        standby.activationId,
        packed.activationId,
      ]);
    });
  });

  describe("the packed queue", () => {
    it("packs SSM's ids in 21 bytes each, expiries to the second below, and reads them back", () => {
      const queue = [
        activation(NOW + DAY + 1_999, 1000),
        activation(NOW + DAY, 7),
        activation(NOW + 30 * DAY, 1),
      ];
      const { bytes, base } = packQueue(queue);
      expect(base).toBe(NOW + DAY);
      expect(bytes.length).toBe(1 + 3 * 21);
      expect(bytes.length).toBe(packedQueueSize(queue.map((a) => a.activationId)));
      expect(unpackQueue(bytes, base)).toEqual([
        { ...queue[0], expiresAt: NOW + DAY + 1_000 }, // never later than the real one (I2)
        queue[1],
        queue[2],
      ]);
    });

    it("packs other ids (the fakes', a hand-written row's) with their length", () => {
      const queue = [
        { activationId: "act-q1", expiresAt: NOW, limit: 3 },
        { activationId: randomUUID().toUpperCase(), expiresAt: NOW + 2_000, limit: 65_535 },
        { activationId: "é".repeat(127), expiresAt: NOW + 1_000, limit: 1 },
      ];
      const { bytes, base } = packQueue(queue);
      expect(bytes.length).toBe(1 + (1 + 6 + 5) + (1 + 36 + 5) + (1 + 254 + 5));
      expect(bytes.length).toBe(packedQueueSize(queue.map((a) => a.activationId)));
      expect(unpackQueue(bytes, base)).toEqual(queue);
    });

    it("packs a queue that mixes SSM's ids with others with their length, every id as it was", () => {
      const queue = [activation(NOW, 2), { activationId: "act-q1", expiresAt: NOW, limit: 3 }];
      const { bytes, base } = packQueue(queue);
      expect(bytes.length).toBe(1 + (1 + 36 + 5) + (1 + 6 + 5));
      expect(bytes.length).toBe(packedQueueSize(queue.map((a) => a.activationId)));
      expect(unpackQueue(bytes, base)).toEqual(queue);
    });

    it.each([
      ["a prefix", (uuid: string) => `act-${uuid}`],
      ["a suffix", (uuid: string) => `${uuid}-2`],
    ])("packs an id that is a UUID with %s with its length, not as a UUID", (_what, idOf) => {
      const queue = [{ activationId: idOf(randomUUID()), expiresAt: NOW, limit: 1 }];
      const { bytes, base } = packQueue(queue);
      expect(bytes.length).toBe(1 + 1 + Buffer.byteLength(queue[0]?.activationId ?? "") + 5);
      expect(bytes.length).toBe(packedQueueSize(queue.map((a) => a.activationId)));
      expect(unpackQueue(bytes, base)).toEqual(queue);
    });

    it("packs an id of 255 bytes, the longest its length byte holds", () => {
      const queue = [{ activationId: "x".repeat(255), expiresAt: NOW, limit: 1 }];
      const { bytes, base } = packQueue(queue);
      expect(bytes.length).toBe(1 + 1 + 255 + 5);
      expect(unpackQueue(bytes, base)).toEqual(queue);
    });

    it("holds an expiry offset to its largest and no further (a later one reads as earlier, never later)", () => {
      const far = NOW + 2 ** 24 * 1000 + 5_000;
      const { bytes, base } = packQueue([activation(NOW, 1), activation(far, 1)]);
      expect(unpackQueue(bytes, base)?.[1]?.expiresAt).toBe(NOW + (2 ** 24 - 1) * 1000);
    });

    it.each([
      [
        "a limit of 0",
        { activationId: "a", expiresAt: NOW, limit: 0 },
        "limit must be an integer from 1 to 65535",
      ],
      ["a limit above 65,535", { activationId: "a", expiresAt: NOW, limit: 65_536 }, "limit must be"],
      ["a fractional limit", { activationId: "a", expiresAt: NOW, limit: 1.5 }, "limit must be"],
      [
        "an id longer than 255 bytes",
        { activationId: "x".repeat(256), expiresAt: NOW, limit: 1 },
        "too long",
      ],
    ])("refuses to pack %s", (_what, bad, message) => {
      expect(() => packQueue([bad])).toThrow(message);
    });

    it.each([
      ["not binary", "act-q"],
      ["empty", new Uint8Array()],
      // A text queue ("a", offset 0, limit 1) in every byte but the format's: a later release's.
      ["an unknown format", Uint8Array.from([3, 1, 97, 0, 0, 0, 0, 1])],
      ["a format byte alone", Uint8Array.from([1])],
      // Written out, not packed here: a table built when the file loads would hide a packQueue
      // that throws (the file fails to load, and Stryker counts a file that ran no test as passing).
      ["a truncated entry", Uint8Array.from([1, ...Array<number>(16).fill(0xab), 0, 0, 0, 0])],
      ["a text id of length 0", Uint8Array.from([2, 0, 0, 0, 0, 0, 1])],
      ["a limit of 0", Uint8Array.from([2, 1, 97, 0, 0, 0, 0, 0])],
    ])("reads %s as no queue", (_what, value) => {
      expect(unpackQueue(value, NOW)).toBeUndefined();
    });

    it("reads an unreadable packed queue on a row as none, and refuses a reservation that counted into it", async () => {
      const pool = longestPoolName();
      const [current, standby] = [activation(NOW + DAY, 1), activation(NOW + DAY, 1)];
      await aws.dynamodb.send(
        new PutItemCommand({
          TableName: tableName,
          Item: marshall({
            ...legacyRow(pool, 2, { current, standby, queue: [], issued: 2 }),
            q: Uint8Array.from([9]),
            qEnd: 5,
            qExpiresAt: NOW + DAY,
            qGeneration: 2,
          }),
        }),
      );
      const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
      expect((await store.read(pool))?.links.slice(2)).toEqual([]);
      await expect(store.reserve(pool, NOW)).rejects.toThrow(
        "Pool row's activations are unreadable after a successful reservation.",
      );
    });
  });
});

function leaseAt(generation: number) {
  return {
    owner: "o",
    generation,
    now: NOW,
    deadline: NOW + 30_000,
    budget: { max: 100, windowMs: DAY, windowStart: undefined },
  };
}

/** A pool row as release 6698160 wrote it: the queue as a list of maps beside a list of its ids. */
function legacyRow(
  pool: string,
  generation: number,
  chain: { current: NewActivation; standby: NewActivation; queue: NewActivation[]; issued: number },
): Record<string, unknown> {
  const { current, standby, queue, issued } = chain;
  const all = [current, standby, ...queue];
  return {
    pk: poolKey(pool),
    pool,
    generation,
    activationId: current.activationId,
    expiresAt: current.expiresAt,
    limit: current.limit,
    issued,
    standbyId: standby.activationId,
    standbyExpiresAt: standby.expiresAt,
    standbyLimit: standby.limit,
    standbyEnd: current.limit + standby.limit,
    standbyDepth: all.length - 1,
    refilledAt: NOW,
    ...(queue.length > 0 && {
      queue: queue.map(({ activationId, expiresAt, limit }) => ({ activationId, expiresAt, limit })),
      queueIds: queue.map((a) => a.activationId),
      queueEnd: all.reduce((sum, a) => sum + a.limit, 0),
      queueExpiresAt: Math.min(...queue.map((a) => a.expiresAt)),
      queueGeneration: generation,
    }),
  };
}
