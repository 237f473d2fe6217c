import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { aServer, get, sockets } from "../support/node-server-under-attack";
import { DEFAULT_NODE_SERVER_LIMITS } from "../../src/http/node-server";

/**
 * Fairness between callers of the Node server: one address cannot take the connections, the
 * health check gets through when the cap is full, one connection cannot queue without bound, and
 * every method gets an answer. "Another address" is another loopback address (127.0.0.2).
 */

/** Opens `count` sockets from `from` that send nothing; resolves once each connected or failed. */
async function idleSockets(port: number, from: string, count: number): Promise<Socket[]> {
  const opened = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve) => {
          const s = connect({ port, host: "127.0.0.1", localAddress: from });
          s.on("error", () => {});
          s.once("connect", () => resolve(s));
          s.once("close", () => resolve(s));
        }),
    ),
  );
  sockets.push(...opened);
  return opened;
}

const settle = (ms = 100) => new Promise((r) => setTimeout(r, ms));

describe("fairness per source address", () => {
  it("1,200 idle sockets from one address, reopened as they close: /healthz from another answers 200 every time", async () => {
    const { port } = await aServer(); // defaults: 1,000 connections, 100 per source
    let attacker = await idleSockets(port, "127.0.0.1", 1_200);
    const held = () => attacker.filter((s) => !s.destroyed && s.readyState === "open").length;
    // The broker accepts (and closes the excess) as fast as its event loop lets it.
    for (let i = 0; i < 100 && held() > DEFAULT_NODE_SERVER_LIMITS.maxConnectionsPerSource; i++)
      await settle(50);
    expect(held()).toBe(DEFAULT_NODE_SERVER_LIMITS.maxConnectionsPerSource);

    // Twenty health checks from another address while the attacker reopens, twice a second, every
    // socket the broker closed. Counted in checks, not seconds: the attacker shares this process.
    const statuses: number[] = [];
    let done = false;
    let reopened = 0;
    await Promise.all([
      (async () => {
        while (!done) {
          const closed = attacker.filter((s) => s.destroyed || s.readyState !== "open").length;
          reopened += closed;
          attacker = [
            ...attacker.filter((s) => !s.destroyed),
            ...(await idleSockets(port, "127.0.0.1", closed)),
          ];
          await settle(500);
        }
      })(),
      (async () => {
        for (let i = 0; i < 20; i++) {
          statuses.push(await get(port, "/healthz", "127.0.0.2", 10_000));
          await settle(100);
        }
        done = true;
      })(),
    ]);
    console.log(`fairness: ${statuses.length} health checks, ${reopened} sockets reopened, ${held()} held`);
    expect(reopened).toBeGreaterThan(1_000);
    expect(statuses).toEqual(Array(20).fill(200));
    // A pair for the other address too: its connections are its own.
    expect(await get(port, "/", "127.0.0.2")).toBe(200);
  });

  it("answers /healthz while the global cap is full, and refuses anything else there with 429", async () => {
    const { port, fx } = await aServer({ maxConnections: 40, maxConnectionsPerSource: 10 });
    for (const from of ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"])
      await idleSockets(port, from, 10);
    await settle();
    for (let i = 0; i < 5; i++) expect(await get(port, "/healthz", "127.0.0.2")).toBe(200);
    expect(await get(port, "/", "127.0.0.2")).toBe(429);
    expect(fx.activations.created).toHaveLength(0);
  });

  it("counts a trusted proxy's connections only against the total", async () => {
    const { port } = await aServer({ maxConnectionsPerSource: 5, trustedProxies: ["127.0.0.7"] });
    const viaProxy = await idleSockets(port, "127.0.0.7", 20);
    const direct = await idleSockets(port, "127.0.0.8", 20);
    await settle();
    expect(viaProxy.filter((s) => !s.destroyed).length).toBe(20);
    expect(direct.filter((s) => !s.destroyed).length).toBe(5);
  });
});

describe("bounded pipelining (50,000 requests on one socket: test/http/pipelining.test.ts)", () => {
  it("still answers a few pipelined requests in order on one connection", async () => {
    const { port } = await aServer();
    const text = await new Promise<string>((resolve) => {
      const s = connect(port, "127.0.0.1");
      sockets.push(s);
      let answer = "";
      s.on("data", (d: Buffer) => (answer += d.toString("latin1")));
      s.on("close", () => resolve(answer));
      s.write(
        "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n".repeat(3) +
          "GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
      );
    });
    expect(text.match(/HTTP\/1\.1 200/g)).toHaveLength(4);
    expect(text).toContain("ActivationCode");
  });

  it("logs health checks only when they fail", async () => {
    const { port, logger } = await aServer();
    for (let i = 0; i < 10; i++) expect(await get(port, "/healthz", "127.0.0.2")).toBe(200);
    expect(logger.lines).toBe(0);
    expect(await get(port, "/healthz/x", "127.0.0.2")).toBe(404);
    expect(logger.lines).toBe(1);
  });

  it("limits /healthz per source cheaply, in a bucket of its own", async () => {
    const { port } = await aServer({ ratePerSecond: 0.01, rateBurst: 1 });
    const statuses = [];
    for (let i = 0; i < 25; i++) statuses.push(await get(port, "/healthz", "127.0.0.2"));
    expect(statuses.slice(0, 20).every((s) => s === 200)).toBe(true);
    expect(statuses.slice(20)).toContain(429);
    // The request budget is untouched by the checks.
    expect(await get(port, "/", "127.0.0.2")).toBe(200);
  });
});

describe("every method gets an answer", () => {
  /** Raw bytes in, the status line's code out (0 when the socket closed with no answer). */
  function statusFor(port: number, head: string): Promise<number> {
    return new Promise((resolve) => {
      const s = connect(port, "127.0.0.1");
      sockets.push(s);
      let answer = "";
      s.on("data", (d: Buffer) => (answer += d.toString("latin1")));
      s.on("error", () => {});
      s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
      s.write(head);
      setTimeout(() => s.destroy(), 2_000);
    });
  }

  it.each([
    ["CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405],
    ["PUT", "PUT / HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405],
    ["DELETE", "DELETE / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n", 405],
    ["TRACE", "TRACE / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n", 405],
    ["an unknown method", "BREW / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n", 400],
  ])("%s gets a 4xx", async (_name, head, status) => {
    const { port, fx } = await aServer();
    expect(await statusFor(port, head)).toBe(status);
    expect(fx.activations.created).toHaveLength(0);
    expect(await get(port, "/healthz", "127.0.0.2")).toBe(200);
  });
});
