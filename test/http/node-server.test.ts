import { connect, type Socket } from "node:net";
import type { Server } from "node:http";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpHandler, type HttpHandler } from "../../src/http/handler";
import {
  createNodeServer,
  HEALTH_LANE,
  listen,
  parseTarget,
  type NodeServerOptions,
} from "../../src/http/node-server";
import { CapturingLogger } from "../support/fakes";
import { aVendor } from "../support/vendor-mother";

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** The real Node server over the real handler (on in-memory ports: no AWS needed here). */
async function aServer(options: Partial<NodeServerOptions> = {}, handler?: HttpHandler) {
  const fx = aVendor({ pools: { linux: {} } });
  const logger = new CapturingLogger();
  const handle =
    handler ??
    createHttpHandler({
      vendor: fx.vendor,
      region: "eu-west-1",
      logger,
      renderInstallScript: (kind, v) => `${kind} ${v.brokerUrl} ${v.pool}`,
    });
  const server = createNodeServer(handle, { logger, ...options });
  servers.push(server);
  const { port } = await listen(server, 0, "127.0.0.1");
  const url = `http://127.0.0.1:${port}`;
  return { server, port, url, logger, fx };
}

/** Sends raw bytes and returns everything the server answered until it closed (or `waitMs`). */
function raw(port: number, bytes: string | Buffer, waitMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(done, waitMs);
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.on("close", done);
    socket.on("error", done);
    socket.write(bytes);
  });
}

/** Resolves once the server counts `n` open connections (it polls: Node emits no event for it). */
async function connectionsReach(server: Server, n: number): Promise<void> {
  const count = () =>
    new Promise<number>((resolve, reject) => server.getConnections((e, c) => (e ? reject(e) : resolve(c))));
  while ((await count()) !== n) await new Promise((r) => setImmediate(r));
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
const request = (target: string, headers = "") =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`;

describe("Node server: no request stops the process", () => {
  it.each(["//", "/\\", "//:", "//%zz", "//a%20b", "//%0a", "/%zz", "*", "http://evil.example/"])(
    "answers %s with 400 InvalidRequest and keeps serving",
    async (target) => {
      const { port } = await aServer();
      const answer = await raw(port, request(target));
      expect(statusOf(answer)).toBe(400);
      expect(answer).toContain('"code":"InvalidRequest"');
      expect(statusOf(await raw(port, request("/healthz")))).toBe(200);
    },
  );

  it("splits targets without decoding the path and without throwing", () => {
    expect(parseTarget("/activations/web?pool=a%20b&x")).toEqual({
      path: "/activations/web",
      query: { pool: "a b", x: "" },
    });
    expect(parseTarget("/install.sh?__proto__=x")?.query).toHaveProperty("__proto__", "x");
    expect(parseTarget("/?%zz=1")?.query).toEqual({ "%zz": "1" });
    expect(parseTarget("")).toBeUndefined();
  });

  it("turns a handler that throws, synchronously or not, into a 500 for that request only", async () => {
    let calls = 0;
    const throwing: HttpHandler = (req) => {
      calls++;
      if (req.path === "/sync") throw new TypeError("boom");
      if (req.path === "/async") return Promise.reject(new Error("boom"));
      return Promise.resolve({ status: 200, headers: {}, body: "ok" });
    };
    const { url, logger } = await aServer({}, throwing);
    expect((await fetch(`${url}/sync`)).status).toBe(500);
    expect((await fetch(`${url}/async`)).status).toBe(500);
    expect((await fetch(`${url}/fine`)).status).toBe(200);
    expect(calls).toBe(3);
    expect(logger.lines.filter((l) => l.level === "error")).toHaveLength(2);
  });

  it("survives arbitrary targets, methods and headers, and still answers /healthz", async () => {
    const { port } = await aServer();
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
    const targetChar = fc.constantFrom(..."/\\%?#:@.[]{}<>\"' azZ09-_~!$&()*+,;=|^`".split(""));
    const target = fc.oneof(
      fc.array(targetChar, { maxLength: 40 }).map((cs) => cs.join("")),
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        "//",
        "/\\",
        "//:",
        "//%zz",
        "//a%20b",
        "//%0a",
        "/activations/%",
        "/install.sh?pool=%",
      ),
    );
    const method = fc.oneof(fc.constantFrom("GET", "POST", "HEAD", "OPTIONS", "DELETE", "CONNECT"), token);
    const header = fc.tuple(token, fc.string({ maxLength: 40 }));
    await fc.assert(
      fc.asyncProperty(method, target, fc.array(header, { maxLength: 5 }), async (m, t, hs) => {
        const headers = hs.map(([k, v]) => `${k}: ${v}\r\n`).join("");
        const answer = await raw(
          port,
          `${m} ${t} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`,
          500,
        );
        // Whatever the request, the answer is an HTTP status (or, for garbage, a closed socket).
        if (answer !== "") expect(statusOf(answer)).toBeGreaterThanOrEqual(200);
      }),
      { numRuns: 150 },
    );
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
  });
});

