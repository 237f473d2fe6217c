/**
 * SSM's request quotas: requests per second per account and Region, some shared by several
 * operations. A call past its quota is answered `ThrottlingException` ("Rate exceeded"), which the
 * SDKs retry as throttling. Off unless set (controls `setLimits`, `npm run bench -- --ssm-quotas`).
 */

/** One quota: the operations that share it and how many calls per second they may make together. */
export interface SsmQuota {
  operations: string[];
  perSecond: number;
}

/**
 * Parameter Store's figures, per account and Region:
 * - GetParameter and GetParameters share 40 a second at standard throughput (the default) and
 *   10,000 at higher throughput (a paid setting), from the Systems Manager endpoints and quotas page,
 *   "Max throughput (transactions per second)" (https://docs.aws.amazon.com/general/latest/gr/ssm.html;
 *   40 is also quoted by https://repost.aws/knowledge-center/ssm-parameter-store-rate-exceeded).
 * - PutParameter: 3 a second at standard throughput, 10 at higher throughput. The quotas page does
 *   not publish these (https://github.com/aws-ia/terraform-aws-control_tower_account_factory/issues/271);
 *   the figures are AWS Support's answer as quoted in
 *   https://github.com/github-aws-runners/terraform-aws-github-runner/issues/2944 (February 2023).
 *   The throughput page confirms that PutParameter counts against Parameter Store's throughput
 *   (https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html).
 *   Secondary sources, so a real account may differ: the benchmark's PutParameter-bound results
 *   say so.
 *
 * AWS publishes no quota for CreateActivation, DescribeActivations or DeleteActivation: the
 * benchmark's `--ssm-activation-rps` sets one (one figure for each of the three, each its own).
 */
export const PARAMETER_STORE_QUOTAS: Readonly<Record<"standard" | "higher", readonly SsmQuota[]>> = {
  standard: [
    { operations: ["GetParameter", "GetParameters"], perSecond: 40 },
    { operations: ["PutParameter"], perSecond: 3 },
  ],
  higher: [
    { operations: ["GetParameter", "GetParameters"], perSecond: 10_000 },
    { operations: ["PutParameter"], perSecond: 10 },
  ],
};

export const ACTIVATION_OPERATIONS = ["CreateActivation", "DescribeActivations", "DeleteActivation"];

/** Quotas for the activation operations, one each, where AWS publishes none. */
export function activationQuotas(perSecond: number): SsmQuota[] {
  return ACTIVATION_OPERATIONS.map((operation) => ({ operations: [operation], perSecond }));
}

/**
 * A token bucket per quota: it holds at most one second's calls and refills continuously, so a
 * burst gets one second's worth at once and a throttled caller gets through again within a second.
 */
export class SsmRateLimiter {
  private buckets: { quota: SsmQuota; tokens: number; at: number }[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  set(quotas: readonly SsmQuota[]): void {
    const at = this.now();
    this.buckets = quotas.map((quota) => ({ quota, tokens: quota.perSecond, at }));
  }

  quotas(): SsmQuota[] {
    return this.buckets.map((b) => ({ operations: [...b.quota.operations], perSecond: b.quota.perSecond }));
  }

  /** True when the call may go on (and takes its token), false when it is over its quota. */
  admit(operation: string): boolean {
    const bucket = this.buckets.find((b) => b.quota.operations.includes(operation));
    if (!bucket) return true;
    const now = this.now();
    const perMs = bucket.quota.perSecond / 1000;
    bucket.tokens = Math.min(bucket.quota.perSecond, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

export function parseSsmQuotas(input: unknown): SsmQuota[] {
  if (!Array.isArray(input)) throw new TypeError("ssm quotas are a list of {operations, perSecond}");
  return input.map((q: unknown) => {
    const raw = q as Record<string, unknown>;
    if (
      typeof raw !== "object" ||
      raw === null ||
      !Array.isArray(raw.operations) ||
      raw.operations.length === 0 ||
      !raw.operations.every((o) => typeof o === "string" && o !== "") ||
      !(typeof raw.perSecond === "number" && raw.perSecond > 0) ||
      Object.keys(raw).some((k) => k !== "operations" && k !== "perSecond")
    )
      throw new TypeError("an ssm quota is {operations: [names], perSecond: > 0}");
    return { operations: raw.operations as string[], perSecond: raw.perSecond };
  });
}
