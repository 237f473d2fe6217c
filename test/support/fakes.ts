/**
 * In-memory adapters of the core's ports. They follow the same contract as the AWS adapters
 * (test/contract keeps them honest) and let tests inject faults and observe calls.
 */
import type { MetricName, Metrics } from "../../src/core/metrics";
import type {
  ActivationInventory,
  ActivationRecord,
  ManagedNode,
  NodeInventory,
  PoolInventory,
  PoolRow,
  SecretInventory,
  StoredParameter,
} from "../../src/core/inventory";
import { type Link, linksOf, reservationFrom } from "../../src/core/vend-policy";
import type {
  ActivationCount,
  ActivationProvider,
  Clock,
  CreateActivationRequest,
  CreatedActivation,
  Logger,
  LeaseRequest,
  PoolState,
  PoolStateStore,
  RefillCommit,
  Reservation,
  RotationCommit,
  SecretStore,
  Sleeper,
  ActivationPair,
} from "../../src/core/ports";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class InMemoryPoolStore implements PoolStateStore, PoolInventory {
  readonly rows = new Map<string, Mutable<PoolRow>>();
  writes = 0;

  async reserve(pool: string, validUntil: number): Promise<Reservation | undefined> {
    this.writes++;
    const row = this.rows.get(pool);
    const links = linksOf(row);
    const open = links.findIndex((l) => l.issued < l.limit);
    if (!row || open < 0) return undefined;
    // The queue is one alternative of the condition: its earliest expiry guards all of it.
    const guarding = open < 2 ? links.slice(open, open + 1) : links.slice(2);
    if (!guarding.every((l) => l.expiresAt > validUntil)) return undefined;
    setLinks(row, links, issuedOf(links) + 1);
    return reservationFrom(row);
  }

  async switchToStandby(pool: string, validUntil: number): Promise<Reservation | undefined> {
    this.writes++;
    const row = this.rows.get(pool);
    const [current, standby] = linksOf(row);
    if (
      !row ||
      !current ||
      !standby ||
      current.issued >= current.limit ||
      current.expiresAt > validUntil ||
      standby.expiresAt <= validUntil
    ) {
      return undefined;
    }
    row.links = [{ ...standby, issued: 1 }];
    row.generation += 1;
    return reservationFrom(row);
  }

  async commitRefill(pool: string, refill: RefillCommit): Promise<boolean> {
    this.writes++;
    const row = this.rows.get(pool);
    if (!row?.links.length || row.leaseOwner !== refill.owner || row.generation !== refill.generation) {
      return false;
    }
    const links = linksOf(row);
    const issued = issuedOf(links);
    const seen = links.map((l) => l.activationId).join();
    if (issued < refill.shift || seen !== refill.seen.join()) return false;
    setLinks(
      row,
      refill.chain.map((a) => ({ ...a, issued: 0 })),
      issued - refill.shift,
    );
    row.generation += refill.dropped;
    row.standbyDepth = refill.depth;
    row.refilledAt = refill.now;
    delete row.leaseOwner;
    delete row.leaseDeadline;
    return true;
  }

  async read(pool: string): Promise<PoolState | undefined> {
    const row = this.rows.get(pool);
    return row ? { ...row, links: [...row.links] } : undefined;
  }

  async acquireLease(pool: string, lease: LeaseRequest): Promise<boolean> {
    this.writes++;
    const row = this.rows.get(pool);
    const count = lease.budget.count ?? 1;
    if ((row?.generation ?? 0) !== lease.generation || count > lease.budget.max) return false;
    if (row?.leaseDeadline !== undefined && row.leaseDeadline > lease.now) return false;
    const isOpen = (start: number | undefined) =>
      start !== undefined && start > lease.now - lease.budget.windowMs;
    const windowOpen = isOpen(row?.rotationWindowStart);
    // The caller's view of the window must still hold: the DynamoDB store spends one write on it.
    if (windowOpen !== isOpen(lease.budget.windowStart)) return false;
    if (windowOpen && (row?.rotationsInWindow ?? 0) + count > lease.budget.max) return false;
    const next: Mutable<PoolRow> = row ?? { pool, generation: 0, links: [] };
    next.leaseOwner = lease.owner;
    next.leaseDeadline = lease.deadline;
    if (windowOpen) {
      next.rotationsInWindow = (next.rotationsInWindow ?? 0) + count;
    } else {
      next.rotationWindowStart = lease.now;
      next.rotationsInWindow = count;
    }
    this.rows.set(pool, next);
    return true;
  }

  async commitRotation(pool: string, rotation: RotationCommit): Promise<Reservation | undefined> {
    this.writes++;
    const row = this.rows.get(pool);
    if (!row || row.leaseOwner !== rotation.owner || row.generation !== rotation.generation) return undefined;
    row.generation = rotation.nextGeneration ?? rotation.generation + 1;
    const activations = [rotation.activation, ...(rotation.standbys ?? [])];
    setLinks(
      row,
      activations.map((a) => ({ ...a, issued: 0 })),
      1,
    );
    if (rotation.depth !== undefined) row.standbyDepth = rotation.depth;
    if (rotation.refilledAt !== undefined) row.refilledAt = rotation.refilledAt;
    delete row.leaseOwner;
    delete row.leaseDeadline;
    return reservationFrom(row);
  }

  async releaseLease(pool: string, owner: string): Promise<void> {
    this.writes++;
    const row = this.rows.get(pool);
    if (row?.leaseOwner === owner) {
      delete row.leaseOwner;
      delete row.leaseDeadline;
    }
  }

  async list(): Promise<PoolRow[]> {
    return [...this.rows.values()].map((r) => ({ ...r, links: [...r.links] }));
  }

  /** As the DynamoDB adapter: the retired activation's slots are all taken, or it leaves the row. */
  async retire(pool: string, activationId: string, options: { revoked?: boolean } = {}): Promise<boolean> {
    this.writes++;
    const row = this.rows.get(pool);
    const links = linksOf(row);
    const at = links.findIndex((l) => l.activationId === activationId);
    if (!row || at < 0) return false;
    const issued = issuedOf(links);
    const end = (n: number) => links.slice(0, n).reduce((sum, l) => sum + l.limit, 0);
    if (at === 0) {
      // Exhausted; if the standby is already in use, the current one was exhausted anyway.
      setLinks(row, links, Math.max(issued, end(1)));
    } else if (at === 1 && issued <= end(1)) {
      setLinks(row, links.slice(0, 1), issued);
    } else if (at === 1) {
      setLinks(row, links, Math.max(issued, end(2)));
    } else if (issued <= end(2)) {
      setLinks(row, links.slice(0, 2), issued);
    } else {
      setLinks(row, links, end(links.length));
    }
    if (options.revoked) row.revokedActivationId = activationId;
    return true;
  }
}

