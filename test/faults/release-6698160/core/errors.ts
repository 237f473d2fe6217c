/**
 * Domain errors. Each carries a stable `code` (mapped to an HTTP status in src/http/status.ts
 * and to an exit code by the CLI) and only non-secret context: never an Activation Code.
 *
 * Every class sets `name` as a string literal: bundles minify class names, and the name is what
 * the logs show.
 */

/** Every code the broker answers with; the status table in src/http/status.ts covers each one. */
export type ErrorCode =
  | "InvalidRequest"
  | "InvalidPoolName"
  | "InvalidParameter"
  | "NotFound"
  | "PoolNotFound"
  | "NotAnEksPool"
  | "ActivationNotFound"
  | "NothingToRevoke"
  | "MethodNotAllowed"
  | "TooManyRequests"
  | "RotationBudgetExhausted"
  | "RotationInProgress"
  | "Throttled"
  | "UpstreamUnavailable"
  | "SecretNotFound"
  | "ActivationRejected"
  | "InvalidConfiguration"
  | "InternalError";

export abstract class BrokerError extends Error {
  abstract readonly code: ErrorCode;
  /**
   * Whether the message is written for the client. Left undefined, the status decides (below
   * 500 it is, as in middy's http-error-handler); a subclass that knows better says so.
   */
  readonly expose?: boolean;
}

export class InvalidPoolNameError extends BrokerError {
  override readonly name = "InvalidPoolNameError";
  readonly code = "InvalidPoolName";
  constructor(readonly pool: string) {
    super(`Pool name must match [A-Za-z0-9_-]{1,64}.`);
  }
}

export class PoolNotFoundError extends BrokerError {
  override readonly name = "PoolNotFoundError";
  readonly code = "PoolNotFound";
  constructor(readonly pool: string) {
    super(`Pool '${pool}' is not configured.`);
  }
}

/** A refusal the client should retry after `retryAfterSeconds` (HTTP 503 with Retry-After). */
export abstract class RetryLaterError extends BrokerError {
  /** "Retry shortly" is the one thing the client needs to hear, and it names nothing internal. */
  override readonly expose = true;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Another request holds the rotation lease and the new activation did not appear in time. */
export class RotationInProgressError extends RetryLaterError {
  override readonly name = "RotationInProgressError";
  readonly code = "RotationInProgress";
  constructor(
    readonly pool: string,
    retryAfterSeconds: number,
  ) {
    super(`A new activation for pool '${pool}' is being created; retry shortly.`, retryAfterSeconds);
  }
}

/**
 * The pool created its budget of activations this hour (maxActivationsPerHour): a caller draining
 * the pool gets refused instead of costing more activations (I7). HTTP 429 with Retry-After.
 */
export class RotationBudgetExhaustedError extends RetryLaterError {
  override readonly name = "RotationBudgetExhaustedError";
  readonly code = "RotationBudgetExhausted";
  constructor(
    readonly pool: string,
    retryAfterSeconds: number,
  ) {
    super(
      `Pool '${pool}' has created its maximum of new activations this hour; retry later.`,
      retryAfterSeconds,
    );
  }
}

/** AWS answered with throttling (SSM, DynamoDB or Parameter Store). */
export class ThrottledError extends RetryLaterError {
  override readonly name = "ThrottledError";
  readonly code = "Throttled";
  constructor(
    readonly service: string,
    retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(`${service} is throttling requests; retry shortly.`, retryAfterSeconds, options);
  }
}

/** AWS did not answer in time, or failed on its side, even after the SDK's own retries. */
export class UpstreamUnavailableError extends RetryLaterError {
  override readonly name = "UpstreamUnavailableError";
  readonly code = "UpstreamUnavailable";
  constructor(
    readonly service: string,
    retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(`${service} is not answering; retry shortly.`, retryAfterSeconds, options);
  }
}

/** The secret store has no code for an activation the pool state points at. */
export class SecretNotFoundError extends BrokerError {
  override readonly name = "SecretNotFoundError";
  readonly code = "SecretNotFound";
  constructor(
    readonly activationId: string,
    options?: { cause?: unknown },
  ) {
    super(`No stored code for activation ${activationId}.`, options);
  }
}

/** The activation provider refused the activation request (bad role, bad limit, …). */
export class ActivationRejectedError extends BrokerError {
  override readonly name = "ActivationRejectedError";
  readonly code = "ActivationRejected";
}

/** The operator's configuration is wrong; the message names the setting and what it must be. */
export class ConfigError extends BrokerError {
  override readonly name = "ConfigError";
  readonly code = "InvalidConfiguration";
}

/** A NodeConfig was asked of a pool that has no EKS cluster (no `eksClusterArn`). */
export class NotAnEksPoolError extends BrokerError {
  override readonly name = "NotAnEksPoolError";
  readonly code = "NotAnEksPool";
  constructor(readonly pool: string) {
    super(`Pool '${pool}' is not an EKS Hybrid Nodes pool (it has no eksClusterArn).`);
  }
}

/** The operator named an activation this deployment does not know (CLI exit code 3). */
export class ActivationNotFoundError extends BrokerError {
  override readonly name = "ActivationNotFoundError";
  readonly code = "ActivationNotFound";
  constructor(readonly activationId: string) {
    super(`Activation ${activationId} is not one of this deployment's activations.`);
  }
}

/** The operator asked to revoke a pool that has no activation yet (CLI exit code 3). */
export class NothingToRevokeError extends BrokerError {
  override readonly name = "NothingToRevokeError";
  readonly code = "NothingToRevoke";
  constructor(readonly pool: string) {
    super(`Pool '${pool}' has no activation to revoke.`);
  }
}

/** What a log line may say of an error: its name, never its message (which may quote a code). */
export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
