import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import dynalite from "dynalite";
import type { InjectedFailure } from "./controls";

/**
 * DynamoDB is not re-implemented: requests go to dynalite (a DynamoDB implementation on an
 * in-memory LevelDB) through its request listener, in-process, without a second port.
 */
export function createDynamoDbHandler(): RequestListener {
  // Tables become ACTIVE at once, so tests need no waiter.
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const listener = server.listeners("request")[0] as RequestListener | undefined;
  if (!listener) throw new Error("dynalite exposes no request listener");
  return (req: IncomingMessage, res: ServerResponse) => {
    // The emulator accepts any signature, dynalite insists one is present: give unsigned
    // requests (curl) a placeholder so both agree.
    if (!req.headers.authorization) {
      req.headers.authorization =
        "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";
      req.headers["x-amz-date"] ??= "20200101T000000Z";
    }
    listener(req, res);
  };
}

// Operations whose throttling DynamoDB reports as ProvisionedThroughputExceededException; control
// plane calls report ThrottlingException.
// Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
const DATA_PLANE = new Set([
  "GetItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "Query",
  "Scan",
  "BatchGetItem",
  "BatchWriteItem",
  "TransactGetItems",
  "TransactWriteItems",
]);

/** The body DynamoDB answers with for an injected throttle or server error. */
export function dynamoDbFailureBody(operation: string, failure: InjectedFailure): Record<string, string> {
  if (failure.kind === "throttle") {
    return DATA_PLANE.has(operation)
      ? {
          __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
          message:
            "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        }
      : {
          __type: "com.amazon.coral.availability#ThrottlingException",
          message: "Rate of requests exceeds the allowed throughput.",
        };
  }
  return { __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: "Internal server error" };
}
