import type { Metrics } from "./metrics";
import type { Logger } from "./ports";

/**
 * Slot theft, in one place. The broker reserves one registration slot per pair it hands out, but
 * SSM counts registrations, not pairs: whoever holds a code (a node, or a local user who read it
 * from the agent's command line) can register more nodes with it. In honest use SSM can never
 * count more registrations than the broker handed out pairs, so more is proof of theft.
 *
 * Every check ends here — the long-running reconcile, the rotation (for the activation it
 * replaces), the janitor, and a refused pair — so each theft gives the same WARN line, the same
 * metric (SLOT_THEFT_METRIC, per pool, which the CDK alarm watches) and the same retire.
 */

export const SLOT_THEFT_MESSAGE =
  "security: an activation has more registrations than pairs handed out; someone is reusing a pair";

/** Counted once per theft found, dimension Pool; infra/constructs/monitoring.ts alarms on it. */
export const SLOT_THEFT_METRIC = "SlotTheftDetected";

/** What found it: the log line says so, for the operator who wonders why it ran then. */
export type TheftCheck = "reconcile" | "rotation" | "janitor" | "refused-pair";

export interface SlotTheftEvidence {
  readonly pool: string;
  readonly activationId: string;
  /** Pairs the broker handed out from the activation. */
  readonly issued: number;
  /** What SSM counted. */
  readonly registrationsCount: number;
  readonly detectedBy: TheftCheck;
}

/**
 * What was done about it: retired now; already rotated (the pool moved on before the retire);
 * rotated (the rotation's own check, of the activation it just replaced); a dry run's report; or
 * a retire that failed (the caller's next run retries).
 */
export type TheftAction = "retired" | "already rotated" | "rotated" | "dry run" | "retire failed";

/** How the caller deals with a theft: a retire to attempt, or why there is nothing to retire. */
export type TheftResolution = { readonly retire: () => Promise<boolean> } | "rotated" | "dry run";

export function isSlotTheft(counts: {
  readonly issued: number;
  readonly registrationsCount: number;
}): boolean {
  return counts.registrationsCount > counts.issued;
}

/**
 * Reports a theft when SSM counts more than was issued: first the retire (one conditional write
 * that makes the activation unreservable on every replica), then the WARN line and the metric.
 * Returns the action, or undefined when the counts show no theft. A retire that throws is still
 * reported, as "retire failed", and its error goes on to the caller.
 */
export async function reportSlotTheft(
  deps: { readonly logger: Logger; readonly metrics?: Metrics | undefined },
  evidence: SlotTheftEvidence,
  resolution: TheftResolution,
): Promise<TheftAction | undefined> {
  if (!isSlotTheft(evidence)) return undefined;
  let action: TheftAction = "retire failed";
  try {
    if (typeof resolution === "string") action = resolution;
    else action = (await resolution.retire()) ? "retired" : "already rotated";
  } finally {
    deps.metrics?.count(SLOT_THEFT_METRIC, 1, { Pool: evidence.pool });
    deps.logger.warn(SLOT_THEFT_MESSAGE, {
      security: true,
      pool: evidence.pool,
      activationId: evidence.activationId,
      issued: evidence.issued,
      registrationsCount: evidence.registrationsCount,
      action,
      detectedBy: evidence.detectedBy,
    });
  }
  return action;
}
