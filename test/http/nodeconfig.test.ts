import { describe, expect, it } from "vitest";
import { createHttpHandler, type HttpRequest } from "../../src/http/handler";
import { createNodeConfigRoute, renderNodeConfig } from "../../src/http/nodeconfig";
import { parsePools, type PoolsFileInput } from "../../src/core/pool-config";
import { CapturingLogger } from "../support/fakes";
import { goFloat, goYamlScalar, nodeadmProblem, parseNodeConfig } from "../support/nodeadm-rules";
import { aVendor } from "../support/vendor-mother";

const ARN = "arn:aws:eks:eu-west-1:123456789012:cluster/edge";

function setup(pools: PoolsFileInput["pools"] = { k8s: { eksClusterArn: ARN, iamRole: "HybridRole" } }) {
  const fx = aVendor({ pools });
  const logger = new CapturingLogger();
  const handle = createHttpHandler({
    vendor: fx.vendor,
    region: "eu-west-1",
    logger,
    nodeConfig: createNodeConfigRoute({ vendor: fx.vendor, pools: fx.pools, logger }),
  });
  const get = (query: Record<string, string>, extra: Partial<HttpRequest> = {}) =>
    handle({
      method: "GET",
      path: "/nodeconfig.yaml",
      query,
      requestId: "req-1",
      baseUrl: "https://broker.example",
      ...extra,
    });
  return { ...fx, get, logger };
}

