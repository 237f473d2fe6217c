import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { MAX_PIPELINED_REQUESTS } from "../../src/http/node-server";
import { aServer, get, sockets } from "../support/node-server-under-attack";

/**
 * One connection cannot queue without bound: 50,000 pipelined requests on one socket. A file of
 * its own, so the memory it measures is this test's alone (vitest runs each file in a fresh
 * process).
 */

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
