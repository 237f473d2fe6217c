import { describe, expect, it } from "vitest";
import { RotationBudgetExhaustedError, RotationInProgressError } from "../../src/core/errors";
import type { Link, Sleeper } from "../../src/core/ports";
import { SLOT_THEFT_MESSAGE } from "../../src/core/reconcile";
import { linksOf, TAG_GENERATION } from "../../src/core/vend-policy";
import { RecordingMetrics } from "../support/fakes";
import { aVendor, holdCreates, holdLease, standbyMadeLater } from "../support/vendor-mother";

/**
 * What each guard of the vend algorithm is for, one behaviour per guard: the checks that decide
 * whether to write, to rotate, to refill or to ask another process, and what each logs and counts.
 */

const HOUR = 3_600_000;

/** Rewrites the row's activation at `at` with `patch`, the others as they are. */
function patchLink(row: { links: readonly Link[] }, at: number, patch: Partial<Link>): void {
  row.links = row.links.map((l, i) => (i === at ? { ...l, ...patch } : l));
}

describe("the reservation loop", () => {
  it("stops writing after 100 reservation attempts even if the store keeps refusing", async () => {
    const { store, newProcess } = aVendor({ options: { rotationWaitMs: 60_000 } });
    const vendor = newProcess();
    await vendor.vend("default");
    // A store that refuses every reservation yet reads as reservable: the loop must end.
    let reserves = 0;
    store.reserve = async () => void reserves++;
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(RotationInProgressError);
    expect(reserves).toBe(100);
  });

  it("does not write while another process holds the lease: the waiting rounds admit nobody", async () => {
    const { store, clock, newProcess } = aVendor({ options: { rotationWaitMs: 2_000 } });
    await holdLease({ store, clock });
    const vendor = newProcess();
    const writes = store.writes;
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => vendor.vend("default")));
    expect(results.every((r) => r.status === "rejected")).toBe(true);
    // One reservation each as they arrived; waiting rounds send no request back to the store.
    expect(store.writes - writes).toBe(5);
  });

  it("a request that loses the race for the lease waits for the winner's commit, then reserves once and only reads", async () => {
    const { store, clock, newProcess } = aVendor({ options: { rotationWaitMs: 2_000 } });
    const vendor = newProcess();
    // Another process takes the lease between this request's read of the cold pool and its own
    // lease write (on Lambda, every container that found the pool spent races for it).
    const acquire = store.acquireLease.bind(store);
    store.acquireLease = async (pool, lease) => {
      store.acquireLease = acquire;
      await holdLease({ store, clock });
      return acquire(pool, lease);
    };
    const writes = store.writes;
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(RotationInProgressError);
    // Its reservation, the winner's lease, its refused lease write, one reservation after its
    // first wait; then, the winner never committing, it only reads.
    expect(store.writes - writes).toBe(4);
  });

  it("a request whose lease write is refused waits like any waiter, counted, before it looks again", async () => {
    const { store, clock, newProcess } = aVendor();
    const metrics = new RecordingMetrics();
    const vendor = newProcess({ metrics });
    // A rival's lease write lands first, and the rival gives the lease back without committing.
    const acquire = store.acquireLease.bind(store);
    store.acquireLease = async () => {
      store.acquireLease = acquire;
      return false;
    };
    const started = clock.now();
    const { receipt } = await vendor.vend("default");
    expect(receipt.rotated).toBe(true);
    expect(metrics.named("LeaseWaits")).toHaveLength(1);
    expect(clock.now() - started).toBeGreaterThan(0); // the jittered backoff, not an instant retry
  });

  it("a request waiting on this process's refill past the wait's cap reads the pool again rather than writing", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 1, standby: true } } });
    await fx.vendor.vend("default"); // the current activation and its standby
    const release = holdCreates(fx.activations);
    await fx.vendor.vend("default"); // takes the standby; its refill takes the lease and waits on SSM
    for (let i = 0; i < 100 && !fx.store.rows.get("default")?.leaseOwner; i++) await Promise.resolve();
    expect(fx.store.rows.get("default")?.leaseOwner).toBeDefined();
    const writes = fx.store.writes;
    await expect(fx.vendor.vend("default")).rejects.toBeInstanceOf(RotationInProgressError);
    // The last answer found the pool spent, so its first look is a read; one reservation after its
    // first wait; then, the refill not committing, each look after a capped wait is a read.
    expect(fx.store.writes - writes).toBe(1);
    release();
    await fx.vendor.idle();
  });

  it("a request that lost the race for the lease reserves right after its first wait, without reading the pool again", async () => {
    const { store, newProcess } = aVendor({ options: { rotationWaitMs: 2_000 } });
    const [vendor, rival] = [newProcess(), newProcess()];
    // The rival rotates the cold pool between this request's read and its lease write.
    const acquire = store.acquireLease.bind(store);
    store.acquireLease = async (pool, lease) => {
      store.acquireLease = acquire;
      await rival.vend("default");
      return acquire(pool, lease);
    };
    const read = store.read.bind(store);
    let reads = 0;
    store.read = (pool) => {
      reads++;
      return read(pool);
    };
    const { receipt } = await vendor.vend("default");
    expect(receipt.slot).toBe(2);
    // The rival read the cold pool once, and so did this request; nothing after its wait.
    expect(reads).toBe(2);
  });

  it("logs which activation a reserved slot outlived", async () => {
    const { vendor, newProcess, store, secrets, logger } = aVendor({
      pools: { default: { registrationLimit: 3 } },
    });
    const { pair: first } = await vendor.vend("default");
    // Another process rotates the pool on (by hand here): the first activation is retired, its
    // code deleted, while a reservation on it is in flight in a cold process.
    const cold = newProcess();
    const reserve = store.reserve.bind(store);
    let once = false;
    store.reserve = async (pool, validUntil) => {
      const reservation = await reserve(pool, validUntil);
      if (!once && reservation) {
        once = true;
        patchLink(store.rows.get(pool)!, 0, { activationId: "elsewhere", limit: 0 });
        await secrets.delete(pool, first.activationId);
      }
      return reservation;
    };
    await cold.vend("default").catch(() => undefined);
    const line = logger.lines.find((l) => l.message.startsWith("reserved slot outlived"));
    expect(line?.extra).toMatchObject({ pool: "default", activationId: first.activationId });
  });
});

