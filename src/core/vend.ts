import {
  InvalidPoolNameError,
  PoolNotFoundError,
  RotationBudgetExhaustedError,
  RotationInProgressError,
  SecretNotFoundError,
} from "./errors";
import { POOL_NAME_PATTERN, type PoolConfig } from "./pool-config";
import type {
  ActivationProvider,
  Clock,
  Logger,
  PoolState,
  PoolStateStore,
  Reservation,
  SecretStore,
  Sleeper,
} from "./ports";
import {
  activationTags,
  backoffMs,
  canReserve,
  freeSlots,
  leaseHeldByOther,
  newActivationExpiry,
  ROTATION_WINDOW_MS,
  rotationBudgetExhausted,
  rotationBudgetRetryAfterSeconds,
  rotationRetryAfterSeconds,
  safetyMarginMs,
} from "./vend-policy";
import type { Metrics } from "./metrics";
import { reportOutgoingActivation } from "./reconcile";

export interface VendedPair {
  readonly pool: string;
  readonly activationId: string;
  readonly activationCode: string;
  readonly expiresAt: number;
  /** The reservation's slot of `limit`, for the request's log line and the SlotsLeft metric. */
  readonly slot?: number;
  readonly limit?: number;
  /** True when this request created the activation it was given. */
  readonly rotated?: boolean;
}

export interface VendOptions {
  /** A holder that crashes blocks rotation at most this long (I3). */
  readonly leaseMs: number;
  /** How long a request waits for another request's rotation before answering 503. */
  readonly rotationWaitMs: number;
  /** Value of the deployment marker tag on every activation this broker creates. */
  readonly deployment: string;
}

export interface VendDependencies {
  readonly pools: ReadonlyMap<string, PoolConfig>;
  readonly store: PoolStateStore;
  readonly activations: ActivationProvider;
  readonly secrets: SecretStore;
  readonly clock: Clock;
  readonly sleeper: Sleeper;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly options: VendOptions;
  readonly random?: () => number;
  readonly newOwnerId?: () => string;
}

interface RoundOutcome {
  /** The rotating request's own pair (slot 1 of the new activation); only the leader may use it. */
  readonly pair?: VendedPair;
  readonly state: PoolState | undefined;
  /** How many waiting requests may usefully retry the reservation: an estimate, never a promise. */
  readonly freeSlots: number;
}

interface Round {
  readonly outcome: Promise<RoundOutcome>;
  /** Requests that have taken their turn after this round; the rotator takes the first. */
  admitted: number;
}

/** Codes are immutable per activation; a few pools' worth is all a process ever needs. */
const CODE_CACHE_SIZE = 64;
/** Bounds the loop even if the clock stands still (fake clocks) or the store misbehaves. */
const MAX_ATTEMPTS = 100;
/** A drained pool logs its refusals once a minute per process, not once per request. */
const BUDGET_WARNING_INTERVAL_MS = 60_000;

/**
 * The vend use case: hand out a pair that stays valid for the safety margin, reserving one
 * registration slot per pair, and rotate to a new activation exactly once per exhaustion.
 *
 * Steady state is one conditional write (store.reserve) and a cached code (I4). Only when the
 * reservation fails does the vendor read the pool row and, if the row is spent, race for the
 * rotation lease; losers wait for the winner's commit instead of creating activations (I5).
 */
export class Vendor {
  private readonly codes = new Map<string, Promise<string>>();
  private readonly rounds = new Map<string, Round>();
  private readonly budgetWarnedAt = new Map<string, number>();
  private readonly random: () => number;
  private readonly newOwnerId: () => string;

  constructor(private readonly deps: VendDependencies) {
    this.random = deps.random ?? Math.random;
    this.newOwnerId = deps.newOwnerId ?? (() => globalThis.crypto.randomUUID());
  }

  poolNames(): string[] {
    return [...this.deps.pools.keys()];
  }

  async vend(poolName: string): Promise<VendedPair> {
    if (!POOL_NAME_PATTERN.test(poolName)) throw new InvalidPoolNameError(poolName);
    const pool = this.deps.pools.get(poolName);
    if (!pool) throw new PoolNotFoundError(poolName);

    const { store, clock, options } = this.deps;
    const giveUpAt = clock.now() + options.rotationWaitMs;
    let lastSeen: PoolState | undefined;
    let skipReservation = false;
    for (let attempt = 0; ; attempt++) {
      if (!skipReservation && attempt < MAX_ATTEMPTS) {
        const reservation = await store.reserve(pool.name, clock.now() + safetyMarginMs(pool));
        if (reservation) {
          const pair = await this.pairOrReplacement(pool, reservation);
          if (pair) return pair;
          // That reservation's activation was rotated away and its code deleted: reserve anew.
          this.deps.logger.debug("reserved slot outlived its activation's code; reserving again", {
            pool: pool.name,
            activationId: reservation.activationId,
          });
          continue;
        }
      }
      // The first failure always gets a round, so a request with no wait budget still rotates.
      if (attempt > 0 && (clock.now() >= giveUpAt || attempt >= MAX_ATTEMPTS)) {
        throw new RotationInProgressError(pool.name, rotationRetryAfterSeconds(lastSeen, clock.now()));
      }

      // One request per process and pool finds out why the reservation failed (a "round"); the
      // others await it. Afterwards only as many of them retry the reservation as the round saw
      // free slots, so a burst of N requests costs a few writes per rotation instead of N.
      let round = this.rounds.get(pool.name);
      if (!round) {
        const started: Round = {
          outcome: this.investigate(pool, attempt).finally(() => this.rounds.delete(pool.name)),
          admitted: 0,
        };
        this.rounds.set(pool.name, started);
        round = started;
      }
      const outcome = await round.outcome;
      const turn = round.admitted++;
      if (outcome.pair && turn === 0) return outcome.pair; // slot 1 of the new activation
      lastSeen = outcome.state;
      skipReservation = (outcome.pair ? turn - 1 : turn) >= outcome.freeSlots;
    }
  }

