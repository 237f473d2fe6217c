import { basename } from "node:path";
import {
  CfnResource,
  Stack,
  Validations,
  type IPolicyValidationContextBeta1,
  type IPolicyValidationPluginBeta1,
  type PolicyValidationPluginReportBeta1,
} from "aws-cdk-lib";
import { CfnGuardValidator } from "@cdklabs/cdk-validator-cfnguard";
import type { IConstruct } from "constructs";

/**
 * cfn-guard with the Control Tower rule set (binary and rules ship in
 * @cdklabs/cdk-validator-cfnguard), honouring `Validations.of(x).acknowledge({ id: <rule name> })`
 * on the resource or any scope above it, as cdk-nag does. The guard plugin itself ignores
 * acknowledgments, so without this every accepted finding would have to be a disabled rule,
 * for every resource at once.
 */
export class ControlTowerGuard implements IPolicyValidationPluginBeta1 {
  readonly name = "control-tower-guard";
  private readonly guard = new CfnGuardValidator();
  readonly ruleIds = this.guard.ruleIds;

  validate(context: IPolicyValidationContextBeta1): PolicyValidationPluginReportBeta1 {
    const report = this.guard.validate(context);
    const resources = resourcesByTemplateAndId(context.appConstruct);
    const violations = report.violations
      .map((v) => ({
        ...v,
        violatingResources: v.violatingResources.filter((r) => {
          const resource = resources.get(`${basename(r.templatePath)}#${r.resourceLogicalId}`);
          return !resource || !isAcknowledged(resource, v.ruleName);
        }),
      }))
      .filter((v) => v.violatingResources.length > 0);
    return { success: violations.length === 0, violations };
  }
}

function resourcesByTemplateAndId(app: IConstruct): Map<string, IConstruct> {
  const map = new Map<string, IConstruct>();
  for (const c of app.node.findAll()) {
    if (!(c instanceof CfnResource)) continue;
    const stack = Stack.of(c);
    map.set(`${stack.templateFile}#${stack.resolve(c.logicalId)}`, c);
  }
  return map;
}

/** CDK records acknowledged ids that name no plugin under `Annotation::`; accept either form. */
function isAcknowledged(resource: IConstruct, rule: string): boolean {
  return resource.node.scopes.some((scope) =>
    scope.node.metadata.some((m) => {
      if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) return false;
      const ids = m.data as Record<string, string>;
      return Object.hasOwn(ids, rule) || Object.hasOwn(ids, `Annotation::${rule}`);
    }),
  );
}
