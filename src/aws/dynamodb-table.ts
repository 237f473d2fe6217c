import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ConfigError } from "../core/errors";
import { isSdkError } from "./sdk-errors";
import { POOL_KEY_ATTRIBUTE } from "./naming";

const POLL_MS = 100;

/**
 * Creates the pool table if it is missing and waits until it is ACTIVE. Local mode and tests only:
 * in AWS the CDK app owns the table (with PITR, encryption and deletion protection), and the
 * broker's role may not even hold dynamodb:CreateTable.
 */
export async function ensurePoolTable(
  client: DynamoDBClient,
  tableName: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const giveUpAt = Date.now() + (options.timeoutMs ?? 30_000);
  if ((await tableStatus(client, tableName)) === undefined) {
    try {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [{ AttributeName: POOL_KEY_ATTRIBUTE, AttributeType: "S" }],
          KeySchema: [{ AttributeName: POOL_KEY_ATTRIBUTE, KeyType: "HASH" }],
        }),
      );
    } catch (error) {
      // Another process (a second replica, a parallel test file) created it first: same outcome.
      if (!isSdkError(error, "ResourceInUseException")) throw error;
    }
  }
  // A hand-rolled poll rather than waitUntilTableExists: its 20 s minimum delay would dominate
  // every test run, and the emulator makes tables ACTIVE within a second.
  for (;;) {
    if ((await tableStatus(client, tableName)) === "ACTIVE") return;
    if (Date.now() >= giveUpAt) throw new Error(`Table ${tableName} did not become ACTIVE in time.`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * One DescribeTable at start-up (standalone mode): a broker pointed at a table that does not
 * exist refuses to start, naming the table and Region, instead of answering 500 per request.
 */
export async function checkPoolTable(
  client: DynamoDBClient,
  tableName: string,
  region: string,
): Promise<void> {
  if ((await tableStatus(client, tableName)) === undefined) {
    throw new ConfigError(
      `DynamoDB table '${tableName}' does not exist in ${region}: set BROKER_TABLE_NAME and AWS_REGION to the deployed table's`,
    );
  }
}

async function tableStatus(client: DynamoDBClient, tableName: string): Promise<string | undefined> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    // Stryker disable next-line StringLiteral: callers only tell undefined and "ACTIVE" from the rest
    return Table?.TableStatus ?? "UNKNOWN";
  } catch (error) {
    if (isSdkError(error, "ResourceNotFoundException")) return undefined;
    throw error;
  }
}
