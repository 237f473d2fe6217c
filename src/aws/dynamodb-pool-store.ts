import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { LeaseRequest, NewActivation, PoolState, PoolStateStore, Reservation } from "../core/ports";
import { reservationFrom } from "../core/vend-policy";
import { POOL_KEY_ATTRIBUTE, poolFromKey, poolKey } from "./naming";
import { isSdkError, sendToDynamoDb } from "./sdk-errors";

export type Item = Record<string, AttributeValue>;

/**
 * Every attribute goes through a placeholder: `limit` is a DynamoDB reserved word, and aliasing
 * all of them keeps the expressions uniform (and safe from the next reserved-word surprise).
 */
const NAMES = {
  "#pool": "pool",
  "#generation": "generation",
  "#activationId": "activationId",
  "#expiresAt": "expiresAt",
  "#limit": "limit",
  "#issued": "issued",
  "#leaseOwner": "leaseOwner",
  "#leaseDeadline": "leaseDeadline",
  "#windowStart": "rotationWindowStart",
  "#rotations": "rotationsInWindow",
  "#standbyId": "standbyId",
  "#standbyExpiresAt": "standbyExpiresAt",
  "#standbyLimit": "standbyLimit",
  "#standbyEnd": "standbyEnd",
} as const;

/** Every standby attribute: dropped together when the standby becomes current or is spent. */
const STANDBY_ATTRIBUTES = "#standbyId, #standbyExpiresAt, #standbyLimit, #standbyEnd";

type Name = keyof typeof NAMES;

/**
 * Pool state in DynamoDB, one item per pool, on the raw client: every state change is ONE
 * conditional UpdateItem (no transactions, no TTL, no read-then-write), so the invariants hold
 * under any interleaving of Lambda invocations and standalone replicas.
 *
 *   gen g, activation A          lease taken              A' created      gen g+1, activation A'
 *   ──reserve──reserve──✗────acquireLease(g)──────── … CreateActivation ──commitRotation(g)──reserve──▶
 *        issued < limit          ✗ for everyone else        PutParameter     issued = 1 (slot of
 *        AND expiresAt > t+m     until leaseDeadline                         the lease holder)
 *
 * - reserve (I1, I2): `issued < limit AND expiresAt > validUntil` is checked and `issued` bumped
 *   in the same write, so N racing requests get N distinct slots and never more than `limit`;
 *   a row without an activation fails `attribute_exists(activationId)` instead of creating one.
 * - acquireLease (I3, I5): wins only if the row is still at the generation the caller saw AND no
 *   unexpired lease exists. Two requests that both saw generation g cannot both win: the second
 *   sees the first's unexpired deadline. A request that saw g after a rotation to g+1 fails the
 *   generation check, so a finished rotation is never repeated. A crashed holder's lease stops
 *   blocking at `leaseDeadline` (deadline <= now), with no cleanup needed.
 * - commitRotation (I5): guarded by `leaseOwner = owner AND generation = g`. If the lease lapsed
 *   and someone else took it, leaseOwner differs; if someone else already committed, the
 *   generation differs. Either way the caller's activation is refused and becomes an orphan for
 *   the caller (or the janitor) to delete, and exactly one activation per generation is live.
 *   The commit also sets issued = 1: the committer's own reservation, taken in the same write.
 * - releaseLease: only the owner can clear its lease, so a late release after a lapse and a
 *   takeover cannot unlock somebody else's rotation.
 * - rotation budget (I7): the lease write itself counts the lease in the row's one-hour window
 *   (rotationWindowStart, rotationsInWindow) and fails once the window holds `max` leases, so
 *   replicas and Lambda containers share one budget with no read-then-write. An open window is
 *   counted up (`rotationsInWindow < max`); a closed or missing one is restarted at now with a
 *   count of 1. The two cases are two writes with disjoint conditions: at most one can succeed.
 */
