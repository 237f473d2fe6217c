import { randomBytes } from "node:crypto";
import type { ParameterRecord, ParameterVersion, SsmState } from "./ssm-state";
import { SsmError, validationError } from "./ssm-error";
import {
  type Body,
  epochSeconds,
  paginate,
  readBoolean,
  readEnum,
  readInteger,
  readList,
  readObject,
  readString,
  readStringList,
  readTags,
} from "./request-fields";

// Sources for the rules in this file (Parameter Store part of the SSM API reference); "PUT" and
// "GET" in the comments below refer to these two pages:
//   PUT: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
//   GET: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html

const TYPES = ["String", "StringList", "SecureString"] as const;
const TIERS = ["Standard", "Advanced", "Intelligent-Tiering"] as const;
// Source: https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html (DataType values)
const DATA_TYPES = ["text", "aws:ec2:image", "aws:ssm:integration"];
// "If you don't specify a key ID, the system uses the default key associated with your account" (PUT, KeyId).
const DEFAULT_KEY_ID = "alias/aws/ssm";
// Standard parameters hold up to 4 KB, advanced ones up to 8 KB (PUT, Value and Tier).
const STANDARD_MAX_BYTES = 4096;
const ADVANCED_MAX_BYTES = 8192;
// Parameter Store keeps the 100 most recent versions of a parameter.
// Source: https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html
const MAX_VERSIONS = 100;
// "Parameter hierarchies are limited to a maximum depth of fifteen levels." (PUT, Name)
const MAX_DEPTH = 15;

function arnPrefix(state: SsmState): string {
  return `arn:aws:ssm:${state.region}:${state.accountId}:parameter`;
}

function arnOf(state: SsmState, name: string): string {
  return `${arnPrefix(state)}${name.startsWith("/") ? "" : "/"}${name}`;
}

/**
 * Naming constraints, all from PUT (Name): case sensitive; only a-zA-Z0-9_.- and "/" for
 * hierarchies; a hierarchical name starts with "/"; no spaces (leading/trailing ones are
 * removed); not prefixed with "aws" or "ssm" (case-insensitive); at most 15 levels; at most
 * 1011 characters including the ARN prefix that precedes the name.
 */
function validateNewName(state: SsmState, raw: string): string {
  const name = raw.trim();
  if (/\s/.test(name)) throw new SsmError("ValidationException", "Parameter name: can't contain spaces.");
  if (!/^[a-zA-Z0-9_.\-/]+$/.test(name)) {
    throw new SsmError("ValidationException", "Parameter name: only a-zA-Z0-9_.- and / are allowed.");
  }
  if (name.includes("/") && (!name.startsWith("/") || name.endsWith("/") || name.includes("//"))) {
    throw new SsmError(
      "ValidationException",
      'Parameter name must be a fully qualified name: a hierarchy starts with "/" and has no empty level.',
    );
  }
  const levels = name.split("/").filter(Boolean);
  if (/^(aws|ssm)/i.test(levels[0] ?? "")) {
    throw new SsmError(
      "ValidationException",
      'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).',
    );
  }
  if (levels.length > MAX_DEPTH) {
    throw new SsmError(
      "HierarchyLevelLimitExceededException",
      `A hierarchy can have a maximum of ${MAX_DEPTH} levels.`,
    );
  }
  if (arnOf(state, name).length > 1011)
    throw validationError("Name", "Member must have length less than or equal to 1011");
  return name;
}

/** A name as given to the Get and Delete operations: plain name or ARN, optional ":version" / ":label" selector. */
function parseReference(state: SsmState, raw: string): { name: string; selector?: string } {
  let rest = raw.trim();
  const prefix = `${arnPrefix(state)}/`;
  if (rest.startsWith("arn:")) {
    if (!rest.startsWith(prefix)) return { name: rest };
    rest = rest.slice(prefix.length);
    const colon = rest.indexOf(":");
    const bare = colon < 0 ? rest : rest.slice(0, colon);
    const name = state.parameters.has(`/${bare}`) ? `/${bare}` : bare;
    return colon < 0 ? { name } : { name, selector: rest.slice(colon + 1) };
  }
  const colon = rest.indexOf(":");
  return colon < 0 ? { name: rest } : { name: rest.slice(0, colon), selector: rest.slice(colon + 1) };
}

