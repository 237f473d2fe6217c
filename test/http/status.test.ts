import { describe, expect, it } from "vitest";
import {
  ConfigError,
  PoolNotFoundError,
  SecretNotFoundError,
  ThrottledError,
  UpstreamUnavailableError,
} from "../../src/core/errors";
import { errorResponse, HttpError, statusFor, STATUS_BY_CODE } from "../../src/http/status";

const GENERIC = "Internal error; quote the request id when reporting it.";

function bodyOf(error: unknown) {
  const response = errorResponse(error, "req-9");
  return { ...response, error: (JSON.parse(response.body) as { error: Record<string, string> }).error };
}

describe("error codes and the error body", () => {
  it("maps every code to a status, and refuses unknown codes at compile time", () => {
    expect(statusFor("PoolNotFound")).toBe(404);
    expect(statusFor("Throttled")).toBe(503);
    // @ts-expect-error a mistyped code is a type error, not a silent 500
    expect(statusFor("Throtled")).toBeUndefined();
    expect(Object.values(STATUS_BY_CODE).every((s) => s >= 400 && s < 600)).toBe(true);
  });

  it("shows a client error's code and message", () => {
    const r = bodyOf(new PoolNotFoundError("linux"));
    expect(r.status).toBe(404);
    expect(r.error).toEqual({
      code: "PoolNotFound",
      message: "Pool 'linux' is not configured.",
      requestId: "req-9",
    });
    expect(r.headers).toEqual({ "Content-Type": "application/json", "Cache-Control": "no-store" });
  });

  it("shows a retry-later error's message, with Retry-After", () => {
    const r = bodyOf(new ThrottledError("SSM", 3));
    expect(r.status).toBe(503);
    expect(r.headers["Retry-After"]).toBe("3");
    expect(r.error).toEqual({
      code: "Throttled",
      message: "SSM is throttling requests; retry shortly.",
      requestId: "req-9",
    });
    expect(bodyOf(new UpstreamUnavailableError("DynamoDB", 1)).error.code).toBe("UpstreamUnavailable");
  });

  it("carries an HTTP error's own headers", () => {
    const r = bodyOf(new HttpError("MethodNotAllowed", "Method POST is not allowed.", { Allow: "GET" }));
    expect(r.status).toBe(405);
    expect(r.headers.Allow).toBe("GET");
    expect(r.error.message).toBe("Method POST is not allowed.");
  });

  it.each([
    ["a server-side domain error", new SecretNotFoundError("act-123")],
    ["a configuration error", new ConfigError("BROKER_TABLE_NAME is required")],
    ["an unexpected error", new Error("connect ECONNREFUSED 10.0.0.7:443")],
    ["a thrown non-error", "boom"],
  ])("hides %s behind a generic 500", (_, error) => {
    const r = bodyOf(error);
    expect(r.status).toBe(500);
    expect(r.error).toEqual({ code: "InternalError", message: GENERIC, requestId: "req-9" });
    expect(r.headers["Retry-After"]).toBeUndefined();
  });
});
