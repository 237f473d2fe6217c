import { parse } from "yaml";

/**
 * nodeadm's own checks on a hybrid NodeConfig, restated for tests from its source
 * (github.com/aws/eks-hybrid: api/core.go for the group and kind, internal/node/hybrid/validator.go
 * for the rules). Returns the first problem, as nodeadm does, or undefined when nodeadm accepts it.
 */
const ACTIVATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ACTIVATION_CODE = /^.{20,250}$/;

export interface ParsedNodeConfig {
  apiVersion?: unknown;
  kind?: unknown;
  spec?: {
    cluster?: { name?: unknown; region?: unknown };
    kubelet?: { flags?: unknown };
    hybrid?: {
      ssm?: { activationCode?: unknown; activationId?: unknown };
      iamRolesAnywhere?: unknown;
    };
  };
}

/** Parses as nodeadm's YAML 1.1 reader would (sigs.k8s.io/yaml on go-yaml). */
export function parseNodeConfig(text: string): ParsedNodeConfig {
  return parse(text, { version: "1.1" }) as ParsedNodeConfig;
}

export function nodeadmProblem(config: ParsedNodeConfig): string | undefined {
  if (config.apiVersion !== "node.eks.aws/v1alpha1") return "apiVersion";
  if (config.kind !== "NodeConfig") return "kind";
  const spec = config.spec ?? {};
  const cluster = spec.cluster ?? {};
  if (typeof cluster.name !== "string" || cluster.name === "") return "Name is missing";
  if (typeof cluster.region !== "string" || cluster.region === "") return "Region is missing";
  const flags = spec.kubelet?.flags ?? [];
  if (!Array.isArray(flags) || !flags.every((f) => typeof f === "string")) return "flags are strings";
  if (flags.some((f: string) => f.startsWith("--hostname-override="))) return "hostname-override";
  const ssm = spec.hybrid?.ssm;
  const ira = spec.hybrid?.iamRolesAnywhere;
  if (!ssm && !ira) return "Either IAMRolesAnywhere or SSM must be provided";
  if (ssm && ira) return "Only one of IAMRolesAnywhere or SSM";
  if (ira) return "not an SSM config";
  const code = ssm!.activationCode;
  const id = ssm!.activationId;
  if (typeof code !== "string" || code === "") return "ActivationCode is missing";
  if (typeof id !== "string" || id === "") return "ActivationID is missing";
  if (!ACTIVATION_CODE.test(code)) return "ActivationCode must be 20-250 characters";
  if (!ACTIVATION_ID.test(id)) return "ActivationID format";
  return undefined;
}
