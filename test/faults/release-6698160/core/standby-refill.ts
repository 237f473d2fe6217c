import { errorName } from "./errors";
import type { Logger, Reservation } from "./ports";

/**
 * Where a pool's standby refills run (I9) once a reservation finds its stock short. The
 * composition root chooses: a long-running process refills in the background
 * (`BackgroundRefill`); a Lambda container, frozen between invocations, asks for a refill event
 * instead (`refillElsewhere`: an asynchronous self-invocation runs it in a container of its own).
 */
export interface StandbyRefill {
  /**
   * A reservation saw fewer unused standbys than the pool's depth. `refill` brings the stock up
   * in this process (Vendor.refillUntilReady); a strategy that refills elsewhere ignores it.
   * Never throws: the request path works without a standby (it rotates on demand).
   */
  ask(pool: string, reservation: Reservation, refill: () => Promise<unknown>): Promise<void>;
  /**
   * While this process refills the pool: resolves at its next standby commit or when the refill
   * ends. Undefined when no refill of the pool runs here.
   */
  nextCommit(pool: string): Promise<void> | undefined;
  /** This process committed standbys for the pool: whoever waits for them goes on. */
  committed(pool: string): void;
  /** Resolves when the refills this process started have finished. */
  idle(): Promise<void>;
}

/** In this process, in the background, one refill per pool at a time (long-running servers). */
export class BackgroundRefill implements StandbyRefill {
  /** Refills under way, one per pool. */
  private readonly refills = new Map<string, Promise<void>>();
  /** Requests waiting for the next standby commit, per pool. */
  private readonly waiters = new Map<string, (() => void)[]>();

  constructor(private readonly logger: Logger) {}

  async ask(pool: string, _reservation: Reservation, refill: () => Promise<unknown>): Promise<void> {
    if (this.refills.has(pool)) return;
    const running = refill()
      .then(
        () => undefined,
        (error: unknown) =>
          this.logger.warn("standby refill failed; the next exhaustion rotates on request", {
            pool,
            error: errorName(error),
          }),
      )
      .finally(() => {
        this.refills.delete(pool);
        this.committed(pool);
      });
    this.refills.set(pool, running);
  }

  nextCommit(pool: string): Promise<void> | undefined {
    if (!this.refills.has(pool)) return undefined;
    return new Promise((resolve) => {
      const waiting = this.waiters.get(pool) ?? [];
      waiting.push(resolve);
      this.waiters.set(pool, waiting);
    });
  }

  committed(pool: string): void {
    const waiting = this.waiters.get(pool);
    this.waiters.delete(pool);
    for (const wake of waiting ?? []) wake();
  }

  async idle(): Promise<void> {
    while (this.refills.size > 0) await Promise.allSettled([...this.refills.values()]);
  }
}

/**
 * Elsewhere: `request` asks for a refill that runs outside this process (on Lambda, an
 * asynchronous self-invocation whose event runs Vendor.refillUntilReady). Only the reservation
 * that took an activation's slot 1 asks: slot 1 goes to one reservation only (one conditional
 * write), and whenever a reservation takes it the pool has no unused standby left (the standby
 * just went into use, or a rotation or switch left none behind). So each standby costs one
 * request however many containers notice it missing.
 */
export function refillElsewhere(request: (pool: string) => Promise<void>, logger: Logger): StandbyRefill {
  return {
    async ask(pool, reservation) {
      if (reservation.slot !== 1) return;
      await request(pool).catch((error: unknown) =>
        logger.warn("could not request a standby refill", {
          pool,
          error: errorName(error),
        }),
      );
    },
    nextCommit: () => undefined,
    committed: () => undefined,
    idle: async () => undefined,
  };
}
