import { isServerError, isThrottlingError, isTransientError } from "@smithy/core/retry";
import { ThrottledError, UpstreamUnavailableError } from "../core/errors";

/**
 * Helpers for reading AWS SDK v3 errors: a service error's `name` is the error code from the
 * wire, `$fault` says whose fault it was, `$metadata` carries the HTTP status and request id.
 */

export function sdkErrorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

export function isSdkError(error: unknown, ...names: readonly string[]): boolean {
  const name = sdkErrorName(error);
  return name !== undefined && names.includes(name);
}

/** True when AWS answered 4xx: the request was refused, retrying it unchanged will not help. */
export function isClientFault(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { $fault, $metadata } = error as { $fault?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const status = $metadata?.httpStatusCode;
  return $fault === "client" || (typeof status === "number" && status >= 400 && status < 500);
}

/** An SDK error with everything that may echo a request or response body stripped off. */
export class RedactedSdkError extends Error {
  readonly $fault?: string;
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string };

  constructor(original: unknown, operation: string) {
    const name = sdkErrorName(original) ?? typeof original;
    const { $fault, $metadata } = (original ?? {}) as {
      $fault?: string;
      $metadata?: { httpStatusCode?: number; requestId?: string };
    };
    const status = $metadata?.httpStatusCode;
    super(
      `${operation} failed with ${name}${status !== undefined ? ` (HTTP ${status})` : ""}; ` +
        `details withheld because the exchange carried an Activation Code` +
        `${$metadata?.requestId ? ` (request id ${$metadata.requestId})` : ""}.`,
    );
    // Keep the wire name so callers that branch on error.name (retry policies, status mapping)
    // still recognise the error; keep no message, body, $response or cause of the original.
    this.name = name;
    // Stryker disable next-line ConditionalExpression: the class field already holds undefined
    if ($fault !== undefined) this.$fault = $fault;
    if ($metadata !== undefined) {
      // The spreads only keep exactOptionalPropertyTypes satisfied: forced true, they would add
      // a key holding undefined, which every reader treats as absent.
      this.$metadata = {
        // Stryker disable next-line ConditionalExpression: equivalent (see above)
        ...($metadata.httpStatusCode !== undefined && { httpStatusCode: $metadata.httpStatusCode }),
        // Stryker disable next-line ConditionalExpression: equivalent (see above)
        ...($metadata.requestId !== undefined && { requestId: $metadata.requestId }),
      };
    }
  }
}

/**
 * "Slow down" answers the SDK's own list (isThrottlingError) does not name: SSM's refusal of
 * concurrent writes to one parameter.
 */
const EXTRA_THROTTLING_ERRORS = ["TooManyUpdates"];

type SmithyError = Parameters<typeof isThrottlingError>[0];

/**
 * The domain error for a failure worth retrying later, or undefined for anything else.
 * What reaches an adapter has already been retried by the SDK (maxAttempts), so it is sustained:
 * the client gets 503 with Retry-After instead of a 500. The classification is the SDK's own
 * (@smithy/core's retry helpers: throttling names and 429, timeouts, socket errors, 5xx), so it
 * agrees with what the SDK itself just retried.
 */
export function transientError(
  error: unknown,
  service: string,
  retryAfterSeconds: number,
  cause: unknown = error,
): ThrottledError | UpstreamUnavailableError | undefined {
  if (!(error instanceof Error)) return undefined;
  const sdkError = error as SmithyError;
  if (isThrottlingError(sdkError) || isSdkError(error, ...EXTRA_THROTTLING_ERRORS)) {
    return new ThrottledError(service, retryAfterSeconds, { cause });
  }
  const { $fault } = error as { $fault?: unknown };
  if (isTransientError(sdkError) || isServerError(sdkError) || $fault === "server") {
    return new UpstreamUnavailableError(service, 1, { cause });
  }
  return undefined;
}

/**
 * A Parameter Store failure as it may leave an adapter: its answers can carry (encrypted) values,
 * so the SDK error is redacted before it becomes a cause or a message.
 */
export function parameterStoreError(error: unknown, operation: string): Error {
  const redacted = new RedactedSdkError(error, operation);
  return transientError(error, "Parameter Store", 1, redacted) ?? redacted;
}

/** Runs one DynamoDB call, turning throttling and AWS-side failures into retry-later errors. */
export async function sendToDynamoDb<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw transientError(error, "DynamoDB", 1) ?? error;
  }
}
