import { readFileSync } from "node:fs";
import { parse as parseJsonc, printParseErrorCode, type ParseError } from "jsonc-parser";
import { z } from "zod";
import { DEFAULT_KMS_KEY_ID, DEFAULT_PARAMETER_PREFIX, isValidParameterPrefix } from "./aws/naming";
import { ConfigError } from "./core/errors";
import { checkEksRegions, parsePools, type PoolConfig } from "./core/pool-config";
import type { NodeServerLimits } from "./http/node-server";
import { parseAddressList } from "./http/source-address";

/**
 * The one place that reads the environment. Every variable the broker understands starts with
 * BROKER_; an unknown BROKER_* variable is a startup error, so a typo fails at once instead of
 * silently falling back to a default.
 */
const envSchema = z.strictObject({
  BROKER_TABLE_NAME: z.string().min(3).max(255),
  BROKER_PARAMETER_PREFIX: z
    .string()
    .refine(isValidParameterPrefix, "an absolute Parameter Store path such as /activation-broker")
    .default(DEFAULT_PARAMETER_PREFIX),
  BROKER_KMS_KEY_ID: z.string().min(1).default(DEFAULT_KMS_KEY_ID),
  BROKER_DEFAULT_IAM_ROLE: z.string().min(1).max(64).optional(),
  /** Role of EKS Hybrid Nodes pools that name none (docs/eks.md). */
  BROKER_HYBRID_NODES_ROLE: z.string().min(1).max(64).optional(),
  BROKER_POOLS: z.string().optional(),
  BROKER_CONFIG_FILE: z.string().optional(),
  BROKER_DEPLOYMENT: z.string().min(1).max(256).optional(),
  BROKER_LEASE_SECONDS: z.coerce.number().int().min(5).max(900).default(30),
  BROKER_ROTATION_WAIT_MS: z.coerce.number().int().min(0).max(25_000).default(5000),
  BROKER_PUBLIC_URL: z.url().optional(),
  // Node-server hygiene (standalone and local mode; the Lambda ignores these): see
  // docs/threat-model.md. Idle sockets were never closed before; 20,000 of them filled the
  // process's file descriptors.
  BROKER_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
  BROKER_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  BROKER_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  BROKER_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  BROKER_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
  /** Connections one source address may hold; a trusted proxy's count only against the total. */
  BROKER_MAX_CONNECTIONS_PER_SOURCE: z.coerce.number().int().min(1).max(1_000_000).default(100),
  /** Addresses or CIDR blocks of proxies whose X-Forwarded-* headers are believed. */
  BROKER_TRUSTED_PROXIES: z
    .string()
    .refine((v) => parseAddressList(v) !== undefined, "comma-separated IP addresses or CIDR blocks")
    .optional(),
  /** Per-source token bucket of the Node server: refill rate (0 turns it off) and bucket size. */
  BROKER_RATE_LIMIT_PER_SECOND: z.coerce.number().min(0).max(100_000).default(10),
  BROKER_RATE_LIMIT_BURST: z.coerce.number().int().min(1).max(100_000).default(100),
  BROKER_RATE_LIMIT_SOURCES: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /** Slot-theft check of every pool's current activation in long-running processes; 0 = off. */
  BROKER_RECONCILE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
  /** VPC endpoints associated with the private API, whose alias names are the API's own too. */
  BROKER_VPC_ENDPOINT_IDS: z
    .string()
    .transform((v) => v.split(",").filter(Boolean))
    .pipe(z.array(z.string().regex(/^vpce-[0-9a-f]{8,17}$/, "VPC endpoint ids (vpce-…), comma-separated")))
    .optional(),
});

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
  if (e.BROKER_IDLE_TIMEOUT_MS >= e.BROKER_HEADERS_TIMEOUT_MS) {
    throw new ConfigError(
      "Invalid environment: BROKER_IDLE_TIMEOUT_MS must be shorter than BROKER_HEADERS_TIMEOUT_MS",
    );
  }
  if (e.BROKER_HEADERS_TIMEOUT_MS > e.BROKER_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      "Invalid environment: BROKER_HEADERS_TIMEOUT_MS must not exceed BROKER_REQUEST_TIMEOUT_MS",
    );
  }
  if (e.BROKER_POOLS && e.BROKER_CONFIG_FILE) {
    throw new ConfigError("Invalid environment: set BROKER_POOLS or BROKER_CONFIG_FILE, not both");
  }
  const pools = parsePools(readPoolsDocument(e.BROKER_POOLS, e.BROKER_CONFIG_FILE), {
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
    rotationWaitMs: e.BROKER_ROTATION_WAIT_MS,
    ...(e.BROKER_PUBLIC_URL !== undefined && { publicUrl: e.BROKER_PUBLIC_URL.replace(/\/+$/, "") }),
    server: {
      headersTimeoutMs: e.BROKER_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.BROKER_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: e.BROKER_KEEP_ALIVE_TIMEOUT_MS,
      idleTimeoutMs: e.BROKER_IDLE_TIMEOUT_MS,
      maxConnections: e.BROKER_MAX_CONNECTIONS,
      maxConnectionsPerSource: e.BROKER_MAX_CONNECTIONS_PER_SOURCE,
      trustedProxies: parseAddressList(e.BROKER_TRUSTED_PROXIES ?? "") ?? [],
      ratePerSecond: e.BROKER_RATE_LIMIT_PER_SECOND,
      rateBurst: e.BROKER_RATE_LIMIT_BURST,
      maxTrackedSources: e.BROKER_RATE_LIMIT_SOURCES,
    },
    reconcileIntervalMs: e.BROKER_RECONCILE_INTERVAL_SECONDS * 1000,
    vpcEndpointIds: e.BROKER_VPC_ENDPOINT_IDS ?? [],
    pools,
  };
}

function readPoolsDocument(inline: string | undefined, file: string | undefined): unknown {
  const [source, text] = inline
    ? ["BROKER_POOLS", inline]
    : file
      ? [file, readConfigFile(file)]
      : [undefined, undefined];
  if (text === undefined) return {};
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
 * The known name `name` is the start of (BROKER_ROTATION_WAIT for BROKER_ROTATION_WAIT_MS: the
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
