import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../core/ports";
import type { HttpHandler } from "./handler";
import { errorResponse } from "./status";

/**
 * Serves the framework-free handler over plain Node HTTP: local mode and standalone mode.
 * TLS belongs to whatever fronts it (a load balancer or reverse proxy) in standalone mode.
 */
export function createNodeServer(
  handler: HttpHandler,
  options: { logger: Logger; publicUrl?: string },
): Server {
  return createServer((req, res) => {
    const requestId = randomUUID();
    const url = new URL(req.url ?? "/", "http://placeholder");
    // Drain any body: the API takes none, but an unread body keeps the socket busy.
    req.resume();
    handler({
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      requestId,
      baseUrl: options.publicUrl ?? baseUrlOf(req),
    })
      .then((response) => {
        res.writeHead(response.status, { ...response.headers, "X-Request-Id": requestId });
        res.end(response.body);
      })
      .catch((error: unknown) => {
        options.logger.error("unhandled error in handler", {
          error: error instanceof Error ? error.name : "unknown",
        });
        const response = errorResponse(error, requestId);
        res.writeHead(response.status, { ...response.headers, "X-Request-Id": requestId });
        res.end(response.body);
      });
  });
}

function baseUrlOf(req: IncomingMessage): string {
  const host = req.headers.host ?? "127.0.0.1";
  const proto = req.headers["x-forwarded-proto"] === "https" ? "https" : "http";
  return `${proto}://${host}`;
}

const LISTEN_BACKLOG = 4096;

/**
 * Starts listening; resolves with the bound address (port 0 picks a free port). `setting` names
 * what chose the port (PORT, --port), so a refusal can say what to change.
 *
 * A fleet burst opens thousands of connections at once. With Node's default accept queue (511) a
 * busy event loop lets it overflow, and the kernel then resets connections the client believes
 * open (ECONNRESET); the kernel caps the backlog at net.core.somaxconn.
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
