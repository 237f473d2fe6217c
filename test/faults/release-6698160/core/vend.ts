import {
  errorName,
  InvalidPoolNameError,
  PoolNotFoundError,
  RotationBudgetExhaustedError,
  RotationInProgressError,
} from "./errors";
import { CodeCache } from "./code-cache";
import { POOL_NAME_PATTERN, type PoolConfig } from "../../../../src/core/pool-config";
import type {
  ActivationProvider,
  Clock,
  Logger,
  NewActivation,
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
  canSwitchToStandby,
  depthAfterCreation,
  freeSlots,
  linksOf,
  needsStandby,
  leaseHeldByOther,
  unusedCount,
  newActivationExpiry,
  nextStandbyDepth,
  planRefill,
  rotationBudgetRoom,
  ROTATION_WINDOW_MS,
  rotationBudgetExhausted,
  rotationBudgetRetryAfterSeconds,
  rotationRetryAfterSeconds,
  safetyMarginMs,
} from "./vend-policy";
import type { Metrics } from "../../../../src/core/metrics";
import { reportOutgoingActivation } from "./reconcile";
import type { StandbyRefill } from "./standby-refill";

/** What a server is given: a pair that registers until `expiresAt`. */
export interface VendedPair {
  readonly pool: string;
  readonly activationId: string;
  readonly activationCode: string;
  readonly expiresAt: number;
}

/** What the caller's log line and metrics learn of a vend besides the pair. */
export interface VendReceipt {
  /** The reservation's slot of `limit` (the SlotsLeft metric). */
  readonly slot: number;
  readonly limit: number;
  /** This request created the activation it was given. */
  readonly rotated: boolean;
}

export interface Vend {
  readonly pair: VendedPair;
  readonly receipt: VendReceipt;
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
  /**
   * Where standby refills run (I9; src/core/standby-refill.ts), chosen where the process is wired:
   * long-running servers pass `BackgroundRefill` (in this process, in the background); Lambda
   * passes `refillElsewhere`, because a frozen container runs no background work, and the refill
   * then arrives as its own event (vendor.refillUntilReady).
   */
  readonly standbyRefill: StandbyRefill;
}

interface RoundOutcome {
  /** The rotating request's own pair (slot 1 of the new activation); only the leader may use it. */
  readonly pair?: Vend;
  readonly state: PoolState | undefined;
  /** How many waiting requests may usefully retry the reservation: an estimate, never a promise. */
  readonly freeSlots: number;
  /** The round itself waited for the pool to change (another holder had the lease). */
  readonly waited?: boolean;
}

interface NewPair {
  readonly activationId: string;
  readonly activationCode: string;
  readonly expiresAt: number;
}

interface Round {
  readonly outcome: Promise<RoundOutcome>;
  /**
   * Arrival tickets of the requests awaiting this round. Turns go by arrival, so a request that
   * lost an earlier round goes before ones that came later (no starvation); the rotator's pair
   * goes to the earliest.
   */
  readonly waiting: number[];
}

/** What a rotation answers when it could not take the lease. */
const LEASE_REFUSED = "lease-refused";

/** Bounds the loop even if the clock stands still (fake clocks) or the store misbehaves. */
const MAX_ATTEMPTS = 100;
/** A drained pool logs its refusals once a minute per process, not once per request. */
const BUDGET_WARNING_INTERVAL_MS = 60_000;
/** Refills one background task may chain before it leaves the rest to the next reservation. */
const REFILL_ROUNDS = 8;
/** Longest a request waits on this process's refill before looking at the pool again. */
const REFILL_WAIT_CAP_MS = 1_000;

/**
 * The vend use case: hand out a pair that stays valid for the safety margin, reserving one
 * registration slot per pair, and rotate to a new activation exactly once per exhaustion.
 *
 * Steady state is one conditional write (store.reserve) and a cached code (I4). Only when the
 * reservation fails does the vendor read the pool row and, if the row is spent, race for the
 * rotation lease; losers wait for the winner's commit instead of creating activations (I5).
 */
export class Vendor {
  private readonly codes: CodeCache;
  private readonly rounds = new Map<string, Round>();
  private readonly budgetWarnedAt = new Map<string, number>();
  private readonly standbyRefill: StandbyRefill;
  private readonly random: () => number;
  private readonly newOwnerId: () => string;
  private nextTicket = 0;

