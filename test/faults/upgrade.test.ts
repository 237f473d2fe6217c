/**
 * Upgrades: a previous release's vend path and today's, on one table of the emulated DynamoDB with
 * the emulated SSM, as a Lambda deployment's overlap (old and new containers serving at once) or a
 * rolling upgrade of standalone replicas runs them. Two previous releases, each frozen: 226589a
 * (./release-226589a: a standby, no queue) and 6698160 (./release-6698160: a queue as a list of
 * maps, the layout before the packed one).
 * - A pool row the old release wrote is served by the new code: it continues the old row's
 *   activation and standby (and queue), creating nothing it does not need.
 * - Side by side, in a burst, no activation is handed out more than its limit (I1), every pair
 *   registers a node with SSM, and no slot is handed out twice.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { parsePools } from "../../src/core/pool-config";
import { queuedOf } from "../../src/core/vend-policy";
import { Vendor } from "../../src/core/vend";
import { BackgroundRefill } from "../../src/core/standby-refill";
import { CapturingLogger } from "../support/fakes";
import { registerNode } from "../support/local";
import { TEST_ROLE, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { DynamoDbPoolStore as OldPoolStore } from "./release-226589a/aws/dynamodb-pool-store";
import { ParameterStoreSecrets as OldSecrets } from "./release-226589a/aws/parameter-store-secrets";
import { Vendor as Vendor226589a } from "./release-226589a/core/vend";
import { DynamoDbPoolStore as PoolStore6698160 } from "./release-6698160/aws/dynamodb-pool-store";
import { BackgroundRefill as BackgroundRefill6698160 } from "./release-6698160/core/standby-refill";
import { Vendor as Vendor6698160 } from "./release-6698160/core/vend";

interface Handed {
  readonly activationId: string;
  readonly activationCode: string;
  readonly slot?: number | undefined;
}

interface Process {
  vend(pool: string): Promise<Handed>;
  idle(): Promise<void>;
}

const RELEASES = ["226589a", "6698160"] as const;

/** The activations the row keeps after its standby: the queue (none without a row). */

