/**
 * A stand-in for the local stack (emulated SSM + broker) used by the install.sh tests until
 * `startLocalStack` (src/entry/local-stack.ts) exists. Test equipment: it speaks the same wire
 * contracts (DESIGN.md §5 for the broker, the SSM JSON 1.1 protocol for
 * RegisterManagedInstance / DescribeInstanceInformation) and nothing more.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface AgentTestStack {
  readonly brokerUrl: string;
  readonly emulatorUrl: string;
  /** The region the broker's answers carry. */
  readonly region: string;
  /** The pool table in the emulated DynamoDB (the real local stack only). */
  readonly tableName?: string;
  close(): Promise<void>;
}

interface Activation {
  readonly id: string;
  readonly code: string;
  readonly region: string;
  readonly limit: number;
  readonly expiresAt: number;
  registrations: number;
  issued: number;
}

interface ManagedNode {
  readonly InstanceId: string;
  readonly ActivationId: string;
  readonly RegistrationDate: number;
  readonly ResourceType: "ManagedInstance";
  readonly PingStatus: "Online";
}

const REGION = "eu-west-1";
const POOLS: Record<string, { limit: number }> = { default: { limit: 1000 }, web: { limit: 3 } };

export async function startStandInStack(): Promise<AgentTestStack> {
  const activations = new Map<string, Activation>();
  const nodes: ManagedNode[] = [];
  const current = new Map<string, Activation>();

  const newActivation = (limit: number): Activation => {
    const activation: Activation = {
      id: randomUUID(),
      code: randomBytes(15).toString("base64"),
      region: REGION,
      limit,
      expiresAt: Date.now() + 24 * 3600_000,
      registrations: 0,
      issued: 0,
    };
    activations.set(activation.id, activation);
    return activation;
  };

  const emulator = createServer((req, res) => {
    void readBody(req).then((raw) => {
      const target = String(req.headers["x-amz-target"] ?? "");
      let input: Record<string, unknown>;
      try {
        input = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      } catch {
        return sendJson(res, 400, { __type: "SerializationException", Message: "Invalid JSON" });
      }
      if (target === "AmazonSSM.RegisterManagedInstance") {
        const activation = activations.get(String(input.ActivationId));
        if (!activation || activation.code !== input.ActivationCode) {
          return sendJson(res, 400, {
            __type: "InvalidActivation",
            Message: "Activation ID or Code is not valid.",
          });
        }
        if (activation.expiresAt <= Date.now()) {
          return sendJson(res, 400, { __type: "ActivationExpired", Message: "Activation has expired." });
        }
        if (activation.registrations >= activation.limit) {
          return sendJson(res, 400, {
            __type: "RegistrationLimitExceeded",
            Message: "Registration limit of the activation reached.",
          });
        }
        activation.registrations += 1;
        const node: ManagedNode = {
          InstanceId: `mi-${randomBytes(9).toString("hex").slice(0, 17)}`,
          ActivationId: activation.id,
          RegistrationDate: Date.now() / 1000,
          ResourceType: "ManagedInstance",
          PingStatus: "Online",
        };
        nodes.push(node);
        return sendJson(res, 200, { InstanceId: node.InstanceId });
      }
      if (target === "AmazonSSM.DescribeInstanceInformation") {
        const filters = (input.Filters ?? []) as { Key: string; Values: string[] }[];
        const ids = filters.find((f) => f.Key === "InstanceIds")?.Values;
        const list = ids ? nodes.filter((n) => ids.includes(n.InstanceId)) : nodes;
        return sendJson(res, 200, { InstanceInformationList: list });
      }
      return sendJson(res, 400, { __type: "InvalidAction", Message: `${target} is not emulated here.` });
    });
  });

  const broker = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://broker");
    const match = url.pathname === "/" ? ["", "default"] : /^\/activations\/([^/]+)$/.exec(url.pathname);
    if (!match) return sendError(res, 404, "NotFound", "No such route.");
    if (req.method !== "GET") {
      res.setHeader("Allow", "GET");
      return sendError(res, 405, "MethodNotAllowed", "Use GET.");
    }
    const pool = decodeURIComponent(match[1]!);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(pool)) return sendError(res, 400, "InvalidPoolName", "Bad pool name.");
    const config = POOLS[pool];
    if (!config) return sendError(res, 404, "PoolNotFound", `Pool '${pool}' is not configured.`);
    let activation = current.get(pool);
    if (!activation || activation.issued >= activation.limit) {
      activation = newActivation(config.limit);
      current.set(pool, activation);
    }
    activation.issued += 1;
    res.setHeader("Cache-Control", "no-store");
    return sendJson(res, 200, {
      ActivationId: activation.id,
      ActivationCode: activation.code,
      Region: activation.region,
      ExpirationDate: new Date(activation.expiresAt).toISOString(),
      Pool: pool,
    });
  });

  const emulatorUrl = await listen(emulator);
  const brokerUrl = await listen(broker);
  return {
    brokerUrl,
    emulatorUrl,
    region: REGION,
    close: async () => {
      await Promise.all([closeServer(emulator), closeServer(broker)]);
    },
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
