/**
 * The broker in the shape it is deployed: K Lambda execution environments behind API Gateway.
 *
 * - Each container is its own process running the real handler (src/entry/lambda.ts, bundled as
 *   the CDK app bundles it, with bench/lambda-container.ts playing the runtime), with
 *   AWS_LAMBDA_FUNCTION_NAME set, so the handler takes its Lambda paths (the standby refill by
 *   asynchronous self-invocation). Containers share nothing but what is behind the AWS endpoints.
 * - A container serves one invocation at a time and is frozen in between: SIGSTOP as soon as its
 *   answer is back, SIGCONT just before the next invocation. Whatever the handler left running
 *   waits, as it waits on Lambda.
 * - One FIFO queue feeds the containers, for requests and asynchronous events alike, as they
 *   compete for the function's concurrency.
 * - One local HTTP server stands in for API Gateway (any path: the request becomes an
 *   APIGatewayProxyEvent, the answer the proxy result; 29 s integration timeout → 504) and for the
 *   Lambda Invoke API (POST /2015-03-31/functions/{name}/invocations with InvocationType Event →
 *   202, then the event waits in the queue). The containers' LambdaClient reaches it through
 *   AWS_ENDPOINT_URL_LAMBDA, which the SDK prefers to AWS_ENDPOINT_URL for the Lambda service.
 * - An invocation running past the function timeout (25 s, infra/constructs/activation-broker.ts)
 *   or a container that dies ends that invocation with an error, and a fresh container takes the
 *   dead one's place, as Lambda replaces an execution environment.
 *
 * Reusable by tests: start it, point requests at `url`, `kill(i)` a container mid-invocation.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from "aws-lambda";
import { buildLambdaBundle } from "./lambda-bundle";

/** The deployed function's timeout (infra/constructs/activation-broker.ts). */
export const FUNCTION_TIMEOUT_MS = 25_000;
/** API Gateway's REST API integration timeout. */
export const INTEGRATION_TIMEOUT_MS = 29_000;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
const MAX_BODY_BYTES = 256 * 1024; // Lambda's limit for an asynchronous invocation's payload

export interface LambdaShapeOptions {
  /** Execution environments (the function's concurrency). */
  readonly containers: number;
  /**
   * The function's environment: broker settings, AWS_REGION, AWS_ENDPOINT_URL (the emulated AWS)
   * and credentials. AWS_LAMBDA_FUNCTION_NAME and AWS_ENDPOINT_URL_LAMBDA are set here.
   */
  readonly env: Readonly<Record<string, string>>;
  readonly functionName?: string;
  /** Latency of the Invoke API before its 202 (the `--aws-latency` profile's Lambda figure). */
  readonly invokeLatencyMs?: number;
  readonly functionTimeoutMs?: number;
  readonly integrationTimeoutMs?: number;
  /** Where the containers' stderr goes; default: this process's stderr. */
  readonly stderr?: "inherit" | "ignore";
}

export type InvocationKind = "http" | "event";

export interface InvocationStart {
  readonly container: number;
  readonly kind: InvocationKind;
  /** An asynchronous event's `kind` field, e.g. "activation-broker.refill-standby". */
  readonly eventKind?: string;
}

export interface LambdaShapeCounters {
  /** Invocations started, by kind: "http", and one "event:<kind>" per asynchronous event kind. */
  readonly invocations: Record<string, number>;
  /** Calls the Invoke API answered 202: AWS calls the function made, like any SDK call. */
  readonly invokeApiCalls: number;
  /** Invocations that threw, timed out or lost their container. */
  readonly functionErrors: number;
  readonly functionTimeouts: number;
  /** Requests answered 504 because API Gateway's integration timeout passed first. */
  readonly integrationTimeouts: number;
  /** Containers started, the first K included (a dead one is replaced). */
  readonly containerStarts: number;
  /** The longest the queue got. */
  readonly queuePeak: number;
  /**
   * Duration Lambda would bill, summed over invocations: each rounded up to 1 ms, from the thaw to
   * the answer (on this shared machine an invocation takes longer than on Lambda: see
   * docs/performance.md).
   */
  readonly billedMs: number;
}

export interface ContainerView {
  readonly index: number;
  readonly pid: number | undefined;
  readonly busy: boolean;
  readonly invocations: number;
}

