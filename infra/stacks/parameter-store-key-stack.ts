import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { IKey } from "aws-cdk-lib/aws-kms";
import type { Construct } from "constructs";
import { ParameterStoreKey, type ParameterStoreKeyProps } from "../constructs/parameter-store-key";

export type ParameterStoreKeyStackProps = StackProps & ParameterStoreKeyProps;

/** Step 2 alone: the customer managed key for the codes. Deployable and uploadable on its own. */
export class ParameterStoreKeyStack extends Stack {
  readonly key: IKey;

  constructor(scope: Construct, id: string, props: ParameterStoreKeyStackProps = {}) {
    super(scope, id, props);
    this.key = new ParameterStoreKey(this, "ParameterStoreKey", props).key;
    new CfnOutput(this, "KmsKeyId", {
      description: "Key id (pass as -c KmsKeyId=… to reuse it)",
      value: this.key.keyId,
    });
    new CfnOutput(this, "KmsKeyArn", { value: this.key.keyArn });
  }
}
