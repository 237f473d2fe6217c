import { parsePools, type PoolsFileInput } from "../../src/core/pool-config";
import { Vendor, type VendDependencies, type VendOptions } from "../../src/core/vend";
import { BackgroundRefill, refillElsewhere } from "../../src/core/standby-refill";
import { CapturingLogger, FakeClock, InMemoryActivations, InMemoryPoolStore, InMemorySecrets } from "./fakes";

export const TEST_ROLE = "SSMServiceRole";

/**
 * A Vendor on in-memory fakes, with a fake clock whose sleeps cost no real time. Pools keep no
 * standby unless a test asks for one (`standby: true`): most tests pin the on-request rotation,
 * which stays the fallback whenever no standby is ready.
 */
export function aVendor(
  config: {
    pools?: PoolsFileInput["pools"];
    options?: Partial<VendOptions>;
    clock?: FakeClock;
    random?: () => number;
  } = {},
) {
  const clock = config.clock ?? new FakeClock();
  const store = new InMemoryPoolStore();
  const activations = new InMemoryActivations(clock);
  const secrets = new InMemorySecrets();
  const logger = new CapturingLogger();
  const configured = { default: {}, ...config.pools };
  const pools = parsePools(
    {
      pools: Object.fromEntries(
        Object.entries(configured).map(([name, p]) => [name, { standby: false, ...p }]),
      ),
    },
    { iamRole: TEST_ROLE },
  );
  let owners = 0;
  /** Another process (its own caches and rounds) on the same store, SSM and Parameter Store. */
  const make = (overrides: Partial<VendDependencies> = {}) =>
    new Vendor({
      pools,
      store,
      activations,
      secrets,
      clock,
      sleeper: clock,
      logger,
      standbyRefill: new BackgroundRefill(logger),
      options: { leaseMs: 30_000, rotationWaitMs: 5_000, deployment: "test", ...config.options },
      random: config.random ?? (() => 0.5),
      newOwnerId: () => `owner-${++owners}`,
      ...overrides,
    });
  /** A Lambda container: its standby refills go to `ask` (the self-invocation), one per standby. */
  const newContainer = (ask: (pool: string) => Promise<void> = async () => {}) =>
    make({ standbyRefill: refillElsewhere(ask, logger) });
  return {
    vendor: make(),
    newProcess: make,
    newContainer,
    clock,
    store,
    activations,
    secrets,
    logger,
    pools,
  };
}

/** Holds every CreateActivation until released: shows what a request does not wait for. */
export function holdCreates(activations: InMemoryActivations): () => void {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  activations.beforeCreate = () => gate;
  return () => {
    activations.beforeCreate = () => {};
    release();
  };
}

/** Another process's rotation lease on the pool: taken at `generation`, held for `forMs`. */
export async function holdLease(
  fx: { store: InMemoryPoolStore; clock: FakeClock },
  {
    owner = "someone",
    generation = 0,
    forMs = 30_000,
  }: { owner?: string; generation?: number; forMs?: number } = {},
): Promise<boolean> {
  const now = fx.clock.now();
  const windowStart = (await fx.store.read("default"))?.rotationWindowStart;
  return fx.store.acquireLease("default", {
    budget: { max: 1_000_000, windowMs: 3_600_000, windowStart },
    owner,
    generation,
    now,
    deadline: now + forMs,
  });
}

/**
 * Replaces the pool's standby with one made `laterMs` after the current activation, so that it
 * outlives the current one's safety margin (the switch's precondition). Resolves with whether the
 * refill installed it.
 */
export function standbyMadeLater(
  fx: { vendor: Vendor; store: InMemoryPoolStore; clock: FakeClock },
  laterMs: number,
): Promise<boolean> {
  const row = fx.store.rows.get("default")!;
  fx.clock.advance(laterMs);
  row.links = row.links.slice(0, 1);
  return fx.vendor.refillStandby("default");
}