describe("rotating past a missing code", () => {
  it("rotates at once, without burning the activation's remaining slots, and checks it for theft", async () => {
    const { vendor, newProcess, secrets, store, activations, logger } = aVendor({
      pools: { default: { registrationLimit: 5 } },
    });
    const { pair: first } = await vendor.vend("default");
    for (let i = 0; i < 4; i++) activations.register(first.activationId); // one pair, four nodes
    secrets.items.clear();
    const cold = newProcess();
    let reserves = 0;
    const reserve = store.reserve.bind(store);
    store.reserve = (pool, validUntil) => (reserves++, reserve(pool, validUntil));
    const { pair } = await cold.vend("default");
    expect(pair.activationId).toBe(activations.created[1]!.activationId);
    // One reservation found the code gone; the rotation's commit took the new slot 1.
    expect(reserves).toBe(1);
    expect((await store.read("default"))?.generation).toBe(2);
    const theft = logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE);
    expect(theft?.extra).toMatchObject({
      activationId: first.activationId,
      registrationsCount: 4,
      issued: 2,
    });
  });

  it("rotates past a standby in use whose code is gone, at once", async () => {
    const { vendor, newContainer, secrets, store } = aVendor({
      pools: { default: { registrationLimit: 3, standby: true } },
    });
    await vendor.vend("default");
    await vendor.idle();
    for (let i = 0; i < 2; i++) await vendor.vend("default"); // the current one is spent
    const standby = store.rows.get("default")!.links[1]!.activationId;
    await secrets.delete("default", standby); // deleted by hand
    const cold = newContainer();
    let reserves = 0;
    const reserve = store.reserve.bind(store);
    store.reserve = (pool, validUntil) => (reserves++, reserve(pool, validUntil));
    const { receipt } = await cold.vend("default");
    expect(receipt.rotated).toBe(true);
    expect(reserves).toBe(1); // not once per slot the standby had left
  });

  it("answers 429, not 503, when the rotation budget is spent", async () => {
    const { vendor, newProcess, secrets } = aVendor({
      pools: { default: { registrationLimit: 5, maxActivationsPerHour: 1 } },
    });
    await vendor.vend("default");
    secrets.items.clear();
    await expect(newProcess().vend("default")).rejects.toBeInstanceOf(RotationBudgetExhaustedError);
  });
});

