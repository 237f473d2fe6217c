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
  /** The request's Accept header: `text/plain` asks for the shell-friendly pair (textPair below). */
  readonly accept?: string;
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

export type InstallScriptKind = "sh" | "ps1" | "eks";

export interface InstallScriptRenderer {
  (kind: InstallScriptKind, values: { brokerUrl: string; pool: string }): string;
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
 * docs/http-api.md: `GET /` and `GET /activations/{pool}` hand out a pair (JSON, or `KEY=value`
 * lines for `Accept: text/plain`); `GET /install.sh`, `GET /install.ps1` and `GET /install-eks.sh`
 * serve the bootstrap scripts with this broker's URL filled in; `GET /healthz`
 * is a liveness check that costs nothing.
 */
export function createHttpHandler(deps: HandlerDependencies): HttpHandler {
  const { vendor, region, logger } = deps;
  const metrics = deps.metrics ?? noMetrics;

  async function vend(
    pool: string,
    note: Note,
    { refused, accept }: { refused: string | undefined; accept: string | undefined },
  ): Promise<HttpResponse> {
    // A server whose pair SSM refused names it: checked with SSM (never trusted), retired if SSM
    // confirms; either way the vend below answers as for any request.
    const verdict =
      refused !== undefined && deps.refusedPairs && vendor.poolNames().includes(pool)
        ? await deps.refusedPairs.heal(pool, refused)
        : undefined;
    const { pair, receipt } = await vendor.vend(pool);
    note.outcome = {
      ...(verdict !== undefined && { refused: verdict }),
      outcome: receipt.rotated ? "rotated" : "vended",
      pool: pair.pool,
      activationId: pair.activationId,
      slot: receipt.slot,
      limit: receipt.limit,
    };
    const answer = {
      ActivationId: pair.activationId,
      ActivationCode: pair.activationCode,
      Region: region,
      ExpirationDate: new Date(pair.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
      Pool: pair.pool,
    };
    return wantsText(accept) ? textPair(answer) : json(200, answer);
  }

  function installScript(kind: InstallScriptKind, request: HttpRequest): HttpResponse {
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
    const type = kind === "ps1" ? "text/plain" : "text/x-shellscript";
    return { status: 200, headers: { "Content-Type": `${type}; charset=utf-8`, ...NO_STORE }, body };
  }

  function route(request: HttpRequest, note: Note): () => Promise<HttpResponse> | HttpResponse {
    const path = request.path.replace(/\/+$/, "") || "/";
    const segments = path.split("/").slice(1);
    const ask = { refused: request.query.refused, accept: request.accept };
    if (path === "/") return () => vend(DEFAULT_POOL, note, ask);
    if (segments[0] === "activations" && segments.length === 2) {
      const pool = decodeSegment(segments[1]!);
      // The vendor rejects a malformed name (400) before any AWS call.
      return () => vend(pool, note, ask);
    }
    // Liveness for load balancers in standalone mode: answers without touching AWS, because a
    // health check pointed at "/" would reserve a registration slot every few seconds.
    if (path === "/healthz") return () => json(200, { status: "ok" });
    if (path === "/install.sh") return () => installScript("sh", request);
    if (path === "/install.ps1") return () => installScript("ps1", request);
    if (path === "/install-eks.sh") return () => installScript("eks", request);
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

/**
 * Whether the client asked for the shell-friendly answer: `text/plain` named in Accept before any
 * `application/json`. Anything else (no header, `*\/*`, JSON first) keeps the JSON default, so the
 * reference client's `jq -r .ActivationCode` is unchanged.
 */
export function wantsText(accept: string | undefined): boolean {
  for (const range of (accept ?? "").toLowerCase().split(",")) {
    const type = range.split(";")[0]!.trim();
    if (type === "text/plain") return true;
    if (type === "application/json") return false;
  }
  return false;
}

/** Every value of the text answer: no whitespace, quote, backslash, `$`, backtick or control. */
export const TEXT_VALUE = /^[A-Za-z0-9._:+/=-]+$/;

/**
 * docs/http-api.md "Plain text": one `KEY=value` line per field, LF-terminated, KEY `[A-Z_]+`,
 * value TEXT_VALUE, so `while IFS='=' read -r key value` reads it whatever the shell. SSM's values
 * have these shapes; one that does not is refused here (500) rather than sent to a root shell.
 */
function textPair(answer: {
  ActivationId: string;
  ActivationCode: string;
  Region: string;
  ExpirationDate: string;
  Pool: string;
}): HttpResponse {
  const lines = [
    ["ACTIVATION_ID", answer.ActivationId],
    ["ACTIVATION_CODE", answer.ActivationCode],
    ["REGION", answer.Region],
    ["EXPIRATION_DATE", answer.ExpirationDate],
    ["POOL", answer.Pool],
  ] as const;
  if (!lines.every(([, value]) => TEXT_VALUE.test(value))) {
    throw new Error("a vended value has characters outside the text answer's safe set");
  }
  return {
    status: 200,
    headers: { "Content-Type": "text/plain; charset=utf-8", ...NO_STORE },
    body: lines.map(([key, value]) => `${key}=${value}\n`).join(""),
  };
}

function json(status: number, body: unknown): HttpResponse {
  return {
    status,
    headers: { "Content-Type": "application/json", ...NO_STORE },
    body: JSON.stringify(body),
  };
}
