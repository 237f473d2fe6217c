import { describe, expect, it } from "vitest";
import { parsePools } from "../../src/core/pool-config";
import {
  activationTags,
  backoffMs,
  canReserve,
  canSwitchToStandby,
  freeSlots,
  needsStandby,
  leaseHeldByOther,
  MAX_STANDBY_DEPTH,
  newActivationExpiry,
  nextStandbyDepth,
  planRefill,
  reservationFrom,
  rotationRetryAfterSeconds,
  RotationWait,
  standbyDepth,
  STOCK_COVER_MS,
  waitPauseMs,
} from "../../src/core/vend-policy";
import type { Link, PoolState } from "../../src/core/ports";

const pool = parsePools(
  { pools: { web: { expirationHours: 2, safetyMarginMinutes: 30, tags: { team: "web" } } } },
  { iamRole: "R" },
).get("web")!;
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0, 0);
const MARGIN = 30 * 60_000;
const link = (activationId: string, limit: number, issued: number, expiresAt: number): Link => ({
  activationId,
  expiresAt,
  limit,
  issued,
});
const state = (...links: Link[]): PoolState => ({ pool: "web", generation: 1, links });
const current = link("a", 3, 2, NOW + MARGIN + 1);
const live = state(current);

describe("vend policy", () => {
  it("reserves only below the limit and strictly beyond the safety margin", () => {
    expect(canReserve(live, pool, NOW)).toBe(true);
    expect(canReserve(state({ ...current, issued: 3 }), pool, NOW)).toBe(false);
    expect(canReserve(state({ ...current, expiresAt: NOW + MARGIN }), pool, NOW)).toBe(false);
    expect(canReserve(state(), pool, NOW)).toBe(false);
    expect(canReserve(undefined, pool, NOW)).toBe(false);
  });

  it("counts free slots, never below zero", () => {
    expect(freeSlots(live)).toBe(1);
    expect(freeSlots(state({ ...current, issued: 5 }))).toBe(0);
    expect(freeSlots(undefined)).toBe(0);
  });

  it("sees a lease as held until its deadline, not at it", () => {
    expect(leaseHeldByOther({ ...live, leaseDeadline: NOW + 1 }, NOW)).toBe(true);
    expect(leaseHeldByOther({ ...live, leaseDeadline: NOW }, NOW)).toBe(false);
    expect(leaseHeldByOther(live, NOW)).toBe(false);
  });

  it("rounds a new activation's expiry down to whole seconds, as SSM stores it", () => {
    expect(newActivationExpiry(pool, NOW + 999)).toBe(NOW + 2 * 3_600_000);
  });

  it("tags every activation with the deployment, pool and generation, after the user's tags", () => {
    expect(activationTags(pool, "prod", 7)).toEqual({
      team: "web",
      "activation-broker:deployment": "prod",
      "activation-broker:pool": "web",
      "activation-broker:generation": "7",
    });
  });

  it("backs off with full jitter within [10 ms, cap]", () => {
    expect(backoffMs(0, () => 0)).toBe(10);
    expect(backoffMs(0, () => 0.999)).toBe(49);
    expect(backoffMs(3, () => 0.999)).toBe(399);
    expect(backoffMs(20, () => 0.999)).toBe(499);
  });

  it("a waiter's pause is capped at a fifth of what its wait has left, within [50 ms, 1 s]", () => {
    const top = () => 0.999;
    expect(waitPauseMs(20, 25_000, top)).toBe(999); // a long wait: at most 1 s
    expect(waitPauseMs(20, 5_000, top)).toBe(999);
    expect(waitPauseMs(20, 2_500, top)).toBe(499);
    expect(waitPauseMs(20, 1_000, top)).toBe(199);
    expect(waitPauseMs(20, 100, top)).toBe(49); // the end of the wait: still 50 ms at most
    expect(waitPauseMs(20, -300, top)).toBe(49);
    expect(waitPauseMs(0, 5_000, top)).toBe(49); // the backoff's own growth still applies
    expect(waitPauseMs(20, 5_000, () => 0)).toBe(10);
  });

  it("waits rotationWaitMs, again from each look that finds the pool moved on, 15 s in all at most", () => {
    const at = (generation: number, refilledAt?: number): PoolState => ({
      pool: "web",
      generation,
      links: [],
      ...(refilledAt !== undefined && { refilledAt }),
    });
    const wait = new RotationWait(0, 5_000);
    wait.saw(at(3), 1_000); // the first look: nothing to compare with
    expect(wait.over(4_999)).toBe(false);
    expect(wait.over(5_000)).toBe(true);
    wait.saw(at(3), 2_000); // the same pool: no extension
    expect(wait.over(5_000)).toBe(true);
    wait.saw(at(4), 3_000); // a rotation committed: 5 s from now
    expect(wait.over(7_999)).toBe(false);
    expect(wait.over(8_000)).toBe(true);
    // Pauses shrink towards the first wait's end while it lasts, then towards the extension's.
    expect(wait.pauseDeadline(4_999)).toBe(5_000);
    expect(wait.pauseDeadline(5_000)).toBe(8_000);
    wait.saw(at(4, 4_000), 4_000); // a refill committed
    expect(wait.over(8_999)).toBe(false);
    expect(wait.over(9_000)).toBe(true);
    wait.saw(at(5, 4_000), 12_000); // moves that go on: 15 s in all
    expect(wait.over(14_999)).toBe(false);
    expect(wait.over(15_000)).toBe(true);
    expect(wait.answerBy).toBe(20_000); // its own rotation's writes: 5 s more at most
    // A wait set longer than 15 s is its own cap; a pool seen empty, then created, moved on.
    const long = new RotationWait(100, 20_000);
    long.saw(undefined, 200);
    long.saw(at(1), 1_000);
    expect(long.over(20_099)).toBe(false);
    expect(long.over(20_100)).toBe(true);
    expect(long.answerBy).toBe(25_100);
  });

  it("asks clients to retry after the lease's rest, within 1–5 s", () => {
    expect(rotationRetryAfterSeconds({ ...live, leaseDeadline: NOW + 2_500 }, NOW)).toBe(3);
    expect(rotationRetryAfterSeconds({ ...live, leaseDeadline: NOW + 60_000 }, NOW)).toBe(5);
    expect(rotationRetryAfterSeconds({ ...live, leaseDeadline: NOW - 1 }, NOW)).toBe(1);
    expect(rotationRetryAfterSeconds(undefined, NOW)).toBe(1);
  });

  it("reserves from the standby only once the current one is spent, and strictly beyond the margin", () => {
    const spent = { ...current, issued: 3 };
    const standby = link("s", 2, 0, NOW + MARGIN + 1);
    expect(canReserve(state(spent, standby), pool, NOW)).toBe(true);
    expect(canReserve(state(spent, { ...standby, expiresAt: NOW + MARGIN }), pool, NOW)).toBe(false);
    expect(canReserve(state(spent, { ...standby, issued: 2 }), pool, NOW)).toBe(false);
  });

  it("counts the standby's free slots beside the current one's", () => {
    expect(freeSlots(state(current, link("s", 4, 1, NOW)))).toBe(1 + 3);
  });

  it("needs a standby when there is none or it is in use, never without an activation", () => {
    expect(needsStandby(undefined)).toBe(false);
    expect(needsStandby(state())).toBe(false);
    expect(needsStandby(live)).toBe(true);
    expect(needsStandby(state(current, link("s", 2, 0, NOW)))).toBe(false);
    expect(needsStandby(state(current, link("s", 2, 1, NOW)))).toBe(true);
  });
});

