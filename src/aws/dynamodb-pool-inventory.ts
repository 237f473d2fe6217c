import { type DynamoDBClient, paginateScan, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { PoolInventory, PoolRow } from "../core/inventory";
import { QUEUE_ATTRIBUTES, readString, STANDBY_ATTRIBUTES, toPoolState } from "./dynamodb-pool-store";
import { poolKey, POOL_KEY_ATTRIBUTE } from "./naming";
import { isSdkError, sendToDynamoDb } from "./sdk-errors";

const NAMES = {
  "#issued": "issued",
  "#limit": "limit",
  "#activationId": "activationId",
  "#revoked": "revokedActivationId",
  "#standbyId": "standbyId",
  "#standbyExpiresAt": "standbyExpiresAt",
  "#standbyLimit": "standbyLimit",
  "#standbyEnd": "standbyEnd",
  "#queue": "queue",
  "#queueIds": "queueIds",
  "#queueEnd": "queueEnd",
  "#queueExpiresAt": "queueExpiresAt",
  "#queueGeneration": "queueGeneration",
  "#generation": "generation",
} as const;

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
    let pages = 0;
    await sendToDynamoDb(async () => {
      const scan = paginateScan({ client: this.client }, { TableName: this.tableName, ConsistentRead: true });
      for await (const page of scan) {
        for (const item of page.Items ?? []) {
          const state = toPoolState(item);
          const revoked = readString(item, "revokedActivationId");
          if (state) rows.push({ ...state, ...(revoked !== undefined && { revokedActivationId: revoked }) });
        }
        this.onPage("Scan", ++pages, rows.length);
      }
    });
    return rows;
  }

  /**
   * `issued = limit` makes the reservation's `issued < limit` fail everywhere at once, exactly as
   * exhaustion does, so every replica's next vend moves on (to the standby, else a rotation);
   * guarded by `activationId = :id` so a retire that arrives after a rotation cannot retire the
   * successor. The standby and the queue (I9) share the counter: `issued` past `limit` counts
   * their slots, so each case is its own conditional write, tried in turn (an admin path, not
   * the request path); the counter never goes down, so no slot is handed out twice:
   *   current, standby not in use    SET issued = limit
   *   current, standby in use        nothing to do: the current one is already exhausted
   *   standby, not in use            REMOVE the standby and the queue (the next exhaustion refills)
   *   standby, in use                SET issued = standbyEnd (its slots are all taken)
   *   standby, exhausted             nothing to do
   *   queued, queue not in use       REMOVE the queue (its other activations are orphans)
   *   queued, queue in use           SET issued = queueEnd (the queue's slots are all taken)
   */
  async retire(pool: string, activationId: string, options: { revoked?: boolean } = {}): Promise<boolean> {
    const queued = "contains(#queueIds, :id) AND #queueGeneration = #generation";
    const cases: { update: string; condition: string }[] = [
      { update: "SET #issued = #limit", condition: "#activationId = :id AND #issued <= #limit" },
      { update: "SET #issued = #issued", condition: "#activationId = :id AND #issued > #limit" },
      {
        update: `REMOVE ${STANDBY_ATTRIBUTES}`,
        condition: "#standbyId = :id AND #issued <= #limit",
      },
      {
        update: "SET #issued = #standbyEnd",
        condition: "#standbyId = :id AND #issued > #limit AND #issued <= #standbyEnd",
      },
      { update: "SET #issued = #issued", condition: "#standbyId = :id AND #issued > #standbyEnd" },
      { update: `REMOVE ${QUEUE_ATTRIBUTES}`, condition: `${queued} AND #issued <= #standbyEnd` },
      { update: "SET #issued = #queueEnd", condition: `${queued} AND #issued > #standbyEnd` },
    ];
    for (const { update, condition } of cases) {
      const marked = options.revoked
        ? update.startsWith("SET")
          ? `${update}, #revoked = :id`
          : `SET #revoked = :id ${update}`
        : update;
      if (await this.conditionalUpdate(pool, activationId, marked, condition)) return true;
    }
    return false;
  }

  private async conditionalUpdate(
    pool: string,
    activationId: string,
    update: string,
    condition: string,
  ): Promise<boolean> {
    const used = new Set([...`${update} ${condition}`.matchAll(/#\w+/g)].map((m) => m[0]));
    try {
      await sendToDynamoDb(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: { [POOL_KEY_ATTRIBUTE]: { S: poolKey(pool) } },
            UpdateExpression: update,
            ConditionExpression: condition,
            ExpressionAttributeNames: Object.fromEntries(
              Object.entries(NAMES).filter(([placeholder]) => used.has(placeholder)),
            ),
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
