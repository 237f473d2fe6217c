/**
 * Upgrades: release 226589a's vend path (frozen in ./release-226589a) and today's, on one table of
 * the emulated DynamoDB with the emulated SSM, as a Lambda deployment's overlap (old and new
 * containers serving at once) or a rolling upgrade of standalone replicas runs them.
 * - A pool row the old release wrote is served by the new code: it continues the old row's
 *   activation and standby, creating nothing it does not need.
 * - Side by side, in a burst, no activation is handed out more than its limit (I1), every pair
 *   registers a node with SSM, and no slot is handed out twice.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { parsePools } from "../../src/core/pool-config";
import { Vendor } from "../../src/core/vend";
import { BackgroundRefill } from "../../src/core/standby-refill";
import { CapturingLogger } from "../support/fakes";
import { registerNode } from "../support/local";
import { TEST_ROLE, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { DynamoDbPoolStore as OldPoolStore } from "./release-226589a/aws/dynamodb-pool-store";
import { ParameterStoreSecrets as OldSecrets } from "./release-226589a/aws/parameter-store-secrets";
import { Vendor as OldVendor } from "./release-226589a/core/vend";

interface Handed {
  readonly activationId: string;
  readonly activationCode: string;
  readonly slot?: number | undefined;
}

describe("upgrading a live deployment (old and new code on one table)", () => {
  let aws: EmulatedAws;

  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });

  async function deployment(registrationLimit: number) {
    const tableName = await aws.newTable();
    const name = `d-${randomUUID().slice(0, 8)}`;
    const prefix = `/upgrade-test/${name}`;
    const pools = parsePools(
      { pools: { default: { registrationLimit, standby: true } } },
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
    const oldProcess = () =>
      new OldVendor({
        ...common,
        store: new OldPoolStore(aws.dynamodb, tableName),
        secrets: new OldSecrets(aws.ssm, { prefix, kmsKeyId: "alias/aws/ssm" }),
      });
    const newProcess = () => {
      const vendor = new Vendor({
        ...common,
        standbyRefill: new BackgroundRefill(common.logger),
        store: new DynamoDbPoolStore(aws.dynamodb, tableName),
        secrets: new ParameterStoreSecrets(aws.ssm, { prefix, kmsKeyId: "alias/aws/ssm" }),
      });
      // The old release put the slot in the pair; the new code reports it in the receipt.
      return {
        vend: async (pool: string): Promise<Handed> => {
          const { pair, receipt } = await vendor.vendWithReceipt(pool);
          return { ...pair, slot: receipt.slot };
        },
        idle: () => vendor.idle(),
      };
    };
    return { oldProcess, newProcess, store: new DynamoDbPoolStore(aws.dynamodb, tableName) };
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
    expect(written).toMatchObject({ activationId: first.activationId, issued: 1 });
    expect(written?.standbyId).toBeDefined();

    const upgraded = newProcess();
    const next = [];
    for (let i = 0; i < 4; i++) next.push(await upgraded.vend("default"));
    await upgraded.idle();
    // Slots 2–4 of the old release's activation, then slot 1 of its standby.
    expect(next.map((p) => [p.activationId, p.slot])).toEqual([
      [first.activationId, 2],
      [first.activationId, 3],
      [first.activationId, 4],
      [written?.standbyId, 1],
    ]);
    await expectNeverOverSubscribed([first, ...next], 4);
  });

  it("old code meeting a queue the new code built hands out nothing twice, and the queue goes unreachable", async () => {
    const limit = 2;
    const { oldProcess, newProcess, store } = await deployment(limit);
    const upgraded = newProcess();
    const pairs: Handed[] = [await upgraded.vend("default")];
    // Bursts the new code cannot keep a stock of one ahead of: it builds a queue.
    while ((await store.read("default"))?.queued === undefined) {
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
    expect(afterOld?.queued).toBeUndefined(); // another generation's queue: unreachable
    for (let i = 0; i < 2 * limit; i++) pairs.push(await upgraded.vend("default"));
    await upgraded.idle();
    const queuedIds = new Set((withQueue?.queued ?? []).map((q) => q.activationId));
    const fromQueueAfterOld = pairs.slice(-2 * limit).filter((p) => queuedIds.has(p.activationId));
    expect(fromQueueAfterOld).toEqual([]);
    await expectNeverOverSubscribed(pairs, limit);
  });

  it("never over-subscribes an activation while old and new processes serve one burst", async () => {
    const limit = 3;
    const { oldProcess, newProcess } = await deployment(limit);
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
  });
});
