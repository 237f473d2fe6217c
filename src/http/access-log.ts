import { BrokerError } from "../core/errors";
import type { MetricName, Metrics } from "../core/metrics";
import type { Logger } from "../core/ports";

/**
 * What one request did, for its log line: set by the route that served it (or by the error
 * path), never the response body. Nothing here can hold a code.
 */
export interface RequestOutcome {
  /** "vended", "rotated" (this request created the activation it was given), "served", or an error code. */
  readonly outcome: string;
  readonly pool?: string;
  readonly activationId?: string;
  readonly slot?: number;
  readonly limit?: number;
  /** For a request that said `?refused=`: what the check found (src/core/refused-pairs.ts). */
  readonly refused?: string;
  /** Error details for refusals and failures (name, code, message, cause). */
  readonly error?: Readonly<Record<string, unknown>>;
}

/** Refusals worth a metric of their own; the rotation budget's refusal code joins here. */
const METRIC_BY_CODE: Readonly<Record<string, MetricName>> = {
  Throttled: "Throttles",
  RotationBudgetExhausted: "BudgetRefusals",
};

/**
 * One line per request (a health check only when it fails): request id, method, path, pool,
 * status, outcome, activation id, slot/limit and milliseconds — at info for answers below 400, warn for refusals (4xx, 503),
 * error for failures. Plus the request's metrics.
 */
export function logRequest(
  logger: Logger,
  metrics: Metrics,
  request: { readonly requestId: string; readonly method: string; readonly path: string },
  response: { readonly status: number },
  outcome: RequestOutcome,
  ms: number,
): void {
  // A load balancer checks every few seconds: a health check is logged only when it fails.
  if (response.status < 400 && request.path.replace(/\/+$/, "") === "/healthz") return;
  const line = {
    requestId: request.requestId,
    method: request.method,
    path: request.path,
    ...(outcome.pool !== undefined && { pool: outcome.pool }),
    status: response.status,
    outcome: outcome.outcome,
    ...(outcome.activationId !== undefined && { activationId: outcome.activationId }),
    ...(outcome.refused !== undefined && { refused: outcome.refused }),
    ...(outcome.slot !== undefined &&
      outcome.limit !== undefined && { slot: `${outcome.slot}/${outcome.limit}` }),
    ms: Math.round(ms),
    ...(outcome.error !== undefined && { error: outcome.error }),
  };
  // A spent rotation budget refuses every request until the window moves: one line each at
  // debug, so a hostile flood cannot flood the log; the BudgetRefusals metric still counts them.
  if (outcome.outcome === "RotationBudgetExhausted") logger.debug("request", line);
  else if (response.status < 400) logger.info("request", line);
  else if (response.status < 500 || response.status === 503) logger.warn("request", line);
  else logger.error("request", line);

  const dimensions = outcome.pool !== undefined ? { Pool: outcome.pool } : undefined;
  if (outcome.outcome === "vended" || outcome.outcome === "rotated") {
    metrics.count("Vends", 1, dimensions);
    if (outcome.slot !== undefined && outcome.limit !== undefined) {
      metrics.gauge("SlotsLeft", outcome.limit - outcome.slot, dimensions);
    }
  }
  const metric = METRIC_BY_CODE[outcome.outcome];
  if (metric) metrics.count(metric, 1, dimensions);
}

export function errorOutcome(error: unknown, pool: string | undefined): RequestOutcome {
  const code = error instanceof BrokerError ? error.code : "InternalError";
  return { outcome: code, ...(pool !== undefined && { pool }), error: describe(error) };
}

/** Error name, code and message — never the request input, so never a code. */
function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const cause = error.cause instanceof Error ? { cause: `${error.cause.name}: ${error.cause.message}` } : {};
  return { name: error.name, message: error.message, ...cause };
}
