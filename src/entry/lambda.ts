/**
 * The Lambda function's entry point (the CDK app bundles this file): wires settings, AWS clients
 * and the logger to the broker, and hands API Gateway events to the pure adapter.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { createAwsClients } from "../aws/clients";
import {
  createLambdaClient,
  isRefillEvent,
  type RefillEvent,
  selfInvokingRefill,
} from "../aws/lambda-standby-refill";
import { refillElsewhere } from "../core/standby-refill";
import { createBroker, type Broker } from "../composition";
import type { HttpHandler } from "../http/handler";
import { requestIdOf, toHttpRequest, toProxyResult } from "../http/lambda";
import { errorResponse } from "../http/status";
import { createLogger } from "../logging";
import { createMetrics } from "../metrics";
import { loadSettings, readRuntimeEnvironment } from "../settings";

const runtime = readRuntimeEnvironment();
const { logger, powertools } = createLogger(runtime);
const { metrics, flush } = createMetrics();

interface Wiring {
  readonly handle: HttpHandler;
  readonly vendor: Broker["vendor"];
  readonly publicUrl: string | undefined;
  readonly vpcEndpointIds: readonly string[];
}

let wiring: Wiring | undefined;

/** Built on the first request and kept for the container's life: the code cache lives here (I4). */
function init(): Wiring {
  if (!wiring) {
    const settings = loadSettings();
    const clients = createAwsClients({ region: settings.region });
    // Set by the Lambda runtime: standby refills go to an asynchronous invocation of this very
    // function (src/aws/lambda-standby-refill.ts). Outside Lambda they run in the background.
    const functionName = runtime.lambdaFunctionName;
    const broker = createBroker({
      settings,
      clients,
      logger,
      metrics,
      ...(functionName && {
        standbyRefill: refillElsewhere(
          selfInvokingRefill(createLambdaClient({ region: settings.region }), functionName),
          logger,
        ),
      }),
    });
    wiring = {
      handle: broker.handler,
      vendor: broker.vendor,
      publicUrl: settings.publicUrl,
      vpcEndpointIds: settings.vpcEndpointIds,
    };
  }
  return wiring;
}

export function handler(event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult>;
export function handler(event: RefillEvent, context: Context): Promise<{ refilled: boolean }>;
export async function handler(
  event: APIGatewayProxyEvent | RefillEvent,
  context: Context,
): Promise<APIGatewayProxyResult | { refilled: boolean }> {
  powertools.addContext(context);
  if (isRefillEvent(event)) return refill(event);
  let wired: Wiring;
  try {
    wired = init();
  } catch (error) {
    // A configuration error is the operator's: say so in the log, not to the client.
    logger.error("broker is misconfigured", {
      error: error instanceof Error ? error.message : String(error),
    });
    return toProxyResult(errorResponse(error, requestIdOf(event, context)));
  }
  try {
    return toProxyResult(
      await wired.handle(toHttpRequest(event, context, wired.publicUrl, wired.vpcEndpointIds)),
    );
  } finally {
    flush();
  }
}

/**
 * The asynchronous self-invocation: make the pool's next standby (a no-op when it has one), and
 * the next again while a burst uses each one up before it lands.
 */
async function refill(event: RefillEvent): Promise<{ refilled: boolean }> {
  try {
    return { refilled: await init().vendor.refillUntilReady(event.pool) };
  } catch (error) {
    // Lambda would retry a failed asynchronous invocation twice; the next reservation that finds
    // no standby asks again anyway, and the request path rotates on its own meanwhile.
    logger.warn("standby refill failed", {
      pool: event.pool,
      error: error instanceof Error ? error.name : "unknown",
    });
    return { refilled: false };
  } finally {
    flush();
  }
}
