import { DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import { type DynamoDBClient, GetItemCommand, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createAwsClients, PromptRecoveryRetryStrategy } from "../../src/aws/clients";
import { createLambdaClient } from "../../src/aws/lambda-standby-refill";
import { createLookupClients } from "../../src/aws/lookup-clients";
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

  it("gives every client a retry quota of its own, healing as soon as AWS answers", async () => {
    const { dynamodb, ssm } = createAwsClients({ region: TEST_REGION });
    const strategies = [await dynamodb.config.retryStrategy(), await ssm.config.retryStrategy()];
    for (const strategy of strategies) expect(strategy).toBeInstanceOf(PromptRecoveryRetryStrategy);
    expect(strategies[0]).not.toBe(strategies[1]);
    dynamodb.destroy();
    ssm.destroy();
  });

  it("takes a named profile of the shared config as configuration, leaving AWS_PROFILE alone", async () => {
    const home = mkdtempSync(join(tmpdir(), "clients-profile-"));
    writeFileSync(
      join(home, "config"),
      "[default]\nregion = us-west-2\n\n[profile far]\nregion = ap-south-1\n",
    );
    vi.stubEnv("AWS_CONFIG_FILE", join(home, "config"));
    vi.stubEnv("AWS_REGION", undefined);
    vi.stubEnv("AWS_DEFAULT_REGION", undefined);
    try {
      const named = createAwsClients({ profile: "far" });
      const plain = createAwsClients();
      expect(await named.ssm.config.region()).toBe("ap-south-1");
      expect(await plain.ssm.config.region()).toBe("us-west-2");
      expect(process.env.AWS_PROFILE).toBeUndefined();
      for (const client of [named.dynamodb, named.ssm, plain.dynamodb, plain.ssm]) client.destroy();
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe("the other clients: Lambda self-invocation and the admin CLI's lookup", () => {
  it("are built with the same Region, endpoint, attempts, timeouts and retry strategy", async () => {
    const options = {
      region: TEST_REGION,
      endpoint: "http://127.0.0.1:1",
      maxAttempts: 2,
      credentials: TEST_CREDENTIALS,
    } as const;
    const lookup = createLookupClients({ ...options, timeouts: { connectionMs: 700, requestMs: 1_700 } });
    const lambda = createLambdaClient(options);
    for (const client of [lookup.cloudformation, lookup.lambda, lookup.ssm, lambda]) {
      expect(await client.config.region()).toBe(TEST_REGION);
      expect(await client.config.endpoint?.()).toMatchObject({ hostname: "127.0.0.1", port: 1 });
      expect(await client.config.maxAttempts()).toBe(2);
      expect(await client.config.retryStrategy()).toBeInstanceOf(PromptRecoveryRetryStrategy);
    }
    const handler = lookup.cloudformation.config.requestHandler as {
      httpHandlerConfigs(): Record<string, unknown>;
    };
    // The handler resolves its settings on first use; a call that cannot connect is enough.
    await lookup.cloudformation.send(new DescribeStacksCommand({})).catch(() => {});
    expect(handler.httpHandlerConfigs()).toMatchObject({ connectionTimeout: 700, requestTimeout: 1_700 });
    lambda.destroy();
    lookup.destroy();
  });

  it("are destroyed together", () => {
    const lookup = createLookupClients({ region: TEST_REGION });
    const destroyed = [lookup.cloudformation, lookup.lambda, lookup.ssm].map((client) =>
      vi.spyOn(client, "destroy"),
    );
    lookup.destroy();
    for (const spy of destroyed) expect(spy).toHaveBeenCalledOnce();
  });
});
