import { describe, expect, it } from "vitest";
import { parsePools } from "../../src/core/pool-config";
import {
  activationTags,
  backoffMs,
  canReserve,
  freeSlots,
  needsStandby,
  leaseHeldByOther,
  newActivationExpiry,
  rotationRetryAfterSeconds,
} from "../../src/core/vend-policy";

const pool = parsePools(
  { pools: { web: { expirationHours: 2, safetyMarginMinutes: 30, tags: { team: "web" } } } },
  { iamRole: "R" },
).get("web")!;
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0, 0);
const MARGIN = 30 * 60_000;
const live = {
  pool: "web",
  generation: 1,
  activationId: "a",
  limit: 3,
  issued: 2,
  expiresAt: NOW + MARGIN + 1,
};

describe("vend policy", () => {
  it("reserves only below the limit and strictly beyond the safety margin", () => {
    expect(canReserve(live, pool, NOW)).toBe(true);
    expect(canReserve({ ...live, issued: 3 }, pool, NOW)).toBe(false);
    expect(canReserve({ ...live, expiresAt: NOW + MARGIN }, pool, NOW)).toBe(false);
    expect(canReserve({ pool: "web", generation: 0 }, pool, NOW)).toBe(false);
    expect(canReserve(undefined, pool, NOW)).toBe(false);
  });

  it("counts free slots, never below zero", () => {
    expect(freeSlots(live)).toBe(1);
    expect(freeSlots({ ...live, issued: 5 })).toBe(0);
    expect(freeSlots(undefined)).toBe(0);
  });

  it("sees a lease as held until its deadline, not at it", () => {
    expect(leaseHeldByOther({ ...live, leaseDeadline: NOW + 1 }, NOW)).toBe(true);
    expect(leaseHeldByOther({ ...live, leaseDeadline: NOW }, NOW)).toBe(false);
    expect(leaseHeldByOther(live, NOW)).toBe(false);
  });

  it("rounds a new activation's expiry down to whole seconds, as SSM stores it", () => {
    expect(newActivationExpiry(pool, NOW + 999)).toBe(NOW + 2 * 3_600_000);
  });

  it("tags every activation with the deployment, pool and generation, after the user's tags", () => {
    expect(activationTags(pool, "prod", 7)).toEqual({
      team: "web",
      "activation-broker:deployment": "prod",
      "activation-broker:pool": "web",
      "activation-broker:generation": "7",
    });
  });

  it("backs off with full jitter within [10 ms, cap]", () => {
    expect(backoffMs(0, () => 0)).toBe(10);
    expect(backoffMs(0, () => 0.999)).toBe(49);
    expect(backoffMs(3, () => 0.999)).toBe(399);
    expect(backoffMs(20, () => 0.999)).toBe(499);
  });

  it("asks clients to retry after the lease's rest, within 1–5 s", () => {
    expect(rotationRetryAfterSeconds({ ...live, leaseDeadline: NOW + 2_500 }, NOW)).toBe(3);
    expect(rotationRetryAfterSeconds({ ...live, leaseDeadline: NOW + 60_000 }, NOW)).toBe(5);
    expect(rotationRetryAfterSeconds({ ...live, leaseDeadline: NOW - 1 }, NOW)).toBe(1);
    expect(rotationRetryAfterSeconds(undefined, NOW)).toBe(1);
  });

  it("reserves from the standby only once the current one is spent, and strictly beyond the margin", () => {
    const standby = { standbyId: "s", standbyLimit: 2, standbyIssued: 0, standbyExpiresAt: NOW + MARGIN + 1 };
    expect(canReserve({ ...live, issued: 3, ...standby }, pool, NOW)).toBe(true);
    expect(canReserve({ ...live, issued: 3, ...standby, standbyExpiresAt: NOW + MARGIN }, pool, NOW)).toBe(
      false,
    );
    expect(canReserve({ ...live, issued: 3, ...standby, standbyIssued: 2 }, pool, NOW)).toBe(false);
  });

  it("counts the standby's free slots beside the current one's", () => {
    expect(freeSlots({ ...live, standbyId: "s", standbyLimit: 4, standbyIssued: 1 })).toBe(1 + 3);
  });

  it("needs a standby when there is none or it is in use, never without an activation", () => {
    expect(needsStandby(undefined)).toBe(false);
    expect(needsStandby({ pool: "web", generation: 0, standbyId: "s" })).toBe(false);
    expect(needsStandby(live)).toBe(true);
    expect(needsStandby({ ...live, standbyId: "s", standbyIssued: 0 })).toBe(false);
    expect(needsStandby({ ...live, standbyId: "s", standbyIssued: 1 })).toBe(true);
  });
});
