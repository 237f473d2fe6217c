import { errorName } from "./errors";
import type { PoolInventory } from "./inventory";
import type { Metrics } from "./metrics";
import type { ActivationProvider, Logger, PoolStateStore } from "./ports";
import { isSlotTheft, reportSlotTheft } from "./slot-theft";
import { currentOf } from "./vend-policy";

/**
 * The slot-theft check of a pool's current activation (src/core/slot-theft.ts says what theft is).
 * Never on a vend's path (one DynamoDB write per vend stays the steady state, I4): it runs for the
 * outgoing activation on every rotation, on a timer in long-running processes, and from the janitor.
 */

export { SLOT_THEFT_MESSAGE } from "./slot-theft";

export interface ReconcileDependencies {
  readonly store: Pick<PoolStateStore, "read">;
  /** Retiring makes the activation unreservable on every replica (the same write as revocation). */
  readonly pools: Pick<PoolInventory, "retire">;
  readonly activations: Pick<ActivationProvider, "describe">;
  readonly logger: Logger;
  /** SlotTheftDetected, as the janitor and the rotation count it. */
  readonly metrics?: Metrics;
}

export type ReconcileOutcome =
  | { readonly pool: string; readonly status: "no-activation" }
  /** The pool rotated while we looked: the next run checks the new activation. */
  | { readonly pool: string; readonly status: "moved-on"; readonly activationId: string }
  /** SSM does not know the activation (deleted by hand?): logged, left to the operator. */
  | { readonly pool: string; readonly status: "missing"; readonly activationId: string }
  | {
      readonly pool: string;
      readonly status: "consistent" | "retired";
      readonly activationId: string;
      readonly registrationsCount: number;
      readonly issued: number;
    };

/**
 * Checks the pool's current activation and retires it at once (PoolInventory.retire: the next
 * vend rotates) when SSM counts more registrations than the broker issued pairs.
 */
export async function reconcilePool(deps: ReconcileDependencies, pool: string): Promise<ReconcileOutcome> {
  const { store, pools, activations, logger } = deps;
  const before = currentOf(await store.read(pool));
  if (!before) return { pool, status: "no-activation" };
  const { activationId } = before;
  // SSM first, then the row again: `issued` read after the count can only be larger than when
  // SSM counted, so a pair handed out (and registered) meanwhile is never taken for theft.
  const summary = await activations.describe(activationId);
  if (!summary) {
    logger.warn("the pool's current activation is unknown to SSM", { pool, activationId });
    return { pool, status: "missing", activationId };
  }
  const after = currentOf(await store.read(pool));
  if (after?.activationId !== activationId) return { pool, status: "moved-on", activationId };
  const { issued } = after;
  const counts = { activationId, registrationsCount: summary.registrationsCount, issued };
  if (!isSlotTheft(counts)) return { pool, status: "consistent", ...counts };
  const action = await reportSlotTheft(
    deps,
    { pool, ...counts, detectedBy: "reconcile" },
    { retire: () => pools.retire(pool, activationId) },
  );
  return action === "retired"
    ? { pool, status: "retired", ...counts }
    : { pool, status: "moved-on", activationId };
}

/** Every pool in turn; one pool's failure is logged and does not stop the others. */
export async function reconcilePools(
  deps: ReconcileDependencies,
  pools: readonly string[],
): Promise<ReconcileOutcome[]> {
  const outcomes: ReconcileOutcome[] = [];
  for (const pool of pools) {
    try {
      outcomes.push(await reconcilePool(deps, pool));
    } catch (error) {
      deps.logger.warn("slot-theft check failed; the next run retries", {
        pool,
        error: errorName(error),
      });
    }
  }
  return outcomes;
}

/**
 * The check for an activation a rotation just replaced, with its final `issued`: nothing left to
 * retire, but a theft that already happened is reported. Best effort: never fails the rotation.
 */
export async function reportOutgoingActivation(
  deps: Pick<ReconcileDependencies, "activations" | "logger" | "metrics">,
  outgoing: { pool: string; activationId: string; issued: number },
): Promise<void> {
  try {
    const summary = await deps.activations.describe(outgoing.activationId);
    if (!summary) return;
    await reportSlotTheft(
      deps,
      { ...outgoing, registrationsCount: summary.registrationsCount, detectedBy: "rotation" },
      "rotated",
    );
  } catch (error) {
    deps.logger.warn("slot-theft check of the outgoing activation failed", {
      pool: outgoing.pool,
      activationId: outgoing.activationId,
      error: errorName(error),
    });
  }
}
