import { BrokerError, RetryLaterError, type ErrorCode } from "../core/errors";

/**
 * The one table from error codes to HTTP statuses. `satisfies` makes a code without a status,
 * or a status for a code that does not exist, a compile error rather than a silent 500.
 */
export const STATUS_BY_CODE = {
  InvalidPoolName: 400,
  InvalidParameter: 400,
  NotAnEksPool: 400,
  NotFound: 404,
  PoolNotFound: 404,
  // The admin CLI's (exit code 3); no HTTP route raises them.
  ActivationNotFound: 404,
  NothingToRevoke: 404,
  MethodNotAllowed: 405,
  RotationInProgress: 503,
  Throttled: 503,
  UpstreamUnavailable: 503,
  SecretNotFound: 500,
  ActivationRejected: 500,
  InvalidConfiguration: 500,
  InternalError: 500,
} as const satisfies Record<ErrorCode, number>;

export function statusFor(code: ErrorCode): number {
  return STATUS_BY_CODE[code];
}

/** A refusal only the HTTP layer knows of (no route, wrong method, a request it cannot serve). */
export class HttpError extends BrokerError {
  override readonly name = "HttpError";
  constructor(
    readonly code: "NotFound" | "MethodNotAllowed" | "InvalidParameter",
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** What every transport sends for a failed request. */
export interface ErrorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const GENERIC_MESSAGE = "Internal error; quote the request id when reporting it.";

/**
 * The one place that builds the error body `{"error": {code, message, requestId}}` (handler,
 * Lambda adapter and Node server all answer through it). Code and message reach the client only
 * when the error says they may (`expose`, by default a status below 500); anything else is a
 * generic 500 with the request id, so nothing internal leaks.
 */
export function errorResponse(error: unknown, requestId: string): ErrorResponse {
  const known = error instanceof BrokerError ? error : undefined;
  const status = known ? statusFor(known.code) : 500;
  const exposed = known !== undefined && (known.expose ?? status < 500);
  const code = exposed ? known.code : "InternalError";
  const message = exposed ? known.message : GENERIC_MESSAGE;
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "Cache-Control": "no-store",
    ...(error instanceof HttpError && error.headers),
    ...(error instanceof RetryLaterError && { "Retry-After": String(error.retryAfterSeconds) }),
  };
  return { status, headers, body: JSON.stringify({ error: { code, message, requestId } }) };
}
