import type { APIGatewayProxyEvent, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startEmulator, type Emulator } from "../../emulator/server";
import { createAwsClients } from "../../src/aws/clients";
import { ensurePoolTable } from "../../src/aws/dynamodb-table";

/**
 * The Lambda adapter exactly as deployed: configuration from the environment only, AWS reached
 * through the SDK's standard AWS_ENDPOINT_URL (here the emulated AWS), REST proxy events in.
 */
const TABLE = "lambda-pools";

function event(overrides: Partial<APIGatewayProxyEvent> = {}): APIGatewayProxyEvent {
  return {
    httpMethod: "GET",
    path: "/",
    headers: { Host: "abc123.execute-api.eu-west-1.amazonaws.com" },
    queryStringParameters: null,
    requestContext: {
      requestId: "apigw-request-1",
      domainName: "abc123.execute-api.eu-west-1.amazonaws.com",
      stage: "prod",
    },
    ...overrides,
  } as unknown as APIGatewayProxyEvent;
}

const context = {
  awsRequestId: "lambda-request-1",
  functionName: "broker",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:eu-west-1:111122223333:function:broker",
  memoryLimitInMB: "256",
  getRemainingTimeInMillis: () => 10_000,
} as unknown as Context;

async function loadHandler(env: Record<string, string>) {
  vi.resetModules();
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  return (await import("../../src/entry/lambda")).handler;
}

describe("Lambda adapter (API Gateway REST proxy)", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
    const clients = createAwsClients({
      region: "eu-west-1",
      endpoint: emulator.url,
      credentials: { accessKeyId: "x", secretAccessKey: "x" },
    });
    await ensurePoolTable(clients.dynamodb, TABLE);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await emulator?.close();
  });

  const awsEnv = () => ({
    AWS_REGION: "eu-west-1",
    AWS_ENDPOINT_URL: emulator.url,
    AWS_ACCESS_KEY_ID: "x",
    AWS_SECRET_ACCESS_KEY: "x",
    BROKER_TABLE_NAME: TABLE,
    BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
    POWERTOOLS_LOG_LEVEL: "ERROR",
  });

  it("answers the reference contract with status, headers and the region", async () => {
    const handler = await loadHandler(awsEnv());
    const res = await handler(event(), context);
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ "Content-Type": "application/json", "Cache-Control": "no-store" });
    expect(JSON.parse(res.body)).toMatchObject({ Region: "eu-west-1", Pool: "default" });
  });

  it("maps bad requests to real statuses, with the API Gateway request id", async () => {
    const handler = await loadHandler(awsEnv());
    const notAllowed = await handler(event({ httpMethod: "POST" }), context);
    expect(notAllowed.statusCode).toBe(405);
    expect(notAllowed.headers?.Allow).toBe("GET");
    const missing = await handler(event({ path: "/activations/nope" }), context);
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(missing.body).error.requestId).toBe("apigw-request-1");
  });

  it("fills the install script with the stage URL it was called through", async () => {
    const handler = await loadHandler(awsEnv());
    const res = await handler(event({ path: "/install.sh" }), context);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain(
      'BROKER_URL="${BROKER_URL:-https://abc123.execute-api.eu-west-1.amazonaws.com/prod}"',
    );
  });

  it("answers a generic 500 when misconfigured, naming nothing internal", async () => {
    const handler = await loadHandler({ ...awsEnv(), BROKER_LEASE_SECONDZ: "30" });
    const res = await handler(event(), context);
    expect(res.statusCode).toBe(500);
    expect(JSON.parse(res.body).error).toEqual({
      code: "InternalError",
      message: "Internal error; quote the request id when reporting it.",
      requestId: "apigw-request-1",
    });
  });
});
