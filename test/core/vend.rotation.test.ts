import { describe, expect, it } from "vitest";
import { RotationInProgressError, ThrottledError } from "../../src/core/errors";
import type { Sleeper } from "../../src/core/ports";
import { aVendor, holdLease } from "../support/vendor-mother";

/**
 * What the rotation promises beyond "a pair comes back": how many activations an exhaustion
 * costs, how long a request waits, what the lease says, what a burst costs in store writes.
 * Counts are of CreateActivation calls (activations.created keeps deleted ones), never of what
 * is still listed: an activation created and deleted again is still a broken I5.
 */
describe("Vendor rotation under contention", () => {
  it("creates one activation per exhaustion, however many processes race for the lease (I5)", async () => {
    const { vendor, newProcess, activations } = aVendor({ pools: { default: { registrationLimit: 4 } } });
    const processes = [vendor, newProcess(), newProcess(), newProcess()];
    // Three exhaustions' worth of requests, all at once, spread over four processes.
    const pairs = await Promise.all(
      Array.from({ length: 12 }, (_, i) => processes[i % 4]!.vend("default").then((v) => v.pair)),
    );
    expect(activations.created).toHaveLength(3);
    expect(activations.created.filter((a) => a.deleted)).toHaveLength(0);
    const perActivation = new Map<string, number>();
    for (const p of pairs) perActivation.set(p.activationId, (perActivation.get(p.activationId) ?? 0) + 1);
    expect([...perActivation.values()]).toEqual([4, 4, 4]);
  });

  it("a request that did not get the lease creates nothing while the holder is still creating", async () => {
    const { vendor, newProcess, activations, store, clock } = aVendor({ options: { leaseMs: 30_000 } });
    const other = newProcess();
    let late: Promise<unknown> | undefined;
    let leaseSeenByCreate: number | undefined;
    let nowAtCreate: number | undefined;
    activations.beforeCreate = async () => {
      activations.beforeCreate = () => {};
      nowAtCreate = clock.now();
      leaseSeenByCreate = (await store.read("default"))?.leaseDeadline;
      // Arrives mid-rotation: the lease is held, so it must wait for the commit.
      late = other.vend("default").then((v) => v.pair);
    };
    const { pair } = await vendor.vend("default");
    const latePair = (await late) as { activationId: string };
    expect(leaseSeenByCreate).toBe(nowAtCreate! + 30_000);
    expect(activations.created).toHaveLength(1);
    expect(latePair.activationId).toBe(pair.activationId);
  });
});

describe("Vendor when a code cannot be read", () => {
  it("answers the read's own retryable error, and does not rotate, when the read fails for a reason other than absence", async () => {
    const { vendor, newProcess, secrets, activations, store } = aVendor();
    await vendor.vend("default");
    secrets.getMany = () => Promise.reject(new ThrottledError("Parameter Store", 3));
    const error = await newProcess()
      .vend("default")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryAfterSeconds).toBe(3);
    expect(activations.created).toHaveLength(1);
    expect((await store.read("default"))?.generation).toBe(1);
  });

  it("does not cache a failed read: the next request reads the code again", async () => {
    const { vendor, newProcess, secrets } = aVendor();
    const { pair: first } = await vendor.vend("default");
    const get = secrets.getMany.bind(secrets);
    let failures = 1;
    secrets.getMany = (pool, ids) =>
      failures-- > 0 ? Promise.reject(new ThrottledError("Parameter Store", 1)) : get(pool, ids);
    const other = newProcess();
    await expect(other.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    await expect(other.vend("default")).resolves.toMatchObject({
      pair: { activationId: first.activationId, activationCode: first.activationCode },
    });
  });

  it("after rotating past a missing code, returns the new activation's slot 1 with its code", async () => {
    const { vendor, newProcess, secrets, activations, store } = aVendor({
      pools: { default: { registrationLimit: 5 } },
    });
    await vendor.vend("default");
    secrets.items.clear();
    const vend = await newProcess().vend("default");
    const created = activations.created[1]!;
    expect(vend).toEqual({
      pair: {
        pool: "default",
        activationId: created.activationId,
        activationCode: created.code,
        expiresAt: created.request.expiresAt,
      },
      receipt: { slot: 1, limit: 5, rotated: true },
    });
    expect((await store.read("default"))?.links[0]?.issued).toBe(1);
  });

  it("when the code is missing and another request holds the lease, waits for it like any request, then answers RotationInProgress", async () => {
    const { vendor, newProcess, secrets, activations, store, clock } = aVendor();
    await vendor.vend("default");
    secrets.items.clear();
    await holdLease({ store, clock }, { generation: 1 });
    const started = clock.now();
    const error = await newProcess()
      .vend("default")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RotationInProgressError);
    // One way into rotation: the rounds waited out the wait budget (5 s here) on the holder's
    // lease, and Retry-After is the lease's rest, within [1, 5] s.
    expect(clock.now() - started).toBeGreaterThanOrEqual(5_000);
    expect((error as RotationInProgressError).retryAfterSeconds).toBe(5);
    expect(activations.created).toHaveLength(1);
  });

  it("when the code is missing and the holder's lease lapses, rotates past the activation in a later round", async () => {
    const { vendor, newProcess, secrets, activations, store, clock } = aVendor();
    const { pair: first } = await vendor.vend("default");
    secrets.items.clear();
    await holdLease({ store, clock }, { generation: 1, forMs: 1_000 });
    // The holder never commits, its lease lapses after 1 s: this request's next round rotates.
    const { pair } = await newProcess().vend("default");
    expect(pair.activationId).not.toBe(first.activationId);
    expect(activations.created).toHaveLength(2);
  });
});

