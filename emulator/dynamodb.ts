import { EventEmitter } from "node:events";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { crc32 } from "node:zlib";
import dynalite from "dynalite";
import { type Item, itemSize, readUnits, writeUnits } from "./capacity";

/** Consumed capacity of one table and operation (DynamoDB bills these as request units on demand). */
export interface OperationUsage {
  requests: number;
  readUnits: number;
  writeUnits: number;
}

/** One item that was read or written, keyed by its table and primary key. */
export interface ItemUsage {
  table: string;
  key: Item;
  /** The most write units it took within one wall-clock second. */
  peakWriteUnitsPerSecond: number;
  /** The largest size it had, in bytes, by DynamoDB's item size rules. */
  largestBytes: number;
}

export interface DynamoDbUsage {
  /** `{ "<table>": { "UpdateItem": {requests, readUnits, writeUnits} } }` */
  tables: Record<string, Record<string, OperationUsage>>;
  items: ItemUsage[];
}

/**
 * DynamoDB at its limits, both off by default (emulator/README.md, "Limits"):
 * - `itemWriteUnitsPerSecond`: write units one item (one partition key value) takes per second
 *   before DynamoDB throttles writes to it;
 * - `itemServiceMs`: each request on an item holds that item for this long, one at a time, so a
 *   request's latency grows with the requests queued on the same item.
 */
export interface DynamoDbLimits {
  itemWriteUnitsPerSecond?: number;
  itemServiceMs?: number;
}

const ITEM_OPERATIONS = new Set(["GetItem", "PutItem", "UpdateItem", "DeleteItem"]);
const WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem"]);
const DYNALITE_READS = new Set(["Query", "Scan", "BatchGetItem", "BatchWriteItem"]);
const CONTENT_TYPE = "application/x-amz-json-1.0";

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

interface ItemState {
  /** The tail of the item's queue: every write (and, in serial mode, every request) waits on it. */
  tail: Promise<void>;
  window: number;
  windowUnits: number;
  peak: number;
  largest: number;
  key: Item;
  table: string;
  /**
   * The item as the last write through here left it (`{item: undefined}`: no item), or undefined
   * when not known. Every write reaches dynalite through this front, queued per item, so what is
   * known stays true until the next write; it saves a read of the item before each write.
   */
  known?: { item: Item | undefined };
}

/**
 * DynamoDB is not re-implemented: requests go to dynalite (a DynamoDB implementation on an
 * in-memory LevelDB), in-process, without a second port. In front of it the emulator keeps the
 * economics dynalite leaves out: capacity units by DynamoDB's rules for every request (whether or
 * not the caller asked for `ReturnConsumedCapacity`), a per-item write limit and a serial store.
 */
export class EmulatedDynamoDb {
  private readonly dynalite: RequestListener;
  private readonly keySchemas = new Map<string, string[]>();
  private readonly items = new Map<string, ItemState>();
  private usage = new Map<string, Map<string, OperationUsage>>();
  limits: DynamoDbLimits = {};

  constructor(
    private readonly region: string,
    private readonly accountId: string,
    /** Told of each throttled request, so the controls count it with the service's throttles. */
    private readonly onThrottle: (operation: string) => void,
  ) {
    // Tables become ACTIVE at once, so tests need no waiter.
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    const listener = server.listeners("request")[0] as RequestListener | undefined;
    if (!listener) throw new Error("dynalite exposes no request listener");
    this.dynalite = listener;
  }

