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
      maxActivationsPerHour: 100,
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
    [{ pools: { default: { maxActivationsPerHour: 0 } } }, "pools.default.maxActivationsPerHour"],
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

  it("requires a role when no default role is configured, and says which one is missing", () => {
    expect(() => parsePools({}, {})).toThrow(
      "Invalid pool configuration: pools.default.iamRole: required (no default role is configured)",
    );
    expect(() =>
      parsePools({ pools: { k: { eksClusterArn: "arn:aws:eks:eu-west-1:123456789012:cluster/c" } } }, role),
    ).toThrow("Invalid pool configuration: pools.k.iamRole: required (no hybrid nodes role is configured)");
  });

  it("says what a pool name must look like", () => {
    expect(() => parsePools({ pools: { "no/slash": {} } }, role)).toThrow(
      "pool names must match [A-Za-z0-9_-]{1,64}",
    );
  });

  it("says where an EKS pool's EKSClusterARN tag comes from", () => {
    expect(() =>
      parsePools(
        {
          pools: {
            k: {
              iamRole: "HybridNodesRole",
              eksClusterArn: "arn:aws:eks:eu-west-1:123456789012:cluster/c",
              tags: { EKSClusterARN: "x" },
            },
          },
        },
        role,
      ),
    ).toThrow("pools.k.tags.EKSClusterARN: EKSClusterARN is set from eksClusterArn");
  });
});

/** The edges of every limit CreateActivation documents: the last value accepted, the first refused. */
describe("parsePools at the limits of ssm:CreateActivation", () => {
  const pool = (settings: Record<string, unknown>) => ({ pools: { p: settings } });
  const long = (n: number, c = "a") => c.repeat(n);

  it.each([
    ["registrationLimit", { registrationLimit: 1 }],
    ["registrationLimit", { registrationLimit: 1000 }],
    ["expirationHours", { expirationHours: 720, safetyMarginMinutes: 1 }],
    ["safetyMarginMinutes", { expirationHours: 720, safetyMarginMinutes: 720 * 60 - 1 }],
    ["safetyMarginMinutes", { expirationHours: 2, safetyMarginMinutes: 119 }],
    ["defaultInstanceName", { defaultInstanceName: long(256) }],
    ["defaultInstanceName", { defaultInstanceName: "web 01_a.b:c/d=e+f-g@h" }],
    ["description", { description: long(256, "é") }],
    ["tags", { tags: { [long(128)]: long(256) } }],
    ["tags", { tags: { "team name_1.a:b/c=d+e-f@g": "" } }],
    ["tags", { tags: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, "v"])) }],
  ])("accepts %s at %j, unchanged", (field, settings) => {
    const resolved = parsePools(pool(settings), role).get("p")!;
    expect(resolved).toMatchObject(settings);
    expect(resolved[field as keyof typeof resolved]).toEqual(settings[field as keyof typeof settings]);
  });

  it.each([
    [{ registrationLimit: 1.5 }, "pools.p.registrationLimit"],
    [{ expirationHours: 24.5 }, "pools.p.expirationHours"],
    [{ safetyMarginMinutes: 0 }, "pools.p.safetyMarginMinutes"],
    [{ safetyMarginMinutes: 2.5 }, "pools.p.safetyMarginMinutes"],
    [{ expirationHours: 720, safetyMarginMinutes: 720 * 60 }, "pools.p.safetyMarginMinutes"],
    [{ expirationHours: 2, safetyMarginMinutes: 120 }, "pools.p.safetyMarginMinutes"],
    [{ defaultInstanceName: long(257) }, "pools.p.defaultInstanceName"],
    [{ defaultInstanceName: "web;rm" }, "pools.p.defaultInstanceName: letters, digits, spaces"],
    [{ description: long(257) }, "pools.p.description"],
    [{ iamRole: "" }, "pools.p.iamRole"],
    [{ iamRole: long(65) }, "pools.p.iamRole"],
    [{ tags: { [long(129)]: "v" } }, "pools.p.tags"],
    [{ tags: { "": "v" } }, "pools.p.tags"],
    [{ tags: { k: long(257) } }, "pools.p.tags.k"],
    [{ tags: { "a;b": "v" } }, "tag keys may hold letters, digits, spaces and _.:/=+-@"],
    [{ tags: { "AWS:x": "v" } }, "tag keys may not start with 'aws:'"],
    [{ tags: { "activation-broker:x": "v" } }, "tag keys starting with 'activation-broker:' are reserved"],
    [
      { tags: Object.fromEntries(Array.from({ length: 41 }, (_, i) => [`k${i}`, "v"])) },
      "pools.p.tags: at most 40 tags",
    ],
  ])("refuses %j, naming the field and the rule", (settings, message) => {
    expect(() => parsePools(pool(settings), role)).toThrow(ConfigError);
    expect(() => parsePools(pool(settings), role)).toThrow(message);
  });

  it("names each problem once, separated by '; '", () => {
    expect(() => parsePools(pool({ registrationLimit: 0, colour: "red" }), role)).toThrow(
      /^Invalid pool configuration: (pools\.p\.colour: unknown key; pools\.p\.registrationLimit: .+|pools\.p\.registrationLimit: .+; pools\.p\.colour: unknown key)$/,
    );
  });

  it("names an unknown top-level key at the root, and a bad document as (root)", () => {
    expect(() => parsePools({ pool: {} }, role)).toThrow(
      /: pool: unknown key \(the file holds \{"pools": \{\.\.\.\}\}, with each pool inside it\)$/,
    );
    expect(() => parsePools("pools", role)).toThrow(/: \(root\): /);
  });

  it("reads an absent document as no pools: the default one only", () => {
    expect([...parsePools(undefined, role).keys()]).toEqual(["default"]);
    expect([...parsePools(null, role).keys()]).toEqual(["default"]);
  });

  it("lets a configured default pool replace the built-in one", () => {
    expect(parsePools({ pools: { default: { registrationLimit: 7 } } }, role).get("default")).toMatchObject({
      registrationLimit: 7,
      expirationHours: 24,
    });
  });

  it("gives each pool the deployment's role unless it names its own", () => {
    const pools = parsePools({ pools: { a: {}, b: { iamRole: "Own" } } }, { iamRole: "Deployment" });
    expect(pools.get("a")!.iamRole).toBe("Deployment");
    expect(pools.get("b")!.iamRole).toBe("Own");
  });
});

