import { describe, expect, it } from "vitest";
import { ThrottledError, UpstreamUnavailableError } from "../../src/core/errors";
import { transientError } from "../../src/aws/sdk-errors";

/** An error shaped as the SDK throws it: the wire code as name, plus fault and metadata. */
function sdkError(name: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, ...extra });
}

describe("transientError (the SDK's own classification, @smithy/core/retry)", () => {
  it("leaves anything that is not an Error alone, whatever fields it carries", () => {
    expect(transientError({ name: "ThrottlingException", $fault: "server" }, "SSM", 2)).toBeUndefined();
    expect(transientError("ThrottlingException", "SSM", 2)).toBeUndefined();
  });

  it.each([
    ["ThrottlingException", sdkError("ThrottlingException", { $fault: "client" })],
    ["ProvisionedThroughputExceededException", sdkError("ProvisionedThroughputExceededException")],
    ["an HTTP 429", sdkError("SomethingNew", { $metadata: { httpStatusCode: 429 } })],
    ["SSM's TooManyUpdates, which the SDK's list lacks", sdkError("TooManyUpdates")],
  ])("calls %s throttling", (_, error) => {
    const result = transientError(error, "SSM", 2);
    expect(result).toBeInstanceOf(ThrottledError);
    expect(result).toMatchObject({ service: "SSM", retryAfterSeconds: 2, cause: error });
  });

  it.each([
    ["a socket reset", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })],
    ["a refused connection", Object.assign(new Error("connect"), { code: "ECONNREFUSED" })],
    ["an unknown host", Object.assign(new Error("getaddrinfo"), { code: "ENOTFOUND" })],
    ["the SDK's timeout", sdkError("TimeoutError")],
    ["an HTTP 503", sdkError("ServiceUnavailable", { $metadata: { httpStatusCode: 503 } })],
    ["any server fault", sdkError("InternalServerError", { $fault: "server" })],
  ])("calls %s unavailable", (_, error) => {
    expect(transientError(error, "DynamoDB", 1)).toBeInstanceOf(UpstreamUnavailableError);
  });

  it.each([
    [
      "a validation error",
      sdkError("ValidationException", { $fault: "client", $metadata: { httpStatusCode: 400 } }),
    ],
    [
      "an access denial",
      sdkError("AccessDeniedException", { $fault: "client", $metadata: { httpStatusCode: 400 } }),
    ],
    ["an abort", sdkError("AbortError")],
    ["a thrown string", "boom"],
  ])("leaves %s alone", (_, error) => {
    expect(transientError(error, "SSM", 1)).toBeUndefined();
  });
});
