import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors";
import { nodeLabelsFlag, parseEksClusterArn } from "../../src/core/eks-pool";
import { checkEksRegions, parsePools } from "../../src/core/pool-config";
import { loadSettings } from "../../src/settings";

const ARN = "arn:aws:eks:eu-west-1:123456789012:cluster/prod-hybrid_1";
const roles = { iamRole: "NodeRole", eksIamRole: "HybridNodesRole" };
const eksPool = (extra: Record<string, unknown> = {}) => ({
  pools: { k8s: { eksClusterArn: ARN, ...extra } },
});

describe("eksClusterArn", () => {
  it("splits a cluster ARN into its parts", () => {
    expect(parseEksClusterArn(ARN)).toEqual({
      arn: ARN,
      partition: "aws",
      region: "eu-west-1",
      account: "123456789012",
      name: "prod-hybrid_1",
    });
    expect(parseEksClusterArn("arn:aws-us-gov:eks:us-gov-west-1:123456789012:cluster/c")).toMatchObject({
      partition: "aws-us-gov",
    });
    expect(parseEksClusterArn("arn:aws-cn:eks:cn-north-1:123456789012:cluster/c")).toMatchObject({
      region: "cn-north-1",
    });
  });

  it.each([
    ["arn:aws:eks:eu-west-1:123456789012:nodegroup/c/n/1", "not an EKS cluster ARN"],
    ["arn:aws:ecs:eu-west-1:123456789012:cluster/c", "not an EKS cluster ARN"],
    ["prod-hybrid", "not an EKS cluster ARN"],
    ["urn:aws:eks:eu-west-1:123456789012:cluster/c", "not an EKS cluster ARN"],
    ["arn:aws:eks:eu-west-1:123456789012:cluster/c:extra", "not an EKS cluster ARN"],
    ["arn:azure:eks:eu-west-1:123456789012:cluster/c", "unknown partition 'azure'"],
    ["arn:aws:eks:Europe:123456789012:cluster/c", "'Europe' is not a Region"],
    ["arn:aws:eks::123456789012:cluster/c", "'' is not a Region"],
    ["arn:aws:eks: eu-west-1:123456789012:cluster/c", "' eu-west-1' is not a Region"],
    ["arn:aws:eks:eu-west-1 :123456789012:cluster/c", "'eu-west-1 ' is not a Region"],
    ["arn:aws:eks:eu-west-123:123456789012:cluster/c", "'eu-west-123' is not a Region"],
    ["arn:aws:eks:cn-north-1:123456789012:cluster/c", "not in partition 'aws'"],
    ["arn:aws-cn:eks:eu-west-1:123456789012:cluster/c", "not in partition 'aws-cn'"],
    ["arn:aws:eks:eu-west-1:12345678901:cluster/c", "12 digits"],
    ["arn:aws:eks:eu-west-1:12345678901a:cluster/c", "12 digits"],
    ["arn:aws:eks:eu-west-1:1234567890123:cluster/c", "12 digits"],
    ["arn:aws:eks:eu-west-1:123456789012:cluster/", "cluster name ''"],
    ["arn:aws:eks:eu-west-1:123456789012:cluster/-c", "cluster name '-c'"],
    ["arn:aws:eks:eu-west-1:123456789012:cluster/a.b", "cluster name 'a.b'"],
    [`arn:aws:eks:eu-west-1:123456789012:cluster/${"c".repeat(101)}`, "1-100"],
  ])("refuses %s in one line naming the field and the reason", (arn, reason) => {
    const attempt = () => parsePools(eksPool({ eksClusterArn: arn }), roles);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(`pools.k8s.eksClusterArn: `);
    expect(attempt).toThrow(reason);
    expect(() => attempt()).not.toThrow(/\n/);
  });

  it("says what a cluster ARN looks like when the input is not one", () => {
    expect(parseEksClusterArn("prod-hybrid")).toEqual({
      error: "not an EKS cluster ARN (arn:<partition>:eks:<region>:<12-digit account>:cluster/<name>)",
    });
  });

  it.each([
    ["aws-iso", "us-iso-east-1"],
    ["aws-iso-b", "us-isob-east-1"],
    ["aws-iso-e", "eu-isoe-west-1"],
    ["aws-iso-f", "us-isof-south-1"],
    ["aws-eusc", "eusc-de-east-1"],
    ["aws", "ap-southeast-12"],
  ])("accepts partition %s with Region %s", (partition, region) => {
    expect(parseEksClusterArn(`arn:${partition}:eks:${region}:123456789012:cluster/c`)).toMatchObject({
      partition,
      region,
    });
  });

  // A Region belongs to a partition by its prefix, not by the prefix appearing somewhere in it.
  it.each([
    ["aws-cn", "eu-cn-north-1"],
    ["aws-us-gov", "eu-us-gov-west-1"],
    ["aws-iso", "eu-us-iso-east-1"],
    ["aws-iso-b", "eu-us-isob-east-1"],
    ["aws-iso-e", "us-eu-isoe-west-1"],
    ["aws-iso-f", "eu-us-isof-south-1"],
    ["aws-eusc", "eu-eusc-de-east-1"],
  ])("refuses partition %s with Region %s", (partition, region) => {
    expect(parseEksClusterArn(`arn:${partition}:eks:${region}:123456789012:cluster/c`)).toEqual({
      error: `Region '${region}' is not in partition '${partition}'`,
    });
  });

  it("accepts a 100-character cluster name", () => {
    const arn = `arn:aws:eks:eu-west-1:123456789012:cluster/${"c".repeat(100)}`;
    expect(parsePools(eksPool({ eksClusterArn: arn }), roles).get("k8s")?.eks?.cluster.name).toHaveLength(
      100,
    );
  });
});

