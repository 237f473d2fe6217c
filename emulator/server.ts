import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { EmulatorClock } from "./clock";
import {
  type EmulatorControls,
  EmulatorControlsImpl,
  parseAgentReport,
  parseFaultSpec,
  parseLimits,
} from "./controls";
import { dynamoDbFailureBody, EmulatedDynamoDb } from "./dynamodb";
import { SsmError } from "./ssm/ssm-error";
import { invokeSsm } from "./ssm/ssm-service";
import { SsmState } from "./ssm/ssm-state";

export type {
  ActivationView,
  AgentReport,
  ActiveFault,
  EmulatorControls,
  FaultKind,
  FaultSpec,
  LimitsSpec,
  ManagedNodeView,
  UsageReport,
} from "./controls";
export type { DynamoDbUsage, ItemUsage, OperationUsage } from "./dynamodb";
export { activationQuotas, PARAMETER_STORE_QUOTAS, type SsmQuota } from "./ssm-quotas";

export interface EmulatorOptions {
  /** Default 4566; 0 picks a free port (what tests use). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Region in ARNs; default AWS_REGION, else us-east-1. */
  region?: string;
  /** One line per request (method, target, status, time); never a body. */
  logRequests?: boolean;
}

export interface Emulator {
  url: string;
  port: number;
  region: string;
  controls: EmulatorControls;
  close(): Promise<void>;
}

/** The account ID in every ARN the emulator makes; no real account has it. */
export const EMULATOR_ACCOUNT_ID = "000000000000";

const SSM_PREFIX = "AmazonSSM.";
const DYNAMODB_PREFIX = "DynamoDB_20120810.";
const CONTROL_PREFIX = "/_emulator/";
const MAX_BODY_BYTES = 1024 * 1024;

async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new SsmError("SerializationException", "Request body too large.");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  contentType = "application/json",
): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("Content-Type", contentType);
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.end(text);
}

const SSM_CONTENT_TYPE = "application/x-amz-json-1.1";

