import { InvalidPoolNameError, PoolNotFoundError } from "../core/errors";
import { DEFAULT_POOL, POOL_NAME_PATTERN } from "../core/pool-config";
import type { Logger } from "../core/ports";
import type { RefusedPairs } from "../core/refused-pairs";
import type { Vendor } from "../core/vend";
import { errorResponse, HttpError } from "./status";
import { errorOutcome, logRequest, type RequestOutcome } from "./access-log";
import { noMetrics, type Metrics } from "../core/metrics";

/** A transport-neutral request: the Lambda and Node-server adapters both build one. */
export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly requestId: string;
  /**
   * The URL clients reach this broker at (scheme, host and stage), for the install scripts; absent
   * when nothing the operator trusts says it (the scripts are then not served).
   */
  readonly baseUrl?: string;
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
  /** Request metrics (Vends, SlotsLeft, Throttles, …); none by default. */
  readonly metrics?: Metrics;
  readonly renderInstallScript?: InstallScriptRenderer;
  /** `?refused=<ActivationId>` on a vend (src/core/refused-pairs.ts); absent, the query is ignored. */
  readonly refusedPairs?: Pick<RefusedPairs, "heal">;
  /** `GET /nodeconfig.yaml` (src/http/nodeconfig.ts); absent, the path is not found. */
  readonly nodeConfig?: (request: HttpRequest) => Promise<HttpResponse>;
}

const NO_STORE = { "Cache-Control": "no-store" };

/**
 * docs/http-api.md: `GET /` and `GET /activations/{pool}` hand out a pair; `GET /install.sh` and
 * `GET /install.ps1` serve the bootstrap scripts with this broker's URL filled in; `GET /healthz`
 * is a liveness check that costs nothing.
 */
export function createHttpHandler(deps: HandlerDependencies): HttpHandler {
  const { vendor, region, logger } = deps;
  const metrics = deps.metrics ?? noMetrics;

  async function vend(pool: string, note: Note, refused: string | undefined): Promise<HttpResponse> {
    // A server whose pair SSM refused names it: checked with SSM (never trusted), retired if SSM
    // confirms; either way the vend below answers as for any request.
    const verdict =
      refused !== undefined && deps.refusedPairs && vendor.poolNames().includes(pool)
        ? await deps.refusedPairs.heal(pool, refused)
        : undefined;
    const pair = await vendor.vend(pool);
    note.outcome = {
      ...(verdict !== undefined && { refused: verdict }),
      outcome: pair.rotated ? "rotated" : "vended",
      pool: pair.pool,
      activationId: pair.activationId,
      ...(pair.slot !== undefined && { slot: pair.slot }),
      ...(pair.limit !== undefined && { limit: pair.limit }),
    };
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
    if (request.baseUrl === undefined) {
      // A caller's Host header must not choose the URL a server sends its next request to.
      throw new HttpError(
        "NotFound",
        "Install scripts are served only when the broker knows its public URL: set BROKER_PUBLIC_URL, " +
          "or list the TLS proxy in front of it in BROKER_TRUSTED_PROXIES.",
      );
    }
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

  function route(request: HttpRequest, note: Note): () => Promise<HttpResponse> | HttpResponse {
    const path = request.path.replace(/\/+$/, "") || "/";
    const segments = path.split("/").slice(1);
    if (path === "/") return () => vend(DEFAULT_POOL, note, request.query.refused);
    if (segments[0] === "activations" && segments.length === 2) {
      const pool = decodeSegment(segments[1]!);
      return () => vend(pool, note, request.query.refused); // the vendor rejects a malformed name (400) before any AWS call
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
    const started = performance.now();
    const note: Note = {};
    let response: HttpResponse;
    try {
      const action = route(request, note);
      if (request.method !== "GET") {
        throw new HttpError("MethodNotAllowed", `Method ${request.method} is not allowed.`, { Allow: "GET" });
      }
      response = await action();
    } catch (error) {
      note.outcome = errorOutcome(error, poolOf(request));
      response = errorResponse(error, request.requestId);
    }
    logRequest(
      logger,
      metrics,
      request,
      response,
      note.outcome ?? { outcome: "served" },
      performance.now() - started,
    );
    return response;
  };
}

/** What the route that served a request tells its log line. */
interface Note {
  outcome?: RequestOutcome;
}

/** The pool a request named, if it names a valid one (for refusals' log lines). */
function poolOf(request: HttpRequest): string | undefined {
  const path = request.path.replace(/\/+$/, "") || "/";
  const segments = path.split("/").slice(1);
  const named =
    path === "/"
      ? DEFAULT_POOL
      : segments[0] === "activations" && segments.length === 2
        ? decodeSegment(segments[1]!)
        : request.query.pool;
  return named !== undefined && POOL_NAME_PATTERN.test(named) ? named : undefined;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // malformed escapes then fail the pool-name check
  }
}

function json(status: number, body: unknown): HttpResponse {
  return {
    status,
    headers: { "Content-Type": "application/json", ...NO_STORE },
    body: JSON.stringify(body),
  };
}
