import { describe, expect, it } from "vitest";
import { ThrottledError, UpstreamUnavailableError } from "../../src/core/errors";
import {
  RedactedSdkError,
  isClientFault,
  isSdkError,
  sdkErrorName,
  transientError,
} from "../../src/aws/sdk-errors";
import { isValidParameterPrefix, parameterName, poolFromKey, poolKey } from "../../src/aws/naming";

/** Shaped like the SDK's service exceptions: name = wire code, $fault, $metadata. */
function sdkError(name: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name}: secret-looking body`), { name, ...extra });
}

describe("transientError: what the client may retry (503), and what it may not", () => {
  it.each([
    "ThrottlingException",
    "TooManyUpdates",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
  ])("%s is Throttled, with the caller's Retry-After and the original as cause", (name) => {
    const original = sdkError(name, { $fault: "client" });
    const error = transientError(original, "SSM", 4);
    expect(error).toBeInstanceOf(ThrottledError);
    expect(error).toMatchObject({ service: "SSM", retryAfterSeconds: 4, cause: original });
  });

  it("passes a redacted cause through instead of the original when given one", () => {
    const original = sdkError("ThrottlingException");
    const redacted = new RedactedSdkError(original, "GetParameter");
    expect(transientError(original, "Parameter Store", 1, redacted)?.cause).toBe(redacted);
  });

  const upstream: Array<[string, Error]> = [
    ["a server fault", sdkError("InternalServerError", { $fault: "server" })],
    ["an SDK timeout", sdkError("TimeoutError")],
    ...["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EAI_AGAIN"].map((code): [string, Error] => [
      `a socket's ${code}`,
      Object.assign(new Error("socket"), { code }),
    ]),
  ];
  it.each(upstream)("%s is UpstreamUnavailable, retry after 1 s", (_, original) => {
    const error = transientError(original, "DynamoDB", 9);
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error).toMatchObject({ service: "DynamoDB", retryAfterSeconds: 1, cause: original });
  });

  it.each([
    ["a client fault", sdkError("ValidationException", { $fault: "client" })],
    ["another socket code", Object.assign(new Error("socket"), { code: "ENOTFOUND_X" })],
    ["a numeric code", Object.assign(new Error("x"), { code: 5 })],
    ["a thrown string", "ThrottlingException"],
    ["undefined", undefined],
  ])("%s is not transient", (_, original) => {
    expect(transientError(original, "SSM", 1)).toBeUndefined();
  });
});

describe("isClientFault: AWS refused the request itself", () => {
  it.each([
    [sdkError("ValidationException", { $fault: "client" }), true],
    [sdkError("X", { $metadata: { httpStatusCode: 400 } }), true],
    [sdkError("X", { $metadata: { httpStatusCode: 499 } }), true],
    [sdkError("X", { $metadata: { httpStatusCode: 399 } }), false],
    [sdkError("X", { $metadata: { httpStatusCode: 500 } }), false],
    [sdkError("X", { $metadata: { httpStatusCode: "400" } }), false],
    [sdkError("X", { $fault: "server" }), false],
    [sdkError("X"), false],
    [{ $fault: "client" }, false],
  ])("%o → %s", (error, expected) => {
    expect(isClientFault(error)).toBe(expected);
  });
});

describe("sdkErrorName / isSdkError", () => {
  it("reads the wire name of an Error only", () => {
    expect(sdkErrorName(sdkError("ParameterNotFound"))).toBe("ParameterNotFound");
    expect(sdkErrorName({ name: "ParameterNotFound" })).toBeUndefined();
    expect(isSdkError(sdkError("B"), "A", "B")).toBe(true);
    expect(isSdkError(sdkError("C"), "A", "B")).toBe(false);
    expect(isSdkError("A", "A")).toBe(false);
  });
});

describe("RedactedSdkError: what may be logged of an exchange that carried a code", () => {
  it("keeps the wire name, the fault, the status and the request id, and nothing of the body", () => {
    const original = sdkError("ThrottlingException", {
      $fault: "client",
      $metadata: { httpStatusCode: 400, requestId: "req-1", attempts: 3 },
      $response: { body: "code" },
    });
    const redacted = new RedactedSdkError(original, "PutParameter");
    expect(redacted.name).toBe("ThrottlingException");
    expect(redacted.message).toBe(
      "PutParameter failed with ThrottlingException (HTTP 400); details withheld because the exchange" +
        " carried an Activation Code (request id req-1).",
    );
    expect(redacted.$fault).toBe("client");
    expect(redacted.$metadata).toEqual({ httpStatusCode: 400, requestId: "req-1" });
    expect(redacted.cause).toBeUndefined();
    expect(JSON.stringify({ ...redacted, message: redacted.message })).not.toContain("secret-looking");
  });

  it("says only what it knows of an error without status, request id or fault", () => {
    const redacted = new RedactedSdkError(sdkError("Oops", { $metadata: {} }), "GetParameter");
    expect(redacted.message).toBe(
      "GetParameter failed with Oops; details withheld because the exchange carried an Activation Code.",
    );
    expect(redacted.$fault).toBeUndefined();
    expect(redacted.$metadata).toEqual({});
  });

  it("names the type of something thrown that is not an Error", () => {
    expect(new RedactedSdkError("text", "GetParameter").name).toBe("string");
    expect(new RedactedSdkError(undefined, "GetParameter").$metadata).toBeUndefined();
  });
});

describe("naming", () => {
  it("keys a pool row by its name, and reads the name back only from pool keys", () => {
    expect(poolKey("web")).toBe("POOL#web");
    expect(poolFromKey(poolKey("web"))).toBe("web");
    expect(poolFromKey("LOCK#web")).toBeUndefined();
    expect(poolFromKey("xPOOL#web")).toBeUndefined();
  });

  it("addresses a code by prefix, pool and activation", () => {
    expect(parameterName("/activation-broker", "web", "act-1")).toBe("/activation-broker/web/act-1");
  });

  it.each([
    ["/activation-broker", true],
    ["/a/b.c/d_e-f", true],
    ["activation-broker", false],
    ["/a/", false],
    ["/a//b", false],
    ["/", false],
    ["/a b", false],
    ["/a\n", false],
    ["x/a", false],
  ])("parameter prefix %j valid: %s", (prefix, valid) => {
    expect(isValidParameterPrefix(prefix)).toBe(valid);
  });
});
