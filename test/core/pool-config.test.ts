import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors";
import { parsePools } from "../../src/core/pool-config";

const role = { iamRole: "NodeRole" };

describe("parsePools", () => {
  it("always has a default pool with the documented defaults", () => {
    const pools = parsePools({}, role);
    expect(pools.get("default")).toEqual({
      name: "default",
      iamRole: "NodeRole",
      registrationLimit: 100,
      expirationHours: 24,
      safetyMarginMinutes: 60,
      standby: true,
      tags: {},
    });
  });

  it("turns the standby activation off per pool", () => {
    const pools = parsePools({ pools: { single: { registrationLimit: 1, standby: false } } }, role);
    expect(pools.get("single")?.standby).toBe(false);
    expect(pools.get("default")?.standby).toBe(true);
    expect(() => parsePools({ pools: { x: { standby: "no" } } }, role)).toThrow(/standby/);
  });

  it("resolves every field of a configured pool", () => {
    const pools = parsePools(
      {
        pools: {
          "web-eu": {
            iamRole: "WebRole",
            registrationLimit: 1000,
            expirationHours: 720,
            safetyMarginMinutes: 120,
            defaultInstanceName: "web",
            description: "web servers",
            tags: { team: "web" },
          },
        },
      },
      role,
    );
    expect(pools.get("web-eu")).toMatchObject({
      iamRole: "WebRole",
      registrationLimit: 1000,
      tags: { team: "web" },
    });
  });

  it.each([
    [{ pools: { default: { registrationLimit: 0 } } }, "pools.default.registrationLimit"],
    [{ pools: { default: { registrationLimit: 1001 } } }, "pools.default.registrationLimit"],
    [{ pools: { default: { expirationHours: 721 } } }, "pools.default.expirationHours"],
    [{ pools: { default: { expirationHours: 0 } } }, "pools.default.expirationHours"],
    [
      { pools: { default: { expirationHours: 1, safetyMarginMinutes: 60 } } },
      "pools.default.safetyMarginMinutes",
    ],
    [{ pools: { default: { registrationLimt: 5 } } }, "pools.default.registrationLimt: unknown key"],
    [{ pools: { "bad/name": {} } }, "pools.bad/name"],
    [{ pools: { default: { tags: { "aws:x": "y" } } } }, "pools.default.tags.aws:x"],
    [{ pools: { default: { tags: { "activation-broker:pool": "y" } } } }, "reserved"],
    [{ pool: {} }, "pool: unknown key"],
  ])("rejects %j naming the field", (input, field) => {
    expect(() => parsePools(input, role)).toThrow(ConfigError);
    expect(() => parsePools(input, role)).toThrow(field);
  });

  it("requires a role when no default role is configured", () => {
    expect(() => parsePools({}, {})).toThrow("pools.default.iamRole");
  });
});