  /**
   * Why did the reservation fail? Someone rotated meanwhile (retry at once), the pool is spent
   * and the lease is free (rotate), or another request is rotating (wait a jittered moment).
   */
  private async investigate(pool: PoolConfig, attempt: number): Promise<RoundOutcome> {
    const { store, clock, sleeper } = this.deps;
    const now = clock.now();
    const state = await store.read(pool.name);
    if (canReserve(state, pool, now)) return { state, freeSlots: freeSlots(state) };
    if (!leaseHeldByOther(state, now)) {
      if (rotationBudgetExhausted(state, pool, now)) throw this.budgetExhausted(pool, state, now);
      const pair = await this.rotate(pool, state, now);
      // The commit took slot 1 for the rotator. A lost race leaves no estimate: let one retry.
      return pair ? { pair, state, freeSlots: pool.registrationLimit - 1 } : { state, freeSlots: 1 };
    }
    this.deps.metrics?.count("LeaseWaits", 1, { Pool: pool.name });
    await sleeper.sleep(backoffMs(attempt, this.random));
    return { state, freeSlots: 0 };
  }

  /**
   * Creates the next activation under the lease. Timeline of a crash-safe rotation:
   *   acquireLease(gen)  → CreateActivation (tagged gen+1) → PutParameter → commitRotation(gen)
   * A holder that dies anywhere before the commit leaves an activation tagged with a generation
   * the pool row never reached: the janitor deletes it; the lease lapses by itself (I3).
   */
  private async rotate(
    pool: PoolConfig,
    outgoing: PoolState | undefined,
    now: number,
  ): Promise<VendedPair | undefined> {
    const { store, activations, secrets, logger, options } = this.deps;
    const owner = this.newOwnerId();
    const generation = outgoing?.generation ?? 0;
    // The lease write also counts against the pool's rotation budget (I7): when it fails, the
    // caller's next round reads the row and answers 429 if the budget, not a rival, stopped it.
    const acquired = await store.acquireLease(pool.name, {
      owner,
      generation,
      now,
      deadline: now + options.leaseMs,
      budget: { max: pool.maxActivationsPerHour, windowMs: ROTATION_WINDOW_MS },
    });
    if (!acquired) return undefined;

    const nextGeneration = generation + 1;
    const expiresAt = newActivationExpiry(pool, now);
    let activationId: string | undefined;
    try {
      const created = await activations.create({
        pool: pool.name,
        generation: nextGeneration,
        iamRole: pool.iamRole,
        registrationLimit: pool.registrationLimit,
        expiresAt,
        tags: activationTags(pool, options.deployment, nextGeneration),
        // Unset settings stay undefined: the SSM adapter leaves them out of the request.
        defaultInstanceName: pool.defaultInstanceName,
        description: pool.description,
      });
      activationId = created.activationId;
      await secrets.put({ pool: pool.name, activationId, activationCode: created.activationCode, expiresAt });
      const reservation = await store.commitRotation(pool.name, {
        owner,
        generation,
        activation: { activationId, expiresAt, limit: pool.registrationLimit },
      });
      if (!reservation) {
        // Our lease lapsed and another request took over: what we created is an orphan.
        logger.warn("rotation lease lost before commit; discarding the new activation", {
          pool: pool.name,
          activationId,
          generation: nextGeneration,
        });
        await this.discard(pool.name, activationId);
        return undefined;
      }
      this.remember(activationId, Promise.resolve(created.activationCode));
      this.deps.metrics?.count("Rotations", 1, { Pool: pool.name });
      logger.info("rotated to a new activation", {
        pool: pool.name,
        activationId,
        generation: nextGeneration,
        expiresAt: new Date(expiresAt).toISOString(),
        registrationLimit: pool.registrationLimit,
      });
      if (outgoing?.activationId) await this.retireOutgoing(pool, outgoing, outgoing.activationId);
      return { ...this.toPair(reservation, created.activationCode), rotated: true };
    } catch (error) {
      this.deps.metrics?.count("RotationFailures", 1, { Pool: pool.name });
      await store.releaseLease(pool.name, owner).catch((releaseError: unknown) =>
        logger.warn("could not release the rotation lease; it lapses by itself", {
          pool: pool.name,
          error: errorName(releaseError),
        }),
      );
      if (activationId) await this.discard(pool.name, activationId);
      throw error;
    }
  }

