import { describe, expect, it } from "vitest";
import {
  reconcilePool,
  reconcilePools,
  reportOutgoingActivation,
  type ReconcileDependencies,
} from "../../src/core/reconcile";
import {
  CapturingLogger,
  FakeClock,
  InMemoryActivations,
  InMemoryPoolStore,
  RecordingMetrics,
} from "../support/fakes";
import { TEST_ROLE } from "../support/vendor-mother";

const DAY = 86_400_000;
// What the operator reads in the logs; spelled out so that a changed warning shows here.
const THEFT =
  "security: an activation has more registrations than pairs handed out; someone is reusing a pair";

/**
 * A pool whose current activation has handed out `issued` of `limit` pairs, and `registered` nodes
 * registered with it in SSM.
 */
async function aPool({ issued = 2, limit = 5, registered = 0 } = {}) {
  const clock = new FakeClock();
  const store = new InMemoryPoolStore();
  const activations = new InMemoryActivations(clock);
  const logger = new CapturingLogger();
  const expiresAt = clock.now() + DAY;
  const { activationId, activationCode } = await activations.create({
    pool: "default",
    generation: 1,
    iamRole: TEST_ROLE,
    registrationLimit: limit,
    expiresAt,
    tags: {},
  });
  store.rows.set("default", {
    pool: "default",
    generation: 1,
    links: [{ activationId, expiresAt, limit, issued }],
  });
  for (let i = 0; i < registered; i++) activations.register(activationId);
  const deps: ReconcileDependencies = { store, pools: store, activations, logger };
  return { clock, store, activations, logger, deps, activationId, activationCode };
}

/** The security warning a theft of the pool's activation logs: ids and counts, never a code. */
function theftWarning(
  activationId: string,
  fields: { registrationsCount: number; issued: number; action: string; detectedBy: string },
) {
  const { registrationsCount, issued, action, detectedBy } = fields;
  return {
    level: "warn",
    message: THEFT,
    extra: { security: true, pool: "default", activationId, issued, registrationsCount, action, detectedBy },
  };
}

/** Runs `meanwhile` once, just before SSM answers the next describe. */
function beforeSsmCounts(activations: InMemoryActivations, meanwhile: () => Promise<void> | void) {
  const describe = activations.describe.bind(activations);
  activations.describe = async (id) => {
    activations.describe = describe;
    await meanwhile();
    return describe(id);
  };
}

describe("reconcilePool", () => {
  it("has nothing to check in a pool that has no row, or no activation yet", async () => {
    const fx = await aPool();
    fx.store.rows.set("fresh", {
      pool: "fresh",
      generation: 0,
      links: [],
      leaseOwner: "someone",
      leaseDeadline: 1,
    });
    let describes = 0;
    fx.activations.describe = async () => {
      describes++;
      return undefined;
    };
    expect(await reconcilePool(fx.deps, "never-vended")).toEqual({
      pool: "never-vended",
      status: "no-activation",
    });
    expect(await reconcilePool(fx.deps, "fresh")).toEqual({ pool: "fresh", status: "no-activation" });
    expect(describes).toBe(0);
    expect(fx.logger.lines).toEqual([]);
  });

  it("finds the counts consistent while SSM counts no more registrations than pairs issued", async () => {
    const fx = await aPool({ issued: 2, registered: 2 });
    expect(await reconcilePool(fx.deps, "default")).toEqual({
      pool: "default",
      status: "consistent",
      activationId: fx.activationId,
      registrationsCount: 2,
      issued: 2,
    });
    expect(await fx.store.read("default")).toMatchObject({ links: [{ issued: 2, limit: 5 }] });
    expect(fx.logger.lines).toEqual([]);
  });

  it("retires the activation, and warns with both counts but no code, when SSM counts more", async () => {
    const fx = await aPool({ issued: 2, registered: 3 });
    expect(await reconcilePool(fx.deps, "default")).toEqual({
      pool: "default",
      status: "retired",
      activationId: fx.activationId,
      registrationsCount: 3,
      issued: 2,
    });
    // Retired: no replica can reserve another slot of it, so the next vend rotates.
    expect(await fx.store.reserve("default", fx.clock.now())).toBeUndefined();
    expect(fx.logger.lines).toEqual([
      theftWarning(fx.activationId, {
        registrationsCount: 3,
        issued: 2,
        action: "retired",
        detectedBy: "reconcile",
      }),
    ]);
    expect(fx.logger.text()).not.toContain(fx.activationCode);
  });

  it("still warns, without claiming to have retired it, when the pool rotated before the retire", async () => {
    const fx = await aPool({ issued: 1, registered: 2 });
    const deps = { ...fx.deps, pools: { retire: async () => false } };
    expect(await reconcilePool(deps, "default")).toEqual({
      pool: "default",
      status: "moved-on",
      activationId: fx.activationId,
    });
    expect(fx.logger.lines).toEqual([
      theftWarning(fx.activationId, {
        registrationsCount: 2,
        issued: 1,
        action: "already rotated",
        detectedBy: "reconcile",
      }),
    ]);
  });

  it("leaves an activation SSM does not know to the operator, with a warning naming it", async () => {
    const fx = await aPool({ issued: 1 });
    await fx.activations.delete(fx.activationId);
    expect(await reconcilePool(fx.deps, "default")).toEqual({
      pool: "default",
      status: "missing",
      activationId: fx.activationId,
    });
    expect(await fx.store.read("default")).toMatchObject({
      links: [{ activationId: fx.activationId, issued: 1 }],
    });
    expect(fx.logger.lines).toEqual([
      {
        level: "warn",
        message: "the pool's current activation is unknown to SSM",
        extra: { pool: "default", activationId: fx.activationId },
      },
    ]);
  });

  it("leaves the check to the next run when the pool rotated while SSM counted", async () => {
    const fx = await aPool({ issued: 1, registered: 2 });
    beforeSsmCounts(fx.activations, () => {
      const row = fx.store.rows.get("default")!;
      row.links = [{ ...row.links[0]!, activationId: "00000000-0000-4000-8000-00000000beef" }];
    });
    expect(await reconcilePool(fx.deps, "default")).toEqual({
      pool: "default",
      status: "moved-on",
      activationId: fx.activationId,
    });
    expect(fx.logger.lines).toEqual([]);
  });

  it("never takes a pair handed out and registered while SSM counted for theft", async () => {
    // issued was 1 when the check began; by the time SSM counts, a second pair is out and used.
    const fx = await aPool({ issued: 1, registered: 1 });
    beforeSsmCounts(fx.activations, async () => {
      await fx.store.reserve("default", fx.clock.now());
      fx.activations.register(fx.activationId);
    });
    expect(await reconcilePool(fx.deps, "default")).toMatchObject({
      status: "consistent",
      registrationsCount: 2,
      issued: 2,
    });
    expect(fx.logger.lines).toEqual([]);
  });
});

