import { describe, expect, it } from "vitest";
import { RotationBudgetExhaustedError } from "../../src/core/errors";
import { SLOT_THEFT_MESSAGE } from "../../src/core/reconcile";
import { RecordingMetrics } from "../support/fakes";
import { aVendor, holdCreates, standbyMadeLater } from "../support/vendor-mother";

/**
 * The standby (I9) meets the rest of the contract: what a promotion, a switch or a fallback
 * rotation leaves behind is retired like any outgoing activation (code deleted, slot-theft check),
 * a standby counts against the rotation budget (I7), and a burst waiting on this process's refill
 * costs no doomed writes or reads.
 */

const HOUR = 3_600_000;

/** Waits end only at a commit of this process's refill: a timer would hide a missed wake-up. */
const NEVER_WAKES = { sleep: () => new Promise<void>(() => {}) };

const standbyPool = (extra: Record<string, unknown> = {}) => ({
  pools: { default: { registrationLimit: 2, standby: true, ...extra } },
});

describe("what the standby leaves behind is retired", () => {
  it("promoting the standby in use deletes the exhausted activation's code and checks it for theft", async () => {
    const { vendor, activations, secrets, logger } = aVendor(standbyPool());
    const { pair: first } = await vendor.vend("default");
    await vendor.vend("default");
    await vendor.idle();
    // Three nodes registered with the first activation's two pairs: someone reused one.
    for (let i = 0; i < 3; i++) activations.register(first.activationId);
    const { pair: standbyPair } = await vendor.vend("default"); // the standby goes into use
    await vendor.idle(); // the refill promotes it and makes the next one
    expect(standbyPair.activationId).not.toBe(first.activationId);
    expect(secrets.items.has(`default/${first.activationId}`)).toBe(false);
    expect(secrets.items.has(`default/${standbyPair.activationId}`)).toBe(true);
    const theft = logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE);
    expect(theft?.extra).toMatchObject({
      activationId: first.activationId,
      registrationsCount: 3,
      issued: 2,
    });
  });

  it("counts the theft it finds on a promotion in SlotTheftDetected, once, for the pool", async () => {
    const metrics = new RecordingMetrics();
    const { newProcess, activations } = aVendor(standbyPool());
    const vendor = newProcess({ metrics });
    const { pair: first } = await vendor.vend("default");
    await vendor.vend("default");
    await vendor.idle();
    for (let i = 0; i < 3; i++) activations.register(first.activationId);
    await vendor.vend("default");
    await vendor.idle();
    expect(metrics.named("SlotTheftDetected")).toEqual([
      { kind: "count", name: "SlotTheftDetected", value: 1, dimensions: { Pool: "default" } },
    ]);
  });

  it("an honest promotion logs no theft", async () => {
    const { vendor, activations, logger } = aVendor(standbyPool());
    const { pair: first } = await vendor.vend("default");
    await vendor.vend("default");
    activations.register(first.activationId);
    activations.register(first.activationId);
    await vendor.vend("default");
    await vendor.idle();
    expect(logger.lines.filter((l) => l.message === SLOT_THEFT_MESSAGE)).toEqual([]);
  });

  it("switching away from an expiring activation deletes its code", async () => {
    const { vendor, clock, store, secrets } = aVendor(
      standbyPool({ registrationLimit: 100, expirationHours: 2, safetyMarginMinutes: 30 }),
    );
    const { pair: first } = await vendor.vend("default");
    await vendor.idle();
    // A standby made an hour later outlives the current activation's margin.
    expect(await standbyMadeLater({ vendor, store, clock }, HOUR)).toBe(true);
    clock.current = first.expiresAt - 30 * 60_000;
    const { pair: switched } = await vendor.vend("default");
    expect(switched.activationId).not.toBe(first.activationId);
    expect(secrets.items.has(`default/${first.activationId}`)).toBe(false);
  });

  it("a fallback rotation retires a used standby as well as the current activation", async () => {
    const { vendor, activations, secrets, logger } = aVendor(standbyPool({ registrationLimit: 1 }));
    const { pair: first } = await vendor.vend("default");
    await vendor.idle();
    // The next refill fails (SSM down): current and standby will both be spent, nothing behind.
    activations.beforeCreate = () => Promise.reject(new Error("SSM down"));
    const { pair: standbyPair } = await vendor.vend("default"); // takes the standby's only slot
    await vendor.idle();
    activations.register(standbyPair.activationId);
    activations.register(standbyPair.activationId); // reused
    activations.beforeCreate = () => {};
    const rotated = await vendor.vend("default");
    expect(rotated.receipt.rotated).toBe(true);
    expect(secrets.items.has(`default/${first.activationId}`)).toBe(false);
    expect(secrets.items.has(`default/${standbyPair.activationId}`)).toBe(false);
    const theft = logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE);
    expect(theft?.extra).toMatchObject({ activationId: standbyPair.activationId, issued: 1 });
  });
});

