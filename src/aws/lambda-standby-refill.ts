import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { POOL_NAME_PATTERN } from "../core/pool-config";
import { clientConfig, type AwsClientsOptions } from "./clients";

/**
 * On Lambda the standby is made by an asynchronous invocation of the broker's own function
 * (InvocationType Event): Lambda queues it and answers 202 at once, so the request that noticed
 * the missing standby answers without waiting for CreateActivation, and the refill runs in a
 * container of its own, not in a frozen one.
 *
 * Why not a DynamoDB stream on the pool table: every reservation is a write, so the stream would
 * invoke the function for every batch of vends, and its filters cannot compare two attributes
 * (issued against limit) to pick the few writes that matter. The self-invocation happens once
 * per standby, exactly when one is needed.
 */
export const REFILL_EVENT_KIND = "activation-broker.refill-standby";

export interface RefillEvent {
  readonly kind: typeof REFILL_EVENT_KIND;
  readonly pool: string;
}

/** Only the broker's own refill event passes; anything else is left to the HTTP adapter. */
export function isRefillEvent(event: unknown): event is RefillEvent {
  if (typeof event !== "object" || event === null) return false;
  const { kind, pool } = event as Record<string, unknown>;
  return kind === REFILL_EVENT_KIND && typeof pool === "string" && POOL_NAME_PATTERN.test(pool);
}

/** The function's client for its own asynchronous self-invocation. */
export function createLambdaClient(options: AwsClientsOptions = {}): LambdaClient {
  return new LambdaClient(clientConfig(options));
}

export function selfInvokingRefill(
  client: LambdaClient,
  functionName: string,
): (pool: string) => Promise<void> {
  return async (pool) => {
    const event: RefillEvent = { kind: REFILL_EVENT_KIND, pool };
    await client.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: "Event",
        Payload: new TextEncoder().encode(JSON.stringify(event)),
      }),
    );
  };
}
