import { describe, expect, it } from "vitest";
import { SlotGate, slotsLeftAfter } from "../../src/core/slot-gate";
import type { Reservation } from "../../src/core/ports";

const reservation = (slot: number, limit: number, next: string[] = []): Reservation => ({
  pool: "default",
  generation: 1,
  activationId: "a",
  expiresAt: 0,
  slot,
  limit,
  needsStandby: false,
  next,
});

/** Takes turns until the gate says otherwise; returns how many were sent, and what stopped it. */
function takeAll(gate: SlotGate, max = 100): { sent: number; then: string } {
  for (let sent = 0; sent < max; sent++) {
    const turn = gate.take();
    if (turn !== "send") return { sent, then: turn };
  }
  return { sent: max, then: "send" };
}

describe("SlotGate: this process's reservations in flight on one pool", () => {
  it("lets every request through until an answer says how many slots are left", () => {
    expect(takeAll(new SlotGate())).toEqual({ sent: 100, then: "send" });
  });

  it("holds the writes in flight to the slots the last answer left", () => {
    const gate = new SlotGate();
    gate.take();
    gate.answered(3);
    expect(takeAll(gate)).toEqual({ sent: 3, then: "wait" });
    gate.answered(2); // one of the three came back: two slots left, two writes still out
    expect(gate.take()).toBe("wait");
    gate.answered(5); // a refill landed meanwhile
    expect(takeAll(gate)).toEqual({ sent: 4, then: "wait" });
  });

  it("sends one write when nothing is in flight, even with one slot or an unknown count", () => {
    const gate = new SlotGate();
    gate.take();
    gate.answered(1);
    expect(takeAll(gate)).toEqual({ sent: 1, then: "wait" });
    gate.answered(undefined); // the write failed (timeout): the count stays, the turn frees
    expect(takeAll(gate)).toEqual({ sent: 1, then: "wait" });
  });

  it("sends a spent pool to a round instead of a write that would fail", () => {
    const gate = new SlotGate();
    gate.take();
    gate.answered(0);
    expect(gate.take()).toBe("look");
    gate.saw(2); // the round read the row: two slots
    expect(takeAll(gate)).toEqual({ sent: 2, then: "wait" });
  });

  it("waits while the writes in flight may take the last slots, then looks", () => {
    const gate = new SlotGate();
    gate.take();
    gate.answered(1);
    gate.take();
    expect(gate.take()).toBe("wait");
    gate.answered(0);
    expect(gate.take()).toBe("look");
  });

  it("forgets what it saw when the pool may have changed", () => {
    const gate = new SlotGate();
    gate.take();
    gate.answered(0);
    gate.forget();
    expect(takeAll(gate)).toEqual({ sent: 100, then: "send" });
  });

  it("wakes the waiting requests at each answer and read, in the order they came", async () => {
    const gate = new SlotGate();
    const woken: string[] = [];
    const first = gate.next().then(() => woken.push("first"));
    const second = gate.next().then(() => woken.push("second"));
    gate.take();
    gate.answered(1);
    await Promise.all([first, second]);
    expect(woken).toEqual(["first", "second"]);
    const third = gate.next().then(() => woken.push("third"));
    gate.saw(1);
    await third;
    const fourth = gate.next().then(() => woken.push("fourth"));
    gate.forget();
    await fourth;
    expect(woken).toEqual(["first", "second", "third", "fourth"]);
  });

  it("wakes nobody who came after the answer", async () => {
    const gate = new SlotGate();
    gate.take();
    gate.answered(1);
    let woken = false;
    void gate.next().then(() => (woken = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(woken).toBe(false);
  });
});

describe("slotsLeftAfter", () => {
  it("counts the rest of the reservation's activation and every one after it", () => {
    expect(slotsLeftAfter(reservation(3, 10))).toBe(7);
    expect(slotsLeftAfter(reservation(10, 10))).toBe(0);
    expect(slotsLeftAfter(reservation(10, 10, ["b", "c"]))).toBe(20);
    expect(slotsLeftAfter(reservation(1, 4, ["b"]))).toBe(7);
  });
});