describe("the standby's guards", () => {
  const standbyPool = (extra: Record<string, unknown> = {}) => ({
    pools: { default: { registrationLimit: 2, standby: true, ...extra } },
  });

  it("does not rotate over a standby another process installed while it took the lease", async () => {
    const { vendor, newProcess, store, logger } = aVendor(standbyPool());
    await vendor.vend("default");
    await vendor.idle();
    const standby = store.rows.get("default")!.links[1]!;
    // Take the standby away, spend the current one: the pool looks drained to the next request.
    const row = store.rows.get("default")!;
    const current = row.links[0]!;
    row.links = [{ ...current, issued: current.limit }];
    // Between that request's read and its lease, the standby comes back (another process's refill).
    const acquire = store.acquireLease.bind(store);
    store.acquireLease = async (pool, lease) => {
      const target = store.rows.get(pool)!;
      target.links = [...target.links, { ...standby, issued: 0 }];
      store.acquireLease = acquire;
      return acquire(pool, lease);
    };
    const rotations = () => logger.lines.filter((l) => l.message === "rotated to a new activation").length;
    const before = rotations();
    const { pair, receipt } = await newProcess().vend("default");
    expect(pair.activationId).toBe(standby.activationId);
    expect(receipt.rotated).toBe(false);
    expect(rotations()).toBe(before);
  });

  it("after a switch, admits only as many waiters as the standby has slots left", async () => {
    const { vendor, newContainer, clock, store } = aVendor(
      standbyPool({ registrationLimit: 4, expirationHours: 2, safetyMarginMinutes: 30 }),
    );
    const { pair: first } = await vendor.vend("default");
    await vendor.idle();
    // A standby made an hour later outlives the current activation's margin.
    await standbyMadeLater({ vendor, store, clock }, HOUR);
    clock.current = first.expiresAt - 30 * 60_000;
    // Refills go elsewhere (as on Lambda), so only this burst writes.
    const burst = newContainer();
    const writes = store.writes;
    await Promise.all(Array.from({ length: 6 }, () => burst.vend("default")));
    // 6 failed reservations; the switch (slot 1 for the round's first turn); 3 admitted
    // reservations (slots 2-4); for the last two, a rotation (lease + commit, slot 1) and one more
    // admitted reservation. Admitting a fourth waiter after the switch would waste a write.
    expect(store.writes - writes).toBe(6 + 1 + 3 + 2 + 1);
  });

  it("a fallback rotation over a standby skips its generation number", async () => {
    const { vendor, activations, clock, store } = aVendor(
      standbyPool({ registrationLimit: 100, expirationHours: 2, safetyMarginMinutes: 30 }),
    );
    const { pair: first } = await vendor.vend("default");
    await vendor.idle();
    expect(activations.created[1]!.request.tags[TAG_GENERATION]).toBe("2");
    clock.current = first.expiresAt; // current and standby both inside the margin
    const { pair: next } = await vendor.vend("default");
    expect(activations.created.find((a) => a.activationId === next.activationId)?.request.tags).toMatchObject(
      { [TAG_GENERATION]: "3" },
    );
    expect((await store.read("default"))?.generation).toBe(3);
  });

  it("a refill without the lease creates nothing", async () => {
    const { vendor, store, clock, activations } = aVendor(standbyPool());
    await vendor.vend("default");
    await vendor.idle();
    await vendor.vend("default");
    await vendor.vend("default"); // standby in use: the pool needs the next one
    await vendor.idle();
    const created = activations.created.length;
    const row = store.rows.get("default")!;
    patchLink(row, 1, { issued: 1 }); // in use again, as after a reservation
    row.leaseOwner = "someone";
    row.leaseDeadline = clock.now() + 30_000;
    // Another process holds the lease but the row's deadline is read as lapsed by a clock skew:
    // the lease write refuses, and nothing is created.
    store.acquireLease = async () => false;
    row.leaseDeadline = clock.now();
    expect(await vendor.refillStandby("default")).toBe(false);
    expect(activations.created.length).toBe(created);
  });

  it("a refill whose commit is refused discards what it created and says so", async () => {
    const { vendor, store, activations, logger } = aVendor(standbyPool());
    await vendor.vend("default");
    await vendor.idle();
    await vendor.vend("default");
    await vendor.vend("default"); // the standby goes into use
    await vendor.idle();
    await vendor.vend("default");
    patchLink(store.rows.get("default")!, 1, { issued: 1 });
    store.commitRefill = async () => false;
    const before = activations.created.length;
    expect(await vendor.refillStandby("default")).toBe(false);
    expect(activations.created).toHaveLength(before + 1);
    expect(activations.created.at(-1)!.deleted).toBe(true);
    const line = logger.lines.find((l) => l.message.startsWith("standby lost its lease"));
    expect(line?.extra).toMatchObject({
      pool: "default",
      activationIds: [activations.created.at(-1)!.activationId],
    });
  });

  it("one background task chains at most 8 refills", async () => {
    const { vendor } = aVendor(standbyPool({ registrationLimit: 1 }));
    let refills = 0;
    // Every refill reports a standby installed, so only the bound stops the chain. The chain runs
    // in the Vendor's rotation unit, which calls its own refillStandby.
    const { rotator } = vendor as unknown as { rotator: { refillStandby: () => Promise<boolean> } };
    rotator.refillStandby = async () => (refills++, true);
    await vendor.vend("default"); // the rotation brings its standby: nothing to refill
    await vendor.vend("default"); // the standby goes into use: the refills start
    await vendor.idle();
    expect(refills).toBe(8);
  });

  it("refillUntilReady says whether it installed a standby, and stops once one is unused", async () => {
    const { vendor, activations } = aVendor(standbyPool({ registrationLimit: 1 }));
    expect(await vendor.refillUntilReady("default")).toBe(false); // no activation yet
    const lambda = aVendor(standbyPool({ registrationLimit: 1 }));
    const container = lambda.newContainer();
    await container.vend("default"); // the current activation and its standby
    expect(await lambda.vendor.refillUntilReady("default")).toBe(false);
    await container.vend("default"); // the standby goes into use
    expect(await lambda.vendor.refillUntilReady("default")).toBe(true);
    expect(lambda.activations.created).toHaveLength(3);
    expect(await lambda.vendor.refillUntilReady("default")).toBe(false);
    expect(lambda.activations.created).toHaveLength(3);
    expect(activations.created).toHaveLength(0);
  });

  it("logs a failed refill by pool and error name", async () => {
    const { vendor, activations, logger } = aVendor(standbyPool());
    let creates = 0;
    activations.beforeCreate = () => (++creates === 3 ? Promise.reject(new TypeError("boom")) : undefined);
    await vendor.vend("default"); // the current activation and its standby
    await vendor.vend("default");
    await vendor.vend("default"); // the standby goes into use: the refill's create fails
    await vendor.idle();
    const line = logger.lines.find((l) => l.message.startsWith("standby refill failed"));
    expect(line?.extra).toEqual({ pool: "default", error: "TypeError" });
    // Only the rotation's standby was made.
    expect(logger.lines.filter((l) => l.message === "created a standby activation")).toHaveLength(1);
  });

  it("logs each standby it creates", async () => {
    const { vendor, logger, activations } = aVendor(standbyPool());
    await vendor.vend("default");
    await vendor.idle();
    const line = logger.lines.find((l) => l.message === "created a standby activation");
    expect(line?.extra).toMatchObject({
      pool: "default",
      activationId: activations.created[1]!.activationId,
    });
  });
});