/** The counter as the DynamoDB row keeps it: one number running through the activations. */
function issuedOf(links: readonly Link[]): number {
  return links.reduce((sum, l) => sum + l.issued, 0);
}

/** Writes `links` back to the row with `issued` shared out in order. */
function setLinks(row: Mutable<PoolState>, links: readonly Link[], issued: number): void {
  let start = 0;
  row.links = links.map((l) => {
    const share = { ...l, issued: Math.min(l.limit, Math.max(0, issued - start)) };
    start += l.limit;
    return share;
  });
}

export interface FakeActivation extends ActivationRecord {
  readonly code: string;
  readonly request: CreateActivationRequest;
  deleted: boolean;
}

export class InMemoryActivations implements ActivationProvider, ActivationInventory {
  readonly created: FakeActivation[] = [];
  /** Called before each create; throw from it to simulate SSM failures. */
  beforeCreate: (request: CreateActivationRequest) => void | Promise<void> = () => {};
  private counter = 0;

  constructor(private readonly clock: Clock = systemClock) {}

  async create(request: CreateActivationRequest): Promise<CreatedActivation> {
    await this.beforeCreate(request);
    this.counter++;
    const activationId = `00000000-0000-4000-8000-${String(this.counter).padStart(12, "0")}`;
    const code = `code${String(this.counter).padStart(16, "0")}`;
    this.created.push({
      activationId,
      code,
      request,
      deleted: false,
      iamRole: request.iamRole,
      registrationLimit: request.registrationLimit,
      registrationsCount: 0,
      expiresAt: request.expiresAt,
      expired: false,
      createdAt: this.clock.now(),
      ...(request.defaultInstanceName !== undefined && { defaultInstanceName: request.defaultInstanceName }),
      tags: request.tags,
    });
    return { activationId, activationCode: code };
  }

  async delete(activationId: string): Promise<void> {
    const found = this.created.find((a) => a.activationId === activationId);
    if (found) found.deleted = true;
  }

  async list(): Promise<ActivationRecord[]> {
    const now = this.clock.now();
    return this.created
      .filter((a) => !a.deleted)
      .map(({ code: _code, request: _request, deleted: _deleted, ...summary }) => ({
        ...summary,
        expired: summary.expiresAt <= now,
      }));
  }

  /** Like DescribeActivations filtered by id: any live activation, whatever its tags. */
  async describe(activationId: string): Promise<ActivationCount | undefined> {
    const found = this.created.find((a) => a.activationId === activationId && !a.deleted);
    if (!found) return undefined;
    const { registrationLimit, registrationsCount } = found;
    return { activationId, registrationLimit, registrationsCount };
  }

  /** What a node registering with this activation does to SSM's count (theft included). */
  register(activationId: string): void {
    const found = this.created.find((a) => a.activationId === activationId);
    if (found) (found as Mutable<FakeActivation>).registrationsCount++;
  }

  live(): FakeActivation[] {
    return this.created.filter((a) => !a.deleted);
  }
}

export class InMemorySecrets implements SecretStore {
  readonly items = new Map<string, ActivationPair>();
  gets = 0;