describe("reconcilePools", () => {
  it("checks every pool; one pool's failure is logged by the error's name and the others go on", async () => {
    const fx = await aPool({ issued: 1, registered: 2 });
    class ThrottlingException extends Error {
      override name = "ThrottlingException";
    }
    const read = fx.store.read.bind(fx.store);
    const store = {
      read: async (pool: string) => {
        if (pool === "throttled") throw new ThrottlingException("Rate exceeded for code abcd-secret");
        if (pool === "odd") throw "not an Error";
        return read(pool);
      },
    };
    const outcomes = await reconcilePools({ ...fx.deps, store }, ["throttled", "odd", "default", "empty"]);
    expect(outcomes.map((o) => [o.pool, o.status])).toEqual([
      ["default", "retired"],
      ["empty", "no-activation"],
    ]);
    const failures = fx.logger.lines.filter((l) => l.message !== THEFT);
    expect(failures).toEqual([
      {
        level: "warn",
        message: "slot-theft check failed; the next run retries",
        extra: { pool: "throttled", error: "ThrottlingException" },
      },
      {
        level: "warn",
        message: "slot-theft check failed; the next run retries",
        extra: { pool: "odd", error: "string" },
      },
    ]);
    expect(fx.logger.text()).not.toContain("abcd-secret");
  });

  it("counts SlotTheftDetected for the pool, as the janitor does", async () => {
    const fx = await aPool({ issued: 1, registered: 2 });
    const metrics = new RecordingMetrics();
    await reconcilePools({ ...fx.deps, metrics }, ["default"]);
    expect(metrics.points).toEqual([
      { kind: "count", name: "SlotTheftDetected", value: 1, dimensions: { Pool: "default" } },
    ]);
  });
});

describe("reportOutgoingActivation", () => {
  it("reports a theft that happened on the activation a rotation replaced", async () => {
    const fx = await aPool({ issued: 5, registered: 6 });
    await reportOutgoingActivation(fx.deps, { pool: "default", activationId: fx.activationId, issued: 5 });
    expect(fx.logger.lines).toEqual([
      theftWarning(fx.activationId, {
        registrationsCount: 6,
        issued: 5,
        action: "rotated",
        detectedBy: "rotation",
      }),
    ]);
    expect(fx.logger.text()).not.toContain(fx.activationCode);
  });

  it("says nothing when SSM counts no more than the pairs issued, or no longer knows the activation", async () => {
    const fx = await aPool({ issued: 5, registered: 5 });
    await reportOutgoingActivation(fx.deps, { pool: "default", activationId: fx.activationId, issued: 5 });
    await fx.activations.delete(fx.activationId);
    await reportOutgoingActivation(fx.deps, { pool: "default", activationId: fx.activationId, issued: 0 });
    expect(fx.logger.lines).toEqual([]);
  });

  it("never fails the rotation: an SSM error is logged by its name", async () => {
    const fx = await aPool();
    fx.activations.describe = async () => {
      throw Object.assign(new Error("denied for code abcd-secret"), { name: "AccessDeniedException" });
    };
    const outgoing = { pool: "default", activationId: fx.activationId, issued: 5 };
    await expect(reportOutgoingActivation(fx.deps, outgoing)).resolves.toBeUndefined();
    expect(fx.logger.lines).toEqual([
      {
        level: "warn",
        message: "slot-theft check of the outgoing activation failed",
        extra: { pool: "default", activationId: fx.activationId, error: "AccessDeniedException" },
      },
    ]);
    expect(fx.logger.text()).not.toContain("abcd-secret");
  });
});
