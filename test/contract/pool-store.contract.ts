/**
 * The PoolStateStore contract (src/core/ports.ts), run against the in-memory fake and the
 * DynamoDB adapter. Each condition of each conditional write has a case that passes and a case
 * that fails, so a store that drops one clause of a condition cannot pass.
 */
import { beforeAll, afterAll, describe, expect, it } from "vitest";
import type { LeaseRequest, NewActivation, PoolStateStore, Reservation } from "../../src/core/ports";
import { currentOf, linksOf } from "../../src/core/vend-policy";

/** A rotation budget no test here reaches (the budget has its own cases). */
const ANY_BUDGET = { max: 1_000_000, windowMs: 3_600_000 };

export interface PoolStoreFixture {
  readonly store: PoolStateStore;
  readonly cleanup?: () => Promise<void>;
}

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const HOUR = 3_600_000;
const LEASE_MS = 30_000;

const budgetWindow = (start: number, count: number) => ({
  rotationWindowStart: start,
  rotationsInWindow: count,
});

export function poolStoreContract(makeStore: () => Promise<PoolStoreFixture>): void {
  describe("PoolStateStore contract", () => {
    let fixture: PoolStoreFixture;
    let store: PoolStateStore;
    // The real store shares one table across cases: unique pool names keep them independent.
    const run = Math.random().toString(36).slice(2, 8);
    let counter = 0;
    const newPool = () => `c${run}-${++counter}`;
    /**
     * acquireLease as the vendor asks for it: with the budget window it read on the row. The
     * budget defaults to one no case reaches, which every case but the budget's own takes.
     */
    const acquire = async (
      pool: string,
      request: Omit<LeaseRequest, "budget"> & { budget?: Omit<LeaseRequest["budget"], "windowStart"> },
    ) => {
      const windowStart = (await store.read(pool))?.rotationWindowStart;
      return store.acquireLease(pool, {
        ...request,
        budget: { ...(request.budget ?? ANY_BUDGET), windowStart },
      });
    };
    /** The lease at NOW. */
    const lease = (pool: string, owner: string, generation: number) =>
      acquire(pool, { owner, generation, now: NOW, deadline: NOW + LEASE_MS });

    beforeAll(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.cleanup?.();
    });

    /** A pool at generation 1 with a fresh activation and slot 1 already taken by the rotator. */
    async function seeded(options: { limit?: number; expiresAt?: number; activationId?: string } = {}) {
      const pool = newPool();
      expect(await lease(pool, "seeder", 0)).toBe(true);
      const first = await store.commitRotation(pool, {
        owner: "seeder",
        generation: 0,
        activation: {
          activationId: options.activationId ?? `act-${pool}`,
          expiresAt: options.expiresAt ?? NOW + 24 * HOUR,
          limit: options.limit ?? 10,
        },
      });
      expect(first?.slot).toBe(1);
      return pool;
    }

    describe("read", () => {
      it("returns undefined for a pool without a row", async () => {
        expect(await store.read(newPool())).toBeUndefined();
      });
    });

    describe("reserve", () => {
      it("fails on a pool without a row, and does not create one", async () => {
        const pool = newPool();
        expect(await store.reserve(pool, NOW)).toBeUndefined();
        expect(await store.read(pool)).toBeUndefined();
      });

      it("fails on a row that has a lease but no activation yet", async () => {
        const pool = newPool();
        await lease(pool, "a", 0);
        expect(await store.reserve(pool, NOW)).toBeUndefined();
      });

      it("hands out consecutive slots after the rotator's slot 1, up to the limit, then fails", async () => {
        const expiresAt = NOW + 24 * HOUR;
        const pool = await seeded({ limit: 3, expiresAt, activationId: "act-slots" });
        const second = await store.reserve(pool, NOW + HOUR);
        expect(second).toEqual<Reservation>({
          pool,
          generation: 1,
          activationId: "act-slots",
          expiresAt,
          limit: 3,
          slot: 2,
          needsStandby: true,
          next: [],
        });
        expect((await store.reserve(pool, NOW + HOUR))?.slot).toBe(3);
        expect(await store.reserve(pool, NOW + HOUR)).toBeUndefined();
        expect(await store.reserve(pool, NOW + HOUR)).toBeUndefined();
        expect(currentOf(await store.read(pool))?.issued).toBe(3);
      });

      it("fails when the activation does not outlive validUntil (strictly)", async () => {
        const expiresAt = NOW + 2 * HOUR;
        const pool = await seeded({ expiresAt });
        expect(await store.reserve(pool, expiresAt)).toBeUndefined();
        expect(await store.reserve(pool, expiresAt + 1)).toBeUndefined();
        expect(currentOf(await store.read(pool))?.issued).toBe(1);
        expect((await store.reserve(pool, expiresAt - 1))?.slot).toBe(2);
      });
    });

    describe("acquireLease", () => {
      it("creates the row at generation 0 when none exists", async () => {
        const pool = newPool();
        expect(await lease(pool, "a", 0)).toBe(true);
        const state = await store.read(pool);
        expect(state).toEqual({
          pool,
          generation: 0,
          links: [],
          leaseOwner: "a",
          leaseDeadline: NOW + LEASE_MS,
          ...budgetWindow(NOW, 1),
        });
      });

      it("fails on a missing row when the caller expects a later generation, without creating it", async () => {
        const pool = newPool();
        expect(await lease(pool, "a", 1)).toBe(false);
        expect(await store.read(pool)).toBeUndefined();
      });

      it("fails when the pool has moved to another generation", async () => {
        const pool = await seeded();
        const lease = { owner: "b", now: NOW, deadline: NOW + LEASE_MS };
        expect(await acquire(pool, { ...lease, generation: 0 })).toBe(false);
        expect(await acquire(pool, { ...lease, generation: 2 })).toBe(false);
        expect(await acquire(pool, { ...lease, generation: 1 })).toBe(true);
      });

      it("fails while another lease is held, and succeeds once its deadline is reached", async () => {
        const pool = newPool();
        const deadline = NOW + LEASE_MS;
        expect(
          await acquire(pool, {
            owner: "a",
            generation: 0,
            now: NOW,
            deadline,
          }),
        ).toBe(true);
        expect(
          await acquire(pool, {
            owner: "b",
            generation: 0,
            now: deadline - 1,
            deadline: deadline + LEASE_MS,
          }),
        ).toBe(false);
        expect((await store.read(pool))?.leaseOwner).toBe("a");
        // deadline <= now: a lease lapses at its deadline, not one millisecond later.
        expect(
          await acquire(pool, {
            owner: "b",
            generation: 0,
            now: deadline,
            deadline: deadline + LEASE_MS,
          }),
        ).toBe(true);
        expect(await store.read(pool)).toMatchObject({ leaseOwner: "b", leaseDeadline: deadline + LEASE_MS });
      });

      it("can be taken again at generation 0 after a first rotation was abandoned", async () => {
        const pool = newPool();
        await lease(pool, "a", 0);
        await store.releaseLease(pool, "a");
        expect(await lease(pool, "b", 0)).toBe(true);
        expect(await store.read(pool)).toEqual({
          pool,
          generation: 0,
          links: [],
          leaseOwner: "b",
          leaseDeadline: NOW + LEASE_MS,
          ...budgetWindow(NOW, 2),
        });
      });

      it("keeps the current activation and slots while a rotation is under way", async () => {
        const pool = await seeded({ limit: 1, activationId: "act-kept" });
        expect(await lease(pool, "r", 1)).toBe(true);
        const state = await store.read(pool);
        expect(state?.generation).toBe(1);
        expect(currentOf(state)).toMatchObject({ activationId: "act-kept", issued: 1, limit: 1 });
      });
    });

    describe("commitRotation", () => {
      it("installs the activation, bumps the generation, takes slot 1 and clears the lease", async () => {
        const pool = newPool();
        await lease(pool, "a", 0);
        const activation = { activationId: "act-new", expiresAt: NOW + 24 * HOUR, limit: 5 };
        const reservation = await store.commitRotation(pool, { owner: "a", generation: 0, activation });
        expect(reservation).toEqual<Reservation>({
          pool,
          generation: 1,
          slot: 1,
          needsStandby: true,
          next: [],
          ...activation,
        });
        expect(await store.read(pool)).toEqual({
          pool,
          generation: 1,
          links: [{ activationId: "act-new", expiresAt: activation.expiresAt, limit: 5, issued: 1 }],
          ...budgetWindow(NOW, 1),
        });
      });

      it("replaces an exhausted activation and restarts the slots", async () => {
        const pool = await seeded({ limit: 1, activationId: "act-old" });
        expect(await store.reserve(pool, NOW)).toBeUndefined();
        await lease(pool, "r", 1);
        const activation = { activationId: "act-next", expiresAt: NOW + 48 * HOUR, limit: 2 };
        expect(
          await store.commitRotation(pool, { owner: "r", generation: 1, activation }),
        ).toEqual<Reservation>({
          pool,
          generation: 2,
          slot: 1,
          needsStandby: true,
          next: [],
          ...activation,
        });
        expect((await store.reserve(pool, NOW))?.slot).toBe(2);
      });

      it("refuses a caller that does not hold the lease, leaving the row untouched", async () => {
        const pool = newPool();
        await lease(pool, "a", 0);
        const before = await store.read(pool);
        const activation = { activationId: "act-intruder", expiresAt: NOW + HOUR, limit: 5 };
        expect(await store.commitRotation(pool, { owner: "b", generation: 0, activation })).toBeUndefined();
        expect(await store.read(pool)).toEqual(before);
      });

      it("refuses a holder whose lease lapsed and was taken over", async () => {
        const pool = newPool();
        await lease(pool, "a", 0);
        const later = NOW + LEASE_MS;
        await acquire(pool, {
          owner: "b",
          generation: 0,
          now: later,
          deadline: later + LEASE_MS,
        });
        const activation = { activationId: "act-late", expiresAt: NOW + HOUR, limit: 5 };
        expect(await store.commitRotation(pool, { owner: "a", generation: 0, activation })).toBeUndefined();
        expect((await store.read(pool))?.leaseOwner).toBe("b");
      });

      it("refuses a commit for a stale generation, even by the lease owner", async () => {
        const pool = await seeded({ activationId: "act-current" });
        await lease(pool, "a", 1);
        const activation = { activationId: "act-stale", expiresAt: NOW + HOUR, limit: 5 };
        expect(await store.commitRotation(pool, { owner: "a", generation: 0, activation })).toBeUndefined();
        expect(await store.commitRotation(pool, { owner: "a", generation: 2, activation })).toBeUndefined();
        const state = await store.read(pool);
        expect(state).toMatchObject({ generation: 1, leaseOwner: "a" });
        expect(currentOf(state)?.activationId).toBe("act-current");
      });

      it("refuses a second commit with the same lease (one activation per generation)", async () => {
        const pool = newPool();
        await lease(pool, "a", 0);
        const activation = { activationId: "act-once", expiresAt: NOW + HOUR, limit: 5 };
        expect(await store.commitRotation(pool, { owner: "a", generation: 0, activation })).toBeDefined();
        expect(
          await store.commitRotation(pool, {
            owner: "a",
            generation: 0,
            activation: { ...activation, activationId: "x" },
          }),
        ).toBeUndefined();
        expect(currentOf(await store.read(pool))?.activationId).toBe("act-once");
      });

      it("refuses a commit on a pool without a row, without creating one", async () => {
        const pool = newPool();
        const activation = { activationId: "act-ghost", expiresAt: NOW + HOUR, limit: 5 };
        expect(await store.commitRotation(pool, { owner: "a", generation: 0, activation })).toBeUndefined();
        expect(await store.read(pool)).toBeUndefined();
      });
    });

    describe("rotation budget (acquireLease)", () => {
      /** Takes and releases a lease at `now`: one rotation attempt against the budget. */
      async function attempt(
        pool: string,
        now: number,
        max: number,
        generation = 0,
        count?: number,
      ): Promise<boolean> {
        const taken = await acquire(pool, {
          owner: `o-${now}`,
          generation,
          now,
          deadline: now + LEASE_MS,
          budget: { max, windowMs: HOUR, ...(count !== undefined && { count }) },
        });
        if (taken) await store.releaseLease(pool, `o-${now}`);
        return taken;
      }

      it("counts leases in the window and refuses the one past `max`, lease free or not", async () => {
        const pool = newPool();
        expect(await attempt(pool, NOW, 3)).toBe(true);
        expect(await attempt(pool, NOW + 1_000, 3)).toBe(true);
        expect(await attempt(pool, NOW + 2_000, 3)).toBe(true);
        expect(await attempt(pool, NOW + 3_000, 3)).toBe(false);
        expect(await store.read(pool)).toMatchObject(budgetWindow(NOW, 3));
      });

      it("counts every activation a lease is taken for: a refill of several spends as many", async () => {
        const pool = newPool();
        expect(await attempt(pool, NOW, 5, 0, 6)).toBe(false);
        expect(await store.read(pool)).toBeUndefined();
        expect(await attempt(pool, NOW, 5, 0, 3)).toBe(true);
        expect(await store.read(pool)).toMatchObject(budgetWindow(NOW, 3));
        expect(await attempt(pool, NOW + 1_000, 5, 0, 3)).toBe(false);
        expect(await attempt(pool, NOW + 2_000, 5, 0, 2)).toBe(true);
        expect(await store.read(pool)).toMatchObject(budgetWindow(NOW, 5));
        expect(await attempt(pool, NOW + HOUR, 5, 0, 5)).toBe(true);
        expect(await store.read(pool)).toMatchObject(budgetWindow(NOW + HOUR, 5));
      });

      it("opens a new window once the old one is an hour old, counting from 1 again", async () => {
        const pool = newPool();
        expect(await attempt(pool, NOW, 1)).toBe(true);
        expect(await attempt(pool, NOW + HOUR - 1, 1)).toBe(false);
        expect(await attempt(pool, NOW + HOUR, 1)).toBe(true);
        expect(await store.read(pool)).toMatchObject(budgetWindow(NOW + HOUR, 1));
        expect(await attempt(pool, NOW + HOUR + 1, 1)).toBe(false);
      });

      it("still checks the generation and the lease in both windows", async () => {
        const pool = await seeded();
        const lease = { owner: "b", now: NOW, deadline: NOW + LEASE_MS, budget: { max: 5, windowMs: HOUR } };
        expect(await acquire(pool, { ...lease, generation: 0 })).toBe(false);
        expect(await acquire(pool, { ...lease, generation: 1 })).toBe(true);
        expect(await acquire(pool, { ...lease, owner: "c", generation: 1 })).toBe(false);
        const later = NOW + 2 * HOUR; // window closed, lease lapsed: the new-window write applies
        expect(
          await acquire(pool, {
            ...lease,
            owner: "d",
            now: later,
            deadline: later + 1,
            generation: 0,
          }),
        ).toBe(false);
        expect(
          await acquire(pool, {
            ...lease,
            owner: "d",
            now: later,
            deadline: later + 1,
            generation: 1,
          }),
        ).toBe(true);
      });

      it("takes the lease only while the row's window is still the one the caller read", async () => {
        const open = newPool();
        expect(await attempt(open, NOW, 5)).toBe(true);
        const lease = (now: number, windowStart: number | undefined) => ({
          owner: "b",
          generation: 0,
          now,
          deadline: now + LEASE_MS,
          budget: { max: 5, windowMs: HOUR, windowStart },
        });
        // Read before the window opened: refused, rather than a second window over the first.
        expect(await store.acquireLease(open, lease(NOW + 1, undefined))).toBe(false);
        expect(await store.read(open)).toMatchObject(budgetWindow(NOW, 1));
        expect(await store.acquireLease(open, lease(NOW + 1, NOW))).toBe(true);
        expect(await store.read(open)).toMatchObject(budgetWindow(NOW, 2));
        // A window the row does not have: refused, rather than counting in nothing.
        const none = newPool();
        expect(await store.acquireLease(none, lease(NOW + 1, NOW))).toBe(false);
        expect(await store.read(none)).toBeUndefined();
      });

      it("lets exactly `max` of many racing lease-takers through one window", async () => {
        const pool = newPool();
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => attempt(pool, NOW + LEASE_MS * i, 4)),
        );
        // Racers may also lose to each other's lease; never more than the budget win.
        expect(results.filter(Boolean).length).toBeLessThanOrEqual(4);
        expect((await store.read(pool))?.rotationsInWindow).toBeLessThanOrEqual(4);
      });
    });

    /** A seeded pool whose standby was installed under a lease at generation 1. */
    async function withStandby(
      options: { limit?: number; expiresAt?: number; standbyLimit?: number; standbyExpiresAt?: number } = {},
    ) {
      const pool = await seeded({
        limit: options.limit ?? 2,
        ...(options.expiresAt !== undefined && { expiresAt: options.expiresAt }),
        activationId: "act-current",
      });
      expect(await lease(pool, "filler", 1)).toBe(true);
      const standby = {
        activationId: "act-standby",
        expiresAt: options.standbyExpiresAt ?? NOW + 48 * HOUR,
        limit: options.standbyLimit ?? 3,
      };
      expect(await refill(pool, "filler", 1, [standby])).toBe(true);
      return { pool, standby };
    }

    /**
     * A refill's commit as the vendor makes it: the row's activations as read, the first `drop`
     * of them dropped, `add` appended.
     */
    async function refill(
      pool: string,
      owner: string,
      generation: number,
      add: NewActivation[],
      options: { drop?: number; depth?: number; seen?: string[] } = {},
    ): Promise<boolean> {
      const links = linksOf(await store.read(pool));
      const dropped = links.slice(0, options.drop ?? 0);
      return store.commitRefill(pool, {
        owner,
        generation,
        seen: options.seen ?? links.map((l) => l.activationId),
        dropped: dropped.length,
        shift: dropped.reduce((sum, l) => sum + l.limit, 0),
        chain: [...links.slice(dropped.length), ...add],
        depth: options.depth ?? 1,
        now: NOW,
      });
    }

    describe("standby (I9)", () => {
      it("commitRefill installs the standby beside the current activation and clears the lease", async () => {
        const { pool, standby } = await withStandby();
        expect(await store.read(pool)).toEqual({
          pool,
          ...budgetWindow(NOW, 2),
          generation: 1,
          links: [
            { activationId: "act-current", expiresAt: NOW + 24 * HOUR, limit: 2, issued: 1 },
            { activationId: standby.activationId, expiresAt: standby.expiresAt, limit: 3, issued: 0 },
          ],
          standbyDepth: 1,
          refilledAt: NOW,
        });
      });

      it("commitRefill fails without the lease, at another generation, or past what it saw", async () => {
        const pool = await seeded();
        const activation = { activationId: "act-s", expiresAt: NOW + 48 * HOUR, limit: 3 };
        expect(await refill(pool, "nobody", 1, [activation])).toBe(false);
        await lease(pool, "f", 1);
        expect(await refill(pool, "f", 0, [activation])).toBe(false);
        // A current activation other than the one it saw (a revoke or a rotation got there first).
        expect(await refill(pool, "f", 1, [activation], { seen: ["act-elsewhere"] })).toBe(false);
        expect(await refill(pool, "f", 1, [activation])).toBe(true);
        expect(await store.read(pool)).not.toHaveProperty("leaseOwner");
        // The lease went with the commit.
        expect(await refill(pool, "f", 1, [{ ...activation, activationId: "act-s2" }])).toBe(false);
        expect((await store.read(pool))?.links[1]?.activationId).toBe("act-s");
      });

      it("commitRefill refuses a row that gained an activation since its read (another refill, same generation)", async () => {
        const { pool } = await withStandby();
        await lease(pool, "late", 1);
        const next = { activationId: "act-late", expiresAt: NOW + 48 * HOUR, limit: 3 };
        // It read the row before the standby's commit: writing its view would drop the standby.
        expect(await refill(pool, "late", 1, [next], { seen: ["act-current"] })).toBe(false);
        expect((await store.read(pool))?.links[1]?.activationId).toBe("act-standby");
        expect(await refill(pool, "late", 1, [next])).toBe(true);
        // Likewise for a queue that grew since the read.
        await lease(pool, "later", 1);
        const last = { activationId: "act-last", expiresAt: NOW + 48 * HOUR, limit: 3 };
        expect(await refill(pool, "later", 1, [last], { seen: ["act-current", "act-standby"] })).toBe(false);
        expect(await refill(pool, "later", 1, [last])).toBe(true);
        const queued = (await store.read(pool))?.links.slice(2);
        expect(queued?.map((q) => q.activationId)).toEqual(["act-late", "act-last"]);
      });

      it("commitRefill refuses a standby it saw that a revoke has since dropped (I8)", async () => {
        const { pool } = await withStandby();
        await lease(pool, "f", 1);
        const seen = ["act-current", "act-standby"];
        expect(await refill(pool, "f", 1, [], { seen: ["act-current", "act-other"] })).toBe(false);
        const next = { activationId: "act-next", expiresAt: NOW + 48 * HOUR, limit: 3 };
        expect(await refill(pool, "f", 1, [next], { seen })).toBe(true);
        expect(linksOf(await store.read(pool)).map((l) => l.activationId)).toEqual([
          "act-current",
          "act-standby",
          "act-next",
        ]);
      });

      it("reserve keeps to the current activation, then takes the standby's slots, then fails", async () => {
        const { pool, standby } = await withStandby({ limit: 2, standbyLimit: 2 });
        const current = await store.reserve(pool, NOW + HOUR);
        expect(current).toMatchObject({
          activationId: "act-current",
          slot: 2,
          needsStandby: false,
          next: ["act-standby"],
        });
        const first = await store.reserve(pool, NOW + HOUR);
        expect(first).toEqual<Reservation>({
          pool,
          generation: 1,
          activationId: standby.activationId,
          expiresAt: standby.expiresAt,
          limit: 2,
          slot: 1,
          needsStandby: true,
          next: [],
        });
        expect(await store.reserve(pool, NOW + HOUR)).toMatchObject({
          activationId: "act-standby",
          slot: 2,
          needsStandby: true,
        });
        expect(await store.reserve(pool, NOW + HOUR)).toBeUndefined();
        const spent = linksOf(await store.read(pool)).slice(0, 2); // the current one and the standby
        expect(spent.map((l) => l.issued)).toEqual([2, 2]);
      });

      it("reserve never takes a standby slot that would expire inside the margin (I2)", async () => {
        const { pool } = await withStandby({ limit: 1, standbyExpiresAt: NOW + 2 * HOUR });
        expect(await store.reserve(pool, NOW + 2 * HOUR)).toBeUndefined();
        expect(await store.reserve(pool, NOW + 2 * HOUR - 1)).toMatchObject({ activationId: "act-standby" });
      });

      it("commitRefill drops the exhausted current one, keeps the standby's slots counting, and appends", async () => {
        const { pool, standby } = await withStandby({ limit: 1, standbyLimit: 3 });
        await store.reserve(pool, NOW); // standby slot 1
        await lease(pool, "f2", 1);
        const next = { activationId: "act-next", expiresAt: NOW + 72 * HOUR, limit: 4 };
        expect(await refill(pool, "f2", 1, [next], { drop: 1, depth: 2 })).toBe(true);
        expect(await store.read(pool)).toEqual({
          pool,
          ...budgetWindow(NOW, 3),
          generation: 2,
          links: [
            { activationId: "act-standby", expiresAt: standby.expiresAt, limit: 3, issued: 1 },
            { ...next, issued: 0 },
          ],
          standbyDepth: 2,
          refilledAt: NOW,
        });
        expect(await store.reserve(pool, NOW)).toMatchObject({ activationId: "act-standby", slot: 2 });
        expect(await store.reserve(pool, NOW)).toMatchObject({ activationId: "act-standby", slot: 3 });
        // Every one of the next standby's slots, and not one more.
        for (const slot of [1, 2, 3, 4]) {
          expect(await store.reserve(pool, NOW)).toMatchObject({ activationId: "act-next", slot });
        }
        expect(await store.reserve(pool, NOW)).toBeUndefined();
      });

      it("commitRefill does not drop an activation with slots left", async () => {
        const { pool } = await withStandby({ limit: 3 });
        await lease(pool, "f2", 1);
        const next = { activationId: "act-next", expiresAt: NOW + 72 * HOUR, limit: 4 };
        expect(await refill(pool, "f2", 1, [next], { drop: 1 })).toBe(false);
        expect(currentOf(await store.read(pool))?.activationId).toBe("act-current");
      });

      it("commitRefill drops every exhausted activation: the first new one becomes current", async () => {
        const { pool } = await withStandby({ limit: 1, standbyLimit: 1 });
        await store.reserve(pool, NOW);
        expect(await store.reserve(pool, NOW)).toBeUndefined();
        await lease(pool, "f", 1);
        const fresh = { activationId: "act-fresh", expiresAt: NOW + 72 * HOUR, limit: 2 };
        expect(await refill(pool, "f", 1, [fresh], { drop: 2 })).toBe(true);
        expect(await store.read(pool)).toEqual({
          pool,
          ...budgetWindow(NOW, 3),
          generation: 3,
          links: [{ ...fresh, issued: 0 }],
          standbyDepth: 1,
          refilledAt: NOW,
        });
        expect(await store.reserve(pool, NOW)).toMatchObject({ activationId: "act-fresh", slot: 1 });
      });

      describe("queue", () => {
        /** Current (limit 1, slot 1 taken), standby (limit 2) and two queued (limits 3 and 1). */
        async function withQueue(queueExpiresAt = [NOW + 72 * HOUR, NOW + 96 * HOUR]) {
          const { pool } = await withStandby({ limit: 1, standbyLimit: 2 });
          await lease(pool, "q", 1);
          const queued = [
            { activationId: "act-q1", expiresAt: queueExpiresAt[0] as number, limit: 3 },
            { activationId: "act-q2", expiresAt: queueExpiresAt[1] as number, limit: 1 },
          ];
          expect(await refill(pool, "q", 1, queued, { depth: 3 })).toBe(true);
          return { pool, queued };
        }

        it("reserve runs through the standby, then each queued activation in order, then fails", async () => {
          const { pool, queued } = await withQueue();
          const taken: [string, number][] = [];
          for (let reservation = await store.reserve(pool, NOW); reservation;) {
            taken.push([reservation.activationId, reservation.slot]);
            reservation = await store.reserve(pool, NOW);
          }
          expect(taken).toEqual([
            ["act-standby", 1],
            ["act-standby", 2],
            ["act-q1", 1],
            ["act-q1", 2],
            ["act-q1", 3],
            ["act-q2", 1],
          ]);
          expect(await store.read(pool)).toMatchObject({
            links: [{ issued: 1 }, { issued: 2 }, ...queued.map((q) => ({ ...q, issued: q.limit }))],
            standbyDepth: 3,
          });
        });

        it("a reservation names the activations after its own: their codes come along", async () => {
          const { pool } = await withQueue();
          expect(await store.reserve(pool, NOW)).toMatchObject({
            activationId: "act-standby",
            slot: 1,
            needsStandby: true,
            next: ["act-q1", "act-q2"],
          });
          await store.reserve(pool, NOW);
          expect(await store.reserve(pool, NOW)).toMatchObject({
            activationId: "act-q1",
            next: ["act-q2"],
            needsStandby: true,
          });
        });

        it("reserve never takes a queued slot when a queued activation expires inside the margin (I2)", async () => {
          const { pool } = await withQueue([NOW + 72 * HOUR, NOW + 3 * HOUR]);
          await store.reserve(pool, NOW + 3 * HOUR);
          await store.reserve(pool, NOW + 3 * HOUR);
          expect(await store.reserve(pool, NOW + 3 * HOUR)).toBeUndefined();
          expect(await store.reserve(pool, NOW + 3 * HOUR - 1)).toMatchObject({ activationId: "act-q1" });
        });

        it("commitRefill drops the exhausted front and shifts the queue up", async () => {
          const { pool } = await withQueue();
          for (let i = 0; i < 3; i++) await store.reserve(pool, NOW); // standby 1-2, q1 slot 1
          await lease(pool, "q2", 1);
          const q3 = { activationId: "act-q3", expiresAt: NOW + 99 * HOUR, limit: 5 };
          expect(await refill(pool, "q2", 1, [q3], { drop: 2, depth: 2 })).toBe(true);
          expect(await store.read(pool)).toMatchObject({
            generation: 3,
            links: [
              { activationId: "act-q1", limit: 3, issued: 1 },
              { activationId: "act-q2", limit: 1, issued: 0 },
              { ...q3, issued: 0 },
            ],
          });
          const taken: string[] = [];
          for (let r = await store.reserve(pool, NOW); r; r = await store.reserve(pool, NOW)) {
            taken.push(`${r.activationId}#${r.slot}`);
          }
          expect(taken).toEqual([
            "act-q1#2",
            "act-q1#3",
            "act-q2#1",
            ...[1, 2, 3, 4, 5].map((n) => `act-q3#${n}`),
          ]);
        });

        it("commitRefill refuses a queue it saw that a revoke has since dropped (I8)", async () => {
          const { pool } = await withQueue();
          await lease(pool, "q2", 1);
          const seen = ["act-current", "act-standby", "act-q1", "act-gone"];
          expect(await refill(pool, "q2", 1, [], { seen })).toBe(false);
          expect(await refill(pool, "q2", 1, [])).toBe(true);
        });

        it("commitRotation can bring standbys: the standby, the queue and the depth, in one write", async () => {
          const pool = newPool();
          await lease(pool, "r", 0);
          const [current, standby, queued] = ["act-c", "act-s", "act-q"].map((activationId, i) => ({
            activationId,
            expiresAt: NOW + (24 + i) * HOUR,
            limit: 2,
          }));
          expect(
            await store.commitRotation(pool, {
              owner: "r",
              generation: 0,
              activation: current!,
              standbys: [standby!, queued!],
              depth: 2,
              refilledAt: NOW,
            }),
          ).toMatchObject({
            activationId: "act-c",
            slot: 1,
            generation: 1,
            needsStandby: false,
            next: ["act-s", "act-q"],
          });
          const state = await store.read(pool);
          expect(state).toMatchObject({ generation: 1, standbyDepth: 2, refilledAt: NOW });
          expect(state?.links[1]?.activationId).toBe("act-s");
          const taken: string[] = [];
          for (let r = await store.reserve(pool, NOW); r; r = await store.reserve(pool, NOW)) {
            taken.push(`${r.activationId}#${r.slot}`);
          }
          expect(taken).toEqual(["act-c#2", "act-s#1", "act-s#2", "act-q#1", "act-q#2"]);
        });

        it("commitRotation drops the queue", async () => {
          const { pool } = await withQueue();
          await lease(pool, "r", 1);
          const activation = { activationId: "act-rotated", expiresAt: NOW + 24 * HOUR, limit: 2 };
          await store.commitRotation(pool, { owner: "r", generation: 1, nextGeneration: 5, activation });
          const after = await store.read(pool);
          expect(after?.links.slice(2)).toEqual([]);
          expect(linksOf(after).map((l) => l.activationId)).toEqual(["act-rotated"]);
        });

        it("switchToStandby drops the queue: its slots are not reserved on top of the new current one", async () => {
          const { pool } = await withStandby({ limit: 5, expiresAt: NOW + 2 * HOUR, standbyLimit: 1 });
          await lease(pool, "q", 1);
          const queued = { activationId: "act-q1", expiresAt: NOW + 72 * HOUR, limit: 2 };
          expect(await refill(pool, "q", 1, [queued])).toBe(true);
          expect(await store.switchToStandby(pool, NOW + 2 * HOUR)).toMatchObject({
            activationId: "act-standby",
            slot: 1,
          });
          expect((await store.read(pool))?.links.slice(2)).toEqual([]);
          expect(await store.reserve(pool, NOW + 2 * HOUR)).toBeUndefined();
        });

        it("hands out every queued slot exactly once to 40 racing reserves (I1)", async () => {
          const { pool } = await withQueue();
          const results = await Promise.all(Array.from({ length: 40 }, () => store.reserve(pool, NOW)));
          const won = results.filter((r): r is Reservation => r !== undefined);
          expect(won.map((r) => `${r.activationId}#${r.slot}`).sort()).toEqual(
            ["act-q1#1", "act-q1#2", "act-q1#3", "act-q2#1", "act-standby#1", "act-standby#2"].sort(),
          );
        });
      });

      it("switchToStandby moves to the standby when the current one expires with slots left", async () => {
        const { pool, standby } = await withStandby({ limit: 5, expiresAt: NOW + 2 * HOUR });
        // Current still valid for the margin: no switch.
        expect(await store.switchToStandby(pool, NOW + HOUR)).toBeUndefined();
        expect(await store.switchToStandby(pool, NOW + 2 * HOUR)).toEqual<Reservation>({
          pool,
          generation: 2,
          activationId: standby.activationId,
          expiresAt: standby.expiresAt,
          limit: 3,
          slot: 1,
          needsStandby: true,
          next: [],
        });
        expect(await store.read(pool)).toEqual({
          pool,
          ...budgetWindow(NOW, 2),
          generation: 2,
          links: [{ activationId: "act-standby", expiresAt: standby.expiresAt, limit: 3, issued: 1 }],
          standbyDepth: 1,
          refilledAt: NOW,
        });
        expect(await store.switchToStandby(pool, NOW + 2 * HOUR)).toBeUndefined();
      });

      it("switchToStandby refuses a standby that would itself expire inside the margin", async () => {
        const { pool } = await withStandby({ expiresAt: NOW + 2 * HOUR, standbyExpiresAt: NOW + 3 * HOUR });
        expect(await store.switchToStandby(pool, NOW + 3 * HOUR)).toBeUndefined();
        expect(currentOf(await store.read(pool))?.activationId).toBe("act-current");
      });

      it("commitRotation drops a spent standby with the activation it replaces", async () => {
        const { pool } = await withStandby({ limit: 1, standbyLimit: 1 });
        await store.reserve(pool, NOW);
        expect(await store.reserve(pool, NOW)).toBeUndefined();
        await lease(pool, "r", 1);
        const activation = { activationId: "act-rotated", expiresAt: NOW + 24 * HOUR, limit: 2 };
        expect(await store.commitRotation(pool, { owner: "r", generation: 1, activation })).toMatchObject({
          activationId: "act-rotated",
          slot: 1,
          needsStandby: true,
        });
        expect(await store.read(pool)).toEqual({
          pool,
          generation: 2,
          links: [{ ...activation, issued: 1 }],
          ...budgetWindow(NOW, 3),
          standbyDepth: 1,
          refilledAt: NOW,
        });
      });

      it("hands out exactly limit + standbyLimit slots to 40 racing reserves, each once (I1)", async () => {
        const { pool } = await withStandby({ limit: 5, standbyLimit: 7 });
        const results = await Promise.all(Array.from({ length: 40 }, () => store.reserve(pool, NOW)));
        const won = results.filter((r): r is Reservation => r !== undefined);
        expect(won).toHaveLength(4 + 7);
        const current = won.filter((r) => r.activationId === "act-current").map((r) => r.slot);
        const standby = won.filter((r) => r.activationId === "act-standby").map((r) => r.slot);
        expect(current.sort((a, b) => a - b)).toEqual([2, 3, 4, 5]);
        expect(standby.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      });
    });

    describe("releaseLease", () => {
      it("clears the owner's lease so another request can rotate at once", async () => {
        const pool = await seeded({ activationId: "act-r" });
        await lease(pool, "a", 1);
        await store.releaseLease(pool, "a");
        const state = await store.read(pool);
        expect(state?.leaseOwner).toBeUndefined();
        expect(state?.leaseDeadline).toBeUndefined();
        expect(state?.generation).toBe(1);
        expect(currentOf(state)?.activationId).toBe("act-r");
        expect(await lease(pool, "b", 1)).toBe(true);
      });

      it("is a no-op for a caller that does not hold the lease", async () => {
        const pool = newPool();
        await lease(pool, "a", 0);
        await store.releaseLease(pool, "b");
        expect(await store.read(pool)).toMatchObject({ leaseOwner: "a", leaseDeadline: NOW + LEASE_MS });
        expect(await lease(pool, "b", 0)).toBe(false);
      });

      it("is a no-op on a pool without a row", async () => {
        const pool = newPool();
        await expect(store.releaseLease(pool, "a")).resolves.toBeUndefined();
        expect(await store.read(pool)).toBeUndefined();
      });
    });

    describe("under concurrency", () => {
      it("hands out exactly `limit` slots, each once, to 300 racing reserves (I1)", async () => {
        const limit = 100;
        const pool = await seeded({ limit });
        const results = await Promise.all(Array.from({ length: 300 }, () => store.reserve(pool, NOW)));
        const won = results.filter((r): r is Reservation => r !== undefined);
        // The rotator holds slot 1, so 99 reserves win and every slot 1..100 is handed out once.
        expect(won).toHaveLength(limit - 1);
        const slots = [1, ...won.map((r) => r.slot)].sort((a, b) => a - b);
        expect(slots).toEqual(Array.from({ length: limit }, (_, i) => i + 1));
        expect(currentOf(await store.read(pool))?.issued).toBe(limit);
      });

      it("gives the lease to exactly one of 20 racing requests (I3, I5)", async () => {
        const pool = await seeded();
        const owners = Array.from({ length: 20 }, (_, i) => `owner-${i}`);
        const results = await Promise.all(
          owners.map((owner) =>
            acquire(pool, {
              owner,
              generation: 1,
              now: NOW,
              deadline: NOW + LEASE_MS,
            }),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store.read(pool))?.leaseOwner).toBe(owners[results.indexOf(true)]);
      });
    });
  });
}
