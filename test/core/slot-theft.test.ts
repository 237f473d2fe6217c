import { describe, expect, it } from "vitest";
import {
  isSlotTheft,
  reportSlotTheft,
  SLOT_THEFT_MESSAGE,
  SLOT_THEFT_METRIC,
} from "../../src/core/slot-theft";
import { CapturingLogger, RecordingMetrics } from "../support/fakes";

const ID = "11111111-2222-4333-8444-555555555555";

function deps() {
  return { logger: new CapturingLogger(), metrics: new RecordingMetrics() };
}

const evidence = (registrationsCount: number, issued = 4) =>
  ({ pool: "web", activationId: ID, issued, registrationsCount, detectedBy: "reconcile" }) as const;

describe("slot theft: one definition, one log line, one metric", () => {
  it("is more registrations than pairs handed out, never as many", () => {
    expect(isSlotTheft({ issued: 4, registrationsCount: 5 })).toBe(true);
    expect(isSlotTheft({ issued: 4, registrationsCount: 4 })).toBe(false);
    expect(isSlotTheft({ issued: 4, registrationsCount: 3 })).toBe(false);
  });

  it("reports nothing, retires nothing and counts nothing for honest counts", async () => {
    const d = deps();
    let retires = 0;
    const retire = async () => (retires++, true);
    expect(await reportSlotTheft(d, evidence(4), { retire })).toBeUndefined();
    expect(retires).toBe(0);
    expect(d.logger.lines).toEqual([]);
    expect(d.metrics.points).toEqual([]);
  });

  it("retires first, then logs the security WARN and counts the metric for the pool", async () => {
    const d = deps();
    const order: string[] = [];
    const retire = async () => {
      order.push(`retire, ${d.logger.lines.length} lines logged`);
      return true;
    };
    expect(await reportSlotTheft(d, evidence(5), { retire })).toBe("retired");
    expect(order).toEqual(["retire, 0 lines logged"]);
    expect(d.logger.lines).toEqual([
      {
        level: "warn",
        message: SLOT_THEFT_MESSAGE,
        extra: {
          security: true,
          pool: "web",
          activationId: ID,
          issued: 4,
          registrationsCount: 5,
          action: "retired",
          detectedBy: "reconcile",
        },
      },
    ]);
    expect(SLOT_THEFT_METRIC).toBe("SlotTheftDetected");
    expect(d.metrics.points).toEqual([
      { kind: "count", name: "SlotTheftDetected", value: 1, dimensions: { Pool: "web" } },
    ]);
  });

  it("says 'already rotated' when the retire found the pool moved on", async () => {
    const d = deps();
    expect(await reportSlotTheft(d, evidence(5), { retire: async () => false })).toBe("already rotated");
    expect(d.logger.lines[0]?.extra).toMatchObject({ action: "already rotated" });
  });

  it.each(["rotated", "dry run"] as const)("reports '%s' without a retire", async (resolution) => {
    const d = deps();
    expect(await reportSlotTheft(d, evidence(9), resolution)).toBe(resolution);
    expect(d.logger.lines[0]?.extra).toMatchObject({ action: resolution, registrationsCount: 9 });
    expect(d.metrics.points).toHaveLength(1);
  });

  it("still reports a theft whose retire failed, and passes the error on", async () => {
    const d = deps();
    const failure = new Error("throttled");
    const retire = async (): Promise<boolean> => {
      throw failure;
    };
    await expect(reportSlotTheft(d, evidence(5), { retire })).rejects.toBe(failure);
    expect(d.logger.lines[0]?.extra).toMatchObject({ action: "retire failed" });
    expect(d.metrics.points).toHaveLength(1);
  });

  it("works without metrics", async () => {
    const logger = new CapturingLogger();
    expect(await reportSlotTheft({ logger }, evidence(5), "rotated")).toBe("rotated");
    expect(logger.lines).toHaveLength(1);
  });
});
