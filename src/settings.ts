import { readFileSync } from "node:fs";
import { z } from "zod";
import { DEFAULT_KMS_KEY_ID, DEFAULT_PARAMETER_PREFIX, isValidParameterPrefix } from "./aws/naming";
import { ConfigError } from "./core/errors";
import { checkEksRegions, formatIssues, parsePools, type PoolConfig } from "./core/pool-config";

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
});

export type BrokerEnv = z.input<typeof envSchema>;

export interface Settings {
  readonly tableName: string;
  readonly parameterPrefix: string;
  readonly kmsKeyId: string;
  readonly region: string;
  readonly deployment: string;
  readonly leaseMs: number;
  readonly rotationWaitMs: number;
  readonly publicUrl?: string;
  readonly pools: ReadonlyMap<string, PoolConfig>;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const own = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("BROKER_")));
  const parsed = envSchema.safeParse(own);
  if (!parsed.success) throw new ConfigError(`Invalid environment: ${formatIssues(parsed.error.issues)}`);
  const e = parsed.data;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new ConfigError("Invalid environment: AWS_REGION: required");
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
    throw new ConfigError(`Invalid pool configuration: ${source} is not valid JSON`, { cause: error });
  }
}

function readConfigFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`Cannot read configuration file ${file}`, { cause: error });
  }
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
