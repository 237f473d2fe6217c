import {
  ActivationNotFoundError,
  InvalidPoolNameError,
  NothingToRevokeError,
  PoolNotFoundError,
} from "./errors";
import type {
  ActivationInventory,
  NodeInventory,
  PoolInventory,
  PoolRow,
  SecretInventory,
} from "./inventory";
import { STANDARD_TIER_NODE_LIMIT } from "./janitor";
import { POOL_NAME_PATTERN, type PoolConfig } from "./pool-config";
import type { Clock, Logger } from "./ports";
import type { ActivationPair } from "./ports";
import type { Vendor } from "./vend";
import { currentOf, linksOf, TAG_DEPLOYMENT, TAG_POOL } from "./vend-policy";

/** SSM activation ids are lower-case UUIDs; pool names can never look like one (no dashes at 8/13/…). */
const ACTIVATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface PoolStatus {
  readonly pool: string;
  /** False for a row whose pool is no longer in the configuration. */
  readonly configured: boolean;
  readonly generation: number;
  readonly activationId?: string;
  readonly issued?: number;
  readonly limit?: number;
  /** What SSM counted; undefined when the activation is gone from SSM. */
  readonly registrationsCount?: number;
  readonly expiresAt?: number;
  readonly revoked: boolean;
  /** Set while a rotation holds the lease. */
  readonly lease?: { readonly owner: string; readonly until: number };
}

export interface StatusReport {
  readonly now: number;
  readonly pools: readonly PoolStatus[];
  readonly hybridNodes: number;
  readonly tierLimit: number;
}

export interface RevokeResult {
  readonly activationId: string;
  readonly pool?: string;
  /** True when it was the pool's live activation and is now retired on every replica. */
  readonly wasCurrent: boolean;
  /** Nodes already registered with it: they stay registered. */
  readonly registrationsCount: number;
}

export interface RotateResult {
  readonly pool: string;
  readonly previousActivationId?: string;
  readonly activationId: string;
  readonly expiresAt: number;
}

export interface AdminDependencies {
  readonly pools: ReadonlyMap<string, PoolConfig>;
  readonly poolInventory: PoolInventory;
  readonly activations: ActivationInventory;
  readonly secrets: SecretInventory;
  readonly nodes: NodeInventory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly deployment: string;
  /** The request path, for `rotate` and `get`: a rotation is the vend's own, never a copy of it. */
  readonly vendor: Vendor;
}

/** The operator's use cases behind `status`, `revoke`, `rotate` and `get`. */
export class Admin {
  constructor(private readonly deps: AdminDependencies) {}

  async status(only?: string): Promise<StatusReport> {
    if (only !== undefined && !POOL_NAME_PATTERN.test(only)) throw new InvalidPoolNameError(only);
    const activations = await this.deps.activations.list();
    const rows = await this.deps.poolInventory.list();
    // A pool removed from the configuration keeps its row; it can be shown, like in the full list.
    if (only !== undefined) this.checkPool(only, rows);
    const hybridNodes = await this.deps.nodes.countHybrid();
    const now = this.deps.clock.now();
    const names = [...new Set([...this.deps.pools.keys(), ...rows.map((r) => r.pool)])]
      .filter((name) => only === undefined || name === only)
      .sort();
    const pools = names.map((pool): PoolStatus => {
      const row = rows.find((r) => r.pool === pool);
      const current = currentOf(row);
      const activation = activations.find((a) => a.activationId === current?.activationId);
      return {
        pool,
        configured: this.deps.pools.has(pool),
        generation: row?.generation ?? 0,
        ...(current && { activationId: current.activationId, issued: current.issued, limit: current.limit }),
        ...(activation && { registrationsCount: activation.registrationsCount }),
        ...(current && { expiresAt: current.expiresAt }),
        revoked: current !== undefined && row?.revokedActivationId === current.activationId,
        ...(row?.leaseOwner !== undefined &&
          row.leaseDeadline !== undefined &&
          row.leaseDeadline > now && { lease: { owner: row.leaseOwner, until: row.leaseDeadline } }),
      };
    });
    return { now, pools, hybridNodes, tierLimit: STANDARD_TIER_NODE_LIMIT };
  }

  /**
   * I8: retire first. The pool row is retired before anything else is listed or cleaned: one Scan
   * of the pool table (one item per pool, however many activations the account holds) finds the
   * row, and one conditional write that every replica and container reads on its next vend stops
   * them all handing the code out, whatever they have cached. Only then are the account's
   * activations listed (for the result and the ownership check of an id no row names), and the
   * code and the activation deleted.
   */
  async revoke(target: string): Promise<RevokeResult> {
    const rows = await this.deps.poolInventory.list();
    let row: PoolRow | undefined;
    let activationId: string;
    if (ACTIVATION_ID.test(target)) {
      activationId = target;
      row = rows.find((r) => linksOf(r).some((l) => l.activationId === target));
    } else {
      this.checkPool(target, rows);
      row = rows.find((r) => r.pool === target);
      const current = currentOf(row);
      if (!current) throw new NothingToRevokeError(target);
      activationId = current.activationId;
    }
    // A row names only this deployment's activations: it is ours to retire, before anything else.
    const wasCurrent =
      row !== undefined && (await this.deps.poolInventory.retire(row.pool, activationId, { revoked: true }));
    const activations = await this.deps.activations.list();
    const activation = activations.find((a) => a.activationId === activationId);
    const owned = activation?.tags[TAG_DEPLOYMENT] === this.deps.deployment;
    if (!row && (!activation || !owned)) throw new ActivationNotFoundError(activationId);
    const pool = row?.pool ?? activation?.tags[TAG_POOL];

    if (pool !== undefined) await this.deps.secrets.delete(pool, activationId);
    await this.deps.activations.delete(activationId);
    this.deps.logger.warn("security: activation revoked by an operator", {
      security: true,
      activationId,
      pool,
      wasCurrent,
    });
    return {
      activationId,
      // Stryker disable next-line ConditionalExpression: a key holding undefined reads as absent
      ...(pool !== undefined && { pool }),
      wasCurrent,
      registrationsCount: activation?.registrationsCount ?? 0,
    };
  }

  /**
   * A fresh activation now: the current one is retired (its pairs stay valid until it expires)
   * and the pool rotates through the vend itself, which takes slot 1 of the new activation.
   */
  async rotate(pool: string): Promise<RotateResult> {
    this.checkPool(pool);
    const previous = currentOf((await this.deps.poolInventory.list()).find((r) => r.pool === pool));
    if (previous) await this.deps.poolInventory.retire(pool, previous.activationId);
    const { pair } = await this.deps.vendor.vend(pool);
    // With a standby (I9) the vend took its slot 1; the refill that follows makes it current.
    await this.deps.vendor.idle();
    return {
      pool,
      ...(previous && { previousActivationId: previous.activationId }),
      activationId: pair.activationId,
      expiresAt: pair.expiresAt,
    };
  }

  /** A pair exactly as a server gets one (it takes a slot); the caller decides whether to show the code. */
  get(pool: string): Promise<ActivationPair> {
    this.checkPool(pool);
    return this.deps.vendor.vend(pool).then((v) => v.pair);
  }

  private checkPool(pool: string, rows?: readonly PoolRow[]): void {
    if (!POOL_NAME_PATTERN.test(pool)) throw new InvalidPoolNameError(pool);
    if (!this.deps.pools.has(pool) && !rows?.some((r) => r.pool === pool)) throw new PoolNotFoundError(pool);
  }
}
