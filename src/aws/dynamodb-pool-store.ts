import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type {
  LeaseRequest,
  NewActivation,
  PoolState,
  PoolStateStore,
  Link,
  RefillCommit,
  Reservation,
  RotationCommit,
} from "../core/ports";
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
  "#queue": "queue",
  "#queueIds": "queueIds",
  "#queueEnd": "queueEnd",
  "#queueExpiresAt": "queueExpiresAt",
  "#queueGeneration": "queueGeneration",
  "#q": "q",
  "#qEnd": "qEnd",
  "#qExpiresAt": "qExpiresAt",
  "#qGeneration": "qGeneration",
  "#standbyDepth": "standbyDepth",
  "#refilledAt": "refilledAt",
} as const;

/**
 * The queue (I9): the activations after the standby, packed into one Binary attribute `q` (see
 * packQueue), with where their slots end (`qEnd`), their earliest expiry (`qExpiresAt`: the
 * reservation checks one number) and the generation they belong to (`qGeneration`). A row
 * rewritten by a release that knows nothing of it (a rotation, a switch, a promotion) moves the
 * generation on, which leaves the queue behind: no reservation takes it and readers ignore it, so
 * its activations are orphans for the janitor.
 *
 * Every byte of the row is paid on every reservation: DynamoDB bills a write one unit per started
 * KB (1,024 bytes) of the larger of the item before and after it, an item's size being the UTF-8
 * lengths of its attribute names plus its values' sizes (a Binary value counts its raw bytes)
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
 * Hence the short names, and 21 bytes per queued activation where the previous layout (a list of
 * maps beside a list of ids, still read: LEGACY_QUEUE_ATTRIBUTES) spent about 115: a row with the
 * deepest stock stays under 1 KB, so a reservation costs one write capacity unit (I4).
 */
export const LEGACY_QUEUE_ATTRIBUTES = "#queue, #queueIds, #queueEnd, #queueExpiresAt, #queueGeneration";
export const QUEUE_ATTRIBUTES = `#q, #qEnd, #qExpiresAt, #qGeneration, ${LEGACY_QUEUE_ATTRIBUTES}`;
/** Every standby attribute, the queue's with them: dropped together when the standby goes. */
export const STANDBY_ATTRIBUTES = `#standbyId, #standbyExpiresAt, #standbyLimit, #standbyEnd, ${QUEUE_ATTRIBUTES}`;

type Name = keyof typeof NAMES;

/**
 * AND binds tighter than OR: four alternatives, the current activation's, the standby's, the
 * queue's and a queue in the previous layout's (a row the previous release wrote, until its next
 * refill rewrites it). That one applies only while no packed queue of the same generation
 * exists, so a reservation is always read back against the queue that admitted it. No
 * parentheses: dynalite's parser (the emulated DynamoDB) backtracks on nested ones, which halved
 * the emulated store's throughput for this write (measured); the meaning is the same.
 */