  constructor(private readonly deps: VendDependencies) {
    this.codes = new CodeCache(deps.secrets);
    this.standbyRefill = deps.standbyRefill;
    this.random = deps.random ?? Math.random;
    this.newOwnerId = deps.newOwnerId ?? (() => globalThis.crypto.randomUUID());
  }

  poolNames(): string[] {
    return [...this.deps.pools.keys()];
  }

  async vend(poolName: string): Promise<VendedPair> {
    return (await this.vendWithReceipt(poolName)).pair;
  }

  /** The same vend, with what the request's log line and metrics report of it. */
  async vendWithReceipt(poolName: string): Promise<Vend> {
    if (!POOL_NAME_PATTERN.test(poolName)) throw new InvalidPoolNameError(poolName);
    const pool = this.deps.pools.get(poolName);
    if (!pool) throw new PoolNotFoundError(poolName);

    const { store, clock, options } = this.deps;
    const giveUpAt = clock.now() + options.rotationWaitMs;
    const ticket = this.nextTicket++;
    let lastSeen: PoolState | undefined;
    // A round under way means this process found the pool drained a moment ago: join it rather
    // than spend a write that would most likely fail.
    let skipReservation = this.rounds.has(pool.name);
    for (let attempt = 0; ; attempt++) {
      if (!skipReservation && attempt < MAX_ATTEMPTS) {
        const reservation = await store.reserve(pool.name, clock.now() + safetyMarginMs(pool));
        if (reservation) {
          // The ask (a Lambda Invoke, on Lambda) runs alongside the code read, not before it.
          const [pair] = await Promise.all([
            this.pairOrReplacement(pool, reservation),
            this.askForStandby(pool, reservation),
          ]);
          if (pair) return pair;
          // That reservation's activation was retired and its code deleted: reserve anew.
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
          waiting: [],
        };
        this.rounds.set(pool.name, started);
        round = started;
      }
      round.waiting.push(ticket);
      const outcome = await round.outcome;
      const turn = round.waiting.filter((t) => t < ticket).length;
      if (outcome.pair && turn === 0) return outcome.pair; // slot 1 of the new activation
      lastSeen = outcome.state;
      // Not admitted: the slots the round saw are the earlier turns'; the next round starts at
      // once (it waits for this process's refill, or notices the pool spent and rotates). A
      // request alone in its round (on Lambda, every one) reserves again after its first round
      // whatever it saw: if the round waited out another's rotation, that has most likely
      // committed, and the reservation is the write it would spend after a read anyway. After
      // later rounds it reads first, so a holder that never commits costs it reads, not writes.
      const firstRoundAlone = attempt === 0 && round.waiting.length === 1;
      skipReservation = !firstRoundAlone && (outcome.pair ? turn - 1 : turn) >= outcome.freeSlots;
    }
  }