describe.each(RELEASES)("upgrading a live deployment from %s (old and new code on one table)", (release) => {
  let aws: EmulatedAws;

  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });

  async function deployment(registrationLimit: number, maxActivationsPerHour = 100) {
    const tableName = await aws.newTable();
    const name = `d-${randomUUID().slice(0, 8)}`;
    const prefix = `/upgrade-test/${name}`;
    const pools = parsePools(
      { pools: { default: { registrationLimit, standby: true, maxActivationsPerHour } } },
      { iamRole: TEST_ROLE },
    );
    const common = {
      pools,
      activations: new SsmActivations(aws.ssm),
      clock: { now: () => Date.now() },
      sleeper: { sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)) },
      logger: new CapturingLogger(),
      options: { leaseMs: 30_000, rotationWaitMs: 20_000, deployment: name },
    };
    // Each is one process (its own caches), as each container or replica is.
    const oldProcess = (): Process => {
      if (release === "226589a") {
        return new Vendor226589a({
          ...common,
          store: new OldPoolStore(aws.dynamodb, tableName),
          secrets: new OldSecrets(aws.ssm, { prefix, kmsKeyId: "alias/aws/ssm" }),
        });
      }
      const vendor = new Vendor6698160({
        ...common,
        standbyRefill: new BackgroundRefill6698160(common.logger),
        store: new PoolStore6698160(aws.dynamodb, tableName),
        secrets: new ParameterStoreSecrets(aws.ssm, { prefix, kmsKeyId: "alias/aws/ssm" }),
      });
      return {
        vend: async (pool: string): Promise<Handed> => {
          const { pair, receipt } = await vendor.vendWithReceipt(pool);
          return { ...pair, slot: receipt.slot };
        },
        idle: () => vendor.idle(),
      };
    };
    const newProcess = (): Process => {
      const vendor = new Vendor({
        ...common,
        standbyRefill: new BackgroundRefill(common.logger),
        store: new DynamoDbPoolStore(aws.dynamodb, tableName),
        secrets: new ParameterStoreSecrets(aws.ssm, { prefix, kmsKeyId: "alias/aws/ssm" }),
      });
      // The old release put the slot in the pair; the new code reports it in the receipt.
      return {
        vend: async (pool: string): Promise<Handed> => {
          const { pair, receipt } = await vendor.vend(pool);
          return { ...pair, slot: receipt.slot };
        },
        idle: () => vendor.idle(),
      };
    };
    return {
      oldProcess,
      newProcess,
      store: new DynamoDbPoolStore(aws.dynamodb, tableName),
      oldStore: new PoolStore6698160(aws.dynamodb, tableName),
    };
  }

  /**
   * Every pair registers a node with the emulated SSM, as a server would: a wrong code or one
   * registration too many is refused there. Then, per activation, no more pairs than the limit
   * and no slot handed out twice.
   */
  async function expectNeverOverSubscribed(pairs: readonly Handed[], limit: number): Promise<void> {
    for (const p of pairs) {
      const registered = await registerNode(aws.emulator.url, {
        ActivationId: p.activationId,
        ActivationCode: p.activationCode,
      });
      expect(registered.status, `registering with ${p.activationId}`).toBe(200);
    }
    const perActivation = new Map<string, number>();
    for (const p of pairs) perActivation.set(p.activationId, (perActivation.get(p.activationId) ?? 0) + 1);
    for (const [activationId, count] of perActivation) {
      expect(count, `pairs of ${activationId}`).toBeLessThanOrEqual(limit);
    }
    const slots = pairs.map((p) => `${p.activationId}/${p.slot}`);
    expect(new Set(slots).size).toBe(slots.length);
  }

  it("serves a pool row the old release wrote: same activation, same standby, next slots", async () => {
    const { oldProcess, newProcess, store } = await deployment(4);
    const old = oldProcess();
    const first = await old.vend("default");
    await old.idle(); // the old release's background refill installs its standby
    const written = await store.read("default");
    expect(written?.links[0]).toMatchObject({ activationId: first.activationId, issued: 1 });
    expect(written?.links[1]).toBeDefined();

    const upgraded = newProcess();
    const next = [];
    for (let i = 0; i < 4; i++) next.push(await upgraded.vend("default"));
    await upgraded.idle();
    // Slots 2–4 of the old release's activation, then slot 1 of its standby.
    expect(next.map((p) => [p.activationId, p.slot])).toEqual([
      [first.activationId, 2],
      [first.activationId, 3],
      [first.activationId, 4],
      [written?.links[1]?.activationId, 1],
    ]);
    await expectNeverOverSubscribed([first, ...next], 4);
  });

  it("old code meeting a queue the new code built hands out nothing twice, and the queue goes unreachable", async () => {
    const limit = 2;
    const { oldProcess, newProcess, store } = await deployment(limit);
    const upgraded = newProcess();
    const pairs: Handed[] = [await upgraded.vend("default")];
    // Bursts the new code cannot keep a stock of one ahead of: it builds a queue.
    while (queuedOf(await store.read("default")).length === 0) {
      pairs.push(...(await Promise.all(Array.from({ length: 12 }, () => upgraded.vend("default")))));
      await upgraded.idle();
      expect(pairs.length).toBeLessThan(400);
    }
    const withQueue = await store.read("default");
    // The old release now serves the rest of the standby, finds the pool drained past it, and
    // rotates over the queue; the new code carries on after it.
    const old = oldProcess();
    for (let i = 0; i < 2 * limit + 1; i++) pairs.push(await old.vend("default"));
    await old.idle();
    const afterOld = await store.read("default");
    expect(afterOld?.generation).toBeGreaterThan(withQueue?.generation ?? 0);
    // Another generation's queue: unreachable. (6698160 may have built a queue of its own.)
    const queuedIds = new Set(queuedOf(withQueue).map((q) => q.activationId));
    expect(queuedIds.size).toBeGreaterThan(0);
    expect(queuedOf(afterOld).filter((q) => queuedIds.has(q.activationId))).toEqual([]);
    if (release === "226589a") expect(queuedOf(afterOld)).toEqual([]);
    for (let i = 0; i < 2 * limit; i++) pairs.push(await upgraded.vend("default"));
    await upgraded.idle();
    const fromQueueAfterOld = pairs.slice(-2 * limit).filter((p) => queuedIds.has(p.activationId));
    expect(fromQueueAfterOld).toEqual([]);
    await expectNeverOverSubscribed(pairs, limit);
  });

  // At limit 1 every vend exhausts an activation: both releases' refills and queues race hardest.
  it.each([3, 1])(
    "never over-subscribes an activation while old and new processes serve one burst (limit %i)",
    async (limit) => {
      // Every vend at limit 1 takes an activation, and each release keeps stock the other cannot
      // see while they overlap: a budget of 100 an hour is not what this test is about.
      const { oldProcess, newProcess } = await deployment(limit, 1_000);
      const processes = [oldProcess(), newProcess(), oldProcess(), newProcess()];
      const pairs: Handed[] = [];
      // Eight clients at a time, each going to the next process in turn, 60 vends in all.
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < 60) {
            const process = processes[next++ % processes.length]!;
            pairs.push(await process.vend("default"));
          }
        }),
      );
      await Promise.all(processes.map((p) => p.idle()));
      expect(pairs).toHaveLength(60);
      await expectNeverOverSubscribed(pairs, limit);
    },
  );

  it.runIf(release === "6698160")(
    "serves a deep queue the old release built, slot after slot, and rewrites it packed at the next refill",
    async () => {
      const limit = 2;
      const { oldProcess, newProcess, store, oldStore } = await deployment(limit);
      const old = oldProcess();
      const pairs: Handed[] = [await old.vend("default")];
      // Bursts the old release cannot keep a stock of one ahead of: it builds a queue.
      while (((await oldStore.read("default"))?.queued?.length ?? 0) < 2) {
        pairs.push(...(await Promise.all(Array.from({ length: 12 }, () => old.vend("default")))));
        await old.idle();
        expect(pairs.length).toBeLessThan(400);
      }
      const written = await oldStore.read("default");
      const queuedIds = (written?.queued ?? []).map((q) => q.activationId);
      // The new code reads the same activations in the same order, with the same counter.
      const read = await store.read("default");
      expect(queuedOf(read).map((q) => q.activationId)).toEqual(queuedIds);
      expect(read?.generation).toBe(written?.generation);

      const upgraded = newProcess();
      const remaining = [written?.activationId, written?.standbyId, ...queuedIds].length * limit;
      for (let i = 0; i < remaining + limit; i++) pairs.push(await upgraded.vend("default"));
      await upgraded.idle();
      // Every old queued activation was served by the new code, none past its limit.
      const served = new Set(pairs.slice(-(remaining + limit)).map((p) => p.activationId));
      for (const id of queuedIds) expect(served.has(id), `queued ${id} served`).toBe(true);
      // The refills since wrote the packed layout: the old one's attributes are gone.
      const after = await store.read("default");
      expect(after?.generation).toBeGreaterThan(written?.generation ?? 0);
      expect((await oldStore.read("default"))?.queued).toBeUndefined(); // unreadable to the old code
      await expectNeverOverSubscribed(pairs, limit);
    },
  );
});
