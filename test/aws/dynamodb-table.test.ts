import { randomUUID } from "node:crypto";
import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/core/errors";
import { checkPoolTable, ensurePoolTable } from "../../src/aws/dynamodb-table";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

const newName = () => `pools-${randomUUID().slice(0, 8)}`;

/**
 * A table that stays CREATING for `creatingPolls` DescribeTable calls (dynalite makes tables
 * ACTIVE at once), on a clock that moves 50 ms per call. It refuses to be polled past 10 calls,
 * so a waiter that never gives up fails instead of hanging.
 */
function slowTable(creatingPolls: number): { client: DynamoDBClient; polls: () => number } {
  let now = 1_000_000;
  let polls = 0;
  vi.spyOn(Date, "now").mockImplementation(() => now);
  const client = {
    send: async (command: object) => {
      if (!(command instanceof DescribeTableCommand)) throw new Error("only DescribeTable expected");
      if (++polls > 10) throw new Error("still polling after 10 DescribeTable calls");
      now += 50;
      return { Table: { TableStatus: polls > creatingPolls ? "ACTIVE" : "CREATING" } };
    },
  } as unknown as DynamoDBClient;
  return { client, polls: () => polls };
}

/**
 * The real client, except that the first two DescribeTable answers are handed back only once both
 * have arrived: two callers that start together both see no table, however the calls interleave.
 */
function bothSeeNoTable(real: DynamoDBClient): DynamoDBClient {
  let release = () => {};
  const bothAnswered = new Promise<void>((resolve) => (release = resolve));
  let described = 0;
  const send = real.send.bind(real) as (command: object) => Promise<unknown>;
  return Object.assign(Object.create(real) as DynamoDBClient, {
    send: async (command: object) => {
      const answer = await send(command).then(
        (output) => ({ output }),
        (error: unknown) => ({ error }),
      );
      if (command instanceof DescribeTableCommand && ++described <= 2) {
        if (described === 2) release();
        await bothAnswered;
      }
      if ("error" in answer) throw answer.error;
      return answer.output;
    },
  });
}

describe("pool table helpers", () => {
  let aws: EmulatedAws;

  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });
  afterEach(() => {
    aws.emulator.controls.clearFaults();
    vi.restoreAllMocks();
  });

  describe("ensurePoolTable", () => {
    it("creates a missing table keyed by pk, billed per request, and returns once it is ACTIVE", async () => {
      const name = newName();
      await ensurePoolTable(aws.dynamodb, name);
      const { Table } = await aws.dynamodb.send(new DescribeTableCommand({ TableName: name }));
      expect(Table).toMatchObject({
        TableStatus: "ACTIVE",
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" },
      });
    });

    it("lets two processes create the same table at once: the one that loses the race waits too", async () => {
      const name = newName();
      aws.emulator.controls.resetCounters();
      const client = bothSeeNoTable(aws.dynamodb);
      await Promise.all([ensurePoolTable(client, name), ensurePoolTable(client, name)]);
      // Both saw no table and both asked for it: one of them got ResourceInUseException.
      expect(aws.emulator.controls.counters()["dynamodb:CreateTable"]).toBe(2);
    });

    it("rethrows any other CreateTable failure", async () => {
      aws.emulator.controls.injectFault({ service: "dynamodb", operation: "CreateTable", kind: "error" });
      const { dynamodb } = aws.clients({ maxAttempts: 1 });
      await expect(ensurePoolTable(dynamodb, newName(), { timeoutMs: 1_000 })).rejects.toMatchObject({
        name: "InternalServerError",
      });
    });

    it("polls a CREATING table until it is ACTIVE", async () => {
      const table = slowTable(3);
      await ensurePoolTable(table.client, "pools", { timeoutMs: 1_000 });
      expect(table.polls()).toBe(4);
    });

    it("gives up once timeoutMs has passed, naming the table", async () => {
      const table = slowTable(Infinity);
      // Polls at +50 (the first look), +100, +150 and +200 ms: the last one reaches the deadline.
      await expect(ensurePoolTable(table.client, "pools", { timeoutMs: 200 })).rejects.toThrow(
        "Table pools did not become ACTIVE in time.",
      );
      expect(table.polls()).toBe(4);
    });
  });

  describe("checkPoolTable", () => {
    it("accepts an existing table", async () => {
      const name = await aws.newTable();
      await expect(checkPoolTable(aws.dynamodb, name, aws.region)).resolves.toBeUndefined();
    });

    it("refuses a missing table, naming it, the Region and the settings that point at it", async () => {
      const error = await checkPoolTable(aws.dynamodb, "no-such-table", "eu-west-3").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toBe(
        "DynamoDB table 'no-such-table' does not exist in eu-west-3: " +
          "set BROKER_TABLE_NAME and AWS_REGION to the deployed table's",
      );
    });

    it("rethrows a failing DescribeTable rather than reporting the table missing", async () => {
      const name = await aws.newTable();
      aws.emulator.controls.injectFault({ service: "dynamodb", operation: "DescribeTable", kind: "error" });
      const { dynamodb } = aws.clients({ maxAttempts: 1 });
      await expect(checkPoolTable(dynamodb, name, aws.region)).rejects.toMatchObject({
        name: "InternalServerError",
      });
    });
  });
});
