/**
 * Ports: what the vend use case needs from the outside world (the operations' inventory ports
 * are in inventory.ts, so the request path's role grants no inventory read). Adapters live in src/aws
 * (DynamoDB, SSM, Parameter Store); in-memory fakes live in test/support/fakes.ts,
 * and test/contract holds both to the same contract.
 * Times are epoch milliseconds.
 */

/**
 * The pool's row of state: its live activations in the order they go into use (I9), their slot
 * counters, the rotation lease and budget, and the stock's depth.
 */
export interface PoolState {
  readonly pool: string;
  /** Number of rotations so far; 0 while the pool has never had an activation. */
  readonly generation: number;
  /**
   * The live activations, current first, then the standby and the ones ready after it (I9);
   * empty while the pool has none. A pool whose consumption outruns one creation keeps several.
   */
  readonly links: readonly Link[];
  readonly leaseOwner?: string;
  readonly leaseDeadline?: number;
  /** Rotation budget: when the current one-hour window opened, and leases taken in it (I7). */
  readonly rotationWindowStart?: number;
  readonly rotationsInWindow?: number;
  /** Unused activations the pool keeps ready, as the last refill chose it (I9); 1 when absent. */
  readonly standbyDepth?: number;
  /** When the last refill committed. */
  readonly refilledAt?: number;
}

/** One of the pool's live activations (PoolState.links): an activation and its slots used. */
export interface Link extends NewActivation {
  /** Slots handed out from it: above 0 once everything before it is exhausted. */
  readonly issued: number;
}

export interface Reservation {
  readonly pool: string;
  readonly generation: number;
  readonly activationId: string;
  readonly expiresAt: number;
  /** Slot number of this reservation on its activation, 1-based. */
  readonly slot: number;
  readonly limit: number;
  /**
   * True when the pool has no unused standby after this reservation (none at all, or this very
   * reservation or an earlier one started using it): time to create the next one, off the
   * request path.
   */
  readonly needsStandby: boolean;
  /** The activations after this one, as seen by this write: their codes are read along with it. */
  readonly next: readonly string[];
}

export interface LeaseRequest {
  readonly owner: string;
  readonly generation: number;
  readonly now: number;
  readonly deadline: number;
  /**
   * `count`: activations this lease will create (a refill may create several; default 1).
   * `windowStart`: the rotation window the caller read on the row (undefined: none). The lease is
   * taken only while the row's window is still open, or still closed, as the caller saw it: one
   * conditional write either way, so a caller that loses the race spends one write, not two.
   */
  readonly budget: {
    readonly max: number;
    readonly windowMs: number;
    readonly count?: number;
    readonly windowStart: number | undefined;
  };
}

/** An activation as the pool row names it. */
export interface NewActivation {
  readonly activationId: string;
  readonly expiresAt: number;
  readonly limit: number;
}

/**
 * A rotation's one write: the new current activation and, for a pool that keeps a standby, the
 * activations that go behind it (`standbys`, standby first, at most MAX_STANDBY_DEPTH) with the
 * depth it now keeps and when they were made, from which the depth's decay counts (I9).
 */
export interface RotationCommit {
  readonly owner: string;
  readonly generation: number;
  readonly activation: NewActivation;
  readonly nextGeneration?: number;
  readonly standbys?: readonly NewActivation[];
  readonly depth?: number;
  readonly refilledAt?: number;
}

/**
 * A refill's one write (I9): the pool's activations from `chain[0]` (current) on, under the lease
 * the refill took at `generation`. The activations it read before the write (`seen`, current
 * first) are pinned: a revoke that dropped one of them meanwhile refuses the commit, so a revoked
 * activation never comes back. The first `dropped` of them were exhausted and go; their slots
 * (`shift`) leave the counter, so the slots already taken from the rest stay taken.
 */
export interface RefillCommit {
  readonly owner: string;
  readonly generation: number;
  readonly seen: readonly string[];
  readonly dropped: number;
  readonly shift: number;
  readonly chain: readonly NewActivation[];
  readonly depth: number;
  readonly now: number;
}

export interface PoolStateStore {
  /**
   * Reserves one registration slot with ONE conditional write (I1, I2): on the current
   * activation while issued < limit AND expiresAt > validUntil; once the current one is
   * exhausted, on the standby while it has slots left AND standbyExpiresAt > validUntil (I9);
   * once the standby is exhausted too, on the queued activations while they have slots left AND
   * none expires before validUntil. Returns undefined when none can take it. Never
   * read-then-write.
   */
  reserve(pool: string, validUntil: number): Promise<Reservation | undefined>;