describe("Node server: connection hygiene", () => {
  it("closes a socket that sends nothing after the idle timeout, and keeps serving", async () => {
    const { port, url } = await aServer({ limits: { idleTimeoutMs: 300 } });
    const socket = connect(port, "127.0.0.1");
    const closedAfter = await new Promise<number>((resolve) => {
      const started = Date.now();
      socket.on("close", () => resolve(Date.now() - started));
      socket.on("error", () => {});
    });
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(closedAfter).toBeLessThan(5_000);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("closes a silent socket before the headers timeout, even when asked for a longer idle timeout", async () => {
    // Left to Node's header deadline, such a socket stayed open on the client's side.
    const limits = { idleTimeoutMs: 5_000, headersTimeoutMs: 600, requestTimeoutMs: 1_000 };
    const { port } = await aServer({ limits });
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    const started = Date.now();
    await new Promise((resolve) => socket.on("close", resolve));
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("answers a client that dribbles its headers with 408 at the headers timeout", async () => {
    const { port } = await aServer({ limits: { headersTimeoutMs: 300, requestTimeoutMs: 600 } });
    const answer = await raw(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n", 5_000);
    expect(statusOf(answer)).toBe(408);
  });

  it("keeps a socket whose request is being answered open past the idle timeout", async () => {
    const slow: HttpHandler = () =>
      new Promise((resolve) => setTimeout(() => resolve({ status: 200, headers: {}, body: "late" }), 600));
    const { port } = await aServer({ limits: { idleTimeoutMs: 200 } }, slow);
    expect(statusOf(await raw(port, request("/")))).toBe(200);
  });

  it("beyond the cap answers only /healthz, on a few sockets more, and refuses the rest at once", async () => {
    const { server, port, url } = await aServer({ limits: { maxConnections: 2, idleTimeoutMs: 5_000 } });
    const open: Socket[] = [];
    const hold = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const s = connect(port, "127.0.0.1");
        await new Promise((r) => s.once("connect", r));
        open.push(s);
      }
      // The client's "connect" can come before the server counts the socket: wait for the count.
      await connectionsReach(server, open.length);
    };
    await hold(2);
    expect(statusOf(await raw(port, request("/healthz"), 1_000))).toBe(200);
    const refused = await raw(port, request("/"), 1_000);
    expect(statusOf(refused)).toBe(429);
    expect(refused).toContain("Retry-After: 1");
    expect(fxCreated(refused)).toBe(false);
    await hold(HEALTH_LANE);
    expect(await raw(port, request("/healthz"), 1_000)).toBe("");
    for (const s of open) s.destroy();
    await connectionsReach(server, 0);
    expect((await fetch(`${url}/`)).status).toBe(200);
  });
});

/** A refusal never carries a pair. */
const fxCreated = (answer: string) => answer.includes("ActivationCode");

describe("Node server: install scripts use a URL the operator set", () => {
  it("without BROKER_PUBLIC_URL, refuses the scripts instead of trusting Host", async () => {
    const { port } = await aServer();
    const answer = await raw(
      port,
      request("/install.sh", "X-Forwarded-Host: evil.example\r\n").replace(
        "Host: 127.0.0.1",
        "Host: evil.example",
      ),
    );
    expect(statusOf(answer)).toBe(404);
    expect(answer).toContain("BROKER_PUBLIC_URL");
    expect(answer).not.toContain("evil.example");
  });

  it("with BROKER_PUBLIC_URL, carries that URL whatever Host says", async () => {
    const { port } = await aServer({ publicUrl: "https://broker.corp.example" });
    const answer = await raw(port, request("/install.sh").replace("Host: 127.0.0.1", "Host: evil.example"));
    expect(statusOf(answer)).toBe(200);
    expect(answer).toContain("sh https://broker.corp.example default");
    expect(answer).not.toContain("evil.example");
  });

  it("believes X-Forwarded-Host/-Proto only from a trusted proxy, https unless it says http", async () => {
    const trusted = await aServer({ limits: { trustedProxies: ["127.0.0.0/8"] } });
    const viaProxy = await raw(
      trusted.port,
      request("/install.sh", "X-Forwarded-Host: spoofed.example, broker.corp.example\r\n"),
    );
    expect(viaProxy).toContain("sh https://broker.corp.example default");
    const untrusted = await aServer({ limits: { trustedProxies: ["10.0.0.0/8"] } });
    const direct = await raw(
      untrusted.port,
      request("/install.sh", "X-Forwarded-Host: broker.corp.example\r\n"),
    );
    expect(statusOf(direct)).toBe(404);
  });
});

describe("Node server: per-source rate limit", () => {
  it("answers 429 with Retry-After past the bucket, leaving /healthz exempt", async () => {
    const { url, fx } = await aServer({
      limits: { ratePerSecond: 0.5, rateBurst: 3, maxTrackedSources: 100 },
    });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${url}/`)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const refused = await fetch(`${url}/`);
    expect(refused.headers.get("retry-after")).toBe("2");
    expect(await refused.json()).toMatchObject({ error: { code: "TooManyRequests" } });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // Refused requests cost nothing: three pairs, one activation.
    expect(fx.activations.created).toHaveLength(1);
  });

  it("ignores X-Forwarded-For from an untrusted peer and honours it from a trusted proxy", async () => {
    const limits = { ratePerSecond: 0.01, rateBurst: 1, maxTrackedSources: 100 };
    const direct = await aServer({ limits });
    const xff = (n: number) => ({ headers: { "X-Forwarded-For": `10.0.0.${n}` } });
    expect((await fetch(`${direct.url}/`, xff(1))).status).toBe(200);
    expect((await fetch(`${direct.url}/`, xff(2))).status).toBe(429);
    const proxied = await aServer({ limits: { ...limits, trustedProxies: ["127.0.0.1"] } });
    expect((await fetch(`${proxied.url}/`, xff(1))).status).toBe(200);
    expect((await fetch(`${proxied.url}/`, xff(2))).status).toBe(200);
    expect((await fetch(`${proxied.url}/`, xff(1))).status).toBe(429);
  });
});