describe("parsePools: settings the janitor and EKS read", () => {
  const pool = (settings: Record<string, unknown>) => ({ pools: { p: settings } });

  it("leaves fleet hygiene off unless asked, and passes it through exactly", () => {
    expect(parsePools(pool({}), role).get("p")).not.toHaveProperty("hygiene");
    expect(parsePools(pool({ hygiene: {} }), role).get("p")?.hygiene).toStrictEqual({ nameTag: false });
    expect(
      parsePools(pool({ hygiene: { nameTag: true, deregisterDuplicatesAfterDays: 365 } }), role).get("p")
        ?.hygiene,
    ).toStrictEqual({ nameTag: true, deregisterDuplicatesAfterDays: 365 });
    expect(
      parsePools(pool({ hygiene: { deregisterDuplicatesAfterDays: 1 } }), role).get("p")?.hygiene,
    ).toStrictEqual({ nameTag: false, deregisterDuplicatesAfterDays: 1 });
  });

  it.each([0, 366, 1.5])("refuses deregisterDuplicatesAfterDays %j", (days) => {
    expect(() => parsePools(pool({ hygiene: { deregisterDuplicatesAfterDays: days } }), role)).toThrow(
      /pools\.p\.hygiene\.deregisterDuplicatesAfterDays/,
    );
  });

  it("lets a plain pool carry an EKSClusterARN tag of its own: only an EKS pool sets it", () => {
    const tags = { EKSClusterARN: "anything" };
    expect(parsePools(pool({ tags }), role).get("p")?.tags).toStrictEqual(tags);
  });

  it("says why a safety margin as long as the expiration is refused", () => {
    expect(() => parsePools(pool({ expirationHours: 1, safetyMarginMinutes: 60 }), role)).toThrow(
      "pools.p.safetyMarginMinutes: safetyMarginMinutes must be shorter than expirationHours, or no pair could ever be handed out",
    );
  });

  it("names a bad tag key with the key rule's own message, not zod's generic one", () => {
    expect(() => parsePools(pool({ tags: { "aws:x": "v" } }), role)).toThrow(
      "Invalid pool configuration: pools.p.tags.aws:x: tag keys may not start with 'aws:'",
    );
  });

  it('says a pool file without the {"pools": …} wrapper is missing it', () => {
    expect(() => parsePools({ web: { registrationLimit: 5 } }, role)).toThrow(
      'Invalid pool configuration: web: unknown key (the file holds {"pools": {...}}, with each pool inside it)',
    );
  });

  it("separates several unknown keys of one object with '; '", () => {
    expect(() => parsePools(pool({ colour: "red", size: 2 }), role)).toThrow(
      "Invalid pool configuration: pools.p.colour: unknown key; pools.p.size: unknown key",
    );
  });
});
