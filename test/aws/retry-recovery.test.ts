import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { StandardRetryStrategy } from "@smithy/core/retry";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PromptRecoveryRetryStrategy } from "../../src/aws/clients";
import { TEST_CREDENTIALS, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

/**
 * After a long outage the SDK's retry quota (standard mode) is empty: a partly recovered AWS then
 * gets one attempt per call, and a transient fault fails the call although a retry would have
 * worked. The broker's strategy refills the quota on the first success. Faults come from the
 * emulated AWS; the clients are the real SDK.
 */
describe("retry quota after an outage", () => {
  let aws: EmulatedAws;

  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });

  function client(retryStrategy: PromptRecoveryRetryStrategy | StandardRetryStrategy): DynamoDBClient {
    return new DynamoDBClient({
      region: aws.region,
      endpoint: aws.url,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 3,
      retryStrategy,
    });
  }

  const call = (c: DynamoDBClient) =>
    c.send(new ListTablesCommand({})).then(
      () => "ok",
      (error: Error) => error.name,
    );

  /** A full outage of DynamoDB (500 on every call) long enough to drain a fresh quota. */
  async function outage(c: DynamoDBClient, calls = 20): Promise<void> {
    aws.emulator.controls.injectFault({ service: "dynamodb", kind: "error" });
    for (let i = 0; i < calls; i++) await call(c);
    aws.emulator.controls.clearFaults();
  }

  /** AWS answers again, but the next call's first attempt still hits a fault. */
  async function afterRecovery(c: DynamoDBClient): Promise<string> {
    expect(await call(c)).toBe("ok");
    aws.emulator.controls.injectFault({ service: "dynamodb", kind: "error", count: 1 });
    const outcome = await call(c);
    aws.emulator.controls.clearFaults();
    return outcome;
  }

  it("the SDK's own standard mode: drained by the outage, it retries nothing once AWS answers", async () => {
    const standard = new StandardRetryStrategy(3);
    const c = client(standard);
    await outage(c);
    expect(standard.getCapacity()).toBeLessThan(14); // less than one retry of a transient error
    expect(await afterRecovery(c)).not.toBe("ok");
    c.destroy();
  });

  it("the broker's: the quota drains while every call fails, and the first answer refills it", async () => {
    const strategy = new PromptRecoveryRetryStrategy(3);
    const c = client(strategy);
    expect(strategy.capacity()).toBe(500);
    await outage(c);
    expect(strategy.capacity()).toBeLessThan(14); // no retry storm while AWS is down
    expect(await afterRecovery(c)).toBe("ok");
    expect(strategy.capacity()).toBe(500);
    c.destroy();
  });

  it("still gives up after maxAttempts", async () => {
    const c = client(new PromptRecoveryRetryStrategy(2));
    aws.emulator.controls.injectFault({ service: "dynamodb", kind: "error", count: 2 });
    expect(await call(c)).not.toBe("ok");
    expect(await call(c)).toBe("ok");
    aws.emulator.controls.clearFaults();
    c.destroy();
  });

  it("is what createAwsClients gives both clients, one quota each", async () => {
    const { dynamodb, ssm } = aws.clients({});
    const strategies = [await dynamodb.config.retryStrategy(), await ssm.config.retryStrategy()];
    expect(strategies[0]).toBeInstanceOf(PromptRecoveryRetryStrategy);
    expect(strategies[1]).toBeInstanceOf(PromptRecoveryRetryStrategy);
    expect(strategies[0]).not.toBe(strategies[1]);
  });
});