describe("standby depth (I9)", () => {
  const exhausted = link("a", 10, 10, 10_000_000);
  const row = (extra: Partial<PoolState> = {}): PoolState => ({
    pool: "web",
    generation: 3,
    links: [exhausted],
    ...extra,
  });

  const refilledAt = 1_000_000;
  /** The interval the pace is counted over: the depth is the activations the pool uses in it. */
  const C = STOCK_COVER_MS;
  /** The current activation in use (5 of 10), `unused` unused activations behind it. */
  const withUnused = (unused: number, extra: Partial<PoolState> = {}) =>
    row({
      links: [
        { ...exhausted, issued: 5 },
        ...Array.from({ length: unused }, (_, i) => link(i === 0 ? "s" : `q${i - 1}`, 10, 0, 10_000_000)),
      ],
      refilledAt,
      ...extra,
    });

  // row(): the current activation exhausted, nothing behind it: every activation of the last
  // stock went into use; `true`: a request found the pool dry and rotates.
  it("grows a pool that ran dry up to its pace (STOCK_COVER_MS of it), at most doubling a step", () => {
    // 4 used in C: the pace is 4, the depth stays. In C less 1 ms: a little more, 5.
    expect(nextStandbyDepth(row({ standbyDepth: 4, refilledAt }), refilledAt + C, true)).toBe(4);
    expect(nextStandbyDepth(row({ standbyDepth: 4, refilledAt }), refilledAt + C - 1, true)).toBe(5);
    // 4 used in a fifth of C: a pace of 20, but one step doubles at most.
    expect(nextStandbyDepth(row({ standbyDepth: 4, refilledAt }), refilledAt + C / 5, true)).toBe(8);
    // The interval is never taken as 0; the depth never passes what a row holds.
    expect(nextStandbyDepth(row({ standbyDepth: 4, refilledAt }), refilledAt, true)).toBe(8);
    expect(nextStandbyDepth(row({ standbyDepth: 20, refilledAt }), refilledAt + 10, true)).toBe(
      MAX_STANDBY_DEPTH,
    );
  });

  it("grows when more than half the stock went before the refill came, at a fast pace", () => {
    // Depth 6, 2 unused left: 4 used (more than half) in a tenth of C.
    expect(nextStandbyDepth(withUnused(2, { standbyDepth: 6 }), refilledAt + C / 10)).toBe(12);
    // 3 unused left: 3 used, not more than half: not late, the depth stays.
    expect(nextStandbyDepth(withUnused(3, { standbyDepth: 6 }), refilledAt + C / 10)).toBe(6);
  });

  it("a refill late because the store or SSM answered slowly does not deepen the stock: a slow pace is slow", () => {
    // The whole stock of 2 used up and the pool found dry 5 C after the stock was made: a pace of
    // 0.4 per C. The depth falls.
    expect(nextStandbyDepth(row({ standbyDepth: 2, refilledAt }), refilledAt + 5 * C, true)).toBe(1);
    expect(nextStandbyDepth(row({ standbyDepth: 1, refilledAt }), refilledAt + 5 * C, true)).toBe(1);
    // However late, never deeper than before: the stock of 8 went in C or slower.
    expect(
      [C, 2 * C, 10 * C, 60 * C].map((late) =>
        nextStandbyDepth(row({ standbyDepth: 8, refilledAt }), refilledAt + late, true),
      ),
    ).toEqual([8, 4, 4, 4]);
  });

  it("not late, moves down towards the pace, at most halving a step, never below one", () => {
    // Nothing used for an hour: halved, not dropped to one at once.
    expect(nextStandbyDepth(withUnused(7, { standbyDepth: 7 }), refilledAt + 3_600_000)).toBe(3);
    expect(nextStandbyDepth(withUnused(1, { standbyDepth: 1 }), refilledAt + 3_600_000)).toBe(1);
    // 3 of 6 used in 1.5 C: a pace of 2, so 3 (half) this step.
    expect(nextStandbyDepth(withUnused(3, { standbyDepth: 6 }), refilledAt + 1.5 * C)).toBe(3);
    // 3 of 6 used in 0.6 C: a pace of 5.
    expect(nextStandbyDepth(withUnused(3, { standbyDepth: 6 }), refilledAt + 0.6 * C)).toBe(5);
  });

  it("with no refill recorded (no pace), doubles when the pool ran dry, else keeps the depth", () => {
    expect(nextStandbyDepth(row({ standbyDepth: 6 }), 0, true)).toBe(12);
    expect(nextStandbyDepth(row(), 0, true)).toBe(2);
    expect(nextStandbyDepth(row({ standbyDepth: 6 }), 0)).toBe(12); // 6 used: more than half
    expect(nextStandbyDepth(row(), 0)).toBe(1); // the one used: not more than half of one
    expect(nextStandbyDepth(withUnused(1, { standbyDepth: 3, refilledAt: undefined }), 0)).toBe(3);
  });

  it("reads a missing or out-of-range depth as within 1 and the maximum", () => {
    expect(standbyDepth(undefined)).toBe(1);
    expect(standbyDepth(row({ standbyDepth: 0 }))).toBe(1);
    expect(standbyDepth(row({ standbyDepth: 999 }))).toBe(MAX_STANDBY_DEPTH);
  });

  it("plans a refill: drops the exhausted front, keeps the rest, creates up to the depth within the budget", () => {
    const wide = { ...pool, maxActivationsPerHour: 100 };
    const stocked = row({
      links: [exhausted, link("s", 10, 4, 10_000_000), link("q", 10, 0, 10_000_000)],
      standbyDepth: 3,
    });
    const plan = planRefill(stocked, wide, 0, false);
    expect(plan).toMatchObject({ seen: ["a", "s", "q"], shift: 10, generation: 4, depth: 3, create: 2 });
    expect(plan.dropped.map((l) => l.activationId)).toEqual(["a"]);
    expect(plan.kept.map((l) => l.activationId)).toEqual(["s", "q"]);
    // The budget's room bounds it: one activation left in the open window.
    const tight = { ...wide, maxActivationsPerHour: 5 };
    expect(
      planRefill({ ...stocked, rotationWindowStart: 0, rotationsInWindow: 4 }, tight, 1, false).create,
    ).toBe(1);
    // Nothing kept: the stock of 2 went in 500 ms (at least twice the pace of 2 per
    // STOCK_COVER_MS), so the depth doubles to 4; the first new one is current and, unused,
    // counts in the depth.
    const dry = row({ standbyDepth: 2, refilledAt: 1_000 });
    expect(planRefill(dry, wide, 1_500, false)).toMatchObject({ depth: 4, create: 4, shift: 10, kept: [] });
  });

  it("a reservation on the queue names the activations after it, and asks for a refill below the depth", () => {
    const onQueue = row({
      links: [
        exhausted,
        link("s", 2, 2, 10_000_000),
        link("q1", 3, 1, 9_000_000),
        link("q2", 3, 0, 9_500_000),
      ],
      standbyDepth: 2,
    });
    expect(reservationFrom(onQueue)).toEqual({
      pool: "web",
      generation: 3,
      activationId: "q1",
      expiresAt: 9_000_000,
      limit: 3,
      slot: 1,
      needsStandby: true,
      next: ["q2"],
    });
    expect(reservationFrom({ ...onQueue, standbyDepth: 1 }).needsStandby).toBe(false);
  });
});

