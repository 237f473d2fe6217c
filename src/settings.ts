import { readFileSync } from "node:fs";
import { parse as parseJsonc, printParseErrorCode, type ParseError } from "jsonc-parser";
import { z } from "zod";
import { DEFAULT_KMS_KEY_ID, DEFAULT_PARAMETER_PREFIX, isValidParameterPrefix } from "./aws/naming";
import { ConfigError } from "./core/errors";
import { checkEksRegions, parsePools, type PoolConfig } from "./core/pool-config";
import type { NodeServerLimits } from "./http/node-server";
import { parseAddressList } from "./http/source-address";
import { RETIRED, isPoolsPath, setting } from "./settings-schema";

/** A number from the environment, its range and default from the schema (src/settings-schema.ts). */
function numberOf(key: string) {
  const s = setting(key);
  const n = s.type === "integer" ? z.coerce.number().int() : z.coerce.number();
  return n
    .min(s.min!)
    .max(s.max!)
    .default(s.default as number);
}

/** A string from the environment within the schema's length and pattern, if it gives them. */
function stringOf(key: string) {
  const s = setting(key);
  let text = z.string().min(s.min ?? 1);
  if (s.max !== undefined) text = text.max(s.max);
  if (s.pattern !== undefined) text = text.regex(new RegExp(s.pattern));
  return text;
}

/**
 * The one place that reads the environment. Every variable the broker understands starts with
 * BROKER_; an unknown BROKER_* variable is a startup error, so a typo fails at once instead of
 * silently falling back to a default. The names are src/settings-schema.ts's (a test compares).
 */
const envSchema = z.strictObject({
  BROKER_TABLE_NAME: stringOf("TableName"),
  BROKER_PARAMETER_PREFIX: z
    .string()
    .refine(isValidParameterPrefix, "an absolute Parameter Store path such as /activation-broker")
    .default(DEFAULT_PARAMETER_PREFIX),
  BROKER_KMS_KEY_ID: z.string().min(1).default(DEFAULT_KMS_KEY_ID),
  BROKER_DEFAULT_IAM_ROLE: stringOf("DefaultIamRole").optional(),
  /** Role of EKS Hybrid Nodes pools that name none (docs/eks.md). */
  BROKER_HYBRID_NODES_ROLE: stringOf("HybridNodesRole").optional(),
  /** The pools document, or the path of a file that holds it. */
  BROKER_POOLS: z.string().optional(),
  BROKER_DEPLOYMENT: stringOf("Deployment").optional(),
  BROKER_LEASE_SECONDS: numberOf("LeaseSeconds"),
  BROKER_ROTATION_WAIT_SECONDS: numberOf("RotationWaitSeconds"),
  BROKER_PUBLIC_URL: z.url().optional(),
  // Node-server hygiene (standalone and local mode; the Lambda ignores these): see
  // docs/threat-model.md. The headers, request and idle timeouts are fixed (NODE_SERVER_TIMEOUTS).
  BROKER_KEEP_ALIVE_TIMEOUT_SECONDS: numberOf("KeepAliveTimeoutSeconds"),
  /** Connections in all; one source address may hold a tenth of them. */
  BROKER_MAX_CONNECTIONS: numberOf("MaxConnections"),
  /** Addresses or CIDR blocks of proxies whose X-Forwarded-* headers are believed. */
  BROKER_TRUSTED_PROXIES: z
    .string()
    .refine((v) => parseAddressList(v) !== undefined, "comma-separated IP addresses or CIDR blocks")
    .optional(),
  /** Per-source token bucket of the Node server: its refill rate (0 turns it off). */
  BROKER_RATE_LIMIT_PER_SECOND: numberOf("RateLimitPerSecond"),
  /** Slot-theft check of every pool's current activation in long-running processes; 0 = off. */
  BROKER_RECONCILE_INTERVAL_SECONDS: numberOf("ReconcileIntervalSeconds"),
  /** VPC endpoints associated with the private API, whose alias names are the API's own too. */
  BROKER_VPC_ENDPOINT_FOR_API_GATEWAY: z
    .string()
    .transform((v) => v.split(",").filter(Boolean))
    .pipe(
      z.array(
        z
          .string()
          .regex(
            new RegExp(setting("VpcEndpointForApiGateway").pattern!),
            "VPC endpoint ids (vpce-…), comma-separated",
          ),
      ),
    )
    .optional(),
});

/**
 * What the Node server fixes rather than asks: a client has 10 s for its headers and 30 s for its
 * whole request; a new socket that sends nothing is closed after 5 s (shorter than the headers
 * timeout). A rate limit bursts ten seconds' worth, over the 10,000 most recently seen sources.
 */
