import { Aws, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { AccountRootPrincipal, AnyPrincipal, Effect, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { Key, type IKey } from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";

/** The cryptographic operations Parameter Store performs for SecureString parameters. */
export const SSM_CRYPTO_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"] as const;

/** The value of `kms:ViaService` when Systems Manager calls KMS on a caller's behalf. */
export const ssmViaService = (): string => `ssm.${Aws.REGION}.amazonaws.com`;

/**
 * Grants let a principal use a key outside its key policy; only AWS services acting for an AWS
 * resource (which is how they use keys) may create them. Control Tower's CT.KMS.PR.3.
 */
export function denyGrantsExceptForAwsServices(key: IKey): void {
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: "DenyGrantsExceptForAwsServices",
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ["kms:CreateGrant"],
      resources: ["*"],
      conditions: {
        BoolIfExists: { "kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false" },
      },
    }),
  );
}

export interface ParameterStoreKeyProps {
  /**
   * Deny every cryptographic use of the key that does not come through Systems Manager, for every
   * principal including administrators. The key then protects Activation Codes in Parameter Store
   * and nothing else; turn off only to share the key with other workloads.
   * @default true
   */
  readonly denyUseOutsideSsm?: boolean;
  /**
   * Keys are retained by default: deleting the stack must not make stored codes unreadable by
   * surprise. Cleanup schedules the deletion explicitly (docs/deploy.md).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** @default Duration.days(30), the longest recovery window KMS offers */
  readonly pendingWindow?: Duration;
}

/**
 * Step 2 of the reference walkthrough: the customer managed key that encrypts Activation Codes
 * (SecureString). Symmetric, rotated yearly, usable only through Systems Manager.
 */
export class ParameterStoreKey extends Construct {
  readonly key: Key;

  constructor(scope: Construct, id: string, props: ParameterStoreKeyProps = {}) {
    super(scope, id);
    this.key = new Key(this, "Key", {
      description: `Encrypts SSM activation codes in Parameter Store (${Stack.of(this).stackName})`,
      enableKeyRotation: true,
      pendingWindow: props.pendingWindow ?? Duration.days(30),
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });

    // The default statement (account root, kms:*) keeps the key manageable through IAM; without it
    // a key whose policy names no administrator cannot be changed or deleted.
    // This one is what lets the broker's role (granted in IAM, same account) use the key: through
    // Parameter Store only. The broker stack may be deployed separately, so its role cannot be
    // named here without a dependency cycle.
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: "AllowParameterStoreUseThroughSsm",
        principals: [new AccountRootPrincipal()],
        actions: [...SSM_CRYPTO_ACTIONS],
        resources: ["*"],
        conditions: {
          StringEquals: { "kms:ViaService": ssmViaService(), "kms:CallerAccount": Aws.ACCOUNT_ID },
        },
      }),
    );
    if (props.denyUseOutsideSsm ?? true) {
      this.key.addToResourcePolicy(
        new PolicyStatement({
          sid: "DenyUseOutsideSsm",
          effect: Effect.DENY,
          principals: [new AnyPrincipal()],
          actions: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
          resources: ["*"],
          // Absent kms:ViaService (a direct call) also matches StringNotEquals, so it is denied.
          conditions: { StringNotEquals: { "kms:ViaService": ssmViaService() } },
        }),
      );
    }
    denyGrantsExceptForAwsServices(this.key);
  }
}