function sendSsmError(res: ServerResponse, error: SsmError): void {
  sendJson(
    res,
    error.status,
    { __type: error.code, message: error.message, Message: error.message },
    SSM_CONTENT_TYPE,
  );
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? "127.0.0.1";
  const region = options.region ?? process.env.AWS_REGION ?? "us-east-1";
  const clock = new EmulatorClock();
  const ssmState = new SsmState(clock, region, EMULATOR_ACCOUNT_ID);
  const controls = new EmulatorControlsImpl(clock, ssmState);
  const dynamodb = new EmulatedDynamoDb(region, EMULATOR_ACCOUNT_ID, (operation) =>
    controls.countThrottle("dynamodb", operation),
  );
  controls.dynamodb = dynamodb;

  async function handleSsm(req: IncomingMessage, res: ServerResponse, operation: string): Promise<void> {
    controls.count("ssm", operation);
    const raw = await readBody(req);
    const failure = await controls.applyFaults("ssm", operation);
    // SSM's answer to a call past its request quota (or an injected throttle); the SDKs retry it.
    // Source: https://repost.aws/knowledge-center/ssm-parameter-store-rate-exceeded
    if (failure?.kind === "throttle" || (!failure && !controls.ssmLimiter.admit(operation))) {
      controls.countThrottle("ssm", operation);
      return sendSsmError(res, new SsmError("ThrottlingException", "Rate exceeded", failure?.status ?? 400));
    }
    // "There are concurrent updates for a resource that supports one update at a time." The SSM
    // Agent retries this one service error; the SDKs' standard retry does not know it.
    // Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html#API_PutParameter_Errors
    if (failure?.kind === "tooManyUpdates")
      return sendSsmError(
        res,
        new SsmError(
          "TooManyUpdates",
          "There are concurrent updates for a resource that supports one update at a time.",
          failure.status,
        ),
      );
    if (failure?.kind === "error")
      return sendSsmError(
        res,
        new SsmError("InternalServerError", "An error occurred on the server side.", failure.status),
      );
    let body: unknown = {};
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        return sendSsmError(
          res,
          new SsmError("SerializationException", "The request body is not valid JSON."),
        );
      }
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return sendSsmError(
        res,
        new SsmError("SerializationException", "The request body must be a JSON object."),
      );
    }
    sendJson(res, 200, invokeSsm(ssmState, operation, body as Record<string, unknown>), SSM_CONTENT_TYPE);
  }

  async function handleDynamoDb(req: IncomingMessage, res: ServerResponse, operation: string): Promise<void> {
    controls.count("dynamodb", operation);
    const failure = await controls.applyFaults("dynamodb", operation);
    if (failure) {
      req.resume();
      if (failure.kind === "throttle") controls.countThrottle("dynamodb", operation);
      return sendJson(
        res,
        failure.status,
        dynamoDbFailureBody(operation, failure),
        "application/x-amz-json-1.0",
      );
    }
    // DynamoDB takes up to 16 MB in one request (BatchWriteItem), as dynalite does.
    await dynamodb.handle(req, res, operation, await readBody(req, 16 * 1024 * 1024));
  }

  async function handleControl(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const route = `${req.method ?? "GET"} ${path}`;
    const jsonBody = async (): Promise<unknown> => {
      const raw = await readBody(req);
      return raw.length === 0 ? {} : JSON.parse(raw.toString("utf8"));
    };
    try {
      switch (route) {
        case "GET /_emulator/health":
          return sendJson(res, 200, { status: "ok", region });
        case "GET /_emulator/counters":
          return sendJson(res, 200, controls.counters());
        case "DELETE /_emulator/counters":
          controls.resetCounters();
          return sendJson(res, 200, controls.counters());
        case "GET /_emulator/faults":
          return sendJson(res, 200, controls.faults());
        case "POST /_emulator/faults":
          controls.injectFault(parseFaultSpec(await jsonBody()));
          return sendJson(res, 201, controls.faults());
        case "DELETE /_emulator/faults":
          controls.clearFaults();
          return sendJson(res, 200, controls.faults());
        case "GET /_emulator/clock":
          return sendJson(res, 200, {
            offsetSeconds: controls.clockOffset(),
            now: controls.now().toISOString(),
          });
        case "POST /_emulator/clock": {
          const body = (await jsonBody()) as { offsetSeconds?: unknown };
          if (
            typeof body !== "object" ||
            body === null ||
            typeof body.offsetSeconds !== "number" ||
            Object.keys(body).some((k) => k !== "offsetSeconds")
          ) {
            return sendJson(res, 400, { error: 'expected {"offsetSeconds": <number>}' });
          }
          controls.setClockOffset(body.offsetSeconds);
          return sendJson(res, 200, {
            offsetSeconds: controls.clockOffset(),
            now: controls.now().toISOString(),
          });
        }
        case "GET /_emulator/parameter-quota":
          return sendJson(res, 200, controls.parameterQuota());
        case "POST /_emulator/parameter-quota": {
          const body = (await jsonBody()) as { standard?: unknown };
          if (
            typeof body !== "object" ||
            body === null ||
            !Number.isInteger(body.standard) ||
            (body.standard as number) < 0 ||
            Object.keys(body).some((k) => k !== "standard")
          ) {
            return sendJson(res, 400, { error: 'expected {"standard": <whole number >= 0>}' });
          }
          controls.setParameterQuota(body.standard as number);
          return sendJson(res, 200, controls.parameterQuota());
        }
        case "GET /_emulator/usage":
          return sendJson(res, 200, controls.usage());
        case "GET /_emulator/limits":
          return sendJson(res, 200, controls.limits());
        case "POST /_emulator/limits":
          controls.setLimits(parseLimits(await jsonBody()));
          return sendJson(res, 200, controls.limits());
        case "POST /_emulator/reset":
          controls.reset();
          return sendJson(res, 200, { status: "reset" });
        case "GET /_emulator/activations":
          return sendJson(res, 200, controls.activations());
        case "GET /_emulator/managed-nodes":
          return sendJson(res, 200, controls.managedNodes());
        default: {
          const node = /^POST \/_emulator\/managed-nodes\/(mi-[0-9a-f]{17})$/.exec(route);
          if (node)
            return sendJson(res, 200, controls.agentReport(node[1]!, parseAgentReport(await jsonBody())));
          return sendJson(res, 404, { error: `no control endpoint ${route}; see emulator/README.md` });
        }
      }
    } catch (error) {
      // Bad JSON or a rejected fault spec: the caller's mistake, said plainly.
      return sendJson(res, 400, { error: error instanceof Error ? error.message : "bad request" });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader("x-amzn-RequestId", randomUUID());
    const path = (req.url ?? "/").split("?")[0] as string;
    const target = typeof req.headers["x-amz-target"] === "string" ? req.headers["x-amz-target"] : "";
    if (path.startsWith(CONTROL_PREFIX)) return handleControl(req, res, path);
    if (target.startsWith(DYNAMODB_PREFIX))
      return handleDynamoDb(req, res, target.slice(DYNAMODB_PREFIX.length));
    if (target.startsWith(SSM_PREFIX)) return handleSsm(req, res, target.slice(SSM_PREFIX.length));
    req.resume();
    return sendSsmError(
      res,
      new SsmError(
        "UnknownOperationException",
        target ? `Unknown operation ${target}.` : "Missing X-Amz-Target header.",
      ),
    );
  }

  const server = createServer((req, res) => {
    const started = Date.now();
    if (options.logRequests) {
      res.on("finish", () => {
        const what = req.headers["x-amz-target"] ?? req.url;
        console.log(`${req.method} ${String(what)} ${res.statusCode} ${Date.now() - started}ms`);
      });
    }
    handle(req, res).catch((error: unknown) => {
      if (error instanceof SsmError) return sendSsmError(res, error);
      // Only the error's message: a stack or request body could carry an activation code.
      console.error(`emulator: internal error: ${error instanceof Error ? error.message : String(error)}`);
      if (!res.headersSent)
        sendSsmError(res, new SsmError("InternalServerError", "An error occurred on the server side.", 500));
      else res.end();
    });
  });

  // SDK clients keep idle sockets open indefinitely; a server that closes them after Node's default
  // 5 s races a request sent on the closing socket ("socket hang up"), which a burst with pauses
  // hits. Real AWS endpoints keep idle connections far longer.
  server.keepAliveTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // A burst's worth of connections at once: a deeper accept queue than Node's 511.
    server.listen({ port: options.port ?? 4566, host, backlog: 4096 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    region,
    controls,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections from SDK clients would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}