describe("the standby and the rotation budget (I7)", () => {
  it("a refill takes its lease under the budget: rotation + standbys never pass maxActivationsPerHour", async () => {
    const { vendor, activations } = aVendor(standbyPool({ registrationLimit: 1, maxActivationsPerHour: 3 }));
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      await vendor.vend("default").then(
        () => answers.push("200"),
        (error: unknown) => answers.push(error instanceof RotationBudgetExhaustedError ? "429" : "other"),
      );
      await vendor.idle();
    }
    // Rotation (1) + standby (2); its promotion's refill (3); the third vend takes that standby;
    // then the budget stops both the refill and the fallback rotation.
    expect(activations.created).toHaveLength(3);
    expect(answers).toEqual(["200", "200", "200", "429", "429", "429"]);
  });
});

describe("a burst waiting on this process's refill", () => {
  it("requests arriving while a round is under way join it instead of writing", async () => {
    const { newProcess, activations, store } = aVendor(standbyPool({ registrationLimit: 5 }));
    const vendor = newProcess({ sleeper: NEVER_WAKES });
    await vendor.vend("default");
    await vendor.idle();
    // The refill that the standby's first reservation starts waits on SSM, holding the lease.
    const release = holdCreates(activations);
    for (let i = 0; i < 9; i++) await vendor.vend("default"); // current and standby spent
    const writes = store.writes;
    let reads = 0;
    const read = store.read.bind(store);
    store.read = (pool) => (reads++, read(pool));
    // Reservations take a network round trip, as they do: a waiter that reads the pool while the
    // admitted ones are still reserving would find their slots free and read again.
    const reserve = store.reserve.bind(store);
    store.reserve = async (pool, validUntil) => {
      await new Promise((resolve) => setImmediate(resolve));
      return reserve(pool, validUntil);
    };
    // The last reservation's answer left no slot: the first request starts a round without a
    // write (its slot gate knew), and the 20 join that round, without a write either.
    const first = vendor.vend("default");
    await new Promise((resolve) => setImmediate(resolve));
    const later = Array.from({ length: 20 }, () => vendor.vend("default"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.writes - writes).toBe(0);
    release();
    const pairs = await Promise.all([first, ...later]);
    await vendor.idle();
    expect(pairs).toHaveLength(21);
    expect(new Set(pairs.map((v) => `${v.pair.activationId}/${v.receipt.slot}`)).size).toBe(21);
    // Woken at each standby commit, not by polling the row: a few reads per 5-slot standby.
    expect(reads).toBeLessThanOrEqual(4 * 3 + 4);
  });

  it("turns go by arrival: the earliest waiter is served first", async () => {
    const { newProcess, activations } = aVendor(standbyPool({ registrationLimit: 1 }));
    const vendor = newProcess({ sleeper: NEVER_WAKES });
    await vendor.vend("default");
    await vendor.idle();
    await vendor.vend("default"); // standby in use; its refill starts
    const release = holdCreates(activations);
    await Promise.resolve();
    const order: number[] = [];
    const waiters = Array.from({ length: 4 }, (_, i) => vendor.vend("default").then(() => order.push(i)));
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await Promise.all(waiters);
    await vendor.idle();
    expect(order).toEqual([0, 1, 2, 3]);
  });
});
