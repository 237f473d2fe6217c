import type {
  ActivationInventory,
  ActivationRecord,
  ManagedNode,
  NodeInventory,
  PoolInventory,
  PoolRow,
  SecretInventory,
  StoredParameter,
} from "./inventory";
import { noMetrics, type Metrics } from "./metrics";
import type { PoolConfig } from "./pool-config";
import type { Clock, Logger } from "./ports";
import { isSlotTheft, reportSlotTheft } from "./slot-theft";
import { currentOf, linksOf, TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "./vend-policy";

/**
 * What an activation is to this deployment. Adding a state (the standby activation, say) is one
 * line in `liveStates` plus its name here.
 */
export type ActivationState =
  "current" | "standby" | "spent" | "expired" | "orphaned" | "revoked" | "foreign";

/** A parameter's state is its activation's, or `dangling` when that activation no longer exists. */
export type ParameterState = ActivationState | "dangling";

export type Action = "keep" | "delete";

export interface ActivationEntry {
  readonly activation: ActivationRecord;
  readonly pool?: string;
  readonly generation?: number;
  readonly state: ActivationState;
  readonly action: Action;
  /** Why: shown by `list` and `cleanup`. */
  readonly reason: string;
  /** Pairs handed out, known only for a pool's live activation. */
  readonly issued?: number;
}

export interface ParameterEntry {
  readonly parameter: StoredParameter;
  readonly state: ParameterState;
  readonly action: Action;
  readonly reason: string;
}

export interface Survey {
  readonly pools: readonly PoolRow[];
  readonly activations: readonly ActivationEntry[];
  readonly parameters: readonly ParameterEntry[];
}

/** An activation SSM counted more registrations on than the broker handed out pairs (a leak). */
export interface SlotTheft {
  readonly pool: string;
  readonly activationId: string;
  readonly issued: number;
  readonly registrationsCount: number;
  readonly retired: boolean;
}

export interface Failure {
  readonly resource: string;
  readonly error: string;
}

export interface CleanupReport {
  readonly applied: boolean;
  readonly survey: Survey;
  readonly slotThefts: readonly SlotTheft[];
  readonly deletedActivations: readonly ActivationEntry[];
  readonly deletedParameters: readonly ParameterEntry[];
  readonly failures: readonly Failure[];
}

export type NodeAction = "tag-name" | "deregister";

export interface NodeEntry {
  readonly node: ManagedNode;
  readonly pool?: string;
  /** The newer node of the same host, when this one is an older duplicate. */
  readonly duplicateOf?: string;
  /** Whole days since the last ping, for ConnectionLost nodes. */
  readonly lostForDays?: number;
  readonly actions: readonly NodeAction[];
}

export interface HygieneReport {
  readonly applied: boolean;
  readonly nodes: readonly NodeEntry[];
  readonly hybridNodes: number;
  readonly tagged: readonly string[];
  readonly deregistered: readonly string[];
  readonly failures: readonly Failure[];
}

export interface HygieneRequest {
  readonly apply: boolean;
  /**
   * Scheduled runs follow each pool's `hygiene` settings; on demand (the CLI) the operator's
   * selection decides what is deregistered.
   */
  readonly selection?: { readonly staleDays?: number; readonly duplicates?: boolean };
}

export interface JanitorOptions {
  readonly deployment: string;
  /** Rotation lease length: an activation younger than this may still be committed. */
  readonly leaseMs: number;
  /** How long a superseded activation's code stays stored; see PARAMETER_GRACE_MS. */
  readonly parameterGraceMs?: number;
}

export interface JanitorDependencies {
  readonly pools: ReadonlyMap<string, PoolConfig>;
  readonly poolInventory: PoolInventory;
  readonly activations: ActivationInventory;
  readonly secrets: SecretInventory;
  readonly nodes: NodeInventory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly options: JanitorOptions;
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/**
 * A superseded activation's code is deleted this long after its pool moved on. The broker never
 * hands that code out again, but a request that reserved a slot an instant before the rotation may
 * still be reading it: 15 minutes is far above the longest request (API Gateway's 29 s limit) and
 * the SDK's retries. See docs/operations.md, "Grace period".
 */
export const PARAMETER_GRACE_MS = 15 * MINUTE_MS;

/** SSM's standard tier: 1,000 hybrid nodes per account and Region. */
export const STANDARD_TIER_NODE_LIMIT = 1000;

/** Days a duplicate must have been ConnectionLost before the CLI deregisters it, unless --stale says. */
export const DEFAULT_DUPLICATE_DAYS = 1;

/**
 * The janitor: classifies every activation and parameter of this deployment, deletes what no
 * handed-out pair can still need, retires activations with stolen slots, and keeps the fleet tidy.
 * The scheduled Lambda and the CLI's `cleanup`/`nodes` run this same code.
 */
export class Janitor {
  private readonly metrics: Metrics;
  private readonly parameterGraceMs: number;

  constructor(private readonly deps: JanitorDependencies) {
    this.metrics = deps.metrics ?? noMetrics;
    this.parameterGraceMs = deps.options.parameterGraceMs ?? PARAMETER_GRACE_MS;
  }

  /**
   * Reads activations BEFORE pool rows: a pool's `issued` can then only be ahead of the
   * registrations SSM counted, never behind, so a legitimate burst never looks like slot theft.
   */
  async survey(): Promise<Survey> {
    const activations = await this.deps.activations.list();
    const pools = await this.deps.poolInventory.list();
    const parameters = await this.deps.secrets.list();
    const now = this.deps.clock.now();
    const entries = classifyActivations(pools, activations, this.deps.options, now);
    return {
      pools,
      activations: entries,
      parameters: classifyParameters(parameters, entries, pools, now, this.parameterGraceMs),
    };
  }

  async cleanup(request: { apply: boolean }): Promise<CleanupReport> {
    const { logger } = this.deps;
    const survey = await this.survey();
    const failures: Failure[] = [];
    const slotThefts = await this.reconcile(survey, request.apply, failures);
    const deletedParameters: ParameterEntry[] = [];
    const deletedActivations: ActivationEntry[] = [];

    // Parameters first: a run cut short then leaves an activation without a code, never a code
    // without the activation that would tell the next run whose it is.
    for (const entry of survey.parameters.filter((p) => p.action === "delete")) {
      const { pool, activationId, name } = entry.parameter;
      if (
        request.apply &&
        !(await this.attempt(name, failures, () => this.deps.secrets.delete(pool, activationId)))
      )
        continue;
      deletedParameters.push(entry);
    }
    for (const entry of survey.activations.filter((a) => a.action === "delete")) {
      const id = entry.activation.activationId;
      if (request.apply && !(await this.attempt(id, failures, () => this.deps.activations.delete(id))))
        continue;
      deletedActivations.push(entry);
    }
    if (request.apply) {
      this.metrics.count("JanitorDeletions", deletedActivations.length + deletedParameters.length);
      for (const entry of deletedActivations) {
        logger.info("janitor deleted an activation", {
          activationId: entry.activation.activationId,
          pool: entry.pool,
          state: entry.state,
          reason: entry.reason,
        });
      }
    }
    this.publishPoolGauges(survey);
    return { applied: request.apply, survey, slotThefts, deletedActivations, deletedParameters, failures };
  }

  /**
   * DESIGN: SSM counts registrations, not pairs; whoever holds a code can register more nodes
   * with it. A live activation with more registrations than pairs handed out has leaked: it is
   * retired (the next vend rotates past it), not deleted, because the servers that got honest
   * pairs from it may not have registered yet.
   */
  private async reconcile(survey: Survey, apply: boolean, failures: Failure[]): Promise<SlotTheft[]> {
    const thefts: SlotTheft[] = [];
    for (const entry of survey.activations) {
      // `issued` is known only for a pool's live activations: the current one and the standby.
      if (entry.issued === undefined || entry.pool === undefined) continue;
      const { activationId, registrationsCount } = entry.activation;
      const pool = entry.pool;
      const evidence = { pool, activationId, issued: entry.issued, registrationsCount };
      if (!isSlotTheft(evidence)) continue;
      let retired = false;
      await this.attempt(activationId, failures, async () => {
        const action = await reportSlotTheft(
          { logger: this.deps.logger, metrics: this.metrics },
          { ...evidence, detectedBy: "janitor" },
          apply ? { retire: () => this.deps.poolInventory.retire(pool, activationId) } : "dry run",
        );
        retired = action === "retired";
      });
      thefts.push({ ...evidence, retired });
    }
    return thefts;
  }

  private publishPoolGauges(survey: Survey): void {
    for (const row of survey.pools) {
      const current = currentOf(row);
      if (!current) continue; // no activation yet
      this.metrics.gauge("SlotsLeft", Math.max(0, current.limit - current.issued), { Pool: row.pool });
    }
  }

  async hygiene(request: HygieneRequest): Promise<HygieneReport> {
    const { nodes: inventory, clock, pools } = this.deps;
    const rows = await this.deps.poolInventory.list();
    const poolNames = [...new Set([...pools.keys(), ...rows.map((r) => r.pool)])];
    const owned = await inventory.listOwned(poolNames);
    const hybridNodes = await inventory.countHybrid();
    const now = clock.now();
    const entries = planHygiene(owned, pools, now, request.selection);
    const failures: Failure[] = [];
    const tagged: string[] = [];
    const deregistered: string[] = [];
    if (request.apply) {
      for (const entry of entries) {
        const id = entry.node.instanceId;
        if (entry.actions.includes("deregister")) {
          if (await this.attempt(id, failures, () => inventory.deregister(id))) deregistered.push(id);
        } else if (entry.actions.includes("tag-name") && entry.node.computerName !== undefined) {
          const name = entry.node.computerName;
          if (await this.attempt(id, failures, () => inventory.addTags(id, { Name: name }))) tagged.push(id);
        }
      }
      for (const id of deregistered) {
        this.deps.logger.info("janitor deregistered a managed node", { instanceId: id });
      }
    }
    this.metrics.gauge("ManagedNodes", hybridNodes);
    this.metrics.gauge("TierHeadroomPercent", tierHeadroomPercent(hybridNodes));
    return { applied: request.apply, nodes: entries, hybridNodes, tagged, deregistered, failures };
  }

  /** One failure never stops the pass: it is reported, and the next run tries again. */
  private async attempt(
    resource: string,
    failures: Failure[],
    action: () => Promise<void>,
  ): Promise<boolean> {
    try {
      await action();
      return true;
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      failures.push({ resource, error: message });
      this.deps.logger.error("janitor action failed", { resource, error: message });
      return false;
    }
  }
}

export function tierHeadroomPercent(hybridNodes: number): number {
  return Math.max(0, Math.round((1 - hybridNodes / STANDARD_TIER_NODE_LIMIT) * 1000) / 10);
}

/** The pool row's live activations, what they are and the pairs each has handed out. */
function liveStates(row: PoolRow | undefined): Map<string, { state: ActivationState; issued: number }> {
  const live = new Map<string, { state: ActivationState; issued: number }>();
  const [current, ...next] = linksOf(row);
  if (current) live.set(current.activationId, { state: "current", issued: current.issued });
  // The next activations (I9): the standby and the queue behind it, each unused until the ones
  // before it are exhausted, then handing out.
  for (const link of next) {
    live.set(link.activationId, { state: "standby", issued: link.issued });
  }
  return live;
}

/**
 * Every activation in the account, with its state and the janitor's verdict:
 * - foreign: not tagged for this deployment — never touched;
 * - revoked: an operator revoked it — deleted at once (its code leaked);
 * - current: what the pool row points at — kept (slot theft is reconcile's business);
 * - standby: the pool's next activation, ready before the current one runs out — kept;
 * - orphaned: created by a rotation that never committed (same or newer generation than the pool,
 *   not the pool's activation) — deleted once older than the lease, when no commit can still land;
 * - expired: nothing can register with it any more — deleted;
 * - spent: superseded by a later generation — deleted once every slot is registered, else kept
 *   until it expires, because a server that got a pair from it may not have registered yet.
 */
export function classifyActivations(
  rows: readonly PoolRow[],
  activations: readonly ActivationRecord[],
  options: Pick<JanitorOptions, "deployment" | "leaseMs">,
  now: number,
): ActivationEntry[] {
  const byPool = new Map<string | undefined, PoolRow>(rows.map((r) => [r.pool, r]));
  return activations.map((activation): ActivationEntry => {
    const { tags, activationId } = activation;
    if (tags[TAG_DEPLOYMENT] !== options.deployment) {
      return { activation, state: "foreign", action: "keep", reason: "not created by this deployment" };
    }
    const pool = tags[TAG_POOL];
    const generation = Number(tags[TAG_GENERATION]);
    const row = byPool.get(pool);
    const base = {
      activation,
      ...(pool !== undefined && { pool }),
      ...(Number.isInteger(generation) && { generation }),
    };
    const expired = activation.expired || activation.expiresAt <= now;
    if (row?.revokedActivationId === activationId) {
      return { ...base, state: "revoked", action: "delete", reason: "revoked by an operator" };
    }
    const live = liveStates(row).get(activationId);
    // An idle pool's standby that expired unused: nobody ever had its code and nobody can
    // register with it now. The row may still name it; no reservation takes an expired standby,
    // and the next rotation drops it from the row.
    if (live?.state === "standby" && expired && live.issued === 0) {
      return {
        ...base,
        state: "expired",
        action: "delete",
        reason: "an idle pool's standby, expired unused",
      };
    }
    if (live) {
      return {
        ...base,
        state: live.state,
        action: "keep",
        reason: live.state === "standby" ? "the pool's next activation" : "the pool hands it out",
        issued: live.issued,
      };
    }
    if (!Number.isInteger(generation) || row === undefined || generation >= row.generation) {
      const age = now - activation.createdAt;
      return age > options.leaseMs || expired
        ? { ...base, state: "orphaned", action: "delete", reason: "its rotation never committed" }
        : { ...base, state: "orphaned", action: "keep", reason: "younger than the lease; may still commit" };
    }
    if (expired) return { ...base, state: "expired", action: "delete", reason: "expired" };
    if (activation.registrationsCount >= activation.registrationLimit) {
      return { ...base, state: "spent", action: "delete", reason: "every slot is registered" };
    }
    return {
      ...base,
      state: "spent",
      action: "keep",
      reason: "pairs handed out may still register until it expires",
    };
  });
}

/**
 * A parameter goes with its activation; a superseded activation's code goes after the grace
 * period (the broker will never hand it out again); a parameter whose activation is gone goes once
 * it is older than the grace period (its rotation may still be running). Foreign activations'
 * parameters and those of live or young activations stay.
 */
export function classifyParameters(
  parameters: readonly StoredParameter[],
  activations: readonly ActivationEntry[],
  rows: readonly PoolRow[],
  now: number,
  graceMs: number,
): ParameterEntry[] {
  const byId = new Map(activations.map((a) => [a.activation.activationId, a]));
  return parameters.map((parameter): ParameterEntry => {
    const owner = byId.get(parameter.activationId);
    if (!owner) {
      return now - parameter.lastModifiedAt > graceMs
        ? { parameter, state: "dangling", action: "delete", reason: "its activation no longer exists" }
        : { parameter, state: "dangling", action: "keep", reason: "younger than the grace period" };
    }
    const state = owner.state;
    if (owner.action === "delete") return { parameter, state, action: "delete", reason: owner.reason };
    if (state !== "spent") return { parameter, state, action: "keep", reason: owner.reason };
    const supersededAt = supersededSince(owner, activations, rows) ?? parameter.lastModifiedAt;
    return now - supersededAt > graceMs
      ? { parameter, state, action: "delete", reason: "superseded: the broker never hands it out again" }
      : { parameter, state, action: "keep", reason: "superseded within the grace period" };
  });
}

/** When the pool moved past `entry`: no later than its current activation's creation. */
function supersededSince(
  entry: ActivationEntry,
  activations: readonly ActivationEntry[],
  rows: readonly PoolRow[],
): number | undefined {
  const row = rows.find((r) => r.pool === entry.pool);
  const current = activations.find((a) => a.activation.activationId === currentOf(row)?.activationId);
  return current?.activation.createdAt;
}

/** Per node: the pool it came from, whether it is an older duplicate or stale, and what to do. */
export function planHygiene(
  nodes: readonly ManagedNode[],
  pools: ReadonlyMap<string, PoolConfig>,
  now: number,
  selection?: HygieneRequest["selection"],
): NodeEntry[] {
  const newestByHost = new Map<string, ManagedNode>();
  for (const node of nodes) {
    const host = node.computerName?.toLowerCase();
    if (host === undefined) continue;
    const seen = newestByHost.get(host);
    // Stryker disable next-line EqualityOperator: a tie (one registration instant) has no newer node
    if (!seen || (node.registeredAt ?? 0) > (seen.registeredAt ?? 0)) newestByHost.set(host, node);
  }
  return nodes.map((node): NodeEntry => {
    const pool = node.pool;
    const config = pool === undefined ? undefined : pools.get(pool);
    const newest =
      node.computerName === undefined ? undefined : newestByHost.get(node.computerName.toLowerCase());
    const duplicateOf = newest && newest.instanceId !== node.instanceId ? newest.instanceId : undefined;
    const lostForDays =
      node.pingStatus === "ConnectionLost" && node.lastPingAt !== undefined
        ? Math.floor((now - node.lastPingAt) / DAY_MS)
        : undefined;
    const lostLongerThan = (days: number) =>
      node.pingStatus === "ConnectionLost" &&
      node.lastPingAt !== undefined &&
      now - node.lastPingAt > days * DAY_MS;

    let deregister: boolean;
    if (selection) {
      deregister = selection.duplicates
        ? duplicateOf !== undefined && lostLongerThan(selection.staleDays ?? DEFAULT_DUPLICATE_DAYS)
        : selection.staleDays !== undefined && lostLongerThan(selection.staleDays);
    } else {
      const days = config?.hygiene?.deregisterDuplicatesAfterDays;
      deregister = days !== undefined && duplicateOf !== undefined && lostLongerThan(days);
    }
    const tagName =
      !deregister && config?.hygiene?.nameTag === true && node.computerName !== undefined && !node.hasNameTag;
    const actions: NodeAction[] = deregister ? ["deregister"] : tagName ? ["tag-name"] : [];
    return {
      node,
      ...(pool !== undefined && { pool }),
      ...(duplicateOf !== undefined && { duplicateOf }),
      ...(lostForDays !== undefined && { lostForDays }),
      actions,
    };
  });
}
