import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEvent, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startEmulatedAws, type EmulatedAws } from "../support/emulated-aws";

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
  vi.unstubAllEnvs(); // each test states its whole environment
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  return (await import("../../src/entry/lambda")).handler;
}

describe("Lambda adapter (API Gateway REST proxy)", () => {
  let aws: EmulatedAws;
  beforeAll(async () => {
    aws = await startEmulatedAws({ region: "eu-west-1" });
    await aws.newTable(TABLE);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await aws?.close();
  });

  const awsEnv = () => ({
    AWS_REGION: "eu-west-1",
    AWS_ENDPOINT_URL: aws.url,
    AWS_ACCESS_KEY_ID: "x",
    AWS_SECRET_ACCESS_KEY: "x",
    BROKER_TABLE_NAME: TABLE,
    BROKER_DEFAULT_IAM_ROLE: "SSMServiceRole",
    POWERTOOLS_LOG_LEVEL: "ERROR",
  });

  it("answers the reference contract with status, headers and the region; its metrics carry no code", async () => {
    const handler = await loadHandler(awsEnv());
    // Powertools Metrics write EMF lines straight to stdout: read them, don't print them.
    const written: string[] = [];
    const spy = vi
      .spyOn(process.stdout, "write")
      .mockImplementation((chunk) => (written.push(String(chunk)), true));
    const res = await handler(event(), context).finally(() => spy.mockRestore());
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ "Content-Type": "application/json", "Cache-Control": "no-store" });
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ Region: "eu-west-1", Pool: "default" });
    const emf = written
      .join("")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(emf).toContainEqual(expect.objectContaining({ Pool: "default", Vends: 1 }));
    expect(written.join("")).not.toContain(body.ActivationCode);
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

  it("points the install script at the endpoint alias a request came through, and at nothing else", async () => {
    const publicUrl = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod";
    const alias = "abc123-vpce-0a1b2c3d4e5f60718.execute-api.eu-west-1.amazonaws.com";
    const handler = await loadHandler({
      ...awsEnv(),
      BROKER_PUBLIC_URL: publicUrl,
      BROKER_VPC_ENDPOINT_FOR_API_GATEWAY: "vpce-0a1b2c3d4e5f60718",
    });
    const viaAlias = await handler(
      event({ path: "/install.sh", headers: { Host: alias }, requestContext: { stage: "prod" } as never }),
      context,
    );
    expect(viaAlias.body).toContain(`BROKER_URL="\${BROKER_URL:-https://${alias}/prod}"`);
    const forged = await handler(
      event({ path: "/install.sh", headers: { Host: "evil.example.com" } }),
      context,
    );
    expect(forged.body).toContain(`BROKER_URL="\${BROKER_URL:-${publicUrl}}"`);
    expect(forged.body).not.toContain("evil.example.com");
  });

  it("answers a generic 500 when misconfigured, naming nothing internal; the log names the setting", async () => {
    const handler = await loadHandler({ ...awsEnv(), BROKER_LEASE_SECONDZ: "30" });
    // The Powertools logger writes JSON lines straight to stdout/stderr: read them, don't print them.
    const logged: string[] = [];
    const capture = (chunk: unknown) => (logged.push(String(chunk)), true);
    const spies = [
      vi.spyOn(process.stdout, "write").mockImplementation(capture),
      vi.spyOn(process.stderr, "write").mockImplementation(capture),
    ];
    const res = await handler(event(), context).finally(() => spies.forEach((spy) => spy.mockRestore()));
    const lines = logged
      .join("")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([expect.objectContaining({ level: "ERROR", message: "broker is misconfigured" })]);
    expect(JSON.stringify(lines[0])).toContain("BROKER_LEASE_SECONDZ");
    expect(res.statusCode).toBe(500);
    expect(JSON.parse(res.body).error).toEqual({
      code: "InternalError",
      message: "Internal error; quote the request id when reporting it.",
      requestId: "apigw-request-1",
    });
  });

  describe("standby refills (I9)", () => {
    it("an asynchronous refill event makes the pool's next standby, once", async () => {
      const handler = await loadHandler({
        ...awsEnv(),
        BROKER_POOLS: JSON.stringify({ pools: { refill: { registrationLimit: 1 } } }),
      });
      const ours = () =>
        aws.emulator.controls.activations().filter((a) => a.tags.some((t) => t.Value === "refill"));
      const vend = async () => (await handler(event({ path: "/activations/refill" }), context)).statusCode;
      expect(await vend()).toBe(200); // the rotation: the current activation and its standby
      expect(ours()).toHaveLength(2);
      expect(await vend()).toBe(200); // the standby's one slot: the pool needs the next one
      const refill = { kind: "activation-broker.refill-standby", pool: "refill" } as const;
      // The in-process refill may already have run (no AWS_LAMBDA_FUNCTION_NAME here); either
      // way the pool ends with exactly one new standby, and a second event changes nothing.
      await handler(refill, context);
      expect(await handler(refill, context)).toEqual({ refilled: false });
      expect(ours()).toHaveLength(3);
    });

    it("on Lambda, a vend that finds no standby invokes the function asynchronously", async () => {
      const invocations: { url: string; type: unknown; body: string }[] = [];
      // Lambda's Invoke endpoint, as the SDK calls it; the emulated AWS does not implement Lambda.
      const capture = createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          invocations.push({ url: req.url ?? "", type: req.headers["x-amz-invocation-type"], body });
          res.writeHead(202, { "Content-Type": "application/json" }).end("");
        });
      });
      await new Promise<void>((resolve) => capture.listen(0, "127.0.0.1", resolve));
      try {
        const { port } = capture.address() as AddressInfo;
        const handler = await loadHandler({
          ...awsEnv(),
          BROKER_POOLS: JSON.stringify({ pools: { invoked: { registrationLimit: 5 } } }),
          AWS_LAMBDA_FUNCTION_NAME: "broker-fn",
          AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${port}`,
        });
        const vend = async () =>
          expect((await handler(event({ path: "/activations/invoked" }), context)).statusCode).toBe(200);
        // The first vend's rotation makes the current activation and its standby together: the
        // five slots of the current one leave the stock at its depth, so nothing is asked yet.
        for (let i = 0; i < 5; i++) await vend();
        expect(invocations).toEqual([]);
        // The sixth takes slot 1 of the standby: the pool has no unused standby left; the seventh
        // finds it missing too.
        await vend();
        await vend();
        // Asked once for the missing standby, not once per vend; nothing created in this container.
        expect(invocations).toEqual([
          {
            url: "/2015-03-31/functions/broker-fn/invocations",
            type: "Event",
            body: JSON.stringify({ kind: "activation-broker.refill-standby", pool: "invoked" }),
          },
        ]);
        const ours = aws.emulator.controls
          .activations()
          .filter((a) => a.tags.some((t) => t.Value === "invoked"));
        // The rotation's two (current and standby); the refill is the invoked function's to make.
        expect(ours).toHaveLength(2);
      } finally {
        capture.close();
      }
    });

    it("ignores events that are not its own refill event", async () => {
      const { isRefillEvent } = await import("../../src/aws/lambda-standby-refill");
      expect(isRefillEvent({ kind: "activation-broker.refill-standby", pool: "default" })).toBe(true);
      expect(isRefillEvent({ kind: "activation-broker.refill-standby", pool: "../etc" })).toBe(false);
      expect(isRefillEvent({ kind: "other", pool: "default" })).toBe(false);
      expect(isRefillEvent(null)).toBe(false);
      expect(isRefillEvent(event())).toBe(false);
    });
  });
});
