import { z } from "zod";
import { EKS_CLUSTER_ARN_TAG, eksPoolFields, parseEksClusterArn, type EksPoolSettings } from "./eks-pool";
import { ConfigError } from "./errors";

/**
 * Pool configuration: one source of truth for the broker (src/settings.ts), the local runner
 * (`npm start --config`) and the CDK app (infra/). Limits follow ssm:CreateActivation:
 * RegistrationLimit 1–1000, ExpirationDate at most 30 days ahead, DefaultInstanceName and
 * Description at most 256 characters, tag keys 1–128 and values 0–256 characters.
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html
 */

export const POOL_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const DEFAULT_POOL = "default";
/** Tag keys the broker sets on every activation it creates; users may not set them. */
export const RESERVED_TAG_PREFIX = "activation-broker:";

const MAX_EXPIRATION_HOURS = 30 * 24;

const tagKey = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, "tag keys may hold letters, digits, spaces and _.:/=+-@")
  .refine((k) => !k.toLowerCase().startsWith("aws:"), "tag keys may not start with 'aws:'")
  .refine(
    (k) => !k.startsWith(RESERVED_TAG_PREFIX),
    `tag keys starting with '${RESERVED_TAG_PREFIX}' are reserved`,
  );

export const poolConfigSchema = z
  .strictObject({
    /** IAM service role the managed nodes assume; defaults to the deployment's role. */
    iamRole: z.string().min(1).max(64).optional(),
    registrationLimit: z.number().int().min(1).max(1000).default(100),
    /**
     * Rotation budget (I7): at most this many new activations per hour, counted in the pool's
     * DynamoDB item so every replica and Lambda container shares it. Past it, 429.
     */
    maxActivationsPerHour: z.number().int().min(1).max(10_000).default(100),
    /** How long each new activation stays valid. */
    expirationHours: z.number().int().min(1).max(MAX_EXPIRATION_HOURS).default(24),
    /** A pair is handed out only while it stays valid at least this long (I2). */
    safetyMarginMinutes: z
      .number()
      .int()
      .min(1)
      .max(MAX_EXPIRATION_HOURS * 60)
      .default(60),
    defaultInstanceName: z
      .string()
      .max(256)
      .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u, "letters, digits, spaces and _.:/=+-@ only")
      .optional(),
    description: z.string().max(256).optional(),
    /**
     * Keep the next activation ready so exhaustion never waits for CreateActivation (I9). Costs
     * one unused activation per pool; `registrationLimit: 1` pools may prefer it off.
     */
    standby: z.boolean().default(true),
    tags: z.record(tagKey, z.string().max(256)).default({}),
    ...eksPoolFields,
    /** Fleet hygiene the janitor applies to this pool's nodes (docs/operations.md). Off by default. */
    hygiene: z
      .strictObject({
        /** Tag each node `Name = <its ComputerName>` when it has no Name tag yet. */
        nameTag: z.boolean().default(false),
        /** Deregister older duplicates of a re-imaged host once ConnectionLost this many days. */
        deregisterDuplicatesAfterDays: z.number().int().min(1).max(365).optional(),
      })
      .optional(),
  })
  .refine((p) => p.safetyMarginMinutes < p.expirationHours * 60, {
    message: "safetyMarginMinutes must be shorter than expirationHours, or no pair could ever be handed out",
    path: ["safetyMarginMinutes"],
  })
  .refine((p) => Object.keys(p.tags).length + (p.eksClusterArn ? 1 : 0) <= 40, {
    message: "at most 40 tags (an EKS pool's EKSClusterARN tag counts)",
    path: ["tags"],
  })
  .refine((p) => p.eksClusterArn === undefined || !(EKS_CLUSTER_ARN_TAG in p.tags), {
    message: `${EKS_CLUSTER_ARN_TAG} is set from eksClusterArn`,
    path: ["tags", EKS_CLUSTER_ARN_TAG],
  })
  .refine((p) => p.eksClusterArn !== undefined || (p.kubeletFlags ?? p.nodeLabels) === undefined, {
    message: "kubeletFlags and nodeLabels need eksClusterArn (they go into a nodeadm NodeConfig)",
    path: ["eksClusterArn"],
  });

export type PoolConfigInput = z.input<typeof poolConfigSchema>;

export interface PoolConfig {
  readonly name: string;
  readonly iamRole: string;
  readonly registrationLimit: number;
  readonly maxActivationsPerHour: number;
  readonly expirationHours: number;
  readonly safetyMarginMinutes: number;
  readonly standby: boolean;
  readonly defaultInstanceName?: string;
  readonly description?: string;
  readonly tags: Readonly<Record<string, string>>;
  /** Set for EKS Hybrid Nodes pools (src/core/eks-pool.ts). */
  readonly eks?: EksPoolSettings;
  readonly hygiene?: PoolHygiene;
}

