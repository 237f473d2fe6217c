/**
 * Table key formats and parameter paths: the only place that knows how pool state and codes are
 * addressed in AWS. The CDK app, the CLI and the adapters all derive names from here, so a change
 * of layout is one edit (and one migration), never a search through the tree.
 */

/** Partition key attribute of the pool table (String). */
export const POOL_KEY_ATTRIBUTE = "pk";

const POOL_KEY_PREFIX = "POOL#";

/** Parameter Store hierarchy under which every Activation Code is stored. */
export const DEFAULT_PARAMETER_PREFIX = "/activation-broker";

/** The AWS managed key for Parameter Store; deployments normally pass their customer managed key. */
export const DEFAULT_KMS_KEY_ID = "alias/aws/ssm";

/** `/a/b` style: leading slash, no trailing slash, no empty segment (Parameter Store rejects `//`). */
const PARAMETER_PREFIX_PATTERN = /^(\/[A-Za-z0-9_.-]+)+$/;

export function poolKey(pool: string): string {
  return `${POOL_KEY_PREFIX}${pool}`;
}

/** The pool name of a partition key value, or undefined for items that are not pool rows. */
export function poolFromKey(key: string): string | undefined {
  return key.startsWith(POOL_KEY_PREFIX) ? key.slice(POOL_KEY_PREFIX.length) : undefined;
}

export function isValidParameterPrefix(prefix: string): boolean {
  return PARAMETER_PREFIX_PATTERN.test(prefix);
}

/** Names are unique per activation id, which is what makes a retried PutParameter idempotent. */
export function parameterName(prefix: string, pool: string, activationId: string): string {
  return `${prefix}/${pool}/${activationId}`;
}
