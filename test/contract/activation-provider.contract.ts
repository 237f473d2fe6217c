/**
 * The ActivationProvider contract (src/core/ports.ts), run against the in-memory fake and the SSM
 * adapter on the emulator.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActivationInventory } from "../../src/core/inventory";
import type { ActivationProvider, CreateActivationRequest, CreatedActivation } from "../../src/core/ports";
import { TAG_DEPLOYMENT, TAG_GENERATION, TAG_POOL } from "../../src/core/vend-policy";

export interface ActivationProviderFixture {
  readonly provider: ActivationProvider;
  /** The janitor's listing of the same activations. */
  readonly inventory: ActivationInventory;
  /** The deployment tag the requests carry. */
  readonly deployment: string;
  readonly iamRole: string;
  /** A node registering with the activation, as its agent would: SSM counts it. */
  readonly register: (activation: CreatedActivation) => Promise<void>;
  readonly cleanup?: () => Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HOUR = 3_600_000;

export function activationProviderContract(makeProvider: () => Promise<ActivationProviderFixture>): void {
  describe("ActivationProvider contract", () => {
    let fixture: ActivationProviderFixture;
    let provider: ActivationProvider;

    beforeAll(async () => {
      fixture = await makeProvider();
      provider = fixture.provider;
    });
    afterAll(async () => {
      await fixture?.cleanup?.();
    });

    function request(
      overrides: { deployment?: string; limit?: number; generation?: number } = {},
    ): CreateActivationRequest {
      const generation = overrides.generation ?? 1;
      return {
        pool: "contract",
        generation,
        iamRole: fixture.iamRole,
        registrationLimit: overrides.limit ?? 7,
        // Whole seconds, as the core computes it (SSM keeps ExpirationDate in seconds).
        expiresAt: Math.floor((Date.now() + 24 * HOUR) / 1000) * 1000,
        defaultInstanceName: "contract-node",
        description: "contract test",
        tags: {
          team: "platform",
          [TAG_DEPLOYMENT]: overrides.deployment ?? fixture.deployment,
          [TAG_POOL]: "contract",
          [TAG_GENERATION]: String(generation),
        },
      };
    }

    it("creates an activation with an id and a code, and lists it with its limit and tags", async () => {
      const req = request({ limit: 7, generation: 3 });
      const created = await provider.create(req);
      expect(created.activationId).toMatch(UUID);
      expect(created.activationCode).toEqual(expect.any(String));
      expect(created.activationCode.length).toBeGreaterThan(0);

      const listed = (await fixture.inventory.list()).find((a) => a.activationId === created.activationId);
      expect(listed).toEqual({
        activationId: created.activationId,
        iamRole: fixture.iamRole,
        registrationLimit: 7,
        registrationsCount: 0,
        expiresAt: req.expiresAt,
        expired: false,
        createdAt: expect.any(Number),
        defaultInstanceName: "contract-node",
        tags: req.tags,
      });
      expect(Math.abs(listed!.createdAt - Date.now())).toBeLessThan(HOUR);
    });

    it("gives every activation its own id and code", async () => {
      const [a, b] = await Promise.all([provider.create(request()), provider.create(request())]);
      expect(a.activationId).not.toBe(b.activationId);
      expect(a.activationCode).not.toBe(b.activationCode);
    });

    it("deletes an activation, and treats deleting it again or deleting an unknown id as success", async () => {
      const created = await provider.create(request());
      await provider.delete(created.activationId);
      expect((await fixture.inventory.list()).map((a) => a.activationId)).not.toContain(created.activationId);
      await expect(provider.delete(created.activationId)).resolves.toBeUndefined();
      await expect(provider.delete(randomUUID())).resolves.toBeUndefined();
    });

    it("describes an activation with its limit and the registrations SSM counted", async () => {
      const created = await provider.create(request({ limit: 7 }));
      const { activationId } = created;
      expect(await provider.describe(activationId)).toEqual({
        activationId,
        registrationLimit: 7,
        registrationsCount: 0,
      });
      await fixture.register(created);
      await fixture.register(created);
      expect(await provider.describe(activationId)).toEqual({
        activationId,
        registrationLimit: 7,
        registrationsCount: 2,
      });
    });

    it("describes a deleted or unknown activation as undefined", async () => {
      const created = await provider.create(request());
      await provider.delete(created.activationId);
      expect(await provider.describe(created.activationId)).toBeUndefined();
      expect(await provider.describe(randomUUID())).toBeUndefined();
    });

    it("lists every deployment's activations with their tags, so the janitor can tell its own", async () => {
      const ours = await provider.create(request());
      const theirs = await provider.create(request({ deployment: `${fixture.deployment}-other` }));
      const listed = await fixture.inventory.list();
      const deploymentOf = (id: string) => listed.find((a) => a.activationId === id)?.tags[TAG_DEPLOYMENT];
      expect(deploymentOf(ours.activationId)).toBe(fixture.deployment);
      expect(deploymentOf(theirs.activationId)).toBe(`${fixture.deployment}-other`);
    });
  });
}
