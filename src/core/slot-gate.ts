import type { Reservation } from "./ports";

/**
 * How many reservations one process has in flight on one pool (I4, I9): at most the free slots
 * the pool row showed at its last answer (a reservation's returned row, a round's read, a switch
 * or a rotation's commit). When that answer left none and nothing is in flight, a round reads the
 * row instead of a write finding out.
 *
 * Why: when the stock runs out in a burst, every reservation already on its way fails, and a
 * failed conditional write is billed like a successful one. One process at concurrency 200 spent
 * about 1,800 failed writes in a 2,000-server burst at limit 10 (1.9 write units per vend). With
 * the gate, the requests behind the last slots wait for their answers and then go to one round
 * (a read) together.
 *
 * The count is an estimate, never a decision: other processes reserve and refill too. It may let
 * through a write that fails (whose answer sets it to 0) or hold one back until the next answer
 * corrects it; what a reservation gets is decided by the store's condition (I1). A Lambda
 * container serves one request at a time, so the gate never holds one there.
 */
export class SlotGate {
  /** Unknown until the first answer: the first requests go through. */
  private free = Number.POSITIVE_INFINITY;
  private inFlight = 0;
  private waiting: Array<() => void> = [];

  /**
   * `send`: one more reservation is in flight now. `wait`: this process's writes in flight hold
   * every slot known (try again at `next`). `look`: the pool was spent at its last answer and
   * nothing is in flight: a round reads the row rather than a write finding out (I9).
   */
  take(): "send" | "wait" | "look" {
    if (this.inFlight >= this.free) {
      return this.inFlight === 0 ? "look" : "wait";
    }
    this.inFlight++;
    return "send";
  }

  /** Resolves at the next answer or read: the time to try again. */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A reservation's write answered: the slots its row has left, 0 when refused, undefined when it failed. */
  answered(slotsLeft: number | undefined): void {
    this.inFlight--;
    if (slotsLeft !== undefined) this.free = slotsLeft;
    this.wake();
  }

  /** The pool may have changed since the last answer (a round waited for a rotation). */
  forget(): void {
    this.saw(Number.POSITIVE_INFINITY);
  }

  /** A read of the pool row, or a rotation's commit, left this many free slots. */
  saw(slotsLeft: number): void {
    this.free = slotsLeft;
    this.wake();
  }

  /** Everyone waiting looks again, in the order they came (a promise's callbacks run in order). */
  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}

/**
 * The slots a reservation's write left free: the rest of its activation and every one after it
 * (unused, each with the pool's limit: reservationFrom names the activations after the last one
 * in use).
 */
export function slotsLeftAfter(reservation: Reservation): number {
  return reservation.limit - reservation.slot + reservation.next.length * reservation.limit;
}