describe("Vendor wait budget", () => {
  /** Every backoff is 10 ms with random() = 0, so the budget's boundary is hit exactly. */
  const noJitter = { random: () => 0 };

  it("gives up exactly when the budget is spent, not one backoff later", async () => {
    const { vendor, store, clock } = aVendor({ options: { rotationWaitMs: 100 }, ...noJitter });
    await holdLease({ store, clock });
    const started = clock.now();
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(RotationInProgressError);
    expect(clock.now() - started).toBe(100);
  });

  it("Retry-After is the rest of the lease it waited for, within [1, 5] s", async () => {
    const { vendor, store, clock } = aVendor({ options: { rotationWaitMs: 100 }, ...noJitter });
    await holdLease({ store, clock }, { forMs: 100 + 2_500 });
    const error = await vendor.vend("default").catch((e: unknown) => e);
    expect((error as RotationInProgressError).retryAfterSeconds).toBe(3);
  });

  it("a request with no wait budget still gets one round, and so still rotates", async () => {
    const { vendor, activations } = aVendor({ options: { rotationWaitMs: 0 } });
    await expect(vendor.vend("default")).resolves.toMatchObject({ pair: { pool: "default" } });
    expect(activations.created).toHaveLength(1);
  });

  it("gives up after 100 rounds even if the clock stands still", async () => {
    const { store, clock, newProcess } = aVendor({ options: { rotationWaitMs: 1_000 } });
    await holdLease({ store, clock });
    let sleeps = 0;
    const frozen: Sleeper = { sleep: async () => void sleeps++ };
    const vendor = newProcess({ sleeper: frozen });
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(RotationInProgressError);
    expect(sleeps).toBe(100);
  });
});

describe("Vendor coalescing", () => {
  it("a burst in one process costs one reservation per request, plus two writes per rotation", async () => {
    const { vendor, store, activations } = aVendor({ pools: { default: { registrationLimit: 10 } } });
    let reads = 0;
    const read = store.read.bind(store);
    store.read = (pool) => (reads++, read(pool));
    const pairs = await Promise.all(
      Array.from({ length: 50 }, () => vendor.vend("default").then((v) => v.pair)),
    );
    expect(new Set(pairs.map((p) => p.activationId)).size).toBe(5);
    expect(activations.created).toHaveLength(5);
    // 50 first reservations; per rotation a lease and a commit (which takes the rotator's slot);
    // the other 9 pairs of each activation come from 9 retried reservations, nobody else's.
    expect(store.writes).toBe(50 + 5 * 2 + 5 * 9);
    // One read per round, one round per rotation.
    expect(reads).toBe(5);
  });

  it("a burst that drains the pool spends no failed write: the writes in flight stay within the slots left", async () => {
    const { vendor, store } = aVendor({ pools: { default: { registrationLimit: 10 } } });
    await vendor.vend("default"); // the rotation's commit left 9 slots
    // Reservations take a network round trip, as they do: without the gate, all 30 would be in
    // flight at once and 21 would fail, each billed a write unit.
    let refused = 0;
    const reserve = store.reserve.bind(store);
    store.reserve = async (pool, validUntil) => {
      await new Promise((resolve) => setImmediate(resolve));
      const reservation = await reserve(pool, validUntil);
      if (!reservation) refused++;
      return reservation;
    };
    const pairs = await Promise.all(
      Array.from({ length: 30 }, () => vendor.vend("default").then((v) => v.pair)),
    );
    expect(new Set(pairs.map((p) => `${p.activationId}`)).size).toBe(4);
    expect(refused).toBe(0);
  });

  it("waiting requests retry the reservation only while the round saw free slots", async () => {
    const { vendor, newProcess, store } = aVendor({ pools: { default: { registrationLimit: 100 } } });
    await vendor.vend("default");
    // Another process took all but 3 slots; this process's burst of 20 finds the pool spent
    // after 3 and must not hammer the store with 17 doomed reservations per round.
    const other = newProcess();
    for (let i = 0; i < 96; i++) await other.vend("default");
    const writes = store.writes;
    const pairs = await Promise.all(Array.from({ length: 20 }, () => vendor.vend("default")));
    expect(pairs).toHaveLength(20);
    // 20 first reservations (3 succeed); one round rotates (lease + commit = slot 1 for the
    // rotator); the other 16 retry into the new activation's 99 free slots.
    expect(store.writes - writes).toBe(20 + 2 + 16);
  });
});