describe("asking another process for the standby (Lambda)", () => {
  function lambdaVendor(fx: ReturnType<typeof aVendor>, ask: (pool: string) => Promise<void>) {
    return fx.newContainer(ask);
  }

  it("never asks for a pool that turns the standby off", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 1, standby: false } } });
    const asked: string[] = [];
    const lambda = lambdaVendor(fx, async (pool) => void asked.push(pool));
    await lambda.vend("default");
    await lambda.vend("default");
    expect(asked).toEqual([]);
  });

  it("asks once per standby, from whichever process's reservation started the need", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 2, standby: true } } });
    const refiller = fx.newProcess();
    const asked: number[] = [];
    const ask = async () => {
      asked.push(fx.activations.created.length);
      await refiller.refillStandby("default");
    };
    const processes = [lambdaVendor(fx, ask), lambdaVendor(fx, ask), lambdaVendor(fx, ask)];
    for (let i = 0; i < 8; i++) await processes[i % 3]!.vend("default");
    // The rotation makes its standby with it (2 activations so far); then each standby's first
    // slot asks once.
    expect(asked).toEqual([2, 3, 4]);
    expect(fx.activations.created).toHaveLength(5);
  });

  it("a failed ask is logged and not repeated: a pool found dry rotates on request, standbys and all", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 2, standby: true } } });
    let calls = 0;
    const lambda = lambdaVendor(fx, async () => {
      calls++;
      throw new Error("Lambda throttled");
    });
    await lambda.vend("default"); // rotation, with its standby: no ask
    await lambda.vend("default"); // slot 2: no ask
    expect(calls).toBe(0);
    await lambda.vend("default"); // the standby goes into use: asks, and the ask fails
    await lambda.vend("default"); // slot 2: no ask
    expect(calls).toBe(1);
    const rotated = await lambda.vend("default"); // dry: rotates on request, with the standbys
    expect(rotated.receipt.rotated).toBe(true);
    expect(calls).toBe(1);
    // The current one, its unused standby and one queued behind it.
    expect(await fx.store.read("default")).toMatchObject({
      standbyDepth: 2,
      links: [expect.anything(), { issued: 0 }, expect.anything()],
    });
    const line = fx.logger.lines.find((l) => l.message === "could not request a standby refill");
    expect(line?.extra).toEqual({ pool: "default", error: "Error" });
  });

  it("reads the standby's code along with the reserved one's, and only those", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 3, standby: true } } });
    const { pair: first } = await fx.vendor.vend("default"); // rotation, with its standby
    await fx.vendor.idle();
    const standbyId = (await fx.store.read("default"))?.links[1]?.activationId;
    const asked: string[][] = [];
    const getMany = fx.secrets.getMany.bind(fx.secrets);
    fx.secrets.getMany = (pool, ids) => (asked.push([...ids]), getMany(pool, ids));
    await fx.newProcess().vend("default");
    const lambda = aVendor({ pools: { default: { registrationLimit: 3, standby: true } } });
    const container = lambda.newContainer();
    // The current activation's 3 slots, then the standby's first; no refill follows: the pool's
    // stock is used up, and the next vend has only the reserved code to read.
    for (let i = 0; i < 4; i++) await container.vend("default");
    const lonely: string[][] = [];
    const lonelyGet = lambda.secrets.getMany.bind(lambda.secrets);
    lambda.secrets.getMany = (pool, ids) => (lonely.push([...ids]), lonelyGet(pool, ids));
    const { pair: noStandby } = await lambda.newContainer().vend("default");
    expect(asked).toEqual([[first.activationId, standbyId]]);
    expect(lonely).toEqual([[noStandby.activationId]]);
  });

  it("reads the code while the ask is under way, not after it", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 2, standby: true } } });
    await fx.vendor.vend("default");
    await fx.vendor.idle(); // a standby is installed
    let answerAsk!: () => void;
    const events: string[] = [];
    const lambda = lambdaVendor(fx, () => {
      events.push("ask");
      return new Promise<void>((resolve) => (answerAsk = resolve));
    });
    const getMany = fx.secrets.getMany.bind(fx.secrets);
    fx.secrets.getMany = (pool, ids) => (events.push("read"), getMany(pool, ids));
    await lambda.vend("default"); // slot 2 of the current: no ask, reads current + standby
    const onStandby = lambda.vend("default"); // the standby's slot 1 asks; its code is cached
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual(["read", "ask"]);
    answerAsk();
    expect((await onStandby).receipt.slot).toBe(1);
  });
});