export interface LambdaShape {
  /** API Gateway's stand-in: `${url}/activations/default`. */
  readonly url: string;
  readonly functionName: string;
  counters(): LambdaShapeCounters;
  resetCounters(): void;
  containers(): ContainerView[];
  /** Calls `listener` as each invocation starts (before the container is thawed); returns "off". */
  onInvocationStart(listener: (start: InvocationStart) => void): () => void;
  /** SIGKILLs container `index` (mid-invocation or frozen); a fresh one replaces it. */
  kill(index: number): Promise<void>;
  /** Resolves true once nothing is queued or running, false if `timeoutMs` passes first. */
  settled(timeoutMs: number): Promise<boolean>;
  stop(): Promise<void>;
}

type Outcome = { readonly result: unknown } | { readonly error: string };

interface Job {
  readonly kind: InvocationKind;
  readonly event: unknown;
  readonly eventKind?: string;
  readonly done: (outcome: Outcome) => void;
  /** Set when the job no longer needs running (a request API Gateway has given up on). */
  abandoned?: boolean;
}

interface Container {
  readonly index: number;
  child: ChildProcess;
  ready: boolean;
  busy: boolean;
  /** Killed by the harness (timeout, `kill`), not dead by itself. */
  killed: boolean;
  invocations: number;
  running?: {
    readonly id: number;
    readonly job: Job;
    readonly timer: NodeJS.Timeout;
    readonly startedAt: number;
  };
}

/** Every harness alive in this process, so an exit never leaves frozen containers behind. */
const alive = new Set<() => void>();
process.once("exit", () => {
  for (const killAll of alive) killAll();
});