  async handle(req: IncomingMessage, res: ServerResponse, operation: string, raw: Buffer): Promise<void> {
    let body: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(raw.toString("utf8"));
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed))
        body = parsed as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    // Not JSON, or an operation with nothing to account: dynalite answers as it does (its own
    // SerializationException, UnknownOperationException, validation messages).
    const table = typeof body?.TableName === "string" ? body.TableName : undefined;
    let answer: Answer;
    if (body && table && ITEM_OPERATIONS.has(operation)) {
      answer = await this.itemOperation(req, operation, table, body);
    } else if (body && DYNALITE_READS.has(operation)) {
      answer = await this.dynaliteAccounted(req, operation, body);
    } else {
      if (operation === "CreateTable" || operation === "DeleteTable" || operation === "UpdateTable")
        if (table) this.forgetTable(table);
      answer = await this.call(req.headers, operation, raw.toString("utf8"));
    }
    send(res, answer);
  }

  usageReport(): DynamoDbUsage {
    const tables: DynamoDbUsage["tables"] = {};
    for (const [table, operations] of [...this.usage].sort(([a], [b]) => (a < b ? -1 : 1))) {
      tables[table] = Object.fromEntries(
        [...operations].sort(([a], [b]) => (a < b ? -1 : 1)).map(([op, u]) => [op, { ...u }]),
      );
    }
    const items = [...this.items.values()]
      .filter((s) => s.peak > 0 || s.largest > 0)
      .map((s) => ({
        table: s.table,
        key: s.key,
        peakWriteUnitsPerSecond: Math.max(s.peak, s.windowUnits),
        largestBytes: s.largest,
      }));
    return { tables, items };
  }

  resetUsage(): void {
    this.usage = new Map();
    for (const state of this.items.values()) {
      state.peak = 0;
      state.windowUnits = 0;
      state.largest = 0;
    }
  }

  private account(table: string, operation: string, units: { read?: number; write?: number }): void {
    let operations = this.usage.get(table);
    if (!operations) this.usage.set(table, (operations = new Map()));
    const u = operations.get(operation) ?? { requests: 0, readUnits: 0, writeUnits: 0 };
    u.requests += 1;
    u.readUnits += units.read ?? 0;
    u.writeUnits += units.write ?? 0;
    operations.set(operation, u);
  }

  private async itemOperation(
    req: IncomingMessage,
    operation: string,
    table: string,
    body: Record<string, unknown>,
  ): Promise<Answer> {
    const keyNames = await this.keySchema(req, table);
    const source = (operation === "PutItem" ? body.Item : body.Key) as Item | undefined;
    // A request dynalite will reject (no table, no key): no item to queue on or to charge.
    if (!keyNames || !source || typeof source !== "object" || keyNames.some((k) => !(k in source)))
      return this.call(req.headers, operation, JSON.stringify(body));
    const key = Object.fromEntries(keyNames.map((k) => [k, source[k]])) as Item;
    const state = this.itemState(table, key);
    const write = WRITES.has(operation);
    const serialMs = this.limits.itemServiceMs;
    // Reads go straight through unless the store is serial; writes always queue on their item, so
    // the item before and after a write are read without another write in between.
    if (!write && serialMs === undefined) return this.getItem(req, table, body, state);
    const previous = state.tail;
    let release!: () => void;
    state.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      if (serialMs !== undefined) await sleep(serialMs);
      return write
        ? await this.writeItem(req, operation, table, body, key, state)
        : await this.getItem(req, table, body, state);
    } finally {
      release();
    }
  }

  private async getItem(
    req: IncomingMessage,
    table: string,
    body: Record<string, unknown>,
    state: ItemState,
  ): Promise<Answer> {
    const { ReturnConsumedCapacity: asked, ...rest } = body;
    const answer = await this.call(req.headers, "GetItem", JSON.stringify(rest));
    if (answer.status !== 200) return answer;
    const result = JSON.parse(answer.body) as { Item?: Item };
    // Units follow the item's size, "not … the amount of data that is returned": a projection
    // saves nothing, so a projected read is sized on the whole item.
    // Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html#read-operation-consumption
    const projected = body.ProjectionExpression !== undefined || body.AttributesToGet !== undefined;
    const bytes = itemSize(projected ? await this.readItem(req, table, state.key) : result.Item);
    state.largest = Math.max(state.largest, bytes);
    // GetItem: "use the item size and round it up to the next 4 KB boundary … for an eventually
    // consistent read (the default), divide this number by two"; an item that isn't there still
    // costs the minimum. Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html#read-operation-consumption
    const units = readUnits(bytes, body.ConsistentRead === true ? "strong" : "eventual");
    this.account(table, "GetItem", { read: units });
    return withConsumed(answer, result, asked, table, units);
  }

  private async writeItem(
    req: IncomingMessage,
    operation: string,
    table: string,
    body: Record<string, unknown>,
    key: Item,
    state: ItemState,
  ): Promise<Answer> {
    const before = state.known ? state.known.item : await this.readItem(req, table, key);
    const limit = this.limits.itemWriteUnitsPerSecond;
    const second = Math.floor(Date.now() / 1000);
    if (state.window !== second) {
      state.peak = Math.max(state.peak, state.windowUnits);
      state.window = second;
      state.windowUnits = 0;
    }
    // A write the item's remaining units for this second can't cover (at the item's present size)
    // is throttled, as a partition past its per-second write throughput is, and costs nothing.
    if (limit !== undefined && state.windowUnits + writeUnits(before, before) > limit) {
      this.onThrottle(operation);
      return this.hotItemThrottle(table);
    }
    const { ReturnConsumedCapacity: asked, ...rest } = body;
    // An UpdateItem's result is the item after it: ask for it when the caller asked for nothing,
    // and take it out of the answer again.
    const wantsNew =
      operation === "UpdateItem" && (rest.ReturnValues === undefined || rest.ReturnValues === "NONE");
    if (wantsNew) rest.ReturnValues = "ALL_NEW";
    state.known = undefined;
    const answer = await this.call(req.headers, operation, JSON.stringify(rest));
    let units: number;
    let result: Record<string, unknown> | undefined;
    if (answer.status === 200) {
      result = JSON.parse(answer.body) as Record<string, unknown>;
      const after =
        operation === "PutItem"
          ? (body.Item as Item)
          : operation === "DeleteItem"
            ? undefined
            : wantsNew || rest.ReturnValues === "ALL_NEW"
              ? (result.Attributes as Item | undefined)
              : await this.readItem(req, table, key);
      if (wantsNew) delete result.Attributes;
      state.known = { item: after };
      units = writeUnits(before, after);
      state.largest = Math.max(state.largest, itemSize(before), itemSize(after));
    } else if (answer.body.includes("ConditionalCheckFailedException")) {
      // "If a ConditionExpression evaluates to false, DynamoDB still consumes write capacity …
      // dependent on the size of the existing item (or a minimum of 1)".
      // Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html#write-operation-consumption
      units = writeUnits(before, undefined);
      state.largest = Math.max(state.largest, itemSize(before));
      state.known = { item: before };
    } else {
      return answer; // a validation error: nothing was written, nothing is charged
    }
    state.windowUnits += units;
    this.account(table, operation, { write: units });
    if (!result) return answer;
    return withConsumed(answer, result, asked, table, units);
  }

  /**
   * DynamoDB's answer when one partition key value takes more than a partition's throughput: the
   * SDKs retry it as throttling. On-demand tables answer with this message (as AWS SDK users report
   * it; the API reference documents the exception and `ThrottlingReasons`, not the wording).
   * Sources: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ThrottlingReason.html
   * https://docs.aws.amazon.com/botocore/latest/reference/services/dynamodb/client/exceptions/ProvisionedThroughputExceededException.html
   */
  private hotItemThrottle(table: string): Answer {
    return {
      status: 400,
      contentType: CONTENT_TYPE,
      body: JSON.stringify({
        __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        message:
          "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
        ThrottlingReasons: [
          {
            reason: "TableWriteKeyRangeThroughputExceeded",
            resource: `arn:aws:dynamodb:${this.region}:${this.accountId}:table/${table}`,
          },
        ],
      }),
    };
  }

  /** Query, Scan and the batch operations: dynalite's own figure (see README, "Capacity"). */
  private async dynaliteAccounted(
    req: IncomingMessage,
    operation: string,
    body: Record<string, unknown>,
  ): Promise<Answer> {
    const asked = body.ReturnConsumedCapacity;
    const answer = await this.call(
      req.headers,
      operation,
      JSON.stringify({ ...body, ReturnConsumedCapacity: "TOTAL" }),
    );
    // A batch writes items without their queue: what was known of them is no longer.
    if (operation === "BatchWriteItem") for (const state of this.items.values()) state.known = undefined;
    if (answer.status !== 200) return answer;
    const result = JSON.parse(answer.body) as Record<string, unknown>;
    const consumed = result.ConsumedCapacity as
      | { TableName?: string; CapacityUnits?: number }
      | { TableName?: string; CapacityUnits?: number }[]
      | undefined;
    const write = operation === "BatchWriteItem";
    for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      if (c.TableName)
        this.account(
          c.TableName,
          operation,
          write ? { write: c.CapacityUnits ?? 0 } : { read: c.CapacityUnits ?? 0 },
        );
    }
    if (asked === "TOTAL" || asked === "INDEXES") return answer;
    delete result.ConsumedCapacity;
    return reply(answer.status, result);
  }

  private itemState(table: string, key: Item): ItemState {
    const id = `${table}\u0000${JSON.stringify(key)}`;
    let state = this.items.get(id);
    if (!state) {
      state = { tail: Promise.resolve(), window: 0, windowUnits: 0, peak: 0, largest: 0, key, table };
      this.items.set(id, state);
    }
    return state;
  }

  private forgetTable(table: string): void {
    this.keySchemas.delete(table);
    for (const [id, state] of this.items) if (state.table === table) this.items.delete(id);
  }

  private async keySchema(req: IncomingMessage, table: string): Promise<string[] | undefined> {
    const known = this.keySchemas.get(table);
    if (known) return known;
    const answer = await this.call(req.headers, "DescribeTable", JSON.stringify({ TableName: table }));
    if (answer.status !== 200) return undefined;
    const description = JSON.parse(answer.body) as { Table?: { KeySchema?: { AttributeName: string }[] } };
    const names = description.Table?.KeySchema?.map((k) => k.AttributeName);
    if (names) this.keySchemas.set(table, names);
    return names;
  }

  private async readItem(req: IncomingMessage, table: string, key: Item): Promise<Item | undefined> {
    const answer = await this.call(
      req.headers,
      "GetItem",
      JSON.stringify({ TableName: table, Key: key, ConsistentRead: true }),
    );
    return answer.status === 200 ? (JSON.parse(answer.body) as { Item?: Item }).Item : undefined;
  }

  /** One request to dynalite's listener, in-process, with no socket: its answer in hand. */
  private call(headers: IncomingMessage["headers"], operation: string, body: string): Promise<Answer> {
    return new Promise((resolve) => {
      const fakeReq = Object.assign(new EventEmitter(), {
        method: "POST",
        url: "/",
        headers: {
          ...headers,
          "content-type": CONTENT_TYPE,
          "x-amz-target": `DynamoDB_20120810.${operation}`,
          // The emulator accepts any signature, dynalite insists one is present: give unsigned
          // requests (curl) a placeholder so both agree.
          authorization:
            headers.authorization ??
            "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
          "x-amz-date": headers["x-amz-date"] ?? "20200101T000000Z",
        },
      });
      let status = 200;
      let contentType = CONTENT_TYPE;
      const fakeRes = {
        contentType: CONTENT_TYPE,
        set statusCode(code: number) {
          status = code;
        },
        get statusCode() {
          return status;
        },
        setHeader(name: string, value: unknown) {
          if (name.toLowerCase() === "content-type") contentType = String(value);
        },
        end(chunk?: string | Buffer) {
          resolve({ status, contentType, body: chunk === undefined ? "" : String(chunk) });
        },
      };
      this.dynalite(fakeReq as unknown as IncomingMessage, fakeRes as unknown as ServerResponse);
      fakeReq.emit("data", Buffer.from(body, "utf8"));
      fakeReq.emit("end");
    });
  }
}