  /**
   * Why did the reservation fail? Someone rotated meanwhile (retry at once), the pool is spent
   * and the lease is free (rotate), or another request is rotating (wait a jittered moment).
   */
  private async investigate(pool: PoolConfig, attempt: number): Promise<RoundOutcome> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const state = await store.read(pool.name);
    if (canReserve(state, pool, now)) return { state, freeSlots: freeSlots(state) };
    if (canSwitchToStandby(state, pool, now)) {
      // The current activation is expiring with slots left: one write moves to the standby.
      const switched = await store.switchToStandby(pool.name, now + safetyMarginMs(pool));
      if (!switched) return { state, freeSlots: 1 };
      // `state` names the activation the switch left behind, or one a rival's switch retired
      // already (retiring twice is harmless). Its `issued` is final: nothing reserves inside the
      // margin, so the slot-theft check compares the right count.
      // The switch dropped the queue too: nobody used it while the current one had slots left.
      await Promise.all([
        this.askForStandby(pool, switched),
        state?.activationId !== undefined && this.retireOutgoing(pool, state.activationId, state.issued ?? 0),
        ...linksOf(state)
          .slice(2)
          .map((l) => this.discard(pool.name, l.activationId)),
      ]);
      const pair = await this.pairFor(switched);
      return { pair, state, freeSlots: switched.limit - 1 };
    }
    if (!leaseHeldByOther(state, now)) {
      if (rotationBudgetExhausted(state, pool, now)) throw this.budgetExhausted(pool, state, now);
      const pair = await this.rotate(pool, state, now);
      // Another request took the lease first: wait for its commit like any other waiter, rather
      // than write again at once (on Lambda, every container that found the pool spent races).
      // The next round reads the row, and answers 429 if the budget, not a rival, refused it.
      if (pair === LEASE_REFUSED) return this.waitForHolder(pool, state, attempt);
      // The commit took slot 1 for the rotator. A needless rotation leaves no estimate: one retry.
      return pair ? { pair, state, freeSlots: pool.registrationLimit - 1 } : { state, freeSlots: 1 };
    }
    return this.waitForHolder(pool, state, attempt);
  }

  /** Another request holds the rotation lease: wait until the pool may have changed. */
  private async waitForHolder(
    pool: PoolConfig,
    state: PoolState | undefined,
    attempt: number,
  ): Promise<RoundOutcome> {
    this.deps.metrics?.count("LeaseWaits", 1, { Pool: pool.name });
    const woken = await this.untilPoolChanges(pool.name, attempt);
    // Woken by our own refill's commit: a standby's worth of slots has just appeared.
    return { state, freeSlots: woken ? pool.registrationLimit : 0, waited: true };
  }

  /**
   * Waits until the pool may have changed. When this process's background refill is under way,
   * its commit is what everyone waits for: wake at that commit (or after a cap) rather than on a
   * blind timer. Otherwise a jittered backoff. True when woken by a commit or the refill's end.
   */
  private async untilPoolChanges(pool: string, attempt: number): Promise<boolean> {
    const { sleeper } = this.deps;
    const refillCommit = this.standbyRefill.nextCommit(pool);
    if (!refillCommit) {
      await sleeper.sleep(backoffMs(attempt, this.random));
      return false;
    }
    return Promise.race([refillCommit.then(() => true), sleeper.sleep(REFILL_WAIT_CAP_MS).then(() => false)]);
  }

  /**
   * Creates the next activation under the lease; LEASE_REFUSED when a rival holds it (or the
   * budget refused it), undefined when the pool turned out not to need it or the commit was
   * refused. Timeline of a crash-safe rotation:
   *   acquireLease(gen)  → CreateActivation (tagged gen+1) → PutParameter → commitRotation(gen)
   * A holder that dies anywhere before the commit leaves an activation tagged with a generation
   * the pool row never reached: the janitor deletes it; the lease lapses by itself (I3).
   */
  private async rotate(
    pool: PoolConfig,
    outgoing: PoolState | undefined,
    now: number,
    { force = false }: { force?: boolean } = {},
  ): Promise<Vend | typeof LEASE_REFUSED | undefined> {
    const { store, logger } = this.deps;
    const generation = outgoing?.generation ?? 0;
    // The rotation makes the pool's standbys too, at once and on the one lease, so a cold or
    // drained pool has its stock at once rather than after a refill that a Lambda runs only after
    // the invocations queued before it (I9). A pool that ran dry (every slot of its activations
    // used, none expiring) had too small a stock for its pace: its depth doubles. A row with no
    // activation (a first rotation whose holder died) did not run dry.
    const ranDry = linksOf(outgoing).length > 0 && freeSlots(outgoing) === 0;
    const depth = outgoing === undefined ? 1 : nextStandbyDepth(outgoing, now, ranDry);
    const standbys = pool.standby
      ? Math.max(0, Math.min(depth, rotationBudgetRoom(outgoing, pool, now) - 1))
      : 0;
    // When the lease fails, the caller's next round reads the row and answers 429 if the budget,
    // not a rival, stopped it.
    const owner = await this.takeLease(pool, outgoing, now, 1 + standbys);
    if (owner === undefined) return LEASE_REFUSED;

    // Under the lease nobody else installs or promotes a standby, so this read is the truth about
    // it. A standby installed between the caller's read and the lease (its commit keeps the
    // generation) makes this rotation needless: rotating over it would strand it, unused and live.
    // A forced rotation (the current code is gone) goes ahead regardless.
    const fresh = pool.standby ? await store.read(pool.name) : outgoing;
    if (!force && (canReserve(fresh, pool, now) || canSwitchToStandby(fresh, pool, now))) {
      await this.releaseLease(pool.name, owner);
      return undefined;
    }
    // The commit drops the standby and the queue. Unused ones are deleted with the commit, keeping
    // the pool's unused activations within its depth; used ones are retired like the current one.
    // They were tagged generation + 1 onwards, so the new activation skips past them: the dropped
    // ones stay below the pool's generation, where the janitor sees superseded activations, not
    // orphans.
    const behind = linksOf(fresh).slice(1);
    const nextGeneration = generation + 1 + behind.length;
    const done = await this.createAndCommit(
      pool,
      { owner, generation: nextGeneration, now, count: 1 + standbys },
      ([activation, ...behindIt]) =>
        store.commitRotation(pool.name, {
          owner,
          generation,
          nextGeneration,
          activation: activation as NewActivation,
          ...(pool.standby && {
            standbys: behindIt,
            depth: depthAfterCreation(depth, behindIt.length, behindIt.length < standbys),
            refilledAt: now,
          }),
        }),
      // Our lease lapsed and another request took over: what we created is an orphan.
      "rotation lease lost before commit; discarding the new activation",
    );
    if (!done) return undefined;
    const reservation = done.committed;
    const [current, ...standbysMade] = done.created as [NewPair, ...NewPair[]];
    const { activationId, activationCode, expiresAt } = current;
    this.codes.remember(activationId, activationCode);
    this.standbysMade(pool, standbysMade, depth);
    this.deps.metrics?.count("Rotations", 1, { Pool: pool.name });
    logger.info("rotated to a new activation", {
      pool: pool.name,
      activationId,
      generation: nextGeneration,
      expiresAt: new Date(expiresAt).toISOString(),
      registrationLimit: pool.registrationLimit,
    });
    // Committed: nothing below may fail the caller's vend (each step logs its own failure).
    await Promise.all([
      this.askForStandby(pool, reservation),
      fresh?.activationId && this.retireOutgoing(pool, fresh.activationId, fresh.issued ?? 0),
      ...behind.map((l) =>
        l.issued > 0
          ? this.retireOutgoing(pool, l.activationId, l.issued)
          : this.discard(pool.name, l.activationId),
      ),
    ]);
    return this.toVend(reservation, activationCode, true);
  }

  /**
   * CreateActivation (tagged with the generation it is meant for) and PutParameter, for a holder
   * of the lease; the caller commits it. A code that cannot be stored takes its activation along.
   */
  private async createActivation(pool: PoolConfig, generation: number, now: number): Promise<NewPair> {
    const { activations, secrets, options } = this.deps;
    const expiresAt = newActivationExpiry(pool, now);
    const { activationId, activationCode } = await activations.create({
      pool: pool.name,
      generation,
      iamRole: pool.iamRole,
      registrationLimit: pool.registrationLimit,
      expiresAt,
      tags: activationTags(pool, options.deployment, generation),
      // Unset settings stay undefined: the SSM adapter leaves them out of the request.
      defaultInstanceName: pool.defaultInstanceName,
      description: pool.description,
    });
    try {
      await secrets.put({ pool: pool.name, activationId, activationCode, expiresAt });
    } catch (error) {
      await this.discard(pool.name, activationId);
      throw error;
    }
    return { activationId, activationCode, expiresAt };
  }

  /**
   * For a holder of the lease: `count` CreateActivation + PutParameter at once (tagged with
   * consecutive generations from `generation`), then `commit` with those that were made. A failed
   * first one or a failed commit releases the lease and deletes what was created; so does a
   * refused commit (undefined), which is logged as `refused` and answered with undefined.
   */
  private async createAndCommit<T>(
    pool: PoolConfig,
    lease: { owner: string; generation: number; now: number; count: number },
    commit: (activations: NewActivation[]) => Promise<T | undefined>,
    refused: string,
  ): Promise<{ created: NewPair[]; committed: T } | undefined> {
    const settled = await Promise.allSettled(
      Array.from({ length: lease.count }, (_, i) =>
        this.createActivation(pool, lease.generation + i, lease.now),
      ),
    );
    const created = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const [first, ...more] = settled;
    // The first one is what the caller came for (a rotation's current activation); the others
    // are standbys, each worth having on its own: the commit takes the ones that were made.
    const failedMore = more.flatMap((r) => (r.status === "rejected" ? [errorName(r.reason)] : []));
    if (failedMore.length > 0 && first?.status === "fulfilled") {
      this.deps.logger.warn("could not create every standby activation; the pool keeps fewer", {
        pool: pool.name,
        failed: failedMore.length,
        error: failedMore[0],
      });
    }
    const discardAll = () => Promise.all(created.map((c) => this.discard(pool.name, c.activationId)));
    let committed: T | undefined;
    try {
      if (first?.status === "rejected") throw first.reason;
      committed = await commit(
        created.map((c) => ({
          activationId: c.activationId,
          expiresAt: c.expiresAt,
          limit: pool.registrationLimit,
        })),
      );
    } catch (error) {
      this.deps.metrics?.count("RotationFailures", 1, { Pool: pool.name });
      await this.releaseLease(pool.name, lease.owner);
      await discardAll();
      throw error;
    }
    if (committed === undefined) {
      this.deps.logger.warn(refused, {
        pool: pool.name,
        activationIds: created.map((c) => c.activationId),
        generation: lease.generation,
      });
      await discardAll();
      return undefined;
    }
    return { created, committed };
  }

  /**
   * The rotation lease, for a rotation or a standby refill alike: the owner id it was taken
   * under, or undefined. The same write counts the `count` activations it is taken for against
   * the pool's rotation budget (I7), so standbys and rotations share one budget.
   */
  private async takeLease(
    pool: PoolConfig,
    seen: PoolState | undefined,
    now: number,
    count: number,
  ): Promise<string | undefined> {
    const owner = this.newOwnerId();
    const acquired = await this.deps.store.acquireLease(pool.name, {
      owner,
      generation: seen?.generation ?? 0,
      now,
      deadline: now + this.deps.options.leaseMs,
      budget: {
        max: pool.maxActivationsPerHour,
        windowMs: ROTATION_WINDOW_MS,
        count,
        windowStart: seen?.rotationWindowStart,
      },
    });
    return acquired ? owner : undefined;
  }

  private async releaseLease(pool: string, owner: string): Promise<void> {
    await this.deps.store.releaseLease(pool, owner).catch((error: unknown) =>
      this.deps.logger.warn("could not release the rotation lease; it lapses by itself", {
        pool,
        error: errorName(error),
      }),
    );
  }

  /**
   * After a commit, the outgoing activation's code is no longer needed: pairs already handed out
   * carry it, and registered nodes never need it again. Deleting it keeps Parameter Store at about
   * one parameter per pool (I7; the standard tier holds 10,000 per account and Region). A
   * request that reserved one of its last slots and has not read the code yet finds it gone and
   * retries (pairOrReplacement). The slot-theft check of the outgoing activation runs here too.
   * Best effort: the rotation has committed, so neither may fail the caller's vend.
   */
  private async retireOutgoing(pool: PoolConfig, activationId: string, issued: number): Promise<void> {
    const { secrets, activations, logger, metrics } = this.deps;
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
        { activations, logger, ...(metrics && { metrics }) },
        { pool: pool.name, activationId, issued },
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

  /**
   * Brings the pool's unused activations up to its depth if it needs it (I9), under the rotation
   * lease, exactly like a rotation but committed behind the current activation instead of over it:
   *   acquireLease(gen) → CreateActivation + PutParameter (as many as missing, at once) → commitRefill(gen)
   * The same commit drops the exhausted activations at the front, so the first one with slots
   * left becomes current (its slots keep counting). A holder that dies before the commit leaves
   * tagged orphans and a lease that lapses (I3, I5). Returns whether it added activations. Never
   * throws for a refill someone else is doing.
   */
  async refillStandby(poolName: string, afterRefill = false): Promise<boolean> {
    const pool = this.deps.pools.get(poolName);
    if (!pool?.standby) return false;
    const { store, clock } = this.deps;
    const now = clock.now();
    const state = await store.read(pool.name);
    if (!state || !needsStandby(state) || leaseHeldByOther(state, now)) return false;
    const plan = planRefill(state, pool, now, afterRefill);
    if (plan.create === 0) return false;
    const owner = await this.takeLease(pool, state, now, plan.create);
    if (owner === undefined) return false;

    const done = await this.createAndCommit(
      pool,
      { owner, generation: plan.generation + plan.kept.length, now, count: plan.create },
      async (activations) =>
        (await store.commitRefill(pool.name, {
          owner,
          generation: state.generation,
          seen: plan.seen,
          dropped: plan.dropped.length,
          shift: plan.shift,
          chain: [...plan.kept, ...activations],
          depth: depthAfterCreation(
            plan.depth,
            unusedCount(plan.kept) + activations.length,
            activations.length < plan.create,
          ),
          now,
        })) || undefined,
      "standby lost its lease or its place before commit; discarding it",
    );
    if (!done) return false;
    this.standbysMade(pool, done.created, plan.depth);
    this.standbyRefill.committed(pool.name);
    // The commit's condition (issued >= shift) held, so the dropped ones were exhausted on the row
    // as we read it: they are outgoing activations now.
    await Promise.all(plan.dropped.map((l) => this.retireOutgoing(pool, l.activationId, l.issued)));
    return true;
  }

  /** Standbys just committed: their codes need no read, and each is logged and counted. */
  private standbysMade(pool: PoolConfig, made: readonly NewPair[], depth: number): void {
    for (const { activationId, activationCode, expiresAt } of made) {
      this.codes.remember(activationId, activationCode);
      this.deps.logger.info("created a standby activation", {
        pool: pool.name,
        activationId,
        depth,
        expiresAt: new Date(expiresAt).toISOString(),
        registrationLimit: pool.registrationLimit,
      });
    }
    if (made.length > 0) this.deps.metrics?.count("StandbyRefills", made.length, { Pool: pool.name });
  }

  /** Resolves when the refills this process started in the background have finished. */
  idle(): Promise<void> {
    return this.standbyRefill.idle();
  }

  /** A reservation saw the stock short: get it refilled, off the response path (I9). */
  private async askForStandby(pool: PoolConfig, reservation: Reservation): Promise<void> {
    if (!pool.standby || !reservation.needsStandby) return;
    await this.standbyRefill.ask(pool.name, reservation, () => this.refillUntilReady(pool.name));
  }

  /**
   * Refills until the pool has an unused standby: a fast burst may use the new standby before
   * its commit lands, and nobody else would notice. Bounded, so a lost race never spins. This is
   * what a Lambda refill event runs, as well as this process's background refill. True when it
   * installed at least one standby.
   */
  async refillUntilReady(poolName: string): Promise<boolean> {
    let installed = false;
    for (let round = 0; round < REFILL_ROUNDS; round++) {
      // Each refill reads the pool first and stops when it already has an unused standby.
      if (!(await this.refillStandby(poolName, installed))) return installed;
      installed = true;
    }
    return installed;
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
   * The code can be missing for two reasons. (1) A rotation, a standby's promotion or a switch
   * committed after our reservation and deleted the outgoing activation's code (retireOutgoing)
   * before we, with a cold cache, read it: the pool row no longer names that activation. Our slot
   * on it is spent (it stays counted, which only errs on the safe side), and rotating would be
   * wrong, since the pool already has a fresh activation: reserve again. (2) The row still names
   * it and the code was deleted by hand: every later reservation would fail the same way until
   * the limit ran out, so rotate past it, exactly as if it were spent.
   */
  private async pairOrReplacement(pool: PoolConfig, reservation: Reservation): Promise<Vend | undefined> {
    const pair = await this.pairFor(reservation);
    if (pair) return pair;
    const state = await this.deps.store.read(pool.name);
    const named = linksOf(state).some((l) => l.activationId === reservation.activationId);
    if (state && !named) return undefined;
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
      { force: true },
    );
    if (rotated && rotated !== LEASE_REFUSED) return rotated;
    throw new RotationInProgressError(pool.name, rotationRetryAfterSeconds(undefined, now));
  }

  /** The pair for a reservation; undefined when its code is gone. The next ones' codes come along. */
  private async pairFor(reservation: Reservation): Promise<Vend | undefined> {
    const code = await this.codes.get(reservation.pool, reservation.activationId, reservation.next);
    return code === undefined ? undefined : this.toVend(reservation, code, false);
  }

  private toVend(reservation: Reservation, activationCode: string, rotated: boolean): Vend {
    const { pool, activationId, expiresAt, slot, limit } = reservation;
    return { pair: { pool, activationId, activationCode, expiresAt }, receipt: { slot, limit, rotated } };
  }
}
