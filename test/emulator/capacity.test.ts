/**
 * The emulated DynamoDB's bill and limits, held to DynamoDB's documentation (not to our code):
 * - item size = attribute names + values, strings in UTF-8 bytes
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html);
 * - a write costs 1 unit per started KB of the larger of the item before and after, a failed
 *   condition still costs the existing item's units; a read 1 unit per started 4 KB, half for an
 *   eventually consistent read
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html);
 * - a hot key answers ProvisionedThroughputExceededException, which the SDKs retry
 *   (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

let aws: EmulatedAws;
let emulator: Emulator;
let dynamodb: DynamoDBClient;
const TABLE = "capacity";

beforeAll(async () => {
  aws = await startEmulatedAws();
  emulator = aws.emulator;
  dynamodb = aws.rawDynamoDb();
  await dynamodb.send(
    new CreateTableCommand({
      TableName: TABLE,
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
});
afterAll(async () => {
  dynamodb.destroy();
  await aws?.close();
});
beforeEach(() => {
  emulator.controls.setLimits({});
  emulator.controls.resetCounters();
});

/**
 * An item of exactly `bytes` bytes: "pk" (2) + its value, "d" (1) + a string of the rest. With a
 * one-character key that is 2 + 1 + 1 + len(d).
 */
function itemOf(pk: string, bytes: number) {
  const fixed = 2 + Buffer.byteLength(pk) + 1;
  return { pk: { S: pk }, d: { S: "x".repeat(bytes - fixed) } };
}

const put = (pk: string, bytes: number) =>
  dynamodb.send(
    new PutItemCommand({ TableName: TABLE, Item: itemOf(pk, bytes), ReturnConsumedCapacity: "TOTAL" }),
  );

const get = (pk: string, consistent: boolean) =>
  dynamodb.send(
    new GetItemCommand({
      TableName: TABLE,
      Key: { pk: { S: pk } },
      ConsistentRead: consistent,
      ReturnConsumedCapacity: "TOTAL",
    }),
  );

const usage = (operation: string) => emulator.controls.usage().dynamodb.tables[TABLE]?.[operation];

describe("write units (1 KB per unit, the larger of before and after)", () => {
  it("an item of exactly 1,024 bytes is 1 unit; 1,025 bytes is 2", async () => {
    expect((await put("a", 1024)).ConsumedCapacity).toEqual({ TableName: TABLE, CapacityUnits: 1 });
    await dynamodb.send(new DeleteItemCommand({ TableName: TABLE, Key: { pk: { S: "a" } } }));
    expect((await put("a", 1025)).ConsumedCapacity?.CapacityUnits).toBe(2);
  });

  it("strings count in UTF-8 bytes: 1,022 characters of which one is 'é' make 1,025 bytes", async () => {
    const item = itemOf("u", 1024);
    item.d.S = "é" + item.d.S.slice(1); // one character, two bytes: 1,025 bytes in all
    const answer = await dynamodb.send(
      new PutItemCommand({ TableName: TABLE, Item: item, ReturnConsumedCapacity: "TOTAL" }),
    );
    expect(answer.ConsumedCapacity?.CapacityUnits).toBe(2);
  });

  it("UpdateItem shrinking a 2,500-byte item to 10 bytes is charged on the larger: 3 units", async () => {
    await put("b", 2500);
    const answer = await dynamodb.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { pk: { S: "b" } },
        UpdateExpression: "REMOVE d",
        ReturnConsumedCapacity: "TOTAL",
      }),
    );
    expect(answer.ConsumedCapacity?.CapacityUnits).toBe(3);
  });

  it("DeleteItem is charged on the deleted item's size; deleting nothing costs 1", async () => {
    await put("c", 3000);
    const deleted = await dynamodb.send(
      new DeleteItemCommand({ TableName: TABLE, Key: { pk: { S: "c" } }, ReturnConsumedCapacity: "TOTAL" }),
    );
    expect(deleted.ConsumedCapacity?.CapacityUnits).toBe(3);
    const nothing = await dynamodb.send(
      new DeleteItemCommand({ TableName: TABLE, Key: { pk: { S: "c" } }, ReturnConsumedCapacity: "TOTAL" }),
    );
    expect(nothing.ConsumedCapacity?.CapacityUnits).toBe(1);
  });

  it("a failed conditional write still consumes the existing item's units (2,000 bytes: 2)", async () => {
    await put("d", 2000);
    emulator.controls.resetCounters();
    await expect(
      dynamodb.send(
        new UpdateItemCommand({
          TableName: TABLE,
          Key: { pk: { S: "d" } },
          UpdateExpression: "SET n = :one",
          ConditionExpression: "attribute_not_exists(pk)",
          ExpressionAttributeValues: { ":one": { N: "1" } },
          ReturnConsumedCapacity: "TOTAL",
        }),
      ),
    ).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect(usage("UpdateItem")).toEqual({ requests: 1, readUnits: 0, writeUnits: 2 });
  });
});

