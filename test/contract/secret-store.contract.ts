/**
 * The SecretStore contract (src/core/ports.ts), run against the in-memory fake and the Parameter
 * Store adapter on the emulator.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SecretStore, ActivationPair } from "../../src/core/ports";

export interface SecretStoreFixture {
  readonly store: SecretStore;
  readonly cleanup?: () => Promise<void>;
}

export function secretStoreContract(makeStore: () => Promise<SecretStoreFixture>): void {
  describe("SecretStore contract", () => {
    let fixture: SecretStoreFixture;
    let store: SecretStore;

    beforeAll(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.cleanup?.();
    });

    function secret(overrides: Partial<ActivationPair> = {}): ActivationPair {
      return {
        pool: "contract",
        activationId: randomUUID(),
        // Characters that need escaping in JSON, as SSM codes may contain + / =.
        activationCode: `Ab+/=9"\\${randomUUID().slice(0, 8)}`,
        expiresAt: Date.UTC(2026, 11, 28, 10, 0, 0, 123),
        ...overrides,
      };
    }

    async function expectNotFound(pool: string, activationId: string): Promise<void> {
      expect(await store.getMany(pool, [activationId])).toEqual([]);
    }

    it("returns what was put", async () => {
      const stored = secret();
      await store.put(stored);
      expect(await store.getMany(stored.pool, [stored.activationId])).toEqual([stored]);
    });

    it("reads up to ten in one call, in the order asked, leaving out what it never stored", async () => {
      const stored = Array.from({ length: 9 }, () => secret());
      for (const s of stored) await store.put(s);
      const unknown = randomUUID();
      const asked = [stored[3]!, stored[0]!, ...stored.slice(4), stored[1]!, stored[2]!];
      const found = await store.getMany("contract", [
        ...asked.slice(0, 4).map((s) => s.activationId),
        unknown,
        ...asked.slice(4).map((s) => s.activationId),
      ]);
      expect(found).toEqual(asked);
    });

    it("keeps pools apart", async () => {
      const stored = secret({ pool: "pool-a" });
      await store.put(stored);
      await expectNotFound("pool-b", stored.activationId);
    });

    it("finds nothing for an activation it never stored", async () => {
      await expectNotFound("contract", randomUUID());
    });

    it("accepts the same put twice (an SDK retry of a write that landed)", async () => {
      const stored = secret();
      await store.put(stored);
      await expect(store.put(stored)).resolves.toBeUndefined();
      expect(await store.getMany(stored.pool, [stored.activationId])).toEqual([stored]);
    });

    it("deletes, and treats deleting again or deleting an unknown secret as success", async () => {
      const stored = secret();
      await store.put(stored);
      await store.delete(stored.pool, stored.activationId);
      await expectNotFound(stored.pool, stored.activationId);
      await expect(store.delete(stored.pool, stored.activationId)).resolves.toBeUndefined();
      await expect(store.delete("contract", randomUUID())).resolves.toBeUndefined();
    });
  });
}
