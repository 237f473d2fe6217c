import { readFileSync } from "node:fs";
import { z } from "zod";
import type { Node } from "constructs";
import { ConfigError } from "../../src/core/errors";
import { formatIssues } from "../../src/core/pool-config";
import { isValidParameterPrefix } from "../../src/aws/naming";

/**
 * Every deployment setting of the CDK app, read from CDK context (`cdk.json` or `-c Key=value`) in
 * this one place and validated with a strict schema. Names follow the reference walkthrough's
 * CloudFormation parameters where one exists, so its users find their way.
 *
 * `-c` always delivers strings while `cdk.json` delivers JSON values, so every field accepts both.
 */

/** The context keys this app reads; `settingsFromContext` rejects nothing else, CDK owns the rest. */
export const CONTEXT_KEYS = [
  "DeploymentName",
  "ApiGatewayStageName",
  "VpcEndpointForApiGateway",
  "VpcIdForApiGateway",
  "SubnetsForVpcEndpoint",
  "AllowedIPRange",
  "ApiAllowedSourceIpRanges",
  "VpcEndpointAllowedApiIds",
  "KmsKeyId",
  "Pools",
  "PoolsFile",
  "ParameterPrefix",
  "NodeRoleName",
  "HybridNodesRoleName",
  "LeaseSeconds",
  "RotationWaitMs",
  "LogLevel",
  "LogRetentionDays",
  "ApiExecutionLogLevel",
  "ThrottlingRateLimit",
  "ThrottlingBurstLimit",
  "ReservedConcurrency",
  "EnableXRay",
  "CloudwatchLogRoleArn",
  "PrivateDnsEnabled",
  "TableDeletionProtection",
  "FunctionMemoryMB",
] as const;

export type ContextKey = (typeof CONTEXT_KEYS)[number];

const CIDR_V4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;

/** Values CloudWatch Logs accepts for RetentionInDays (the RetentionDays enum minus "infinite"). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

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

const int = (min: number, max: number, fallback: number) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v),
    z.number().int().min(min).max(max).default(fallback),
  );

const bool = (fallback: boolean) =>
  z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean().default(fallback));

/** A JSON document given inline: an object in cdk.json, a string with `-c`. */
const jsonObject = z.preprocess(
  (v) => {
    if (typeof v !== "string") return v;
    try {
      return JSON.parse(v);
    } catch {
      return v; // left as a string so the schema reports "expected object" for this key
    }
  },
  z.record(z.string(), z.unknown()),
);

const contextSchema = z
  .object({
    DeploymentName: z
      .string()
      .regex(
        /^[A-Za-z][A-Za-z0-9-]{0,31}$/,
        "letters, digits and hyphens, starting with a letter, at most 32",
      )
      .optional(),
    ApiGatewayStageName: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,128}$/, "letters, digits, hyphens and underscores")
      .default("prod"),
    VpcEndpointForApiGateway: list(
      z.string().regex(/^vpce-[0-9a-f]{8,17}$/, "a VPC endpoint id (vpce-…)"),
    ).default([]),
    VpcIdForApiGateway: z
      .string()
      .regex(/^vpc-[0-9a-f]{8,17}$/, "a VPC id (vpc-…)")
      .optional(),
    SubnetsForVpcEndpoint: list(
      z.string().regex(/^subnet-[0-9a-f]{8,17}$/, "a subnet id (subnet-…)"),
    ).default([]),
    AllowedIPRange: list(z.string().regex(CIDR_V4, "an IPv4 CIDR such as 10.0.0.0/8")).default([]),
    ApiAllowedSourceIpRanges: list(z.string().regex(CIDR_V4, "an IPv4 CIDR such as 10.20.0.0/16")).default(
      [],
    ),
    VpcEndpointAllowedApiIds: list(
      z.string().regex(/^[a-z0-9]{10}$/, "a REST API id (10 characters)"),
    ).default([]),
    KmsKeyId: z
      .string()
      .regex(
        /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/)?(mrk-)?[0-9a-f-]{32,36}$/,
        "a KMS key id or key ARN (aliases cannot scope an IAM policy)",
      )
      .optional(),
    Pools: jsonObject.optional(),
    PoolsFile: z.string().min(1).optional(),
    ParameterPrefix: z
      .string()
      .refine(isValidParameterPrefix, "an absolute Parameter Store path such as /activation-broker/prod")
      .optional(),
    NodeRoleName: z
      .string()
      .regex(/^[\w+=,.@-]{1,64}$/, "an IAM role name")
      .optional(),
    /** An existing EKS hybrid nodes role for EKS pools; by default the app creates one (docs/eks.md). */
    HybridNodesRoleName: z
      .string()
      .regex(/^[\w+=,.@-]{1,64}$/, "an IAM role name")
      .optional(),
    LeaseSeconds: int(5, 900, 30),
    RotationWaitMs: int(0, 25_000, 5000),
    LogLevel: z.enum(["DEBUG", "INFO", "WARN", "ERROR"]).default("INFO"),
    LogRetentionDays: int(1, 3653, 365).refine(
      (d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d),
      `one of ${LOG_RETENTION_DAYS.join(", ")}`,
    ),
    ApiExecutionLogLevel: z.enum(["OFF", "ERROR", "INFO"]).default("ERROR"),
    ThrottlingRateLimit: int(1, 10_000, 50),
    ThrottlingBurstLimit: int(1, 5_000, 100),
    ReservedConcurrency: int(0, 10_000, 100),
    EnableXRay: bool(true),
    CloudwatchLogRoleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, "an IAM role ARN")
      .optional(),
    PrivateDnsEnabled: bool(true),
    TableDeletionProtection: bool(true),
    FunctionMemoryMB: int(128, 10_240, 256),
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
  })
  .refine((s) => !(s.Pools && s.PoolsFile), {
    message: "set Pools or PoolsFile, not both",
    path: ["PoolsFile"],
  });

export type AppSettings = z.output<typeof contextSchema> & {
  /** The pools document (`{"pools": {...}}`) from Pools or PoolsFile; validated by the construct. */
  readonly poolsDocument: unknown;
};

/** Reads and validates every setting from the construct tree's context. Throws ConfigError naming the key. */
export function settingsFromContext(node: Node): AppSettings {
  const raw = Object.fromEntries(
    CONTEXT_KEYS.map((k) => [k, node.tryGetContext(k)]).filter(([, v]) => v !== undefined),
  );
  const parsed = contextSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`Invalid context: ${formatIssues(parsed.error.issues)}`);
  const s = parsed.data;
  return { ...s, poolsDocument: s.PoolsFile ? readPoolsFile(s.PoolsFile) : { pools: s.Pools ?? {} } };
}

function readPoolsFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`Invalid context: PoolsFile: cannot read ${file}`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`Invalid context: PoolsFile: ${file} is not valid JSON`, { cause: error });
  }
}
