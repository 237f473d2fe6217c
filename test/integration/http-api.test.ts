import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aLocalStack, pools } from "../support/local";
import { TOOLS, missingTools } from "../support/tools";

// Asynchronous on purpose: the broker runs in this process, and a blocking exec would starve it.
const run = promisify(execFile);
const skipCurl = missingTools(TOOLS.curl, TOOLS.jq);

describe("HTTP API over the wire", () => {
  let stack: Awaited<ReturnType<typeof aLocalStack>>;
  beforeAll(async () => {
    stack = await aLocalStack({ BROKER_POOLS: pools({ linux: { registrationLimit: 5 } }) });
  });
  afterAll(() => stack?.close());

  it("GET / answers the reference's client contract, a superset of it", async () => {
    const res = await stack.get("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual([
      "ActivationCode",
      "ActivationId",
      "ExpirationDate",
      "Pool",
      "Region",
    ]);
    expect(body).toMatchObject({ Region: "us-east-1", Pool: "default" });
    expect(body.ActivationId).toMatch(/^[0-9a-f-]{36}$/);
  });

  const clientLine = "works with the reference's own client line: curl -s URL | jq -r '.ActivationCode'";
  it.skipIf(skipCurl)(clientLine + skipCurl, async () => {
    const { stdout } = await run("bash", ["-c", `curl -s ${stack.brokerUrl}/ | jq -r '.ActivationCode'`]);
    const out = stdout.trim();
    expect(out).toMatch(/^[A-Za-z0-9+/=]{20,}$/);
  });

  it.each([
    ["GET", "/activations/linux", 200, undefined],
    ["GET", "/activations/nope", 404, "PoolNotFound"],
    ["GET", "/activations/bad.name", 400, "InvalidPoolName"],
    ["GET", "/what", 404, "NotFound"],
    ["POST", "/", 405, "MethodNotAllowed"],
    ["DELETE", "/activations/linux", 405, "MethodNotAllowed"],
  ])("%s %s → %i", async (method, path, status, code) => {
    const res = await stack.get(path, { method });
    expect(res.status).toBe(status);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as { error?: { code: string; requestId: string } };
    if (code) {
      expect(body.error?.code).toBe(code);
      expect(body.error?.requestId).toBe(res.headers.get("x-request-id"));
    }
    if (status === 405) expect(res.headers.get("allow")).toBe("GET");
  });

  it("costs one DynamoDB write and no SSM call per vend in steady state (I4)", async () => {
    expect((await stack.get("/activations/default")).status).toBe(200);
    await stack.get("/activations/default"); // the code is now cached for this activation
    stack.emulator.controls.resetCounters();
    for (let i = 0; i < 3; i++) expect((await stack.get("/activations/default")).status).toBe(200);
    expect(stack.emulator.controls.counters()).toEqual({ "dynamodb:UpdateItem": 3 });
  });

  it("serves install.sh with its own URL and the pool filled in", async () => {
    const res = await stack.get("/install.sh?pool=linux");
    expect(res.status).toBe(200);
    const script = await res.text();
    expect(script.startsWith("#!")).toBe(true);
    expect(script).toContain(stack.brokerUrl);
    expect(script).toContain("linux");
    expect((await stack.get("/install.ps1")).status).toBe(200);
  });
});
