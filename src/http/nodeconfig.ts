import { Document } from "yaml";
import { InvalidPoolNameError, NotAnEksPoolError, PoolNotFoundError } from "../core/errors";
import { nodeLabelsFlag } from "../core/eks-pool";
import { DEFAULT_POOL, POOL_NAME_PATTERN, type PoolConfig } from "../core/pool-config";
import type { Logger } from "../core/ports";
import type { RefusedPairs } from "../core/refused-pairs";
import type { ActivationPair } from "../core/ports";
import type { Vendor } from "../core/vend";
import type { HttpRequest, HttpResponse } from "./handler";

/**
 * `GET /nodeconfig.yaml?pool=NAME`: a nodeadm NodeConfig for an EKS Hybrid Nodes pool, holding a
 * fresh pair. It is a vend like any other (one slot, never cached, the code never logged).
 *
 * The document follows nodeadm's API (github.com/aws/eks-hybrid: api/v1alpha1/nodeconfig_types.go,
 * group "node.eks.aws" in api/core.go) and passes its hybrid validator
 * (internal/node/hybrid/validator.go): cluster name and Region set, SSM and not IAM Roles Anywhere,
 * no --hostname-override.
 */
export const NODECONFIG_API_VERSION = "node.eks.aws/v1alpha1";
export const NODECONFIG_KIND = "NodeConfig";

export interface NodeConfigRouteDependencies {
  readonly vendor: Vendor;
  readonly pools: ReadonlyMap<string, PoolConfig>;
  readonly logger: Logger;
  /** `?refused=<ActivationId>` from install-eks.sh, checked as on GET / (src/core/refused-pairs.ts). */
  readonly refusedPairs?: Pick<RefusedPairs, "heal">;
}

export function createNodeConfigRoute(
  deps: NodeConfigRouteDependencies,
): (request: HttpRequest) => Promise<HttpResponse> {
  return async (request) => {
    const name = request.query.pool ?? DEFAULT_POOL;
    // Every refusal comes before the vend: a request that cannot get a NodeConfig takes no slot.
    if (!POOL_NAME_PATTERN.test(name)) throw new InvalidPoolNameError(name);
    const pool = deps.pools.get(name);
    if (!pool) throw new PoolNotFoundError(name);
    if (!pool.eks) throw new NotAnEksPoolError(name);
    const refused = request.query.refused;
    if (refused !== undefined && deps.refusedPairs) await deps.refusedPairs.heal(name, refused);
    const { pair } = await deps.vendor.vend(name);
    deps.logger.info("vended", { pool: pair.pool, activationId: pair.activationId, as: "nodeconfig" });
    return {
      status: 200,
      headers: { "Content-Type": "application/yaml; charset=utf-8", "Cache-Control": "no-store" },
      body: renderNodeConfig(pool, pair),
    };
  };
}

/**
 * The YAML text of a NodeConfig; the `yaml` library does all quoting and escaping. Every string
 * value is double-quoted: nodeadm reads the file with sigs.k8s.io/yaml, whose scalar rules are
 * wider than YAML 1.1's (it drops `_` and reads `0X`, `0o` and `0O` numbers), so an unquoted
 * cluster named `0X1F`, `0o17` or `1e3_0` would reach nodeadm as 31, 15 or 1e+30. A quoted scalar
 * is a string under every YAML reader.
 */
export function renderNodeConfig(pool: PoolConfig, pair: ActivationPair): string {
  const eks = pool.eks;
  if (!eks) throw new NotAnEksPoolError(pool.name);
  const flags = [...eks.kubeletFlags, ...nodeLabelsFlag(eks.nodeLabels)];
  const doc = new Document(
    {
      apiVersion: NODECONFIG_API_VERSION,
      kind: NODECONFIG_KIND,
      spec: {
        cluster: { name: eks.cluster.name, region: eks.cluster.region },
        ...(flags.length > 0 && { kubelet: { flags } }),
        hybrid: { ssm: { activationCode: pair.activationCode, activationId: pair.activationId } },
      },
    },
    { version: "1.1" },
  );
  doc.commentBefore =
    ` nodeadm NodeConfig from pool '${pool.name}'; the activation expires` +
    ` ${new Date(pair.expiresAt).toISOString()}. Keep it root-only and delete it after nodeadm init.`;
  return doc.toString({ defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" });
}