export async function startLambdaShape(options: LambdaShapeOptions): Promise<LambdaShape> {
  if (!Number.isInteger(options.containers) || options.containers < 1)
    throw new Error("containers must be a whole number >= 1");
  const functionName = options.functionName ?? "activation-broker-bench";
  const functionTimeoutMs = options.functionTimeoutMs ?? FUNCTION_TIMEOUT_MS;
  const integrationTimeoutMs = options.integrationTimeoutMs ?? INTEGRATION_TIMEOUT_MS;

  const dir = mkdtempSync(join(tmpdir(), "broker-lambda-shape-"));
  const bundle = join(dir, "container.js");
  await buildLambdaBundle("bench/lambda-container.ts", bundle);

  let counters = emptyCounters();
  const queue: Job[] = [];
  const containers: Container[] = [];
  const listeners = new Set<(start: InvocationStart) => void>();
  const settledWaiters = new Set<() => void>();
  let nextInvocationId = 1;
  let stopping = false;
  let startFailure: string | undefined;

  const server: Server = createServer((req, res) => {
    route(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { message: "stand-in error" });
      else res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env = {
    ...options.env,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_ENDPOINT_URL_LAMBDA: url,
    PATH: process.env.PATH ?? "",
  };

  const killAll = () => {
    for (const c of containers) c.child.kill("SIGKILL");
  };
  alive.add(killAll);

  function spawnContainer(index: number): Container {
    counters = { ...counters, containerStarts: counters.containerStarts + 1 };
    // A clean environment, as Lambda gives one: nothing of this process's but PATH.
    const child = fork(bundle, [], {
      env,
      execArgv: ["--enable-source-maps"],
      stdio: ["ignore", "ignore", options.stderr ?? "inherit", "ipc"],
    });
    const container: Container = {
      index,
      child,
      ready: false,
      busy: false,
      killed: false,
      invocations: 0,
    };
    child.on("message", (message: { type?: string; id?: number; result?: unknown; error?: string }) => {
      if (message.type === "ready") {
        container.ready = true;
        child.kill("SIGSTOP");
        dispatch();
      } else if (message.type === "result" && container.running?.id === message.id && !container.killed) {
        // (A result that raced the timeout's SIGKILL is dropped: the exit handler fails the job.)
        child.kill("SIGSTOP");
        finish(
          container,
          message.error !== undefined ? { error: message.error } : { result: message.result },
        );
      }
    });
    // Signalling or writing to a process that just died: its exit handler below does the rest.
    child.on("error", () => undefined);
    child.once("exit", (code, signal) => {
      if (containers[index] !== container) return;
      if (container.running) {
        counters = {
          ...counters,
          functionErrors: counters.functionErrors + 1,
          billedMs: counters.billedMs + billed(container.running.startedAt),
        };
        const { job, timer } = container.running;
        clearTimeout(timer);
        container.running = undefined;
        job.done({ error: "Runtime.ExitError" });
      }
      if (stopping) return;
      if (!container.ready && !container.killed) {
        // Dead while loading: the bundle or its environment is broken, and a replacement would
        // die the same way, in a loop. The slot stays empty; startLambdaShape reports it.
        startFailure = `container ${index} exited while loading (${signal ?? `exit code ${code}`})`;
        process.stderr.write(`lambda shape: ${startFailure}\n`);
      } else {
        containers[index] = spawnContainer(index);
      }
      dispatch();
    });
    return container;
  }

  function finish(container: Container, outcome: Outcome): void {
    const running = container.running;
    if (!running) return;
    clearTimeout(running.timer);
    counters = { ...counters, billedMs: counters.billedMs + billed(running.startedAt) };
    container.running = undefined;
    container.busy = false;
    if ("error" in outcome) counters = { ...counters, functionErrors: counters.functionErrors + 1 };
    running.job.done(outcome);
    dispatch();
  }

  function dispatch(): void {
    for (;;) {
      while (queue.length > 0 && queue[0]?.abandoned) queue.shift();
      const job = queue[0];
      const container = containers.find((c) => c.ready && !c.busy && !c.running && !c.killed);
      if (!job || !container) break;
      queue.shift();
      run(container, job);
    }
    if (queue.length === 0 && containers.every((c) => !c.busy)) {
      for (const wake of settledWaiters) wake();
    }
  }

  function run(container: Container, job: Job): void {
    const id = nextInvocationId++;
    const key = job.kind === "http" ? "http" : `event:${job.eventKind ?? "unknown"}`;
    counters = {
      ...counters,
      invocations: { ...counters.invocations, [key]: (counters.invocations[key] ?? 0) + 1 },
    };
    container.busy = true;
    container.invocations++;
    const timer = setTimeout(() => {
      counters = { ...counters, functionTimeouts: counters.functionTimeouts + 1 };
      // Lambda stops a timed-out environment; the exit handler ends the job and replaces it.
      container.killed = true;
      container.child.kill("SIGKILL");
    }, functionTimeoutMs);
    container.running = { id, job, timer, startedAt: performance.now() };
    const start: InvocationStart = {
      container: container.index,
      kind: job.kind,
      ...(job.eventKind !== undefined && { eventKind: job.eventKind }),
    };
    for (const listener of listeners) listener(start);
    container.child.kill("SIGCONT");
    container.child.send(
      { type: "invoke", id, event: job.event, requestId: randomUUID(), timeoutMs: functionTimeoutMs },
      (error) => {
        // The process died on its own (its exit is on the way): the exit handler fails the job.
        if (error) container.child.kill("SIGKILL");
      },
    );
  }

  function enqueue(job: Job): void {
    queue.push(job);
    if (queue.length > counters.queuePeak) counters = { ...counters, queuePeak: queue.length };
    dispatch();
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, { message: "Request too large" });
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const invoke = INVOKE_PATH.exec(path);
    if (req.method === "POST" && invoke)
      return invokeApi(req, res, decodeURIComponent(invoke[1] ?? ""), body);
    return apiGateway(req, res, body);
  }

  /** The Lambda Invoke API, InvocationType Event only (all the broker uses). */
  async function invokeApi(req: IncomingMessage, res: ServerResponse, name: string, body: string) {
    if (name !== functionName && !name.endsWith(`:function:${functionName}`))
      return send(res, 404, lambdaError("ResourceNotFoundException", `Function not found: ${name}`));
    if (req.headers["x-amz-invocation-type"] !== "Event")
      return send(res, 400, lambdaError("InvalidParameterValueException", "the stand-in serves Event only"));
    let event: unknown;
    try {
      event = JSON.parse(body === "" ? "{}" : body);
    } catch {
      return send(res, 400, lambdaError("InvalidRequestContentException", "Could not parse request body"));
    }
    if (options.invokeLatencyMs) await sleep(options.invokeLatencyMs);
    counters = { ...counters, invokeApiCalls: counters.invokeApiCalls + 1 };
    const kind = (event as { kind?: unknown } | null)?.kind;
    enqueue({
      kind: "event",
      event,
      eventKind: typeof kind === "string" ? kind : "unknown",
      done: () => undefined,
    });
    res.statusCode = 202;
    res.setHeader("x-amzn-RequestId", randomUUID());
    res.end();
  }

  function apiGateway(req: IncomingMessage, res: ServerResponse, body: string): void {
    let answered = false;
    const job: Job = {
      kind: "http",
      event: proxyEvent(req, body),
      done: (outcome) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        if ("error" in outcome) return send(res, 502, { message: "Internal server error" });
        const result = outcome.result as APIGatewayProxyResult;
        res.statusCode = result.statusCode;
        for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, String(value));
        res.end(result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body);
      },
    };
    // API Gateway gives up at 29 s whether the request is queued or running; a running
    // invocation goes on to its end, as Lambda does not stop it.
    const timer = setTimeout(() => {
      if (answered) return;
      answered = true;
      job.abandoned = true;
      counters = { ...counters, integrationTimeouts: counters.integrationTimeouts + 1 };
      send(res, 504, { message: "Endpoint request timed out" });
    }, integrationTimeoutMs);
    enqueue(job);
  }

  for (let i = 0; i < options.containers; i++) containers.push(spawnContainer(i));
  await new Promise<void>((resolve, reject) => {
    const check = setInterval(() => {
      if (startFailure !== undefined || containers.every((c) => c.ready)) {
        clearInterval(check);
        if (startFailure === undefined) resolve();
        else reject(new Error(startFailure));
      }
    }, 20);
    setTimeout(() => {
      clearInterval(check);
      if (!containers.every((c) => c.ready)) reject(new Error("containers did not start within 60 s"));
    }, 60_000).unref();
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  counters = { ...emptyCounters(), containerStarts: counters.containerStarts };

  async function stop(): Promise<void> {
    stopping = true;
    for (const c of containers) {
      if (c.running) clearTimeout(c.running.timer);
      c.child.kill("SIGKILL");
    }
    alive.delete(killAll);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    rmSync(dir, { recursive: true, force: true });
  }

  return {
    url,
    functionName,
    counters: () => ({ ...counters, invocations: { ...counters.invocations } }),
    resetCounters: () => {
      counters = { ...emptyCounters(), containerStarts: 0 };
    },
    containers: () =>
      containers.map((c) => ({
        index: c.index,
        pid: c.child.pid,
        busy: c.busy,
        invocations: c.invocations,
      })),
    onInvocationStart: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    kill: async (index) => {
      const container = containers[index];
      if (!container) throw new Error(`no container ${index}`);
      const exited = new Promise<void>((resolve) => container.child.once("exit", () => resolve()));
      container.killed = true;
      container.child.kill("SIGKILL");
      await exited;
    },
    settled: (timeoutMs) =>
      new Promise<boolean>((resolve) => {
        const wake = () => {
          settledWaiters.delete(wake);
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          settledWaiters.delete(wake);
          resolve(false);
        }, timeoutMs);
        settledWaiters.add(wake);
        dispatch();
      }),
    stop,
  };
}

