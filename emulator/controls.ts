import { setTimeout as sleep } from "node:timers/promises";
import type { EmulatorClock } from "./clock";
import { isExpired } from "./ssm/activations";
import type { ManagedNodeRecord, SsmState } from "./ssm/ssm-state";

import type { DynamoDbUsage, EmulatedDynamoDb } from "./dynamodb";
import { parseSsmQuotas, SsmRateLimiter, type SsmQuota } from "./ssm-quotas";

export type EmulatedService = "ssm" | "dynamodb";

/** What AWS would bill and refuse: see emulator/README.md, "Capacity and limits". */
export interface UsageReport {
  dynamodb: DynamoDbUsage;
  /** Requests answered with a throttling error, by `service:Operation` (injected throttles too). */
  throttled: Record<string, number>;
}

/** The limits in force; an omitted member is off. See emulator/README.md, "Capacity and limits". */
export interface LimitsSpec {
  /** Write units one item (partition key value) may take per second before writes are throttled. */
  dynamodbItemWriteUnitsPerSecond?: number;
  /** Each request on an item holds it this long, one at a time (a store that serves one at a time). */
  dynamodbItemServiceMs?: number;
  /** SSM request quotas (emulator/ssm-quotas.ts has the documented ones). */
  ssmQuotas?: SsmQuota[];
}

const LIMIT_KEYS = new Set(["dynamodbItemWriteUnitsPerSecond", "dynamodbItemServiceMs", "ssmQuotas"]);

/** Validates limits from a test or `POST /_emulator/limits`; unknown keys are rejected. */
export function parseLimits(input: unknown): LimitsSpec {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new TypeError("limits are a JSON object");
  const raw = input as Record<string, unknown>;
  const unknown = Object.keys(raw).filter((k) => !LIMIT_KEYS.has(k));
  if (unknown.length > 0) throw new TypeError(`unknown limit(s): ${unknown.join(", ")}`);
  const spec: LimitsSpec = {};
  for (const key of ["dynamodbItemWriteUnitsPerSecond", "dynamodbItemServiceMs"] as const) {
    const value = raw[key];
    if (value === undefined || value === null) continue;
    if (!(typeof value === "number" && Number.isFinite(value) && value > 0))
      throw new TypeError(`${key} must be a number > 0`);
    spec[key] = value;
  }
  if (raw.ssmQuotas !== undefined && raw.ssmQuotas !== null) spec.ssmQuotas = parseSsmQuotas(raw.ssmQuotas);
  return spec;
}
export type FaultKind = "throttle" | "error" | "latency" | "tooManyUpdates";

/** What a test asks for: see emulator/README.md, "Fault injection". */
export interface FaultSpec {
  service: EmulatedService;
  /** The operation name ("CreateActivation", "UpdateItem"); omitted or "*" = every operation. */
  operation?: string;
  kind: FaultKind;
  /** How many calls it hits; omitted = until cleared. */
  count?: number;
  /** For "latency" (required there). */
  latencyMs?: number;
  /** HTTP status of the injected answer (default 400 for throttle and tooManyUpdates, 500 for error). */
  status?: number;
  /**
   * Probability (0 < rate <= 1) that a matching call is hit; omitted = every call. A call the dice
   * spare neither consumes `count` nor is delayed (benchmarks and fault suites throttle "10 %").
   */
  rate?: number;
}

export interface ActiveFault extends FaultSpec {
  /** Calls it still hits; undefined = until cleared. */
  remaining?: number;
}

/** An activation as tests may see it: everything but the code. */
export interface ActivationView {
  activationId: string;
  description?: string;
  defaultInstanceName?: string;
  iamRole: string;
  registrationLimit: number;
  registrationsCount: number;
  expirationDate: Date;
  createdDate: Date;
  expired: boolean;
  tags: { Key: string; Value: string }[];
}

export interface ManagedNodeView {
  instanceId: string;
  activationId: string;
  iamRole: string;
  name?: string;
  computerName?: string;
  registrationDate: Date;
  lastPingDateTime: Date;
  pingStatus: string;
  tags: { Key: string; Value: string }[];
}

