import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_HYBRID_NODES_ROLE } from "../../src/entry/local-stack";
import { awsCli } from "../support/aws-cli";
import { aLocalStack, pools, registerNode } from "../support/local";
import { nodeadmProblem, parseNodeConfig } from "../support/nodeadm-rules";
import { TOOLS, missingTools } from "../support/tools";

const ARN = "arn:aws:eks:us-east-1:123456789012:cluster/edge-cluster";

/**
 * An EKS pool end to end over the wire: broker, emulated SSM and DynamoDB, and the real AWS CLI
 * reading what SSM holds, as an operator would.
 */
const skip = missingTools(TOOLS.awsCli);

describe.skipIf(skip)(`EKS Hybrid Nodes through the local stack${skip}`, () => {
  let stack: Awaited<ReturnType<typeof aLocalStack>>;
  let cli: ReturnType<typeof awsCli>;

  beforeAll(async () => {
    stack = await aLocalStack({
      BROKER_POOLS: pools({ k8s: { eksClusterArn: ARN, registrationLimit: 5, nodeLabels: { site: "lab" } } }),
    });
    cli = awsCli(stack.emulatorUrl, stack.settings.region);
  });
  afterAll(async () => {
    cli?.dispose();
    await stack?.close();
  });

  it("vends a NodeConfig whose activation and registered node carry EKSClusterARN", async () => {
    const res = await stack.get("/nodeconfig.yaml?pool=k8s");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/yaml; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const config = parseNodeConfig(await res.text());
    // The emulator's pair meets nodeadm's rules, as real SSM's does (lower-case UUID, 20 chars).
    expect(nodeadmProblem(config)).toBeUndefined();
    expect(config.spec?.cluster).toEqual({ name: "edge-cluster", region: "us-east-1" });
    const ssm = config.spec!.hybrid!.ssm! as { activationId: string; activationCode: string };

    const { ActivationList } = await cli.json<{ ActivationList: Record<string, unknown>[] }>(
      "ssm",
      "describe-activations",
      "--filters",
      `FilterKey=ActivationIds,FilterValues=${ssm.activationId}`,
    );
    expect(ActivationList[0]).toMatchObject({
      IamRole: LOCAL_HYBRID_NODES_ROLE,
      Tags: expect.arrayContaining([{ Key: "EKSClusterARN", Value: ARN }]),
    });

    // What nodeadm init does with the pair: the SSM Agent registers the node.
    const registered = await registerNode(stack.emulatorUrl, {
      ActivationId: ssm.activationId,
      ActivationCode: ssm.activationCode,
    });
    expect(registered.status).toBe(200);
    const { TagList } = await cli.json<{ TagList: { Key: string; Value: string }[] }>(
      "ssm",
      "list-tags-for-resource",
      "--resource-type",
      "ManagedInstance",
      "--resource-id",
      registered.body.InstanceId!,
    );
    expect(TagList).toContainEqual({ Key: "EKSClusterARN", Value: ARN });
    expect(stack.logger.text()).not.toContain(ssm.activationCode);
  });

  it("refuses the default pool, which has no cluster", async () => {
    const res = await stack.get("/nodeconfig.yaml");
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("NotAnEksPool");
  });
});
