import { Aws, type CfnCondition, Fn, Token } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { ConfigError } from "../../src/core/errors";
import {
  RESERVED_TAG_PREFIX,
  parsePools,
  poolsFileSchema,
  type PoolConfig,
} from "../../src/core/pool-config";
import { requireClustersInStackRegion } from "./hybrid-nodes-role";

/**
 * The pools a deployment serves, as the broker function and its IAM policy need them: validated
 * with the broker's own schema at synth (a bad pool fails `cdk synth`, not the first vend), the
 * document for the function's environment, and the roles and tag keys the policy must allow.
 */
export interface PoolsOptions {
  /** The pools document, `{"pools": {...}}`, validated here with the broker's own schema. @default {} */
  readonly pools?: unknown;
  /**
   * Pools chosen at deploy time (the CloudFormation release): the document as a parameter, which
   * the broker validates when it starts, and the IAM scope it needs, which synth cannot derive.
   * Replaces `pools`.
   */
  readonly poolsParameter?: PoolsParameter;
}

export interface PoolsParameter {
  /** The `{"pools": {...}}` JSON document. */
  readonly document: string;
  /** Roles (ARNs) the pools name besides the node role, for `iam:PassRole`: a list token. */
  readonly roleArns: string[];
  /** Tag keys the pools put on activations besides `activation-broker:*`: a list token. */
  readonly tagKeys: string[];
  /** Whether `roleArns` / `tagKeys` are non-empty (CloudFormation conditions). */
  readonly hasRoleArns: CfnCondition;
  readonly hasTagKeys: CfnCondition;
}

export interface BrokerPoolsProps extends PoolsOptions {
  /** The role pools without an `iamRole` get. */
  readonly nodeRoleName: string;
  /** The role EKS pools without an `iamRole` get, when there is one. */
  readonly hybridNodesRoleName?: string;
}

export interface BrokerPools {
  /** Validated at synth; empty when the pools come from a parameter. */
  readonly pools: ReadonlyMap<string, PoolConfig>;
  /** `BROKER_POOLS`: the document as the function reads it. */
  readonly document: string;
  /** Role ARNs the function may pass to SSM. */
  readonly passRoleArns: string[];
  /** Tag keys the function may put on activations. */
  readonly allowedTagKeys: string[];
  /** Whether any pool registers EKS hybrid nodes (their routes exist only then). */
  readonly eksPools: boolean;
}

/** Lambda rejects a function whose environment exceeds 4 KB in total; leave room for the rest. */
const MAX_POOLS_ENV_BYTES = 3072;

export function brokerPools(scope: Construct, props: BrokerPoolsProps): BrokerPools {
  const pools = parsePools(props.poolsParameter ? {} : (props.pools ?? {}), {
    iamRole: props.nodeRoleName,
    eksIamRole: props.hybridNodesRoleName,
  });
  requireClustersInStackRegion(scope, pools);
  const document = props.poolsParameter?.document ?? JSON.stringify(poolsFileSchema.parse(props.pools ?? {}));
  if (!props.poolsParameter && Buffer.byteLength(document) > MAX_POOLS_ENV_BYTES) {
    throw new ConfigError(
      `Invalid pool configuration: pools: ${Buffer.byteLength(document)} bytes of JSON exceed the ${MAX_POOLS_ENV_BYTES} bytes a Lambda environment leaves for them`,
    );
  }
  const roleArn = (name: string) => `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/${name}`;
  const reserved = `${RESERVED_TAG_PREFIX}*`;
  const scopeOf = props.poolsParameter
    ? deployTimeScope(props.poolsParameter, roleArn(props.nodeRoleName), reserved)
    : {
        passRoleArns: [...new Set([...pools.values()].map((p) => p.iamRole))].map(roleArn),
        allowedTagKeys: [
          reserved,
          ...[...new Set([...pools.values()].flatMap((p) => Object.keys(p.tags)))].sort(),
        ],
      };
  return { pools, document, ...scopeOf, eksPools: [...pools.values()].some((p) => p.eks) };
}

/** The node role plus the parameter's roles; `activation-broker:*` plus its tag keys. */
function deployTimeScope(
  p: PoolsParameter,
  nodeRoleArn: string,
  reserved: string,
): { passRoleArns: string[]; allowedTagKeys: string[] } {
  const withList = (first: string, list: string[], has: CfnCondition): string[] =>
    Token.asList(
      Fn.conditionIf(has.logicalId, Fn.split(",", Fn.join(",", [first, Fn.join(",", list)])), [first]),
    );
  return {
    passRoleArns: withList(nodeRoleArn, p.roleArns, p.hasRoleArns),
    allowedTagKeys: withList(reserved, p.tagKeys, p.hasTagKeys),
  };
}
