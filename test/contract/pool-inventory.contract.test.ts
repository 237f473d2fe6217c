/**
 * The PoolInventory contract (src/core/inventory.ts): the fake and the DynamoDB adapter list the
 * same rows and retire the same way. Retire's condition has a passing and a failing case.
 */
import { PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbPoolInventory } from "../../src/aws/dynamodb-pool-inventory";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { poolKey } from "../../src/aws/naming";
import type { PoolInventory } from "../../src/core/inventory";
import type { PoolStateStore } from "../../src/core/ports";
import { currentOf, type Link, linksOf, queuedOf } from "../../src/core/vend-policy";
import { recordingSends, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { InMemoryPoolStore } from "../support/fakes";

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const DAY = 86_400_000;

/** The activations a row keeps after its standby: the queue (none without a row). */

interface Fixture {
  store: PoolStateStore;
  inventory: PoolInventory;
  /** Writes a row that is not a pool row, where the store supports it. */
  putForeignItem?: () => Promise<void>;
  cleanup?: () => Promise<void>;
}

function poolInventoryContract(make: () => Promise<Fixture>): void {
  let f: Fixture;
  const run = Math.random().toString(36).slice(2, 8);
  let counter = 0;
  const newPool = () => `i${run}-${++counter}`;

  beforeAll(async () => {
    f = await make();
  });
  afterAll(async () => {
    await f?.cleanup?.();
  });

  /** The rotation lease on `pool` at `generation`, as a rotation takes it. */
  const lease = async (pool: string, owner: string, generation: number) =>
    f.store.acquireLease(pool, {
      budget: {
        max: 1_000_000,
        windowMs: 3_600_000,
        windowStart: (await f.store.read(pool))?.rotationWindowStart,
      },
      owner,
      generation,
      now: NOW,
      deadline: NOW + 30_000,
    });

  async function rotated(limit = 10): Promise<string> {
    const pool = newPool();
    await lease(pool, "o", 0);
    await f.store.commitRotation(pool, {
      owner: "o",
      generation: 0,
      activation: { activationId: `act-${pool}`, expiresAt: NOW + DAY, limit },
    });
    return pool;
  }

  /** A rotated pool with an unused standby `act-<pool>-standby` beside its current activation. */
  async function withStandby(queued: string[] = []): Promise<string> {
    const pool = await rotated();
    await lease(pool, "f", 1);
    const standby = { activationId: `act-${pool}-standby`, expiresAt: NOW + 2 * DAY, limit: 3 };
    const queue = queued.map((id) => ({
      activationId: `act-${pool}-${id}`,
      expiresAt: NOW + 3 * DAY,
      limit: 2,
    }));
    const [current] = linksOf(await f.store.read(pool));
    const committed = await f.store.commitRefill(pool, {
      owner: "f",
      generation: 1,
      seen: [`act-${pool}`],
      dropped: 0,
      shift: 0,
      chain: [current as Link, standby, ...queue],
      depth: 1 + queue.length,
      now: NOW,
    });
    expect(committed).toBe(true);
    return pool;
  }

  /** Every slot the pool still hands out, as `activation#slot`. */
  async function drain(pool: string): Promise<string[]> {
    const taken: string[] = [];
    for (let r = await f.store.reserve(pool, NOW); r; r = await f.store.reserve(pool, NOW)) {
      taken.push(`${r.activationId.replace(`act-${pool}`, "")}#${r.slot}`);
    }
    return taken;
  }

  it("lists every pool row as read() sees it", async () => {
    const a = await rotated();
    const b = newPool();
    await lease(b, "x", 0);
    await f.putForeignItem?.();
    const listed = await f.inventory.list();
    const ours = listed.filter((r) => r.pool === a || r.pool === b);
    expect(ours).toHaveLength(2);
    // Strictly: the keys read() gives and no others (none present without a value).
    for (const pool of [a, b]) {
      expect(ours.find((r) => r.pool === pool)).toStrictEqual(await f.store.read(pool));
    }
    expect(listed.map((r) => r.pool)).not.toContain("impostor");
  });

  it("retires the current activation: every later reserve fails, so the next vend rotates", async () => {
    const pool = await rotated(10);
    expect(await f.store.reserve(pool, NOW)).toBeDefined();
    expect(await f.inventory.retire(pool, `act-${pool}`)).toBe(true);
    expect(await f.store.reserve(pool, NOW)).toBeUndefined();
    const row = (await f.inventory.list()).find((r) => r.pool === pool);
    expect(currentOf(row)).toMatchObject({ issued: 10, limit: 10, activationId: `act-${pool}` });
    expect(row?.revokedActivationId).toBeUndefined();
  });

  it("marks a revoked activation so the janitor can tell it from a spent one", async () => {
    const pool = await rotated();
    expect(await f.inventory.retire(pool, `act-${pool}`, { revoked: true })).toBe(true);
    const row = (await f.inventory.list()).find((r) => r.pool === pool);
    expect(row?.revokedActivationId).toBe(`act-${pool}`);
  });

  it("revokes an unused standby by dropping it, and marks it revoked", async () => {
    const pool = await withStandby();
    expect(await f.inventory.retire(pool, `act-${pool}-standby`, { revoked: true })).toBe(true);
    const row = (await f.inventory.list()).find((r) => r.pool === pool);
    expect(row?.links[1]).toBeUndefined();
    expect(row?.revokedActivationId).toBe(`act-${pool}-standby`);
    expect(await f.store.reserve(pool, NOW)).toMatchObject({ activationId: `act-${pool}`, slot: 2 });
  });

  it("retires a standby in use: its slots are taken, the queue's are not", async () => {
    const pool = await withStandby(["q1"]);
    await f.inventory.retire(pool, `act-${pool}`); // the current one exhausted
    expect(await f.store.reserve(pool, NOW)).toMatchObject({ activationId: `act-${pool}-standby`, slot: 1 });
    expect(await f.inventory.retire(pool, `act-${pool}-standby`)).toBe(true);
    expect(await drain(pool)).toEqual(["-q1#1", "-q1#2"]);
    // Retiring it again once it is exhausted changes nothing and still answers true.
    expect(await f.inventory.retire(pool, `act-${pool}-standby`)).toBe(true);
  });

  it("revokes a queued activation nobody used by dropping the queue, and marks it revoked (I8)", async () => {
    const pool = await withStandby(["q1", "q2"]);
    expect(await f.inventory.retire(pool, `act-${pool}-q2`, { revoked: true })).toBe(true);
    const row = (await f.inventory.list()).find((r) => r.pool === pool);
    expect(queuedOf(row)).toEqual([]);
    expect(row?.revokedActivationId).toBe(`act-${pool}-q2`);
    await f.inventory.retire(pool, `act-${pool}`);
    expect(await drain(pool)).toEqual(["-standby#1", "-standby#2", "-standby#3"]);
  });

  it("revokes a queued activation once the queue is in use by taking all the queue's slots (I8)", async () => {
    const pool = await withStandby(["q1", "q2"]);
    await f.inventory.retire(pool, `act-${pool}`);
    for (let i = 0; i < 4; i++) await f.store.reserve(pool, NOW); // standby 1-3, q1 slot 1
    expect(await f.inventory.retire(pool, `act-${pool}-q2`, { revoked: true })).toBe(true);
    expect(await drain(pool)).toEqual([]);
    const row = (await f.inventory.list()).find((r) => r.pool === pool);
    expect(queuedOf(row)).toEqual([
      { activationId: `act-${pool}-q1`, expiresAt: NOW + 3 * DAY, limit: 2, issued: 2 },
      { activationId: `act-${pool}-q2`, expiresAt: NOW + 3 * DAY, limit: 2, issued: 2 },
    ]);
    expect(row?.revokedActivationId).toBe(`act-${pool}-q2`);
  });

  it("retires a queued activation without marking it revoked: unused, the queue goes; in use, its slots", async () => {
    const unused = await withStandby(["q1", "q2"]);
    expect(await f.inventory.retire(unused, `act-${unused}-q2`)).toBe(true);
    const dropped = (await f.inventory.list()).find((r) => r.pool === unused);
    expect(queuedOf(dropped)).toEqual([]);
    expect(dropped?.revokedActivationId).toBeUndefined();

    const inUse = await withStandby(["q1", "q2"]);
    await f.inventory.retire(inUse, `act-${inUse}`);
    for (let i = 0; i < 4; i++) await f.store.reserve(inUse, NOW); // standby 1-3, q1 slot 1
    expect(await f.inventory.retire(inUse, `act-${inUse}-q1`)).toBe(true);
    expect(await drain(inUse)).toEqual([]);
    const spent = (await f.inventory.list()).find((r) => r.pool === inUse);
    expect(queuedOf(spent).map((q) => q.issued)).toEqual([2, 2]);
    expect(spent?.revokedActivationId).toBeUndefined();
  });

  it("refuses to retire an activation the pool does not hold, and leaves its queue as it was", async () => {
    const pool = await withStandby(["q1", "q2"]);
    expect(await f.inventory.retire(pool, "act-someone-else", { revoked: true })).toBe(false);
    const row = (await f.inventory.list()).find((r) => r.pool === pool);
    expect(row?.revokedActivationId).toBeUndefined();
    await f.inventory.retire(pool, `act-${pool}`);
    expect(await drain(pool)).toEqual([
      "-standby#1",
      "-standby#2",
      "-standby#3",
      "-q1#1",
      "-q1#2",
      "-q2#1",
      "-q2#2",
    ]);
  });

  it("refuses to retire anything but the current activation (a late retire never hits the successor)", async () => {
    const pool = await rotated();
    expect(await f.inventory.retire(pool, "act-someone-else")).toBe(false);
    expect(await f.inventory.retire(newPool(), "act-nobody")).toBe(false);
    expect(await f.store.reserve(pool, NOW)).toBeDefined();
  });
}

describe("InMemoryPoolStore as PoolInventory", () => {
  poolInventoryContract(async () => {
    const store = new InMemoryPoolStore();
    return { store, inventory: store };
  });
});

describe("DynamoDbPoolInventory over the emulator", () => {
  poolInventoryContract(async () => {
    const aws = await startEmulatedAws();
    const tableName = await aws.newTable();
    return {
      store: new DynamoDbPoolStore(aws.dynamodb, tableName),
      inventory: new DynamoDbPoolInventory(aws.dynamodb, tableName),
      putForeignItem: async () => {
        await aws.dynamodb.send(
          new PutItemCommand({
            TableName: tableName,
            Item: { pk: { S: "OTHER#x" }, pool: { S: "impostor" } },
          }),
        );
      },
      cleanup: () => aws.close(),
    };
  });

  it("follows pagination past one Scan page and reports each page", async () => {
    const aws = await startEmulatedAws();
    try {
      const table = await aws.newTable();
      // DynamoDB pages at 1 MB: ~300 rows padded to 4 KB each span two pages.
      const padding = "x".repeat(4_000);
      await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          aws.dynamodb.send(
            new PutItemCommand({
              TableName: table,
              Item: { pk: { S: poolKey(`bulk${i}`) }, generation: { N: "0" }, padding: { S: padding } },
            }),
          ),
        ),
      );
      const progress: [string, number, number][] = [];
      const rows = await new DynamoDbPoolInventory(aws.dynamodb, table, (...report) =>
        progress.push(report),
      ).list();
      expect(rows).toHaveLength(300);
      expect(progress.length).toBeGreaterThan(1);
      // One report per page: the operation, the page number from 1, and the rows so far.
      expect(progress.map(([operation]) => operation)).toEqual(progress.map(() => "Scan"));
      expect(progress.map(([, page]) => page)).toEqual(progress.map((_, i) => i + 1));
      expect(progress.at(-1)?.[2]).toBe(300);
    } finally {
      await aws.close();
    }
  });
});

