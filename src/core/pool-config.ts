import { z } from "zod";
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
  })
  .refine((p) => p.safetyMarginMinutes < p.expirationHours * 60, {
    message: "safetyMarginMinutes must be shorter than expirationHours, or no pair could ever be handed out",
    path: ["safetyMarginMinutes"],
  })
  .refine((p) => Object.keys(p.tags).length <= 40, { message: "at most 40 tags", path: ["tags"] });

export type PoolConfigInput = z.input<typeof poolConfigSchema>;

export interface PoolConfig {
  readonly name: string;
  readonly iamRole: string;
  readonly registrationLimit: number;
  readonly expirationHours: number;
  readonly safetyMarginMinutes: number;
  readonly standby: boolean;
  readonly defaultInstanceName?: string;
  readonly description?: string;
  readonly tags: Readonly<Record<string, string>>;
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

/**
 * Validates a `{"pools": {...}}` document and resolves every pool to a full PoolConfig.
 * `default` always exists. Throws ConfigError naming the offending field.
 */
export function parsePools(input: unknown, defaults: { iamRole?: string }): ReadonlyMap<string, PoolConfig> {
  const parsed = poolsFileSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new ConfigError(`Invalid pool configuration: ${formatIssues(parsed.error.issues)}`);
  }
  const raw = { [DEFAULT_POOL]: poolConfigSchema.parse({}), ...parsed.data.pools };
  const pools = new Map<string, PoolConfig>();
  for (const [name, pool] of Object.entries(raw)) {
    const iamRole = pool.iamRole ?? defaults.iamRole;
    if (!iamRole) {
      throw new ConfigError(
        `Invalid pool configuration: pools.${name}.iamRole: required (no default role is configured)`,
      );
    }
    pools.set(name, {
      name,
      iamRole,
      registrationLimit: pool.registrationLimit,
      expirationHours: pool.expirationHours,
      safetyMarginMinutes: pool.safetyMarginMinutes,
      standby: pool.standby,
      tags: pool.tags,
      ...(pool.defaultInstanceName !== undefined && { defaultInstanceName: pool.defaultInstanceName }),
      ...(pool.description !== undefined && { description: pool.description }),
    });
  }
  return pools;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const path = i.path.map(String).join(".");
      if (i.code === "unrecognized_keys") {
        const where = path ? `${path}.` : "";
        return i.keys.map((k) => `${where}${k}: unknown key`).join("; ");
      }
      // A bad record key carries the key schema's own message one level down.
      const message = i.code === "invalid_key" ? (i.issues[0]?.message ?? i.message) : i.message;
      return `${path || "(root)"}: ${message}`;
    })
    .join("; ");
}