  /**
   * After a commit, the outgoing activation's code is no longer needed: pairs already handed out
   * carry it, and registered nodes never need it again. Deleting it keeps Parameter Store at about
   * one parameter per pool (I7; the standard tier holds 10,000 per account and Region). A
   * request that reserved one of its last slots and has not read the code yet finds it gone and
   * retries (pairOrReplacement). The slot-theft check of the outgoing activation runs here too.
   * Best effort: the rotation has committed, so neither may fail the caller's vend.
   */
  private async retireOutgoing(pool: PoolConfig, outgoing: PoolState, activationId: string): Promise<void> {
    const { secrets, activations, logger } = this.deps;
    this.codes.delete(activationId);
    await Promise.all([
      secrets.delete(pool.name, activationId).catch((error: unknown) =>
        logger.warn("could not delete the outgoing activation's code; the janitor will", {
          pool: pool.name,
          activationId,
          error: errorName(error),
        }),
      ),
      reportOutgoingActivation(
        { activations, logger },
        { pool: pool.name, activationId, issued: outgoing.issued ?? 0 },
      ),
    ]);
  }

  private budgetExhausted(pool: PoolConfig, state: PoolState | undefined, now: number): Error {
    const retryAfterSeconds = rotationBudgetRetryAfterSeconds(state, now);
    const last = this.budgetWarnedAt.get(pool.name);
    if (last === undefined || now - last >= BUDGET_WARNING_INTERVAL_MS) {
      this.budgetWarnedAt.set(pool.name, now);
      this.deps.logger.warn("rotation budget exhausted; refusing vends until the window closes", {
        pool: pool.name,
        maxActivationsPerHour: pool.maxActivationsPerHour,
        rotationsInWindow: state?.rotationsInWindow,
        retryAfterSeconds,
      });
    }
    return new RotationBudgetExhaustedError(pool.name, retryAfterSeconds);
  }

  /** Best effort: an orphan that survives this is still tagged for the janitor. */
  private async discard(pool: string, activationId: string): Promise<void> {
    await Promise.allSettled([
      this.deps.activations.delete(activationId),
      this.deps.secrets.delete(pool, activationId),
    ]);
  }

  /**
   * The pair for a reservation, or undefined when the caller must reserve again.
   *
   * The code can be missing for two reasons. (1) A rotation committed after our reservation and
   * deleted the outgoing activation's code (retireOutgoing) before we, with a cold cache, read
   * it: the pool's generation has moved past the reservation's. Our slot on that activation is
   * spent (it stays counted in its `issued`, which only errs on the safe side), and rotating
   * would be wrong, since the pool already has a fresh activation: reserve again. (2) The pool
   * is still at the reservation's generation and the code was deleted by hand: every later
   * reservation would fail the same way until the limit ran out, so rotate past it, exactly as
   * if it were spent.
   */
  private async pairOrReplacement(
    pool: PoolConfig,
    reservation: Reservation,
  ): Promise<VendedPair | undefined> {
    try {
      return await this.pairFor(reservation);
    } catch (error) {
      if (!(error instanceof SecretNotFoundError)) throw error;
      const state = await this.deps.store.read(pool.name);
      if (state && state.generation > reservation.generation) return undefined;
      this.deps.logger.error("no stored code for the current activation; rotating past it", {
        pool: pool.name,
        activationId: reservation.activationId,
        generation: reservation.generation,
      });
      const now = this.deps.clock.now();
      if (rotationBudgetExhausted(state, pool, now)) throw this.budgetExhausted(pool, state, now);
      const rotated = await this.rotate(
        pool,
        state ?? { pool: pool.name, generation: reservation.generation },
        now,
      );
      if (rotated) return rotated;
      throw new RotationInProgressError(pool.name, rotationRetryAfterSeconds(undefined, now));
    }
  }

  private async pairFor(reservation: Reservation): Promise<VendedPair> {
    let code = this.codes.get(reservation.activationId);
    if (!code) {
      // Cache the promise, not the value, so a burst on a fresh activation reads the secret once.
      code = this.deps.secrets.get(reservation.pool, reservation.activationId).then((s) => s.activationCode);
      this.remember(reservation.activationId, code);
      code.catch(() => this.codes.delete(reservation.activationId));
    }
    return this.toPair(reservation, await code);
  }

  private remember(activationId: string, code: Promise<string>): void {
    if (this.codes.size >= CODE_CACHE_SIZE) {
      const oldest = this.codes.keys().next().value;
      if (oldest !== undefined) this.codes.delete(oldest);
    }
    this.codes.set(activationId, code);
  }

  private toPair(reservation: Reservation, activationCode: string): VendedPair {
    return {
      pool: reservation.pool,
      activationId: reservation.activationId,
      activationCode,
      expiresAt: reservation.expiresAt,
      slot: reservation.slot,
      limit: reservation.limit,
    };
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
