import { errorName, RotationBudgetExhaustedError, ThrottledError } from "./errors";
import { CodeCache } from "./code-cache";
import type { PoolConfig } from "./pool-config";
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
  ActivationPair,
} from "./ports";
import {
  activationTags,
  backoffMs,
  canReserve,
  canSwitchToStandby,
  depthAfterCreation,
  freeSlots,
  leaseHeldByOther,
  linksOf,
  needsStandby,
  newActivationExpiry,
  nextStandbyDepth,
  planRefill,
  rotationBudgetRetryAfterSeconds,
  rotationBudgetRoom,
  safetyMarginMs,
  ROTATION_WINDOW_MS,
  unusedCount,
} from "./vend-policy";
import type { Metrics } from "./metrics";
import { reportOutgoingActivation } from "./reconcile";
import type { StandbyRefill } from "./standby-refill";

/** What rotation needs from the outside world: the Vendor's dependencies, less the request's. */
export interface RotationDependencies {
  readonly pools: ReadonlyMap<string, PoolConfig>;
  readonly store: PoolStateStore;
  readonly activations: ActivationProvider;
  readonly secrets: SecretStore;
  readonly clock: Clock;
  readonly sleeper: Sleeper;
  readonly random: () => number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly options: { readonly leaseMs: number; readonly deployment: string };
  readonly newOwnerId: () => string;
  readonly standbyRefill: StandbyRefill;
  /** The Vendor's code cache: what a rotation creates needs no read, what it retires goes. */
  readonly codes: CodeCache;
}

/**
 * What a rotation came to: `rotated`, the rotator's own reservation (slot 1 of the new activation)
 * and its code; `refused`, a rival holds the lease (or the budget refused it); `needless`, the
 * pool turned out not to need one, or the commit was refused (what it made is discarded).
 */
export type RotationResult =
  | { readonly kind: "rotated"; readonly reservation: Reservation; readonly activationCode: string }
  | { readonly kind: "refused" | "needless" };

/** Refills one background task may chain before it leaves the rest to the next reservation. */
const REFILL_ROUNDS = 8;
/** A drained pool logs its refusals once a minute per process, not once per request. */
const BUDGET_WARNING_INTERVAL_MS = 60_000;

/**
 * Rotation and refill (I3, I5, I7, I9): everything done under the rotation lease. Take the lease,
 * create the activations and store their codes, commit them in one write, then retire what the
 * commit replaced and discard what a refused commit left behind. The Vendor decides when; this
 * unit does it, for a rotation on request and a standby refill alike.
 */
export class Rotator {
  private readonly deps: RotationDependencies;
  private readonly codes: CodeCache;
  private readonly standbyRefill: StandbyRefill;
  private readonly newOwnerId: () => string;
  private readonly random: () => number;
  private readonly budgetWarnedAt = new Map<string, number>();

  constructor(deps: RotationDependencies) {
    this.deps = deps;
    this.random = deps.random;
    this.codes = deps.codes;
    this.standbyRefill = deps.standbyRefill;
    this.newOwnerId = deps.newOwnerId;
  }

