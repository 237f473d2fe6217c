import { describe, expect, it } from "vitest";
import { Admin } from "../../src/core/admin";
import {
  ActivationNotFoundError,
  InvalidPoolNameError,
  NothingToRevokeError,
  PoolNotFoundError,
} from "../../src/core/errors";
import { STANDARD_TIER_NODE_LIMIT } from "../../src/core/janitor";
import { currentOf, TAG_DEPLOYMENT } from "../../src/core/vend-policy";
import { InMemoryNodes } from "../support/fakes";
import { aVendor } from "../support/vendor-mother";

/**
 * The operator's use cases on in-memory fakes: what `status` shows, what `revoke` retires and
 * deletes (I8), and that `rotate` and `get` go through the vend itself.
 * test/cli/admin.test.ts runs them through the CLI against the emulated AWS.
 */

const FOREIGN_ID = "11111111-2222-4333-8444-555555555555";

function anAdmin(web: { standby?: boolean } = {}) {
  const fx = aVendor({ pools: { web: { registrationLimit: 5, ...web }, db: {} } });
  const nodes = new InMemoryNodes();
  const admin = new Admin({
    pools: fx.pools,
    poolInventory: fx.store,
    activations: fx.activations,
    secrets: { list: async () => [], delete: (pool, id) => fx.secrets.delete(pool, id) },
    nodes,
    clock: fx.clock,
    logger: fx.logger,
    deployment: "test",
    vendor: fx.vendor,
  });
  return { ...fx, nodes, admin };
}

describe("status", () => {
  it("shows every configured pool, in name order, and each pool's counts", async () => {
    const fx = anAdmin();
    const { pair } = await fx.vendor.vend("web");
    await fx.vendor.vend("web");
    fx.activations.register(pair.activationId);
    fx.nodes.othersHybrid = 7;
    const report = await fx.admin.status();
    expect(report.now).toBe(fx.clock.now());
    expect(report.hybridNodes).toBe(7);
    expect(report.tierLimit).toBe(STANDARD_TIER_NODE_LIMIT);
    expect(report.pools.map((p) => p.pool)).toEqual(["db", "default", "web"]);
    expect(report.pools[0]).toEqual({ pool: "db", configured: true, generation: 0, revoked: false });
    expect(report.pools[2]).toEqual({
      pool: "web",
      configured: true,
      generation: 1,
      activationId: pair.activationId,
      issued: 2,
      limit: 5,
      registrationsCount: 1,
      expiresAt: pair.expiresAt,
      revoked: false,
    });
  });

  it("shows a pool that has a row but is no longer configured", async () => {
    const fx = anAdmin();
    fx.store.rows.set("old", { pool: "old", generation: 4, links: [] });
    const report = await fx.admin.status("old");
    expect(report.pools).toEqual([{ pool: "old", configured: false, generation: 4, revoked: false }]);
  });

  it("shows one pool when asked, and refuses a name that is not a pool", async () => {
    const fx = anAdmin();
    expect((await fx.admin.status("web")).pools.map((p) => p.pool)).toEqual(["web"]);
    await expect(fx.admin.status("nope")).rejects.toBeInstanceOf(PoolNotFoundError);
    await expect(fx.admin.status("../etc")).rejects.toBeInstanceOf(InvalidPoolNameError);
  });

  it("shows a rotation's lease while it holds, and not after its deadline", async () => {
    const fx = anAdmin();
    await fx.vendor.vend("web");
    const row = fx.store.rows.get("web")!;
    row.leaseOwner = "rotator";
    row.leaseDeadline = fx.clock.now() + 1;
    expect((await fx.admin.status("web")).pools[0]!.lease).toEqual({
      owner: "rotator",
      until: row.leaseDeadline,
    });
    fx.clock.advance(1);
    expect((await fx.admin.status("web")).pools[0]).not.toHaveProperty("lease");
  });

  it("leaves out the registrations when SSM no longer knows the activation", async () => {
    const fx = anAdmin();
    const { pair } = await fx.vendor.vend("web");
    await fx.activations.delete(pair.activationId);
    expect((await fx.admin.status("web")).pools[0]).not.toHaveProperty("registrationsCount");
  });
});

