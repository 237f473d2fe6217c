/**
 * Ports of the operations use cases (janitor, fleet hygiene, admin CLI): the inventory reads and
 * the clean-up writes. They are kept apart from the request path's ports (ports.ts) so that the
 * vend role grants only what a vend needs, and the janitor's role only what these ports use.
 * Times are epoch milliseconds.
 */
import type { PoolState } from "./ports";

/** A pool row as the operations see it: the request path's state plus the revocation mark. */
export interface PoolRow extends PoolState {
  /** The last activation an operator revoked in this pool. */
  readonly revokedActivationId?: string;
}

export interface PoolInventory {
  /** Every pool row (DynamoDB Scan). */
  list(): Promise<PoolRow[]>;
  /**
   * Makes `activationId` unreservable with ONE conditional write, if it is still the pool's
   * current activation: the next vend on any replica or container rotates past it. `revoked`
   * also records it as revoked (the janitor then deletes it at once). False if it is not current.
   */
  retire(pool: string, activationId: string, options?: { revoked?: boolean }): Promise<boolean>;
}

/** An activation as SSM describes it (never its code). */
export interface ActivationRecord {
  readonly activationId: string;
  readonly iamRole: string;
  readonly registrationLimit: number;
  readonly registrationsCount: number;
  readonly expiresAt: number;
  readonly expired: boolean;
  readonly createdAt: number;
  readonly defaultInstanceName?: string;
  readonly tags: Readonly<Record<string, string>>;
}

export interface ActivationInventory {
  /** Every activation in the account and Region, this deployment's or not (DescribeActivations). */
  list(): Promise<ActivationRecord[]>;
  /** Deletes an activation; an unknown id is not an error (it is already gone). */
  delete(activationId: string): Promise<void>;
}

/** A stored code's parameter, seen without decrypting it. */
export interface StoredParameter {
  readonly name: string;
  readonly pool: string;
  readonly activationId: string;
  readonly lastModifiedAt: number;
}

export interface SecretInventory {
  /** Every activation parameter under this deployment's prefix (GetParametersByPath, no decryption). */
  list(): Promise<StoredParameter[]>;
  delete(pool: string, activationId: string): Promise<void>;
}

export type PingStatus = "Online" | "ConnectionLost" | "Inactive";

export interface ManagedNode {
  readonly instanceId: string;
  readonly activationId?: string;
  /** The host name the agent reports. */
  readonly computerName?: string;
  /** What SSM shows as the node's name: the activation's DefaultInstanceName. */
  readonly name?: string;
  readonly pingStatus: PingStatus;
  readonly lastPingAt?: number;
  readonly registeredAt?: number;
  /** From the node's activation-broker:pool tag (inherited from its activation). */
  readonly pool?: string;
  /** Whether the node carries a `Name` tag (set by the janitor or by a person). */
  readonly hasNameTag: boolean;
}

export interface NodeInventory {
  /** Nodes that carry this deployment's marker tag (inherited from its activations); `pools` are
   *  the pool names to attribute them to. */
  listOwned(pools: readonly string[]): Promise<ManagedNode[]>;
  /** Hybrid nodes (ResourceType ManagedInstance) in the account and Region, whoever registered them. */
  countHybrid(): Promise<number>;
  addTags(instanceId: string, tags: Readonly<Record<string, string>>): Promise<void>;
  /** Deregisters a node; an unknown id is not an error (it is already gone). */
  deregister(instanceId: string): Promise<void>;
}