export interface EmulatorControls {
  /** Calls per operation, e.g. `{"ssm:CreateActivation": 2, "dynamodb:UpdateItem": 7}`; faulted calls count too. */
  counters(): Record<string, number>;
  /** Zeroes the call counters, the capacity accounting and the throttle counts. */
  resetCounters(): void;
  injectFault(spec: FaultSpec): void;
  faults(): ActiveFault[];
  clearFaults(): void;
  /** Moves the emulator's "now" by `seconds` from real time (not cumulative). */
  setClockOffset(seconds: number): void;
  clockOffset(): number;
  now(): Date;
  /** Lowers (or restores) the standard-tier parameter quota, 10,000 as in real SSM. */
  setParameterQuota(standard: number): void;
  parameterQuota(): { standard: number; used: number };
  /** Capacity units consumed, the hottest items and the throttled requests since the counters were reset. */
  usage(): UsageReport;
  /** Replaces the limits in force (an empty object turns them all off). */
  setLimits(spec: LimitsSpec): void;
  limits(): LimitsSpec;
  /** Clears SSM state, counters, faults, the clock offset, the quota and the limits; DynamoDB tables stay. */
  reset(): void;
  activations(): ActivationView[];
  managedNodes(): ManagedNodeView[];
  /**
   * What a node's agent reports after registering: its host name and IP address (SSM Agent sends
   * them with every heartbeat), and its connection state. `lastPingSecondsAgo` back-dates the last
   * heartbeat, e.g. for a re-imaged host whose old registration went silent days ago.
   */
  agentReport(instanceId: string, report: AgentReport): ManagedNodeView;
}

export interface AgentReport {
  computerName?: string;
  ipAddress?: string;
  pingStatus?: "Online" | "ConnectionLost" | "Inactive";
  lastPingSecondsAgo?: number;
}

const REPORT_KEYS = new Set(["computerName", "ipAddress", "pingStatus", "lastPingSecondsAgo"]);

/** Validates an agent report from a test or `POST /_emulator/managed-nodes/{id}`; unknown keys are rejected. */
export function parseAgentReport(input: unknown): AgentReport {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new TypeError("an agent report is a JSON object");
  const raw = input as Record<string, unknown>;
  const unknown = Object.keys(raw).filter((k) => !REPORT_KEYS.has(k));
  if (unknown.length > 0) throw new TypeError(`unknown report field(s): ${unknown.join(", ")}`);
  for (const key of ["computerName", "ipAddress"] as const) {
    if (raw[key] !== undefined && (typeof raw[key] !== "string" || raw[key] === "")) {
      throw new TypeError(`${key} must be a non-empty string`);
    }
  }
  if (
    raw.pingStatus !== undefined &&
    !["Online", "ConnectionLost", "Inactive"].includes(raw.pingStatus as string)
  ) {
    throw new TypeError('pingStatus must be "Online", "ConnectionLost" or "Inactive"');
  }
  if (
    raw.lastPingSecondsAgo !== undefined &&
    !(typeof raw.lastPingSecondsAgo === "number" && raw.lastPingSecondsAgo >= 0)
  ) {
    throw new TypeError("lastPingSecondsAgo must be a number >= 0");
  }
  return raw as AgentReport;
}

/** The answer a throttle/error fault substitutes for the real one. */
export interface InjectedFailure {
  kind: "throttle" | "error" | "tooManyUpdates";
  status: number;
}

const FAULT_KEYS = new Set(["service", "operation", "kind", "count", "latencyMs", "status", "rate"]);
const KINDS = new Set(["throttle", "error", "latency", "tooManyUpdates"]);

/**
 * Validates a fault from a test or from `POST /_emulator/faults`. Unknown keys are rejected so a
 * typo ("latency" for "latencyMs") fails at once instead of injecting nothing.
 */
