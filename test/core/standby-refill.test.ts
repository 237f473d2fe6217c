import { describe, expect, it } from "vitest";
import type { Reservation } from "../../src/core/ports";
import { BackgroundRefill, refillElsewhere } from "../../src/core/standby-refill";
import { CapturingLogger } from "../support/fakes";

function reservation(slot: number): Reservation {
  return {
    pool: "default",
    generation: 1,
    activationId: "act-1",
    expiresAt: 0,
    limit: 10,
    slot,
    needsStandby: true,
    next: [],
  };
}

/** A refill the test finishes by hand. */
function heldRefill() {
  let finish!: (outcome: "ok" | Error) => void;
  const runs: number[] = [];
  const refill = () => {
    runs.push(runs.length + 1);
    return new Promise<void>((resolve, reject) => {
      finish = (outcome) => (outcome === "ok" ? resolve() : reject(outcome));
    });
  };
  return { refill, runs, finish: (outcome: "ok" | Error) => finish(outcome) };
}

const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("BackgroundRefill (a long-running process)", () => {
  it("runs one refill per pool at a time, and answers the ask without waiting for it", async () => {
    const background = new BackgroundRefill(new CapturingLogger());
    const held = heldRefill();
    await background.ask("default", reservation(3), held.refill);
    await background.ask("default", reservation(4), held.refill);
    expect(held.runs).toEqual([1]);
    const other = heldRefill();
    await background.ask("other", reservation(1), other.refill);
    expect(other.runs).toEqual([1]);
    held.finish("ok");
    await settled();
    await background.ask("default", reservation(5), held.refill);
    expect(held.runs).toEqual([1, 2]);
  });

  it("has no commit to wait for while no refill of the pool runs here", async () => {
    const background = new BackgroundRefill(new CapturingLogger());
    expect(background.nextCommit("default")).toBeUndefined();
    const held = heldRefill();
    await background.ask("other", reservation(1), held.refill);
    expect(background.nextCommit("default")).toBeUndefined();
    expect(background.nextCommit("other")).toBeInstanceOf(Promise);
  });

  it("wakes the waiters at each commit, and at the refill's end", async () => {
    const background = new BackgroundRefill(new CapturingLogger());
    const held = heldRefill();
    await background.ask("default", reservation(1), held.refill);
    const woken: string[] = [];
    void background.nextCommit("default")?.then(() => woken.push("first"));
    background.committed("other");
    await settled();
    expect(woken).toEqual([]);
    background.committed("default");
    await settled();
    expect(woken).toEqual(["first"]);
    void background.nextCommit("default")?.then(() => woken.push("second"));
    held.finish("ok");
    await settled();
    expect(woken).toEqual(["first", "second"]);
    expect(background.nextCommit("default")).toBeUndefined();
  });

  it("logs a failed refill by its error's name, never throws, and frees the pool for the next", async () => {
    const logger = new CapturingLogger();
    const background = new BackgroundRefill(logger);
    const held = heldRefill();
    await background.ask("default", reservation(1), held.refill);
    held.finish(Object.assign(new Error("code ABCD-secret in the message"), { name: "ThrottlingException" }));
    await background.idle();
    const line = logger.lines.find((l) => l.level === "warn");
    expect(line?.message).toBe("standby refill failed; the next exhaustion rotates on request");
    expect(line?.extra).toEqual({ pool: "default", error: "ThrottlingException" });
    expect(JSON.stringify(logger.lines)).not.toContain("ABCD-secret");
    await background.ask("default", reservation(2), held.refill);
    expect(held.runs).toEqual([1, 2]);
  });

  it("is idle once every refill it started has finished, including ones started meanwhile", async () => {
    const background = new BackgroundRefill(new CapturingLogger());
    const [a, b] = [heldRefill(), heldRefill()];
    await background.ask("a", reservation(1), a.refill);
    let idle = false;
    const waiting = background.idle().then(() => (idle = true));
    await background.ask("b", reservation(1), b.refill);
    a.finish("ok");
    await settled();
    expect(idle).toBe(false);
    b.finish("ok");
    await waiting;
    expect(idle).toBe(true);
  });
});

describe("refillElsewhere (a Lambda container)", () => {
  it("asks only for the reservation that took slot 1, and never runs the refill here", async () => {
    const asked: string[] = [];
    const elsewhere = refillElsewhere(async (pool) => void asked.push(pool), new CapturingLogger());
    const local = heldRefill();
    for (const slot of [2, 3, 1, 4]) await elsewhere.ask("default", reservation(slot), local.refill);
    expect(asked).toEqual(["default"]);
    expect(local.runs).toEqual([]);
    expect(elsewhere.nextCommit("default")).toBeUndefined();
    await expect(elsewhere.idle()).resolves.toBeUndefined();
  });

  it("logs a failed ask by its error's name and answers the vend anyway", async () => {
    const logger = new CapturingLogger();
    const elsewhere = refillElsewhere(async () => {
      throw Object.assign(new Error("denied"), { name: "AccessDeniedException" });
    }, logger);
    await expect(elsewhere.ask("default", reservation(1), async () => {})).resolves.toBeUndefined();
    expect(logger.lines).toEqual([
      expect.objectContaining({
        level: "warn",
        message: "could not request a standby refill",
        extra: { pool: "default", error: "AccessDeniedException" },
      }),
    ]);
  });
});