const NODE_SERVER_TIMEOUTS = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, idleTimeoutMs: 5_000 };
const RATE_BURST_SECONDS = 10;
/** One source address may hold a tenth of the connections; a trusted proxy's count only in the total. */
const PER_SOURCE_SHARE = 10;
const RATE_LIMIT_SOURCES = 10_000;

export type BrokerEnv = z.input<typeof envSchema>;

/** Every variable the broker reads: docs/configuration.md documents each (test/settings.test.ts). */
export const BROKER_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

export interface Settings {
  readonly tableName: string;
  readonly parameterPrefix: string;
  readonly kmsKeyId: string;
  readonly region: string;
  readonly deployment: string;
  readonly leaseMs: number;
  readonly rotationWaitMs: number;
  readonly publicUrl?: string;
  readonly server: NodeServerLimits;
  /** 0 turns the periodic slot-theft check off. */
  readonly reconcileIntervalMs: number;
  /** Endpoints through which the API's alias URLs (`<api>-<vpce>.execute-api…`) reach it. */
  readonly vpcEndpointIds: readonly string[];
  readonly pools: ReadonlyMap<string, PoolConfig>;
}

/**
 * What the runtime and the AWS tooling set, as opposed to the operator's BROKER_* settings: read
 * here too, so that this file stays the one place that reads the environment.
 */
export interface RuntimeEnvironment {
  /** Set by the Lambda runtime: in a function, standby refills go to a self-invocation. */
  readonly lambdaFunctionName?: string;
  /** Powertools' own variable, honoured by the readable terminal logger too. */
  readonly logLevel?: string;
  /** The AWS CLI's and SDK's endpoint override, named in the admin CLI's "cannot reach" lines. */
  readonly awsEndpointUrl?: string;
}

export function readRuntimeEnvironment(env: NodeJS.ProcessEnv = process.env): RuntimeEnvironment {
  const set = (name: string) => (env[name] === undefined || env[name] === "" ? undefined : env[name]);
  const values = {
    lambdaFunctionName: set("AWS_LAMBDA_FUNCTION_NAME"),
    logLevel: set("POWERTOOLS_LOG_LEVEL"),
    awsEndpointUrl: set("AWS_ENDPOINT_URL"),
  };
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

/**
 * The environment itself, for the modules that take it as a value and pick from it: the admin
 * CLI's deployment lookup (BROKER_* overrides, AWS_REGION, EMULATOR_PORT) and local mode's overlay.
 */
export function processEnvironment(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

/** Region names as AWS spells them: us-east-1, eu-central-2, us-gov-west-1, cn-north-1. */
const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/**
 * Reads and validates the environment. Every entry point comes through here — the Lambda,
 * `activation-broker serve` and `npm start` (which first fills in what the emulated AWS
 * provides) — so a bad or unknown variable fails the same way, with the same message.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const own = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("BROKER_")));
  const parsed = envSchema.safeParse(own, { reportInput: true });
  if (!parsed.success)
    throw new ConfigError(`Invalid environment: ${formatEnvIssues(parsed.error.issues, own)}`);
  const e = parsed.data;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigError("Invalid environment: AWS_REGION is required (e.g. eu-west-1)");
  if (!REGION_PATTERN.test(region)) {
    const name = env.AWS_REGION ? "AWS_REGION" : "AWS_DEFAULT_REGION";
    throw new ConfigError(
      `Invalid environment: ${name} must be a Region name such as eu-west-1, got '${region}'`,
    );
  }
  const pools = parsePools(readPoolsDocument(e.BROKER_POOLS), {
    iamRole: e.BROKER_DEFAULT_IAM_ROLE,
    eksIamRole: e.BROKER_HYBRID_NODES_ROLE,
  });
  checkEksRegions(pools, region);
  return {
    tableName: e.BROKER_TABLE_NAME,
    parameterPrefix: e.BROKER_PARAMETER_PREFIX,
    kmsKeyId: e.BROKER_KMS_KEY_ID,
    region,
    deployment: e.BROKER_DEPLOYMENT ?? e.BROKER_TABLE_NAME,
    leaseMs: e.BROKER_LEASE_SECONDS * 1000,
    rotationWaitMs: Math.round(e.BROKER_ROTATION_WAIT_SECONDS * 1000),
    ...(e.BROKER_PUBLIC_URL !== undefined && { publicUrl: e.BROKER_PUBLIC_URL.replace(/\/+$/, "") }),
    server: {
      ...NODE_SERVER_TIMEOUTS,
      keepAliveTimeoutMs: Math.round(e.BROKER_KEEP_ALIVE_TIMEOUT_SECONDS * 1000),
      maxConnections: e.BROKER_MAX_CONNECTIONS,
      maxConnectionsPerSource: Math.ceil(e.BROKER_MAX_CONNECTIONS / PER_SOURCE_SHARE),
      trustedProxies: parseAddressList(e.BROKER_TRUSTED_PROXIES ?? "") ?? [],
      ratePerSecond: e.BROKER_RATE_LIMIT_PER_SECOND,
      rateBurst: Math.max(1, Math.ceil(e.BROKER_RATE_LIMIT_PER_SECOND * RATE_BURST_SECONDS)),
      maxTrackedSources: RATE_LIMIT_SOURCES,
    },
    reconcileIntervalMs: e.BROKER_RECONCILE_INTERVAL_SECONDS * 1000,
    vpcEndpointIds: e.BROKER_VPC_ENDPOINT_FOR_API_GATEWAY ?? [],
    pools,
  };
}

function readPoolsDocument(value: string | undefined): unknown {
  if (!value) return {};
  const [source, text] = isPoolsPath(value) ? [value, readConfigFile(value)] : ["BROKER_POOLS", value];
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`Invalid pool configuration: ${source} is not valid JSON${whereJsonBreaks(text)}`, {
      cause: error,
    });
  }
}

/**
 * " at line L, column C: <what>" for the first syntax error. JSON.parse names a position for
 * some errors and not for others; jsonc-parser (in strict JSON mode) always does.
 */
function whereJsonBreaks(text: string): string {
  const errors: ParseError[] = [];
  parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  const first = errors[0];
  if (!first) return "";
  const before = text.slice(0, first.offset).split("\n");
  const line = before.length;
  const column = before[before.length - 1]!.length + 1;
  return ` at line ${line}, column ${column} (${describeJsonError(printParseErrorCode(first.error))})`;
}

function describeJsonError(code: string): string {
  // "PropertyNameExpected" → "property name expected"
  return code.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

/** Why a file cannot be read, in words: the errno code alone means nothing to most readers. */
const READ_FAILURES: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  EACCES: "permission denied (the broker's user may not read it)",
  EPERM: "permission denied (the broker's user may not read it)",
  EISDIR: "it is a directory, not a file",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many symbolic links in the path",
  ENAMETOOLONG: "the path is too long",
};

function readConfigFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const why =
      (typeof code === "string" && READ_FAILURES[code]) ||
      (error instanceof Error ? error.message : String(error));
    throw new ConfigError(`Cannot read the pool configuration file ${file}: ${why}`, { cause: error });
  }
}

