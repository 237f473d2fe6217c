/**
 * DynamoDB's capacity rules: how big an item is, and how many read or write units a request
 * consumes. Written from the DynamoDB Developer Guide (sources beside each rule), not from dynalite,
 * whose own figure counts a string's UTF-16 length and charges nothing for a failed condition.
 */

/** A DynamoDB attribute value in the wire format: `{"S": "…"}`, `{"N": "12"}`, `{"M": {…}}`… */
export type AttributeValue = Record<string, unknown>;
export type Item = Record<string, AttributeValue>;

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

/**
 * The size of an item: "the sum of the lengths of its attribute names and values" (names and
 * strings in UTF-8 bytes; numbers about 1 byte per two significant digits + 1; binary its raw
 * bytes; null and Boolean 1 byte; List and Map 3 bytes of overhead + 1 byte per element).
 * Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 */
export function itemSize(item: Item | undefined): number {
  if (!item) return 0;
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += utf8(name) + valueSize(value);
  return size;
}

function valueSize(value: AttributeValue): number {
  const [type, raw] = Object.entries(value)[0] ?? [];
  switch (type) {
    case "S":
      return utf8(raw as string);
    case "N":
      return numberSize(raw as string);
    case "B":
      return Buffer.from(raw as string, "base64").length;
    case "BOOL":
    case "NULL":
      return 1;
    case "SS":
      return (raw as string[]).reduce((sum, s) => sum + utf8(s), 0);
    case "NS":
      return (raw as string[]).reduce((sum, n) => sum + numberSize(n), 0);
    case "BS":
      return (raw as string[]).reduce((sum, b) => sum + Buffer.from(b, "base64").length, 0);
    case "L":
      // "An attribute of type List or Map requires 3 bytes of overhead … Each List or Map element
      // also requires 1 byte of overhead." (same page)
      return 3 + (raw as AttributeValue[]).reduce((sum, v) => sum + 1 + valueSize(v), 0);
    case "M":
      return (
        3 + Object.entries(raw as Item).reduce((sum, [name, v]) => sum + 1 + utf8(name) + valueSize(v), 0)
      );
    default:
      return 0;
  }
}

/**
 * "Numbers are variable length, with up to 38 significant digits. Leading and trailing zeroes are
 * trimmed. The size of a number is approximately … (1 byte per two significant digits) + (1 byte)."
 * Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 */
function numberSize(n: string): number {
  const digits = n
    .replace(/^[-+]/, "")
    .replace(/[eE].*$/, "")
    .replace(".", "");
  const significant = digits.replace(/^0+/, "").replace(/0+$/, "");
  return Math.ceil(Math.max(1, significant.length) / 2) + 1;
}

const KB = 1024;

/**
 * Write units for one item write: "one write request unit … for an item up to 1 KB"; larger items
 * take one more per started KB. A write that changes an existing item is charged on "the larger of
 * the two" item sizes, before and after (UpdateItem; PutItem replacing an item; DeleteItem on the
 * deleted item's size); a missing item still costs 1. A transactional write costs twice.
 * Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html#write-operation-consumption
 */
export function writeUnits(before: Item | undefined, after: Item | undefined, transactional = false): number {
  const bytes = Math.max(itemSize(before), itemSize(after));
  return Math.max(1, Math.ceil(bytes / KB)) * (transactional ? 2 : 1);
}

/**
 * Read units: "A strongly consistent read request of an item up to 4 KB requires one read unit",
 * "eventually consistent … one-half", "transactional … two"; sizes round up to the next 4 KB.
 * Reading an item that does not exist still consumes the minimum.
 * Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html#read-operation-consumption
 */
export function readUnits(bytes: number, consistency: "eventual" | "strong" | "transactional"): number {
  const blocks = Math.max(1, Math.ceil(bytes / (4 * KB)));
  return consistency === "eventual" ? blocks / 2 : consistency === "strong" ? blocks : blocks * 2;
}
