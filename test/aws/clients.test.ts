import { type DynamoDBClient, GetItemCommand, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createAwsClients } from "../../src/aws/clients";
import { TEST_CREDENTIALS, TEST_REGION, startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

describe("createAwsClients", () => {
  let aws: EmulatedAws;

  beforeAll(async () => {
    aws = await startEmulatedAws();
  });
  afterAll(async () => {
    await aws?.close();
  });

  it("retries three times in all by default", async () => {
    const { dynamodb, ssm } = createAwsClients({ region: TEST_REGION });
    expect(await dynamodb.config.maxAttempts()).toBe(3);
    expect(await ssm.config.maxAttempts()).toBe(3);
    dynamodb.destroy();
    ssm.destroy();
  });

  it("points both clients at the given endpoint", async () => {
    const { dynamodb, ssm } = createAwsClients({ region: TEST_REGION, endpoint: "http://127.0.0.1:1" });
    for (const client of [dynamodb, ssm]) {
      const endpoint = await client.config.endpoint?.();
      expect(endpoint).toMatchObject({ hostname: "127.0.0.1", port: 1, protocol: "http:" });
      client.destroy();
    }
  });

  /** The HTTP handler's settings, as the SDK resolved them for the first call. */
  async function handlerSettings(client: DynamoDBClient): Promise<Record<string, unknown>> {
    await client.send(new ListTablesCommand({}));
    return (
      client.config.requestHandler as { httpHandlerConfigs(): Record<string, unknown> }
    ).httpHandlerConfigs();
  }

  it("connects within 1 s and answers within 3 s by default, failing the call past either", async () => {
    const { dynamodb } = aws.clients({ timeouts: undefined });
    expect(await handlerSettings(dynamodb)).toMatchObject({
      connectionTimeout: 1_000,
      requestTimeout: 3_000,
      throwOnRequestTimeout: true,
    });
  });

  it("takes other timeouts from the options", async () => {
    const { dynamodb } = aws.clients({ timeouts: { connectionMs: 2_500, requestMs: 9_000 } });
    expect(await handlerSettings(dynamodb)).toMatchObject({
      connectionTimeout: 2_500,
      requestTimeout: 9_000,
      throwOnRequestTimeout: true,
    });
  });

  it("leaves the Region and the endpoint to the SDK's environment settings when none is given", async () => {
    vi.stubEnv("AWS_REGION", "eu-west-3");
    vi.stubEnv("AWS_ENDPOINT_URL_DYNAMODB", aws.url);
    try {
      const { dynamodb, ssm } = createAwsClients({ credentials: TEST_CREDENTIALS });
      expect(await dynamodb.config.region()).toBe("eu-west-3");
      await expect(dynamodb.send(new ListTablesCommand({}))).resolves.toMatchObject({
        TableNames: expect.any(Array),
      });
      dynamodb.destroy();
      ssm.destroy();
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("gives up on a call that hangs instead of waiting for it", async () => {
    const table = await aws.newTable();
    aws.emulator.controls.injectFault({
      service: "dynamodb",
      operation: "GetItem",
      kind: "latency",
      latencyMs: 5_000,
    });
    const { dynamodb } = aws.clients({ maxAttempts: 1, timeouts: undefined });
    const error = await dynamodb
      .send(new GetItemCommand({ TableName: table, Key: { pk: { S: "POOL#x" } } }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    aws.emulator.controls.clearFaults();
    expect(error).toMatchObject({ name: "TimeoutError" });
  });

  it("accepts static credentials", async () => {
    const { ssm } = createAwsClients({ region: TEST_REGION, credentials: TEST_CREDENTIALS });
    expect(await ssm.config.credentials()).toMatchObject(TEST_CREDENTIALS);
    ssm.destroy();
  });
});
