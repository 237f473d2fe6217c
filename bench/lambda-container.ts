/**
 * One execution environment of the Lambda shape (bench/lambda-shape.ts bundles this file with the
 * real handler, src/entry/lambda.ts, and forks one process per container). It plays the Lambda
 * runtime's part: one invocation at a time, handed over IPC with a Context like Lambda's. The
 * parent freezes the process (SIGSTOP) as soon as the answer is back and thaws it (SIGCONT) for the
 * next invocation, so nothing the handler left running goes on between invocations, as on Lambda.
 *
 * IPC in:  {type: "invoke", id, event, requestId, timeoutMs}
 * IPC out: {type: "ready"} once loaded | {type: "result", id, result} | {type: "result", id, error}
 */
import type { Context } from "aws-lambda";
import { handler } from "../src/entry/lambda";

interface Invoke {
  readonly type: "invoke";
  readonly id: number;
  readonly event: unknown;
  readonly requestId: string;
  readonly timeoutMs: number;
}

if (!process.send) {
  console.error("bench/lambda-container.ts runs under bench/lambda-shape.ts (it needs an IPC channel)");
  process.exit(2);
}

const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? "activation-broker-bench";
const region = process.env.AWS_REGION ?? "us-east-1";
// The handler is overloaded per event type; the runtime hands it whatever the event source sent.
const invokeHandler = handler as unknown as (event: unknown, context: Context) => Promise<unknown>;

function contextFor(message: Invoke): Context {
  const deadline = Date.now() + message.timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: "256",
    awsRequestId: message.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `bench/${process.pid}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

process.on("message", (message: Invoke) => {
  if (message.type !== "invoke") return;
  invokeHandler(message.event, contextFor(message)).then(
    (result) => process.send?.({ type: "result", id: message.id, result }),
    // Only the error's name: a message could carry anything the handler had in hand.
    (error: unknown) =>
      process.send?.({
        type: "result",
        id: message.id,
        error: error instanceof Error ? error.name : "Error",
      }),
  );
});
// The harness is gone (it ended, or died while this process was frozen): nothing left to serve.
process.on("disconnect", () => process.exit(0));
process.send({ type: "ready" });
