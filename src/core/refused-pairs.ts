import { BrokerError } from "./errors";
import type { PoolInventory } from "./inventory";
import type { Metrics } from "./metrics";
import type { ActivationCount, Clock, Logger, PoolStateStore } from "./ports";
import { isSlotTheft, reportSlotTheft } from "./slot-theft";
import { linksOf } from "./vend-policy";

/**
 * Refused pairs heal. A server whose pair SSM refused (RegistrationLimitExceeded after slot theft,
 * InvalidActivation after a revoke or a deletion, ActivationExpired) asks again with
 * `?refused=<ActivationId>`. The claim is never trusted: the broker asks SSM about that activation
 * and only when SSM confirms it can take no more registrations (gone, expired, or as many
 * registrations as its limit) does it retire it — the same one conditional write on the pool row
 * as revocation, so no replica hands out another pair of it — count RefusedPairs and log a
 * security WARN. When SSM counts more registrations than the broker handed out pairs, that is slot
 * theft, reported as such (src/core/slot-theft.ts).
 *
 * The request then goes on like any other: the vend moves past the retired activation (to the
 * standby, or a rotation within the pool's rotation budget), behind the same per-source limits.
 *
 * What a claim can cost: only a claim naming one of the pool's live activations reaches SSM
 * (anything else has nothing to retire: the vend hands out the current activation anyway), and
 * each such activation is checked at most once per CHECK_TTL_MS per process, however many claims
 * arrive; concurrent claims share the one check.
 */

/** What SSM says about an activation, enough to tell whether it can take another registration. */
export interface ActivationStatus extends ActivationCount {
  readonly expiresAt: number;
  readonly expired: boolean;
}

/** One DescribeActivations call for one activation (src/aws/ssm-activations.ts). */
export interface ActivationStatusReader {
  /** Undefined when SSM does not know the activation (deleted). */
  status(activationId: string): Promise<ActivationStatus | undefined>;
}

export interface RefusedPairDependencies {
  readonly store: Pick<PoolStateStore, "read">;
  /** The retire write (the same as revocation's); DynamoDbPoolInventory.retire. */
  readonly pools: Pick<PoolInventory, "retire">;
  readonly activations: ActivationStatusReader;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
}

/**
 * - not-live: the claim names no activation the pool still hands out; nothing to do, no SSM call;
 * - unconfirmed: SSM says the activation still takes registrations; the claim changes nothing;
 * - retired: SSM confirmed, and this check retired it;
 * - already-retired: SSM confirmed, but the pool had already moved past it.
 */
export type RefusedPairVerdict = "not-live" | "unconfirmed" | "retired" | "already-retired";

/** Why SSM refuses registrations; the WARN line says which. */
type RefusalReason = "gone" | "expired" | "full";

/** SSM activation ids are lower-case UUIDs. */
const ACTIVATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One SSM check per live activation and process in this window, whatever the number of claims. */
export const CHECK_TTL_MS = 30_000;
/** Checks remembered; a pool has at most two live activations, so this covers many pools. */
const MAX_REMEMBERED = 64;

export const REFUSED_PAIR_MESSAGE = "security: SSM refuses an activation the broker was handing out; retired";

/** A `refused` value that is not an activation id: 400, nothing is checked. */
export class InvalidRefusedClaimError extends BrokerError {
  override readonly name = "InvalidRefusedClaimError";
  readonly code = "InvalidParameter";
  constructor() {
    super("refused must be the ActivationId of the pair SSM refused.");
  }
}

export class RefusedPairs {
  private readonly checks = new Map<
    string,
    { readonly at: number; readonly verdict: Promise<RefusedPairVerdict> }
  >();

  constructor(private readonly deps: RefusedPairDependencies) {}

  /**
   * Checks a server's claim that SSM refused `activationId` of `pool`, and retires the activation
   * when SSM confirms it. Resolves with the verdict; the caller vends next, as for any request.
   */
  async heal(pool: string, activationId: string): Promise<RefusedPairVerdict> {
    if (!ACTIVATION_ID.test(activationId)) throw new InvalidRefusedClaimError();
    const key = `${pool}/${activationId}`;
    const remembered = this.remembered(key);
    if (remembered) return remembered;
    // Only the pool row can say whether the claim names a live activation; a claim that does not
    // is never remembered, so made-up ids cannot push real checks out.
    const row = await this.deps.store.read(pool);
    const issued = linksOf(row).find((l) => l.activationId === activationId)?.issued;
    if (issued === undefined) return "not-live";
    // Claims that arrived together all read the row; the first to get here checks for them all.
    const started = this.remembered(key);
    if (started) return started;
    const verdict = this.check(pool, activationId, issued);
    this.remember(key, this.deps.clock.now(), verdict);
    return verdict;
  }

  private remembered(key: string): Promise<RefusedPairVerdict> | undefined {
    const known = this.checks.get(key);
    return known && this.deps.clock.now() - known.at < CHECK_TTL_MS ? known.verdict : undefined;
  }

  private async check(pool: string, activationId: string, issued: number): Promise<RefusedPairVerdict> {
    const { activations, pools, clock, logger, metrics } = this.deps;
    const status = await activations.status(activationId);
    const reason = refusalReason(status, clock.now());
    if (reason === undefined) {
      logger.info("a server says SSM refused a pair, but SSM still takes registrations on it", {
        pool,
        activationId,
        issued,
        registrationsCount: status?.registrationsCount,
        registrationLimit: status?.registrationLimit,
      });
      return "unconfirmed";
    }
    const retire = () => pools.retire(pool, activationId);
    // More registrations than pairs is theft whatever else is true; the slot-theft report retires.
    const counts = { issued, registrationsCount: status?.registrationsCount ?? 0 };
    const retired = isSlotTheft(counts)
      ? (await reportSlotTheft(
          { logger, metrics },
          { pool, activationId, ...counts, detectedBy: "refused-pair" },
          { retire },
        )) === "retired"
      : await retire();
    metrics?.count("RefusedPairs", 1, { Pool: pool });
    logger.warn(REFUSED_PAIR_MESSAGE, {
      security: true,
      pool,
      activationId,
      reason,
      issued,
      ...(status && {
        registrationsCount: status.registrationsCount,
        registrationLimit: status.registrationLimit,
      }),
      action: retired ? "retired" : "already rotated",
    });
    return retired ? "retired" : "already-retired";
  }

  private remember(key: string, at: number, verdict: Promise<RefusedPairVerdict>): void {
    this.checks.delete(key);
    if (this.checks.size >= MAX_REMEMBERED) {
      const oldest = this.checks.keys().next().value;
      if (oldest !== undefined) this.checks.delete(oldest);
    }
    this.checks.set(key, { at, verdict });
    // A failed check is not remembered: the next claim asks SSM again.
    verdict.catch(() => {
      if (this.checks.get(key)?.verdict === verdict) this.checks.delete(key);
    });
  }
}

/** Why SSM refuses registrations on the activation, or undefined when it still takes them. */
export function refusalReason(status: ActivationStatus | undefined, now: number): RefusalReason | undefined {
  if (!status) return "gone";
  if (status.expired || status.expiresAt <= now) return "expired";
  if (status.registrationsCount >= status.registrationLimit) return "full";
  return undefined;
}
