import { Aws, CfnRule, Fn, RemovalPolicy, Stack, Token, Validations } from "aws-cdk-lib";
import { ManagedPolicy, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";
import { EKS_CLUSTER_ARN_TAG } from "../../src/core/eks-pool";
import { checkEksRegions, poolsFileSchema, type PoolConfig } from "../../src/core/pool-config";

export interface HybridNodesRoleProps {
  /** The EKS clusters whose hybrid nodes assume this role (`eksClusterArn` of the pools). */
  readonly clusterArns: readonly string[];
}

/**
 * The Amazon EKS Hybrid Nodes IAM role for SSM credentials, as the EKS user guide describes it
 * (https://docs.aws.amazon.com/eks/latest/userguide/hybrid-nodes-creds.html) and eks-hybrid's
 * example template creates it (github.com/aws/eks-hybrid: example/hybrid-ssm-cfn.yaml), narrowed to
 * the given clusters: SSM may pass it to a node only for this account and Region; a node may
 * describe only its cluster (nodeadm init) and deregister only managed nodes tagged with that
 * cluster's ARN (nodeadm uninstall).
 *
 * The operator still grants the role access to the cluster: an EKS access entry of type
 * HYBRID_LINUX (docs/eks.md).
 */
export class HybridNodesRole extends Construct {
  readonly role: Role;

  constructor(scope: Construct, id: string, props: HybridNodesRoleProps) {
    super(scope, id);
    const clusterArns = [...new Set(props.clusterArns)].sort();
    const { partition, region, account } = {
      partition: Aws.PARTITION,
      region: Aws.REGION,
      account: Aws.ACCOUNT_ID,
    };
    this.role = new Role(this, "Role", {
      description: "Amazon EKS Hybrid Nodes role, assumed through SSM hybrid activations of the broker",
      assumedBy: new ServicePrincipal("ssm.amazonaws.com", {
        conditions: {
          // Confused-deputy protection: only SSM acting for this account and Region.
          StringEquals: { "aws:SourceAccount": account },
          ArnLike: { "aws:SourceArn": `arn:${partition}:ssm:${region}:${account}:*` },
        },
      }),
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName("AmazonSSMManagedInstanceCore"),
        ManagedPolicy.fromAwsManagedPolicyName("AmazonEC2ContainerRegistryPullOnly"),
      ],
      inlinePolicies: {
        HybridNodes: new PolicyDocument({
          statements: [
            new PolicyStatement({
              sid: "DescribeOwnCluster",
              actions: ["eks:DescribeCluster"],
              resources: clusterArns,
            }),
            // nodeadm uninstall looks its node up before deregistering it
            // (eks-hybrid: internal/ssm/aws.go); the action has no resource type.
            new PolicyStatement({
              sid: "FindOwnNode",
              actions: ["ssm:DescribeInstanceInformation"],
              resources: ["*"],
            }),
            new PolicyStatement({
              sid: "DeregisterOwnClusterNodesOnly",
              actions: ["ssm:DeregisterManagedInstance"],
              resources: [`arn:${partition}:ssm:${region}:${account}:managed-instance/*`],
              // SSM copies the activation's tags onto the node; the broker tags every activation
              // of an EKS pool with its cluster's ARN.
              conditions: { StringEquals: { [`ssm:resourceTag/${EKS_CLUSTER_ARN_TAG}`]: clusterArns } },
            }),
          ],
        }),
      },
    });
    // The cluster's nodes keep taking their credentials through this role (and its access entry
    // names it) after the broker is gone: deleting the stack must not cut them off.
    this.role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(this.role).acknowledge(
      {
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
        reason:
          "AmazonSSMManagedInstanceCore is the AWS-maintained minimum for SSM Agent, which the EKS user guide requires of the hybrid nodes role; a copy would not follow the agent's changes.",
      },
      {
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly]",
        reason:
          "AmazonEC2ContainerRegistryPullOnly is what the EKS user guide gives hybrid nodes to pull EKS add-on and pause images from ECR repositories owned by AWS accounts that are not known in advance.",
      },
      {
        id: "AwsSolutions-IAM5[Resource::*]",
        reason:
          "ssm:DescribeInstanceInformation has no resource type; nodeadm uninstall calls it to find its own node before deregistering it.",
      },
      {
        id: "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:managed-instance/*]",
        reason:
          "Managed node IDs are assigned at registration; ssm:DeregisterManagedInstance is confined by the ssm:resourceTag/EKSClusterARN condition to nodes of this role's clusters.",
      },
    );
  }
}

/**
 * The clusters of EKS pools that name no iamRole, i.e. the pools that get the created hybrid nodes
 * role. An invalid document yields none: the broker's own validation reports it right after.
 */
export function clustersNeedingHybridNodesRole(poolsDocument: unknown): string[] {
  const parsed = poolsFileSchema.safeParse(poolsDocument ?? {});
  if (!parsed.success) return [];
  return Object.values(parsed.data.pools).flatMap((p) =>
    p.eksClusterArn !== undefined && p.iamRole === undefined ? [p.eksClusterArn] : [],
  );
}

/**
 * nodeadm registers hybrid nodes with SSM in the cluster's Region, so an EKS pool's cluster must be
 * in the broker's Region (src/core/pool-config.ts, checkEksRegions). Checked at synth when the
 * stack's Region is known; an environment-agnostic stack carries a CloudFormation rule instead, so
 * deploying into another Region fails before any resource is created.
 */
export function requireClustersInStackRegion(scope: Construct, pools: ReadonlyMap<string, PoolConfig>): void {
  const stack = Stack.of(scope);
  if (!Token.isUnresolved(stack.region)) {
    checkEksRegions(pools, stack.region);
    return;
  }
  const regions = [...new Set([...pools.values()].flatMap((p) => (p.eks ? [p.eks.cluster.region] : [])))];
  if (regions.length === 0) return;
  new CfnRule(scope, "EksClustersInStackRegion", {
    assertions: regions.map((region) => ({
      assert: Fn.conditionEquals(Aws.REGION, region),
      assertDescription: `An EKS pool's cluster is in ${region}: deploy the broker in ${region}, where nodeadm registers its nodes.`,
    })),
  });
}