describe("read units (4 KB per unit, half for an eventually consistent read)", () => {
  it("an item of exactly 4,096 bytes: 1 unit consistent, 0.5 eventually consistent", async () => {
    await put("r", 4096);
    expect((await get("r", true)).ConsumedCapacity?.CapacityUnits).toBe(1);
    expect((await get("r", false)).ConsumedCapacity?.CapacityUnits).toBe(0.5);
  });

  it("an item of 4,097 bytes: 2 units consistent, 1 eventually consistent", async () => {
    await put("s", 4097);
    expect((await get("s", true)).ConsumedCapacity?.CapacityUnits).toBe(2);
    expect((await get("s", false)).ConsumedCapacity?.CapacityUnits).toBe(1);
  });

  it("a projection saves nothing: units follow the whole item's size", async () => {
    await put("proj", 4097);
    const answer = await dynamodb.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { pk: { S: "proj" } },
        ProjectionExpression: "pk",
        ConsistentRead: true,
        ReturnConsumedCapacity: "TOTAL",
      }),
    );
    expect(answer.Item).toEqual({ pk: { S: "proj" } });
    expect(answer.ConsumedCapacity?.CapacityUnits).toBe(2);
  });

  it("reading an item that does not exist still costs the minimum", async () => {
    expect((await get("nothing-here", false)).ConsumedCapacity?.CapacityUnits).toBe(0.5);
    expect((await get("nothing-here", true)).ConsumedCapacity?.CapacityUnits).toBe(1);
  });
});

describe("accounting", () => {
  it("is kept whether or not the caller asks, and the caller gets ConsumedCapacity only if it asks", async () => {
    const answer = await dynamodb.send(new PutItemCommand({ TableName: TABLE, Item: itemOf("q", 1500) }));
    expect(answer.ConsumedCapacity).toBeUndefined();
    const read = await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: "q" } } }));
    expect(read.ConsumedCapacity).toBeUndefined();
    const scan = await dynamodb.send(new ScanCommand({ TableName: TABLE }));
    expect(scan.ConsumedCapacity).toBeUndefined();
    expect(usage("PutItem")).toEqual({ requests: 1, readUnits: 0, writeUnits: 2 });
    expect(usage("GetItem")).toEqual({ requests: 1, readUnits: 0.5, writeUnits: 0 });
    expect(usage("Scan")?.readUnits).toBeGreaterThan(0);
  });

  it("sits beside the call counters: the item's peak units per second and largest size, reset with them", async () => {
    await put("p", 1000);
    await put("p", 3000);
    const item = emulator.controls.usage().dynamodb.items.find((i) => i.key.pk?.S === "p");
    expect(item?.largestBytes).toBe(3000);
    expect(item?.peakWriteUnitsPerSecond).toBeGreaterThanOrEqual(1); // both writes may share a second
    expect(emulator.controls.counters()["dynamodb:PutItem"]).toBe(2);
    const overHttp = (await (await fetch(`${emulator.url}/_emulator/usage`)).json()) as {
      dynamodb: { tables: Record<string, Record<string, { writeUnits: number }>> };
    };
    expect(overHttp.dynamodb.tables[TABLE]?.PutItem?.writeUnits).toBe(4);
    await fetch(`${emulator.url}/_emulator/counters`, { method: "DELETE" });
    expect(emulator.controls.usage()).toEqual({ dynamodb: { tables: {}, items: [] }, throttled: {} });
  });
});

/** Waits for the start of a wall-clock second, so a short burst sits inside one second. */
async function startOfSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
}

describe("a hot item's write limit", () => {
  it("answers ProvisionedThroughputExceededException past the item's units for the second, and recovers the next second", async () => {
    await put("hot", 100);
    emulator.controls.setLimits({ dynamodbItemWriteUnitsPerSecond: 3 });
    emulator.controls.resetCounters();
    await startOfSecond();
    for (let i = 0; i < 3; i++) await put("hot", 100);
    const error = await put("hot", 100).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect((error as Error).message).toMatch(/check if you have a hot key/);
    // Another item is not throttled: the limit is per item.
    await expect(put("cold", 100)).resolves.toBeDefined();
    await startOfSecond();
    await expect(put("hot", 100)).resolves.toBeDefined();
    expect(emulator.controls.usage().throttled).toEqual({ "dynamodb:PutItem": 1 });
    // A throttled request is not billed: 4 writes of 1 unit to "hot" went through, 1 to "cold".
    expect(usage("PutItem")).toEqual({ requests: 5, readUnits: 0, writeUnits: 5 });
  });

  it("the SDK's own retries run until the next second lets the writes through", async () => {
    const retrying = aws.rawDynamoDb(10);
    await put("retried", 100);
    emulator.controls.setLimits({ dynamodbItemWriteUnitsPerSecond: 2 });
    emulator.controls.resetCounters();
    await startOfSecond();
    const writes = Array.from({ length: 4 }, () =>
      retrying.send(new PutItemCommand({ TableName: TABLE, Item: itemOf("retried", 100) })),
    );
    const answers = await Promise.all(writes);
    expect(answers.map((a) => a.$metadata.httpStatusCode)).toEqual([200, 200, 200, 200]);
    expect(emulator.controls.counters()["dynamodb:PutItem"]).toBeGreaterThan(4);
    expect(emulator.controls.usage().throttled["dynamodb:PutItem"]).toBeGreaterThan(0);
  }, 30_000);
});

describe("a store that serves one request at a time per item", () => {
  it("a request's latency grows with the requests queued on its item, not on other items", async () => {
    await put("serial", 100);
    emulator.controls.setLimits({ dynamodbItemServiceMs: 40 });
    const timed = async (pk: string) => {
      const t0 = performance.now();
      await get(pk, true);
      return performance.now() - t0;
    };
    const alone = await timed("serial");
    expect(alone).toBeGreaterThanOrEqual(39);
    const queued = await Promise.all(Array.from({ length: 10 }, () => timed("serial")));
    // Ten on one item: the last waits for the nine before it, 10 x 40 ms in all.
    expect(Math.max(...queued)).toBeGreaterThanOrEqual(390);
    const spread = await Promise.all(Array.from({ length: 10 }, (_, i) => timed(`other-${i}`)));
    expect(Math.max(...spread)).toBeLessThan(300);
  });
});
