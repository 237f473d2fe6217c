/**
 * The emulated store's own ceiling: how many conditional UpdateItem calls per second one hot item
 * takes at a given concurrency, through the same SDK client settings the broker uses. A vend
 * costs one such write in steady state, so this bounds the broker's vends per second on this
 * machine; the benchmark prints both side by side.
 */
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { createAwsClients } from "../src/aws/clients";
import { ensurePoolTable } from "../src/aws/dynamodb-table";
import { POOL_KEY_ATTRIBUTE } from "../src/aws/naming";

export async function measureStoreCeiling(options: {
  emulatorUrl: string;
  region: string;
  concurrency: number;
  durationMs: number;
}): Promise<{ writesPerSecond: number; writes: number; concurrency: number }> {
  const { dynamodb } = createAwsClients({
    region: options.region,
    endpoint: options.emulatorUrl,
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
    timeouts: { connectionMs: 10_000, requestMs: 20_000 },
  });
  const tableName = "bench-store-ceiling";
  try {
    await ensurePoolTable(dynamodb, tableName);
    const write = () =>
      dynamodb.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { [POOL_KEY_ATTRIBUTE]: { S: "HOT" } },
          UpdateExpression: "SET #n = if_not_exists(#n, :zero) + :one",
          ConditionExpression: "attribute_not_exists(#n) OR #n < :max",
          ExpressionAttributeNames: { "#n": "issued" },
          ExpressionAttributeValues: { ":zero": { N: "0" }, ":one": { N: "1" }, ":max": { N: "1000000000" } },
          ReturnValues: "ALL_NEW",
        }),
      );
    await write(); // warm the connection and the item
    let writes = 0;
    const started = performance.now();
    const stopAt = started + options.durationMs;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (performance.now() < stopAt) {
          await write();
          writes++;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return { writesPerSecond: Math.round(writes / seconds), writes, concurrency: options.concurrency };
  } finally {
    dynamodb.destroy();
  }
}
