import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "../core/ports";
import type { HttpHandler, HttpResponse } from "./handler";
import { SourceRateLimiter } from "./rate-limit";
import { lastHeaderValue, sourceAddress, TrustedProxies, unmapped } from "./source-address";
import { errorResponse, HttpError } from "./status";

/** Socket hygiene and caller limits of the Node server (BROKER_* settings, docs/threat-model.md). */
export interface NodeServerLimits {
  /** Time a client has to send the request's headers. */
  readonly headersTimeoutMs: number;
  /** Time a client has to send the whole request. */
  readonly requestTimeoutMs: number;
  /** How long a kept-alive socket waits for its next request. */
  readonly keepAliveTimeoutMs: number;
  /** A socket that sends nothing at all for this long after connecting is closed. */
  readonly idleTimeoutMs: number;
  /**
   * Connections beyond this get only /healthz, on a few extra sockets (HEALTH_LANE); past those
   * they are closed at once.
   */
  readonly maxConnections: number;
  /**
   * Connections one source address may hold open; more are closed at once, so one address cannot
   * take the whole connection cap. A trusted proxy's connections carry many callers: they count
   * only against maxConnections.
   */
  readonly maxConnectionsPerSource: number;
  /** Peers (addresses or CIDR blocks) whose X-Forwarded-* headers are believed. */
  readonly trustedProxies: readonly string[];
  /** Requests per second per source address (0 = no limit), bucket size, sources tracked. */
  readonly ratePerSecond: number;
  readonly rateBurst: number;
  readonly maxTrackedSources: number;
}

export const DEFAULT_NODE_SERVER_LIMITS: NodeServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 5_000,
  maxConnections: 1_000,
  maxConnectionsPerSource: 100,
  trustedProxies: [],
  ratePerSecond: 0,
  rateBurst: 1,
  maxTrackedSources: 1,
};

/**
 * Sockets accepted beyond maxConnections that may ask for /healthz only (anything else is a 429
 * and the socket closes): a load balancer's health check still gets through when the cap is full.
 */
export const HEALTH_LANE = 32;

/**
 * Requests one connection may have waiting for their answers (HTTP pipelining). Node parses a
 * whole TCP read at once and emits every request in it; a connection past this bound is closed,
 * so one socket cannot queue thousands of requests (and their memory). No real client pipelines
 * this deep (browsers and curl do not pipeline at all).
 */
export const MAX_PIPELINED_REQUESTS = 16;

/**
 * /healthz per source address: cheap, but not free. Enough for any load balancer (checks every few
 * seconds from each of its nodes), and applied whenever the per-source request limit is on.
 */
export const HEALTH_CHECK_RATE = { ratePerSecond: 10, burst: 20 } as const;

export interface NodeServerOptions {
  readonly logger: Logger;
  /**
   * The URL the install scripts carry. Read at request time, so a caller that learns its port only
   * after listen() (the local stack on port 0) may set it afterwards.
   */
  publicUrl?: string;
  readonly limits?: Partial<NodeServerLimits>;
  readonly clock?: () => number;
}

/**
 * Serves the framework-free handler over plain Node HTTP: local mode and standalone mode.
 * TLS belongs to whatever fronts it (a load balancer or reverse proxy) in standalone mode.
 *
 * Hostile by default: a malformed request target is a 400, never an exception; any error a request
 * causes ends as a 500 for that request alone; sockets that idle, dribble headers or never finish
 * their request are closed; one source address cannot take more than its token bucket allows.
 */