describe("what the vendor counts", () => {
  it("counts rotations, refills, failures and lease waits per pool", async () => {
    const metrics = new RecordingMetrics();
    const fx = aVendor({ pools: { default: { registrationLimit: 1, standby: true } } });
    const vendor = fx.newProcess({ metrics });
    await vendor.vend("default");
    await vendor.idle();
    expect(metrics.named("Rotations")).toEqual([
      { kind: "count", name: "Rotations", value: 1, dimensions: { Pool: "default" } },
    ]);
    expect(metrics.named("StandbyRefills")).toEqual([
      { kind: "count", name: "StandbyRefills", value: 1, dimensions: { Pool: "default" } },
    ]);
    fx.activations.beforeCreate = () => Promise.reject(new Error("SSM down"));
    await vendor.vend("default"); // takes the standby; its refill fails
    await vendor.idle();
    await vendor.vend("default").catch(() => undefined); // the fallback rotation fails
    expect(metrics.named("RotationFailures")).toEqual([
      { kind: "count", name: "RotationFailures", value: 1, dimensions: { Pool: "default" } },
      { kind: "count", name: "RotationFailures", value: 1, dimensions: { Pool: "default" } },
    ]);
    // Someone else's lease: the waiting round is counted.
    fx.activations.beforeCreate = () => {};
    await holdLease(fx, { generation: (await fx.store.read("default"))!.generation, forMs: 60_000 });
    const frozen: Sleeper = { sleep: async () => undefined };
    await fx
      .newProcess({ metrics, sleeper: frozen })
      .vend("default")
      .catch(() => undefined);
    expect(metrics.named("LeaseWaits")[0]).toEqual({
      kind: "count",
      name: "LeaseWaits",
      value: 1,
      dimensions: { Pool: "default" },
    });
  });

  it("counts no refill for a rotation that makes no standby", async () => {
    const metrics = new RecordingMetrics();
    const fx = aVendor({ pools: { default: { registrationLimit: 1, standby: false } } });
    await fx.newProcess({ metrics }).vend("default");
    expect(metrics.named("Rotations")).toHaveLength(1);
    expect(metrics.named("StandbyRefills")).toEqual([]);
  });

  it("keeps serving when the outgoing code cannot be deleted, and says the janitor will", async () => {
    const { vendor, secrets, logger } = aVendor({ pools: { default: { registrationLimit: 1 } } });
    const { pair: first } = await vendor.vend("default");
    secrets.delete = () => Promise.reject(new Error("throttled"));
    const { pair: second } = await vendor.vend("default");
    expect(second.activationId).not.toBe(first.activationId);
    const line = logger.lines.find((l) => l.message.startsWith("could not delete the outgoing"));
    expect(line?.extra).toEqual({ pool: "default", activationId: first.activationId, error: "Error" });
  });

  it("says how far the budget went when it refuses", async () => {
    const { vendor, logger } = aVendor({
      pools: { default: { registrationLimit: 1, maxActivationsPerHour: 1 } },
    });
    await vendor.vend("default");
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(RotationBudgetExhaustedError);
    const line = logger.lines.find((l) => l.message.startsWith("rotation budget exhausted"));
    expect(line?.extra).toMatchObject({ pool: "default", maxActivationsPerHour: 1, rotationsInWindow: 1 });
  });
});

