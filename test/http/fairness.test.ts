import { EventEmitter, once } from "node:events";
import type { Server } from "node:http";
import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { aServer, get, sockets } from "../support/node-server-under-attack";
import { DEFAULT_NODE_SERVER_LIMITS } from "../../src/http/node-server";

/**
 * Fairness between callers of the Node server: one address cannot take the connections, the
 * health check gets through when the cap is full, one connection cannot queue without bound, and
 * every method gets an answer. "Another address" is another loopback address (127.0.0.2).
 *
 * No test sleeps before it counts sockets: it waits for the broker to have judged every
 * connection (brokerDecisions) and for this side to have seen each close the broker made.
 */

/** Sockets of idleSockets that connected (the broker sees only those). */
const connected = new WeakSet<Socket>();
/** Emits "close" for every socket of idleSockets that closes. */
const closes = new EventEmitter().setMaxListeners(0);

/** Opens `count` sockets from `from` that send nothing; resolves once each connected or failed. */
async function idleSockets(port: number, from: string, count: number): Promise<Socket[]> {
  const opened = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve) => {
          const s = connect({ port, host: "127.0.0.1", localAddress: from });
          s.on("error", () => {});
          s.once("connect", () => {
            connected.add(s);
            resolve(s);
          });
          s.once("close", () => {
            closes.emit("close");
            resolve(s);
          });
        }),
    ),
  );
  sockets.push(...opened);
  return opened;
}

/**
 * Counts the broker's decisions. Its own 'connection' listener was added before this one, so
 * here each socket is already kept or destroyed: waiting for a count is waiting for the broker
 * to have accepted, and judged, that many connections.
 */
function brokerDecisions(server: Server) {
  let seen = 0;
  let closed = 0;
  const decided = new EventEmitter().setMaxListeners(0);
  server.on("connection", (socket: Socket) => {
    seen++;
    if (socket.destroyed) closed++;
    decided.emit("decided");
  });
  return {
    get seen() {
      return seen;
    },
    /** Connections the broker closed as soon as it accepted them. */
    get closed() {
      return closed;
    },
    async until(count: number): Promise<void> {
      while (seen < count) await once(decided, "decided");
    },
  };
}

const connectedOf = (list: Socket[]) => list.filter((s) => connected.has(s));

/** Resolves once at least `count` of `list` have closed on this side. */
async function closedHere(list: Socket[], count: number): Promise<void> {
  while (list.filter((s) => s.destroyed).length < count) await once(closes, "close");
}

/** Waits until the broker has judged all of `list` (opened after `before` decisions) and this side saw its closes. */
async function judged(
  broker: ReturnType<typeof brokerDecisions>,
  before: { seen: number; closed: number },
  list: Socket[],
  others = 0,
): Promise<void> {
  const mine = connectedOf(list);
  await broker.until(before.seen + mine.length + others);
  await closedHere(mine, broker.closed - before.closed);
}

const snapshot = (broker: ReturnType<typeof brokerDecisions>) => ({
  seen: broker.seen,
  closed: broker.closed,
});

describe("fairness per source address", () => {
  it("1,200 idle sockets from one address, reopened as they close: /healthz from another answers 200 every time", async () => {
    const { server, port } = await aServer(); // defaults: 1,000 connections, 100 per source
    const broker = brokerDecisions(server);
    let attacker = await idleSockets(port, "127.0.0.1", 1_200);
    await judged(broker, { seen: 0, closed: 0 }, attacker);
    const held = () => attacker.filter((s) => !s.destroyed).length;
    expect(held()).toBe(DEFAULT_NODE_SERVER_LIMITS.maxConnectionsPerSource);

    // Twenty rounds: the attacker reopens every socket the broker closed, and a health check from
    // another address goes in while the broker is still accepting them. A round ends when the
    // broker has judged them all, so each check meets a fresh wave of the attacker's sockets.
    const statuses: number[] = [];
    let reopened = 0;
    for (let round = 0; round < 20; round++) {
      const before = snapshot(broker);
      const closed = attacker.filter((s) => s.destroyed).length;
      const wave = await idleSockets(port, "127.0.0.1", closed);
      reopened += closed;
      attacker = [...attacker.filter((s) => !s.destroyed), ...wave];
      statuses.push(await get(port, "/healthz", "127.0.0.2", 10_000));
      await judged(broker, before, wave, 1); // 1: the health check's own connection
    }
    console.log(`fairness: ${statuses.length} health checks, ${reopened} sockets reopened, ${held()} held`);
    expect(reopened).toBeGreaterThan(1_000);
    expect(statuses).toEqual(Array(20).fill(200));
    // A pair for the other address too: its connections are its own.
    expect(await get(port, "/", "127.0.0.2")).toBe(200);
  });

  it("answers /healthz while the global cap is full, and refuses anything else there with 429", async () => {
    const { server, port, fx } = await aServer({ maxConnections: 40, maxConnectionsPerSource: 10 });
    const broker = brokerDecisions(server);
    const idle: Socket[] = [];
    for (const from of ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"])
      idle.push(...(await idleSockets(port, from, 10)));
    await judged(broker, { seen: 0, closed: 0 }, idle);
    expect(idle.filter((s) => !s.destroyed)).toHaveLength(40); // the cap is full, no source over its share
    for (let i = 0; i < 5; i++) expect(await get(port, "/healthz", "127.0.0.2")).toBe(200);
    expect(await get(port, "/", "127.0.0.2")).toBe(429);
    expect(fx.activations.created).toHaveLength(0);
  });

  it("counts a trusted proxy's connections only against the total", async () => {
    const { server, port } = await aServer({ maxConnectionsPerSource: 5, trustedProxies: ["127.0.0.7"] });
    const broker = brokerDecisions(server);
    const viaProxy = await idleSockets(port, "127.0.0.7", 20);
    const direct = await idleSockets(port, "127.0.0.8", 20);
    await judged(broker, { seen: 0, closed: 0 }, [...viaProxy, ...direct]);
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