/** Messages for the environment: "is required", "unknown variable (did you mean …?)". */
function formatEnvIssues(
  issues: readonly z.core.$ZodIssue[],
  env: Readonly<Record<string, string | undefined>>,
): string {
  const known = BROKER_VARIABLES;
  return issues
    .flatMap((issue) => {
      if (issue.code === "unrecognized_keys") {
        return issue.keys.map((key) => {
          if (RETIRED[key]) return `${key} is no longer a setting: ${RETIRED[key]} (CHANGELOG.md)`;
          const near = closest(key, known);
          return `${key} is not a setting of the broker${near ? ` (did you mean ${near}?)` : ""}`;
        });
      }
      const name = issue.path.map(String).join(".");
      if (issue.code === "invalid_type" && issue.input === undefined) return [`${name} is required`];
      // z.coerce turns "abc" into NaN, and zod then reports "received NaN": say what was set.
      if (issue.code === "invalid_type" && issue.expected === "number") {
        return [`${name} must be a number, got '${String(env[name])}'`];
      }
      return [`${name}: ${issue.message}`];
    })
    .join("; ");
}

/**
 * The known name `name` is the start of (BROKER_LEASE for BROKER_LEASE_SECONDS: the
 * unit left off), else the one within two edits of it, if any: enough to catch a typo.
 */
function closest(name: string, candidates: readonly string[]): string | undefined {
  const extended = candidates.find((candidate) => candidate.startsWith(`${name}_`));
  if (extended) return extended;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The port a server listens on: `flag` (a command-line value) first, then the environment
 * variable `name` (PORT, EMULATOR_PORT), then `fallback`. 0 asks the system for a free port.
 */
export function readPort(
  name: string,
  fallback: number,
  env: NodeJS.ProcessEnv = process.env,
  flag?: { readonly name: string; readonly value: string | undefined },
): number {
  const [source, raw] =
    flag?.value !== undefined ? [flag.name, flag.value] : [name, env[name] === "" ? undefined : env[name]];
  if (raw === undefined) return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) {
    throw new ConfigError(`${source} must be a port number (0-65535), got '${raw}'`);
  }
  return port;
}
