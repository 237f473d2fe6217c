/**
 * What AWS charges for what a burst uses: us-east-1, on-demand list prices, no free tier. The
 * benchmark multiplies the emulator's counts (calls, capacity units, invocations, billed duration)
 * by these figures; docs/performance.md says what each run cost per 1,000 servers onboarded.
 *
 * Checked 2026-12-07 against stored copies of the pages below (the machine has no internet): when a
 * page changes, change the line, its source and CHECKED.
 */
export const PRICES_CHECKED = "2026-12-07";

export interface Price {
  readonly usd: number;
  /** What one `usd` buys. */
  readonly per: string;
  readonly source: string;
}

export const PRICES = {
  apiGatewayRestRequest: {
    usd: 3.5 / 1_000_000,
    per: "REST API request (first 333 million a month)",
    source: "https://aws.amazon.com/api-gateway/pricing/",
  },
  lambdaRequest: {
    usd: 0.2 / 1_000_000,
    per: "Lambda request (an invocation, synchronous or asynchronous)",
    source: "https://aws.amazon.com/lambda/pricing/",
  },
  lambdaArmGbSecond: {
    usd: 0.0000133334,
    per: "GB-second of an Arm (arm64) function (first 7.5 billion GB-seconds a month)",
    source: "https://aws.amazon.com/lambda/pricing/",
  },
  dynamodbWriteRequestUnit: {
    usd: 0.625 / 1_000_000,
    per: "on-demand write request unit (halved from 1.25 in November 2024)",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
  },
  dynamodbReadRequestUnit: {
    usd: 0.125 / 1_000_000,
    per: "on-demand read request unit (halved from 0.25 in November 2024)",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
  },
  kmsRequest: {
    usd: 0.03 / 10_000,
    per: "KMS request (symmetric key; a SecureString PutParameter encrypts, a read with decryption decrypts)",
    source: "https://aws.amazon.com/kms/pricing/",
  },
  parameterStoreHigherThroughputInteraction: {
    usd: 0.05 / 10_000,
    per: "Parameter Store API interaction with higher throughput on (standard throughput: no charge)",
    source: "https://aws.amazon.com/systems-manager/pricing/",
  },
  kmsKeyMonth: {
    usd: 1,
    per: "customer managed KMS key and month (the CDK app makes two: parameters, logs)",
    source: "https://aws.amazon.com/kms/pricing/",
  },
  interfaceEndpointAzHour: {
    usd: 0.01,
    per: "interface VPC endpoint and Availability Zone, per hour (plus $0.01 per GB processed)",
    source: "https://aws.amazon.com/privatelink/pricing/",
  },
} as const satisfies Record<string, Price>;

/**
 * The deployed function (infra/constructs/activation-broker.ts): `architecture: Architecture.ARM_64`,
 * `memorySize: props.memorySize ?? 256`. Lambda bills duration per 1 ms.
 */
export const FUNCTION_MEMORY_GB = 256 / 1024;

/** CreateActivation, DescribeActivations, DeleteActivation and standard-tier on-premises nodes: no charge. */
export const FREE_NOTE =
  "SSM hybrid activations and standard-tier managed nodes are free (https://aws.amazon.com/systems-manager/pricing/)";

export interface BillableUse {
  readonly servers: number;
  /** HTTP requests API Gateway passed on (every answer the servers got, 429 and 503 too). */
  readonly apiRequests: number;
  readonly lambdaInvocations: number;
  readonly lambdaBilledMs: number;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly kmsRequests: number;
  readonly parameterStoreCalls: number;
}

/** Dollars per 1,000 servers onboarded, by line; `total` with standard Parameter Store throughput. */
export function costPerThousand(use: BillableUse) {
  const scale = use.servers === 0 ? 0 : 1000 / use.servers;
  const lines = {
    apiGateway: use.apiRequests * PRICES.apiGatewayRestRequest.usd,
    lambdaRequests: use.lambdaInvocations * PRICES.lambdaRequest.usd,
    lambdaDuration: (use.lambdaBilledMs / 1000) * FUNCTION_MEMORY_GB * PRICES.lambdaArmGbSecond.usd,
    dynamodb:
      use.writeUnits * PRICES.dynamodbWriteRequestUnit.usd +
      use.readUnits * PRICES.dynamodbReadRequestUnit.usd,
    kms: use.kmsRequests * PRICES.kmsRequest.usd,
  };
  const perThousand = Object.fromEntries(
    Object.entries(lines).map(([k, v]) => [k, round6(v * scale)]),
  ) as Record<keyof typeof lines, number>;
  const total = round6(Object.values(lines).reduce((a, b) => a + b, 0) * scale);
  const higherThroughput = round6(
    use.parameterStoreCalls * PRICES.parameterStoreHigherThroughputInteraction.usd * scale,
  );
  return { ...perThousand, total, parameterStoreHigherThroughput: higherThroughput };
}

/** Fixed monthly costs, apart from the per-server ones: they do not grow with the fleet. */
export function fixedMonthly(availabilityZones = 2) {
  const hours = 730;
  return {
    kmsKeys: 2 * PRICES.kmsKeyMonth.usd,
    interfaceEndpoint: round6(availabilityZones * hours * PRICES.interfaceEndpointAzHour.usd),
    availabilityZones,
  };
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;