describe("a deeper stock (I9)", () => {
  const pool = { pools: { default: { registrationLimit: 1, standby: true, maxActivationsPerHour: 50 } } };

  /** A Lambda-like process (no background refill) and the pool run dry under it. */
  async function dryPool() {
    const fx = aVendor(pool);
    const lambda = fx.newContainer();
    await lambda.vend("default"); // rotation: the current activation's one slot, and a standby
    await lambda.vend("default"); // the standby's one slot: nothing unused is left
    return { fx, lambda };
  }

  it("a first rotation whose holder died leaves a row with no activation: the next one does not double the depth", async () => {
    const fx = aVendor(pool);
    await holdLease(fx, { forMs: 1_000 }); // took the lease on the cold pool, then died
    fx.clock.advance(1_001);
    await fx.newContainer().vend("default");
    expect(await fx.store.read("default")).toMatchObject({ standbyDepth: 1 });
    expect(fx.activations.created).toHaveLength(2);
  });

  it("a rotation on a dry pool brings the standbys, doubling the depth, tagged after the current one", async () => {
    const { fx, lambda } = await dryPool();
    const standbysLogged = () => fx.logger.lines.filter((l) => l.message === "created a standby activation");
    const before = standbysLogged().length;
    const { pair, receipt } = await lambda.vend("default"); // dry: rotates with the standbys
    expect(receipt.rotated).toBe(true);
    const row = await fx.store.read("default");
    // The current one, its unused standby and one unused queued behind it.
    expect(row).toMatchObject({
      standbyDepth: 2,
      links: [{ activationId: pair.activationId }, { issued: 0 }, { issued: 0 }],
    });
    const tags = fx.activations.created.slice(2).map((a) => Number(a.request.tags[TAG_GENERATION]));
    expect(tags).toEqual([row!.generation, row!.generation + 1, row!.generation + 2]);
    expect(standbysLogged().length - before).toBe(2);
  });

  it("a standby that cannot be made is skipped: the rotation serves, the depth follows what was made", async () => {
    const { fx, lambda } = await dryPool();
    let creates = 0;
    fx.activations.beforeCreate = () =>
      ++creates === 3 ? Promise.reject(new TypeError("throttled")) : undefined;
    const { receipt } = await lambda.vend("default");
    expect(receipt.rotated).toBe(true);
    const row = await fx.store.read("default");
    // The current one and its unused standby, nothing queued.
    expect(row).toMatchObject({ standbyDepth: 1, links: [expect.anything(), { issued: 0 }] });
    const line = fx.logger.lines.find((l) => l.message.startsWith("could not create every standby"));
    expect(line?.extra).toEqual({ pool: "default", failed: 1, error: "TypeError" });
  });

  it("a rotation whose current activation cannot be made fails, deleting the standbys it made", async () => {
    const { fx, lambda } = await dryPool();
    let creates = 0;
    fx.activations.beforeCreate = () =>
      ++creates === 1 ? Promise.reject(new TypeError("throttled")) : undefined;
    await expect(lambda.vend("default")).rejects.toBeInstanceOf(TypeError);
    expect(fx.activations.live()).toHaveLength(2); // the spent first two only
    expect((await fx.store.read("default"))?.leaseOwner).toBeUndefined();
  });

  it("the budget bounds a dry rotation's standbys, and counts them all", async () => {
    const fx = aVendor({
      pools: { default: { registrationLimit: 1, standby: true, maxActivationsPerHour: 3 } },
    });
    const lambda = fx.newContainer();
    await lambda.vend("default"); // the current activation and its standby: 2 of the budget's 3
    await lambda.vend("default");
    await lambda.vend("default"); // dry: room for one more activation only, so no standby
    const row = await fx.store.read("default");
    // The depth the pace asks for is kept: the refills make it up once the window reopens.
    expect(row).toMatchObject({ rotationsInWindow: 3, standbyDepth: 2 });
    expect(row?.links[1]).toBeUndefined();
    expect(fx.activations.created).toHaveLength(3);
  });

  it("a refill that finds its own commit used up doubles the depth for its next round", async () => {
    const fx = aVendor(pool);
    const lambda = fx.newContainer();
    await lambda.vend("default");
    await lambda.vend("default"); // the standby goes into use
    // Each refill round's commit is used up at once by a vend, as a fast burst does.
    const commitRefill = fx.store.commitRefill.bind(fx.store);
    fx.store.commitRefill = async (name, refill) => {
      const done = await commitRefill(name, refill);
      if (done) for (let i = 0; i < refill.chain.length; i++) await fx.store.reserve(name, 0);
      return done;
    };
    await fx.vendor.refillUntilReady("default");
    expect((await fx.store.read("default"))?.standbyDepth).toBeGreaterThanOrEqual(4);
  });

  it("a refill that finds one activation's slots still free after its own commit did not run out: the depth stays", async () => {
    const fx = aVendor({
      pools: { default: { registrationLimit: 2, standby: true, maxActivationsPerHour: 50 } },
    });
    const lambda = fx.newContainer();
    await lambda.vend("default");
    await lambda.vend("default"); // the current one is spent, its standby unused
    fx.store.rows.get("default")!.standbyDepth = 2;
    // The first refill's commit (the standby and one new activation) loses its first activation's
    // two slots at once: the pool still holds one unused activation, exactly one activation's slots.
    const commitRefill = fx.store.commitRefill.bind(fx.store);
    let commits = 0;
    fx.store.commitRefill = async (name, refill) => {
      const done = await commitRefill(name, refill);
      if (done && ++commits === 1) for (let i = 0; i < 2; i++) await fx.store.reserve(name, 0);
      return done;
    };
    await fx.vendor.refillUntilReady("default");
    const row = await fx.store.read("default");
    expect(row?.standbyDepth).toBe(2);
    expect(linksOf(row).map((l) => l.issued)).toEqual([0, 0]); // the spent one dropped
  });
});

