import { RESERVED_TAG_PREFIX, type PoolConfig } from "./pool-config";
import type { PoolState } from "./ports";

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

/** True when the current activation can still hand out a pair that stays valid for the margin (I1, I2). */
export function canReserve(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  if (!state?.activationId || state.expiresAt === undefined || state.limit === undefined) return false;
  return (state.issued ?? 0) < state.limit && state.expiresAt > now + safetyMarginMs(pool);
}

/** Slots left on the current activation, as last seen. */
export function freeSlots(state: PoolState | undefined): number {
  return Math.max(0, (state?.limit ?? 0) - (state?.issued ?? 0));
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
