import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { createAwsClients } from "../aws/clients";
import { createBroker, type Broker } from "../composition";
import { createLogger } from "../logging";
import { loadSettings } from "../settings";
import type { HttpHandler, HttpRequest } from "./handler";
import { errorResponse } from "./status";

const { logger, powertools } = createLogger();

let broker: Broker | undefined;
let publicUrl: string | undefined;

/** Built on the first request and kept for the container's life: the code cache lives here (I4). */
function init(): HttpHandler {
  if (!broker) {
    const settings = loadSettings();
    publicUrl = settings.publicUrl;
    broker = createBroker({ settings, clients: createAwsClients({ region: settings.region }), logger });
  }
  return broker.handler;
}

/** API Gateway REST API (proxy integration) → the framework-free handler. */
export async function handler(event: APIGatewayProxyEvent, context: Context): Promise<APIGatewayProxyResult> {
  powertools.addContext(context);
  const requestId = event.requestContext?.requestId ?? context.awsRequestId;
  let handle: HttpHandler;
  try {
    handle = init();
  } catch (error) {
    // A configuration error is the operator's: say so in the log, not to the client.
    logger.error("broker is misconfigured", {
      error: error instanceof Error ? error.message : String(error),
    });
    const response = errorResponse(error, requestId);
    return { statusCode: response.status, headers: { ...response.headers }, body: response.body };
  }
  const request: HttpRequest = {
    method: event.httpMethod,
    path: event.path ?? "/",
    query: event.queryStringParameters ?? {},
    requestId,
    baseUrl: publicUrl ?? baseUrlOf(event),
  };
  const response = await handle(request);
  return { statusCode: response.status, headers: { ...response.headers }, body: response.body };
}

function baseUrlOf(event: APIGatewayProxyEvent): string {
  const host = event.requestContext?.domainName ?? event.headers?.Host ?? event.headers?.host ?? "localhost";
  const stage = event.requestContext?.stage;
  return stage && stage !== "$default" ? `https://${host}/${stage}` : `https://${host}`;
}
