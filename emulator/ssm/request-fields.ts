import { SsmError, validationError } from "./ssm-error";

/** A parsed JSON 1.1 request body. */
export type Body = Record<string, unknown>;

export interface Tag {
  Key: string;
  Value: string;
}

interface StringRules {
  required?: boolean;
  min?: number;
  max?: number;
  pattern?: RegExp;
  /** Never echo the value in an error (codes, parameter values). */
  sensitive?: boolean;
}

// A JSON type mismatch is a deserialisation failure in AWS, reported before any validation.
function serializationError(member: string): SsmError {
  return new SsmError("SerializationException", `Unexpected type for member '${member}'`);
}

export function readString(body: Body, member: string, rules: StringRules = {}): string | undefined {
  const value = body[member];
  if (value === undefined || value === null) {
    if (rules.required) throw validationError(member, "Member must not be null");
    return undefined;
  }
  if (typeof value !== "string") throw serializationError(member);
  const shown = rules.sensitive ? undefined : value;
  if (rules.min !== undefined && value.length < rules.min) {
    throw validationError(member, `Member must have length greater than or equal to ${rules.min}`, shown);
  }
  if (rules.max !== undefined && value.length > rules.max) {
    throw validationError(member, `Member must have length less than or equal to ${rules.max}`, shown);
  }
  if (rules.pattern && !rules.pattern.test(value)) {
    throw validationError(
      member,
      `Member must satisfy regular expression pattern: ${rules.pattern.source}`,
      shown,
    );
  }
  return value;
}

export function readInteger(
  body: Body,
  member: string,
  rules: { min?: number; max?: number } = {},
): number | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value)) throw serializationError(member);
  if (rules.min !== undefined && value < rules.min) {
    throw validationError(member, `Member must have value greater than or equal to ${rules.min}`, value);
  }
  if (rules.max !== undefined && value > rules.max) {
    throw validationError(member, `Member must have value less than or equal to ${rules.max}`, value);
  }
  return value;
}

export function readBoolean(body: Body, member: string): boolean | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw serializationError(member);
  return value;
}

export function readEnum<T extends string>(
  body: Body,
  member: string,
  allowed: readonly T[],
  required = false,
): T | undefined {
  const value = readString(body, member, { required });
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw validationError(member, `Member must satisfy enum value set: [${allowed.join(", ")}]`, value);
  }
  return value as T;
}

export function readList(
  body: Body,
  member: string,
  rules: { required?: boolean; min?: number; max?: number } = {},
): unknown[] | undefined {
  const value = body[member];
  if (value === undefined || value === null) {
    if (rules.required) throw validationError(member, "Member must not be null");
    return undefined;
  }
  if (!Array.isArray(value)) throw serializationError(member);
  if (rules.min !== undefined && value.length < rules.min) {
    throw validationError(member, `Member must have length greater than or equal to ${rules.min}`);
  }
  if (rules.max !== undefined && value.length > rules.max) {
    throw validationError(member, `Member must have length less than or equal to ${rules.max}`);
  }
  return value;
}

export function readStringList(
  body: Body,
  member: string,
  rules: { required?: boolean; min?: number; max?: number } = {},
): string[] | undefined {
  const list = readList(body, member, rules);
  if (list === undefined) return undefined;
  if (!list.every((item) => typeof item === "string")) throw serializationError(member);
  return list as string[];
}

export function readObject(value: unknown, member: string): Body {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw serializationError(member);
  return value as Body;
}

// Tag shape: Key 1–128, Value 0–256, both restricted to letters, spaces, digits and _.:/=+-@
// Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html
const TAG_PATTERN = /^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$/u;

export function readTags(body: Body, member: string, required = false): Tag[] | undefined {
  // TagList holds at most 1000 entries (API_CreateActivation.html, API_AddTagsToResource.html).
  const list = readList(body, member, { required, max: 1000 });
  if (list === undefined) return undefined;
  return list.map((raw) => {
    const tag = readObject(raw, member);
    const Key = readString(tag, "Key", { required: true, min: 1, max: 128, pattern: TAG_PATTERN }) as string;
    const Value = readString(tag, "Value", {
      required: true,
      min: 0,
      max: 256,
      pattern: TAG_PATTERN,
    }) as string;
    return { Key, Value };
  });
}

/**
 * Timestamps in the JSON 1.1 protocol travel as epoch seconds (a JSON number, possibly
 * fractional); strings are accepted too so a hand-written curl body with an ISO date works.
 */
export function readTimestamp(body: Body, member: string): Date | undefined {
  const value = body[member];
  if (value === undefined || value === null) return undefined;
  let date: Date;
  if (typeof value === "number") date = new Date(value * 1000);
  else if (typeof value === "string")
    date = /^\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  else throw serializationError(member);
  if (Number.isNaN(date.getTime())) throw serializationError(member);
  return date;
}

/** Epoch seconds with millisecond precision, the way AWS JSON 1.1 services answer timestamps. */
export function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

/**
 * Pagination tokens are opaque to clients; here they carry the sort key of the last item served,
 * so deleting items between pages neither skips nor repeats the rest.
 */
export function encodeToken(after: string): string {
  return Buffer.from(JSON.stringify({ after }), "utf8").toString("base64");
}

export function decodeToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64").toString("utf8")) as { after?: unknown };
    if (typeof parsed.after === "string") return parsed.after;
  } catch {
    // fall through to the documented error
  }
  throw new SsmError("InvalidNextToken", "The specified token isn't valid.");
}

/** One page of `items` (already sorted by `key`) after the token's position. */
export function paginate<T>(
  items: readonly T[],
  key: (item: T) => string,
  token: string | undefined,
  maxResults: number,
): { page: T[]; nextToken?: string } {
  const after = decodeToken(token);
  const rest = after === undefined ? items : items.filter((item) => key(item) > after);
  const page = rest.slice(0, maxResults);
  if (rest.length > maxResults) return { page, nextToken: encodeToken(key(page[page.length - 1] as T)) };
  return { page };
}