describe("revoke (I8)", () => {
  it("by pool: retires the row first, then deletes the code and the activation, and logs a security line", async () => {
    const fx = anAdmin();
    const { pair } = await fx.vendor.vend("web");
    fx.activations.register(pair.activationId);
    const result = await fx.admin.revoke("web");
    expect(result).toEqual({
      activationId: pair.activationId,
      pool: "web",
      wasCurrent: true,
      registrationsCount: 1,
    });
    const row = fx.store.rows.get("web")!;
    expect(row.revokedActivationId).toBe(pair.activationId);
    expect(currentOf(row)!.issued).toBe(currentOf(row)!.limit);
    expect(fx.secrets.items.size).toBe(0);
    expect(fx.activations.live()).toEqual([]);
    expect(fx.logger.lines.at(-1)).toEqual({
      level: "warn",
      message: "security: activation revoked by an operator",
      extra: { security: true, activationId: pair.activationId, pool: "web", wasCurrent: true },
    });
    expect(fx.logger.text()).not.toContain(pair.activationCode);
    expect((await fx.admin.status("web")).pools[0]).toMatchObject({
      activationId: pair.activationId,
      revoked: true,
    });
    // The next vend rotates past it.
    expect((await fx.vendor.vend("web")).pair.activationId).not.toBe(pair.activationId);
    expect((await fx.admin.status("web")).pools[0]!.revoked).toBe(false);
  });

  it("acts on the pool and the activation it names, among several", async () => {
    const fx = anAdmin();
    await fx.vendor.vend("default");
    const { pair: db } = await fx.vendor.vend("db");
    const { pair: web } = await fx.vendor.vend("web");
    fx.activations.register(web.activationId);
    fx.activations.register(web.activationId);
    expect(await fx.admin.revoke("web")).toEqual({
      activationId: web.activationId,
      pool: "web",
      wasCurrent: true,
      registrationsCount: 2,
    });
    const byId = await fx.admin.revoke(db.activationId);
    expect(byId).toMatchObject({ pool: "db", wasCurrent: true, registrationsCount: 0 });
    expect(fx.store.rows.get("db")!.revokedActivationId).toBe(db.activationId);
  });

  it("takes a target as an activation id only when it is exactly one", async () => {
    const fx = anAdmin();
    const { pair } = await fx.vendor.vend("web");
    // Both are valid pool names that happen to contain an id: they are pool names, and unknown.
    await expect(fx.admin.revoke(`0${pair.activationId}`)).rejects.toBeInstanceOf(PoolNotFoundError);
    await expect(fx.admin.revoke(`${pair.activationId}0`)).rejects.toBeInstanceOf(PoolNotFoundError);
  });

  it("by id: revokes an activation the pool has moved past, which is no longer current", async () => {
    const fx = anAdmin();
    const { pair: first } = await fx.vendor.vend("web");
    await fx.admin.rotate("web");
    const result = await fx.admin.revoke(first.activationId);
    expect(result).toEqual({
      activationId: first.activationId,
      pool: "web",
      wasCurrent: false,
      registrationsCount: 0,
    });
    expect(fx.activations.live().map((a) => a.activationId)).not.toContain(first.activationId);
    expect(fx.store.rows.get("web")!.revokedActivationId).toBeUndefined();
  });

  it("by id: still retires the row when SSM has already lost the activation", async () => {
    const fx = anAdmin();
    const { pair } = await fx.vendor.vend("web");
    await fx.activations.delete(pair.activationId);
    expect(await fx.admin.revoke(pair.activationId)).toEqual({
      activationId: pair.activationId,
      pool: "web",
      wasCurrent: true,
      registrationsCount: 0,
    });
  });

  it("refuses another deployment's activation, and an id nobody knows", async () => {
    const fx = anAdmin();
    const { activationId } = await fx.activations.create({
      pool: "web",
      generation: 1,
      iamRole: "r",
      registrationLimit: 1,
      expiresAt: fx.clock.now() + 3_600_000,
      tags: { [TAG_DEPLOYMENT]: "other" },
    });
    await expect(fx.admin.revoke(activationId)).rejects.toBeInstanceOf(ActivationNotFoundError);
    expect(fx.activations.live()).toHaveLength(1);
    await expect(fx.admin.revoke(FOREIGN_ID)).rejects.toBeInstanceOf(ActivationNotFoundError);
  });

  it("refuses a pool with nothing to revoke, an unknown pool and a malformed name", async () => {
    const fx = anAdmin();
    fx.store.rows.set("old", { pool: "old", generation: 1, links: [] });
    await expect(fx.admin.revoke("web")).rejects.toBeInstanceOf(NothingToRevokeError);
    await expect(fx.admin.revoke("nope")).rejects.toBeInstanceOf(PoolNotFoundError);
    await expect(fx.admin.revoke("Not A Pool")).rejects.toBeInstanceOf(InvalidPoolNameError);
  });

  it("retires first: the row is retired before SSM is asked for anything or anything is deleted", async () => {
    const fx = anAdmin();
    const { pair } = await fx.vendor.vend("web");
    const calls: string[] = [];
    const spy = <T extends object>(target: T, name: string, method: keyof T & string) => {
      const original = (target[method] as (...args: unknown[]) => unknown).bind(target);
      Object.assign(target, {
        [method]: (...args: unknown[]) => (calls.push(`${name}.${method}`), original(...args)),
      });
    };
    spy(fx.store, "pools", "list");
    spy(fx.store, "pools", "retire");
    spy(fx.activations, "activations", "list");
    spy(fx.activations, "activations", "delete");
    spy(fx.secrets, "secrets", "delete");
    await fx.admin.revoke(pair.activationId);
    expect(calls).toEqual([
      "pools.list",
      "pools.retire",
      "activations.list",
      "secrets.delete",
      "activations.delete",
    ]);
  });

  it("by id: retires the pool's standby, so no replica hands it out when the current one runs out", async () => {
    const fx = anAdmin({ standby: true });
    const { pair: current } = await fx.vendor.vend("web");
    await fx.vendor.idle(); // the standby refill
    const standby = fx.store.rows.get("web")!.links[1]!.activationId;
    expect(standby).toBeDefined();
    const result = await fx.admin.revoke(standby);
    expect(result).toEqual({ activationId: standby, pool: "web", wasCurrent: true, registrationsCount: 0 });
    expect(currentOf(fx.store.rows.get("web"))).toMatchObject({ activationId: current.activationId });
    expect(fx.store.rows.get("web")!.links[1]).toBeUndefined();
    for (let i = 0; i < 8; i++) expect((await fx.vendor.vend("web")).pair.activationId).not.toBe(standby);
  });

  it("by pool: accepts a pool that only has a row left", async () => {
    const fx = anAdmin();
    const { pair } = await fx.vendor.vend("web");
    const row = fx.store.rows.get("web")!;
    fx.store.rows.set("old", { ...row, pool: "old" });
    expect((await fx.admin.revoke("old")).activationId).toBe(pair.activationId);
  });
});

