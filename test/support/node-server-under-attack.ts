import { request as httpRequest, type Server } from "node:http";
import type { Socket } from "node:net";
import { afterEach } from "vitest";
import { createHttpHandler } from "../../src/http/handler";
import {
  createNodeServer,
  DEFAULT_NODE_SERVER_LIMITS,
  listen,
  type NodeServerLimits,
} from "../../src/http/node-server";
import type { Logger } from "../../src/core/ports";
import { aVendor } from "./vendor-mother";

/**
 * The Node server under attack (test/http/fairness.test.ts, pipelining.test.ts): servers and
 * sockets a test opens are closed after it.
 */
const servers: Server[] = [];
/** Sockets a test opened: destroyed after it. */
export const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** Counts what the broker logs, in bytes of JSON lines. */
export class MeasuringLogger implements Logger {
  bytes = 0;
  lines = 0;
  private log = (message: string, extra?: Record<string, unknown>) => {
    this.lines++;
    this.bytes += JSON.stringify({ message, ...extra }).length + 1;
  };
  debug = this.log;
  info = this.log;
  warn = this.log;
  error = this.log;
}

/** The real Node server and handler, with long socket deadlines so idle sockets stay idle. */
export async function aServer(limits: Partial<NodeServerLimits> = {}) {
  const fx = aVendor({ pools: { default: {} } });
  const logger = new MeasuringLogger();
  const handler = createHttpHandler({ vendor: fx.vendor, region: "eu-west-1", logger });
  const server = createNodeServer(handler, {
    logger,
    limits: {
      ...DEFAULT_NODE_SERVER_LIMITS,
      ratePerSecond: 10,
      rateBurst: 100,
      maxTrackedSources: 10_000,
      idleTimeoutMs: 60_000,
      headersTimeoutMs: 120_000,
      requestTimeoutMs: 120_000,
      keepAliveTimeoutMs: 60_000,
      ...limits,
    },
  });
  servers.push(server);
  const { port } = await listen(server, 0, "127.0.0.1");
  return { server, port, logger, fx };
}

/** One GET from `from` (a loopback address), on a connection of its own. */
export function get(port: number, path: string, from: string, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path, localAddress: from, agent: false, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}
