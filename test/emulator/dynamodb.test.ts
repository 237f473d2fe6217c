import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ListTablesCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

let aws: EmulatedAws;

let emulator: Emulator;
let dynamodb: DynamoDBClient;

beforeAll(async () => {
  aws = await startEmulatedAws();
  emulator = aws.emulator;
  dynamodb = aws.rawDynamoDb();
});
afterAll(async () => {
  dynamodb.destroy();
  await aws?.close();
});

describe("DynamoDB through the emulator's single endpoint", () => {
  it("CreateTable is ACTIVE at once; conditional UpdateItem and Scan behave like DynamoDB", async () => {
    const created = await dynamodb.send(
      new CreateTableCommand({
        TableName: "pools",
        AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
    expect(created.TableDescription?.TableName).toBe("pools");
    expect((await dynamodb.send(new DescribeTableCommand({ TableName: "pools" }))).Table?.TableStatus).toBe(
      "ACTIVE",
    );
    expect((await dynamodb.send(new ListTablesCommand({}))).TableNames).toContain("pools");

    await dynamodb.send(
      new PutItemCommand({
        TableName: "pools",
        Item: { pk: { S: "default" }, issued: { N: "0" }, limit: { N: "2" } },
      }),
    );
    const reserve = () =>
      dynamodb.send(
        new UpdateItemCommand({
          TableName: "pools",
          Key: { pk: { S: "default" } },
          UpdateExpression: "SET issued = issued + :one",
          ConditionExpression: "issued < #limit",
          ExpressionAttributeNames: { "#limit": "limit" },
          ExpressionAttributeValues: { ":one": { N: "1" } },
          ReturnValues: "UPDATED_NEW",
        }),
      );
    expect((await reserve()).Attributes?.issued?.N).toBe("1");
    expect((await reserve()).Attributes?.issued?.N).toBe("2");
    await expect(reserve()).rejects.toBeInstanceOf(ConditionalCheckFailedException);

    const scan = await dynamodb.send(new ScanCommand({ TableName: "pools" }));
    expect(scan.Items).toEqual([{ pk: { S: "default" }, issued: { N: "2" }, limit: { N: "2" } }]);
    expect(emulator.controls.counters()).toMatchObject({
      "dynamodb:UpdateItem": 3,
      "dynamodb:Scan": 1,
      "dynamodb:CreateTable": 1,
    });
  });

  it("controls.reset() leaves DynamoDB tables alone", async () => {
    emulator.controls.reset();
    expect((await dynamodb.send(new ListTablesCommand({}))).TableNames).toContain("pools");
    expect(emulator.controls.counters()).toEqual({ "dynamodb:ListTables": 1 });
  });
});
