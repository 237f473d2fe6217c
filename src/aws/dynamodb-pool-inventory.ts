import { type DynamoDBClient, paginateScan, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { PoolInventory, PoolRow } from "../core/inventory";
import {
  type Item,
  packedQueueSize,
  QUEUE_ATTRIBUTES,
  readString,
  STANDBY_ATTRIBUTES,
  toPoolState,
} from "./dynamodb-pool-store";
import { queuedOf } from "../core/vend-policy";
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
  "#q": "q",
  "#qEnd": "qEnd",
  "#qExpiresAt": "qExpiresAt",
  "#qGeneration": "qGeneration",
  "#pool": "pool",
  "#generation": "generation",
} as const;

/** Tries at retiring from the packed queue before the row is taken to have moved on without it. */
const PACKED_RETIRE_ATTEMPTS = 3;

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
   * A condition cannot look inside the packed queue (one Binary value), so for an activation
   * queued there the row is first fetched by a write that changes nothing (the operations' role
   * may write and scan, not get), and the last two cases are pinned to the queue it returned.
   * The queue in the previous layout (a row the previous release wrote) is matched by its ids.
   */
  async retire(pool: string, activationId: string, options: { revoked?: boolean } = {}): Promise<boolean> {
    const queued =
      "contains(#queueIds, :id) AND #queueGeneration = #generation AND NOT #qGeneration = #generation";
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
    return this.retirePacked(pool, activationId, options.revoked === true);
  }

  /** The last two cases for an activation in the packed queue (see retire). */
  private async retirePacked(pool: string, activationId: string, revoked: boolean): Promise<boolean> {
    // Bounded: each failed attempt means a refill or a reservation changed the row meanwhile.
    for (let attempt = 0; attempt < PACKED_RETIRE_ATTEMPTS; attempt++) {
      const item = await this.conditionalUpdate(
        pool,
        activationId,
        // Changes nothing when the condition holds; if_not_exists keeps a row without a packed
        // queue from failing validation rather than the condition.
        "SET #qGeneration = if_not_exists(#qGeneration, :none)",
        "#qGeneration = #generation",
        // The write succeeds only where qGeneration = generation, so if_not_exists keeps the stored
        // value and `:none` is never written: any number other than a generation does.
        // Stryker disable next-line UnaryOperator: equivalent (see above)
        { ":none": -1 },
        "ALL_NEW",
      );
      const state = item && toPoolState(item);
      const queued = queuedOf(state);
      if (!state || !queued.some((q) => q.activationId === activationId)) return false;
      const pinned = "#qGeneration = #generation AND #generation = :gen AND size(#q) = :size";
      const values = {
        ":gen": state.generation,
        ":size": packedQueueSize(queued.map((q) => q.activationId)),
      };
      const mark = revoked ? "SET #revoked = :id " : "";
      const cases = [
        { update: `${mark}REMOVE ${QUEUE_ATTRIBUTES}`, condition: `${pinned} AND #issued <= #standbyEnd` },
        {
          update: `SET #issued = #qEnd${revoked ? ", #revoked = :id" : ""}`,
          condition: `${pinned} AND #issued > #standbyEnd`,
        },
      ];
      for (const { update, condition } of cases) {
        if (await this.conditionalUpdate(pool, activationId, update, condition, values)) return true;
      }
    }
    return false;
  }

  /** The item after the write ({} unless asked for), or undefined when the condition failed. */
  private async conditionalUpdate(
    pool: string,
    activationId: string,
    update: string,
    condition: string,
    values: Record<string, unknown> = {},
    returnValues: "NONE" | "ALL_NEW" = "NONE",
  ): Promise<Item | undefined> {
    const used = new Set([...`${update} ${condition}`.matchAll(/#\w+/g)].map((m) => m[0]));
    const usedValues = new Set([...`${update} ${condition}`.matchAll(/:\w+/g)].map((m) => m[0]));
    const given = Object.entries({ ":id": activationId, ...values }).filter(([v]) => usedValues.has(v));
    try {
      const { Attributes } = await sendToDynamoDb(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: { [POOL_KEY_ATTRIBUTE]: { S: poolKey(pool) } },
            UpdateExpression: update,
            ConditionExpression: condition,
            ExpressionAttributeNames: Object.fromEntries(
              Object.entries(NAMES).filter(([placeholder]) => used.has(placeholder)),
            ),
            // DynamoDB refuses a value the expressions do not use; every expression here uses one.
            ExpressionAttributeValues: marshall(Object.fromEntries(given)),
            ReturnValues: returnValues,
          }),
        ),
      );
      return Attributes ?? {};
    } catch (error) {
      if (isSdkError(error, "ConditionalCheckFailedException")) return undefined;
      throw error;
    }
  }
}