function emptyCounters(): LambdaShapeCounters {
  return {
    invocations: {},
    invokeApiCalls: 0,
    functionErrors: 0,
    functionTimeouts: 0,
    integrationTimeouts: 0,
    containerStarts: 0,
    queuePeak: 0,
    billedMs: 0,
  };
}

/** Lambda rounds each invocation's duration up to the next millisecond. */
const billed = (startedAt: number) => Math.ceil(performance.now() - startedAt);

/** API Gateway's REST proxy event for one request, as the deployed stage "prod" builds it. */
function proxyEvent(req: IncomingMessage, body: string): APIGatewayProxyEvent {
  const [rawPath = "/", rawQuery] = (req.url ?? "/").split("?", 2);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const query = new URLSearchParams(rawQuery ?? "");
  const queryStringParameters = rawQuery ? Object.fromEntries(query) : null;
  const requestId = randomUUID();
  const domainName = "bench.execute-api.us-east-1.amazonaws.com";
  return {
    resource: "/{proxy+}",
    path: rawPath,
    httpMethod: req.method ?? "GET",
    headers: { ...headers, Host: domainName },
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters,
    multiValueQueryStringParameters: queryStringParameters
      ? Object.fromEntries([...query.keys()].map((k) => [k, query.getAll(k)]))
      : null,
    pathParameters: { proxy: rawPath.slice(1) },
    stageVariables: null,
    body: body === "" ? null : body,
    isBase64Encoded: false,
    requestContext: {
      accountId: "000000000000",
      apiId: "bench",
      authorizer: null,
      domainName,
      httpMethod: req.method ?? "GET",
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
        user: null,
        userAgent: headers["user-agent"] ?? null,
        userArn: null,
      },
      path: `/prod${rawPath}`,
      protocol: "HTTP/1.1",
      requestId,
      requestTimeEpoch: Date.now(),
      resourceId: "bench",
      resourcePath: "/{proxy+}",
      stage: "prod",
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.end(text);
}

function lambdaError(type: string, message: string) {
  return { Type: "User", __type: type, message };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