export function parseFaultSpec(input: unknown): FaultSpec {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new TypeError("a fault is a JSON object");
  const raw = input as Record<string, unknown>;
  const unknown = Object.keys(raw).filter((k) => !FAULT_KEYS.has(k));
  if (unknown.length > 0) throw new TypeError(`unknown fault field(s): ${unknown.join(", ")}`);
  if (raw.service !== "ssm" && raw.service !== "dynamodb")
    throw new TypeError('service must be "ssm" or "dynamodb"');
  if (typeof raw.kind !== "string" || !KINDS.has(raw.kind)) {
    throw new TypeError('kind must be "throttle", "error", "latency" or "tooManyUpdates"');
  }
  if (raw.kind === "tooManyUpdates" && raw.service !== "ssm") {
    throw new TypeError("tooManyUpdates is an SSM error; DynamoDB has no such answer");
  }
  if (raw.rate !== undefined && !(typeof raw.rate === "number" && raw.rate > 0 && raw.rate <= 1)) {
    throw new TypeError("rate must be a number in (0, 1]");
  }
  if (raw.operation !== undefined && (typeof raw.operation !== "string" || raw.operation === "")) {
    throw new TypeError("operation must be a non-empty string");
  }
  if (raw.count !== undefined && !(Number.isInteger(raw.count) && (raw.count as number) > 0)) {
    throw new TypeError("count must be a positive integer");
  }
  if (raw.kind === "latency" && !(typeof raw.latencyMs === "number" && raw.latencyMs >= 0)) {
    throw new TypeError("a latency fault needs latencyMs >= 0");
  }
  if (raw.latencyMs !== undefined && !(typeof raw.latencyMs === "number" && raw.latencyMs >= 0)) {
    throw new TypeError("latencyMs must be a number >= 0");
  }
  if (
    raw.status !== undefined &&
    !(Number.isInteger(raw.status) && (raw.status as number) >= 400 && (raw.status as number) <= 599)
  ) {
    throw new TypeError("status must be an integer from 400 to 599");
  }
  return raw as unknown as FaultSpec;
}

export class EmulatorControlsImpl implements EmulatorControls {
  private readonly calls = new Map<string, number>();
  private readonly throttles = new Map<string, number>();
  private active: ActiveFault[] = [];
  private current: LimitsSpec = {};
  readonly ssmLimiter = new SsmRateLimiter();
  /** Set by the server once the emulated DynamoDB exists (it reports its throttles here). */
  dynamodb?: EmulatedDynamoDb;

  constructor(
    private readonly clock: EmulatorClock,
    private readonly ssm: SsmState,
    private readonly random: () => number = Math.random,
  ) {}

  countThrottle(service: EmulatedService, operation: string): void {
    const key = `${service}:${operation}`;
    this.throttles.set(key, (this.throttles.get(key) ?? 0) + 1);
  }

  usage(): UsageReport {
    return {
      dynamodb: this.dynamodb?.usageReport() ?? { tables: {}, items: [] },
      throttled: Object.fromEntries([...this.throttles].sort(([a], [b]) => (a < b ? -1 : 1))),
    };
  }

  setLimits(spec: LimitsSpec): void {
    const parsed = parseLimits(spec);
    this.current = parsed;
    if (this.dynamodb)
      this.dynamodb.limits = {
        ...(parsed.dynamodbItemWriteUnitsPerSecond !== undefined && {
          itemWriteUnitsPerSecond: parsed.dynamodbItemWriteUnitsPerSecond,
        }),
        ...(parsed.dynamodbItemServiceMs !== undefined && { itemServiceMs: parsed.dynamodbItemServiceMs }),
      };
    this.ssmLimiter.set(parsed.ssmQuotas ?? []);
  }

  limits(): LimitsSpec {
    return structuredClone(this.current);
  }

