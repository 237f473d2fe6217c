import { InvalidPoolNameError, PoolNotFoundError, RotationInProgressError } from "./errors";
import { CodeCache } from "./code-cache";
import { POOL_NAME_PATTERN, type PoolConfig } from "./pool-config";
import type {
  ActivationProvider,
  Clock,
  ActivationPair,
  Logger,
  PoolState,
  PoolStateStore,
  Reservation,
  SecretStore,
  Sleeper,
} from "./ports";
import {
  canReserve,
  canSwitchToStandby,
  freeSlots,
  linksOf,
  leaseHeldByOther,
  rotationBudgetExhausted,
  rotationRetryAfterSeconds,
  RotationWait,
  safetyMarginMs,
  waitPauseMs,
} from "./vend-policy";
import type { Metrics } from "./metrics";
import { Rotator } from "./rotation";
import { SlotGate, slotsLeftAfter } from "./slot-gate";
import type { StandbyRefill } from "./standby-refill";

/** What the caller's log line and metrics learn of a vend besides the pair. */
export interface VendReceipt {
  /** The reservation's slot of `limit` (the SlotsLeft metric). */
  readonly slot: number;
  readonly limit: number;
  /** This request created the activation it was given. */
  readonly rotated: boolean;
}

export interface Vend {
  readonly pair: ActivationPair;
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

/** Bounds the loop even if the clock stands still (fake clocks) or the store misbehaves. */
const MAX_ATTEMPTS = 100;
/** Longest a request waits on this process's refill before looking at the pool again. */
const REFILL_WAIT_CAP_MS = 1_000;

/**
 * The longest a slow store's answers stretch a waiting request's pause. Measured on a store serving
 * one request at a time (20 ms each, N=1,000, C=100, L=10, one process): pauses up to 2 s left 31
 * of 1,000 requests past their 5 s wait, the backoff alone 10: a sleeping waiter misses the commit.
 */
const SLOW_STORE_WAIT_CAP_MS = 500;

/**
 * A waiting request's pause: the jittered backoff, but never shorter than the store's last answer
 * took (within SLOW_STORE_WAIT_CAP_MS). A store that answers slowly is at its limit: polling it
 * faster than it answers would add the waiters' calls to its queue, so they look less often
 * instead (I9). No pause is longer than a fifth of what the wait has left (waitPauseMs) or half a
 * second, so a request ends within its wait (RotationWait: at most 25 s) and half a second, inside
 * API Gateway's 29 s.
 */
export function calmBackoffMs(backoff: number, storeAnswerMs: number): number {
  return Math.max(backoff, Math.min(SLOW_STORE_WAIT_CAP_MS, storeAnswerMs));
}

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
  private readonly gates = new Map<string, SlotGate>();
  private readonly random: () => number;
  private readonly rotator: Rotator;
  private nextTicket = 0;
  /** How long the store took to answer this process's last read of a pool row. */
  private storeAnswerMs = 0;

  constructor(private readonly deps: VendDependencies) {
    this.codes = new CodeCache(deps.secrets);
    this.random = deps.random ?? Math.random;
    this.rotator = new Rotator({
      ...deps,
      random: this.random,
      codes: this.codes,
      newOwnerId: deps.newOwnerId ?? (() => globalThis.crypto.randomUUID()),
    });
  }

  poolNames(): string[] {
    return [...this.deps.pools.keys()];
  }

