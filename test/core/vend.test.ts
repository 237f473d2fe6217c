import { describe, expect, it } from "vitest";
import {
  InvalidPoolNameError,
  PoolNotFoundError,
  RotationInProgressError,
  ThrottledError,
} from "../../src/core/errors";
import {
  linksOf,
  standbyDepth,
  STOCK_COVER_MS,
  TAG_DEPLOYMENT,
  TAG_GENERATION,
  TAG_POOL,
} from "../../src/core/vend-policy";
import { calmBackoffMs } from "../../src/core/vend";
import { FakeClock } from "../support/fakes";
import { aVendor, holdCreates, holdLease, standbyMadeLater } from "../support/vendor-mother";
import { refillElsewhere } from "../../src/core/standby-refill";

const HOUR = 3_600_000;
/** Longer than any pace a test here keeps up: a vend a minute. */
const QUIET_MS = 60_001;

/**
 * Makes every call to the store take `ms` of the fake clock's time, one call at a time: a store at
 * its throughput (a hot partition) serves requests in turn, and each waits for those before it.
 */
function slowDown(store: object, clock: FakeClock, ms: number): void {
  let free = clock.now();
  for (const name of [
    "reserve",
    "read",
    "acquireLease",
    "commitRotation",
    "commitRefill",
    "switchToStandby",
  ]) {
    const target = store as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const call = target[name]!.bind(store);
    target[name] = async (...args: unknown[]) => {
      free = Math.max(free, clock.now()) + ms;
      const answer = await call(...args);
      clock.current = Math.max(clock.current, free);
      return answer;
    };
  }
}

