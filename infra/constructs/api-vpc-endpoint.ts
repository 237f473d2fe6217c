import { Aws, Fn, Validations } from "aws-cdk-lib";
import {
  InterfaceVpcEndpoint,
  InterfaceVpcEndpointAwsService,
  Peer,
  Port,
  SecurityGroup,
  Subnet,
  Vpc,
} from "aws-cdk-lib/aws-ec2";
import { AnyPrincipal, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

export interface ApiVpcEndpointProps {
  /** VPC that on-premises servers reach over Direct Connect or VPN (reference: VpcIdForApiGateway). */
  readonly vpcId: string;
  /** Subnets that get an endpoint network interface, one per AZ (reference: SubnetsForVpcEndpoint). */
  readonly subnetIds: readonly string[];
  /** Only these source ranges may open TCP 443 on the endpoint (reference: AllowedIPRange). */
  readonly allowedCidrs: readonly string[];
  /**
   * Private REST API ids this endpoint may invoke. The API is created after the endpoint (its
   * resource policy names the endpoint), so pinning the endpoint to one API is a second deploy
   * with the id from the first. Empty: any private API of this account, never another account's.
   * @default []
   */
  readonly allowedApiIds?: readonly string[];
  /**
   * Private DNS makes the API's default name resolve to the endpoint inside the VPC, but also
   * sends every execute-api name there, so that VPC can no longer call public (edge/regional)
   * APIs by their default names. Off, callers use the endpoint-alias URL instead.
   * @default true
   */
  readonly privateDnsEnabled?: boolean;
}

/**
 * Step 1 of the reference walkthrough: an interface endpoint for `execute-api` through which the
 * private broker API is reached. Private DNS makes the API's default hostname resolve to the
 * endpoint inside the VPC (on premises, forward that name to the VPC resolver).
 */
export class ApiVpcEndpoint extends Construct {
  readonly endpoint: InterfaceVpcEndpoint;
  readonly securityGroup: SecurityGroup;
  readonly vpcEndpointId: string;

  constructor(scope: Construct, id: string, props: ApiVpcEndpointProps) {
    super(scope, id);
    if (props.subnetIds.length === 0)
      throw new Error("ApiVpcEndpoint: subnetIds must name at least one subnet");
    if (props.allowedCidrs.length === 0)
      throw new Error("ApiVpcEndpoint: allowedCidrs must name at least one range");

    // Attributes, not Vpc.fromLookup: synth must work without credentials. The endpoint needs only
    // the VPC id and the explicit subnets below; the AZ list is never rendered, but the import
    // rejects an empty one.
    const vpc = Vpc.fromVpcAttributes(this, "Vpc", { vpcId: props.vpcId, availabilityZones: Fn.getAzs() });

    this.securityGroup = new SecurityGroup(this, "SecurityGroup", {
      vpc,
      description: "HTTPS to the activation broker API from the allowed on-premises ranges only",
      // An interface endpoint never initiates connections; CDK turns this into a no-op egress rule.
      allowAllOutbound: false,
    });
    for (const cidr of props.allowedCidrs) {
      this.securityGroup.addIngressRule(Peer.ipv4(cidr), Port.tcp(443), `HTTPS from ${cidr}`);
    }

    this.endpoint = new InterfaceVpcEndpoint(this, "Endpoint", {
      vpc,
      service: InterfaceVpcEndpointAwsService.APIGATEWAY,
      subnets: { subnets: props.subnetIds.map((s, i) => Subnet.fromSubnetId(this, `Subnet${i}`, s)) },
      privateDnsEnabled: props.privateDnsEnabled ?? true,
      securityGroups: [this.securityGroup],
      // `open: true` (the default) would add ingress from the whole VPC CIDR on 443.
      open: false,
    });

    const apiIds = props.allowedApiIds ?? [];
    this.endpoint.addToPolicy(
      new PolicyStatement({
        sid: apiIds.length > 0 ? "InvokeTheBrokerApiOnly" : "InvokeThisAccountsApisOnly",
        principals: [new AnyPrincipal()],
        actions: ["execute-api:Invoke"],
        resources:
          apiIds.length > 0
            ? apiIds.map((api) => `arn:${Aws.PARTITION}:execute-api:${Aws.REGION}:${Aws.ACCOUNT_ID}:${api}/*`)
            : [`arn:${Aws.PARTITION}:execute-api:${Aws.REGION}:${Aws.ACCOUNT_ID}:*`],
      }),
    );
    this.vpcEndpointId = this.endpoint.vpcEndpointId;

    Validations.of(vpc).acknowledge({
      id: "Annotation::@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
      reason: "The imported VPC is used only for its id; subnets are selected explicitly, never by AZ.",
    });
    Validations.of(this).acknowledge({
      id: "Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId",
      reason: "Interface endpoints attach network interfaces to subnets and never use route tables.",
    });
  }
}
