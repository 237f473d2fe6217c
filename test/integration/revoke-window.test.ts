import { EventEmitter, once } from "node:events";
import { CreateActivationCommand } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBroker, createOperations } from "../../src/composition";
import type { HttpHandler } from "../../src/http/handler";
import { loadSettings } from "../../src/settings";
import { TEST_ROLE, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { CapturingLogger } from "../support/fakes";

const ACCOUNT_ACTIVATIONS = 3_000;

/**
 * Revocation on two warm replicas (two brokers, each with its code cached, on one table) in an
 * account holding thousands of activations: revoke retires the pool row before it lists anything,
 * so no request that starts after that write gets the revoked pair, and the window does not grow
 * with the account.
 */
describe("revoke on two warm replicas, thousands of activations in the account", () => {
  let aws: EmulatedAws;

  beforeAll(async () => {
    aws = await startEmulatedAws();
    // Another deployment's activations fill the account (the listing revoke must not wait for).
    const ssm = aws.rawSsm(3);
    for (let done = 0; done < ACCOUNT_ACTIVATIONS; done += 100) {
      await Promise.all(
        Array.from({ length: 100 }, () =>
          ssm.send(
            new CreateActivationCommand({
              IamRole: TEST_ROLE,
              RegistrationLimit: 10,
              Tags: [{ Key: "activation-broker:deployment", Value: "someone-else" }],
            }),
          ),
        ),
      );
    }
  }, 120_000);
  afterAll(async () => {
    await aws?.close();
  });

  it("no revoked pair is handed out once revoke's first write is done", async () => {
    const table = await aws.newTable();
    const settings = loadSettings({
      AWS_REGION: aws.region,
      BROKER_TABLE_NAME: table,
      BROKER_DEFAULT_IAM_ROLE: TEST_ROLE,
      BROKER_POOLS: JSON.stringify({ pools: { default: { registrationLimit: 1000 } } }),
    });
    const logger = new CapturingLogger();
    const replicas = [1, 2].map(() => createBroker({ settings, clients: aws, logger }));
    const vend = async (handler: HttpHandler) =>
      JSON.parse((await handler({ method: "GET", path: "/", query: {}, requestId: "r" })).body) as {
        ActivationId?: string;
      };
    // Warm: both have the pair's code cached.
    const revoked = (await vend(replicas[0]!.handler)).ActivationId!;
    expect((await vend(replicas[1]!.handler)).ActivationId).toBe(revoked);

    const operations = createOperations({ settings, clients: aws, logger });
    const describes = () => aws.emulator.controls.counters()["ssm:DescribeActivations"] ?? 0;
    const marks: { retireStart?: number; retireDone?: number; describesAtRetire?: number } = {};
    const pools = operations.inventory.pools;
    const retire = pools.retire.bind(pools);
    pools.retire = async (...args) => {
      marks.retireStart = performance.now();
      marks.describesAtRetire = describes();
      const result = await retire(...args);
      marks.retireDone = performance.now();
      return result;
    };

    // Vends as fast as eight callers can make them; the test waits on their count, never on a clock.
    const handed: { startedAt: number; activationId: string | undefined }[] = [];
    const progress = new EventEmitter().setMaxListeners(0);
    const until = async (enough: () => boolean) => {
      while (!enough()) await once(progress, "vend");
    };
    const vendsBy = replicas.map(() => 0);
    let stop = false;
    const load = replicas.flatMap((replica, r) =>
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          const startedAt = performance.now();
          handed.push({ startedAt, activationId: (await vend(replica.handler)).ActivationId });
          vendsBy[r]!++;
          progress.emit("vend");
        }
      }),
    );
    // Revoke lands in a running load: both replicas are vending when it starts.
    await until(() => vendsBy.every((n) => n >= 4));
    const describesBefore = describes();
    const revokeStart = performance.now();
    const result = await operations.admin(replicas[0]!.vendor).revoke("default");
    const revokeDone = performance.now();
    // Enough vends that began after revoke's first write to show none of them got the revoked pair.
    expect(marks.retireDone).toBeDefined();
    const late = () => handed.filter((h) => h.startedAt >= marks.retireDone!);
    await until(() => late().length >= 20);
    stop = true;
    await Promise.all(load);

    expect(result).toMatchObject({ activationId: revoked, wasCurrent: true });
    // Retired before SSM was asked for a single page of the account's activations.
    expect(marks.describesAtRetire).toBe(describesBefore);
    expect(describes()).toBeGreaterThan(describesBefore + 10); // the listing came after
    expect(late().filter((h) => h.activationId === revoked)).toEqual([]);
    expect(late().every((h) => h.activationId !== undefined)).toBe(true);
    const afterStart = handed.filter((h) => h.startedAt >= revokeStart && h.activationId === revoked).length;
    console.log(
      `revoke: first write done ${(marks.retireDone! - revokeStart).toFixed(0)} ms after revoke began ` +
        `(whole revoke ${(revokeDone - revokeStart).toFixed(0)} ms, ${describes() - describesBefore} ` +
        `DescribeActivations pages); revoked pairs handed out after revoke began: ${afterStart}, ` +
        `after its first write: 0 of ${late().length} vends`,
    );
  }, 120_000);
});
