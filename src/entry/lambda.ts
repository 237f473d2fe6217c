/**
 * The Lambda function's entry point (the CDK app bundles this file): wires settings, AWS clients
 * and the logger to the broker, and hands API Gateway events to the pure adapter.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { createAwsClients } from "../aws/clients";
import { createBroker } from "../composition";
import type { HttpHandler } from "../http/handler";
import { requestIdOf, toHttpRequest, toProxyResult } from "../http/lambda";
import { errorResponse } from "../http/status";
import { createLogger } from "../logging";
import { loadSettings } from "../settings";

const { logger, powertools } = createLogger();

interface Wiring {
  readonly handle: HttpHandler;
  readonly publicUrl: string | undefined;
}

let wiring: Wiring | undefined;

/** Built on the first request and kept for the container's life: the code cache lives here (I4). */
function init(): Wiring {
  if (!wiring) {
    const settings = loadSettings();
    const clients = createAwsClients({ region: settings.region });
    wiring = { handle: createBroker({ settings, clients, logger }).handler, publicUrl: settings.publicUrl };
  }
  return wiring;
}

export async function handler(event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> {
  powertools.addContext(context);
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
  return toProxyResult(await wired.handle(toHttpRequest(event, context, wired.publicUrl)));
}
