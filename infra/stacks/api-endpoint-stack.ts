import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { ApiVpcEndpoint, type ApiVpcEndpointProps } from "../constructs/api-vpc-endpoint";

export type ApiEndpointStackProps = StackProps & ApiVpcEndpointProps;

/** Step 1 alone: the execute-api interface endpoint. Deployable and uploadable on its own. */
export class ApiEndpointStack extends Stack {
  readonly vpcEndpointId: string;

  constructor(scope: Construct, id: string, props: ApiEndpointStackProps) {
    super(scope, id, props);
    const endpoint = new ApiVpcEndpoint(this, "ApiVpcEndpoint", props);
    this.vpcEndpointId = endpoint.vpcEndpointId;
    new CfnOutput(this, "VpcEndpointForApiGateway", {
      description: "Id of the execute-api VPC endpoint (pass as -c VpcEndpointForApiGateway=… to reuse it)",
      value: endpoint.vpcEndpointId,
    });
    new CfnOutput(this, "VpcEndpointSecurityGroup", { value: endpoint.securityGroup.securityGroupId });
  }
}
