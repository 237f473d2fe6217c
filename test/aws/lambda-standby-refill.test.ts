import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLambdaClient, isRefillEvent, selfInvokingRefill } from "../../src/aws/lambda-standby-refill";
import { TEST_CREDENTIALS, TEST_REGION } from "../support/emulated-aws";

/**
 * The refill event is a wire format between two invocations of the broker's function, possibly of
 * different versions during a deployment: the tests spell it out instead of importing it.
 */
const KIND = "activation-broker.refill-standby";

describe("isRefillEvent", () => {
  it("accepts the broker's own refill event for a valid pool name", () => {
    expect(isRefillEvent({ kind: KIND, pool: "web_01-a" })).toBe(true);
  });

  it.each([
    ["null", null],
    ["undefined", undefined],
    ["a string", KIND],
    ["another kind", { kind: "other", pool: "web" }],
    ["no kind", { pool: "web" }],
    ["a pool that is not a string", { kind: KIND, pool: 42 }],
    ["a pool name outside the pattern", { kind: KIND, pool: "../etc" }],
    ["no pool", { kind: KIND }],
    ["an API Gateway event", { httpMethod: "GET", path: "/activations/web" }],
  ])("rejects %s", (_what, event) => {
    expect(isRefillEvent(event)).toBe(false);
  });
});

describe("selfInvokingRefill", () => {
  /** Lambda's Invoke endpoint as the SDK calls it; there is no Lambda emulator. */
  const invocations: { method?: string; url?: string; type: unknown; body: string }[] = [];
  let lambdaApi: Server;
  let client: LambdaClient;

  beforeAll(async () => {
    lambdaApi = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        invocations.push({
          method: req.method,
          url: req.url,
          type: req.headers["x-amz-invocation-type"],
          body,
        });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((resolve) => lambdaApi.listen(0, "127.0.0.1", resolve));
    const { port } = lambdaApi.address() as AddressInfo;
    client = createLambdaClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: TEST_REGION,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    client?.destroy();
    await new Promise((resolve) => lambdaApi?.close(resolve));
  });

  it("invokes the function asynchronously (InvocationType Event) with the pool's refill event", async () => {
    await selfInvokingRefill(client, "broker-fn")("web");
    expect(invocations).toEqual([
      {
        method: "POST",
        url: "/2015-03-31/functions/broker-fn/invocations",
        type: "Event",
        body: JSON.stringify({ kind: KIND, pool: "web" }),
      },
    ]);
    expect(isRefillEvent(JSON.parse(invocations[0]!.body))).toBe(true);
  });
});