describe("rotate and get", () => {
  it("rotate retires the current activation and vends from a fresh one", async () => {
    const fx = anAdmin();
    await fx.vendor.vend("db");
    const { pair: first } = await fx.vendor.vend("web");
    const result = await fx.admin.rotate("web");
    expect(result.previousActivationId).toBe(first.activationId);
    expect(result.activationId).not.toBe(first.activationId);
    const row = fx.store.rows.get("web")!;
    expect(currentOf(row)).toMatchObject({
      activationId: result.activationId,
      issued: 1,
      expiresAt: result.expiresAt,
    });
    // The old activation stays in SSM: pairs it handed out may still register.
    expect(fx.activations.live().map((a) => a.activationId)).toContain(first.activationId);
  });

  it("rotate on a pool that never vended makes its first activation", async () => {
    const fx = anAdmin();
    const result = await fx.admin.rotate("db");
    expect(result).not.toHaveProperty("previousActivationId");
    expect(fx.activations.live()).toHaveLength(1);
  });

  it("get takes a slot like any server, and checks the pool first", async () => {
    const fx = anAdmin();
    const pair = await fx.admin.get("web");
    expect(currentOf(fx.store.rows.get("web"))?.issued).toBe(1);
    expect(pair.activationCode).toBe(fx.activations.created[0]!.code);
    expect(() => fx.admin.get("nope")).toThrow(PoolNotFoundError);
    await expect(fx.admin.rotate("nope")).rejects.toBeInstanceOf(PoolNotFoundError);
  });
});