export class DynamoDbPoolStore implements PoolStateStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  async reserve(pool: string, validUntil: number): Promise<Reservation | undefined> {
    const item = await this.conditionalUpdate({
      ...this.keyOf(pool),
      UpdateExpression: "SET #issued = #issued + :one",
      // AND binds tighter than OR: two alternatives, the current activation's and the standby's.
      // No parentheses: dynalite's parser (the emulated DynamoDB) backtracks on nested ones, which
      // halved the emulated store's throughput for this write (measured); the meaning is the same.
      ConditionExpression:
        "attribute_exists(#activationId) AND #issued < #limit AND #expiresAt > :validUntil OR " +
        "attribute_exists(#activationId) AND #issued >= #limit AND #issued < #standbyEnd AND " +
        "#standbyExpiresAt > :validUntil",
      ExpressionAttributeNames: names(
        "#issued",
        "#activationId",
        "#limit",
        "#expiresAt",
        "#standbyEnd",
        "#standbyExpiresAt",
      ),
      ExpressionAttributeValues: marshall({ ":one": 1, ":validUntil": validUntil }),
      ReturnValues: "ALL_NEW",
    });
    return item && toReservation(item);
  }

  async switchToStandby(pool: string, validUntil: number): Promise<Reservation | undefined> {
    const update =
      "SET #activationId = #standbyId, #expiresAt = #standbyExpiresAt, #limit = #standbyLimit, " +
      `#issued = :one, #generation = #generation + :one REMOVE ${STANDBY_ATTRIBUTES}`;
    const condition = "#issued < #limit AND #expiresAt <= :validUntil AND #standbyExpiresAt > :validUntil";
    const old = await this.conditionalUpdate({
      ...this.keyOf(pool),
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: names(...namesIn(update, condition)),
      ExpressionAttributeValues: marshall({ ":one": 1, ":validUntil": validUntil }),
      ReturnValues: "ALL_OLD",
    });
    if (!old) return undefined;
    const before = toPoolState(old);
    if (!before?.standbyId || before.standbyExpiresAt === undefined || before.standbyLimit === undefined) {
      throw new Error("Pool row is missing standby attributes after a successful switch.");
    }
    return {
      pool: before.pool,
      generation: before.generation + 1,
      activationId: before.standbyId,
      expiresAt: before.standbyExpiresAt,
      limit: before.standbyLimit,
      slot: 1,
      needsStandby: true,
    };
  }

  async read(pool: string): Promise<PoolState | undefined> {
    const { Item } = await sendToDynamoDb(() =>
      this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: key(pool), ConsistentRead: true }),
      ),
    );
    return Item && toPoolState(Item);
  }

  async acquireLease(pool: string, lease: LeaseRequest): Promise<boolean> {
    // Generation 0 covers both "no row yet" and "a row whose first rotation never committed"
    // (a lease that was released or lapsed leaves generation = 0 behind).
    const atGeneration =
      lease.generation === 0
        ? "(attribute_not_exists(#generation) OR #generation = :gen)"
        : "#generation = :gen";
    const leaseFree = "(attribute_not_exists(#leaseDeadline) OR #leaseDeadline <= :now)";
    const takeLease =
      "SET #leaseOwner = :owner, #leaseDeadline = :deadline, #pool = :pool, " +
      "#generation = if_not_exists(#generation, :zero)";
    const base = {
      ...this.keyOf(pool),
      ExpressionAttributeNames: names(
        "#leaseOwner",
        "#leaseDeadline",
        "#pool",
        "#generation",
        "#windowStart",
        "#rotations",
      ),
      ReturnValues: "NONE" as const,
    };
    const values = {
      ":owner": lease.owner,
      ":deadline": lease.deadline,
      ":pool": pool,
      ":zero": 0,
      ":gen": lease.generation,
      ":now": lease.now,
      ":one": 1,
      ":windowOpenAfter": lease.now - lease.budget.windowMs,
    };
    const inOpenWindow = await this.conditionalUpdate({
      ...base,
      UpdateExpression: `${takeLease}, #rotations = #rotations + :one`,
      ConditionExpression:
        `${atGeneration} AND ${leaseFree} AND #windowStart > :windowOpenAfter ` + "AND #rotations < :max",
      ExpressionAttributeValues: marshall({ ...values, ":max": lease.budget.max }),
    });
    if (inOpenWindow) return true;
    const inNewWindow = await this.conditionalUpdate({
      ...base,
      UpdateExpression: `${takeLease}, #windowStart = :now, #rotations = :one`,
      ConditionExpression:
        `${atGeneration} AND ${leaseFree} ` +
        "AND (attribute_not_exists(#windowStart) OR #windowStart <= :windowOpenAfter)",
      ExpressionAttributeValues: marshall(values),
    });
    return inNewWindow !== undefined;
  }

  async commitRotation(
    pool: string,
    rotation: { owner: string; generation: number; activation: NewActivation; nextGeneration?: number },
  ): Promise<Reservation | undefined> {
    const { activation } = rotation;
    const update =
      "SET #activationId = :activationId, #expiresAt = :expiresAt, #limit = :limit, #issued = :one, " +
      `#generation = :next REMOVE #leaseOwner, #leaseDeadline, ${STANDBY_ATTRIBUTES}`;
    const condition = "#leaseOwner = :owner AND #generation = :gen";
    const item = await this.conditionalUpdate({
      ...this.keyOf(pool),
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: names(...namesIn(update, condition)),
      ExpressionAttributeValues: marshall({
        ":activationId": activation.activationId,
        ":expiresAt": activation.expiresAt,
        ":limit": activation.limit,
        ":one": 1,
        ":next": rotation.nextGeneration ?? rotation.generation + 1,
        ":owner": rotation.owner,
        ":gen": rotation.generation,
      }),
      ReturnValues: "ALL_NEW",
    });
    return item && toReservation(item);
  }

  async commitStandby(
    pool: string,
    standby: { owner: string; generation: number; activation: NewActivation; replacing?: string },
  ): Promise<boolean> {
    const { activation, replacing } = standby;
    // Every operand reads the item as it was before the write, so in the promoting form the
    // standby's attributes move to the current ones while the new activation takes their place,
    // and `issued` keeps counting: the slots already taken from the standby stay taken.
    const promote =
      "#activationId = #standbyId, #expiresAt = #standbyExpiresAt, #limit = #standbyLimit, " +
      "#issued = #issued - #limit, #generation = #generation + :one, " +
      "#standbyEnd = #standbyLimit + :newLimit, ";
    const install = "#standbyEnd = #limit + :newLimit, ";
    const update =
      `SET ${replacing === undefined ? install : promote}` +
      "#standbyId = :newId, #standbyExpiresAt = :newExpiresAt, #standbyLimit = :newLimit " +
      "REMOVE #leaseOwner, #leaseDeadline";
    const condition =
      "#leaseOwner = :owner AND #generation = :gen AND attribute_exists(#activationId) AND " +
      (replacing === undefined
        ? "attribute_not_exists(#standbyId)"
        : "#standbyId = :replacing AND #issued > #limit");
    const item = await this.conditionalUpdate({
      ...this.keyOf(pool),
      UpdateExpression: update,
      ConditionExpression: condition,
      // DynamoDB rejects a name the expressions do not use, and the two forms use different ones.
      ExpressionAttributeNames: names(...namesIn(update, condition)),
      ExpressionAttributeValues: marshall({
        ":newId": activation.activationId,
        ":newExpiresAt": activation.expiresAt,
        ":newLimit": activation.limit,
        ":owner": standby.owner,
        ":gen": standby.generation,
        ...(replacing === undefined ? {} : { ":replacing": replacing, ":one": 1 }),
      }),
      ReturnValues: "NONE",
    });
    return item !== undefined;
  }

  async releaseLease(pool: string, owner: string): Promise<void> {
    // A failed condition means the lease already lapsed into someone else's hands (or the row is
    // gone): nothing of ours is left to release.
    await this.conditionalUpdate({
      ...this.keyOf(pool),
      UpdateExpression: "REMOVE #leaseOwner, #leaseDeadline",
      ConditionExpression: "#leaseOwner = :owner",
      ExpressionAttributeNames: names("#leaseOwner", "#leaseDeadline"),
      ExpressionAttributeValues: marshall({ ":owner": owner }),
      ReturnValues: "NONE",
    });
  }

  private keyOf(pool: string): Pick<UpdateItemCommandInput, "TableName" | "Key"> {
    return { TableName: this.tableName, Key: key(pool) };
  }

  /** The item after the write (or {} when none was asked for), or undefined if the condition failed. */
  private async conditionalUpdate(input: UpdateItemCommandInput): Promise<Item | undefined> {
    try {
      const { Attributes } = await sendToDynamoDb(() => this.client.send(new UpdateItemCommand(input)));
      return Attributes ?? {};
    } catch (error) {
      if (isSdkError(error, "ConditionalCheckFailedException")) return undefined;
      throw error;
    }
  }
}