  /** One pair from the pool, with its receipt: what the request's log line and metrics report of it. */
  async vend(poolName: string): Promise<Vend> {
    if (!POOL_NAME_PATTERN.test(poolName)) throw new InvalidPoolNameError(poolName);
    const pool = this.deps.pools.get(poolName);
    if (!pool) throw new PoolNotFoundError(poolName);

    const { clock, options } = this.deps;
    const wait = new RotationWait(clock.now(), options.rotationWaitMs);
    const ticket = this.nextTicket++;
    let lastSeen: PoolState | undefined;
    // A round under way means this process found the pool drained a moment ago: join it rather
    // than spend a write that would most likely fail.
    let skipReservation = this.rounds.has(pool.name);
    // An activation whose code this request found gone: its next round rotates past it if the
    // pool row still names it (see investigate).
    let codeGone: string | undefined;
    for (let attempt = 0; ; attempt++) {
      if (!skipReservation && codeGone === undefined && attempt < MAX_ATTEMPTS) {
        const reservation = await this.reserve(pool, attempt > 0);
        if (reservation) {
          // The ask (a Lambda Invoke, on Lambda) runs alongside the code read, not before it.
          const [pair] = await Promise.all([
            this.pairFor(reservation),
            this.rotator.askForStandby(pool, reservation),
          ]);
          if (pair) return pair;
          // The slot is spent without a pair (it stays counted, which errs on the safe side).
          this.deps.logger.debug("reserved slot outlived its activation's code", {
            pool: pool.name,
            activationId: reservation.activationId,
          });
          codeGone = reservation.activationId;
        }
      }
      // The first failure always gets a round, so a request with no wait budget still rotates.
      if (attempt > 0 && (wait.over(clock.now()) || attempt >= MAX_ATTEMPTS)) {
        throw new RotationInProgressError(pool.name, rotationRetryAfterSeconds(lastSeen, clock.now()));
      }

      // One request per process and pool finds out why the reservation failed (a "round"); the
      // others await it. Afterwards only as many of them retry the reservation as the round saw
      // free slots, so a burst of N requests costs a few writes per rotation instead of N.
      let round = this.rounds.get(pool.name);
      if (!round) {
        const started: Round = {
          outcome: this.investigate(pool, attempt, wait, codeGone).finally(() =>
            this.rounds.delete(pool.name),
          ),
          waiting: [],
        };
        this.rounds.set(pool.name, started);
        round = started;
        codeGone = undefined; // this round looks into it
      }
      round.waiting.push(ticket);
      const outcome = await round.outcome;
      const turn = round.waiting.filter((t) => t < ticket).length;
      if (outcome.pair && turn === 0) return outcome.pair; // slot 1 of the new activation
      lastSeen = outcome.state;
      wait.saw(outcome.state, clock.now());
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
   * One reservation, through the pool's gate (SlotGate): it waits while this process's writes in
   * flight hold every slot the pool had at its last answer, and goes to a round instead (undefined,
   * without a write) when the last answer found the pool spent. A request's first reservation also
   * joins a round that a write started while it waited; a later one was admitted by a round.
   */
  private async reserve(pool: PoolConfig, admitted: boolean): Promise<Reservation | undefined> {
    const gate = this.gateOf(pool.name);
    for (let turn = gate.take(); turn !== "send"; turn = gate.take()) {
      if (turn === "look") return undefined;
      await gate.next();
      if (!admitted && this.rounds.has(pool.name)) return undefined;
    }
    let slotsLeft: number | undefined;
    try {
      const reservation = await this.deps.store.reserve(
        pool.name,
        this.deps.clock.now() + safetyMarginMs(pool),
      );
      slotsLeft = reservation ? slotsLeftAfter(reservation) : 0;
      return reservation;
    } finally {
      gate.answered(slotsLeft);
    }
  }

  private gateOf(pool: string): SlotGate {
    let gate = this.gates.get(pool);
    if (!gate) {
      gate = new SlotGate();
      this.gates.set(pool, gate);
    }
    return gate;
  }

  /**
   * Why did the reservation fail? Someone rotated meanwhile (retry at once), the pool is spent
   * and the lease is free (rotate), or another request is rotating (wait a jittered moment).
   *
   * Or the reservation succeeded and its activation's code was gone (`codeGone`), for one of two
   * reasons. (1) A rotation, a standby's promotion or a switch committed after the reservation and
   * deleted the outgoing activation's code (retireOutgoing) before this process, with a cold
   * cache, read it: the row no longer names that activation. The slot on it is spent (it stays
   * counted, which only errs on the safe side), and the pool already has a fresh activation:
   * reserve again. (2) The row still names it and the code was deleted by hand: every later
   * reservation would fail the same way until the limit ran out, so rotate past it, exactly as
   * if it were spent.
   */
  private async investigate(
    pool: PoolConfig,
    attempt: number,
    wait: RotationWait,
    codeGone?: string,
  ): Promise<RoundOutcome> {
    const { store, clock, logger } = this.deps;
    const asked = clock.now();
    const state = await store.read(pool.name);
    const now = clock.now();
    this.storeAnswerMs = now - asked;
    this.gateOf(pool.name).saw(freeSlots(state));
    const rotatePast = linksOf(state).some((l) => l.activationId === codeGone);
    if (!rotatePast && canReserve(state, pool, now)) return { state, freeSlots: freeSlots(state) };
    if (!rotatePast && canSwitchToStandby(state, pool, now)) {
      // The current activation is expiring with slots left: one write moves to the standby.
      const switched = await this.rotator.switchToStandby(pool, state, now);
      if (!switched) return { state, freeSlots: 1 };
      this.gateOf(pool.name).saw(slotsLeftAfter(switched));
      return { pair: await this.pairFor(switched), state, freeSlots: switched.limit - 1 };
    }
    if (!leaseHeldByOther(state, now)) {
      if (rotationBudgetExhausted(state, pool, now)) throw this.rotator.budgetExhausted(pool, state, now);
      if (rotatePast) {
        logger.error("no stored code for the current activation; rotating past it", {
          pool: pool.name,
          activationId: codeGone,
          generation: state?.generation,
        });
      }
      const rotation = await this.rotator.rotate(pool, state, now, {
        force: rotatePast,
        answerBy: wait.answerBy,
      });
      // Another request took the lease first: wait for its commit like any other waiter, rather
      // than write again at once (on Lambda, every container that found the pool spent races).
      // The next round reads the row, and answers 429 if the budget, not a rival, refused it.
      if (rotation.kind === "refused") return this.waitForHolder(pool, state, attempt, wait);
      // The commit took slot 1 for the rotator. A needless rotation leaves no estimate: one retry.
      if (rotation.kind !== "rotated") {
        this.gateOf(pool.name).forget();
        return { state, freeSlots: 1 };
      }
      this.gateOf(pool.name).saw(slotsLeftAfter(rotation.reservation));
      return {
        pair: this.toVend(rotation.reservation, rotation.activationCode, true),
        state,
        freeSlots: pool.registrationLimit - 1,
      };
    }
    return this.waitForHolder(pool, state, attempt, wait);
  }

  /** Another request holds the rotation lease: wait until the pool may have changed. */
  private async waitForHolder(
    pool: PoolConfig,
    state: PoolState | undefined,
    attempt: number,
    wait: RotationWait,
  ): Promise<RoundOutcome> {
    this.deps.metrics?.count("LeaseWaits", 1, { Pool: pool.name });
    const woken = await this.untilPoolChanges(pool.name, attempt, wait);
    this.gateOf(pool.name).forget();
    // Woken by our own refill's commit: a standby's worth of slots has just appeared.
    return { state, freeSlots: woken ? pool.registrationLimit : 0 };
  }

  /**
   * Waits until the pool may have changed. When this process's background refill is under way,
   * its commit is what everyone waits for: wake at that commit (or after a cap) rather than on a
   * blind timer. Otherwise a jittered backoff. True when woken by a commit or the refill's end.
   */
  private async untilPoolChanges(pool: string, attempt: number, wait: RotationWait): Promise<boolean> {
    const { sleeper } = this.deps;
    const refillCommit = this.deps.standbyRefill.nextCommit(pool);
    if (!refillCommit) {
      const now = this.deps.clock.now();
      const pause = waitPauseMs(attempt, wait.pauseDeadline(now) - now, this.random);
      await sleeper.sleep(calmBackoffMs(pause, this.storeAnswerMs));
      return false;
    }
    return Promise.race([refillCommit.then(() => true), sleeper.sleep(REFILL_WAIT_CAP_MS).then(() => false)]);
  }

  /** Resolves when the refills this process started in the background have finished. */
  idle(): Promise<void> {
    return this.deps.standbyRefill.idle();
  }

  /**
   * Brings the pool's stock up to its depth, as many refills as it takes (bounded): what a Lambda
   * refill event runs (Rotator.refillUntilReady). True when it installed at least one standby.
   */
  refillUntilReady(poolName: string): Promise<boolean> {
    return this.rotator.refillUntilReady(poolName);
  }

  /** One refill of the pool's stock (Rotator.refillStandby). */
  refillStandby(poolName: string): Promise<boolean> {
    return this.rotator.refillStandby(poolName);
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
