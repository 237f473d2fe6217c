import { describe, expect, it } from "vitest";
import { RotationBudgetExhaustedError } from "../../src/core/errors";
import { reconcilePool, reconcilePools, SLOT_THEFT_MESSAGE } from "../../src/core/reconcile";
import { aVendor } from "../support/vendor-mother";

const HOUR = 3_600_000;

describe("rotation budget (maxActivationsPerHour)", () => {
  it("refuses with 429-class RotationBudgetExhausted past the budget, until the window closes", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 1, maxActivationsPerHour: 3 } } });
    for (let i = 0; i < 3; i++) await fx.vendor.vend("default");
    const refusal = await fx.vendor.vend("default").catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(RotationBudgetExhaustedError);
    expect((refusal as RotationBudgetExhaustedError).retryAfterSeconds).toBe(3600);
    expect(fx.activations.created).toHaveLength(3);
    fx.clock.advance(HOUR / 2);
    const later = (await fx.vendor.vend("default").catch((e: unknown) => e)) as RotationBudgetExhaustedError;
    expect(later.retryAfterSeconds).toBe(1800);
    fx.clock.advance(HOUR / 2);
    await expect(fx.vendor.vend("default")).resolves.toMatchObject({ pair: { pool: "default" } });
    expect(fx.activations.created).toHaveLength(4);
  });

  it("is shared by every process on the pool's row", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 1, maxActivationsPerHour: 4 } } });
    const processes = [fx.vendor, fx.newProcess(), fx.newProcess()];
    const outcomes = [];
    for (let i = 0; i < 9; i++) {
      outcomes.push(
        await processes[i % 3]!.vend("default").then(
          () => "pair",
          (e: Error) => e.name,
        ),
      );
    }
    expect(outcomes.filter((o) => o === "pair")).toHaveLength(4);
    expect(fx.activations.created).toHaveLength(4);
  });

  it("costs no SSM call and logs one WARN per pool per minute, not one per request", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 1, maxActivationsPerHour: 1 } } });
    await fx.vendor.vend("default");
    const writesBefore = fx.store.writes;
    let reads = 0;
    const read = fx.store.read.bind(fx.store);
    fx.store.read = (pool) => (reads++, read(pool));
    for (let i = 0; i < 50; i++) await fx.vendor.vend("default").catch(() => undefined);
    const warnings = () => fx.logger.lines.filter((l) => l.message.startsWith("rotation budget exhausted"));
    expect(warnings()).toHaveLength(1);
    expect(fx.activations.created).toHaveLength(1);
    // Each refused request costs one read of the pool: the last answer left no slot, so no
    // reservation is written (the slot gate), nor a lease, nor any SSM call.
    expect(fx.store.writes - writesBefore).toBe(0);
    expect(reads).toBe(50);
    fx.clock.advance(60_000);
    await fx.vendor.vend("default").catch(() => undefined);
    expect(warnings()).toHaveLength(2);
  });
});

describe("parameters do not pile up", () => {
  it("deletes the outgoing activation's code when a rotation commits: one parameter per pool", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 2 } } });
    for (let i = 0; i < 20; i++) await fx.vendor.vend("default");
    expect(fx.activations.created).toHaveLength(10);
    expect([...fx.secrets.items.keys()]).toEqual([`default/${fx.activations.created[9]!.activationId}`]);
  });

  it("a reservation whose code a rotation deleted retries the vend; it neither rotates nor fails", async () => {
    // R (a cold-cache process) reserves the last slot of X, then another process rotates to Y and
    // deletes X's code before R reads it.
    const fx = aVendor({ pools: { default: { registrationLimit: 2 } } });
    const warm = fx.vendor;
    const cold = fx.newProcess();
    const { pair: x } = await warm.vend("default"); // slot 1 of X
    const realGet = fx.secrets.getMany.bind(fx.secrets);
    let raced = false;
    fx.secrets.getMany = async (pool, activationIds) => {
      if (!raced && activationIds.includes(x.activationId)) {
        raced = true;
        await warm.vend("default"); // X exhausted (R holds slot 2) → rotation to Y, X's code deleted
      }
      return realGet(pool, activationIds);
    };
    const { pair } = await cold.vend("default");
    expect(raced).toBe(true);
    expect(fx.activations.created).toHaveLength(2); // no extra rotation
    expect(pair.activationId).toBe(fx.activations.created[1]!.activationId);
    expect(fx.logger.lines.some((l) => l.message.startsWith("no stored code"))).toBe(false);
    // R's slot on X was spent without a pair; Y handed out its slot 1 (rotator) and 2 (R).
    expect(await fx.store.read("default")).toMatchObject({ generation: 2, links: [{ issued: 2 }] });
  });

  it("still rotates past a current activation whose code was deleted by hand", async () => {
    const fx = aVendor();
    const { pair: first } = await fx.vendor.vend("default");
    fx.secrets.items.clear();
    const { pair } = await fx.newProcess().vend("default");
    expect(pair.activationId).not.toBe(first.activationId);
    expect(fx.activations.created).toHaveLength(2);
  });
});

describe("slot-theft detection (reconcile)", () => {
  it("retires the current activation when SSM counts more registrations than pairs issued", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 5 } } });
    const { pair } = await fx.vendor.vend("default");
    const deps = { store: fx.store, pools: fx.store, activations: fx.activations, logger: fx.logger };
    fx.activations.register(pair.activationId);
    expect(await reconcilePool(deps, "default")).toMatchObject({ status: "consistent" });
    fx.activations.register(pair.activationId); // a second node on one pair: theft
    expect(await reconcilePool(deps, "default")).toEqual({
      pool: "default",
      status: "retired",
      activationId: pair.activationId,
      registrationsCount: 2,
      issued: 1,
    });
    const warning = fx.logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE);
    expect(warning).toMatchObject({
      level: "warn",
      extra: { pool: "default", activationId: pair.activationId, registrationsCount: 2, issued: 1 },
    });
    expect(fx.logger.text()).not.toContain(pair.activationCode);
    // The next vend rotates at once, although the old activation had 4 slots left by the count.
    const { pair: next } = await fx.vendor.vend("default");
    expect(next.activationId).not.toBe(pair.activationId);
    expect(fx.activations.created).toHaveLength(2);
  });

  it("reports theft of the outgoing activation on a rotation", async () => {
    const fx = aVendor({ pools: { default: { registrationLimit: 1 } } });
    const { pair } = await fx.vendor.vend("default");
    fx.activations.register(pair.activationId);
    fx.activations.register(pair.activationId);
    await fx.vendor.vend("default");
    expect(fx.logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE)?.extra).toMatchObject({
      activationId: pair.activationId,
      registrationsCount: 2,
      issued: 1,
      action: "rotated",
    });
  });

  it("is never on a vend's path, and skips pools without an activation", async () => {
    const fx = aVendor({ pools: { web: {} } });
    let describes = 0;
    const describe = fx.activations.describe.bind(fx.activations);
    fx.activations.describe = (id) => {
      describes++;
      return describe(id);
    };
    await fx.vendor.vend("default");
    await fx.vendor.vend("default");
    expect(describes).toBe(0);
    const deps = { store: fx.store, pools: fx.store, activations: fx.activations, logger: fx.logger };
    const outcomes = await reconcilePools(deps, ["default", "web"]);
    expect(outcomes.map((o) => o.status)).toEqual(["consistent", "no-activation"]);
  });
});
