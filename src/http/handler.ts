import { BrokerError, InvalidPoolNameError, PoolNotFoundError, RetryLaterError } from "../core/errors";
import { DEFAULT_POOL, POOL_NAME_PATTERN } from "../core/pool-config";
import type { Logger } from "../core/ports";
import type { Vendor } from "../core/vend";
import { errorResponse, HttpError } from "./status";

/** A transport-neutral request: the Lambda and Node-server adapters both build one. */
export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly requestId: string;
  /** The URL clients reach this broker at (scheme, host and stage), for the install scripts. */
  readonly baseUrl: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type HttpHandler = (request: HttpRequest) => Promise<HttpResponse>;

export interface InstallScriptRenderer {
  (kind: "sh" | "ps1", values: { brokerUrl: string; pool: string }): string;
}

export interface HandlerDependencies {
  readonly vendor: Vendor;
  readonly region: string;
  readonly logger: Logger;
  readonly renderInstallScript?: InstallScriptRenderer;
  /** `GET /nodeconfig.yaml` (src/http/nodeconfig.ts); absent, the path is not found. */
  readonly nodeConfig?: (request: HttpRequest) => Promise<HttpResponse>;
}

const NO_STORE = { "Cache-Control": "no-store" };

/**
 * DESIGN.md §5: `GET /` and `GET /activations/{pool}` hand out a pair; `GET /install.sh` and
 * `GET /install.ps1` serve the bootstrap scripts with this broker's URL filled in; `GET /healthz`
 * is a liveness check that costs nothing.
 */
export function createHttpHandler(deps: HandlerDependencies): HttpHandler {
  const { vendor, region, logger } = deps;

  async function vend(pool: string): Promise<HttpResponse> {
    const pair = await vendor.vend(pool);
    logger.info("vended", { pool: pair.pool, activationId: pair.activationId });
    return json(200, {
      ActivationId: pair.activationId,
      ActivationCode: pair.activationCode,
      Region: region,
      ExpirationDate: new Date(pair.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
      Pool: pair.pool,
    });
  }

  function installScript(kind: "sh" | "ps1", request: HttpRequest): HttpResponse {
    if (!deps.renderInstallScript) throw new HttpError("NotFound", "No install scripts are bundled.");
    const pool = request.query.pool ?? DEFAULT_POOL;
    if (!POOL_NAME_PATTERN.test(pool)) throw new InvalidPoolNameError(pool);
    if (!vendor.poolNames().includes(pool)) throw new PoolNotFoundError(pool);
    let body: string;
    try {
      body = deps.renderInstallScript(kind, { brokerUrl: request.baseUrl, pool });
    } catch {
      // The renderer refuses values that could break out of the script's quotes (a hostile Host).
      throw new HttpError("InvalidParameter", "The request's host cannot be put into an install script.");
    }
    const type = kind === "sh" ? "text/x-shellscript" : "text/plain";
    return { status: 200, headers: { "Content-Type": `${type}; charset=utf-8`, ...NO_STORE }, body };
  }

  function route(request: HttpRequest): () => Promise<HttpResponse> | HttpResponse {
    const path = request.path.replace(/\/+$/, "") || "/";
    const segments = path.split("/").slice(1);
    if (path === "/") return () => vend(DEFAULT_POOL);
    if (segments[0] === "activations" && segments.length === 2) {
      const pool = decodeSegment(segments[1]!);
      return () => vend(pool); // the vendor rejects a malformed name (400) before any AWS call
    }
    // Liveness for load balancers in standalone mode: answers without touching AWS, because a
    // health check pointed at "/" would reserve a registration slot every few seconds.
    if (path === "/healthz") return () => json(200, { status: "ok" });
    if (path === "/install.sh") return () => installScript("sh", request);
    if (path === "/install.ps1") return () => installScript("ps1", request);
    const { nodeConfig } = deps;
    if (path === "/nodeconfig.yaml" && nodeConfig) return () => nodeConfig(request);
    throw new HttpError("NotFound", `No route for ${request.path}.`);
  }

  return async (request) => {
    try {
      const action = route(request);
      if (request.method !== "GET") {
        throw new HttpError("MethodNotAllowed", `Method ${request.method} is not allowed.`, { Allow: "GET" });
      }
      return await action();
    } catch (error) {
      return failed(error, request, logger);
    }
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // malformed escapes then fail the pool-name check
  }
}

/** Logs the failure for the operator and answers the client through the one error body. */
function failed(error: unknown, request: HttpRequest, logger: Logger): HttpResponse {
  const response = errorResponse(error, request.requestId);
  const code = error instanceof BrokerError ? error.code : "InternalError";
  const details = { code, status: response.status, path: request.path, error: describe(error) };
  if (error instanceof RetryLaterError || response.status < 500) logger.warn("request refused", details);
  else logger.error("request failed", details);
  return response;
}

/** Error name, code and message — never the request input, so never a code. */
function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const cause = error.cause instanceof Error ? { cause: `${error.cause.name}: ${error.cause.message}` } : {};
  return { name: error.name, message: error.message, ...cause };
}

function json(status: number, body: unknown): HttpResponse {
  return {
    status,
    headers: { "Content-Type": "application/json", ...NO_STORE },
    body: JSON.stringify(body),
  };
}