describe("DynamoDbPoolInventory, what it sends", () => {
  let aws: EmulatedAws;
  let tableName: string;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    tableName = await aws.newTable();
  });
  afterAll(async () => {
    await aws?.close();
  });

  it("scans with consistent reads, so a retire or revoke just written is listed", async () => {
    // dynalite's reads are always consistent: only the request shows what DynamoDB would be asked.
    const { client, sent } = recordingSends(aws.dynamodb);
    await new DynamoDbPoolInventory(client, tableName).list();
    expect(sent).toEqual([
      {
        command: "ScanCommand",
        input: expect.objectContaining({ TableName: tableName, ConsistentRead: true }),
      },
    ]);
  });

  it("gives up on a queued activation after three tries while refills keep moving the row on", async () => {
    // The packed queue is found by a write that returns the row; after each such read, a refill
    // that drops an activation commits first (the generation moves on, the queue with it).
    const client = aws.dynamodb;
    let reads = 0;
    const racing = Object.create(client) as typeof client;
    Object.assign(racing, {
      send: async (command: UpdateItemCommand) => {
        const output = (await client.send(command)) as { Attributes?: unknown };
        if (output.Attributes !== undefined) {
          reads++;
          await aws.dynamodb.send(
            new UpdateItemCommand({
              TableName: tableName,
              Key: command.input.Key,
              UpdateExpression: "SET #g = #g + :one, #qg = #qg + :one",
              ExpressionAttributeNames: { "#g": "generation", "#qg": "qGeneration" },
              ExpressionAttributeValues: { ":one": { N: "1" } },
            }),
          );
        }
        return output;
      },
    });
    const store = new DynamoDbPoolStore(aws.dynamodb, tableName);
    const pool = "racing-refills";
    const budget = { max: 10, windowMs: 3_600_000, windowStart: undefined };
    expect(
      await store.acquireLease(pool, { owner: "o", generation: 0, now: NOW, deadline: NOW + 1, budget }),
    ).toBe(true);
    const [current, standby, q1, q2] = ["", "-standby", "-q1", "-q2"].map((id) => ({
      activationId: `act${id}`,
      expiresAt: NOW + DAY,
      limit: 2,
    })) as [Link, Link, Link, Link];
    await store.commitRotation(pool, {
      owner: "o",
      generation: 0,
      activation: current,
      standbys: [standby, q1, q2],
    });

    expect(await new DynamoDbPoolInventory(racing, tableName).retire(pool, "act-q2")).toBe(false);
    expect(reads).toBe(3);
    // Nothing was retired: the queue is still there, every slot in it.
    expect(queuedOf(await store.read(pool)).map((q) => [q.activationId, q.issued])).toEqual([
      ["act-q1", 0],
      ["act-q2", 0],
    ]);
  });

  it("rethrows a failure other than a refused condition (a missing table is not 'nothing to retire')", async () => {
    const missing = new DynamoDbPoolInventory(aws.dynamodb, "no-such-table");
    await expect(missing.retire("web", "act-1")).rejects.toMatchObject({ name: "ResourceNotFoundException" });
  });
});