const RESERVE_CONDITION =
  "attribute_exists(#activationId) AND #issued < #limit AND #expiresAt > :validUntil OR " +
  "attribute_exists(#activationId) AND #issued >= #limit AND #issued < #standbyEnd AND " +
  "#standbyExpiresAt > :validUntil OR " +
  "attribute_exists(#activationId) AND #issued >= #standbyEnd AND #issued < #qEnd AND " +
  "#qGeneration = #generation AND #qExpiresAt > :validUntil OR " +
  "attribute_exists(#activationId) AND #issued >= #standbyEnd AND #issued < #queueEnd AND " +
  "#queueGeneration = #generation AND #queueExpiresAt > :validUntil AND NOT #qGeneration = #generation";

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
 *   count of 1. The two cases are two writes with disjoint conditions, and the caller says which
 *   one it saw on the row: one write takes the lease, and one write refuses a caller that lost
 *   the race (a window that changed since its read was opened by whoever holds the lease now).
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
      ConditionExpression: RESERVE_CONDITION,
      ExpressionAttributeNames: names(...namesIn(RESERVE_CONDITION)),
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
    const standby = before?.links[1];
    if (!before || !standby) {
      throw new Error("Pool row is missing standby attributes after a successful switch.");
    }
    return {
      pool: before.pool,
      generation: before.generation + 1,
      activationId: standby.activationId,
      expiresAt: standby.expiresAt,
      limit: standby.limit,
      slot: 1,
      needsStandby: true,
      next: [],
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
    const { max, windowMs, windowStart, count = 1 } = lease.budget;
    if (count > max) return false;
    // Generation 0 covers both "no row yet" and "a row whose first rotation never committed"
    // (a lease that was released or lapsed leaves generation = 0 behind).
    const atGeneration =
      lease.generation === 0
        ? "(attribute_not_exists(#generation) OR #generation = :gen)"
        : "#generation = :gen";
    const leaseFree = "(attribute_not_exists(#leaseDeadline) OR #leaseDeadline <= :now)";
    const takeLease =
      "SET #leaseOwner = :owner, #leaseDeadline = :deadline, " +
      "#generation = if_not_exists(#generation, :zero)";
    // One write: the one for the window the caller read. If the window changed since, so did the
    // lease (whoever opened the new window took it), and the refusal is the right answer.
    const open = windowStart !== undefined && windowStart > lease.now - windowMs;
    const taken = await this.conditionalUpdate({
      ...this.keyOf(pool),
      UpdateExpression: open
        ? `${takeLease}, #rotations = #rotations + :count`
        : `${takeLease}, #windowStart = :now, #rotations = :count`,
      ConditionExpression:
        `${atGeneration} AND ${leaseFree} AND ` +
        (open
          ? "#windowStart > :windowOpenAfter AND #rotations <= :room"
          : "(attribute_not_exists(#windowStart) OR #windowStart <= :windowOpenAfter)"),
      ExpressionAttributeNames: names(
        "#leaseOwner",
        "#leaseDeadline",
        "#generation",
        "#windowStart",
        "#rotations",
      ),
      ExpressionAttributeValues: marshall({
        ":owner": lease.owner,
        ":deadline": lease.deadline,
        ":zero": 0,
        ":gen": lease.generation,
        ":now": lease.now,
        ":count": count,
        ":windowOpenAfter": lease.now - windowMs,
        ...(open && { ":room": max - count }),
      }),
      ReturnValues: "NONE",
    });
    return taken !== undefined;
  }

  async commitRotation(pool: string, rotation: RotationCommit): Promise<Reservation | undefined> {
    const { activation } = rotation;
    const nextGeneration = rotation.nextGeneration ?? rotation.generation + 1;
    const behind = this.behind(activation, rotation.standbys ?? [], nextGeneration);
    const update =
      "SET #activationId = :activationId, #expiresAt = :expiresAt, #limit = :limit, #issued = :one, " +
      `#generation = :next${behind.set}${rotation.depth === undefined ? "" : ", #standbyDepth = :depth"}` +
      `${rotation.refilledAt === undefined ? "" : ", #refilledAt = :now"} ` +
      `REMOVE #leaseOwner, #leaseDeadline${behind.remove}`;
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
        ":next": nextGeneration,
        ":owner": rotation.owner,
        ":gen": rotation.generation,
        ...behind.values,
        ...(rotation.depth !== undefined && { ":depth": rotation.depth }),
        ...(rotation.refilledAt !== undefined && { ":now": rotation.refilledAt }),
      }),
      ReturnValues: "ALL_NEW",
    });
    return item && toReservation(item);
  }

  /**
   * The standby and queue attributes for the activations behind `current`: SET clauses (each
   * starting with ", "), the attributes to REMOVE (likewise), and their values. The queue
   * belongs to `generation`, the one the same write gives the row. Every such write also drops
   * what the previous layout kept (its queue; `pool`, which repeated the key): the row then has
   * the one layout whose size is bounded.
   */
  private behind(
    current: NewActivation,
    activations: readonly NewActivation[],
    generation: number,
  ): { set: string; remove: string; values: Record<string, unknown> } {
    const [standby, ...queue] = activations;
    if (!standby) return { set: "", remove: `, #pool, ${STANDBY_ATTRIBUTES}`, values: {} };
    let set =
      ", #standbyId = :id1, #standbyExpiresAt = :expiresAt1, #standbyLimit = :limit1, #standbyEnd = :end1";
    const values: Record<string, unknown> = {
      ":id1": standby.activationId,
      ":expiresAt1": standby.expiresAt,
      ":limit1": standby.limit,
      ":end1": current.limit + standby.limit,
    };
    if (queue.length === 0) return { set, remove: `, #pool, ${QUEUE_ATTRIBUTES}`, values };
    const packed = packQueue(queue);
    set += ", #q = :q, #qEnd = :qEnd, #qExpiresAt = :qExpiresAt, #qGeneration = :qGeneration";
    Object.assign(values, {
      ":q": packed.bytes,
      ":qEnd": [current, ...activations].reduce((end, a) => end + a.limit, 0),
      ":qExpiresAt": packed.base,
      ":qGeneration": generation,
    });
    return { set, remove: `, #pool, ${LEGACY_QUEUE_ATTRIBUTES}`, values };
  }

  async commitRefill(pool: string, refill: RefillCommit): Promise<boolean> {
    const [current, ...rest] = refill.chain;
    if (!current) throw new Error("A refill commits at least the pool's current activation.");
    const nextGeneration = refill.generation + refill.dropped;
    const behind = this.behind(current, rest, nextGeneration);
    const set =
      "#activationId = :id0, #expiresAt = :expiresAt0, #limit = :limit0, #issued = #issued - :shift, " +
      `#generation = :next, #standbyDepth = :depth, #refilledAt = :now${behind.set}`;
    const values: Record<string, unknown> = {
      ":id0": current.activationId,
      ":expiresAt0": current.expiresAt,
      ":limit0": current.limit,
      ":shift": refill.shift,
      ":next": nextGeneration,
      ":depth": refill.depth,
      ":now": refill.now,
      ":owner": refill.owner,
      ":gen": refill.generation,
      ...behind.values,
    };
    // The lease and the generation keep every other refill, rotation and switch out; only a revoke
    // writes without them, and it drops activations (or exhausts them, which the counter keeps).
    // Pinning what was seen refuses a commit that would bring a dropped one back.
    // Another refill that committed after our read without a drop left the generation as it was,
    // so what was seen is pinned exactly: the same activations, no more, no fewer.
    const [seenCurrent, seenStandby, ...seenQueue] = refill.seen;
    const pins = [
      "#leaseOwner = :owner AND #generation = :gen AND #issued >= :shift AND #activationId = :seen0",
    ];
    values[":seen0"] = seenCurrent;
    if (seenStandby === undefined) {
      pins.push("attribute_not_exists(#standbyId)");
    } else {
      pins.push("#standbyId = :seen1");
      values[":seen1"] = seenStandby;
    }
    if (seenQueue.length === 0) {
      // A queue left behind by a release that knows none belongs to another generation.
      pins.push("NOT #qGeneration = :gen AND NOT #queueGeneration = :gen");
    } else {
      // The queue that was read: the packed one, or (a row the previous release wrote) the one in
      // the previous layout while no packed one shares its generation. A packed queue's length
      // follows from its ids, and under the lease only a revoke changes it (by dropping it).
      pins.push(
        "(#qGeneration = :gen AND size(#q) = :seenSize OR NOT #qGeneration = :gen AND " +
          "#queueGeneration = :gen AND size(#queueIds) = :seenQueued AND contains(#queueIds, :seenLast))",
      );
      values[":seenSize"] = packedQueueSize(seenQueue);
      values[":seenQueued"] = seenQueue.length;
      values[":seenLast"] = seenQueue.at(-1);
    }
    const update = `SET ${set} REMOVE #leaseOwner, #leaseDeadline${behind.remove}`;
    const condition = pins.join(" AND ");
    const item = await this.conditionalUpdate({
      ...this.keyOf(pool),
      UpdateExpression: update,
      ConditionExpression: condition,
      // DynamoDB rejects a name the expressions do not use, and the forms use different ones.
      ExpressionAttributeNames: names(...namesIn(update, condition)),
      ExpressionAttributeValues: marshall(values),
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
 * The row keeps its activations in three places, the layout every release since 226589a reads:
 * the current one (`activationId`, `expiresAt`, `limit`), the standby (`standbyId`, ...) and the
 * queue (`q`, or the previous layout's `queue`). `issued` counts on past `limit` into the standby
 * and the queue (a reservation is one write and cannot choose which counter to bump); `standbyEnd`
 * and `qEnd` bound it, because a condition cannot add. PoolState lists them as one: each
 * activation with its share of the counter. A field missing from a hand-edited row reads as 0:
 * that activation is exhausted and expired.
 */
export function toPoolState(item: Item): PoolState | undefined {
  return poolStateOf(unmarshall(item));
}

function poolStateOf(row: Row): PoolState | undefined {
  const keyValue = stringIn(row, POOL_KEY_ATTRIBUTE);
  // The key is the source of truth; the `pool` attribute only makes the row readable in a console.
  const pool = keyValue === undefined ? undefined : poolFromKey(keyValue);
  if (pool === undefined) return undefined;
  const generation = numberIn(row, "generation") ?? 0;
  const optional = {
    leaseOwner: stringIn(row, "leaseOwner"),
    leaseDeadline: numberIn(row, "leaseDeadline"),
    rotationWindowStart: numberIn(row, "rotationWindowStart"),
    rotationsInWindow: numberIn(row, "rotationsInWindow"),
    standbyDepth: numberIn(row, "standbyDepth"),
    refilledAt: numberIn(row, "refilledAt"),
  };
  return {
    pool,
    generation,
    links: linksIn(row, generation),
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
  };
}

/** The row's activations in the order they go into use, each with its share of the counter. */
function linksIn(row: Row, generation: number): Link[] {
  const activationId = stringIn(row, "activationId");
  if (activationId === undefined) return [];
  const issued = numberIn(row, "issued") ?? 0;
  const current = {
    activationId,
    expiresAt: numberIn(row, "expiresAt") ?? 0,
    limit: numberIn(row, "limit") ?? 0,
  };
  const standbyId = stringIn(row, "standbyId");
  if (standbyId === undefined) return [{ ...current, issued }];
  const standby = {
    activationId: standbyId,
    expiresAt: numberIn(row, "standbyExpiresAt") ?? 0,
    limit: numberIn(row, "standbyLimit") ?? 0,
  };
  const queue = queueOf(row, generation) ?? [];
  return withShares([current, standby, ...queue], issued);
}

/**
 * The queue of the row's generation, packed or (a row the previous release wrote) in the previous
 * layout; none when neither belongs to the generation. The packed one wins: the reservation's
 * condition takes the other only without it.
 */
function queueOf(row: Row, generation: number): NewActivation[] | undefined {
  if (numberIn(row, "qGeneration") === generation) {
    const base = numberIn(row, "qExpiresAt");
    return base === undefined ? undefined : unpackQueue(row.q, base);
  }
  if (numberIn(row, "queueGeneration") !== generation) return undefined;
  return legacyQueueIn(row.queue);
}

/** The counter runs through the activations in order; each one's share is clamped to its limit. */
function withShares(activations: readonly NewActivation[], issued: number): Link[] {
  let start = 0;
  return activations.map((a) => {
    const link = { ...a, issued: Math.min(a.limit, Math.max(0, issued - start)) };
    start += a.limit;
    return link;
  });
}

/** The previous layout's queue, a list of {activationId, expiresAt, limit}; malformed reads as none. */
function legacyQueueIn(value: unknown): NewActivation[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const queue: NewActivation[] = [];
  for (const entry of value as unknown[]) {
    if (
      entry === null ||
      // A JSON primitive has no activationId, expiresAt or limit, so the check below refuses it too.
      // Stryker disable next-line ConditionalExpression: equivalent (see above)
      typeof entry !== "object"
    ) {
      return undefined;
    }
    const fields = entry as Row;
    const activationId = stringIn(fields, "activationId");
    const expiresAt = numberIn(fields, "expiresAt");
    const limit = numberIn(fields, "limit");
    if (activationId === undefined || expiresAt === undefined || limit === undefined) return undefined;
    queue.push({ activationId, expiresAt, limit });
  }
  return queue;
}

/*
 * The packed queue: one format byte, then per activation, in order,
 *   its id      16 bytes when every id of the queue is a lowercase UUID (SSM's activation ids are),
 *               else one length byte and the UTF-8 bytes;
 *   its expiry  3 bytes, whole seconds after the queue's earliest expiry (kept apart in full, in
 *               qExpiresAt), rounded down: a stored expiry is never later than the real one (I2);
 *   its limit   2 bytes (SSM's registrationLimit is at most 1,000).
 * All integers big-endian. 21 bytes per activation with SSM's ids.
 */
const UUID_FORMAT = 1;
const TEXT_FORMAT = 2;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_BYTES = 16;
const EXPIRY_BYTES = 3;
const LIMIT_BYTES = 2;
const MAX_EXPIRY_OFFSET_SECONDS = 2 ** (8 * EXPIRY_BYTES) - 1;
const MAX_LIMIT = 2 ** (8 * LIMIT_BYTES) - 1;
const MAX_TEXT_ID_BYTES = 255;

const allUuids = (ids: readonly string[]) => ids.every((id) => UUID_PATTERN.test(id));

/** The packed queue's size in bytes, from its ids alone (a refill's commit pins it). */
export function packedQueueSize(ids: readonly string[]): number {
  const uuids = allUuids(ids);
  return ids.reduce(
    (size, id) => size + (uuids ? UUID_BYTES : 1 + Buffer.byteLength(id)) + EXPIRY_BYTES + LIMIT_BYTES,
    1,
  );
}

/** The queue as stored (see above) and the earliest expiry the offsets count from. */
export function packQueue(queue: readonly NewActivation[]): { bytes: Uint8Array; base: number } {
  const base = Math.min(...queue.map((a) => a.expiresAt));
  const uuids = allUuids(queue.map((a) => a.activationId));
  const bytes = Buffer.alloc(packedQueueSize(queue.map((a) => a.activationId)));
  let at = bytes.writeUInt8(uuids ? UUID_FORMAT : TEXT_FORMAT, 0);
  for (const { activationId, expiresAt, limit } of queue) {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new Error(`A queued activation's limit must be an integer from 1 to ${MAX_LIMIT}.`);
    }
    if (uuids) {
      at += bytes.write(activationId.replaceAll("-", ""), at, "hex");
    } else {
      const length = Buffer.byteLength(activationId);
      if (length > MAX_TEXT_ID_BYTES) throw new Error("A queued activation's id is too long to pack.");
      at = bytes.writeUInt8(length, at);
      at += bytes.write(activationId, at, "utf8");
    }
    const offset = Math.min(MAX_EXPIRY_OFFSET_SECONDS, Math.floor((expiresAt - base) / 1000));
    at = bytes.writeUIntBE(offset, at, EXPIRY_BYTES);
    at = bytes.writeUInt16BE(limit, at);
  }
  return { bytes: new Uint8Array(bytes), base };
}

/** The packed queue's activations, or undefined when the value is not one (a hand-edited row). */
export function unpackQueue(value: unknown, base: number): NewActivation[] | undefined {
  if (!(value instanceof Uint8Array) || value.length === 0) return undefined;
  const bytes = Buffer.from(value.buffer, value.byteOffset, value.length);
  const format = bytes.readUInt8(0);
  if (format !== UUID_FORMAT && format !== TEXT_FORMAT) return undefined;
  const queue: NewActivation[] = [];
  let at = 1;
  while (at < bytes.length) {
    const idLength = format === UUID_FORMAT ? UUID_BYTES : bytes.readUInt8(at++);
    if (idLength === 0 || at + idLength + EXPIRY_BYTES + LIMIT_BYTES > bytes.length) return undefined;
    const id = bytes.subarray(at, (at += idLength));
    const activationId = format === UUID_FORMAT ? uuidOf(id.toString("hex")) : id.toString("utf8");
    const expiresAt = base + 1000 * bytes.readUIntBE(at, EXPIRY_BYTES);
    const limit = bytes.readUInt16BE(at + EXPIRY_BYTES);
    at += EXPIRY_BYTES + LIMIT_BYTES;
    if (limit === 0) return undefined;
    queue.push({ activationId, expiresAt, limit });
  }
  return queue.length > 0 ? queue : undefined;
}

const uuidOf = (hex: string) =>
  `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;

function toReservation(item: Item): Reservation {
  const row = unmarshall(item);
  const state = poolStateOf(row);
  // Only reachable if someone edits the table by hand: the conditions above guarantee these. The
  // current activation's expiry is checked here, where it is read as 0 if missing: with the
  // standby in use the condition never looks at it, and half a pair must not go out.
  if (!state?.links.length || numberIn(row, "expiresAt") === undefined) {
    throw new Error("Pool row is missing activation attributes after a successful reservation.");
  }
  // The write counted a slot within the end of the activations it checked; activations that cannot
  // be read back (a hand-edited row: a queue that does not unpack, a standby without its id) must
  // not hand out a slot past the last readable activation's limit.
  const counted = numberIn(row, "issued") ?? 0;
  if (counted > state.links.reduce((end, l) => end + l.limit, 0)) {
    throw new Error("Pool row's activations are unreadable after a successful reservation.");
  }
  return reservationFrom(state);
}
