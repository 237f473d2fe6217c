import { RESERVED_TAG_PREFIX, type PoolConfig } from "./pool-config";
import type { Link, PoolState, Reservation } from "./ports";

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

export type { Link } from "./ports";

/**
 * The most activations a pool row names at once: the row stays under 1 KB with all of them
 * (test/aws/dynamodb-pool-row.test.ts), so a reservation costs one write capacity unit (I4).
 */
export const MAX_LINKS = 25;
/** The deepest standby a refill builds: all of the row's activations but the current one. */
export const MAX_STANDBY_DEPTH = MAX_LINKS - 1;
/**
 * How long the stock lasts at the pool's pace: about the time a refill takes to land once asked
 * for. On Lambda the self-invocation waits behind the invocations queued before it, about 170 in
 * the benchmark's Lambda shape at C=200, some 2 s at its pace (docs/performance.md): with 1 s the
 * L=10 burst ran dry and cost 3.34 calls and 1.63 WCU per vend, with 2 s 2.45 and 1.26. The
 * depth is the activations the pool uses in that time, measured (nextStandbyDepth).
 */
export const STOCK_COVER_MS = 2_000;

/** The row's live activations, current first (none without a row). */
export function linksOf(state: PoolState | undefined): readonly Link[] {
  return state?.links ?? [];
}

/** The activation the pool hands slots out from first (undefined without one). */
export function currentOf(state: PoolState | undefined): Link | undefined {
  return state?.links[0];
}

/** The queue: the activations ready after the standby (I9). */
export function queuedOf(state: PoolState | undefined): readonly Link[] {
  return linksOf(state).slice(2);
}

function standbyUsable(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  const standby = linksOf(state)[1];
  return (
    standby !== undefined && standby.issued < standby.limit && standby.expiresAt > now + safetyMarginMs(pool)
  );
}

/**
 * True when store.reserve can hand out a pair that stays valid for the margin (I1, I2): from the
 * first activation with slots left, the current one, the standby or the queue (I9). The queue is
 * one alternative of the reservation's condition, so its earliest expiry guards all of it.
 */
export function canReserve(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  const links = linksOf(state);
  const open = links.findIndex((l) => l.issued < l.limit);
  if (open < 0) return false;
  const guarding = open < 2 ? [links[open] as Link] : links.slice(2);
  return guarding.every((l) => l.expiresAt > now + safetyMarginMs(pool));
}

/** The current activation expires with slots left while a valid standby waits: switch to it. */
export function canSwitchToStandby(state: PoolState | undefined, pool: PoolConfig, now: number): boolean {
  return !canReserve(state, pool, now) && standbyUsable(state, pool, now);
}

/** Activations nobody has used yet: the pool's ready stock (I9). */
export function unusedCount(links: readonly Link[]): number {
  return links.filter((l) => l.issued === 0).length;
}

/** The depth the row asks for: 1 unless a dry rotation or a refill set more (I9). */
export function standbyDepth(state: PoolState | undefined): number {
  return Math.min(MAX_STANDBY_DEPTH, Math.max(1, state?.standbyDepth ?? 1));
}

/** The pool has an activation but fewer unused ones than its depth: refill (I9). */
export function needsStandby(state: PoolState | undefined): boolean {
  const links = linksOf(state);
  return links.length > 0 && unusedCount(links) < standbyDepth(state);
}

/**
 * The depth the pool keeps from now on (I9): towards the pool's pace, and deeper only when the
 * stock ran out before a refill could replace it *and* the pace asks for more.
 * - The pace: the activations that went into use since the stock was last made (the depth
 *   recorded then, less the unused ones left), over the time since, for STOCK_COVER_MS.
 * - Late: more than half the stock went into use before this refill (it is asked for when the
 *   first one does), or `ranOut`: the caller saw the stock run out (a request found every slot
 *   used and rotates; a refill found its own commit used up while it ran).
 * The depth moves to the pace by at most a factor of two a step, and above the current depth
 * only when late. A refill that DynamoDB or SSM made late measures the same use over a longer
 * interval, a slower pace: the depth stays or falls, never grows because the store is slow. A row
 * that records no refill (`refilledAt`) has no pace: late doubles, else the depth stays. Within 1
 * and MAX_STANDBY_DEPTH.
 */
