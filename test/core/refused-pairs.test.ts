import { describe, expect, it } from "vitest";
import {
  CHECK_TTL_MS,
  InvalidRefusedClaimError,
  REFUSED_PAIR_MESSAGE,
  RefusedPairs,
  refusalReason,
  type ActivationStatus,
  type ActivationStatusReader,
} from "../../src/core/refused-pairs";
import { SLOT_THEFT_MESSAGE } from "../../src/core/slot-theft";
import {
  CapturingLogger,
  FakeClock,
  InMemoryActivations,
  InMemoryPoolStore,
  RecordingMetrics,
} from "../support/fakes";
import { TEST_ROLE } from "../support/vendor-mother";

const DAY = 86_400_000;

/** SSM's view of one activation, from the in-memory SSM; counts the calls. */
function statusReader(activations: InMemoryActivations) {
  const reader = {
    calls: 0,
    async status(activationId: string): Promise<ActivationStatus | undefined> {
      reader.calls++;
      const found = (await activations.list()).find((a) => a.activationId === activationId);
      if (!found) return undefined;
      const { registrationLimit, registrationsCount, expiresAt, expired } = found;
      return { activationId, registrationLimit, registrationsCount, expiresAt, expired };
    },
  } satisfies ActivationStatusReader & { calls: number };
  return reader;
}

/** The row names `activationId` as the pool's current activation (as a rotation would). */
function makeCurrent(store: InMemoryPoolStore, activationId: string): void {
  const row = store.rows.get("web")!;
  row.links = [{ ...row.links[0]!, activationId }];
}

/** A pool serving `current` (limit 10, `issued` handed out, `registered` registered in SSM). */
async function aPool({ issued = 10, registered = 10, limit = 10 } = {}) {
  const clock = new FakeClock();
  const store = new InMemoryPoolStore();
  const activations = new InMemoryActivations(clock);
  const logger = new CapturingLogger();
  const metrics = new RecordingMetrics();
  const make = async () =>
    (
      await activations.create({
        pool: "web",
        generation: 1,
        iamRole: TEST_ROLE,
        registrationLimit: limit,
        expiresAt: clock.now() + DAY,
        tags: {},
      })
    ).activationId;
  const current = await make();
  for (let i = 0; i < registered; i++) activations.register(current);
  store.rows.set("web", {
    pool: "web",
    generation: 1,
    links: [{ activationId: current, expiresAt: clock.now() + DAY, limit, issued }],
  });
  const reader = statusReader(activations);
  const healer = new RefusedPairs({ store, pools: store, activations: reader, clock, logger, metrics });
  return { clock, store, activations, logger, metrics, reader, healer, current, make };
}