describe("EKS pools", () => {
  it("tag every activation with EKSClusterARN and default to the hybrid nodes role", () => {
    const pools = parsePools(eksPool({ tags: { team: "k8s" } }), roles);
    expect(pools.get("k8s")).toMatchObject({
      iamRole: "HybridNodesRole",
      tags: { team: "k8s", EKSClusterARN: ARN },
      eks: { cluster: { name: "prod-hybrid_1", region: "eu-west-1" }, kubeletFlags: [], nodeLabels: {} },
    });
    // Other pools keep the plain node role and no EKS tag.
    expect(pools.get("default")).toMatchObject({ iamRole: "NodeRole", tags: {} });
    expect(pools.get("default")?.eks).toBeUndefined();
  });

  it("keep an explicitly named role", () => {
    expect(parsePools(eksPool({ iamRole: "OtherHybridRole" }), roles).get("k8s")?.iamRole).toBe(
      "OtherHybridRole",
    );
  });

  it("never fall back to the plain node role when no hybrid nodes role is configured", () => {
    expect(() => parsePools(eksPool(), { iamRole: "NodeRole" })).toThrow(
      "pools.k8s.iamRole: required (no hybrid nodes role is configured)",
    );
  });

  it.each([
    [{ tags: { EKSClusterARN: "arn:other" } }, "pools.k8s.tags.EKSClusterARN"],
    [{ tags: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`t${i}`, "v"])) }, "pools.k8s.tags"],
    [{ kubeletFlags: ["--hostname-override=node1"] }, "--hostname-override is not allowed"],
    [{ kubeletFlags: ["--node-labels=a=b"] }, "set nodeLabels instead"],
    [{ kubeletFlags: ["max-pods=10"] }, "pools.k8s.kubeletFlags.0: a kubelet flag such as --max-pods=110"],
    [{ kubeletFlags: ["x--max-pods=10"] }, "pools.k8s.kubeletFlags.0: a kubelet flag such as --max-pods=110"],
    [{ kubeletFlags: ["--max-pods!"] }, "pools.k8s.kubeletFlags.0: a kubelet flag such as --max-pods=110"],
    [{ kubeletFlags: ["--max-pods=10\n--hostname-override=x"] }, "pools.k8s.kubeletFlags.0"],
    [{ nodeLabels: { "bad key": "v" } }, "pools.k8s.nodeLabels"],
    [{ nodeLabels: { "Example.com/x": "v" } }, "lower-case DNS subdomain"],
    [{ nodeLabels: { "/role": "edge" } }, "a label prefix is a lower-case DNS subdomain"],
    [{ nodeLabels: { "example.com./role": "edge" } }, "a label prefix is a lower-case DNS subdomain"],
    [{ nodeLabels: { [`${"a".repeat(254)}/role`]: "edge" } }, "a label prefix is a lower-case DNS subdomain"],
    [
      { nodeLabels: { "kubernetes.io/role": "edge" } },
      "the kubelet may not set labels under 'kubernetes.io/' (only kubelet.kubernetes.io, node.kubernetes.io)",
    ],
    [{ nodeLabels: { "x.k8s.io/role": "edge" } }, "may not set labels under 'x.k8s.io/'"],
    [{ nodeLabels: { site: "a,b=c" } }, "label values"],
    [{ nodeLabels: { site: "x".repeat(64) } }, "label values"],
  ])("refuse %j", (extra, message) => {
    expect(() => parsePools(eksPool(extra), roles)).toThrow(message);
  });

  // nodeadm writes the flags into one NODEADM_KUBELET_ARGS="…" line: these would split or end it.
  it.each([
    "--node-ip=10.0.0.1 --v=9",
    "--eviction-hard=a\tb",
    '--x="y"',
    "--x='y'",
    "--x=`id`",
    "--x=a\\b",
    "--x=a\u00a0b",
  ])("refuse the kubelet flag %j (whitespace, quotes or backslashes)", (flag) => {
    expect(() => parsePools(eksPool({ kubeletFlags: [flag] }), roles)).toThrow(
      "pools.k8s.kubeletFlags.0: kubelet flags may not hold whitespace, quotes or backslashes",
    );
  });

  it("accept kubelet flags and labels the kubelet may set on itself", () => {
    const pool = parsePools(
      eksPool({
        kubeletFlags: ["--max-pods=58", "--register-with-taints=edge=true:NoSchedule"],
        nodeLabels: { site: "paris-1", "node.kubernetes.io/exclude-from-external-load-balancers": "" },
      }),
      roles,
    ).get("k8s");
    expect(pool?.eks?.kubeletFlags).toEqual(["--max-pods=58", "--register-with-taints=edge=true:NoSchedule"]);
    expect(nodeLabelsFlag(pool!.eks!.nodeLabels)).toEqual([
      "--node-labels=site=paris-1,node.kubernetes.io/exclude-from-external-load-balancers=",
    ]);
    expect(nodeLabelsFlag({})).toEqual([]);
  });

  it("accept flags without a value, and labels of every shape the kubelet takes", () => {
    const labels = {
      zone: "a",
      "team.a.example.com/owner": "platform",
      [`${"a".repeat(253)}/long-prefix`]: "yes",
      "kubelet.kubernetes.io/role": "edge",
      "feature.node.kubernetes.io/gpu": "true",
      "kubernetes.io.example.com/tier": "edge",
    };
    const pool = parsePools(
      eksPool({ kubeletFlags: ["--rotate-server-certificates"], nodeLabels: labels }),
      roles,
    ).get("k8s");
    expect(pool?.eks).toMatchObject({ kubeletFlags: ["--rotate-server-certificates"], nodeLabels: labels });
  });

  it("refuse kubelet flags and labels on a pool without a cluster", () => {
    expect(() => parsePools({ pools: { plain: { nodeLabels: { a: "b" } } } }, roles)).toThrow(
      "pools.plain.eksClusterArn: kubeletFlags and nodeLabels need eksClusterArn",
    );
  });

  it("must be in the broker's Region, because nodeadm registers nodes in the cluster's", () => {
    const pools = parsePools(eksPool(), roles);
    expect(() => checkEksRegions(pools, "eu-west-1")).not.toThrow();
    expect(() => checkEksRegions(pools, "us-east-1")).toThrow(
      "pools.k8s.eksClusterArn: the cluster is in eu-west-1 but this broker creates activations in us-east-1",
    );
  });
});

describe("start-up", () => {
  const env = {
    AWS_REGION: "eu-west-1",
    BROKER_TABLE_NAME: "pools",
    BROKER_DEFAULT_IAM_ROLE: "NodeRole",
    BROKER_HYBRID_NODES_ROLE: "HybridNodesRole",
  };

  it("reads the hybrid nodes role from BROKER_HYBRID_NODES_ROLE", () => {
    const s = loadSettings({ ...env, BROKER_POOLS: JSON.stringify(eksPool()) });
    expect(s.pools.get("k8s")?.iamRole).toBe("HybridNodesRole");
  });

  it.each([
    [{ BROKER_POOLS: JSON.stringify(eksPool({ eksClusterArn: "arn:aws:eks:eu-west-1:1234:cluster/c" })) }],
    [{ BROKER_POOLS: JSON.stringify(eksPool()), AWS_REGION: "eu-central-1" }],
  ])("fails with one clear line on a bad cluster ARN or Region (%#)", (extra) => {
    let message = "";
    try {
      loadSettings({ ...env, ...extra });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^Invalid pool configuration: pools\.k8s\.eksClusterArn: .+$/);
    expect(message).not.toContain("\n");
  });
});