describe("Vendor.vend", () => {
  it("creates the first activation on demand and hands out its pair", async () => {
    const { vendor, activations, clock } = aVendor({ pools: { default: { registrationLimit: 5 } } });
    const vend = await vendor.vend("default");
    expect(activations.created).toHaveLength(1);
    const created = activations.created[0]!;
    expect(vend).toEqual({
      pair: {
        pool: "default",
        activationId: created.activationId,
        activationCode: created.code,
        expiresAt: Math.floor((clock.now() + 24 * HOUR) / 1000) * 1000,
      },
      receipt: { slot: 1, limit: 5, rotated: true },
    });
    expect(created.request).toMatchObject({ iamRole: "SSMServiceRole", registrationLimit: 5, generation: 1 });
    expect(created.request.tags).toEqual({
      [TAG_DEPLOYMENT]: "test",
      [TAG_POOL]: "default",
      [TAG_GENERATION]: "1",
    });
  });

  it("costs one store write and no secret read in steady state (I4)", async () => {
    const { vendor, store, secrets, activations } = aVendor();
    await vendor.vend("default");
    const writes = store.writes;
    const gets = secrets.gets;
    for (let i = 0; i < 5; i++) await vendor.vend("default");
    expect(store.writes - writes).toBe(5);
    expect(secrets.gets - gets).toBe(0);
    expect(activations.created).toHaveLength(1);
  });

  it("reads the code once per activation per process, however many requests race", async () => {
    const { vendor, newProcess, secrets } = aVendor({ pools: { default: { registrationLimit: 1000 } } });
    await vendor.vend("default");
    const other = newProcess();
    const pairs = await Promise.all(
      Array.from({ length: 50 }, () => other.vend("default").then((v) => v.pair)),
    );
    expect(new Set(pairs.map((p) => p.activationCode)).size).toBe(1);
    expect(secrets.gets).toBe(1);
  });

  it("rotates exactly when the registration limit is reached (I1, I5)", async () => {
    const { vendor, activations, store } = aVendor({ pools: { default: { registrationLimit: 3 } } });
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push((await vendor.vend("default")).pair.activationId);
    const created = activations.created.map((a) => a.activationId);
    expect(ids).toEqual([created[0], created[0], created[0], created[1], created[1], created[1], created[2]]);
    expect((await store.read("default"))?.generation).toBe(3);
    expect(activations.created.map((a) => a.request.tags[TAG_GENERATION])).toEqual(["1", "2", "3"]);
  });

  it("stops handing out a pair once it would expire within the safety margin (I2)", async () => {
    const { vendor, activations, clock } = aVendor({
      pools: { default: { registrationLimit: 100, expirationHours: 2, safetyMarginMinutes: 30 } },
    });
    const { pair: first } = await vendor.vend("default");
    clock.current = first.expiresAt - 30 * 60_000 - 1;
    expect((await vendor.vend("default")).pair.activationId).toBe(first.activationId);
    clock.current = first.expiresAt - 30 * 60_000;
    const { pair: next } = await vendor.vend("default");
    expect(next.activationId).not.toBe(first.activationId);
    expect(next.expiresAt).toBeGreaterThan(clock.now() + 30 * 60_000);
    expect(activations.created).toHaveLength(2);
  });

  it("waits for a rotation held by another request, then answers RotationInProgress with Retry-After", async () => {
    const { vendor, store, clock, activations } = aVendor({ options: { rotationWaitMs: 2_000 } });
    await holdLease({ store, clock });
    const started = clock.now();
    const error = await vendor.vend("default").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RotationInProgressError);
    expect((error as RotationInProgressError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((error as RotationInProgressError).retryAfterSeconds).toBeLessThanOrEqual(5);
    expect(clock.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(clock.now() - started).toBeLessThan(3_000);
    expect(activations.created).toHaveLength(0);
  });

  it("takes over the lease of a holder that crashed, once the lease has lapsed (I3)", async () => {
    const { vendor, store, clock, activations } = aVendor({ options: { rotationWaitMs: 1_000 } });
    await holdLease({ store, clock }, { owner: "crashed" });
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(RotationInProgressError);
    clock.current += 30_000;
    const { pair } = await vendor.vend("default");
    expect(pair.activationId).toBe(activations.created[0]!.activationId);
    expect((await store.read("default"))?.leaseOwner).toBeUndefined();
  });

  it("discards what it created when its lease was taken over before the commit", async () => {
    const { vendor, store, clock, activations, secrets } = aVendor();
    activations.beforeCreate = async () => {
      // The holder stalls past its lease; another request takes over and commits generation 1.
      clock.current += 31_000;
      activations.beforeCreate = () => {};
      await holdLease({ store, clock }, { owner: "other" });
      await store.commitRotation("default", {
        owner: "other",
        generation: 0,
        activation: { activationId: "winner", expiresAt: clock.now() + 24 * 3_600_000, limit: 10 },
      });
      await secrets.put({
        pool: "default",
        activationId: "winner",
        activationCode: "winner-code",
        expiresAt: 0,
      });
    };
    const { pair } = await vendor.vend("default");
    expect(pair.activationId).toBe("winner");
    expect(activations.created).toHaveLength(1);
    expect(activations.created[0]!.deleted).toBe(true);
    expect(secrets.items.has(`default/${activations.created[0]!.activationId}`)).toBe(false);
  });

  it("releases the lease and keeps state intact when SSM throttles, and the next request succeeds", async () => {
    const { vendor, store, activations, clock } = aVendor();
    activations.beforeCreate = () => {
      throw new ThrottledError("SSM", 2);
    };
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    expect(await store.read("default")).toEqual({
      pool: "default",
      generation: 0,
      links: [],
      rotationWindowStart: clock.now(),
      rotationsInWindow: 1,
    });
    activations.beforeCreate = () => {};
    await expect(vendor.vend("default")).resolves.toMatchObject({ pair: { pool: "default" } });
  });

  it("deletes the new activation when storing its code fails", async () => {
    const { vendor, secrets, activations, store } = aVendor();
    secrets.put = () => Promise.reject(new ThrottledError("Parameter Store", 1));
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    expect(activations.live()).toHaveLength(0);
    expect((await store.read("default"))?.leaseOwner).toBeUndefined();
  });

  it("stores a throttled code again after a pause, within half the lease, rather than lose the activation", async () => {
    const { vendor, secrets, activations, clock } = aVendor();
    const put = secrets.put.bind(secrets);
    const tries: number[] = [];
    secrets.put = (secret) => {
      tries.push(clock.now());
      return tries.length <= 3 ? Promise.reject(new ThrottledError("Parameter Store", 1)) : put(secret);
    };
    const { pair } = await vendor.vend("default");
    expect(pair.activationCode).toBe(activations.created[0]!.code);
    expect(activations.created).toHaveLength(1);
    expect(activations.live()).toHaveLength(1);
    expect(tries).toHaveLength(4);
    expect(tries.at(-1)! - tries[0]!).toBeGreaterThan(0); // it paused between tries
  });

  it("gives up on a throttled code at half the lease, and on any other failure at once", async () => {
    const throttled = aVendor();
    const started = throttled.clock.now();
    throttled.secrets.put = () => Promise.reject(new ThrottledError("Parameter Store", 1));
    await expect(throttled.vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    expect(throttled.clock.now() - started).toBeLessThan(15_000);
    expect(throttled.clock.now() - started).toBeGreaterThan(10_000);
    const failing = aVendor();
    let tries = 0;
    failing.secrets.put = () => (tries++, Promise.reject(new Error("AccessDenied")));
    await expect(failing.vendor.vend("default")).rejects.toThrow("AccessDenied");
    expect(tries).toBe(1);
    expect(failing.activations.live()).toHaveLength(0);
  });

  it("pauses twice as long after each throttled try: the jittered backoff from 250 ms", async () => {
    // random() = 0.5 takes half of each step's ceiling: 250, 500, 1,000 ms.
    const { vendor, secrets, clock } = aVendor({ random: () => 0.5 });
    const put = secrets.put.bind(secrets);
    const tries: number[] = [];
    secrets.put = (secret) => {
      tries.push(clock.now());
      return tries.length <= 3 ? Promise.reject(new ThrottledError("Parameter Store", 1)) : put(secret);
    };
    await vendor.vend("default");
    expect(tries.slice(1).map((at, i) => at - tries[i]!)).toEqual([125, 250, 500]);
  });

  it("takes no pause that would end at half the lease: the commit needs the rest", async () => {
    // Pauses of 125, 250, 500, 1,000 ms: the fourth would end 1,875 ms in, half of this lease.
    const { vendor, secrets, clock } = aVendor({ random: () => 0.5, options: { leaseMs: 3_750 } });
    const started = clock.now();
    const tries: number[] = [];
    secrets.put = () => (
      tries.push(clock.now() - started),
      Promise.reject(new ThrottledError("Parameter Store", 1))
    );
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    expect(tries).toEqual([0, 125, 375, 875]);
  });

  it("rotates past an activation whose stored code has disappeared, instead of failing until it is spent", async () => {
    const { vendor, newProcess, secrets, activations, store } = aVendor();
    const { pair: first } = await vendor.vend("default");
    secrets.items.clear(); // e.g. the parameter was deleted by hand
    const { pair } = await newProcess().vend("default");
    expect(pair.activationId).not.toBe(first.activationId);
    expect(pair.activationCode).toBe(activations.created[1]!.code);
    expect((await store.read("default"))?.generation).toBe(2);
  });

  it("rejects bad pool names and unknown pools", async () => {
    const { vendor } = aVendor();
    await expect(vendor.vend("no/slash")).rejects.toBeInstanceOf(InvalidPoolNameError);
    await expect(vendor.vend("x".repeat(65))).rejects.toBeInstanceOf(InvalidPoolNameError);
    await expect(vendor.vend("nope")).rejects.toBeInstanceOf(PoolNotFoundError);
  });

  it("never logs an Activation Code", async () => {
    const { vendor, logger, activations } = aVendor({ pools: { default: { registrationLimit: 2 } } });
    for (let i = 0; i < 9; i++) await vendor.vend("default");
    expect(logger.lines.length).toBeGreaterThan(0);
    for (const a of activations.created) expect(logger.text()).not.toContain(a.code);
  });
});

describe("Vendor with a standby activation (I9)", () => {
  const standbyPool = (extra: Record<string, unknown> = {}) => ({
    pools: { default: { registrationLimit: 3, standby: true, ...extra } },
  });

  it("creates a standby in the background after the first rotation; exhaustion moves to it in one write", async () => {
    const { vendor, activations, store } = aVendor(standbyPool());
    const { pair: first } = await vendor.vend("default");
    await vendor.idle();
    expect(activations.created).toHaveLength(2);
    const standby = activations.created[1]!;
    expect(standby.request.tags[TAG_GENERATION]).toBe("2");
    expect(await store.read("default")).toMatchObject({
      links: [{ activationId: first.activationId }, { activationId: standby.activationId, issued: 0 }],
    });
    await vendor.vend("default");
    await vendor.vend("default");
    // The current one is exhausted: the next vend is ONE reservation on the standby, and its
    // answer does not wait for the CreateActivation of the refill it starts.
    const release = holdCreates(activations);
    const reserve = store.reserve.bind(store);
    let reserves = 0;
    store.reserve = (pool, validUntil) => (reserves++, reserve(pool, validUntil));
    const { pair: next } = await vendor.vend("default");
    expect(next.activationId).toBe(standby.activationId);
    expect(next.activationCode).toBe(standby.code);
    expect(reserves).toBe(1);
    expect(activations.created).toHaveLength(2); // the refill is still waiting on SSM
    release();
    await vendor.idle();
    // The refill promoted the standby in use and put the next one beside it.
    expect(activations.created).toHaveLength(3);
    expect(await store.read("default")).toMatchObject({
      generation: 2,
      links: [
        { activationId: standby.activationId, issued: 1 },
        { activationId: activations.created[2]!.activationId, issued: 0 },
      ],
    });
    expect(activations.created[2]!.request.tags[TAG_GENERATION]).toBe("3");
  });

  it("keeps one unused activation live at a steady pace (I9)", async () => {
    const { vendor, activations, clock } = aVendor(standbyPool({ registrationLimit: 2 }));
    const used = new Set<string>();
    for (let i = 0; i < 25; i++) {
      used.add((await vendor.vend("default")).pair.activationId);
      await vendor.idle();
      const unused = activations.live().filter((a) => !used.has(a.activationId));
      expect(unused.length).toBeLessThanOrEqual(1);
      clock.advance(QUIET_MS);
    }
    expect(used.size).toBe(13);
    expect(activations.live().length).toBe(14);
  });

  it("keeps more unused activations only while vends outrun the refills, within the depth (I9)", async () => {
    const { vendor, activations, store, clock } = aVendor(standbyPool({ registrationLimit: 2 }));
    const used = new Set<string>();
    const unusedOnRow = async () => {
      const named = linksOf(await store.read("default")).map((l) => l.activationId);
      return activations.live().filter((a) => named.includes(a.activationId) && !used.has(a.activationId));
    };
    // Bursts of 12 at once (the fake clock stands still: as fast as a burst goes) drain a stock of
    // one: the pace measured deepens the stock, and a rotation brings the standbys along.
    for (let burst = 0; burst < 4; burst++) {
      const settled = await Promise.allSettled(Array.from({ length: 12 }, () => vendor.vend("default")));
      for (const r of settled) if (r.status === "fulfilled") used.add(r.value.pair.activationId);
      await vendor.idle();
      const depth = standbyDepth(await store.read("default"));
      expect((await unusedOnRow()).length).toBeLessThanOrEqual(depth);
      expect(activations.live().length - used.size).toBeLessThanOrEqual(depth);
    }
    // Once the burst is over, each refill halves the depth (one vend a minute is no pace), down to one.
    store.rows.get("default")!.standbyDepth = 8;
    for (let i = 0; i < 40; i++) {
      clock.advance(QUIET_MS);
      used.add((await vendor.vend("default")).pair.activationId);
      await vendor.idle();
    }
    expect(standbyDepth(await store.read("default"))).toBe(1);
  });

  describe("depth follows consumption, never the store's slowness (I9)", () => {
    /** 60 vends, `clients` at a time; the deepest depth the row recorded, and the activations made. */
    async function burst(storeMs: number, clients: number) {
      const { vendor, activations, store, clock } = aVendor({
        ...standbyPool({ registrationLimit: 2 }),
        options: { rotationWaitMs: 25_000 },
      });
      if (storeMs > 0) slowDown(store, clock, storeMs);
      let deepest = 1;
      let next = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (next++ < 60) {
            await vendor.vend("default");
            deepest = Math.max(deepest, standbyDepth(store.rows.get("default")));
          }
        }),
      );
      await vendor.idle();
      return { deepest, made: activations.created.length };
    }

    it("a slow store does not grow the depth: the stock stays one deep", async () => {
      // STOCK_COVER_MS a call, one call at a time: at most one vend per STOCK_COVER_MS, half an
      // activation's worth, whatever the clients do.
      const slow = await burst(STOCK_COVER_MS, 4);
      expect(slow.deepest).toBe(1);
      expect(slow.made).toBeLessThanOrEqual(60 / 2 + 1);
    });

    it("a fast consumer does: the same burst on a store that answers at once deepens the stock", async () => {
      const fast = await burst(0, 12);
      expect(fast.deepest).toBeGreaterThan(4);
    });

    it("waiting requests look at a slow store less often, not more", async () => {
      const reads = async (storeMs: number) => {
        const { vendor, store, clock } = aVendor({ pools: { default: { registrationLimit: 1 } } });
        await holdLease({ store, clock }, { generation: 0, forMs: 60_000 });
        if (storeMs > 0) slowDown(store, clock, storeMs);
        let count = 0;
        const read = store.read.bind(store);
        store.read = (pool: string) => (count++, read(pool));
        const started = clock.now();
        await expect(vendor.vend("default")).rejects.toThrow(RotationInProgressError);
        // Within its wait (5 s here), plus at most one pause and one answer.
        expect(clock.now() - started).toBeLessThanOrEqual(5_000 + 500 + storeMs);
        return count;
      };
      // Waiting 5 s out on another's rotation: jittered pauses (25–250 ms with this random)
      // against an instant store; against a store that takes 300 ms to answer, pauses of 300 ms:
      // about one look per 600 ms, not one per 300 ms + jitter.
      expect(await reads(0)).toBeGreaterThan(20);
      expect(await reads(300)).toBe(8); // with the jittered pauses alone: 10
    });

    it("a waiter looks more often as its wait runs out: the oldest waiters are the likeliest to get a commit's slots", async () => {
      const { vendor, store, clock } = aVendor({ pools: { default: { registrationLimit: 1 } } });
      await holdLease({ store, clock }, { generation: 0, forMs: 60_000 });
      const started = clock.now();
      const looks: number[] = [];
      const read = store.read.bind(store);
      store.read = (pool: string) => (looks.push(clock.now() - started), read(pool));
      await expect(vendor.vend("default")).rejects.toThrow(RotationInProgressError);
      const firstHalf = looks.filter((t) => t < 2_500).length;
      const lastSecond = looks.filter((t) => t >= 4_000).length;
      // With this random: 10 looks in the first 2.5 s and 24 in the last second (with the fixed
      // 500 ms cap before: 13 and 4). No pause outlasts a fifth of what the wait had left.
      expect(lastSecond).toBeGreaterThan(firstHalf);
      const gaps = looks.slice(1).map((t, i) => ({ gap: t - looks[i]!, left: 5_000 - looks[i]! }));
      for (const { gap, left } of gaps) expect(gap).toBeLessThanOrEqual(Math.max(50, left / 5));
    });

    it("a waiter keeps waiting while the pool moves on (up to 15 s), not while it stands still", async () => {
      /** How long a request waits for a lease holder while the row moves on at these times (ms). */
      const waitFor = async (movesAt: number[], what: "generation" | "refilledAt") => {
        const { vendor, store, clock } = aVendor({ pools: { default: { registrationLimit: 1 } } });
        await holdLease({ store, clock }, { generation: 0, forMs: 60_000 });
        const started = clock.now();
        // Another process's commits, whose slots go to others: the row moves on, never with a
        // slot for this request.
        const read = store.read.bind(store);
        const pending = [...movesAt];
        const lookedAt: number[] = [];
        store.read = (pool: string) => {
          lookedAt.push(clock.now() - started);
          const row = store.rows.get(pool)!;
          while (pending.length > 0 && pending[0]! <= clock.now() - started) {
            pending.shift();
            if (what === "generation") row.generation += 1;
            else row.refilledAt = clock.now();
          }
          return read(pool);
        };
        await expect(vendor.vend("default")).rejects.toThrow(RotationInProgressError);
        return { took: clock.now() - started, lookedAt };
      };
      const still = await waitFor([], "generation");
      expect(still.took).toBeGreaterThanOrEqual(5_000);
      expect(still.took).toBeLessThan(5_600);
      const everySecond = Array.from({ length: 30 }, (_, i) => 1_000 * (i + 1));
      for (const what of ["generation", "refilledAt"] as const) {
        const busy = await waitFor(everySecond, what);
        expect(busy.took).toBeGreaterThanOrEqual(15_000);
        expect(busy.took).toBeLessThan(15_600);
        // Within the first wait, the oldest waiters still look most often, moving pool or not:
        // each move does not start the pauses' shrinking again (that slowed every waiter's looks).
        const inFirstWait = (from: number, to: number) =>
          busy.lookedAt.filter((t) => t >= from && t < to).length;
        expect(inFirstWait(4_000, 5_000)).toBeGreaterThan(inFirstWait(0, 2_500));
        // Moves that stop: the wait runs 5 s from the last one seen.
        const stopped = await waitFor([1_000, 2_000], what);
        expect(stopped.took).toBeGreaterThanOrEqual(7_000);
        expect(stopped.took).toBeLessThan(7_600);
      }
    });

    it("a request that rotates at the end of a long wait stops retrying its code's store in time to answer", async () => {
      const { vendor, store, clock, secrets } = aVendor({ pools: { default: { registrationLimit: 1 } } });
      // Another holder whose lease lapses at 14 s, while the pool keeps moving on every second.
      await holdLease({ store, clock }, { generation: 0, forMs: 14_000 });
      const started = clock.now();
      const read = store.read.bind(store);
      let moved = 0;
      store.read = (pool: string) => {
        const row = store.rows.get(pool)!;
        const due = Math.min(14, Math.floor((clock.now() - started) / 1_000));
        for (; moved < due; moved++) row.refilledAt = started + (moved + 1) * 1_000;
        return read(pool);
      };
      let puts = 0;
      secrets.put = () => (puts++, Promise.reject(new ThrottledError("Parameter Store", 1)));
      await expect(vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
      expect(puts).toBeGreaterThan(1); // it did retry
      // It took the lease after 14 s: half the lease (15 s) would have run to 29 s, past the
      // function's 25 s. It stops by 20 s after it arrived.
      expect(clock.now() - started).toBeGreaterThan(14_000);
      expect(clock.now() - started).toBeLessThanOrEqual(20_000);
    });

    it("pauses as long as the store's last answer took, up to the backoff's cap of 500 ms", () => {
      expect(calmBackoffMs(50, 0)).toBe(50);
      expect(calmBackoffMs(50, 49)).toBe(50);
      expect(calmBackoffMs(50, 300)).toBe(300);
      expect(calmBackoffMs(50, 500)).toBe(500);
      expect(calmBackoffMs(50, 9_000)).toBe(500);
      expect(calmBackoffMs(700, 9_000)).toBe(700);
    });
  });

  it("falls back to rotation on the request path when no standby could be made", async () => {
    const { vendor, activations, logger } = aVendor(standbyPool({ registrationLimit: 1 }));
    let creates = 0;
    // The rotation's create succeeds; its standby's and the refill's after it are throttled.
    activations.beforeCreate = () =>
      ++creates >= 2 ? Promise.reject(new ThrottledError("SSM", 1)) : undefined;
    await vendor.vend("default");
    await vendor.idle();
    expect(logger.text()).toContain("could not create every standby activation");
    expect(logger.text()).toContain("standby refill failed");
    expect(activations.live()).toHaveLength(1);
    activations.beforeCreate = () => {};
    const { pair: second, receipt } = await vendor.vend("default");
    // Rotated on the request, past the spent first activation: a dry pool also brings standbys.
    expect(second.activationId).not.toBe(activations.created[0]!.activationId);
    expect(receipt.rotated).toBe(true);
  });

  it("a failed refill releases the lease and deletes what it created", async () => {
    const { vendor, activations, secrets, store } = aVendor(standbyPool());
    secrets.put = () => Promise.reject(new ThrottledError("Parameter Store", 1));
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    expect(activations.live()).toHaveLength(0);
    expect((await store.read("default"))?.leaseOwner).toBeUndefined();
  });

  it("a refill tries a throttled code store again for half the lease, as a rotation does", async () => {
    const { vendor, secrets, clock, logger } = aVendor(standbyPool({ registrationLimit: 1 }));
    await vendor.vend("default");
    await vendor.idle();
    const started = clock.now();
    let tries = 0;
    secrets.put = () => (tries++, Promise.reject(new ThrottledError("Parameter Store", 1)));
    await vendor.vend("default"); // the standby's slot: the stock is short, a refill starts
    await vendor.idle();
    expect(logger.text()).toContain("standby refill failed");
    expect(tries).toBeGreaterThan(1);
    expect(clock.now() - started).toBeGreaterThan(10_000);
    expect(clock.now() - started).toBeLessThan(15_000);
  });

  it("switches to the standby when the current one expires with slots left (I2)", async () => {
    const { vendor, activations, clock, store } = aVendor(
      standbyPool({ registrationLimit: 100, expirationHours: 2, safetyMarginMinutes: 30 }),
    );
    const { pair: first } = await vendor.vend("default");
    await vendor.idle();
    // A standby made an hour later outlives the current activation's margin.
    await standbyMadeLater({ vendor, store, clock }, HOUR);
    const standbyId = store.rows.get("default")!.links[1]!.activationId;
    clock.current = first.expiresAt - 30 * 60_000;
    const created = activations.created.length;
    const release = holdCreates(activations);
    const { pair: switched } = await vendor.vend("default");
    expect(switched.activationId).toBe(standbyId);
    expect(switched.expiresAt).toBeGreaterThan(clock.now() + 30 * 60_000);
    expect(activations.created.length).toBe(created); // no CreateActivation on the request path
    release();
    await vendor.idle();
    const after = await store.read("default");
    expect(after?.generation).toBe(2);
    expect(after?.links[0]).toMatchObject({ activationId: standbyId, issued: 1 });
  });

  it("deletes an idle standby that expired with the current one, when the fallback rotates", async () => {
    const { vendor, activations, clock } = aVendor(
      standbyPool({ registrationLimit: 100, expirationHours: 2, safetyMarginMinutes: 30 }),
    );
    const { pair: first } = await vendor.vend("default");
    await vendor.idle();
    const idleStandby = activations.created[1]!;
    clock.current = first.expiresAt; // both are inside the margin now
    const { pair: next } = await vendor.vend("default");
    expect([first.activationId, idleStandby.activationId]).not.toContain(next.activationId);
    expect(idleStandby.deleted).toBe(true);
  });

  it("makes no standby for a pool that turns it off", async () => {
    const { vendor, activations } = aVendor({ pools: { default: { registrationLimit: 1, standby: false } } });
    await vendor.vend("default");
    await vendor.vend("default");
    await vendor.idle();
    expect(activations.created).toHaveLength(2);
    expect(await vendor.refillStandby("default")).toBe(false);
  });

  it("asks another process (Lambda) for a refill once per standby state, not once per vend", async () => {
    const asked: string[] = [];
    const fx = aVendor(standbyPool({ registrationLimit: 5 }));
    const { Vendor } = await import("../../src/core/vend");
    const lambda = new Vendor({
      pools: fx.pools,
      store: fx.store,
      activations: fx.activations,
      secrets: fx.secrets,
      clock: fx.clock,
      sleeper: fx.clock,
      logger: fx.logger,
      options: { leaseMs: 30_000, rotationWaitMs: 5_000, deployment: "test" },
      standbyRefill: refillElsewhere(async (pool) => void asked.push(pool), fx.logger),
    });
    for (let i = 0; i < 5; i++) await lambda.vend("default");
    // The rotation made the standby along with the current one: nothing to ask for yet.
    expect(asked).toEqual([]);
    expect(fx.activations.created).toHaveLength(2);
    await lambda.vend("default"); // the standby goes into use: asked once for the next one
    for (let i = 0; i < 3; i++) await lambda.vend("default");
    expect(asked).toEqual(["default"]);
    expect(fx.activations.created).toHaveLength(2); // nothing created in this "container"
    expect(await lambda.refillStandby("default")).toBe(true); // the asynchronous invocation
    await lambda.vend("default"); // slot 5 of the one in use: the new standby stays unused
    expect(asked).toHaveLength(1);
    await lambda.vend("default"); // the new standby goes into use: ask again
    expect(asked).toEqual(["default", "default"]);
  });
});
