import { describe, expect, it } from "vitest";
import {
  InvalidPoolNameError,
  PoolNotFoundError,
  RotationInProgressError,
  ThrottledError,
} from "../../src/core/errors";
import { TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "../../src/core/vend-policy";
import { aVendor } from "../support/vendor-mother";

/** A rotation budget no test here reaches (the budget has its own cases). */
const ANY_BUDGET = { max: 1_000_000, windowMs: 3_600_000 };

const HOUR = 3_600_000;

describe("Vendor.vend", () => {
  it("creates the first activation on demand and hands out its pair", async () => {
    const { vendor, activations, clock } = aVendor({ pools: { default: { registrationLimit: 5 } } });
    const pair = await vendor.vend("default");
    expect(activations.created).toHaveLength(1);
    const created = activations.created[0]!;
    expect(pair).toEqual({
      pool: "default",
      activationId: created.activationId,
      activationCode: created.code,
      expiresAt: Math.floor((clock.now() + 24 * HOUR) / 1000) * 1000,
      slot: 1,
      limit: 5,
      rotated: true,
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
    const pairs = await Promise.all(Array.from({ length: 50 }, () => other.vend("default")));
    expect(new Set(pairs.map((p) => p.activationCode)).size).toBe(1);
    expect(secrets.gets).toBe(1);
  });

  it("rotates exactly when the registration limit is reached (I1, I5)", async () => {
    const { vendor, activations, store } = aVendor({ pools: { default: { registrationLimit: 3 } } });
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push((await vendor.vend("default")).activationId);
    const created = activations.created.map((a) => a.activationId);
    expect(ids).toEqual([created[0], created[0], created[0], created[1], created[1], created[1], created[2]]);
    expect((await store.read("default"))?.generation).toBe(3);
    expect(activations.created.map((a) => a.request.tags[TAG_GENERATION])).toEqual(["1", "2", "3"]);
  });

  it("stops handing out a pair once it would expire within the safety margin (I2)", async () => {
    const { vendor, activations, clock } = aVendor({
      pools: { default: { registrationLimit: 100, expirationHours: 2, safetyMarginMinutes: 30 } },
    });
    const first = await vendor.vend("default");
    clock.current = first.expiresAt - 30 * 60_000 - 1;
    expect((await vendor.vend("default")).activationId).toBe(first.activationId);
    clock.current = first.expiresAt - 30 * 60_000;
    const next = await vendor.vend("default");
    expect(next.activationId).not.toBe(first.activationId);
    expect(next.expiresAt).toBeGreaterThan(clock.now() + 30 * 60_000);
    expect(activations.created).toHaveLength(2);
  });

  it("waits for a rotation held by another request, then answers RotationInProgress with Retry-After", async () => {
    const { vendor, store, clock, activations } = aVendor({ options: { rotationWaitMs: 2_000 } });
    await store.acquireLease("default", {
      budget: ANY_BUDGET,
      owner: "someone",
      generation: 0,
      now: clock.now(),
      deadline: clock.now() + 30_000,
    });
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
    await store.acquireLease("default", {
      budget: ANY_BUDGET,
      owner: "crashed",
      generation: 0,
      now: clock.now(),
      deadline: clock.now() + 30_000,
    });
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(RotationInProgressError);
    clock.current += 30_000;
    const pair = await vendor.vend("default");
    expect(pair.activationId).toBe(activations.created[0]!.activationId);
    expect((await store.read("default"))?.leaseOwner).toBeUndefined();
  });

  it("discards what it created when its lease was taken over before the commit", async () => {
    const { vendor, store, clock, activations, secrets } = aVendor();
    activations.beforeCreate = async () => {
      // The holder stalls past its lease; another request takes over and commits generation 1.
      clock.current += 31_000;
      activations.beforeCreate = () => {};
      await store.acquireLease("default", {
        budget: ANY_BUDGET,
        owner: "other",
        generation: 0,
        now: clock.now(),
        deadline: clock.now() + 30_000,
      });
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
    const pair = await vendor.vend("default");
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
      rotationWindowStart: clock.now(),
      rotationsInWindow: 1,
    });
    activations.beforeCreate = () => {};
    await expect(vendor.vend("default")).resolves.toMatchObject({ pool: "default" });
  });

  it("deletes the new activation when storing its code fails", async () => {
    const { vendor, secrets, activations, store } = aVendor();
    secrets.put = () => Promise.reject(new ThrottledError("Parameter Store", 1));
    await expect(vendor.vend("default")).rejects.toBeInstanceOf(ThrottledError);
    expect(activations.live()).toHaveLength(0);
    expect((await store.read("default"))?.leaseOwner).toBeUndefined();
  });

  it("rotates past an activation whose stored code has disappeared, instead of failing until it is spent", async () => {
    const { vendor, newProcess, secrets, activations, store } = aVendor();
    const first = await vendor.vend("default");
    secrets.items.clear(); // e.g. the parameter was deleted by hand
    const pair = await newProcess().vend("default");
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
