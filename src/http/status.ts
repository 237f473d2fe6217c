/**
 * The one table from error codes to HTTP statuses. Codes below 500 carry a message that is safe
 * to show the client; anything else is answered with a generic message and a request id.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  InvalidPoolName: 400,
  InvalidParameter: 400,
  NotAnEksPool: 400,
  NotFound: 404,
  PoolNotFound: 404,
  MethodNotAllowed: 405,
  RotationInProgress: 503,
  Throttled: 503,
  UpstreamUnavailable: 503,
};

export function statusFor(code: string): number {
  return STATUS_BY_CODE[code] ?? 500;
}
