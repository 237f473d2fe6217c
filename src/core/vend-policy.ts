import { RESERVED_TAG_PREFIX, type PoolConfig } from "./pool-config";
import type { PoolState, Reservation } from "./ports";

/** Marker tags on every activation the broker creates; the janitor and the CLI find orphans by them. */
export const TAG_DEPLOYMENT = `${RESERVED_TAG_PREFIX}deployment`;
export const TAG_POOL = `${RESERVED_TAG_PREFIX}pool`;
export const TAG_GENERATION = `${RESERVED_TAG_PREFIX}generation`;

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export function safetyMarginMs(pool: PoolConfig): number {
  return pool.safetyMarginMinutes * MINUTE_MS;
}

/**
 * Expiry of an activation created now. SSM takes ExpirationDate in whole seconds, so round down:
 * the stored expiry must never be later than the one SSM enforces.
 */
export function newActivationExpiry(pool: PoolConfig, now: number): number {
  return Math.floor((now + pool.expirationHours * HOUR_MS) / 1000) * 1000;
}

function currentUsable(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  if (!state?.activationId || state.expiresAt === undefined || state.limit === undefined) return false;
  return (state.issued ?? 0) < state.limit && state.expiresAt > now + safetyMarginMs(pool);
}

function standbyUsable(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  if (!state?.standbyId || state.standbyExpiresAt === undefined || state.standbyLimit === undefined)
    return false;
  return (
    (state.standbyIssued ?? 0) < state.standbyLimit && state.standbyExpiresAt > now + safetyMarginMs(pool)
  );
}

/**
 * True when store.reserve can hand out a pair that stays valid for the margin (I1, I2): from the
 * current activation, or from the standby once the current one is exhausted (I9).
 */
export function canReserve(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  if (currentUsable(state, pool, now)) return true;
  const exhausted = state?.limit !== undefined && (state.issued ?? 0) >= state.limit;
  return exhausted && standbyUsable(state, pool, now);
}

/** The current activation expires with slots left while a valid standby waits: switch to it. */
export function canSwitchToStandby(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  return !canReserve(state, pool, now) && standbyUsable(state, pool, now);
}

/** The pool has an activation but no unused standby: time to create one (I9). */
export function needsStandby(state: PoolState | undefined): boolean {
  if (!state?.activationId) return false;
  return state.standbyId === undefined || (state.standbyIssued ?? 0) > 0;
}

/** Slots left on the current activation and the standby, as last seen. */
export function freeSlots(state: PoolState | undefined): number {
  const current = Math.max(0, (state?.limit ?? 0) - (state?.issued ?? 0));
  const standby = Math.max(0, (state?.standbyLimit ?? 0) - (state?.standbyIssued ?? 0));
  return current + standby;
}

/** The reservation a write just took: the last slot counted, on the standby once it is in use. */
export function reservationFrom(state: PoolState): Reservation {
  const standbyInUse = (state.standbyIssued ?? 0) > 0;
  const common = {
    pool: state.pool,
    generation: state.generation,
    // Nothing unused is left once the standby is in use, or when there is none at all.
    needsStandby: state.standbyId === undefined || standbyInUse,
    // Stryker disable next-line ConditionalExpression: a key holding undefined reads as absent
    ...(state.standbyId !== undefined && { standbyId: state.standbyId }),
  };
  if (standbyInUse) {
    return {
      ...common,
      activationId: state.standbyId as string,
      expiresAt: state.standbyExpiresAt as number,
      limit: state.standbyLimit as number,
      slot: state.standbyIssued as number,
    };
  }
  return {
    ...common,
    activationId: state.activationId as string,
    expiresAt: state.expiresAt as number,
    limit: state.limit as number,
    slot: state.issued as number,
  };
}

/** The rotation budget's window: maxActivationsPerHour counts leases per hour (I7). */
export const ROTATION_WINDOW_MS = HOUR_MS;

/** True when the pool has taken its maximum of rotation leases in the open window. */
export function rotationBudgetExhausted(
  state: PoolState | undefined,
  pool: PoolConfig,
  now: number,
): boolean {
  return (
    state?.rotationWindowStart !== undefined &&
    state.rotationWindowStart > now - ROTATION_WINDOW_MS &&
    (state.rotationsInWindow ?? 0) >= pool.maxActivationsPerHour
  );
}

/** Seconds until the budget's window closes (at least 1). */
export function rotationBudgetRetryAfterSeconds(state: PoolState | undefined, now: number): number {
  const opensAt = (state?.rotationWindowStart ?? now) + ROTATION_WINDOW_MS;
  return Math.max(1, Math.ceil((opensAt - now) / 1000));
}

export function leaseHeldByOther(state: PoolState | undefined, now: number): boolean {
  return state?.leaseDeadline !== undefined && state.leaseDeadline > now;
}

export function activationTags(
  pool: PoolConfig,
  deployment: string,
  generation: number,
): Record<string, string> {
  return {
    ...pool.tags,
    [TAG_DEPLOYMENT]: deployment,
    [TAG_POOL]: pool.name,
    [TAG_GENERATION]: String(generation),
  };
}

/** Full-jitter backoff: a random wait in [0, min(cap, base·2^attempt)], never below 10 ms. */
export function backoffMs(attempt: number, random: () => number, baseMs = 50, capMs = 500): number {
  return Math.max(10, Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt)));
}

/** Seconds a client should wait when a rotation is in progress: the lease's rest, within [1, 5]. */
export function rotationRetryAfterSeconds(state: PoolState | undefined, now: number): number {
  const rest = state?.leaseDeadline !== undefined ? Math.ceil((state.leaseDeadline - now) / 1000) : 1;
  return Math.min(5, Math.max(1, rest));
}
