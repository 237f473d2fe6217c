import { z } from "zod";

/**
 * EKS Hybrid Nodes pools: a pool whose activations register Kubernetes nodes of one EKS cluster.
 *
 * nodeadm (github.com/aws/eks-hybrid) takes its AWS credentials from an SSM hybrid activation. The
 * cluster's hybrid nodes role may deregister only managed nodes tagged `EKSClusterARN=<arn>`
 * (`nodeadm uninstall` relies on it), and SSM copies an activation's tags onto the nodes it
 * registers, so every activation of such a pool carries that tag.
 * https://docs.aws.amazon.com/eks/latest/userguide/hybrid-nodes-creds.html
 */

/** The tag key nodeadm's IAM conditions expect (eks-hybrid: example/hybrid-ssm-cfn.yaml). */
export const EKS_CLUSTER_ARN_TAG = "EKSClusterARN";

export interface EksCluster {
  readonly arn: string;
  readonly partition: string;
  readonly region: string;
  readonly account: string;
  readonly name: string;
}

export interface EksPoolSettings {
  readonly cluster: EksCluster;
  /** Extra kubelet command-line flags, appended by nodeadm to its own. */
  readonly kubeletFlags: readonly string[];
  /** Labels the kubelet puts on its Node object (`--node-labels`). */
  readonly nodeLabels: Readonly<Record<string, string>>;
}

// Partitions with an EKS service principal; each partition's Regions carry its prefix.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
const PARTITION_REGION_PREFIX: Readonly<Record<string, RegExp>> = {
  aws: /^(?!cn-|us-gov-|us-iso)/,
  "aws-cn": /^cn-/,
  "aws-us-gov": /^us-gov-/,
  "aws-iso": /^us-iso-/,
  "aws-iso-b": /^us-isob-/,
  "aws-iso-e": /^eu-isoe-/,
  "aws-iso-f": /^us-isof-/,
  "aws-eusc": /^eusc-/,
};
const REGION = /^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/;
const ACCOUNT = /^\d{12}$/;
// CreateCluster `name`: 1–100 characters, alphanumerics, hyphens and underscores, starting with an
// alphanumeric. https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateCluster.html
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const ARN_SHAPE = "arn:<partition>:eks:<region>:<12-digit account>:cluster/<name>";

/** The cluster an EKS ARN names, or the one reason it is not a usable cluster ARN. */
export function parseEksClusterArn(arn: string): EksCluster | { error: string } {
  const parts = arn.split(":");
  if (parts.length !== 6 || parts[0] !== "arn" || parts[2] !== "eks" || !parts[5]!.startsWith("cluster/")) {
    return { error: `not an EKS cluster ARN (${ARN_SHAPE})` };
  }
  const [, partition, , region, account, resource] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const name = resource.slice("cluster/".length);
  const regionPrefix = PARTITION_REGION_PREFIX[partition];
  if (!regionPrefix) return { error: `unknown partition '${partition}' (${ARN_SHAPE})` };
  if (!REGION.test(region)) return { error: `'${region}' is not a Region name such as eu-west-1` };
  if (!regionPrefix.test(region)) return { error: `Region '${region}' is not in partition '${partition}'` };
  if (!ACCOUNT.test(account)) return { error: `the account must be 12 digits, got '${account}'` };
  if (!CLUSTER_NAME.test(name)) {
    return {
      error: `cluster name '${name}' must be 1-100 letters, digits, hyphens or underscores, starting with a letter or digit`,
    };
  }
  return { arn, partition, region, account, name };
}

export const eksClusterArnSchema = z
  .string()
  .max(2048)
  .superRefine((arn, ctx) => {
    const parsed = parseEksClusterArn(arn);
    if ("error" in parsed) ctx.addIssue({ code: "custom", message: parsed.error });
  });

// nodeadm refuses --hostname-override on hybrid nodes: the node name comes from the SSM managed
// instance ID (eks-hybrid: internal/node/hybrid/validator.go). Labels have their own setting so
// that they are validated as labels.
const FLAGS_OWNED_ELSEWHERE: Readonly<Record<string, string>> = {
  "hostname-override": "nodeadm names hybrid nodes after their managed instance ID and refuses it",
  "node-labels": "set nodeLabels instead",
};

// nodeadm joins the flags into one NODEADM_KUBELET_ARGS="…" line of a systemd environment file,
// which splits at whitespace and gives quotes and backslashes meaning: a value holding any of them
// would reach the kubelet as other arguments. Refused here (start-up and synth), not escaped.
const kubeletFlag = z
  .string()
  .max(1024)
  .regex(/^--[a-z0-9][a-z0-9-]*(=\P{Cc}*)?$/u, "a kubelet flag such as --max-pods=110")
  .refine((flag) => !/[\s"'`\\]/u.test(flag), "kubelet flags may not hold whitespace, quotes or backslashes")
  .superRefine((flag, ctx) => {
    const name = flag.slice(2).split("=")[0]!;
    const reason = FLAGS_OWNED_ELSEWHERE[name];
    if (reason) ctx.addIssue({ code: "custom", message: `--${name} is not allowed: ${reason}` });
  });

// Kubernetes label syntax: an optional DNS-subdomain prefix and "/", then a name of at most 63
// characters; values are empty or names. https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// A kubelet may set labels in the kubernetes.io and k8s.io namespaces only under these prefixes;
// it refuses to start otherwise. https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/
const KUBELET_SELF_LABEL_PREFIXES = ["kubelet.kubernetes.io", "node.kubernetes.io"];

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = key.slice(slash + 1); // the whole key when there is no slash (slash is -1)
  if (!LABEL_NAME.test(name)) return "label names are 1-63 letters, digits, '-', '_' or '.'";
  if (prefix === undefined) return undefined;
  if (!DNS_SUBDOMAIN.test(prefix)) return "a label prefix is a lower-case DNS subdomain";
  const reserved = /(^|\.)(kubernetes\.io|k8s\.io)$/.test(prefix);
  if (reserved && !KUBELET_SELF_LABEL_PREFIXES.some((p) => prefix === p || prefix.endsWith(`.${p}`))) {
    return `the kubelet may not set labels under '${prefix}/' (only ${KUBELET_SELF_LABEL_PREFIXES.join(", ")})`;
  }
  return undefined;
}

const labelKey = z.string().superRefine((key, ctx) => {
  const problem = labelKeyProblem(key);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
const labelValue = z
  .string()
  .regex(
    /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/,
    "label values are 0-63 letters, digits, '-', '_' or '.'",
  );

/** The EKS fields of a pool's settings (merged into the pool schema in pool-config.ts). */
export const eksPoolFields = {
  /** The EKS cluster whose hybrid nodes this pool registers; makes the pool an EKS pool. */
  eksClusterArn: eksClusterArnSchema.optional(),
  kubeletFlags: z.array(kubeletFlag).max(50).optional(),
  nodeLabels: z.record(labelKey, labelValue).optional(),
};

/** The single `--node-labels` flag for a label map, or nothing when it is empty. */
export function nodeLabelsFlag(labels: Readonly<Record<string, string>>): string[] {
  const entries = Object.entries(labels);
  // Keys and values cannot hold ',' or '=' (label syntax above), so the join is unambiguous.
  return entries.length === 0 ? [] : [`--node-labels=${entries.map(([k, v]) => `${k}=${v}`).join(",")}`];
}