  /**
   * The current activation is about to expire with slots left, the standby is valid: make the
   * standby current and take its slot 1, in ONE conditional write (no lease needed: it creates
   * nothing). The queue, if any, is dropped with it (a pool whose current activation expires
   * with slots left is not busy). Returns undefined when the condition fails.
   */
  switchToStandby(pool: string, validUntil: number): Promise<Reservation | undefined>;

  /**
   * Writes the pool's activations after a refill and clears the lease, in ONE conditional write
   * guarded by leaseOwner = owner AND generation AND the activations `seen` still on the row: the
   * dropped ones leave (generation + dropped), the new ones follow the kept ones, `issued` keeps
   * counting the kept ones' slots. Returns false if the lease was lost or the pool moved on (the
   * new activations are then orphans the caller should delete).
   */
  commitRefill(pool: string, refill: RefillCommit): Promise<boolean>;

  /** Strongly consistent read of the pool's state; undefined if the pool has no row yet. */
  read(pool: string): Promise<PoolState | undefined>;

  /**
   * Takes the rotation lease with ONE conditional write: succeeds only if the pool is still at
   * `generation`, no unexpired lease is held (leaseDeadline <= now), and the rotation budget has
   * room: at most `budget.max - budget.count` activations counted in the window opened within the
   * last `budget.windowMs`,
   * or no such window (the write then opens one at `now`). The same write counts the lease, so
   * every process sharing the row shares the budget. Creates the row when generation is 0 and
   * none exists. Returns false when the condition fails.
   */
  acquireLease(pool: string, lease: LeaseRequest): Promise<boolean>;

  /**
   * Installs the new activation, bumps the generation, reserves the first slot for the caller and
   * clears the lease — one conditional write guarded by leaseOwner = owner AND generation; the
   * new generation is `nextGeneration` (default generation + 1, the number the activation is
   * tagged with). A
   * standby or queue still on the row is spent or expiring (else no rotation was needed) and is
   * dropped.
   * Returns the caller's reservation, or undefined if the lease was lost (the activation is then an
   * orphan the caller should delete).
   */
  commitRotation(pool: string, rotation: RotationCommit): Promise<Reservation | undefined>;

  /** Drops the lease if `owner` still holds it (after a failed rotation), so others need not wait. */
  releaseLease(pool: string, owner: string): Promise<void>;
}

export interface CreateActivationRequest {
  readonly pool: string;
  readonly generation: number;
  readonly iamRole: string;
  readonly registrationLimit: number;
  readonly expiresAt: number;
  readonly defaultInstanceName?: string;
  readonly description?: string;
  /** User tags plus the broker's marker tags (see activationTags in vend-policy.ts). */
  readonly tags: Readonly<Record<string, string>>;
}

/** What SSM counts for one activation: the slot-theft check compares it with the pool's `issued`. */
export interface ActivationCount {
  readonly activationId: string;
  readonly registrationLimit: number;
  readonly registrationsCount: number;
}

export interface CreatedActivation {
  readonly activationId: string;
  readonly activationCode: string;
}

export interface ActivationProvider {
  create(request: CreateActivationRequest): Promise<CreatedActivation>;
  /** Deletes an activation; an unknown id is not an error (it is already gone). */
  delete(activationId: string): Promise<void>;
  /**
   * One activation by id (one DescribeActivations call filtered by ActivationIds), undefined if
   * SSM does not know it. Never on a vend's steady-state path (I4).
   */
  describe(activationId: string): Promise<ActivationCount | undefined>;
}

/**
 * An activation's pair as the broker keeps it (its code in Parameter Store) and hands it out (to a
 * server): it registers until `expiresAt`.
 */
export interface ActivationPair {
  readonly pool: string;
  readonly activationId: string;
  readonly activationCode: string;
  readonly expiresAt: number;
}

export interface SecretStore {
  put(secret: ActivationPair): Promise<void>;
  /**
   * The secrets stored for these activations (1 to 10 ids, one round trip), in the order asked;
   * an activation with nothing stored is left out.
   */
  getMany(pool: string, activationIds: readonly string[]): Promise<ActivationPair[]>;
  delete(pool: string, activationId: string): Promise<void>;
}

export interface Clock {
  now(): number;
}

export interface Sleeper {
  sleep(ms: number): Promise<void>;
}

/** Structured logger (Powertools Logger fits). Never pass an Activation Code to it. */
export interface Logger {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}