describe("Vendor code cache", () => {
  it("holds the 64 most recent codes: the oldest is read again after 64 newer ones", async () => {
    const names = Array.from({ length: 65 }, (_, i) => `p${i}`);
    const { vendor, secrets } = aVendor({
      pools: Object.fromEntries(names.map((n) => [n, { registrationLimit: 10 }])),
    });
    for (const n of names) await vendor.vend(n); // each rotation caches its code
    for (const n of names.slice(1)) await vendor.vend(n); // the 64 newest are all still cached
    expect(secrets.gets).toBe(0);
    await vendor.vend("p0"); // the oldest was evicted by the 65th
    expect(secrets.gets).toBe(1);
    await vendor.vend("p1"); // and the next oldest by p0's return
    expect(secrets.gets).toBe(2);
  });
});

describe("Vendor logs (what an operator reads; never a code)", () => {
  const entry = (
    logger: { lines: { level: string; message: string; extra?: Record<string, unknown> }[] },
    level: string,
  ) => logger.lines.filter((l) => l.level === level);

  it("a rotation logs the pool, the new activation, its generation, expiry and limit", async () => {
    const { vendor, logger, activations } = aVendor({ pools: { default: { registrationLimit: 3 } } });
    const { pair } = await vendor.vend("default");
    const [line] = entry(logger, "info");
    expect(line?.message).toMatch(/rotated/);
    expect(line?.extra).toEqual({
      pool: "default",
      activationId: pair.activationId,
      generation: 1,
      expiresAt: new Date(pair.expiresAt).toISOString(),
      registrationLimit: 3,
    });
    expect(logger.text()).not.toContain(activations.created[0]!.code);
  });

  it("a lost lease logs which activation is discarded", async () => {
    const { vendor, store, clock, activations, logger } = aVendor();
    activations.beforeCreate = async () => {
      activations.beforeCreate = () => {};
      clock.current += 31_000;
      await holdLease({ store, clock }, { owner: "other", forMs: 1 });
    };
    await vendor.vend("default").catch(() => undefined);
    const [line] = entry(logger, "warn");
    expect(line?.message).toMatch(/lease lost/);
    expect(line?.extra).toEqual({
      pool: "default",
      activationIds: [activations.created[0]!.activationId],
      generation: 1,
    });
  });

  it("a missing code logs the activation it rotates past", async () => {
    const { vendor, newProcess, secrets, logger } = aVendor();
    const { pair: first } = await vendor.vend("default");
    secrets.items.clear();
    await newProcess().vend("default");
    const [line] = entry(logger, "error");
    expect(line?.message).toMatch(/no stored code/);
    expect(line?.extra).toEqual({ pool: "default", activationId: first.activationId, generation: 1 });
  });

  it("a lease that cannot be released is logged by error name, and the rotation's own error wins", async () => {
    const { vendor, store, activations, logger } = aVendor();
    activations.beforeCreate = () => {
      throw new ThrottledError("SSM", 2);
    };
    store.releaseLease = () => Promise.reject(new RotationInProgressError("default", 1));
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    const [line] = entry(logger, "warn");
    expect(line?.message).toMatch(/could not release/);
    expect(line?.extra).toEqual({ pool: "default", error: "RotationInProgressError" });
  });
});

describe("Vendor.poolNames", () => {
  it("lists every configured pool, the default one included", () => {
    const { vendor } = aVendor({ pools: { web: {}, db: {} } });
    expect(vendor.poolNames().sort()).toEqual(["db", "default", "web"]);
  });
});