export interface PoolHygiene {
  readonly nameTag: boolean;
  readonly deregisterDuplicatesAfterDays?: number;
}

export const poolsFileSchema = z.strictObject({
  pools: z
    .record(
      z.string().regex(POOL_NAME_PATTERN, "pool names must match [A-Za-z0-9_-]{1,64}"),
      poolConfigSchema,
    )
    .default({}),
});

export type PoolsFileInput = z.input<typeof poolsFileSchema>;

export interface PoolDefaults {
  /** Role of pools that name none. */
  readonly iamRole?: string;
  /** Role of EKS pools that name none: the deployment's hybrid nodes role. */
  readonly eksIamRole?: string;
}

/**
 * Validates a `{"pools": {...}}` document and resolves every pool to a full PoolConfig.
 * `default` always exists. Throws ConfigError naming the offending field.
 */
export function parsePools(input: unknown, defaults: PoolDefaults): ReadonlyMap<string, PoolConfig> {
  const parsed = poolsFileSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new ConfigError(`Invalid pool configuration: ${formatIssues(parsed.error.issues)}`);
  }
  const raw = { [DEFAULT_POOL]: poolConfigSchema.parse({}), ...parsed.data.pools };
  const pools = new Map<string, PoolConfig>();
  for (const [name, pool] of Object.entries(raw)) {
    const eks = eksSettings(pool);
    // An EKS pool never falls back to the plain node role: that one may not describe the cluster.
    const iamRole = pool.iamRole ?? (eks ? defaults.eksIamRole : defaults.iamRole);
    if (!iamRole) {
      const missing = eks ? "no hybrid nodes role is configured" : "no default role is configured";
      throw new ConfigError(`Invalid pool configuration: pools.${name}.iamRole: required (${missing})`);
    }
    pools.set(name, {
      name,
      iamRole,
      registrationLimit: pool.registrationLimit,
      maxActivationsPerHour: pool.maxActivationsPerHour,
      expirationHours: pool.expirationHours,
      safetyMarginMinutes: pool.safetyMarginMinutes,
      standby: pool.standby,
      tags: eks ? { ...pool.tags, [EKS_CLUSTER_ARN_TAG]: eks.cluster.arn } : pool.tags,
      ...(eks && { eks }),
      // These spreads only keep exactOptionalPropertyTypes satisfied: forced true, they would add
      // a key holding undefined, which every reader treats as absent (equivalent mutants).
      // Stryker disable next-line ConditionalExpression: equivalent (see above)
      ...(pool.defaultInstanceName !== undefined && { defaultInstanceName: pool.defaultInstanceName }),
      // Stryker disable next-line ConditionalExpression: equivalent (see above)
      ...(pool.description !== undefined && { description: pool.description }),
      // Stryker disable next-line ConditionalExpression: equivalent (see above)
      ...(pool.hygiene !== undefined && { hygiene: pool.hygiene }),
    });
  }
  return pools;
}

function eksSettings(pool: z.output<typeof poolConfigSchema>): EksPoolSettings | undefined {
  if (pool.eksClusterArn === undefined) return undefined;
  const cluster = parseEksClusterArn(pool.eksClusterArn);
  if ("error" in cluster) throw new ConfigError(`Invalid pool configuration: ${cluster.error}`); // schema-checked
  return { cluster, kubeletFlags: pool.kubeletFlags ?? [], nodeLabels: pool.nodeLabels ?? {} };
}

/**
 * nodeadm registers the node with SSM in the cluster's Region (eks-hybrid: internal/ssm/config.go
 * passes spec.cluster.region to the agent's -register), and an activation works only in the
 * Region that created it: an EKS pool's cluster must be in the broker's Region.
 */
export function checkEksRegions(pools: ReadonlyMap<string, PoolConfig>, region: string): void {
  for (const pool of pools.values()) {
    if (pool.eks && pool.eks.cluster.region !== region) {
      throw new ConfigError(
        `Invalid pool configuration: pools.${pool.name}.eksClusterArn: the cluster is in ${pool.eks.cluster.region} but this broker creates activations in ${region}, and nodeadm registers nodes in the cluster's Region`,
      );
    }
  }
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const path = i.path.map(String).join(".");
      if (i.code === "unrecognized_keys") {
        // At the top level the likeliest mistake is a pool without the {"pools": …} wrapper.
        const where = path ? `${path}.` : "";
        const hint = path ? "" : ` (the file holds {"pools": {...}}, with each pool inside it)`;
        return i.keys.map((k) => `${where}${k}: unknown key${hint}`).join("; ");
      }
      // A bad record key carries the key schema's own message one level down.
      const message = i.code === "invalid_key" ? (i.issues[0]?.message ?? i.message) : i.message;
      return `${path || "(root)"}: ${message}`;
    })
    .join("; ");
}