function key(pool: string): Item {
  return marshall({ [POOL_KEY_ATTRIBUTE]: poolKey(pool) });
}

function namesIn(...expressions: string[]): Name[] {
  // Stryker disable next-line ArrayDeclaration: every expression names an attribute, and a string that is not a name is filtered out below
  const used = new Set(expressions.flatMap((e) => e.match(/#\w+/g) ?? []));
  return (Object.keys(NAMES) as Name[]).filter((n) => used.has(n));
}

function names(...used: Name[]): Record<string, string> {
  return Object.fromEntries(used.map((n) => [n, NAMES[n]]));
}

export function readString(item: Item, attribute: string): string | undefined {
  return stringIn(unmarshall(item), attribute);
}

type Row = Record<string, unknown>;

const stringIn = (row: Row, name: string) => (typeof row[name] === "string" ? row[name] : undefined);
const numberIn = (row: Row, name: string) => (typeof row[name] === "number" ? row[name] : undefined);

/**
 * undefined for items that are not pool rows (the table may hold other kinds one day).
 *
 * On the row, `issued` counts on past `limit` into the standby (a reservation is one write and
 * cannot choose which counter to bump); `standbyEnd` = limit + standbyLimit bounds it, because a
 * condition cannot add. Readers see the two counters apart: issued <= limit, standbyIssued.
 */
export function toPoolState(item: Item): PoolState | undefined {
  const row = unmarshall(item);
  const keyValue = stringIn(row, POOL_KEY_ATTRIBUTE);
  // The key is the source of truth; the `pool` attribute only makes the row readable in a console.
  const pool = keyValue === undefined ? undefined : poolFromKey(keyValue);
  if (pool === undefined) return undefined;
  const limit = numberIn(row, "limit");
  const rawIssued = numberIn(row, "issued");
  const standbyId = stringIn(row, "standbyId");
  const overflow =
    standbyId !== undefined && limit !== undefined && rawIssued !== undefined
      ? Math.max(0, rawIssued - limit)
      : undefined;
  const optional = {
    activationId: stringIn(row, "activationId"),
    expiresAt: numberIn(row, "expiresAt"),
    limit,
    issued: overflow !== undefined && rawIssued !== undefined ? rawIssued - overflow : rawIssued,
    leaseOwner: stringIn(row, "leaseOwner"),
    leaseDeadline: numberIn(row, "leaseDeadline"),
    rotationWindowStart: numberIn(row, "rotationWindowStart"),
    rotationsInWindow: numberIn(row, "rotationsInWindow"),
    standbyId,
    standbyExpiresAt: numberIn(row, "standbyExpiresAt"),
    standbyLimit: numberIn(row, "standbyLimit"),
    standbyIssued: overflow,
  };
  return {
    pool,
    generation: numberIn(row, "generation") ?? 0,
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
  };
}

function toReservation(item: Item): Reservation {
  const state = toPoolState(item);
  if (
    !state?.activationId ||
    state.expiresAt === undefined ||
    // A reservation compares `limit` and adds to `issued`, so DynamoDB only succeeds when both are numbers.
    // Stryker disable next-line ConditionalExpression: equivalent (see above)
    state.limit === undefined ||
    // Stryker disable next-line ConditionalExpression: equivalent (see above)
    state.issued === undefined
  ) {
    // Only reachable if someone edits the table by hand: the conditions above guarantee these.
    throw new Error("Pool row is missing activation attributes after a successful reservation.");
  }
  return reservationFrom(state);
}
