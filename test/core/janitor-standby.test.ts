import { expect, it } from "vitest";
import type { ActivationRecord } from "../../src/core/inventory";
import { classifyActivations } from "../../src/core/janitor";
import type { Link } from "../../src/core/ports";
import { TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "../../src/core/vend-policy";

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const HOUR = 3_600_000;

/** One of a pool row's activations: `limit` slots, `issued` of them handed out. */
const link = (activationId: string, limit: number, issued: number): Link => ({
  activationId,
  limit,
  issued,
  expiresAt: NOW + 20 * HOUR,
});

function activation(id: string, generation: number, registrationsCount = 0): ActivationRecord {
  return {
    activationId: id,
    iamRole: "SSMServiceRole",
    registrationLimit: 10,
    registrationsCount,
    expiresAt: NOW + 20 * HOUR,
    expired: false,
    createdAt: NOW - 2 * HOUR,
    tags: { [TAG_DEPLOYMENT]: "test", [TAG_POOL]: "web", [TAG_GENERATION]: String(generation) },
  };
}

it("keeps the pool's standby as live, with its own slots, beside the current activation (I9)", () => {
  const row = {
    pool: "web",
    generation: 3,
    links: [link("current", 10, 10), link("standby", 10, 4)],
  };
  const entries = classifyActivations(
    [row],
    [activation("current", 3, 10), activation("standby", 4, 4), activation("crashed-refill", 5)],
    { deployment: "test", leaseMs: 30_000 },
    NOW,
  );
  const byId = Object.fromEntries(entries.map((e) => [e.activation.activationId, e]));
  expect(byId.current).toMatchObject({ state: "current", action: "keep", issued: 10 });
  expect(byId.standby).toMatchObject({ state: "standby", action: "keep", issued: 4 });
  // A refill that died before its commit: never on the row, older than the lease.
  expect(byId["crashed-refill"]).toMatchObject({ state: "orphaned", action: "delete" });
});

it("deletes an idle pool's standby once it has expired unused, and keeps a used one", () => {
  const row = (standbyIssued: number) => ({
    pool: "web",
    generation: 3,
    links: [link("current", 10, 2), link("standby", 10, standbyIssued)],
  });
  const expired = { ...activation("standby", 4), expiresAt: NOW - HOUR, expired: true };
  const classify = (standbyIssued: number, standby: ActivationRecord) =>
    classifyActivations(
      [row(standbyIssued)],
      [activation("current", 3, 2), standby],
      {
        deployment: "test",
        leaseMs: 30_000,
      },
      NOW,
    ).find((e) => e.activation.activationId === "standby");
  expect(classify(0, expired)).toMatchObject({ state: "expired", action: "delete" });
  // Not yet expired: still the pool's next activation.
  expect(classify(0, activation("standby", 4))).toMatchObject({ state: "standby", action: "keep" });
  // Expired but used: pairs were handed out; it goes the way of every used activation, kept as
  // the pool's until the pool moves on.
  expect(classify(3, expired)).toMatchObject({ state: "standby", action: "keep" });
});