function notFound(name: string): SsmError {
  return new SsmError("ParameterNotFound", `Parameter ${name} not found.`);
}

/** Resolves a reference to one version; GET documents ParameterNotFound and ParameterVersionNotFound. */
function resolve(
  state: SsmState,
  raw: string,
): { parameter: ParameterRecord; version: ParameterVersion; selector?: string } {
  const { name, selector } = parseReference(state, raw);
  const parameter = state.parameters.get(name);
  if (!parameter) throw notFound(name);
  const latest = parameter.versions[parameter.versions.length - 1] as ParameterVersion;
  if (selector === undefined) return { parameter, version: latest };
  // Labels (LabelParameterVersion) aren't emulated, so a label selector never resolves.
  const version = /^\d+$/.test(selector)
    ? parameter.versions.find((v) => v.version === Number(selector))
    : undefined;
  if (!version) {
    throw new SsmError(
      "ParameterVersionNotFound",
      `Systems Manager could not find version ${selector} of ${name}.`,
    );
  }
  return { parameter, version, selector: `:${selector}` };
}

/**
 * The Parameter shape; a SecureString read without WithDecryption returns the stored
 * ciphertext blob, never the plaintext (GET, WithDecryption).
 * Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Parameter.html
 */
function toWire(
  state: SsmState,
  parameter: ParameterRecord,
  version: ParameterVersion,
  withDecryption: boolean,
  selector?: string,
): Body {
  const value =
    version.type === "SecureString" && !withDecryption ? (version.ciphertext as string) : version.value;
  return {
    Name: parameter.name,
    Type: version.type,
    Value: value,
    Version: version.version,
    ...(selector !== undefined ? { Selector: selector } : {}),
    LastModifiedDate: epochSeconds(version.lastModifiedDate),
    ARN: arnOf(state, parameter.name),
    DataType: version.dataType,
  };
}

// A KMS ciphertext blob looks like base64 of a versioned envelope ("AQICAH…"); ours holds random
// bytes only, so the plaintext can't be recovered from it.
function fakeCiphertext(plaintext: string): string {
  const envelope = Buffer.from([0x01, 0x02, 0x02, 0x00, 0x78]);
  return Buffer.concat([envelope, randomBytes(Buffer.byteLength(plaintext, "utf8") + 160)]).toString(
    "base64",
  );
}

