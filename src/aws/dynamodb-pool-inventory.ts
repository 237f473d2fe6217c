import { type DynamoDBClient, ScanCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { PoolInventory, PoolRow } from "../core/inventory";
import { type Item, readString, toPoolState } from "./dynamodb-pool-store";
import { poolKey, POOL_KEY_ATTRIBUTE } from "./naming";
import { isSdkError, sendToDynamoDb } from "./sdk-errors";

/** Called once per page read, so a long listing can show progress. */
export type PageProgress = (operation: string, page: number, itemsSoFar: number) => void;

/**
 * The operations' view of the pool table (Scan and the retire write). The request path's
 * DynamoDbPoolStore has neither, so the vend role needs no dynamodb:Scan.
 */
export class DynamoDbPoolInventory implements PoolInventory {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly onPage: PageProgress = () => {},
  ) {}

  async list(): Promise<PoolRow[]> {
    const rows: PoolRow[] = [];
    let startKey: Item | undefined;
    let pages = 0;
    do {
      const page = await sendToDynamoDb(() =>
        this.client.send(
          new ScanCommand({ TableName: this.tableName, ConsistentRead: true, ExclusiveStartKey: startKey }),
        ),
      );
      for (const item of page.Items ?? []) {
        const state = toPoolState(item);
        const revoked = readString(item, "revokedActivationId");
        if (state) rows.push({ ...state, ...(revoked !== undefined && { revokedActivationId: revoked }) });
      }
      startKey = page.LastEvaluatedKey;
      this.onPage("Scan", ++pages, rows.length);
    } while (startKey);
    return rows;
  }

  /**
   * `issued = limit` makes the reservation's `issued < limit` fail everywhere at once, exactly as
   * exhaustion does, so every replica's next vend rotates; guarded by `activationId = :id` so a
   * retire that arrives after a rotation cannot retire the successor.
   */
  async retire(pool: string, activationId: string, options: { revoked?: boolean } = {}): Promise<boolean> {
    try {
      await sendToDynamoDb(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: { [POOL_KEY_ATTRIBUTE]: { S: poolKey(pool) } },
            UpdateExpression: options.revoked
              ? "SET #issued = #limit, #revoked = :id"
              : "SET #issued = #limit",
            ConditionExpression: "#activationId = :id",
            ExpressionAttributeNames: {
              "#issued": "issued",
              "#limit": "limit",
              "#activationId": "activationId",
              ...(options.revoked && { "#revoked": "revokedActivationId" }),
            },
            ExpressionAttributeValues: { ":id": { S: activationId } },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isSdkError(error, "ConditionalCheckFailedException")) return false;
      throw error;
    }
  }
}
