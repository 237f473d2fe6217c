import { readFileSync } from "node:fs";
import { z } from "zod";
import type { Node } from "constructs";
import { ConfigError } from "../../src/core/errors";
import { formatIssues } from "../../src/core/pool-config";
import { isValidParameterPrefix } from "../../src/aws/naming";
import { RETIRED, isPoolsPath, namesOn, setting } from "../../src/settings-schema";

/**
 * Every deployment setting of the CDK app, read from CDK context (`cdk.json` or `-c Key=value`) in
 * this one place and validated with a strict schema. Names, ranges and defaults are
 * src/settings-schema.ts's; they follow the reference walkthrough's CloudFormation parameters
 * where one exists, so its users find their way.
 *
 * `-c` always delivers strings while `cdk.json` delivers JSON values, so every field accepts both.
 */

/**
 * The context keys this app reads, src/settings-schema.ts's: `settingsFromContext` rejects nothing
 * else, CDK owns the rest.
 */
export const CONTEXT_KEYS: readonly string[] = namesOn("context");

const CIDR_V4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;

/** Values CloudWatch Logs accepts for RetentionInDays (the RetentionDays enum minus "infinite"). */
export const LOG_RETENTION_DAYS = setting("LogRetentionDays").values as readonly number[];

/** `a,b` from `-c`, `["a","b"]` from cdk.json; empty means "not set". */
const list = (item: z.ZodString) =>
  z.preprocess(
    (v) =>
      typeof v === "string"
        ? v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    z.array(item),
  );

/** A whole number, its range and default from the schema. */
const int = (key: string) => {
  const s = setting(key);
  return z.preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v),
    z
      .number()
      .int()
      .min(s.min!)
      .max(s.max!)
      .default(s.default as number),
  );
};

const bool = (key: string) =>
  z.preprocess(
    (v) => (v === "true" ? true : v === "false" ? false : v),
    z.boolean().default(setting(key).default as boolean),
  );

/** One of the schema's values, its default the schema's. */
const oneOf = <T extends string>(key: string) =>
  z.enum(setting(key).values as unknown as [T, ...T[]]).default(setting(key).default as T);

/** A string matching the schema's pattern. */
const matching = (key: string, what: string) => z.string().regex(new RegExp(setting(key).pattern!), what);

/** A list whose items match the schema's pattern. */
const listOf = (key: string, what: string) => list(matching(key, what)).default([]);

/**
 * The pools inline (an object in cdk.json, its JSON with `-c`) or the path of a file holding the
 * `{"pools": {...}}` document: a string that does not begin with `{`.
 */
const poolsSetting = z.preprocess(
  (v) => {
    if (typeof v !== "string" || isPoolsPath(v)) return v;
    try {
      return JSON.parse(v);
    } catch {
      return v; // left as a string that is no path, so the schema reports this key
    }
  },
  z.union([
    z.record(z.string(), z.unknown()),
    z.string().min(1).refine(isPoolsPath, "not valid JSON (an object, or the path of a file)"),
  ]),
);