export function nextStandbyDepth(state: PoolState, now: number, ranOut = false): number {
  const depth = standbyDepth(state);
  const used = Math.max(0, depth - unusedCount(linksOf(state)));
  const late = ranOut || used > (depth + 1) / 2;
  const ceiling = late ? 2 * depth : depth;
  const next =
    state.refilledAt === undefined
      ? ceiling
      : Math.min(
          ceiling,
          Math.max(
            Math.floor(depth / 2),
            Math.ceil((used * STOCK_COVER_MS) / Math.max(1, now - state.refilledAt)),
          ),
        );
  return Math.min(MAX_STANDBY_DEPTH, Math.max(1, next));
}

/**
 * The depth a commit records (I9): `depth` as planned when every activation asked for was made;
 * when fewer were (throttling, a full Parameter Store), the unused activations the pool is left
 * with (at least 1), so a lasting failure does not double the depth on every round.
 */
export function depthAfterCreation(depth: number, unusedAfter: number, short: boolean): number {
  return short ? Math.max(1, unusedAfter) : depth;
}

/** A refill's plan (planRefill). */
export interface RefillPlan {
  /** The row's activations as read, current first: the commit pins them. */
  readonly seen: string[];
  /** The exhausted activations at the front: the commit drops them, and their slots (`shift`). */
  readonly dropped: Link[];
  readonly shift: number;
  readonly kept: Link[];
  /** The generation after the commit: one more per dropped activation. */
  readonly generation: number;
  readonly depth: number;
  /** Activations to create: up to the depth, within MAX_LINKS and the rotation budget (I7). */
  readonly create: number;
}

/**
 * What a refill starting now does (I9), from the row it read before taking the lease.
 * `afterRefill`: the same task committed a refill just before this read; finding less than one
 * activation's slots left means the pool used that refill up while it ran (the stock ran out).
 * Only for a pool with an activation (needsStandby), the one whose slots that compares with.
 */
export function planRefill(
  state: PoolState,
  pool: PoolConfig,
  now: number,
  afterRefill: boolean,
): RefillPlan {
  const links = linksOf(state);
  const open = links.findIndex((l) => l.issued < l.limit);
  const dropped = links.slice(0, open < 0 ? links.length : open);
  const kept = links.slice(dropped.length);
  const ranOut = afterRefill && freeSlots(state) < (links[0] as Link).limit;
  const depth = nextStandbyDepth(state, now, ranOut);
  // With nothing kept, the first new activation becomes current, unused: it counts in the stock.
  const wanted = depth - unusedCount(kept);
  return {
    seen: links.map((l) => l.activationId),
    dropped,
    shift: dropped.reduce((sum, l) => sum + l.limit, 0),
    kept,
    generation: state.generation + dropped.length,
    depth,
    create: Math.max(0, Math.min(wanted, MAX_LINKS - kept.length, rotationBudgetRoom(state, pool, now))),
  };
}

/** Slots left on the pool's activations, as last seen. */
export function freeSlots(state: PoolState | undefined): number {
  return linksOf(state).reduce((sum, l) => sum + Math.max(0, l.limit - l.issued), 0);
}

/**
 * The reservation a write just took: the last slot counted, on the last activation in use (the
 * counter runs through the activations in order).
 */
export function reservationFrom(state: PoolState): Reservation {
  const links = linksOf(state);
  const inUse = Math.max(
    0,
    links.findLastIndex((l) => l.issued > 0),
  );
  const link = links[inUse] as Link;
  return {
    pool: state.pool,
    generation: state.generation,
    activationId: link.activationId,
    expiresAt: link.expiresAt,
    limit: link.limit,
    slot: link.issued,
    needsStandby: unusedCount(links) < standbyDepth(state),
    next: links.slice(inUse + 1).map((l) => l.activationId),
  };
}

/** The rotation budget's window: maxActivationsPerHour counts the activations created per hour (I7). */
export const ROTATION_WINDOW_MS = HOUR_MS;

/** Activations the pool may still create in the open window (I7): its budget when none is open. */
export function rotationBudgetRoom(state: PoolState | undefined, pool: PoolConfig, now: number): number {
  const open =
    state?.rotationWindowStart !== undefined && state.rotationWindowStart > now - ROTATION_WINDOW_MS;
  return pool.maxActivationsPerHour - (open ? (state.rotationsInWindow ?? 0) : 0);
}

