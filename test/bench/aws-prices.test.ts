/**
 * The price arithmetic of the benchmark's cost per 1,000 servers, checked by hand against the
 * price pages' figures (bench/aws-prices.ts lists them with their sources).
 */
import { describe, expect, it } from "vitest";
import { costPerThousand, fixedMonthly } from "../../bench/aws-prices";

describe("cost per 1,000 servers onboarded", () => {
  it("multiplies each billed unit by its price and scales to 1,000 servers", () => {
    const cost = costPerThousand({
      servers: 2000,
      apiRequests: 2000, // $3.50 per million: $0.007 for 2,000, $0.0035 per 1,000 servers
      lambdaInvocations: 4000, // $0.20 per million: $0.0008, $0.0004 per 1,000
      lambdaBilledMs: 400_000, // 400 s x 0.25 GB = 100 GB-s x $0.0000133334 = $0.00133334
      writeUnits: 6540, // $0.625 per million WRU
      readUnits: 900, // $0.125 per million RRU
      kmsRequests: 1000, // $0.03 per 10,000: $0.003
      parameterStoreCalls: 2000, // $0.05 per 10,000 with higher throughput: $0.01
    });
    expect(cost.apiGateway).toBeCloseTo(0.0035, 6);
    expect(cost.lambdaRequests).toBeCloseTo(0.0004, 6);
    expect(cost.lambdaDuration).toBeCloseTo(0.00066667, 6);
    expect(cost.dynamodb).toBeCloseTo((6540 * 0.625 + 900 * 0.125) / 1e6 / 2, 6);
    expect(cost.kms).toBeCloseTo(0.0015, 6);
    expect(cost.parameterStoreHigherThroughput).toBeCloseTo(0.005, 6);
    expect(cost.total).toBeCloseTo(
      cost.apiGateway + cost.lambdaRequests + cost.lambdaDuration + cost.dynamodb + cost.kms,
      5,
    );
  });

  it("no server onboarded costs nothing per server rather than dividing by zero", () => {
    const cost = costPerThousand({
      servers: 0,
      apiRequests: 10,
      lambdaInvocations: 10,
      lambdaBilledMs: 10,
      writeUnits: 10,
      readUnits: 10,
      kmsRequests: 10,
      parameterStoreCalls: 10,
    });
    expect(cost.total).toBe(0);
  });

  it("fixed monthly costs: two KMS keys at $1, an interface endpoint at $0.01 per AZ-hour", () => {
    expect(fixedMonthly(2)).toEqual({ kmsKeys: 2, interfaceEndpoint: 14.6, availabilityZones: 2 });
  });
});
