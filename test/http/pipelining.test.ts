import { request as httpRequest, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpHandler } from "../../src/http/handler";
import {
  createNodeServer,
  DEFAULT_NODE_SERVER_LIMITS,
  listen,
  MAX_PIPELINED_REQUESTS,
  type NodeServerLimits,
} from "../../src/http/node-server";
import type { Logger } from "../../src/core/ports";
import { aVendor } from "../support/vendor-mother";

/**
 * One connection cannot queue without bound: 50,000 pipelined requests on one socket. A file of
 * its own, so the memory it measures is this test's alone (vitest runs each file in a fresh
 * process).
 */

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** Counts what the broker logs, in bytes of JSON lines. */
class MeasuringLogger implements Logger {
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
async function aServer(limits: Partial<NodeServerLimits> = {}) {
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
function get(port: number, path: string, from: string, timeoutMs = 2_000): Promise<number> {
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

describe("bounded pipelining", () => {
  it("50,000 pipelined /healthz on one socket: memory grows by at most 100 MB, the log by at most 1 MB", async () => {
    const { server, port, logger } = await aServer({ ratePerSecond: 0 });
    let started = 0;
    server.on("request", () => started++);
    // Warm: the first request loads and compiles what every later one uses.
    expect(await get(port, "/healthz", "127.0.0.2")).toBe(200);
    const before = process.memoryUsage().rss;
    const burst = Buffer.from("GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n".repeat(50_000));
    const answered = await new Promise<number>((resolve) => {
      const s = connect(port, "127.0.0.1");
      sockets.push(s);
      let text = "";
      s.on("data", (d: Buffer) => (text += d.toString("latin1")));
      s.on("error", () => {});
      s.on("close", () => resolve(text.split("HTTP/1.1 200").length - 1));
      s.write(burst);
    });
    const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
    expect(grown).toBeLessThanOrEqual(100);
    expect(logger.bytes).toBeLessThanOrEqual(1024 * 1024);
    // Closed once more than the bound were waiting: Node still parses the read it was in (64 KB,
    // about 1,900 of these requests; each is dropped at once), but none of the rest.
    expect(answered).toBeLessThanOrEqual(MAX_PIPELINED_REQUESTS);
    expect(started).toBeLessThan(5_000);
    console.log(
      `pipelining: rss grew ${grown.toFixed(1)} MB, log ${logger.bytes} bytes, ${started} of 50,000 parsed, ${answered} answered`,
    );
    expect(await get(port, "/healthz", "127.0.0.2")).toBe(200);
  });
});