/** True when the pool has created its maximum of activations in the open window. */
export function rotationBudgetExhausted(
  state: PoolState | undefined,
  pool: PoolConfig,
  now: number,
): boolean {
  return rotationBudgetRoom(state, pool, now) <= 0;
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

/**
 * A pause of a request waiting out another's rotation: the jittered backoff, capped at a fifth of
 * the time its wait has left, within [50 ms, 1 s]. The waiters of a pool draw for the slots each
 * commit brings, and whoever looks first after it wins; with a cap that shrinks as the wait runs
 * out, the requests closest to their 503 look most often, and those with time to spare less often.
 * Measured (Lambda shape, Parameter Store's default throughput, L=10: activations come slower than
 * 32 containers ask): 5, 19 and 41 503s of 2,000 in three runs, against 59 and 55 with a fixed
 * 500 ms cap, for about as many reads (docs/performance.md).
 */
export function waitPauseMs(attempt: number, leftMs: number, random: () => number): number {
  return backoffMs(attempt, random, 50, Math.max(50, Math.min(1_000, leftMs / 5)));
}

/**
 * A pool whose row keeps moving on (rotations and refills commit) is busy, not stuck: a request
 * that sees it move waits another rotation wait from then, up to this long in all (RotationWait).
 * At Parameter Store's default throughput (3 `PutParameter` a second, one per activation) an L=10
 * pool serves about 30 vends a second, so 200 requests in flight wait about 6.7 s each (Little's
 * law): past a fixed 5 s wait whatever the order. 15 s leaves the function (25 s) time for the
 * request's own rotation, inside API Gateway's 29 s.
 */
export const BUSY_POOL_WAIT_CAP_MS = 15_000;
/** How long after its wait's longest end a request's own rotation may still retry (RotationWait.answerBy). */
const ANSWER_MARGIN_MS = 5_000;

/**
 * A request's wait for other requests' rotations: `waitMs` from its arrival, started again by each
 * look that finds the pool moved on (a rotation or a switch bumps the generation, a refill stamps
 * `refilledAt`), up to BUSY_POOL_WAIT_CAP_MS in all (or `waitMs`, if longer). A pool that stands
 * still gets its 503 after `waitMs`, as before.
 */
export class RotationWait {
  private readonly firstEnd: number;
  private readonly cap: number;
  private end: number;
  private mark: string | undefined;

  constructor(
    arrived: number,
    private readonly waitMs: number,
  ) {
    this.firstEnd = arrived + waitMs;
    this.cap = arrived + Math.max(waitMs, BUSY_POOL_WAIT_CAP_MS);
    this.end = this.firstEnd;
  }

  /** A look at the pool: one that finds it moved on since the previous look starts the wait again. */
  saw(state: PoolState | undefined, now: number): void {
    const mark = `${state?.generation ?? 0}/${state?.refilledAt ?? 0}`;
    if (this.mark !== undefined && mark !== this.mark) this.end = Math.min(this.cap, now + this.waitMs);
    this.mark = mark;
  }

  over(now: number): boolean {
    return now >= this.end;
  }

  /**
   * When the request's own rotation stops retrying its writes: 5 s after its wait's longest end,
   * so a request that rotates at the end of a 15 s wait still answers inside the function's 25 s
   * (a throttled `PutParameter` is otherwise tried again for half the lease, 15 s).
   */
  get answerBy(): number {
    return this.cap + ANSWER_MARGIN_MS;
  }

  /**
   * What the pauses shrink towards (waitPauseMs): the end of the first wait while it lasts, so the
   * oldest waiters look most often whatever moves, then the end of the extension.
   */
  pauseDeadline(now: number): number {
    return now < this.firstEnd ? this.firstEnd : this.end;
  }
}

/** Seconds a client should wait when a rotation is in progress: the lease's rest, within [1, 5]. */
export function rotationRetryAfterSeconds(state: PoolState | undefined, now: number): number {
  const rest = state?.leaseDeadline !== undefined ? Math.ceil((state.leaseDeadline - now) / 1000) : 1;
  return Math.min(5, Math.max(1, rest));
}