const contextSchema = z
  .object({
    DeploymentName: matching(
      "DeploymentName",
      "letters, digits and hyphens, starting with a letter, at most 32",
    ).optional(),
    ApiGatewayStageName: matching("ApiGatewayStageName", "letters, digits, hyphens and underscores").default(
      setting("ApiGatewayStageName").default as string,
    ),
    VpcEndpointForApiGateway: listOf("VpcEndpointForApiGateway", "a VPC endpoint id (vpce-…)"),
    VpcIdForApiGateway: matching("VpcIdForApiGateway", "a VPC id (vpc-…)").optional(),
    SubnetsForVpcEndpoint: listOf("SubnetsForVpcEndpoint", "a subnet id (subnet-…)"),
    AllowedIPRange: list(z.string().regex(CIDR_V4, "an IPv4 CIDR such as 10.0.0.0/8")).default([]),
    ApiAllowedSourceIpRanges: list(z.string().regex(CIDR_V4, "an IPv4 CIDR such as 10.20.0.0/16")).default(
      [],
    ),
    VpcEndpointAllowedApiIds: listOf("VpcEndpointAllowedApiIds", "a REST API id (10 characters)"),
    KmsKeyId: z
      .string()
      .regex(
        /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/)?(mrk-)?[0-9a-f-]{32,36}$/,
        "a KMS key id or key ARN (aliases cannot scope an IAM policy)",
      )
      .optional(),
    Pools: poolsSetting.optional(),
    ParameterPrefix: z
      .string()
      .refine(isValidParameterPrefix, "an absolute Parameter Store path such as /activation-broker/prod")
      .optional(),
    DefaultIamRole: matching("DefaultIamRole", "an IAM role name").optional(),
    /** An existing EKS hybrid nodes role for EKS pools; by default the app creates one (docs/eks.md). */
    HybridNodesRole: matching("HybridNodesRole", "an IAM role name").optional(),
    LogLevel: oneOf<"DEBUG" | "INFO" | "WARN" | "ERROR">("LogLevel"),
    LogRetentionDays: z
      .preprocess((v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v), z.number().int())
      .default(setting("LogRetentionDays").default as number)
      .refine((d) => LOG_RETENTION_DAYS.includes(d), `one of ${LOG_RETENTION_DAYS.join(", ")}`),
    ThrottlingRateLimit: int("ThrottlingRateLimit"),
    ReservedConcurrency: int("ReservedConcurrency"),
    CloudwatchLogRoleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, "an IAM role ARN")
      .optional(),
    PrivateDnsEnabled: bool("PrivateDnsEnabled"),
    TableDeletionProtection: bool("TableDeletionProtection"),
  })
  .superRefine((s, ctx) => {
    if (s.VpcEndpointForApiGateway.length > 0) return; // step 1 skipped: an existing endpoint is used
    for (const key of ["VpcIdForApiGateway", "SubnetsForVpcEndpoint", "AllowedIPRange"] as const) {
      const v = s[key];
      if (v === undefined || (Array.isArray(v) && v.length === 0)) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: "required unless VpcEndpointForApiGateway names an existing endpoint",
        });
      }
    }
  });

/**
 * The stage's burst: as many requests at once as the function has reserved executions to serve
 * them, so the clean 429 is what a flood meets first; when it reserves none, the rate (an account
 * with a small quota sets both low).
 */
export function stageBurst(reservedConcurrency: number, rateLimit: number): number {
  return reservedConcurrency === 0 ? rateLimit : reservedConcurrency;
}

/** The keys the context schema checks: src/settings-schema.ts's (test/settings-schema.test.ts). */
export const CHECKED_CONTEXT_KEYS: readonly string[] = Object.keys(contextSchema.shape);

export type AppSettings = z.output<typeof contextSchema> & {
  /** The pools document (`{"pools": {...}}`), inline or from Pools' file; validated by the construct. */
  readonly poolsDocument: unknown;
};

/** Reads and validates every setting from the construct tree's context. Throws ConfigError naming the key. */
export function settingsFromContext(node: Node): AppSettings {
  const retired = Object.keys(RETIRED).filter((k) => node.tryGetContext(k) !== undefined);
  if (retired.length > 0) {
    throw new ConfigError(
      `Invalid context: ${retired.map((k) => `${k} is no longer a setting: ${RETIRED[k]}`).join("; ")} (CHANGELOG.md)`,
    );
  }
  const raw = Object.fromEntries(
    CONTEXT_KEYS.map((k) => [k, node.tryGetContext(k)]).filter(([, v]) => v !== undefined),
  );
  const parsed = contextSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`Invalid context: ${formatIssues(parsed.error.issues)}`);
  const s = parsed.data;
  const poolsDocument = typeof s.Pools === "string" ? readPoolsFile(s.Pools) : { pools: s.Pools ?? {} };
  return { ...s, poolsDocument };
}

function readPoolsFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`Invalid context: Pools: cannot read ${file}`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`Invalid context: Pools: ${file} is not valid JSON`, { cause: error });
  }
}
