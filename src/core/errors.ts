/**
 * Domain errors. Each carries a stable `code` (mapped to an HTTP status in src/http/status.ts
 * and to an exit code by the CLI) and only non-secret context: never an Activation Code.
 */
export abstract class BrokerError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidPoolNameError extends BrokerError {
  readonly code = "InvalidPoolName";
  constructor(readonly pool: string) {
    super(`Pool name must match [A-Za-z0-9_-]{1,64}.`);
  }
}

export class PoolNotFoundError extends BrokerError {
  readonly code = "PoolNotFound";
  constructor(readonly pool: string) {
    super(`Pool '${pool}' is not configured.`);
  }
}

/** A refusal the client should retry after `retryAfterSeconds` (HTTP 503 with Retry-After). */
export abstract class RetryLaterError extends BrokerError {
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
  readonly code = "RotationInProgress";
  constructor(
    readonly pool: string,
    retryAfterSeconds: number,
  ) {
    super(`A new activation for pool '${pool}' is being created; retry shortly.`, retryAfterSeconds);
  }
}

/** AWS answered with throttling (SSM, DynamoDB or Parameter Store). */
export class ThrottledError extends RetryLaterError {
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
  readonly code = "ActivationRejected";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class ConfigError extends BrokerError {
  readonly code = "InvalidConfiguration";
}

/** The operator named an activation this deployment does not know (CLI exit code 3). */
export class ActivationNotFoundError extends BrokerError {
  readonly code = "ActivationNotFound";
  constructor(readonly activationId: string) {
    super(`Activation ${activationId} is not one of this deployment's activations.`);
  }
}

/** The operator asked to revoke a pool that has no activation yet (CLI exit code 3). */
export class NothingToRevokeError extends BrokerError {
  readonly code = "NothingToRevoke";
  constructor(readonly pool: string) {
    super(`Pool '${pool}' has no activation to revoke.`);
  }
}
