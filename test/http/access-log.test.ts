import { describe, expect, it } from "vitest";
import { ThrottledError } from "../../src/core/errors";
import { createHttpHandler, type HttpRequest } from "../../src/http/handler";
import { readableLogger } from "../../src/logging";
import { CapturingLogger, RecordingMetrics } from "../support/fakes";
import { aVendor } from "../support/vendor-mother";

function setup() {
  const metrics = new RecordingMetrics();
  const fx = aVendor({ pools: { web: { registrationLimit: 3 } }, options: { rotationWaitMs: 1_000 } });
  const logger = new CapturingLogger();
  const handle = createHttpHandler({ vendor: fx.vendor, region: "eu-west-1", logger, metrics });
  let n = 0;
  const get = (path: string, extra: Partial<HttpRequest> = {}) =>
    handle({ method: "GET", path, query: {}, requestId: `req-${++n}`, baseUrl: "https://b", ...extra });
  return { ...fx, handle, get, logger, metrics };
}

describe("one log line per request", () => {
  it("names request id, method, path, pool, status, outcome, activation, slot/limit and ms", async () => {
    const { get, logger, activations } = setup();
    await get("/activations/web");
    await get("/activations/web");
    expect(logger.lines).toHaveLength(2);
    const [first, second] = logger.lines;
    expect(first).toMatchObject({ level: "info", message: "request" });
    expect(first!.extra).toEqual({
      requestId: "req-1",
      method: "GET",
      path: "/activations/web",
      pool: "web",
      status: 200,
      outcome: "rotated",
      activationId: activations.created[0]!.activationId,
      slot: "1/3",
      ms: expect.any(Number),
    });
    expect(second!.extra).toMatchObject({ outcome: "vended", slot: "2/3", requestId: "req-2" });
    expect(logger.text()).not.toContain(activations.created[0]!.code);
  });

  it("logs a refusal once, with its pool and error code, at warn", async () => {
    const { get, logger } = setup();
    const res = await get("/activations/nope");
    expect(res.status).toBe(404);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatchObject({
      level: "warn",
      message: "request",
      extra: { pool: "nope", status: 404, outcome: "PoolNotFound", requestId: "req-1" },
    });
    const other = await get("/nothing-here", { method: "POST" });
    expect(other.status).toBe(404);
    expect(logger.lines[1]!.extra).toMatchObject({ outcome: "NotFound", method: "POST" });
    expect(logger.lines[1]!.extra).not.toHaveProperty("pool");
  });

  it("logs a failure at error level with the request id the 500 body quotes", async () => {
    const { get, logger, activations } = setup();
    activations.beforeCreate = () => {
      throw new Error("boom");
    };
    const res = await get("/activations/web");
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body).error.requestId).toBe("req-1");
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatchObject({
      level: "error",
      extra: { requestId: "req-1", outcome: "InternalError", error: { name: "Error", message: "boom" } },
    });
  });
});

describe("request metrics", () => {
  it("counts vends, rotations, slots left per pool and throttles", async () => {
    const { get, metrics, activations } = setup();
    for (let i = 0; i < 4; i++) await get("/activations/web");
    expect(metrics.sum("Vends")).toBe(4);
    const slots = metrics.points.filter((p) => p.name === "SlotsLeft").map((p) => p.value);
    expect(slots).toEqual([2, 1, 0, 2]);
    expect(metrics.points.every((p) => p.dimensions?.Pool === "web")).toBe(true);

    activations.beforeCreate = () => {
      throw new ThrottledError("SSM", 2);
    };
    for (let i = 0; i < 2; i++) await get("/activations/web"); // the second activation's last slots
    const throttled = await get("/activations/web");
    expect(throttled.status).toBe(503);
    expect(metrics.sum("Throttles")).toBe(1);
    expect(JSON.stringify(metrics.points)).not.toMatch(/code0/);
  });
});

describe("readable log lines on a terminal", () => {
  it("writes one line: time, level, message, key=value", () => {
    const lines: string[] = [];
    const logger = readableLogger("INFO", (l) => lines.push(l));
    logger.debug("hidden");
    logger.warn("request", { method: "GET", path: "/", status: 503, error: { name: "X" } });
    expect(lines).toEqual([
      expect.stringMatching(
        /^\d\d:\d\d:\d\d WARN {2}request method=GET path=\/ status=503 error=\{"name":"X"\}\n$/,
      ),
    ]);
  });
});