/** Source: PUT */
export function putParameter(state: SsmState, body: Body): Body {
  const name = validateNewName(
    state,
    readString(body, "Name", { required: true, min: 1, max: 2048 }) as string,
  );
  const value = readString(body, "Value", { required: true, min: 1, sensitive: true }) as string;
  const requestedType = readEnum(body, "Type", TYPES);
  const description = readString(body, "Description", { max: 1024 });
  const keyId = readString(body, "KeyId", { min: 1, max: 256, pattern: /^([a-zA-Z0-9:/_-]+)$/ });
  const overwrite = readBoolean(body, "Overwrite") ?? false;
  const allowedPattern = readString(body, "AllowedPattern", { max: 1024 });
  const tags = readTags(body, "Tags");
  const requestedTier = readEnum(body, "Tier", TIERS);
  readString(body, "Policies", { min: 1, max: 4096 });
  const dataType = readString(body, "DataType", { max: 128 }) ?? "text";

  const existing = state.parameters.get(name);
  const previous = existing?.versions[existing.versions.length - 1];
  if (existing && !overwrite) {
    throw new SsmError(
      "ParameterAlreadyExists",
      "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
    );
  }
  // "You must specify a parameter type when creating a parameter." (PUT, Type)
  const type = requestedType ?? previous?.type;
  if (!type)
    throw new SsmError("ValidationException", "A parameter type is required when you create a parameter.");
  if (keyId !== undefined && type !== "SecureString") {
    throw new SsmError("ValidationException", "KeyId is required for SecureString type parameter only.");
  }
  // Tags are set at creation; later changes go through AddTagsToResource (PUT, Tags).
  if (tags && tags.length > 0 && overwrite) {
    throw new SsmError(
      "ValidationException",
      "Invalid request: tags and overwrite can't be used together. To update tags for an existing parameter, use AddTagsToResource or RemoveTagsFromResource.",
    );
  }
  if (!DATA_TYPES.includes(dataType)) {
    throw new SsmError(
      "ValidationException",
      `The following data type is not supported: ${dataType} (valid: ${DATA_TYPES.join(", ")}).`,
    );
  }
  // "You can't include values wrapped in double brackets {{}}" (PUT, Value).
  if (/\{\{.*\}\}/s.test(value)) {
    throw new SsmError("ValidationException", "Parameter value can't reference other parameters ({{…}}).");
  }
  if (allowedPattern !== undefined) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(allowedPattern);
    } catch {
      throw new SsmError(
        "InvalidAllowedPatternException",
        "The request doesn't meet the regular expression requirement.",
      );
    }
    // The value is never echoed: it may be a secret.
    if (!pattern.test(value)) {
      throw new SsmError(
        "ParameterPatternMismatchException",
        `Parameter value failed to satisfy constraint specified by AllowedPattern: ${allowedPattern}`,
      );
    }
  }

  // Tier: an advanced parameter can't go back to standard; Intelligent-Tiering picks standard
  // unless the value needs advanced; no tier keeps the current one (PUT, Tier).
  const bytes = Buffer.byteLength(value, "utf8");
  let tier: "Standard" | "Advanced";
  if (requestedTier === "Intelligent-Tiering")
    tier = bytes > STANDARD_MAX_BYTES || previous?.tier === "Advanced" ? "Advanced" : "Standard";
  else tier = requestedTier ?? previous?.tier ?? "Standard";
  if (previous?.tier === "Advanced" && tier === "Standard") {
    throw new SsmError(
      "ValidationException",
      "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier.",
    );
  }
  const limit = tier === "Advanced" ? ADVANCED_MAX_BYTES : STANDARD_MAX_BYTES;
  if (bytes > limit) {
    throw new SsmError(
      "ValidationException",
      `${tier} tier parameters support a maximum parameter value of ${limit} characters.`,
    );
  }

  // Only a new standard parameter counts against the quota; a new version of an existing one does
  // not. ParameterLimitExceeded: "You have exceeded the number of parameters for this AWS
  // account. Delete one or more parameters and try again." (PUT, Errors; quota in ssm-state.ts)
  if (!existing && tier === "Standard" && state.standardParameterCount() >= state.standardParameterQuota) {
    throw new SsmError(
      "ParameterLimitExceeded",
      "You have exceeded the number of parameters for this AWS account. Delete one or more parameters and try again.",
    );
  }

  const version: ParameterVersion = {
    version: (previous?.version ?? 0) + 1,
    type,
    value,
    tier,
    dataType,
    lastModifiedDate: state.clock.now(),
    ...(type === "SecureString" ? { keyId: keyId ?? DEFAULT_KEY_ID, ciphertext: fakeCiphertext(value) } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(allowedPattern !== undefined ? { allowedPattern } : {}),
  };
  if (existing) {
    existing.versions.push(version);
    if (existing.versions.length > MAX_VERSIONS) existing.versions.shift();
  } else {
    state.parameters.set(name, { name, versions: [version], tags: tags ?? [] });
  }
  return { Version: version.version, Tier: tier };
}

/** Source: GET */
export function getParameter(state: SsmState, body: Body): Body {
  const name = readString(body, "Name", { required: true, min: 1, max: 2048 }) as string;
  const withDecryption = readBoolean(body, "WithDecryption") ?? false;
  const { parameter, version, selector } = resolve(state, name);
  return { Parameter: toWire(state, parameter, version, withDecryption, selector) };
}

/**
 * Names 1–10; unknown names come back in InvalidParameters instead of failing the call.
 * Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameters.html
 */
export function getParameters(state: SsmState, body: Body): Body {
  const names = readStringList(body, "Names", { required: true, min: 1, max: 10 }) as string[];
  const withDecryption = readBoolean(body, "WithDecryption") ?? false;
  const parameters: Body[] = [];
  const invalid: string[] = [];
  for (const name of names) {
    try {
      const { parameter, version, selector } = resolve(state, name);
      parameters.push(toWire(state, parameter, version, withDecryption, selector));
    } catch (error) {
      if (!(error instanceof SsmError)) throw error;
      invalid.push(name);
    }
  }
  return { Parameters: parameters, InvalidParameters: invalid };
}