describe("a deeper stock, what it leaves behind (I9)", () => {
  const HOUR = 3_600_000;
  const pool = (extra: Record<string, unknown> = {}) => ({
    pools: { default: { registrationLimit: 1, standby: true, maxActivationsPerHour: 50, ...extra } },
  });

  it("a dry rotation counts every activation it makes against the budget, and retires the used ones it drops", async () => {
    const fx = aVendor(pool());
    const lambda = fx.newContainer();
    await lambda.vend("default"); // the current activation and its standby
    const spent = linksOf(await fx.store.read("default")).map((l) => l.activationId);
    await lambda.vend("default"); // the standby's slot
    await lambda.vend("default"); // dry: 1 + 2
    expect((await fx.store.read("default"))?.rotationsInWindow).toBe(2 + 3);
    // The used ones are retired, not deleted: servers with their pairs may not have registered yet.
    expect(spent).toHaveLength(2);
    const live = fx.activations.live().map((a) => a.activationId);
    const coded = [...fx.secrets.items.values()].map((s) => s.activationId);
    for (const id of spent) {
      expect(live).toContain(id);
      expect(coded).not.toContain(id);
    }
  });

  it("a rotation over an expiring activation with slots left brings the standbys, the depth halved after a quiet spell", async () => {
    const fx = aVendor(pool({ registrationLimit: 5, expirationHours: 2, safetyMarginMinutes: 30 }));
    const lambda = fx.newContainer();
    const { pair: first } = await lambda.vend("default");
    fx.store.rows.get("default")!.standbyDepth = 4;
    fx.clock.current = first.expiresAt - 30 * 60_000; // 90 minutes after the stock was made
    const before = fx.activations.created.length;
    const rotated = await lambda.vend("default");
    expect(rotated.receipt.rotated).toBe(true);
    // Not dry (slots were left): no doubling; long after the last stock was made: halved.
    expect(fx.activations.created).toHaveLength(before + 1 + 2);
    const row = await fx.store.read("default");
    expect(row).toMatchObject({ standbyDepth: 2, rotationsInWindow: 3, refilledAt: fx.clock.now() });
    expect(linksOf(row).map((l) => l.issued)).toEqual([1, 0, 0]);
  });

  it("a switch to the standby deletes the queue behind it, which nobody used", async () => {
    const fx = aVendor(pool({ registrationLimit: 5, expirationHours: 2, safetyMarginMinutes: 30 }));
    const lambda = fx.newContainer();
    const { pair: first } = await lambda.vend("default");
    // Standbys made an hour later outlive the current activation's margin.
    fx.store.rows.get("default")!.standbyDepth = 4; // the refill an hour later halves it: two
    expect(await standbyMadeLater(fx, HOUR)).toBe(true);
    const row = await fx.store.read("default");
    const queuedId = row!.links[2]!.activationId;
    fx.clock.current = first.expiresAt - 30 * 60_000;
    const { pair: switched } = await lambda.vend("default");
    expect(switched.activationId).toBe(row!.links[1]?.activationId);
    expect(fx.activations.live().map((a) => a.activationId)).not.toContain(queuedId);
  });

  it("a rotation whose current activation and a standby both fail warns of no missing standby", async () => {
    const fx = aVendor(pool());
    const lambda = fx.newContainer();
    await lambda.vend("default");
    await lambda.vend("default"); // dry: the next rotation makes the current one and two standbys
    let creates = 0;
    fx.activations.beforeCreate = () =>
      ++creates <= 2 ? Promise.reject(new TypeError("throttled")) : undefined;
    await expect(lambda.vend("default")).rejects.toBeInstanceOf(TypeError);
    expect(fx.logger.lines.some((l) => l.message.startsWith("could not create every standby"))).toBe(false);
  });

  it("a refill with no room in the budget takes no lease and says it made nothing", async () => {
    const fx = aVendor(pool({ maxActivationsPerHour: 2 }));
    const lambda = fx.newContainer();
    await lambda.vend("default"); // the current activation and its standby: the whole budget
    await lambda.vend("default"); // the standby goes into use: the pool needs a refill
    const writes = fx.store.writes;
    expect(await fx.vendor.refillStandby("default")).toBe(false);
    expect(fx.store.writes).toBe(writes);
  });

  it("a rotation over an activation that expires with slots left did not run dry: the depth stays", async () => {
    const fx = aVendor(pool({ registrationLimit: 5, expirationHours: 2, safetyMarginMinutes: 30 }));
    const lambda = fx.newContainer();
    const { pair: first } = await lambda.vend("default");
    // No standby to switch to, and no refill on record: a dry pool's depth would double.
    const row = fx.store.rows.get("default")!;
    row.links = row.links.slice(0, 1);
    delete row.refilledAt;
    const before = fx.activations.created.length;
    fx.clock.current = first.expiresAt - 30 * 60_000;
    expect((await lambda.vend("default")).receipt.rotated).toBe(true);
    expect(fx.activations.created).toHaveLength(before + 1 + 1);
    expect(await fx.store.read("default")).toMatchObject({ standbyDepth: 1 });
  });

  it("a refill the budget caps records the depth it planned, so the next window makes the rest", async () => {
    const fx = aVendor(pool({ maxActivationsPerHour: 4 }));
    const lambda = fx.newContainer();
    await lambda.vend("default"); // the current activation and its standby: 2 of the budget's 4
    await lambda.vend("default"); // the standby goes into use: every activation is used
    // Both of a stock of two used at once: late, so the depth doubles to 4; room for 2 only.
    fx.store.rows.get("default")!.standbyDepth = 2;
    expect(await fx.vendor.refillStandby("default")).toBe(true);
    const row = await fx.store.read("default");
    expect(row).toMatchObject({ standbyDepth: 4, rotationsInWindow: 4 });
    expect(linksOf(row).map((l) => l.issued)).toEqual([0, 0]);
  });

  it("a refill that makes fewer than it asked keeps the depth to what it has", async () => {
    const fx = aVendor(pool());
    const lambda = fx.newContainer();
    await lambda.vend("default");
    fx.store.rows.get("default")!.standbyDepth = 3;
    let creates = 0;
    fx.activations.beforeCreate = () =>
      ++creates === 2 ? Promise.reject(new TypeError("throttled")) : undefined;
    expect(await fx.vendor.refillStandby("default")).toBe(true);
    // Two asked (the spent current one is dropped, its unused standby kept), one made: two unused,
    // so the depth is two.
    expect(await fx.store.read("default")).toMatchObject({ standbyDepth: 2 });
    expect(linksOf(await fx.store.read("default"))).toHaveLength(2);
  });
});
