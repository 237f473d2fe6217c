import { randomUUID } from "node:crypto";
import { DescribeActivationsCommand } from "@aws-sdk/client-ssm";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DynamoDbPoolStore } from "../../src/aws/dynamodb-pool-store";
import { ParameterStoreSecrets } from "../../src/aws/parameter-store-secrets";
import { SsmActivations } from "../../src/aws/ssm-activations";
import { ThrottledError } from "../../src/core/errors";
import { parsePools, type PoolsFileInput } from "../../src/core/pool-config";
import { Vendor } from "../../src/core/vend";
import { BackgroundRefill } from "../../src/core/standby-refill";
import { linksOf, standbyDepth, TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "../../src/core/vend-policy";
import { CapturingLogger } from "../support/fakes";
import { TEST_ROLE, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

/**
 * The vend use case on the real adapters, with SSM and DynamoDB emulated: what SSM is asked
 * (CreateActivation's parameters, how many calls) is read from the emulator, not from the core.
 */
describe("Vendor over the emulator", () => {
  let aws: EmulatedAws;

  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });
  afterEach(() => {
    aws.emulator.controls.clearFaults();
  });

  async function brokerProcesses(pools: PoolsFileInput["pools"], count: number, maxAttempts?: number) {
    const tableName = await aws.newTable();
    const deployment = `d-${randomUUID().slice(0, 8)}`;
    const clients = maxAttempts === undefined ? aws : aws.clients({ maxAttempts });
    const make = () =>
      new Vendor({
        pools: parsePools({ pools }, { iamRole: TEST_ROLE }),
        store: new DynamoDbPoolStore(clients.dynamodb, tableName),
        activations: new SsmActivations(clients.ssm),
        secrets: new ParameterStoreSecrets(clients.ssm, {
          prefix: `/vend-test/${deployment}`,
          kmsKeyId: "alias/aws/ssm",
        }),
        clock: { now: () => Date.now() },
        sleeper: { sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) },
        logger: new CapturingLogger(),
        standbyRefill: new BackgroundRefill(new CapturingLogger()),
        options: { leaseMs: 30_000, rotationWaitMs: 10_000, deployment },
      });
    const store = new DynamoDbPoolStore(clients.dynamodb, tableName);
    return { deployment, vendors: Array.from({ length: count }, make), store };
  }

  const creations = () => aws.emulator.controls.counters()["ssm:CreateActivation"] ?? 0;

  it("passes every pool setting to CreateActivation, as SSM records it", async () => {
    const { deployment, vendors } = await brokerProcesses(
      {
        web: {
          iamRole: "WebNodeRole",
          registrationLimit: 7,
          expirationHours: 48,
          safetyMarginMinutes: 90,
          defaultInstanceName: "web-node",
          description: "web servers, eu",
          tags: { team: "web", "cost-center": "42" },
        },
      },
      1,
    );
    const before = Date.now();
    const { pair } = await vendors[0]!.vend("web");
    const { ActivationList } = await aws.ssm.send(
      new DescribeActivationsCommand({
        Filters: [{ FilterKey: "ActivationIds", FilterValues: [pair.activationId] }],
      }),
    );
    expect(ActivationList).toHaveLength(1);
    const seen = ActivationList![0]!;
    expect(seen).toMatchObject({
      IamRole: "WebNodeRole",
      RegistrationLimit: 7,
      DefaultInstanceName: "web-node",
      Description: "web servers, eu",
    });
    const expires = seen.ExpirationDate!.getTime();
    expect(expires).toBe(pair.expiresAt);
    expect(expires).toBeGreaterThan(before + 48 * 3_600_000 - 2_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 48 * 3_600_000);
    expect(Object.fromEntries(seen.Tags!.map((t) => [t.Key, t.Value]))).toEqual({
      team: "web",
      "cost-center": "42",
      [TAG_DEPLOYMENT]: deployment,
      [TAG_POOL]: "web",
      [TAG_GENERATION]: "1",
    });
  });

  it("leaves DefaultInstanceName and Description unset when the pool sets neither", async () => {
    const { vendors } = await brokerProcesses({ plain: {} }, 1);
    const { pair } = await vendors[0]!.vend("plain");
    const { ActivationList } = await aws.ssm.send(
      new DescribeActivationsCommand({
        Filters: [{ FilterKey: "ActivationIds", FilterValues: [pair.activationId] }],
      }),
    );
    expect(ActivationList![0]!.DefaultInstanceName).toBeUndefined();
    expect(ActivationList![0]!.Description).toBeUndefined();
  });

  it("calls CreateActivation once per exhaustion while three processes race (I5)", async () => {
    const { vendors, store } = await brokerProcesses({ race: { registrationLimit: 5 } }, 3);
    const before = creations();
    const pairs = await Promise.all(
      Array.from({ length: 15 }, (_, i) => vendors[i % 3]!.vend("race").then((v) => v.pair)),
    );
    await Promise.all(vendors.map((v) => v.idle()));
    const used = new Set(pairs.map((p) => p.activationId));
    expect(used.size).toBe(3);
    // Beside the three used, only the pool's unused stock: each on the row, within its depth (I9).
    const row = await store.read("race");
    const unused = linksOf(row).filter((l) => !used.has(l.activationId));
    expect(unused.every((l) => l.issued === 0)).toBe(true);
    expect(unused.length).toBeLessThanOrEqual(standbyDepth(row));
    expect(creations() - before).toBe(used.size + unused.length);
  });

  it("answers Throttled, and creates nothing, when Parameter Store throttles the code's read", async () => {
    const { vendors } = await brokerProcesses({ thr: {} }, 2, 1);
    await vendors[0]!.vend("thr");
    const before = creations();
    aws.emulator.controls.injectFault({ service: "ssm", operation: "GetParameters", kind: "throttle" });
    const error = await vendors[1]!.vend("thr").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as ThrottledError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(creations() - before).toBe(0);
  });
});
