import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import type { HttpRequest, HttpResponse } from "./handler";
import { scriptBaseUrl } from "./script-url";

/**
 * API Gateway REST API (proxy integration) ↔ the framework-free handler. Pure translation: the
 * wiring (settings, clients, logger) lives in src/entry/lambda.ts.
 */

/** The request id the client sees: API Gateway's when there is one, else Lambda's. */
export function requestIdOf(event: APIGatewayProxyEvent, context: Context): string {
  return event.requestContext?.requestId ?? context.awsRequestId;
}

/**
 * With `publicUrl` (BROKER_PUBLIC_URL) the scripts point at it, or at the endpoint alias the event
 * came through when that is one of the API's own names (`vpcEndpointIds`, see script-url.ts).
 */
export function toHttpRequest(
  event: APIGatewayProxyEvent,
  context: Context,
  publicUrl: string | undefined,
  vpcEndpointIds: readonly string[] = [],
): HttpRequest {
  return {
    method: event.httpMethod,
    path: event.path ?? "/",
    query: event.queryStringParameters ?? {},
    requestId: requestIdOf(event, context),
    ...acceptOf(event),
    baseUrl: publicUrl ? scriptBaseUrl(publicUrl, vpcEndpointIds, hostOf(event)) : baseUrlOf(event),
  };
}

export function toProxyResult(response: HttpResponse): APIGatewayProxyResult {
  return { statusCode: response.status, headers: { ...response.headers }, body: response.body };
}

/** API Gateway passes header names as the client sent them. */
function acceptOf(event: APIGatewayProxyEvent): { accept?: string } {
  const name = Object.keys(event.headers ?? {}).find((key) => key.toLowerCase() === "accept");
  const value = name === undefined ? undefined : event.headers[name];
  return value === undefined || value === null ? {} : { accept: value };
}

function hostOf(event: APIGatewayProxyEvent): string | undefined {
  return event.headers?.Host ?? event.headers?.host ?? event.requestContext?.domainName;
}

function baseUrlOf(event: APIGatewayProxyEvent): string {
  const host = event.requestContext?.domainName ?? event.headers?.Host ?? event.headers?.host ?? "localhost";
  const stage = event.requestContext?.stage;
  return stage && stage !== "$default" ? `https://${host}/${stage}` : `https://${host}`;
}