describe("refused pairs: a claim is checked with SSM, never trusted", () => {
  it("refuses a claim that is not an activation id, before any read", async () => {
    const fx = await aPool();
    for (const claim of [
      "",
      "x",
      `x${fx.current}`,
      `${fx.current} `,
      `A${fx.current.slice(1)}`,
      `${fx.current}0`,
    ]) {
      await expect(fx.healer.heal("web", claim)).rejects.toBeInstanceOf(InvalidRefusedClaimError);
    }
    expect(new InvalidRefusedClaimError()).toMatchObject({
      name: "InvalidRefusedClaimError",
      code: "InvalidParameter",
      message: "refused must be the ActivationId of the pair SSM refused.",
    });
    expect(fx.reader.calls).toBe(0);
  });

  it("asks SSM nothing about an activation the pool no longer hands out", async () => {
    const fx = await aPool();
    const older = await fx.make();
    expect(await fx.healer.heal("web", older)).toBe("not-live");
    expect(await fx.healer.heal("other-pool", fx.current)).toBe("not-live");
    expect(fx.reader.calls).toBe(0);
    expect(fx.logger.lines).toEqual([]);
  });

  it("changes nothing when SSM says the activation still takes registrations", async () => {
    const fx = await aPool({ issued: 4, registered: 4 });
    expect(await fx.healer.heal("web", fx.current)).toBe("unconfirmed");
    expect(fx.store.rows.get("web")).toMatchObject({ links: [{ issued: 4 }] });
    expect(fx.metrics.points).toEqual([]);
    expect(fx.logger.lines).toEqual([
      {
        level: "info",
        message: "a server says SSM refused a pair, but SSM still takes registrations on it",
        extra: {
          pool: "web",
          activationId: fx.current,
          issued: 4,
          registrationsCount: 4,
          registrationLimit: 10,
        },
      },
    ]);
  });

  it("retires a full activation at once: no replica reserves from it again; RefusedPairs + WARN", async () => {
    const fx = await aPool({ issued: 10, registered: 10 });
    expect(await fx.healer.heal("web", fx.current)).toBe("retired");
    expect(await fx.store.reserve("web", fx.clock.now())).toBeUndefined();
    expect(fx.metrics.points).toEqual([
      { kind: "count", name: "RefusedPairs", value: 1, dimensions: { Pool: "web" } },
    ]);
    expect(fx.logger.lines).toEqual([
      {
        level: "warn",
        message: REFUSED_PAIR_MESSAGE,
        extra: {
          security: true,
          pool: "web",
          activationId: fx.current,
          reason: "full",
          issued: 10,
          registrationsCount: 10,
          registrationLimit: 10,
          action: "retired",
        },
      },
    ]);
  });

  it("reports slot theft too when SSM counts more registrations than the broker handed out", async () => {
    // The thief used 5 registrations: the activation is full while the broker handed out 6 pairs.
    const fx = await aPool({ issued: 6, registered: 10 });
    expect(await fx.healer.heal("web", fx.current)).toBe("retired");
    expect(fx.logger.lines.map((l) => l.message)).toEqual([SLOT_THEFT_MESSAGE, REFUSED_PAIR_MESSAGE]);
    expect(fx.logger.lines[0]?.extra).toMatchObject({
      issued: 6,
      registrationsCount: 10,
      action: "retired",
      detectedBy: "refused-pair",
    });
    expect(fx.metrics.points.map((p) => p.name)).toEqual(["SlotTheftDetected", "RefusedPairs"]);
    expect(fx.store.rows.get("web")).toMatchObject({ links: [{ issued: 10 }] });
  });

  it("retires an activation SSM no longer knows, or that expired", async () => {
    const gone = await aPool({ issued: 3, registered: 3 });
    await gone.activations.delete(gone.current);
    expect(await gone.healer.heal("web", gone.current)).toBe("retired");
    expect(gone.logger.lines[0]?.extra).toEqual({
      security: true,
      pool: "web",
      activationId: gone.current,
      reason: "gone",
      issued: 3,
      action: "retired",
    });
    expect(gone.metrics.named("SlotTheftDetected")).toEqual([]);

    const expired = await aPool({ issued: 3, registered: 3 });
    expired.clock.advance(DAY);
    expect(await expired.healer.heal("web", expired.current)).toBe("retired");
    expect(expired.logger.lines[0]?.extra).toMatchObject({ reason: "expired" });
  });

  it("checks the standby against its own count", async () => {
    const fx = await aPool({ issued: 10, registered: 10 });
    const standby = await fx.make();
    for (let i = 0; i < 10; i++) fx.activations.register(standby);
    const row = fx.store.rows.get("web")!;
    row.links = [
      ...row.links,
      { activationId: standby, issued: 2, limit: 10, expiresAt: fx.clock.now() + DAY },
    ];
    expect(await fx.healer.heal("web", standby)).toBe("retired");
    expect(fx.logger.lines[0]).toMatchObject({
      message: SLOT_THEFT_MESSAGE,
      extra: { activationId: standby, issued: 2, registrationsCount: 10 },
    });
    expect(fx.store.rows.get("web")?.links[1]).toMatchObject({ issued: 10 });
  });

  it("says already-retired when the pool moved past it between the read and the retire", async () => {
    const fx = await aPool();
    fx.store.retire = async () => false;
    expect(await fx.healer.heal("web", fx.current)).toBe("already-retired");
    expect(fx.logger.lines[0]?.extra).toMatchObject({ action: "already rotated" });
  });

  it("asks SSM once per activation per window, however many claims arrive, even at once", async () => {
    const fx = await aPool({ issued: 4, registered: 4 });
    const verdicts = await Promise.all([1, 2, 3].map(() => fx.healer.heal("web", fx.current)));
    expect(verdicts).toEqual(["unconfirmed", "unconfirmed", "unconfirmed"]);
    fx.clock.advance(CHECK_TTL_MS - 1);
    expect(await fx.healer.heal("web", fx.current)).toBe("unconfirmed");
    expect(fx.reader.calls).toBe(1);
    // The window over, a new claim is checked again: SSM now says it is full.
    for (let i = 0; i < 6; i++) fx.activations.register(fx.current);
    fx.clock.advance(1);
    expect(await fx.healer.heal("web", fx.current)).toBe("retired");
    expect(fx.reader.calls).toBe(2);
    // Retired: a later claim is about an activation the pool no longer... still names until the
    // next vend, but the remembered verdict answers without SSM and without a second WARN.
    expect(await fx.healer.heal("web", fx.current)).toBe("retired");
    expect(fx.reader.calls).toBe(2);
    expect(fx.metrics.named("RefusedPairs")).toHaveLength(1);
  });

  it("remembers a bounded number of checks (the oldest is forgotten first)", async () => {
    const fx = await aPool({ issued: 4, registered: 4 });
    const ids: string[] = [];
    for (let i = 0; i < 65; i++) {
      const id = await fx.make();
      ids.push(id);
      makeCurrent(fx.store, id);
      await fx.healer.heal("web", id);
    }
    expect(fx.reader.calls).toBe(65);
    makeCurrent(fx.store, ids[0]!);
    await fx.healer.heal("web", ids[0]!); // forgotten: asked again
    expect(fx.reader.calls).toBe(66);
    makeCurrent(fx.store, ids[64]!);
    await fx.healer.heal("web", ids[64]!); // remembered
    expect(fx.reader.calls).toBe(66);
  });

  it("does not remember a check that failed: the next claim asks again", async () => {
    const fx = await aPool();
    const status = fx.reader.status.bind(fx.reader);
    fx.reader.status = async () => {
      fx.reader.calls++;
      throw new Error("throttled");
    };
    await expect(fx.healer.heal("web", fx.current)).rejects.toThrow("throttled");
    fx.reader.status = status;
    expect(await fx.healer.heal("web", fx.current)).toBe("retired");
    expect(fx.reader.calls).toBe(2);
  });

  it("a check that fails late forgets only itself, not a newer check of the same activation", async () => {
    const fx = await aPool({ issued: 3, registered: 3 }); // SSM still takes registrations: unconfirmed
    const status = fx.reader.status.bind(fx.reader);
    let fail!: (error: Error) => void;
    fx.reader.status = () => {
      fx.reader.calls++;
      return new Promise((_, reject) => (fail = reject));
    };
    const slow = fx.healer.heal("web", fx.current);
    await Promise.resolve();
    fx.clock.advance(CHECK_TTL_MS); // the slow check is out of its window: the next claim checks anew
    fx.reader.status = status;
    expect(await fx.healer.heal("web", fx.current)).toBe("unconfirmed");
    fail(new Error("throttled"));
    await expect(slow).rejects.toThrow("throttled");
    expect(await fx.healer.heal("web", fx.current)).toBe("unconfirmed"); // remembered: no third call
    expect(fx.reader.calls).toBe(2);
  });

  it("names its WARN as a security event, as every security line does", () => {
    expect(REFUSED_PAIR_MESSAGE).toMatch(/^security: /);
  });
});

describe("refusalReason", () => {
  const base = {
    activationId: "a",
    registrationLimit: 10,
    registrationsCount: 9,
    expiresAt: 1_000,
    expired: false,
  };
  it("is gone, expired or full exactly at SSM's boundaries", () => {
    expect(refusalReason(undefined, 0)).toBe("gone");
    expect(refusalReason(base, 999)).toBeUndefined();
    expect(refusalReason(base, 1_000)).toBe("expired");
    expect(refusalReason({ ...base, expired: true }, 0)).toBe("expired");
    expect(refusalReason({ ...base, registrationsCount: 10 }, 0)).toBe("full");
    expect(refusalReason({ ...base, registrationsCount: 11 }, 0)).toBe("full");
  });
});