  count(service: EmulatedService, operation: string): void {
    const key = `${service}:${operation}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }

  /**
   * Applies the faults matching one call, in the order they were injected: latency faults delay
   * and let the call go on; the first throttle/error fault answers instead of the service.
   */
  async applyFaults(service: EmulatedService, operation: string): Promise<InjectedFailure | undefined> {
    const matching = this.active.filter(
      (f) =>
        f.service === service &&
        (f.operation === undefined || f.operation === "*" || f.operation === operation),
    );
    for (const fault of matching) {
      if (fault.rate !== undefined && this.random() >= fault.rate) continue;
      if (fault.remaining !== undefined) {
        fault.remaining -= 1;
        if (fault.remaining <= 0) this.active = this.active.filter((f) => f !== fault);
      }
      if (fault.kind === "latency") {
        await sleep(fault.latencyMs ?? 0);
        continue;
      }
      return { kind: fault.kind, status: fault.status ?? (fault.kind === "error" ? 500 : 400) };
    }
    return undefined;
  }

  counters(): Record<string, number> {
    return Object.fromEntries([...this.calls].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  resetCounters(): void {
    this.calls.clear();
    this.throttles.clear();
    this.dynamodb?.resetUsage();
  }

  injectFault(spec: FaultSpec): void {
    const fault = parseFaultSpec(spec);
    this.active.push({ ...fault, ...(fault.count !== undefined ? { remaining: fault.count } : {}) });
  }

  faults(): ActiveFault[] {
    return this.active.map((f) => ({ ...f }));
  }

  clearFaults(): void {
    this.active = [];
  }

  setClockOffset(seconds: number): void {
    this.clock.setOffsetSeconds(seconds);
  }

  clockOffset(): number {
    return this.clock.offsetSeconds;
  }

  now(): Date {
    return this.clock.now();
  }

  setParameterQuota(standard: number): void {
    if (!Number.isInteger(standard) || standard < 0) throw new Error("the quota is a whole number >= 0");
    this.ssm.standardParameterQuota = standard;
  }

  parameterQuota(): { standard: number; used: number } {
    return { standard: this.ssm.standardParameterQuota, used: this.ssm.standardParameterCount() };
  }

  reset(): void {
    this.ssm.clear();
    this.resetCounters();
    this.clearFaults();
    this.clock.setOffsetSeconds(0);
    this.setLimits({});
  }

  activations(): ActivationView[] {
    const now = this.clock.now();
    return [...this.ssm.activations.values()].map((a) => ({
      activationId: a.activationId,
      ...(a.description !== undefined ? { description: a.description } : {}),
      ...(a.defaultInstanceName !== undefined ? { defaultInstanceName: a.defaultInstanceName } : {}),
      iamRole: a.iamRole,
      registrationLimit: a.registrationLimit,
      registrationsCount: a.registrationsCount,
      expirationDate: new Date(a.expirationDate),
      createdDate: new Date(a.createdDate),
      expired: isExpired(a, now),
      tags: a.tags.map((t) => ({ ...t })),
    }));
  }

  managedNodes(): ManagedNodeView[] {
    return [...this.ssm.managedNodes.values()].map(nodeView);
  }

  agentReport(instanceId: string, report: AgentReport): ManagedNodeView {
    const parsed = parseAgentReport(report);
    const node = this.ssm.managedNodes.get(instanceId);
    if (!node) throw new TypeError(`no managed node ${instanceId}`);
    if (parsed.computerName !== undefined) node.computerName = parsed.computerName;
    if (parsed.ipAddress !== undefined) node.ipAddress = parsed.ipAddress;
    if (parsed.pingStatus !== undefined) node.pingStatus = parsed.pingStatus;
    if (parsed.lastPingSecondsAgo !== undefined) {
      node.lastPingDateTime = new Date(this.clock.now().getTime() - parsed.lastPingSecondsAgo * 1000);
    }
    return nodeView(node);
  }
}

function nodeView(n: ManagedNodeRecord): ManagedNodeView {
  return {
    instanceId: n.instanceId,
    activationId: n.activationId,
    iamRole: n.iamRole,
    ...(n.name !== undefined ? { name: n.name } : {}),
    ...(n.computerName !== undefined ? { computerName: n.computerName } : {}),
    registrationDate: new Date(n.registrationDate),
    lastPingDateTime: new Date(n.lastPingDateTime),
    pingStatus: n.pingStatus,
    tags: n.tags.map((t) => ({ ...t })),
  };
}
