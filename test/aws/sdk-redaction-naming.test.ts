import { describe, expect, it } from "vitest";
import { RedactedSdkError, isClientFault, isSdkError, sdkErrorName } from "../../src/aws/sdk-errors";
import { isValidParameterPrefix, parameterName, poolFromKey, poolKey } from "../../src/aws/naming";

/** Shaped like the SDK's service exceptions: name = wire code, $fault, $metadata. */
function sdkError(name: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name}: secret-looking body`), { name, ...extra });
}

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
