import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CreateActivationCommand, DescribeActivationsCommand, type SSMClient } from "@aws-sdk/client-ssm";
import {
  type DynamoDBClient,
  ListTablesCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { Emulator } from "../../emulator/server";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";
import { DAY_SECONDS } from "./helpers";

let aws: EmulatedAws;

let emulator: Emulator;
let ssm: SSMClient;
let dynamodb: DynamoDBClient;

beforeAll(async () => {
  aws = await startEmulatedAws();
  emulator = aws.emulator;
  ssm = aws.rawSsm();
  dynamodb = aws.rawDynamoDb();
});
afterAll(async () => {
  ssm.destroy();
  dynamodb.destroy();
  await aws?.close();
});
beforeEach(() => emulator.controls.reset());

async function control(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${emulator.url}/_emulator/${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }),
  });
  return { status: response.status, json: await response.json() };
}

const createActivation = () => ssm.send(new CreateActivationCommand({ IamRole: "R" }));

describe("programmatic controls", () => {
  it("throttle answers 400 ThrottlingException 'Rate exceeded' for `count` calls, all counted", async () => {
    emulator.controls.injectFault({
      service: "ssm",
      operation: "CreateActivation",
      kind: "throttle",
      count: 2,
    });
    for (let i = 0; i < 2; i += 1) {
      await expect(createActivation()).rejects.toMatchObject({
        name: "ThrottlingException",
        message: "Rate exceeded",
        $metadata: { httpStatusCode: 400 },
      });
    }
    await expect(createActivation()).resolves.toMatchObject({ ActivationId: expect.any(String) });
    // Other operations were never affected.
    await expect(ssm.send(new DescribeActivationsCommand({}))).resolves.toBeDefined();
    expect(emulator.controls.counters()).toEqual({ "ssm:CreateActivation": 3, "ssm:DescribeActivations": 1 });
    expect(emulator.controls.faults()).toEqual([]);
  });

  it("the SDK's own retries get through a throttle of 2 calls, and the counter shows the attempts", async () => {
    const retrying = aws.rawSsm(3);
    try {
      emulator.controls.injectFault({
        service: "ssm",
        operation: "CreateActivation",
        kind: "throttle",
        count: 2,
      });
      await expect(retrying.send(new CreateActivationCommand({ IamRole: "R" }))).resolves.toMatchObject({
        ActivationId: expect.any(String),
      });
      expect(emulator.controls.counters()["ssm:CreateActivation"]).toBe(3);
    } finally {
      retrying.destroy();
    }
  });

  it("error answers 500 InternalServerError until cleared", async () => {
    emulator.controls.injectFault({ service: "ssm", operation: "CreateActivation", kind: "error" });
    for (let i = 0; i < 3; i += 1) {
      await expect(createActivation()).rejects.toMatchObject({
        name: "InternalServerError",
        $metadata: { httpStatusCode: 500 },
      });
    }
    emulator.controls.clearFaults();
    await expect(createActivation()).resolves.toBeDefined();
  });

  it("latency delays, then serves normally", async () => {
    emulator.controls.injectFault({
      service: "ssm",
      operation: "DescribeActivations",
      kind: "latency",
      latencyMs: 300,
      count: 1,
    });
    const started = Date.now();
    await expect(ssm.send(new DescribeActivationsCommand({}))).resolves.toMatchObject({ ActivationList: [] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it("tooManyUpdates answers 400 TooManyUpdates, the one service error the SSM Agent retries", async () => {
    emulator.controls.injectFault({
      service: "ssm",
      operation: "CreateActivation",
      kind: "tooManyUpdates",
      count: 1,
    });
    await expect(createActivation()).rejects.toMatchObject({
      name: "TooManyUpdates",
      $metadata: { httpStatusCode: 400 },
    });
    await expect(createActivation()).resolves.toBeDefined();
    expect(() => emulator.controls.injectFault({ service: "dynamodb", kind: "tooManyUpdates" })).toThrow(
      /SSM error/,
    );
  });

  it("a rate hits about that share of the calls, and only hit calls consume the count", async () => {
    emulator.controls.injectFault({
      service: "ssm",
      operation: "DescribeActivations",
      kind: "throttle",
      rate: 0.5,
    });
    let throttled = 0;
    for (let i = 0; i < 200; i += 1) {
      await ssm.send(new DescribeActivationsCommand({})).catch(() => (throttled += 1));
    }
    // Binomial(200, 0.5): outside [50, 150] with probability below 1e-12.
    expect(throttled).toBeGreaterThan(50);
    expect(throttled).toBeLessThan(150);
    emulator.controls.clearFaults();
    emulator.controls.injectFault({ service: "ssm", kind: "throttle", rate: 0.5, count: 3 });
    let hits = 0;
    for (let i = 0; i < 100 && emulator.controls.faults().length > 0; i += 1) {
      await ssm.send(new DescribeActivationsCommand({})).catch(() => (hits += 1));
    }
    expect(hits).toBe(3);
    expect(() => emulator.controls.injectFault({ service: "ssm", kind: "throttle", rate: 0 })).toThrow(
      /rate/,
    );
    expect(() => emulator.controls.injectFault({ service: "ssm", kind: "throttle", rate: 1.5 })).toThrow(
      /rate/,
    );
  });

  it("rejects a fault with an unknown field or a bad kind", () => {
    expect(() =>
      emulator.controls.injectFault({ service: "ssm", kind: "latency", latency: 5 } as never),
    ).toThrow(/unknown fault field/);
    expect(() => emulator.controls.injectFault({ service: "ssm", kind: "explode" } as never)).toThrow(/kind/);
  });

  it("clock offset moves expiry and reset() puts it back", async () => {
    await createActivation();
    emulator.controls.setClockOffset(DAY_SECONDS + 1);
    expect(emulator.controls.clockOffset()).toBe(DAY_SECONDS + 1);
    expect(emulator.controls.activations()[0]?.expired).toBe(true);
    emulator.controls.reset();
    expect(emulator.controls.clockOffset()).toBe(0);
    expect(emulator.controls.activations()).toEqual([]);
  });

  it("activations() and managedNodes() never expose an activation code", async () => {
    const { ActivationCode } = await createActivation();
    const views = emulator.controls.activations();
    expect(views).toHaveLength(1);
    expect(views[0]).toMatchObject({
      iamRole: "R",
      registrationLimit: 1,
      registrationsCount: 0,
      expired: false,
    });
    expect(JSON.stringify(views)).not.toContain(ActivationCode);
    expect(Object.keys(views[0] ?? {})).not.toContain("activationCode");
  });
});

describe("HTTP controls under /_emulator/", () => {
  it("health answers 200", async () => {
    expect(await control("GET", "health")).toEqual({
      status: 200,
      json: { status: "ok", region: emulator.region },
    });
  });

  it("POST /faults throttles DynamoDB with ProvisionedThroughputExceededException; GET /counters counts it", async () => {
    expect(
      (
        await control("POST", "faults", {
          service: "dynamodb",
          operation: "PutItem",
          kind: "throttle",
          count: 1,
        })
      ).status,
    ).toBe(201);
    await expect(
      dynamodb.send(new PutItemCommand({ TableName: "nope", Item: { pk: { S: "x" } } })),
    ).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
    expect((await control("GET", "faults")).json).toEqual([]);
    expect(await control("GET", "counters")).toEqual({ status: 200, json: { "dynamodb:PutItem": 1 } });
  });

  it("DELETE /faults clears an endless fault; a bad fault is a 400", async () => {
    await control("POST", "faults", { service: "ssm", operation: "CreateActivation", kind: "error" });
    await expect(createActivation()).rejects.toMatchObject({ $metadata: { httpStatusCode: 500 } });
    expect(await control("DELETE", "faults")).toEqual({ status: 200, json: [] });
    await expect(createActivation()).resolves.toBeDefined();
    expect((await control("POST", "faults", { service: "ssm", kind: "throttle", count: 0 })).status).toBe(
      400,
    );
    expect((await control("POST", "faults", { service: "s3", kind: "throttle" })).status).toBe(400);
  });

  it("POST /clock moves the emulator's now; GET /clock reads it", async () => {
    await createActivation();
    expect((await control("POST", "clock", { offsetSeconds: DAY_SECONDS + 5 })).status).toBe(200);
    expect((await control("GET", "clock")).json).toMatchObject({ offsetSeconds: DAY_SECONDS + 5 });
    expect((await ssm.send(new DescribeActivationsCommand({}))).ActivationList?.[0]?.Expired).toBe(true);
    expect((await control("POST", "clock", { offset: 5 })).status).toBe(400);
  });

  it("POST /reset clears activations, counters and faults; GET /activations never shows codes", async () => {
    const { ActivationCode } = await createActivation();
    const listed = await control("GET", "activations");
    expect(listed.json).toHaveLength(1);
    expect(JSON.stringify(listed.json)).not.toContain(ActivationCode);
    await control("POST", "faults", { service: "ssm", kind: "throttle" });
    expect((await control("POST", "reset")).status).toBe(200);
    expect((await control("GET", "activations")).json).toEqual([]);
    expect((await control("GET", "faults")).json).toEqual([]);
    expect((await control("GET", "counters")).json).toEqual({});
  });

  it("unknown control paths are 404", async () => {
    expect((await control("GET", "nothing-here")).status).toBe(404);
  });
});

describe("protocol edges", () => {
  it("an unknown SSM operation is a 400 UnknownOperationException with a request ID", async () => {
    const response = await fetch(emulator.url, {
      method: "POST",
      headers: { "X-Amz-Target": "AmazonSSM.LaunchRockets", "Content-Type": "application/x-amz-json-1.1" },
      body: "{}",
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("x-amzn-requestid")).toMatch(/.+/);
    expect(await response.json()).toMatchObject({ __type: "UnknownOperationException" });
  });

  it("malformed JSON is a SerializationException", async () => {
    const response = await fetch(emulator.url, {
      method: "POST",
      headers: { "X-Amz-Target": "AmazonSSM.DescribeActivations" },
      body: "{nope",
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ __type: "SerializationException" });
  });

  it("accepts unsigned DynamoDB requests too", async () => {
    const response = await fetch(emulator.url, {
      method: "POST",
      headers: {
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Content-Type": "application/x-amz-json-1.0",
      },
      body: "{}",
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toHaveProperty("TableNames");
    await expect(dynamodb.send(new ListTablesCommand({}))).resolves.toBeDefined();
  });
});