  async put(secret: ActivationPair): Promise<void> {
    // Like Parameter Store with Overwrite=false: a second put for the same activation keeps the first.
    const k = key(secret.pool, secret.activationId);
    if (!this.items.has(k)) this.items.set(k, { ...secret });
  }

  /** Like GetParameters: one call (counted in `gets`) for 1 to 10 activations. */
  async getMany(pool: string, activationIds: readonly string[]): Promise<ActivationPair[]> {
    if (activationIds.length < 1 || activationIds.length > 10) {
      throw new Error(`getMany takes 1 to 10 activations, not ${activationIds.length}`);
    }
    this.gets++;
    return activationIds.flatMap((id) => {
      const found = this.items.get(key(pool, id));
      return found ? [{ ...found }] : [];
    });
  }

  async delete(pool: string, activationId: string): Promise<void> {
    this.items.delete(key(pool, activationId));
  }
}

const key = (pool: string, activationId: string) => `${pool}/${activationId}`;

/** The codes' parameters as the janitor lists them: names and dates, never a value. */
export class InMemoryParameters implements SecretInventory {
  readonly items: StoredParameter[] = [];
  /** Called before each delete; throw from it to simulate Parameter Store failures. */
  beforeDelete: (name: string) => void = () => {};

  add(pool: string, activationId: string, lastModifiedAt: number): this {
    this.items.push({
      name: `/activation-broker/${pool}/${activationId}`,
      pool,
      activationId,
      lastModifiedAt,
    });
    return this;
  }

  async list(): Promise<StoredParameter[]> {
    return this.items.map((p) => ({ ...p }));
  }

  async delete(pool: string, activationId: string): Promise<void> {
    const at = this.items.findIndex((p) => p.pool === pool && p.activationId === activationId);
    if (at < 0) return;
    this.beforeDelete(this.items[at]!.name);
    this.items.splice(at, 1);
  }
}

/** Managed nodes as DescribeInstanceInformation shows them, with the tags the janitor writes. */
export class InMemoryNodes implements NodeInventory {
  readonly nodes: ManagedNode[] = [];
  readonly tags = new Map<string, Record<string, string>>();
  /** Hybrid nodes of the account that are not this deployment's. */
  othersHybrid = 0;
  /** The pool names the last listOwned was asked to attribute nodes to. */
  askedPools: readonly string[] = [];
  /** Called before each write; throw from it to simulate SSM failures. */
  beforeWrite: (instanceId: string) => void = () => {};

  async listOwned(pools: readonly string[]): Promise<ManagedNode[]> {
    this.askedPools = pools;
    return this.nodes.map((n) => ({ ...n }));
  }

  async countHybrid(): Promise<number> {
    return this.nodes.length + this.othersHybrid;
  }

  async addTags(instanceId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    this.beforeWrite(instanceId);
    this.tags.set(instanceId, { ...this.tags.get(instanceId), ...tags });
  }

  async deregister(instanceId: string): Promise<void> {
    this.beforeWrite(instanceId);
    const at = this.nodes.findIndex((n) => n.instanceId === instanceId);
    if (at >= 0) this.nodes.splice(at, 1);
  }
}

/** Every count and gauge published, in order. */
export class RecordingMetrics implements Metrics {
  readonly points: {
    kind: "count" | "gauge";
    name: MetricName;
    value: number;
    dimensions?: Readonly<Record<string, string>>;
  }[] = [];
  count(name: MetricName, value = 1, dimensions?: Readonly<Record<string, string>>): void {
    this.points.push({ kind: "count", name, value, ...(dimensions && { dimensions }) });
  }
  gauge(name: MetricName, value: number, dimensions?: Readonly<Record<string, string>>): void {
    this.points.push({ kind: "gauge", name, value, ...(dimensions && { dimensions }) });
  }
  named(name: MetricName) {
    return this.points.filter((p) => p.name === name);
  }
  sum(name: MetricName): number {
    return this.named(name).reduce((total, p) => total + p.value, 0);
  }
}

export const systemClock: Clock = { now: () => Date.now() };

export class FakeClock implements Clock, Sleeper {
  constructor(public current = Date.UTC(2026, 10, 28, 12, 0, 0)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
  /** Sleeping on a fake clock moves it: waits cost no real time. */
  async sleep(ms: number): Promise<void> {
    this.current += ms;
  }
}

export class CapturingLogger implements Logger {
  readonly lines: { level: string; message: string; extra?: Record<string, unknown> }[] = [];
  debug(message: string, extra?: Record<string, unknown>) {
    this.lines.push({ level: "debug", message, extra });
  }
  info(message: string, extra?: Record<string, unknown>) {
    this.lines.push({ level: "info", message, extra });
  }
  warn(message: string, extra?: Record<string, unknown>) {
    this.lines.push({ level: "warn", message, extra });
  }
  error(message: string, extra?: Record<string, unknown>) {
    this.lines.push({ level: "error", message, extra });
  }
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join("\n");
  }
}
