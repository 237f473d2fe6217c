import { parsePools, type PoolsFileInput } from "../../src/core/pool-config";
import { Vendor, type VendDependencies, type VendOptions } from "../../src/core/vend";
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
      options: { leaseMs: 30_000, rotationWaitMs: 5_000, deployment: "test", ...config.options },
      random: config.random ?? (() => 0.5),
      newOwnerId: () => `owner-${++owners}`,
      ...overrides,
    });
  return { vendor: make(), newProcess: make, clock, store, activations, secrets, logger, pools };
}