/** The caller gets `ConsumedCapacity` only if it asked, as from DynamoDB. */
function withConsumed(
  answer: Answer,
  result: Record<string, unknown>,
  asked: unknown,
  table: string,
  units: number,
): Answer {
  delete result.ConsumedCapacity;
  if (asked === "TOTAL" || asked === "INDEXES") {
    result.ConsumedCapacity = {
      TableName: table,
      CapacityUnits: units,
      ...(asked === "INDEXES" && { Table: { CapacityUnits: units } }),
    };
  }
  return reply(answer.status, result);
}

function reply(status: number, body: unknown): Answer {
  return { status, contentType: CONTENT_TYPE, body: JSON.stringify(body) };
}

function send(res: ServerResponse, answer: Answer): void {
  res.statusCode = answer.status;
  res.setHeader("Content-Type", answer.contentType);
  // The SDKs check DynamoDB's CRC32 of the body: recomputed, since the body may have changed.
  res.setHeader("x-amz-crc32", crc32(answer.body));
  res.setHeader("Content-Length", Buffer.byteLength(answer.body));
  res.end(answer.body);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// Operations whose throttling DynamoDB reports as ProvisionedThroughputExceededException; control
// plane calls report ThrottlingException.
// Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
const DATA_PLANE = new Set([
  "GetItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "Query",
  "Scan",
  "BatchGetItem",
  "BatchWriteItem",
  "TransactGetItems",
  "TransactWriteItems",
]);

/** The body DynamoDB answers with for an injected throttle or server error. */
export function dynamoDbFailureBody(operation: string, failure: { kind: string }): Record<string, string> {
  if (failure.kind === "throttle") {
    return DATA_PLANE.has(operation)
      ? {
          __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
          message:
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        }
      : {
          __type: "com.amazon.coral.availability#ThrottlingException",
          message: "Rate of requests exceeds the allowed throughput.",
        };
  }
  return { __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "Internal server error" };
}