describe("the queue in the policy (I2, I9)", () => {
  const queued = (expiresAt: number[], issued = 0) =>
    expiresAt.map((e, i) => link(`q${i}`, 2, i === 0 ? issued : 0, e));
  /** The current activation (limit 3) and the standby (limit 2) with `issued` and `expiresAt` each. */
  const front = (
    issued: [number, number],
    expiresAt: [number, number] = [NOW + MARGIN + 1, NOW + MARGIN + 1],
  ) => [link("a", 3, issued[0], expiresAt[0]), link("s", 2, issued[1], expiresAt[1])];
  /** Current and standby spent, then the queue. */
  const spent = (...queue: Link[]) => state(...front([3, 2]), ...queue);
  const later = NOW + 10 * MARGIN;

  it("reserves on the queue only while every queued activation outlives the margin", () => {
    expect(canReserve(spent(...queued([later, later])), pool, NOW)).toBe(true);
    expect(canReserve(spent(...queued([later, NOW + MARGIN])), pool, NOW)).toBe(false);
    expect(canReserve(spent(...queued([NOW + MARGIN, later])), pool, NOW)).toBe(false);
    // The exhausted current and standby expiring do not matter once the queue is in use.
    expect(canReserve(state(...front([3, 2], [NOW, NOW]), ...queued([later])), pool, NOW)).toBe(true);
    expect(canReserve(spent(...queued([later], 2)), pool, NOW)).toBe(false);
  });

  it("switches to a standby only strictly beyond the margin", () => {
    expect(canSwitchToStandby(state(...front([1, 0], [NOW + MARGIN, NOW + MARGIN + 1])), pool, NOW)).toBe(
      true,
    );
    expect(canSwitchToStandby(state(...front([1, 0], [NOW + MARGIN, NOW + MARGIN])), pool, NOW)).toBe(false);
  });

  it("the deepest stock is 24 activations behind the current one", () => {
    expect(MAX_STANDBY_DEPTH).toBe(24);
    const full = { ...state(...front([0, 1]), ...queued(Array(23).fill(later))), standbyDepth: 24 };
    // 25 activations on the row: a refill makes none, whatever the depth asks.
    expect(planRefill(full, { ...pool, maxActivationsPerHour: 100 }, NOW, false).create).toBe(0);
    // 24 on the row, two of them in use: the depth asks for two more, the row has room for one.
    const nearlyFull = { ...state(...front([1, 1]), ...queued(Array(22).fill(later))), standbyDepth: 24 };
    expect(planRefill(nearlyFull, { ...pool, maxActivationsPerHour: 100 }, NOW, false).create).toBe(1);
  });

  it("a refill plans the depth the pace needs: fast use deepens it, a slow refill does not", () => {
    const wide = { ...pool, maxActivationsPerHour: 100 };
    // Depth 3 recorded; the standby (limit 3) in use, nothing behind it: all 3 used, dry soon.
    const row = {
      ...state(link("a", 3, 3, NOW + MARGIN + 1), link("s", 3, 1, NOW + MARGIN + 1)),
      standbyDepth: 3,
    };
    const C = STOCK_COVER_MS;
    expect(planRefill({ ...row, refilledAt: NOW - C }, wide, NOW, false).depth).toBe(3);
    expect(planRefill({ ...row, refilledAt: NOW - C / 4 }, wide, NOW, false).depth).toBe(6);
    expect(planRefill({ ...row, refilledAt: NOW - 10 * C }, wide, NOW, false).depth).toBe(1);
  });
});