describe("GET /nodeconfig.yaml", () => {
  it("serves a NodeConfig nodeadm accepts, holding a fresh pair, as an uncacheable YAML vend", async () => {
    const { get, activations, logger } = setup();
    const res = await get({ pool: "k8s" });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      "Content-Type": "application/yaml; charset=utf-8",
      "Cache-Control": "no-store",
    });
    const config = parseNodeConfig(res.body);
    expect(nodeadmProblem(config)).toBeUndefined();
    const created = activations.created[0]!;
    expect(config).toEqual({
      apiVersion: "node.eks.aws/v1alpha1",
      kind: "NodeConfig",
      spec: {
        cluster: { name: "edge", region: "eu-west-1" },
        hybrid: { ssm: { activationCode: created.code, activationId: created.activationId } },
      },
    });
    // A vend: the activation carries the cluster tag and the role; the code is not in the logs.
    expect(created.request).toMatchObject({ iamRole: "HybridRole", tags: { EKSClusterARN: ARN } });
    expect(logger.text()).toContain(created.activationId);
    expect(logger.text()).not.toContain(created.code);
  });

  it("takes one slot per request", async () => {
    const { get, store } = setup({ k8s: { eksClusterArn: ARN, iamRole: "R", registrationLimit: 2 } });
    const bodies = [await get({ pool: "k8s" }), await get({ pool: "k8s" }), await get({ pool: "k8s" })];
    const ids = bodies.map((b) => parseNodeConfig(b.body).spec?.hybrid?.ssm?.activationId);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]); // two slots spent: the third pair comes from a new activation
    expect((await store.read("k8s"))?.links[0]?.issued).toBe(1);
  });

  it("passes kubelet flags and node labels through, quoted so nodeadm's YAML 1.1 reads strings", async () => {
    const { get } = setup({
      k8s: {
        eksClusterArn: "arn:aws:eks:eu-west-1:123456789012:cluster/on",
        iamRole: "R",
        kubeletFlags: ["--max-pods=58"],
        nodeLabels: { site: "yes", rack: "0123" },
      },
    });
    const res = await get({ pool: "k8s" });
    const config = parseNodeConfig(res.body);
    expect(nodeadmProblem(config)).toBeUndefined();
    expect(config.spec?.cluster?.name).toBe("on");
    expect(config.spec?.kubelet?.flags).toEqual(["--max-pods=58", "--node-labels=site=yes,rack=0123"]);
  });

  it.each(["0X1F", "0o17", "1e3_0", "0b101", "0777", "1_000", "on", "no", "null", "2e6", ".5"])(
    "serves a cluster named %s so that nodeadm reads back exactly that name",
    async (name) => {
      const { get } = setup({
        k8s: {
          eksClusterArn: `arn:aws:eks:eu-west-1:123456789012:cluster/${name.replace(".", "x")}`,
          iamRole: "R",
        },
      });
      const expected = name.replace(".", "x");
      const res = await get({ pool: "k8s" });
      const config = parseNodeConfig(res.body);
      expect(nodeadmProblem(config)).toBeUndefined();
      expect(config.spec?.cluster?.name).toBe(expected);
      // Every string value is double-quoted, whatever it looks like.
      for (const line of res.body
        .split("\n")
        .filter((l) => /^\s*[A-Za-z]+: \S/.test(l) || /^\s*- /.test(l))) {
        expect(line).toMatch(/(: |- )".*"$/);
      }
    },
  );

  it.each([
    [{ pool: "default" }, 400, "NotAnEksPool"],
    [{}, 400, "NotAnEksPool"],
    [{ pool: "nowhere" }, 404, "PoolNotFound"],
    [{ pool: "../etc" }, 400, "InvalidPoolName"],
  ])("refuses %j with %i %s and takes no slot", async (query, status, code) => {
    const { get, activations } = setup();
    const res = await get(query);
    expect(res.status).toBe(status);
    expect(res.headers["Content-Type"]).toBe("application/json");
    expect(JSON.parse(res.body).error.code).toBe(code);
    expect(activations.created).toHaveLength(0);
  });

  it("passes ?refused= to the refused-pair check before the vend, as GET / does", async () => {
    const fx = aVendor({ pools: { k8s: { eksClusterArn: ARN, iamRole: "HybridRole" } } });
    const order: string[] = [];
    const route = createNodeConfigRoute({
      vendor: fx.vendor,
      pools: fx.pools,
      logger: new CapturingLogger(),
      refusedPairs: {
        heal: (pool, id) => {
          // Before the vend: nothing has been created or stored yet.
          order.push(`heal ${pool} ${id}, codes stored: ${fx.secrets.items.size}`);
          return Promise.resolve("unconfirmed" as const);
        },
      },
    });
    const request = { method: "GET", path: "/nodeconfig.yaml", requestId: "r", baseUrl: "https://b" };
    await route({ ...request, query: { pool: "k8s", refused: "a-refused-id" } });
    await route({ ...request, query: { pool: "k8s" } });
    expect(order).toEqual(["heal k8s a-refused-id, codes stored: 0"]);
  });

  it("answers 405 to other methods", async () => {
    const { get } = setup();
    expect((await get({ pool: "k8s" }, { method: "POST" })).status).toBe(405);
  });
});