export function createNodeServer(handler: HttpHandler, options: NodeServerOptions): Server {
  const limits = { ...DEFAULT_NODE_SERVER_LIMITS, ...options.limits };
  const { logger } = options;
  const now = options.clock ?? Date.now;
  const trusted = new TrustedProxies(limits.trustedProxies);
  const limited = limits.ratePerSecond > 0;
  const limiter = limited
    ? new SourceRateLimiter({
        ratePerSecond: limits.ratePerSecond,
        burst: limits.rateBurst,
        maxSources: limits.maxTrackedSources,
      })
    : undefined;
  // A bucket of its own, so a load balancer's checks neither spend nor suffer the request budget.
  const healthLimiter = limited
    ? new SourceRateLimiter({ ...HEALTH_CHECK_RATE, maxSources: limits.maxTrackedSources })
    : undefined;
  /** Sockets accepted into the health lane (beyond maxConnections). */
  const overflow = new WeakSet<Socket>();

  async function serve(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const target = parseTarget(req.url ?? "");
    if (!target) {
      const refusal = new HttpError("InvalidRequest", "The request target is not a valid path.");
      send(res, requestId, errorResponse(refusal, requestId));
      return;
    }
    const health = target.path.replace(/\/+$/, "") === "/healthz";
    if (overflow.has(req.socket) && !health) {
      res.shouldKeepAlive = false;
      const refusal = new HttpError(
        "TooManyRequests",
        "The broker is at its connection limit; retry later.",
        {
          "Retry-After": "1",
        },
      );
      send(res, requestId, errorResponse(refusal, requestId));
      return;
    }
    const bucket = health ? healthLimiter : limiter;
    if (bucket) {
      const source = sourceAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], trusted);
      const decision = bucket.take(source, now());
      if (!decision.allowed) {
        const refusal = new HttpError(
          "TooManyRequests",
          "Too many requests from this address; retry later.",
          {
            "Retry-After": String(decision.retryAfterSeconds),
          },
        );
        send(res, requestId, errorResponse(refusal, requestId));
        return;
      }
    }
    const baseUrl = options.publicUrl ?? forwardedBaseUrl(req, trusted);
    const response = await handler({
      method: req.method ?? "GET",
      path: target.path,
      query: target.query,
      requestId,
      ...(req.headers.accept !== undefined && { accept: req.headers.accept }),
      ...(baseUrl !== undefined && { baseUrl }),
    });
    send(res, requestId, response);
  }

  const pipelined = new WeakMap<Socket, number>();
  const server = createServer(
    {
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the header and request deadlines on this interval (default 30 s, which would
      // let a short deadline overrun by that much).
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
    (req, res) => {
      // Pipelining: a socket with more requests waiting than the bound is closed at once, without
      // answers. Node has already parsed the whole read, so nothing gentler stops it in time.
      const waiting = (pipelined.get(req.socket) ?? 0) + 1;
      if (waiting > MAX_PIPELINED_REQUESTS) {
        req.socket.destroy();
        return;
      }
      pipelined.set(req.socket, waiting);
      res.once("close", () => pipelined.set(req.socket, (pipelined.get(req.socket) ?? 1) - 1));
      const requestId = randomUUID();
      // Drain any body: the API takes none, but an unread body keeps the socket busy.
      req.resume();
      // Last resort: whatever a request makes go wrong ends as a 500 for that request alone.
      const guard = (error: unknown) => {
        logger.error("unhandled error while serving a request", { requestId, error: errorName(error) });
        if (res.headersSent) {
          res.destroy();
          return;
        }
        send(res, requestId, errorResponse(error, requestId));
      };
      try {
        serve(req, res, requestId).catch(guard);
      } catch (error) {
        guard(error);
      }
    },
  );
  // The caps are counted here rather than with server.maxConnections, which drops every socket
  // past the cap before a health check could be answered.
  let open = 0;
  const perSource = new Map<string, number>();
  // A socket that never sends a byte is closed after the idle timeout; once bytes arrive, the
  // header, request and keep-alive deadlines govern it. It must fire before the headers timeout:
  // measured on Node 24, when Node's own header deadline expires on a socket that sent nothing,
  // the server side counts it closed but the client's connection stays open (for minutes).
  const idleMs = Math.min(limits.idleTimeoutMs, Math.max(1, limits.headersTimeoutMs - 100));
  server.on("connection", (socket: Socket) => {
    const peer = socket.remoteAddress;
    // A trusted proxy's connections carry many callers; its requests are still limited per caller.
    const source = trusted.includes(peer) ? undefined : unmapped(peer ?? "unknown");
    const fromSource = source === undefined ? 0 : (perSource.get(source) ?? 0);
    if (fromSource >= limits.maxConnectionsPerSource || open >= limits.maxConnections + HEALTH_LANE) {
      socket.destroy();
      return;
    }
    if (open >= limits.maxConnections) overflow.add(socket);
    open++;
    if (source !== undefined) perSource.set(source, fromSource + 1);
    const timer = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, idleMs);
    timer.unref();
    socket.once("close", () => {
      clearTimeout(timer);
      open--;
      if (source === undefined) return;
      const left = (perSource.get(source) ?? 1) - 1;
      if (left > 0) perSource.set(source, left);
      else perSource.delete(source);
    });
  });
  // CONNECT (a proxy tunnel) never reaches the request handler: without this Node closes the
  // socket with no answer at all. The broker is no proxy: 405, like any method it does not serve.
  server.on("connect", (_req: IncomingMessage, socket: Socket) => {
    const body = JSON.stringify({
      error: { code: "MethodNotAllowed", message: "Method CONNECT is not allowed." },
    });
    socket.end(
      "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Type: application/json\r\n" +
        `Cache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

function send(res: ServerResponse, requestId: string, response: HttpResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(response.status, { ...response.headers, "X-Request-Id": requestId });
  res.end(response.body);
}

/**
 * Splits an origin-form target ("/path?query") without ever throwing. Anything else is refused:
 * absolute and authority forms, "*", "//…" and "/\…" (which URL parsers read as a host), stray
 * backslashes, bytes outside printable ASCII, and malformed percent escapes in the path.
 */
export function parseTarget(target: string): { path: string; query: Record<string, string> } | undefined {
  if (!target.startsWith("/") || target[1] === "/" || target[1] === "\\") return undefined;
  if (!/^[\x21-\x7e]*$/.test(target)) return undefined;
  const queryAt = target.indexOf("?");
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const rawQuery = queryAt === -1 ? "" : target.slice(queryAt + 1);
  if (path.includes("\\") || /%(?![0-9A-Fa-f]{2})/.test(path)) return undefined;
  const query: Record<string, string> = {};
  // URLSearchParams never throws: a malformed escape in the query stays as it was sent.
  for (const [key, value] of new URLSearchParams(rawQuery)) {
    Object.defineProperty(query, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return { path, query };
}

/**
 * The broker's URL as a trusted proxy reports it (X-Forwarded-Host / -Proto, else Host); undefined
 * for any other peer, so a caller's Host header never ends up in an install script. A trusted proxy
 * that does not say the scheme is taken to terminate TLS: the broker itself never serves https.
 */
function forwardedBaseUrl(req: IncomingMessage, trusted: TrustedProxies): string | undefined {
  if (!trusted.includes(req.socket.remoteAddress)) return undefined;
  const host = lastHeaderValue(req.headers["x-forwarded-host"]) ?? req.headers.host;
  if (!host) return undefined;
  const proto = lastHeaderValue(req.headers["x-forwarded-proto"]) === "http" ? "http" : "https";
  return `${proto}://${host}`;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Crash-only: after an error escaped every handler, Node documents the process state as undefined
 * (a half-done write, a lease held in memory), so the process logs the error and exits non-zero,
 * and whatever supervises it (systemd's Restart=on-failure, a container runtime) starts a clean
 * one. No state is lost: it all lives in DynamoDB, and a lease the process held lapses by itself
 * (I3). The log line carries the error's name only — a message could quote input.
 */
export function exitOnUncaughtErrors(
  logger: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): void {
  const crash = (what: string) => (error: unknown) => {
    logger.error(`${what}; the broker exits so that its supervisor restarts it`, {
      error: errorName(error),
    });
    exit(EXIT_ON_UNCAUGHT_ERROR);
  };
  process.on("uncaughtException", crash("uncaught error"));
  process.on("unhandledRejection", crash("unhandled rejection"));
}

/** What a crash exits with: non-zero, so Restart=on-failure restarts it (1 is "failed while running"). */
export const EXIT_ON_UNCAUGHT_ERROR = 1;

/**
 * A fleet burst opens thousands of connections at once. With Node's default accept queue (511) a
 * busy event loop lets it overflow, and the kernel then resets connections the client believes
 * open (ECONNRESET). The kernel caps the value at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 4096;

/**
 * Starts listening; resolves with the bound address (port 0 picks a free port). `setting` names
 * what chose the port (PORT, --port), so a refusal can say what to change.
 */
export function listen(server: Server, port: number, host: string, setting = "PORT"): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", (error) => reject(explainListenError(error, { port, host, setting })));
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve(server.address() as AddressInfo));
  });
}

/** A server that cannot listen, said as what to do about it. */
export class ListenError extends Error {
  override readonly name = "ListenError";
}

/** Turns EADDRINUSE and friends into one line naming the port, the address and the setting. */
export function explainListenError(
  error: unknown,
  where: { readonly port: number; readonly host: string; readonly setting: string },
): unknown {
  const code = (error as { code?: unknown }).code;
  const { port, host, setting } = where;
  const fix = `set ${setting} to another port (0 picks a free one)`;
  switch (code) {
    case "EADDRINUSE":
      return new ListenError(`port ${port} on ${host} is already in use: stop what holds it, or ${fix}`, {
        cause: error,
      });
    case "EACCES":
      return new ListenError(`port ${port} on ${host} needs privileges this user lacks: ${fix}`, {
        cause: error,
      });
    case "EADDRNOTAVAIL":
      return new ListenError(`address ${host} is not one of this machine's: choose another host`, {
        cause: error,
      });
    default:
      return error;
  }
}