interface StringFilter {
  key: string;
  option: string;
  values: string[];
}

function readStringFilters(body: Body): StringFilter[] {
  return (readList(body, "ParameterFilters") ?? []).map((raw) => {
    const filter = readObject(raw, "ParameterFilters");
    const key = readString(filter, "Key", { required: true, min: 1, max: 132 }) as string;
    return {
      key,
      option: readString(filter, "Option", { min: 1, max: 10 }) ?? (key === "Path" ? "OneLevel" : "Equals"),
      values: readStringList(filter, "Values", { min: 1, max: 50 }) ?? [],
    };
  });
}

function textMatches(option: string, actual: string | undefined, values: string[]): boolean {
  if (actual === undefined) return false;
  if (option === "BeginsWith") return values.some((v) => actual.startsWith(v));
  if (option === "Contains") return values.some((v) => actual.includes(v));
  return values.includes(actual);
}

function isChildOf(name: string, path: string, recursive: boolean): boolean {
  const prefix = path === "/" ? "/" : `${path.replace(/\/+$/, "")}/`;
  if (!name.startsWith(prefix)) return false;
  return recursive || !name.slice(prefix.length).includes("/");
}

/**
 * Filter keys and options per API_ParameterStringFilter.html: DescribeParameters accepts every key
 * but Label, GetParametersByPath only Type, KeyId and Label; options are Equals and BeginsWith,
 * plus Contains for Name, and Recursive/OneLevel for Path.
 */
function filterPredicate(
  filter: StringFilter,
  operation: "describe" | "by-path",
): (p: ParameterRecord) => boolean {
  const { key, option, values } = filter;
  const byPathKeys = ["Type", "KeyId", "Label"];
  const describeKeys = ["Name", "Type", "KeyId", "Path", "Tier", "DataType"];
  const isTag = key.startsWith("tag:") && key.length > 4;
  const keyAllowed = operation === "by-path" ? byPathKeys.includes(key) : isTag || describeKeys.includes(key);
  if (!keyAllowed) throw new SsmError("InvalidFilterKey", `The specified key isn't valid: ${key}`);
  const options =
    key === "Path"
      ? ["Recursive", "OneLevel"]
      : key === "Name"
        ? ["Equals", "BeginsWith", "Contains"]
        : key === "Label"
          ? ["Equals"]
          : ["Equals", "BeginsWith"];
  if (!options.includes(option)) {
    throw new SsmError(
      "InvalidFilterOption",
      `The filter option ${option} isn't valid for key ${key}. Valid options: ${options.join(", ")}.`,
    );
  }
  const latest = (p: ParameterRecord) => p.versions[p.versions.length - 1] as ParameterVersion;
  if (isTag) {
    const tagKey = key.slice(4);
    return (p) =>
      p.tags.some((t) => t.Key === tagKey && (values.length === 0 || textMatches(option, t.Value, values)));
  }
  switch (key) {
    case "Name":
      return (p) => textMatches(option, p.name, values);
    case "Path":
      return (p) => values.some((v) => isChildOf(p.name, v, option === "Recursive"));
    case "Type":
      return (p) => textMatches(option, latest(p).type, values);
    case "KeyId":
      return (p) => textMatches(option, latest(p).keyId, values);
    case "Tier":
      return (p) => textMatches(option, latest(p).tier, values);
    case "DataType":
      return (p) => textMatches(option, latest(p).dataType, values);
    default:
      // Label: labels aren't emulated, so nothing carries one.
      return () => false;
  }
}

/**
 * Path starts with "/" and has at most 15 levels; Recursive also returns deeper levels;
 * MaxResults 1–10.
 * Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
 */