describe("the nodeadm rules the tests apply", () => {
  // The reader must misread what nodeadm misreads, or the quoting tests above prove nothing.
  const base = (name: string) =>
    [
      "apiVersion: node.eks.aws/v1alpha1",
      "kind: NodeConfig",
      "spec:",
      "  cluster:",
      `    name: ${name}`,
      "    region: eu-west-1",
      "  hybrid:",
      "    ssm:",
      "      activationCode: AAAAAAAAAAAAAAAAAAAA",
      "      activationID: 0a1b2c3d-0000-4000-8000-00000000000f",
      "",
    ].join("\n");

  it.each([
    ["0X1F", "31"],
    ["0x1f", "31"],
    ["0o17", "15"],
    ["0O17", "15"],
    ["017", "15"],
    ["0b101", "5"],
    ["1e3_0", "1e+30"],
    ["1_000", "1000"],
    ["+12", "12"],
    ["2e6", "2e+06"],
    ["1.5", "1.5"],
    ["on", "true"],
    ["Off", "false"],
    ["y", "true"],
    ["~", ""],
    ["edge", "edge"],
    ["1-2", "1-2"],
    ['"0X1F"', "0X1F"],
    ["'1e3_0'", "1e3_0"],
  ])("reads the plain scalar %s in a string field as nodeadm does: %s", (written, read) => {
    expect(parseNodeConfig(base(written)).spec?.cluster?.name).toBe(read);
  });

  it("matches keys case-insensitively and refuses unknown fields, as encoding/json strictly does", () => {
    const config = parseNodeConfig(base("edge"));
    expect(config.spec?.hybrid?.ssm?.activationId).toBe("0a1b2c3d-0000-4000-8000-00000000000f");
    expect(() => parseNodeConfig(base("edge").replace("region:", "regionn:"))).toThrow(
      'NodeConfig.spec.cluster: unknown field "regionn"',
    );
    expect(() => parseNodeConfig(`${base("edge")}extra: 1\n`)).toThrow('unknown field "extra"');
  });

  it("resolves scalars and formats floats by go-yaml's and Go's documented rules", () => {
    expect(goYamlScalar("0X1F")).toEqual({ tag: "int", value: 31 });
    expect(goYamlScalar("1e3_0")).toEqual({ tag: "float", value: 1e30 });
    expect(goYamlScalar("-.inf")).toEqual({ tag: "float", value: -Infinity });
    expect(goYamlScalar("0x")).toEqual({ tag: "str", value: "0x" });
    expect(goYamlScalar("09")).toEqual({ tag: "float", value: 9 });
    expect(goFloat(1e30)).toBe("1e+30");
    expect(goFloat(123456)).toBe("123456");
    expect(goFloat(1234567)).toBe("1.234567e+06");
    expect(goFloat(0.0001)).toBe("0.0001");
    expect(goFloat(0.00001)).toBe("1e-05");
    expect(goFloat(0.1)).toBe("0.1");
  });

  it("allows --hostname-override= with an empty value, as nodeadm does, and refuses a value", () => {
    const withFlag = (flag: string) =>
      parseNodeConfig(
        base("edge").replace("  hybrid:", `  kubelet:\n    flags:\n      - ${flag}\n  hybrid:`),
      );
    expect(nodeadmProblem(withFlag("--hostname-override="))).toBeUndefined();
    expect(nodeadmProblem(withFlag("--hostname-override=node1"))).toBe("hostname-override");
  });

  // The checker must be able to fail, or the tests above prove nothing.
  const pool = parsePools({ pools: { k: { eksClusterArn: ARN, iamRole: "R" } } }, { iamRole: "N" }).get("k")!;
  const valid = { pool: "k", activationId: "0a1b2c3d-0000-4000-8000-00000000000f", expiresAt: 0 };
  const render = (activationCode: string, activationId = valid.activationId) =>
    parseNodeConfig(renderNodeConfig(pool, { ...valid, activationCode, activationId }));

  it("accepts a real-looking pair and refuses what nodeadm refuses", () => {
    expect(nodeadmProblem(render("A".repeat(20)))).toBeUndefined();
    expect(nodeadmProblem(render("A".repeat(19)))).toMatch(/20-250/);
    expect(nodeadmProblem(render("A".repeat(251)))).toMatch(/20-250/);
    expect(nodeadmProblem(render("A".repeat(20), "0A1B2C3D-0000-4000-8000-00000000000F"))).toMatch(/ID/);
    const both = render("A".repeat(20));
    both.spec!.hybrid!.iamRolesAnywhere = { roleArn: "x" };
    expect(nodeadmProblem(both)).toMatch(/Only one/);
    const noRegion = render("A".repeat(20));
    delete noRegion.spec!.cluster!.region;
    expect(nodeadmProblem(noRegion)).toMatch(/Region/);
    expect(nodeadmProblem({ ...render("A".repeat(20)), kind: "Node" })).toBe("kind");
  });
});