  /**
   * Creates the next activation under the lease (see Rotation for what it answers). Timeline of
   * a crash-safe rotation:
   *   acquireLease(gen)  → CreateActivation (tagged gen+1) → PutParameter → commitRotation(gen)
   * A holder that dies anywhere before the commit leaves an activation tagged with a generation
   * the pool row never reached: the janitor deletes it; the lease lapses by itself (I3).
   */
  async rotate(
    pool: PoolConfig,
    outgoing: PoolState | undefined,
    now: number,
    { force, answerBy }: { force: boolean; answerBy: number },
  ): Promise<RotationResult> {
    const { store, logger } = this.deps;
    const generation = outgoing?.generation ?? 0;
    // The rotation makes the pool's standbys too, at once and on the one lease, so a cold or
    // drained pool has its stock at once rather than after a refill that a Lambda runs only after
    // the invocations queued before it (I9). How many: what the pool's pace needs, measured from
    // the row (nextStandbyDepth). A pool that ran dry (every slot of its activations used, none
    // expiring) had too small a stock for its pace, if its pace was fast: a refill that was only
    // slow does not deepen it. A row with no activation (a first rotation whose holder died) did
    // not run dry.
    const ranDry = linksOf(outgoing).length > 0 && freeSlots(outgoing) === 0;
    const depth = outgoing === undefined ? 1 : nextStandbyDepth(outgoing, now, ranDry);
    const standbys = pool.standby
      ? Math.max(0, Math.min(depth, rotationBudgetRoom(outgoing, pool, now) - 1))
      : 0;
    // When the lease fails, the caller's next round reads the row and answers 429 if the budget,
    // not a rival, stopped it.
    const owner = await this.takeLease(pool, outgoing, now, 1 + standbys);
    if (owner === undefined) return { kind: "refused" };

    // Under the lease nobody else installs or promotes a standby, so this read is the truth about
    // it. A standby installed between the caller's read and the lease (its commit keeps the
    // generation) makes this rotation needless: rotating over it would strand it, unused and live.
    // A forced rotation (the current code is gone) goes ahead regardless.
    const fresh = pool.standby ? await store.read(pool.name) : outgoing;
    if (!force && (canReserve(fresh, pool, now) || canSwitchToStandby(fresh, pool, now))) {
      await this.releaseLease(pool.name, owner);
      return { kind: "needless" };
    }
    // The commit drops the standby and the queue. Unused ones are deleted with the commit, keeping
    // the pool's unused activations within its depth; used ones are retired like the current one.
    // They were tagged generation + 1 onwards, so the new activation skips past them: the dropped
    // ones stay below the pool's generation, where the janitor sees superseded activations, not
    // orphans.
    const [outgoingLink, ...behind] = linksOf(fresh);
    const nextGeneration = generation + 1 + behind.length;
    const done = await this.createAndCommit(
      pool,
      // A request answers in time: its codes' stores stop retrying at answerBy (RotationWait).
      { owner, generation: nextGeneration, now, count: 1 + standbys, answerBy },
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
    if (!done) return { kind: "needless" };
    const reservation = done.committed;
    const [current, ...standbysMade] = done.created as [ActivationPair, ...ActivationPair[]];
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
      outgoingLink && this.retireOutgoing(pool, outgoingLink.activationId, outgoingLink.issued),
      ...behind.map((l) =>
        l.issued > 0
          ? this.retireOutgoing(pool, l.activationId, l.issued)
          : this.discard(pool.name, l.activationId),
      ),
    ]);
    return { kind: "rotated", reservation, activationCode };
  }

  /**
   * CreateActivation (tagged with the generation it is meant for) and PutParameter, for a holder
   * of the lease; the caller commits it. A code that cannot be stored takes its activation along.
   */
  private async createActivation(
    pool: PoolConfig,
    generation: number,
    now: number,
    answerBy = Infinity,
  ): Promise<ActivationPair> {
    const { activations, options } = this.deps;
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
    const secret = { pool: pool.name, activationId, activationCode, expiresAt };
    try {
      await this.storeCode(secret, Math.min(now + options.leaseMs / 2, answerBy));
    } catch (error) {
      await this.discard(pool.name, activationId);
      throw error;
    }
    return secret;
  }

  /**
   * PutParameter for a new activation's code. Throttled, it tries again after a jittered pause
   * until `until` (half the lease, so the commit still has the other half; for a request, no
   * later than RotationWait.answerBy, so it answers in time): Parameter Store's
   * default throughput takes few writes per second, a refill makes several at once, and the
   * SDK's own three attempts would give up on an activation already created.
   */
  private async storeCode(secret: ActivationPair, until: number): Promise<void> {
    const { secrets, clock, sleeper } = this.deps;
    for (let attempt = 0; ; attempt++) {
      try {
        return await secrets.put(secret);
      } catch (error) {
        const pause = backoffMs(attempt, this.random, 250, 2_000);
        if (!(error instanceof ThrottledError) || clock.now() + pause >= until) throw error;
        await sleeper.sleep(pause);
      }
    }
  }

  /**
   * For a holder of the lease: `count` CreateActivation + PutParameter at once (tagged with
   * consecutive generations from `generation`), then `commit` with those that were made. A failed
   * first one or a failed commit releases the lease and deletes what was created; so does a
   * refused commit (undefined), which is logged as `refused` and answered with undefined.
   */
  private async createAndCommit<T>(
    pool: PoolConfig,
    lease: { owner: string; generation: number; now: number; count: number; answerBy?: number },
    commit: (activations: NewActivation[]) => Promise<T | undefined>,
    refused: string,
  ): Promise<{ created: ActivationPair[]; committed: T } | undefined> {
    const settled = await Promise.allSettled(
      Array.from({ length: lease.count }, (_, i) =>
        this.createActivation(pool, lease.generation + i, lease.now, lease.answerBy),
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
   * The current activation is expiring with slots left and the standby is valid: one write makes
   * the standby current and takes its slot 1 (no lease: it creates nothing). Then `state`'s current
   * activation is outgoing (or a rival's switch retired it already: retiring twice is harmless; its
   * `issued` is final, as nothing reserves inside the margin, so the slot-theft check compares the
   * right count), and the queue the switch dropped is discarded: nobody used it while the current
   * one had slots left. Undefined when the switch's condition failed.
   */
  async switchToStandby(
    pool: PoolConfig,
    state: PoolState | undefined,
    now: number,
  ): Promise<Reservation | undefined> {
    const switched = await this.deps.store.switchToStandby(pool.name, now + safetyMarginMs(pool));
    if (!switched) return undefined;
    const [current, , ...queued] = linksOf(state);
    await Promise.all([
      this.askForStandby(pool, switched),
      current && this.retireOutgoing(pool, current.activationId, current.issued),
      ...queued.map((l) => this.discard(pool.name, l.activationId)),
    ]);
    return switched;
  }

  /** The 429 for a pool whose rotation budget is spent (I7), warned of once a minute per process. */
  budgetExhausted(pool: PoolConfig, state: PoolState | undefined, now: number): Error {
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
   * After a commit, the outgoing activation's code is no longer needed: pairs already handed out
   * carry it, and registered nodes never need it again. Deleting it keeps Parameter Store at about
   * one parameter per pool (I7; the standard tier holds 10,000 per account and Region). A
   * request that reserved one of its last slots and has not read the code yet finds it gone and
   * retries (investigate). The slot-theft check of the outgoing activation runs here too.
   * Best effort: the rotation has committed, so neither may fail the caller's vend.
   */
  async retireOutgoing(pool: PoolConfig, activationId: string, issued: number): Promise<void> {
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
  private standbysMade(pool: PoolConfig, made: readonly ActivationPair[], depth: number): void {
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

  /** A reservation saw the stock short: get it refilled, off the response path (I9). */
  async askForStandby(pool: PoolConfig, reservation: Reservation): Promise<void> {
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
  async discard(pool: string, activationId: string): Promise<void> {
    await Promise.allSettled([
      this.deps.activations.delete(activationId),
      this.deps.secrets.delete(pool, activationId),
    ]);
  }
}