export function getParametersByPath(state: SsmState, body: Body): Body {
  const path = (readString(body, "Path", { required: true, min: 1, max: 2048 }) as string).trim();
  const recursive = readBoolean(body, "Recursive") ?? false;
  const withDecryption = readBoolean(body, "WithDecryption") ?? false;
  const maxResults = readInteger(body, "MaxResults", { min: 1, max: 10 }) ?? 10;
  const nextToken = readString(body, "NextToken");
  if (!path.startsWith("/") || /\s/.test(path)) {
    throw new SsmError(
      "ValidationException",
      'The parameter path must begin with a forward slash "/" and can\'t contain spaces.',
    );
  }
  if (path.split("/").filter(Boolean).length > MAX_DEPTH) {
    throw new SsmError("ValidationException", `A parameter path can have a maximum of ${MAX_DEPTH} levels.`);
  }
  const predicates = readStringFilters(body).map((f) => filterPredicate(f, "by-path"));
  const matching = [...state.parameters.values()]
    .filter((p) => isChildOf(p.name, path, recursive) && predicates.every((test) => test(p)))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const { page, nextToken: next } = paginate(matching, (p) => p.name, nextToken, maxResults);
  return {
    Parameters: page.map((p) =>
      toWire(state, p, p.versions[p.versions.length - 1] as ParameterVersion, withDecryption),
    ),
    ...(next ? { NextToken: next } : {}),
  };
}

/** Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html */
export function deleteParameter(state: SsmState, body: Body): Body {
  const { name } = parseReference(
    state,
    readString(body, "Name", { required: true, min: 1, max: 2048 }) as string,
  );
  if (!state.parameters.delete(name)) throw notFound(name);
  return {};
}

/** Names 1–10. Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameters.html */
export function deleteParameters(state: SsmState, body: Body): Body {
  const names = readStringList(body, "Names", { required: true, min: 1, max: 10 }) as string[];
  const deleted: string[] = [];
  const invalid: string[] = [];
  for (const raw of names) {
    const { name } = parseReference(state, raw);
    (state.parameters.delete(name) ? deleted : invalid).push(raw);
  }
  return { DeletedParameters: deleted, InvalidParameters: invalid };
}

const LEGACY_FILTER_KEYS = ["Name", "Type", "KeyId"] as const;

/**
 * Metadata only (never a value). Filters (legacy) and ParameterFilters can't be combined;
 * MaxResults 1–50.
 * Sources: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html
 *          https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ParameterMetadata.html
 */
export function describeParameters(state: SsmState, body: Body): Body {
  const maxResults = readInteger(body, "MaxResults", { min: 1, max: 50 }) ?? 50;
  const nextToken = readString(body, "NextToken");
  const legacy = (readList(body, "Filters") ?? []).map((raw) => {
    const filter = readObject(raw, "Filters");
    const key = readEnum(filter, "Key", LEGACY_FILTER_KEYS, true) as string;
    return {
      key,
      option: "Equals",
      values: readStringList(filter, "Values", { required: true, min: 1, max: 50 }) as string[],
    };
  });
  const modern = readStringFilters(body);
  if (legacy.length > 0 && modern.length > 0) {
    throw new SsmError(
      "ValidationException",
      "You can use either Filters or ParameterFilters in a single request, not both.",
    );
  }
  const predicates = [...legacy, ...modern].map((f) => filterPredicate(f, "describe"));
  const matching = [...state.parameters.values()]
    .filter((p) => predicates.every((test) => test(p)))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const { page, nextToken: next } = paginate(matching, (p) => p.name, nextToken, maxResults);
  return {
    Parameters: page.map((p) => {
      const v = p.versions[p.versions.length - 1] as ParameterVersion;
      return {
        Name: p.name,
        ARN: arnOf(state, p.name),
        Type: v.type,
        ...(v.keyId !== undefined ? { KeyId: v.keyId } : {}),
        LastModifiedDate: epochSeconds(v.lastModifiedDate),
        LastModifiedUser: `arn:aws:iam::${state.accountId}:root`,
        ...(v.description !== undefined ? { Description: v.description } : {}),
        ...(v.allowedPattern !== undefined ? { AllowedPattern: v.allowedPattern } : {}),
        Version: v.version,
        Tier: v.tier,
        Policies: [],
        DataType: v.dataType,
      };
    }),
    ...(next ? { NextToken: next } : {}),
  };
}
