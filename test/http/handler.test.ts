import { describe, expect, it } from "vitest";
import { ThrottledError } from "../../src/core/errors";
import { createHttpHandler, TEXT_VALUE, wantsText, type HttpRequest } from "../../src/http/handler";
import { toHttpRequest } from "../../src/http/lambda";
import { CapturingLogger } from "../support/fakes";
import { aVendor } from "../support/vendor-mother";

/** A rotation budget no test here reaches (the budget has its own cases). */
const ANY_BUDGET = { max: 1_000_000, windowMs: 3_600_000 };

function setup(pools = {}) {
  const fx = aVendor({ pools, options: { rotationWaitMs: 1_000 } });
  const logger = new CapturingLogger();
  const handle = createHttpHandler({
    vendor: fx.vendor,
    region: "eu-west-1",
    logger,
    renderInstallScript: (kind, v) => `${kind} ${v.brokerUrl} ${v.pool}`,
  });
  const get = (path: string, extra: Partial<HttpRequest> = {}) =>
    handle({
      method: "GET",
      path,
      query: {},
      requestId: "req-1",
      baseUrl: "https://broker.example",
      ...extra,
    });
  return { ...fx, handle, get, logger };
}

describe("HTTP handler", () => {
  it("serves the reference client contract on GET /", async () => {
    const { get, activations } = setup();
    const res = await get("/");
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({ "Content-Type": "application/json", "Cache-Control": "no-store" });
    const body = JSON.parse(res.body);
    expect(body).toEqual({
      ActivationId: activations.created[0]!.activationId,
      ActivationCode: activations.created[0]!.code,
      Region: "eu-west-1",
      ExpirationDate: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      Pool: "default",
    });
  });

  it("serves a named pool", async () => {
    const { get } = setup({ linux: { registrationLimit: 5 } });
    const res = await get("/activations/linux");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).Pool).toBe("linux");
  });

  it.each([
    ["/activations/unknown", 404, "PoolNotFound"],
    ["/activations/bad%2Fname", 400, "InvalidPoolName"],
    ["/activations/" + "x".repeat(65), 400, "InvalidPoolName"],
    ["/activations/a%20b", 400, "InvalidPoolName"],
    ["/nowhere", 404, "NotFound"],
    ["/activations/default/extra", 404, "NotFound"],
  ])("GET %s → %i %s", async (path, status, code) => {
    const { get } = setup();
    const res = await get(path);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body)).toEqual({
      error: { code, message: expect.any(String), requestId: "req-1" },
    });
    expect(res.headers["Cache-Control"]).toBe("no-store");
  });

  it.each(["POST", "PUT", "DELETE", "PATCH"])("%s on a known path → 405 with Allow", async (method) => {
    const { get } = setup();
    const res = await get("/activations/default", { method });
    expect(res.status).toBe(405);
    expect(res.headers.Allow).toBe("GET");
    expect(JSON.parse(res.body).error.code).toBe("MethodNotAllowed");
  });

  it("answers 503 with Retry-After when AWS throttles", async () => {
    const { get, activations } = setup();
    activations.beforeCreate = () => {
      throw new ThrottledError("SSM", 2);
    };
    const res = await get("/");
    expect(res.status).toBe(503);
    expect(res.headers["Retry-After"]).toBe("2");
    expect(JSON.parse(res.body).error.code).toBe("Throttled");
  });

  it("answers 503 with Retry-After while another request holds the rotation lease", async () => {
    const { get, store, clock } = setup();
    await store.acquireLease("default", {
      budget: { ...ANY_BUDGET, windowStart: undefined }, // a pool that never rotated
      owner: "x",
      generation: 0,
      now: clock.now(),
      deadline: clock.now() + 30_000,
    });
    const res = await get("/");
    expect(res.status).toBe(503);
    expect(Number(res.headers["Retry-After"])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(res.body).error.code).toBe("RotationInProgress");
  });

  it("hides unexpected errors behind a generic 500 with the request id", async () => {
    const { get, activations, logger } = setup();
    activations.beforeCreate = () => {
      throw new Error("socket hang up at 10.0.0.1");
    };
    const res = await get("/");
    expect(res.status).toBe(500);
    expect(res.body).not.toContain("10.0.0.1");
    expect(res.body).not.toContain("at ");
    expect(JSON.parse(res.body).error).toMatchObject({ code: "InternalError", requestId: "req-1" });
    expect(logger.text()).toContain("socket hang up");
  });

  it("serves the install scripts for a configured pool, with the broker URL", async () => {
    const { get } = setup({ linux: {} });
    const sh = await get("/install.sh", { query: { pool: "linux" } });
    expect(sh.status).toBe(200);
    expect(sh.body).toBe("sh https://broker.example linux");
    expect((await get("/install.ps1")).body).toBe("ps1 https://broker.example default");
    expect((await get("/install.sh", { query: { pool: "nope" } })).status).toBe(404);
    expect((await get("/install.sh", { query: { pool: "$(reboot)" } })).status).toBe(400);
  });

  it("serves GET /install-eks.sh as a shell script", async () => {
    const { get } = setup({ edge: {} });
    const res = await get("/install-eks.sh", { query: { pool: "edge" } });
    expect(res.status).toBe(200);
    expect(res.body).toBe("eks https://broker.example edge");
    expect(res.headers["Content-Type"]).toBe("text/x-shellscript; charset=utf-8");
  });

  it("answers Accept: text/plain with KEY=value lines a shell `read` cannot misread", async () => {
    const { get, activations } = setup({ linux: {} });
    const res = await get("/activations/linux", { accept: "text/plain" });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      "Content-Type": "text/plain; charset=utf-8",
      "Cache-Control": "no-store",
    });
    const created = activations.created[0]!;
    expect(res.body).toMatch(
      new RegExp(
        `^ACTIVATION_ID=${created.activationId}\nACTIVATION_CODE=${created.code.replace(/[+/=]/g, "\\$&")}\n` +
          "REGION=eu-west-1\nEXPIRATION_DATE=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\nPOOL=linux\n$",
      ),
    );
    for (const line of res.body.trimEnd().split("\n")) expect(line).toMatch(/^[A-Z_]+=[A-Za-z0-9._:+/=-]+$/);
    expect((await get("/", { accept: "text/plain" })).body).toContain("POOL=default\n");
  });

  it("refuses (500) to put a value outside the safe set into a text answer", async () => {
    const fx = aVendor({ pools: {} });
    const handle = createHttpHandler({
      vendor: fx.vendor,
      region: "eu-west-1 $(id)",
      logger: new CapturingLogger(),
    });
    const res = await handle({ method: "GET", path: "/", query: {}, requestId: "r", accept: "text/plain" });
    expect(res.status).toBe(500);
    expect(res.body).not.toContain("$(id)");
    expect(TEXT_VALUE.test("eu-west-1")).toBe(true);
    for (const bad of ["a b", "a'b", 'a"b', "a\\b", "a$b", "a`b", "a\nb", ""])
      expect(TEXT_VALUE.test(bad)).toBe(false);
  });

  it.each([
    [undefined, false],
    ["application/json", false],
    ["*/*", false],
    ["text/*", false],
    ["application/json, text/plain", false],
    ["text/plain", true],
    ["TEXT/PLAIN; charset=utf-8", true],
    ["text/plain;q=0.5, application/json", true],
    ["text/html, text/plain", true],
  ])("Accept %j asks for text: %s (JSON stays the default)", (accept, text) => {
    expect(wantsText(accept)).toBe(text);
  });

  it("gets the Accept header from API Gateway events, whatever its case", () => {
    const context = { awsRequestId: "l" } as Parameters<typeof toHttpRequest>[1];
    const event = (headers: Record<string, string>) =>
      ({
        httpMethod: "GET",
        path: "/",
        headers,
        requestContext: { requestId: "a" },
      }) as unknown as Parameters<typeof toHttpRequest>[0];
    expect(toHttpRequest(event({ accept: "text/plain" }), context, undefined).accept).toBe("text/plain");
    expect(toHttpRequest(event({ Accept: "text/plain" }), context, undefined).accept).toBe("text/plain");
    expect(toHttpRequest(event({}), context, undefined).accept).toBeUndefined();
  });

  it("answers GET /healthz without reserving a slot or calling AWS", async () => {
    const { get, store, activations } = setup();
    const res = await get("/healthz");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "ok" });
    expect(store.writes).toBe(0);
    expect(activations.created).toHaveLength(0);
  });

  it("never logs the code", async () => {
    const { get, logger, activations } = setup({ default: { registrationLimit: 2 } });
    for (let i = 0; i < 5; i++) await get("/");
    for (const a of activations.created) expect(logger.text()).not.toContain(a.code);
  });
});
