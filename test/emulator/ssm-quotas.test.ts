/**
 * SSM's request quotas: a call past its quota is answered `ThrottlingException` "Rate exceeded"
 * (https://repost.aws/knowledge-center/ssm-parameter-store-rate-exceeded), GetParameter and
 * GetParameters share one quota (https://docs.aws.amazon.com/general/latest/gr/ssm.html), and the
 * SDK retries the throttle.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  GetParameterCommand,
  GetParametersCommand,
  PutParameterCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { type Emulator, PARAMETER_STORE_QUOTAS } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

let aws: EmulatedAws;
let emulator: Emulator;
let ssm: SSMClient;

beforeAll(async () => {
  aws = await startEmulatedAws();
  emulator = aws.emulator;
  ssm = aws.rawSsm();
  await ssm.send(new PutParameterCommand({ Name: "/quota/p", Value: "v", Type: "String" }));
});
afterAll(async () => {
  ssm.destroy();
  await aws?.close();
});
beforeEach(() => {
  emulator.controls.setLimits({});
  emulator.controls.resetCounters();
});

const getOne = () => ssm.send(new GetParameterCommand({ Name: "/quota/p" }));
const getMany = () => ssm.send(new GetParametersCommand({ Names: ["/quota/p"] }));

describe("SSM request quotas", () => {
  it("are off by default", async () => {
    await Promise.all(Array.from({ length: 60 }, getOne));
    expect(emulator.controls.usage().throttled).toEqual({});
  });

  it("throttle past a shared quota with ThrottlingException 'Rate exceeded', and recover within a second", async () => {
    emulator.controls.setLimits({
      ssmQuotas: [{ operations: ["GetParameter", "GetParameters"], perSecond: 4 }],
    });
    await getOne();
    await getMany();
    await getOne();
    await getMany();
    const error = (await getOne().catch((e: unknown) => e)) as Error & {
      $metadata?: { httpStatusCode?: number };
    };
    expect(error.name).toBe("ThrottlingException");
    expect(error.message).toBe("Rate exceeded");
    expect(error.$metadata?.httpStatusCode).toBe(400);
    // Another operation has its own quota (none here).
    await expect(
      ssm.send(new PutParameterCommand({ Name: "/quota/q", Value: "v", Type: "String" })),
    ).resolves.toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await expect(getMany()).resolves.toBeDefined();
    expect(emulator.controls.usage().throttled).toEqual({ "ssm:GetParameter": 1 });
  });

  it("the SDK's retries get a burst through a quota", async () => {
    const retrying = aws.rawSsm(10);
    emulator.controls.setLimits({ ssmQuotas: [{ operations: ["GetParameters"], perSecond: 5 }] });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => retrying.send(new GetParametersCommand({ Names: ["/quota/p"] }))),
    );
    expect(answers).toHaveLength(8);
    expect(emulator.controls.counters()["ssm:GetParameters"]).toBeGreaterThan(8);
    expect(emulator.controls.usage().throttled["ssm:GetParameters"]).toBeGreaterThan(0);
  }, 30_000);

  it("the documented standard throughput: GetParameter and GetParameters share 40 per second", () => {
    expect(PARAMETER_STORE_QUOTAS.standard).toContainEqual({
      operations: ["GetParameter", "GetParameters"],
      perSecond: 40,
    });
  });

  it("rejects malformed limits over HTTP with 400, and reset() turns the limits off", async () => {
    const bad = await fetch(`${emulator.url}/_emulator/limits`, {
      method: "POST",
      body: JSON.stringify({ ssmQuota: [] }),
    });
    expect(bad.status).toBe(400);
    const set = await fetch(`${emulator.url}/_emulator/limits`, {
      method: "POST",
      body: JSON.stringify({ dynamodbItemWriteUnitsPerSecond: 300 }),
    });
    expect(await set.json()).toEqual({ dynamodbItemWriteUnitsPerSecond: 300 });
    emulator.controls.reset();
    expect(emulator.controls.limits()).toEqual({});
    await ssm.send(new PutParameterCommand({ Name: "/quota/p", Value: "v", Type: "String" }));
  });
});
