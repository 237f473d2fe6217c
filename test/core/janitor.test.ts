import { describe, expect, it } from "vitest";
import type { ActivationRecord, ManagedNode, PoolRow } from "../../src/core/inventory";
import {
  DEFAULT_DUPLICATE_DAYS,
  Janitor,
  PARAMETER_GRACE_MS,
  classifyActivations,
  classifyParameters,
  planHygiene,
  tierHeadroomPercent,
  type ActivationEntry,
} from "../../src/core/janitor";
import { parsePools, type PoolsFileInput } from "../../src/core/pool-config";
import type { Link } from "../../src/core/ports";
import { SLOT_THEFT_MESSAGE } from "../../src/core/slot-theft";
import { TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "../../src/core/vend-policy";
import {
  CapturingLogger,
  FakeClock,
  InMemoryActivations,
  InMemoryNodes,
  InMemoryParameters,
  InMemoryPoolStore,
  RecordingMetrics,
} from "../support/fakes";

/**
 * The janitor's verdicts, one rule at a time, on in-memory inventories: what it keeps, what it
 * deletes and when, what it counts as slot theft, and what fleet hygiene does to which node.
 * test/integration/janitor.test.ts runs the same code on the AWS adapters against the emulator.
 */

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const LEASE_MS = 30_000;
const OPTIONS = { deployment: "test", leaseMs: LEASE_MS };

function anActivation(
  id: string,
  overrides: Partial<ActivationRecord> & { pool?: string; generation?: string; deployment?: string } = {},
): ActivationRecord {
  const { pool = "web", generation = "1", deployment = "test", ...record } = overrides;
  return {
    activationId: id,
    iamRole: "SSMServiceRole",
    registrationLimit: 10,
    registrationsCount: 0,
    expiresAt: NOW + DAY,
    expired: false,
    createdAt: NOW - HOUR,
    tags: { [TAG_DEPLOYMENT]: deployment, [TAG_POOL]: pool, [TAG_GENERATION]: generation },
    ...record,
  };
}

/** One of a pool row's activations: 10 slots, `issued` of them handed out, expiring in a day. */
const link = (activationId: string, issued = 0): Link => ({
  activationId,
  limit: 10,
  issued,
  expiresAt: NOW + DAY,
});

const aRow = (overrides: Partial<PoolRow> = {}): PoolRow => ({
  pool: "web",
  generation: 3,
  links: [link("current", 4)],
  ...overrides,
});

/** The default row with a standby `next` behind its current activation. */
const withStandby = (standby: Link = link("next")) => aRow({ links: [...aRow().links, standby] });

function classifyOne(activation: ActivationRecord, rows: readonly PoolRow[] = [aRow()]): ActivationEntry {
  return classifyActivations(rows, [activation], OPTIONS, NOW)[0]!;
}

describe("classifyActivations", () => {
  it("never touches another deployment's activation, and names no pool for it", () => {
    const entry = classifyOne(anActivation("current", { deployment: "other", expired: true }));
    expect(entry).toEqual({
      activation: expect.anything(),
      state: "foreign",
      action: "keep",
      reason: "not created by this deployment",
    });
  });

  it("deletes a revoked activation at once, even one the row still names", () => {
    const entry = classifyOne(anActivation("current", { generation: "3" }), [
      aRow({ revokedActivationId: "current" }),
    ]);
    expect(entry).toMatchObject({ state: "revoked", action: "delete", reason: "revoked by an operator" });
    expect(entry).toMatchObject({ pool: "web", generation: 3 });
  });

  it("keeps the pool's current activation with the pairs it has handed out", () => {
    expect(classifyOne(anActivation("current", { generation: "3", registrationsCount: 10 }))).toEqual({
      activation: expect.anything(),
      pool: "web",
      generation: 3,
      state: "current",
      action: "keep",
      reason: "the pool hands it out",
      issued: 4,
    });
    // A row that has never reserved a slot counts none: every activation has its count.
    const fresh = classifyOne(anActivation("current"), [aRow({ links: [link("current")] })]);
    expect(fresh.state).toBe("current");
    expect(fresh).toHaveProperty("issued", 0);
  });

  it("keeps the standby as the pool's next activation, with its count", () => {
    const entry = classifyOne(anActivation("next", { generation: "4" }), [withStandby()]);
    expect(entry).toMatchObject({
      state: "standby",
      action: "keep",
      reason: "the pool's next activation",
      issued: 0,
    });
  });

  it("counts an activation as expired from SSM's flag or from its date, whichever comes first", () => {
    const standby = (record: Partial<ActivationRecord>) =>
      classifyOne(anActivation("next", { generation: "4", ...record }), [withStandby()]);
    expect(standby({ expired: true })).toMatchObject({
      state: "expired",
      action: "delete",
      reason: "an idle pool's standby, expired unused",
    });
    expect(standby({ expiresAt: NOW }).state).toBe("expired");
    expect(standby({ expiresAt: NOW + 1 }).state).toBe("standby");
  });

  describe("an activation the pool row does not name", () => {
    it("is orphaned when its generation is the pool's or newer: deleted once older than the lease", () => {
      const orphan = (generation: string, age: number, record: Partial<ActivationRecord> = {}) =>
        classifyOne(anActivation("crashed", { generation, createdAt: NOW - age, ...record }));
      expect(orphan("3", LEASE_MS + 1)).toMatchObject({
        state: "orphaned",
        action: "delete",
        reason: "its rotation never committed",
      });
      expect(orphan("4", LEASE_MS + 1)).toMatchObject({ state: "orphaned", action: "delete" });
      // Within the lease its rotation may still commit.
      expect(orphan("4", LEASE_MS)).toMatchObject({
        state: "orphaned",
        action: "keep",
        reason: "younger than the lease; may still commit",
      });
      // ... unless nothing can register with it any more.
      expect(orphan("4", 0, { expired: true })).toMatchObject({ state: "orphaned", action: "delete" });
    });

    it("is orphaned when its pool has no row, or its generation tag is not a number", () => {
      const old = { createdAt: NOW - HOUR };
      expect(classifyOne(anActivation("a", { pool: "gone", ...old }))).toMatchObject({
        state: "orphaned",
        pool: "gone",
        generation: 1,
      });
      const garbled = classifyOne(anActivation("b", { generation: "x", ...old }));
      expect(garbled).toMatchObject({ state: "orphaned", action: "delete" });
      expect(garbled).not.toHaveProperty("generation");
    });

    it("is spent when an older generation: kept while its pairs may still register, deleted when full or expired", () => {
      const spent = (record: Partial<ActivationRecord>) =>
        classifyOne(anActivation("old", { generation: "2", ...record }));
      expect(spent({ registrationsCount: 9 })).toMatchObject({
        state: "spent",
        action: "keep",
        reason: "pairs handed out may still register until it expires",
      });
      expect(spent({ registrationsCount: 10 })).toMatchObject({
        state: "spent",
        action: "delete",
        reason: "every slot is registered",
      });
      expect(spent({ expiresAt: NOW })).toMatchObject({
        state: "expired",
        action: "delete",
        reason: "expired",
      });
    });

    it("names no pool when the activation carries no pool tag", () => {
      const untagged = anActivation("u", { createdAt: NOW - HOUR });
      const { [TAG_POOL]: _pool, ...tags } = untagged.tags;
      const entry = classifyOne({ ...untagged, tags });
      expect(entry.state).toBe("orphaned");
      expect(entry).not.toHaveProperty("pool");
    });
  });
});

describe("classifyParameters", () => {
  const GRACE = 15 * MINUTE;
  const parameter = (activationId: string, lastModifiedAt = NOW - HOUR) => ({
    name: `/activation-broker/web/${activationId}`,
    pool: "web",
    activationId,
    lastModifiedAt,
  });
  const classify = (
    parameters: ReturnType<typeof parameter>[],
    activations: ActivationRecord[],
    rows: PoolRow[] = [aRow()],
  ) => classifyParameters(parameters, classifyActivations(rows, activations, OPTIONS, NOW), rows, NOW, GRACE);

  it("deletes a parameter whose activation is gone, once older than the grace period", () => {
    const [old, young] = classify(
      [parameter("gone-1", NOW - GRACE - 1), parameter("gone-2", NOW - GRACE)],
      [],
    );
    expect(old).toMatchObject({
      state: "dangling",
      action: "delete",
      reason: "its activation no longer exists",
    });
    expect(young).toMatchObject({
      state: "dangling",
      action: "keep",
      reason: "younger than the grace period",
    });
  });

  it("goes with its activation when that is deleted, with the activation's state and reason", () => {
    const [entry] = classify(
      [parameter("revoked")],
      [anActivation("revoked")],
      [aRow({ revokedActivationId: "revoked" })],
    );
    expect(entry).toMatchObject({ state: "revoked", action: "delete", reason: "revoked by an operator" });
  });

  it("stays while its activation is live", () => {
    const [entry] = classify([parameter("current")], [anActivation("current", { generation: "3" })]);
    expect(entry).toMatchObject({ state: "current", action: "keep", reason: "the pool hands it out" });
  });

  it("of a spent activation goes once the pool has been past it for the grace period", () => {
    const current = (age: number) => anActivation("current", { generation: "3", createdAt: NOW - age });
    // The spent activation's parameter was written long ago; what counts is when the pool moved on.
    const spent = anActivation("old", { generation: "2", createdAt: NOW - DAY });
    const [past] = classify([parameter("old", NOW - DAY)], [spent, current(GRACE + 1)]);
    expect(past).toMatchObject({
      state: "spent",
      action: "delete",
      reason: "superseded: the broker never hands it out again",
    });
    const [within] = classify([parameter("old", NOW - DAY)], [spent, current(GRACE)]);
    expect(within).toMatchObject({
      state: "spent",
      action: "keep",
      reason: "superseded within the grace period",
    });
  });

  it("of a spent activation counts from its own pool's current activation, not another pool's", () => {
    const other = anActivation("db-current", { pool: "db", generation: "1", createdAt: NOW - DAY });
    const current = anActivation("current", { generation: "3", createdAt: NOW - GRACE });
    const spent = anActivation("old", { generation: "2", createdAt: NOW - DAY });
    const rows = [aRow({ pool: "db", links: [link("db-current", 4)], generation: 1 }), aRow()];
    expect(classify([parameter("old", NOW - DAY)], [other, spent, current], rows)[0]!.action).toBe("keep");
  });

  it("of a spent activation falls back to its own date when the pool's current activation is not listed", () => {
    const spent = anActivation("old", { generation: "2" });
    expect(classify([parameter("old", NOW - GRACE - 1)], [spent])[0]!.action).toBe("delete");
    expect(classify([parameter("old", NOW - GRACE)], [spent])[0]!.action).toBe("keep");
  });
});

describe("planHygiene", () => {
  const aNode = (id: string, overrides: Partial<ManagedNode> = {}): ManagedNode => ({
    instanceId: id,
    computerName: "host-a",
    pingStatus: "Online",
    registeredAt: NOW - 10 * DAY,
    lastPingAt: NOW,
    pool: "web",
    hasNameTag: false,
    ...overrides,
  });
  const lost = (days: number, extra: number = 0): Partial<ManagedNode> => ({
    pingStatus: "ConnectionLost",
    lastPingAt: NOW - days * DAY - extra,
  });
  const poolsWith = (hygiene?: NonNullable<PoolsFileInput["pools"]>[string]["hygiene"]) =>
    parsePools({ pools: { web: { ...(hygiene && { hygiene }) } } }, { iamRole: "SSMServiceRole" });

  it("marks the older registrations of one host (by name, ignoring case) as duplicates of the newest", () => {
    const entries = planHygiene(
      [
        aNode("mi-old", { registeredAt: NOW - 3 * DAY }),
        aNode("mi-new", { computerName: "HOST-A", registeredAt: NOW - DAY }),
        aNode("mi-other", { computerName: "host-b" }),
        aNode("mi-anonymous", { computerName: undefined }),
      ],
      poolsWith(),
      NOW,
    );
    const byId = Object.fromEntries(entries.map((e) => [e.node.instanceId, e]));
    expect(byId["mi-old"]!.duplicateOf).toBe("mi-new");
    expect(byId["mi-new"]).not.toHaveProperty("duplicateOf");
    expect(byId["mi-other"]).not.toHaveProperty("duplicateOf");
    expect(byId["mi-anonymous"]).not.toHaveProperty("duplicateOf");
    expect(byId["mi-old"]!.pool).toBe("web");
    // A node whose activation carried no pool tag is attributed to none.
    const [unpooled] = planHygiene([aNode("mi-x", { pool: undefined })], poolsWith(), NOW);
    expect(unpooled).not.toHaveProperty("pool");
    expect(entries.every((e) => e.actions.length === 0)).toBe(true);
  });

  it("finds the newest registration wherever it is listed", () => {
    const entries = planHygiene(
      [aNode("mi-new", { registeredAt: NOW - DAY }), aNode("mi-old", { registeredAt: NOW - 3 * DAY })],
      poolsWith(),
      NOW,
    );
    expect(entries.map((e) => e.duplicateOf)).toEqual([undefined, "mi-new"]);
  });

  it("takes a node without a registration date as the oldest of its host", () => {
    const entries = planHygiene(
      [aNode("mi-undated", { registeredAt: undefined }), aNode("mi-dated")],
      poolsWith(),
      NOW,
    );
    expect(entries[0]!.duplicateOf).toBe("mi-dated");
  });

  it("counts whole days of lost connection, for ConnectionLost nodes only", () => {
    const [a, b, c] = planHygiene(
      [
        aNode("a", lost(2, DAY - 1)),
        aNode("b", { lastPingAt: NOW - 5 * DAY }),
        aNode("c", { pingStatus: "ConnectionLost", lastPingAt: undefined }),
      ],
      poolsWith(),
      NOW,
    );
    expect(a!.lostForDays).toBe(2);
    expect(b).not.toHaveProperty("lostForDays");
    expect(c).not.toHaveProperty("lostForDays");
  });

  describe("scheduled, by the pool's hygiene settings", () => {
    const twoOfAHost = (older: Partial<ManagedNode>) => [
      aNode("mi-old", { registeredAt: NOW - 3 * DAY, ...older }),
      aNode("mi-new", { registeredAt: NOW - DAY }),
    ];

    it("deregisters an older duplicate lost for longer than deregisterDuplicatesAfterDays", () => {
      const pools = poolsWith({ deregisterDuplicatesAfterDays: 3 });
      expect(planHygiene(twoOfAHost(lost(3, 1)), pools, NOW)[0]!.actions).toEqual(["deregister"]);
      expect(planHygiene(twoOfAHost(lost(3)), pools, NOW)[0]!.actions).toEqual([]);
      // The newest registration of a host is never deregistered, however long it is lost.
      const [, newest] = planHygiene(
        [
          aNode("mi-old", { registeredAt: NOW - 3 * DAY }),
          aNode("mi-new", { registeredAt: NOW - DAY, ...lost(30) }),
        ],
        pools,
        NOW,
      );
      expect(newest!.actions).toEqual([]);
    });

    it("never deregisters a node that is not ConnectionLost, however old its last ping", () => {
      const pools = poolsWith({ deregisterDuplicatesAfterDays: 1 });
      const inactive = twoOfAHost({ pingStatus: "Inactive", lastPingAt: NOW - 30 * DAY });
      expect(planHygiene(inactive, pools, NOW)[0]!.actions).toEqual([]);
      const neverPinged = twoOfAHost({ pingStatus: "ConnectionLost", lastPingAt: undefined });
      expect(planHygiene(neverPinged, pools, NOW)[0]!.actions).toEqual([]);
    });

    it("leaves duplicates alone when the pool does not ask, or the node's pool is not configured", () => {
      expect(planHygiene(twoOfAHost(lost(30)), poolsWith(), NOW)[0]!.actions).toEqual([]);
      const elsewhere = twoOfAHost({ ...lost(30), pool: "gone" });
      expect(
        planHygiene(elsewhere, poolsWith({ deregisterDuplicatesAfterDays: 1 }), NOW)[0]!.actions,
      ).toEqual([]);
    });

    it("tags a node with its host name when the pool asks, unless it has a Name or no host name", () => {
      const pools = poolsWith({ nameTag: true });
      const entries = planHygiene(
        [
          aNode("mi-1", { computerName: "one" }),
          aNode("mi-2", { computerName: "two", hasNameTag: true }),
          aNode("mi-3", { computerName: undefined }),
        ],
        pools,
        NOW,
      );
      expect(entries.map((e) => e.actions)).toEqual([["tag-name"], [], []]);
      expect(planHygiene([aNode("mi-1")], poolsWith({ nameTag: false }), NOW)[0]!.actions).toEqual([]);
    });

    it("deregisters rather than tags a node that is both", () => {
      const pools = poolsWith({ nameTag: true, deregisterDuplicatesAfterDays: 1 });
      const [older, newer] = planHygiene(twoOfAHost(lost(2)), pools, NOW);
      expect(older!.actions).toEqual(["deregister"]);
      expect(newer!.actions).toEqual(["tag-name"]);
    });
  });

  describe("on demand, by the operator's selection", () => {
    const fleet = [
      aNode("mi-old", { registeredAt: NOW - 3 * DAY, ...lost(DEFAULT_DUPLICATE_DAYS, 1) }),
      aNode("mi-new", { registeredAt: NOW - DAY }),
      aNode("mi-stale", { computerName: "host-b", ...lost(10, 1) }),
    ];
    const deregistered = (selection: { staleDays?: number; duplicates?: boolean }) =>
      planHygiene(fleet, poolsWith({ deregisterDuplicatesAfterDays: 365 }), NOW, selection)
        .filter((e) => e.actions.includes("deregister"))
        .map((e) => e.node.instanceId);

    it("deregisters duplicates lost for more than a day by default, or than --stale days", () => {
      expect(deregistered({ duplicates: true })).toEqual(["mi-old"]);
      expect(deregistered({ duplicates: true, staleDays: 2 })).toEqual([]);
    });

    it("deregisters any node lost for longer than --stale days, duplicate or not", () => {
      expect(deregistered({ staleDays: 10 })).toEqual(["mi-stale"]);
      expect(deregistered({ staleDays: 1 })).toEqual(["mi-old", "mi-stale"]);
    });

    it("deregisters nothing when the selection names neither, whatever the pool's settings", () => {
      expect(deregistered({})).toEqual([]);
    });
  });
});

describe("tierHeadroomPercent", () => {
  it("is the standard tier's free share, to one decimal, never below zero", () => {
    expect(tierHeadroomPercent(0)).toBe(100);
    expect(tierHeadroomPercent(333)).toBe(66.7);
    expect(tierHeadroomPercent(1000)).toBe(0);
    expect(tierHeadroomPercent(1500)).toBe(0);
  });
});

/** A janitor over in-memory inventories; `calls` records the order of every read and delete. */
function aJanitor(pools: PoolsFileInput["pools"] = { web: {} }, parameterGraceMs?: number) {
  const clock = new FakeClock(NOW);
  const poolInventory = new InMemoryPoolStore();
  const activations = new InMemoryActivations(clock);
  const secrets = new InMemoryParameters();
  const nodes = new InMemoryNodes();
  const logger = new CapturingLogger();
  const metrics = new RecordingMetrics();
  const calls: string[] = [];
  const record = <T extends object>(target: T, name: string, methods: (keyof T & string)[]) => {
    for (const method of methods) {
      const original = (target[method] as (...a: unknown[]) => Promise<unknown>).bind(target);
      (target as Record<string, unknown>)[method] = (...args: unknown[]) => {
        calls.push(`${name}.${method}`);
        return original(...args);
      };
    }
  };
  record(activations, "activations", ["list", "delete"]);
  record(poolInventory, "pools", ["list", "retire"]);
  record(secrets, "parameters", ["list", "delete"]);
  const janitor = new Janitor({
    pools: parsePools({ pools }, { iamRole: "SSMServiceRole" }),
    poolInventory,
    activations,
    secrets,
    nodes,
    clock,
    logger,
    metrics,
    options: {
      deployment: "test",
      leaseMs: LEASE_MS,
      ...(parameterGraceMs !== undefined && { parameterGraceMs }),
    },
  });
  /** An activation made as the broker makes it, with its code's parameter. */
  const made = async (generation: number, record: Partial<ActivationRecord> = {}) => {
    const { activationId } = await activations.create({
      pool: "web",
      generation,
      iamRole: "SSMServiceRole",
      registrationLimit: 10,
      expiresAt: NOW + DAY,
      tags: { [TAG_DEPLOYMENT]: "test", [TAG_POOL]: "web", [TAG_GENERATION]: String(generation) },
    });
    const created = activations.created.find((a) => a.activationId === activationId)!;
    Object.assign(created, record);
    secrets.add("web", activationId, created.createdAt);
    return activationId;
  };
  /**
   * The web pool's row: generation 2, handing out `activationId`, `issued` of its 10 slots, with
   * the activations `next` behind it.
   */
  const serving = (activationId: string, issued: number, ...next: Link[]) =>
    poolInventory.rows.set("web", {
      pool: "web",
      generation: 2,
      links: [link(activationId, issued), ...next],
    });
  return {
    janitor,
    clock,
    poolInventory,
    activations,
    secrets,
    nodes,
    logger,
    metrics,
    calls,
    made,
    serving,
  };
}

describe("Janitor.cleanup", () => {
  async function aMixedDeployment() {
    const fx = aJanitor();
    const spentFull = await fx.made(1, { registrationsCount: 10 });
    const current = await fx.made(2, { registrationsCount: 3 });
    const orphan = await fx.made(3);
    fx.serving(current, 5);
    fx.clock.advance(HOUR);
    return { ...fx, spentFull, current, orphan };
  }

  it("reads SSM's activations before the pool rows, so a burst is never taken for theft", async () => {
    const fx = aJanitor();
    await fx.janitor.survey();
    expect(fx.calls).toEqual(["activations.list", "pools.list", "parameters.list"]);
  });

  it("as a dry run reports what it would delete and deletes nothing", async () => {
    const fx = await aMixedDeployment();
    const report = await fx.janitor.cleanup({ apply: false });
    expect(report.applied).toBe(false);
    expect(report.deletedActivations.map((e) => e.activation.activationId).sort()).toEqual(
      [fx.spentFull, fx.orphan].sort(),
    );
    expect(report.deletedParameters.map((e) => e.parameter.activationId).sort()).toEqual(
      [fx.spentFull, fx.orphan].sort(),
    );
    expect(fx.activations.live()).toHaveLength(3);
    expect(fx.secrets.items).toHaveLength(3);
    expect(fx.calls.filter((c) => c.endsWith(".delete"))).toEqual([]);
    expect(fx.metrics.named("JanitorDeletions")).toEqual([]);
  });

  it("applied, deletes every parameter before any activation, and counts the deletions", async () => {
    const fx = await aMixedDeployment();
    const report = await fx.janitor.cleanup({ apply: true });
    expect(report.applied).toBe(true);
    expect(report.failures).toEqual([]);
    expect(fx.activations.live().map((a) => a.activationId)).toEqual([fx.current]);
    expect(fx.secrets.items.map((p) => p.activationId)).toEqual([fx.current]);
    const deletes = fx.calls.filter((c) => c.endsWith(".delete"));
    expect(deletes).toEqual([
      "parameters.delete",
      "parameters.delete",
      "activations.delete",
      "activations.delete",
    ]);
    expect(fx.metrics.named("JanitorDeletions")).toEqual([
      { kind: "count", name: "JanitorDeletions", value: 4 },
    ]);
    const logged = fx.logger.lines.filter((l) => l.message === "janitor deleted an activation");
    expect(logged.map((l) => l.extra)).toContainEqual({
      activationId: fx.orphan,
      pool: "web",
      state: "orphaned",
      reason: "its rotation never committed",
    });
  });

  it("goes on past a failed delete, reports it, and keeps the activation whose code it could not delete", async () => {
    const fx = await aMixedDeployment();
    fx.secrets.beforeDelete = (name) => {
      if (name.endsWith(fx.orphan))
        throw Object.assign(new Error("rate exceeded"), { name: "ThrottlingException" });
    };
    const failedActivation = fx.spentFull;
    const deleteActivation = fx.activations.delete.bind(fx.activations);
    fx.activations.delete = async (id) => {
      if (id === failedActivation) throw new Error("SSM down");
      return deleteActivation(id);
    };
    const report = await fx.janitor.cleanup({ apply: true });
    expect(report.failures).toEqual([
      { resource: `/activation-broker/web/${fx.orphan}`, error: "ThrottlingException: rate exceeded" },
      { resource: fx.spentFull, error: "Error: SSM down" },
    ]);
    expect(report.deletedParameters.map((e) => e.parameter.activationId)).toEqual([fx.spentFull]);
    // The orphan's activation is still deleted: its parameter stays for the next run.
    expect(report.deletedActivations.map((e) => e.activation.activationId)).toEqual([fx.orphan]);
    expect(fx.metrics.named("JanitorDeletions")[0]!.value).toBe(2);
    expect(fx.logger.lines.filter((l) => l.level === "error")).toEqual([
      {
        level: "error",
        message: "janitor action failed",
        extra: {
          resource: `/activation-broker/web/${fx.orphan}`,
          error: "ThrottlingException: rate exceeded",
        },
      },
      {
        level: "error",
        message: "janitor action failed",
        extra: { resource: fx.spentFull, error: "Error: SSM down" },
      },
    ]);
  });

  it("reports a thrown non-error as its text", async () => {
    const fx = await aMixedDeployment();
    fx.secrets.beforeDelete = () => {
      throw "plain string";
    };
    const report = await fx.janitor.cleanup({ apply: true });
    expect(report.failures[0]).toMatchObject({ error: "plain string" });
  });

  it("publishes each pool's slots left, never below zero, and nothing for a pool without an activation", async () => {
    const fx = aJanitor({ web: {}, db: {}, idle: {} });
    fx.poolInventory.rows.set("web", { pool: "web", generation: 1, links: [link("a", 4)] });
    fx.poolInventory.rows.set("db", { pool: "db", generation: 1, links: [link("b", 12)] });
    fx.poolInventory.rows.set("new", { pool: "new", generation: 1, links: [link("c")] });
    fx.poolInventory.rows.set("idle", { pool: "idle", generation: 0, links: [] });
    await fx.janitor.cleanup({ apply: false });
    expect(fx.metrics.named("SlotsLeft")).toEqual([
      { kind: "gauge", name: "SlotsLeft", value: 6, dimensions: { Pool: "web" } },
      { kind: "gauge", name: "SlotsLeft", value: 0, dimensions: { Pool: "db" } },
      { kind: "gauge", name: "SlotsLeft", value: 10, dimensions: { Pool: "new" } },
    ]);
  });

  describe("slot theft", () => {
    it("retires a live activation with more registrations than pairs handed out, when applied", async () => {
      const fx = aJanitor();
      const current = await fx.made(2, { registrationsCount: 6 });
      // Nobody was handed a pair of the standby, yet a node registered with it.
      const standby = await fx.made(3, { registrationsCount: 1 });
      fx.serving(current, 5, link(standby, 0));
      const report = await fx.janitor.cleanup({ apply: true });
      expect(report.slotThefts).toEqual([
        { pool: "web", activationId: current, issued: 5, registrationsCount: 6, retired: true },
        { pool: "web", activationId: standby, issued: 0, registrationsCount: 1, retired: true },
      ]);
      // Retired: no slot of either is reservable, so the next vend rotates. Neither is deleted.
      const row = fx.poolInventory.rows.get("web")!;
      expect(row.links[0]!.issued).toBe(row.links[0]!.limit);
      expect(row.links[1]).toBeUndefined();
      expect(fx.activations.live()).toHaveLength(2);
      expect(fx.metrics.named("SlotTheftDetected")).toHaveLength(2);
      expect(fx.metrics.named("SlotTheftDetected")[0]).toEqual({
        kind: "count",
        name: "SlotTheftDetected",
        value: 1,
        dimensions: { Pool: "web" },
      });
      const warning = fx.logger.lines.find((l) => l.level === "warn");
      expect(warning?.message).toBe(SLOT_THEFT_MESSAGE);
      expect(warning?.extra).toEqual({
        security: true,
        pool: "web",
        activationId: current,
        issued: 5,
        registrationsCount: 6,
        action: "retired",
        detectedBy: "janitor",
      });
    });

    it("reports but retires nothing on a dry run", async () => {
      const fx = aJanitor();
      const current = await fx.made(2, { registrationsCount: 6 });
      fx.serving(current, 5);
      const report = await fx.janitor.cleanup({ apply: false });
      expect(report.slotThefts).toEqual([
        { pool: "web", activationId: current, issued: 5, registrationsCount: 6, retired: false },
      ]);
      expect(fx.calls).not.toContain("pools.retire");
      expect(fx.logger.lines.find((l) => l.level === "warn")?.extra).toMatchObject({ action: "dry run" });
      expect(fx.metrics.named("SlotTheftDetected")).toHaveLength(1);
    });

    it("reports a theft whose retire failed as such, and records the failure for the next run", async () => {
      const fx = aJanitor();
      const current = await fx.made(2, { registrationsCount: 6 });
      fx.serving(current, 5);
      fx.poolInventory.retire = async () => {
        throw Object.assign(new Error("throttled"), { name: "ThrottlingException" });
      };
      const report = await fx.janitor.cleanup({ apply: true });
      expect(report.slotThefts).toEqual([
        { pool: "web", activationId: current, issued: 5, registrationsCount: 6, retired: false },
      ]);
      expect(report.failures).toEqual([{ resource: current, error: "ThrottlingException: throttled" }]);
      expect(fx.logger.lines.find((l) => l.message === SLOT_THEFT_MESSAGE)?.extra).toMatchObject({
        action: "retire failed",
      });
      expect(fx.metrics.named("SlotTheftDetected")).toHaveLength(1);
    });

    it("takes as many registrations as pairs for honest use, and ignores activations that are not live", async () => {
      const fx = aJanitor();
      await fx.made(1, { registrationsCount: 10 }); // spent, and full
      const current = await fx.made(2, { registrationsCount: 5 });
      fx.serving(current, 5);
      // Another deployment's activation over its count is not ours to judge.
      await fx.activations.create({
        pool: "web",
        generation: 9,
        iamRole: "r",
        registrationLimit: 10,
        expiresAt: NOW + DAY,
        tags: { [TAG_DEPLOYMENT]: "other" },
      });
      fx.activations.register(fx.activations.created.at(-1)!.activationId);
      const report = await fx.janitor.cleanup({ apply: true });
      expect(report.slotThefts).toEqual([]);
      expect(fx.metrics.named("SlotTheftDetected")).toEqual([]);
    });

    it("reports a retire that failed, and goes on", async () => {
      const fx = aJanitor();
      const current = await fx.made(2, { registrationsCount: 6 });
      fx.serving(current, 5);
      fx.poolInventory.retire = () => Promise.reject(new Error("conditional check"));
      const report = await fx.janitor.cleanup({ apply: true });
      expect(report.slotThefts[0]!.retired).toBe(false);
      expect(report.failures).toEqual([{ resource: current, error: "Error: conditional check" }]);
    });
  });

  it("keeps a superseded code for the configured grace period", async () => {
    const fx = aJanitor({ web: {} }, HOUR);
    const spent = await fx.made(1);
    fx.clock.advance(30 * MINUTE);
    const current = await fx.made(2);
    fx.serving(current, 1);
    fx.clock.advance(HOUR);
    expect((await fx.janitor.cleanup({ apply: false })).deletedParameters).toEqual([]);
    fx.clock.advance(1);
    const later = await fx.janitor.cleanup({ apply: false });
    expect(later.deletedParameters.map((e) => e.parameter.activationId)).toEqual([spent]);
  });

  it("keeps a superseded code for 15 minutes by default", async () => {
    const fx = aJanitor();
    await fx.made(1);
    const current = await fx.made(2);
    fx.serving(current, 1);
    fx.clock.advance(15 * MINUTE);
    expect(PARAMETER_GRACE_MS).toBe(15 * MINUTE);
    expect((await fx.janitor.cleanup({ apply: false })).deletedParameters).toEqual([]);
    fx.clock.advance(1);
    expect((await fx.janitor.cleanup({ apply: false })).deletedParameters).toHaveLength(1);
  });
});

describe("Janitor.hygiene", () => {
  const host = (id: string, name: string, registeredDaysAgo: number, lostDays?: number): ManagedNode => ({
    instanceId: id,
    computerName: name,
    pool: "web",
    hasNameTag: false,
    registeredAt: NOW - registeredDaysAgo * DAY,
    ...(lostDays === undefined
      ? { pingStatus: "Online" as const, lastPingAt: NOW }
      : { pingStatus: "ConnectionLost" as const, lastPingAt: NOW - lostDays * DAY }),
  });

  async function aFleet() {
    const fx = aJanitor({ web: { hygiene: { nameTag: true, deregisterDuplicatesAfterDays: 2 } } });
    fx.poolInventory.rows.set("retired-pool", { pool: "retired-pool", generation: 1, links: [] });
    fx.nodes.nodes.push(host("mi-old", "a", 5, 3), host("mi-new", "a", 1), host("mi-b", "b", 1));
    fx.nodes.othersHybrid = 497;
    return fx;
  }

  it("attributes nodes to configured pools and to pools that only have a row", async () => {
    const fx = await aFleet();
    await fx.janitor.hygiene({ apply: false });
    expect(fx.nodes.askedPools).toEqual(expect.arrayContaining(["retired-pool", "web"]));
  });

  it("as a dry run plans and changes nothing, and still publishes the fleet gauges", async () => {
    const fx = await aFleet();
    const report = await fx.janitor.hygiene({ apply: false });
    expect(report).toMatchObject({
      applied: false,
      hybridNodes: 500,
      tagged: [],
      deregistered: [],
      failures: [],
    });
    expect(report.nodes.map((n) => n.actions)).toEqual([["deregister"], ["tag-name"], ["tag-name"]]);
    expect(fx.nodes.nodes).toHaveLength(3);
    expect(fx.nodes.tags.size).toBe(0);
    expect(fx.metrics.points).toEqual([
      { kind: "gauge", name: "ManagedNodes", value: 500 },
      { kind: "gauge", name: "TierHeadroomPercent", value: 50 },
    ]);
  });

  it("applied, deregisters duplicates, tags the rest with their host name, and logs each deregistration", async () => {
    const fx = await aFleet();
    const report = await fx.janitor.hygiene({ apply: true });
    expect(report.deregistered).toEqual(["mi-old"]);
    expect(report.tagged).toEqual(["mi-new", "mi-b"]);
    expect(fx.nodes.nodes.map((n) => n.instanceId)).toEqual(["mi-new", "mi-b"]);
    expect(Object.fromEntries(fx.nodes.tags)).toEqual({ "mi-new": { Name: "a" }, "mi-b": { Name: "b" } });
    expect(fx.logger.lines.filter((l) => l.level === "info")).toEqual([
      { level: "info", message: "janitor deregistered a managed node", extra: { instanceId: "mi-old" } },
    ]);
  });

  it("reports each failed write and goes on with the other nodes", async () => {
    const fx = await aFleet();
    fx.nodes.beforeWrite = (id) => {
      if (id !== "mi-b") throw new Error(`cannot touch ${id}`);
    };
    const report = await fx.janitor.hygiene({ apply: true });
    expect(report.deregistered).toEqual([]);
    expect(report.tagged).toEqual(["mi-b"]);
    expect(report.failures.map((f) => f.resource)).toEqual(["mi-old", "mi-new"]);
  });

  it("follows the operator's selection instead of the pool's settings", async () => {
    const fx = await aFleet();
    const report = await fx.janitor.hygiene({ apply: true, selection: { staleDays: 4 } });
    expect(report.deregistered).toEqual([]);
    expect(report.tagged).toEqual(["mi-old", "mi-new", "mi-b"]);
  });
});
