import { Aws, CfnCondition, Fn, RemovalPolicy, Stack, Token, Validations } from "aws-cdk-lib";
import {
  AccessLogFormat,
  CfnAccount,
  CfnStage,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  RestApi,
} from "aws-cdk-lib/aws-apigateway";
import { InterfaceVpcEndpoint } from "aws-cdk-lib/aws-ec2";
import {
  AnyPrincipal,
  CfnRole,
  Effect,
  ManagedPolicy,
  PolicyDocument,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from "aws-cdk-lib/aws-iam";
import { CfnPermission, type IFunction } from "aws-cdk-lib/aws-lambda";
import type { ILogGroup } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";

/**
 * The broker's private REST API: reachable only through the named execute-api VPC endpoints (the
 * reference's resource policy), its stage with access logs and throttling, the account's API
 * Gateway logging role, and the routes into the function.
 *
 * Builders, not constructs: each adds its resources to the `ActivationBroker` it is given, so the
 * construct paths, and with them the logical IDs of deployed stacks, stay what they were.
 */
export interface PrivateApiOptions {
  /** Endpoints through which the private API may be invoked; anything else is denied. */
  readonly vpcEndpointIds: readonly string[];
  /** @default "prod" */
  readonly stageName?: string;
  /** Narrow invocation further to these on-premises source ranges (`aws:VpcSourceIp`). @default none */
  readonly allowedSourceCidrs?: readonly string[];
  /** API Gateway execution logging; never with data trace (it would log the codes). @default ERROR */
  readonly executionLogLevel?: MethodLoggingLevel;
  /** Steady-state requests per second for the stage. @default 50 */
  readonly throttlingRateLimit?: number;
  /** @default 100 */
  readonly throttlingBurstLimit?: number;
  /**
   * The role API Gateway writes logs with, set as the account's API Gateway CloudWatch role (one
   * per account and region; stage logging cannot deploy without it). Empty or absent: a role is
   * created, set, and retained on stack deletion, since other APIs of the account may use it.
   * May be a CloudFormation parameter (then chosen at deploy time).
   */
  readonly cloudWatchLogRoleArn?: string;
  /** X-Ray on the stage and the function. @default true */
  readonly tracing?: boolean;
}

export interface PrivateApiProps extends PrivateApiOptions {
  readonly accessLogGroup: ILogGroup;
}

export interface PrivateApi {
  readonly api: RestApi;
  /** `https://<api>.execute-api.<region>.amazonaws.com/<stage>` (private DNS), no trailing slash. */
  readonly url: string;
  /** Per endpoint: `https://<api>-<vpce>.execute-api.<region>.amazonaws.com/<stage>`, no private DNS needed. */
  readonly endpointUrls: string[];
}

/** The API and its stage, without routes: the function needs the URL before the routes need the function. */
export function addPrivateApi(scope: Construct, props: PrivateApiProps): PrivateApi {
  const stack = Stack.of(scope);
  const stageName = props.stageName ?? "prod";
  const api = new RestApi(scope, "Api", {
    // Names need not be unique in API Gateway; the stack name just makes the console readable.
    restApiName: `${stack.stackName}-broker`,
    description: `SSM hybrid activation broker (${stack.stackName})`,
    endpointConfiguration: {
      types: [EndpointType.PRIVATE],
      vpcEndpoints: props.vpcEndpointIds.map((vpce, i) =>
        InterfaceVpcEndpoint.fromInterfaceVpcEndpointAttributes(scope, `Vpce${i}`, {
          vpcEndpointId: vpce,
          port: 443,
        }),
      ),
    },
    policy: resourcePolicy(props.vpcEndpointIds, props.allowedSourceCidrs ?? []),
    // The account's logging role is set below, where it can come from a parameter.
    cloudWatchRole: false,
    deployOptions: {
      // A stage name chosen at deploy time cannot be part of construct ids: set it below.
      stageName: Token.isUnresolved(stageName) ? "prod" : stageName,
      accessLogDestination: new LogGroupLogDestination(props.accessLogGroup),
      accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
      loggingLevel: props.executionLogLevel ?? MethodLoggingLevel.ERROR,
      // Data trace logs full responses, i.e. Activation Codes (I6): never.
      dataTraceEnabled: false,
      metricsEnabled: true,
      tracingEnabled: props.tracing ?? true,
      throttlingRateLimit: props.throttlingRateLimit ?? 50,
      throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
    },
    // No CORS: callers are servers with curl/PowerShell, never browsers.
  });
  // Built by hand, not api.url: that refers to the stage, which depends on the methods, which
  // depend on the function, whose environment needs the URL — a cycle.
  // RestApi's own URL output names no endpoint; the stacks output both URLs themselves.
  api.node.tryRemoveChild("Endpoint");
  if (Token.isUnresolved(stageName)) {
    (api.deploymentStage.node.defaultChild as CfnStage).addPropertyOverride("StageName", stageName);
  }
  const base = (host: string) => `https://${host}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}/${stageName}`;
  const url = base(api.restApiId);
  const endpointUrls = props.vpcEndpointIds.map((vpce) => base(`${api.restApiId}-${vpce}`));
  setAccountLoggingRole(scope, api, props.cloudWatchLogRoleArn);
  return { api, url, endpointUrls };
}

/** Every path the broker answers, each into the function through a proxy integration. */
export function addBrokerRoutes(api: RestApi, fn: IFunction, options: { eksPools: boolean }): void {
  const integration = new LambdaIntegration(fn, { proxy: true, allowTestInvoke: false });
  // GET requests carry no body; body validation is on only so the validator counts as complete.
  const validator = api.addRequestValidator("RequestValidator", {
    validateRequestParameters: true,
    validateRequestBody: true,
  });
  // ANY, not GET: the broker itself answers other methods with 405 and an Allow header
  // (docs/http-api.md); with GET-only methods API Gateway would answer a bare 403 instead.
  api.root.addMethod("ANY", integration, { requestValidator: validator });
  api.root
    .addResource("activations")
    .addResource("{pool}")
    .addMethod("ANY", integration, {
      requestValidator: validator,
      requestParameters: { "method.request.path.pool": true },
    });
  for (const script of ["install.sh", "install.ps1"]) {
    api.root.addResource(script).addMethod("ANY", integration, { requestValidator: validator });
  }
  if (options.eksPools) {
    for (const path of ["nodeconfig.yaml", "install-eks.sh"]) {
      api.root.addResource(path).addMethod("ANY", integration, { requestValidator: validator });
    }
  }
  // cfn-guard, Control Tower rules (docs/deploy.md lists these with the cdk-nag ones).
  for (const permission of api.node.findAll().filter((c) => c instanceof CfnPermission)) {
    Validations.of(permission).acknowledge({
      id: "lambda_function_public_access_prohibited_check",
      reason:
        "CT.LAMBDA.PR.2: the principal is apigateway.amazonaws.com and SourceArn is this API's own ARN (an Fn::Join the rule cannot evaluate, so it reports it as missing); no other caller may invoke the function.",
    });
  }
}

/** Allow through the named endpoints, deny everything else; optionally narrow to source ranges. */
function resourcePolicy(vpcEndpointIds: readonly string[], sourceCidrs: readonly string[]): PolicyDocument {
  const statements = [
    new PolicyStatement({
      sid: "AllowInvoke",
      principals: [new AnyPrincipal()],
      actions: ["execute-api:Invoke"],
      resources: ["execute-api:/*"],
    }),
    new PolicyStatement({
      sid: "DenyUnlessThroughVpcEndpoint",
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ["execute-api:Invoke"],
      resources: ["execute-api:/*"],
      conditions: { StringNotEquals: { "aws:SourceVpce": [...vpcEndpointIds] } },
    }),
  ];
  if (sourceCidrs.length > 0) {
    statements.push(
      new PolicyStatement({
        sid: "DenyUnlessFromAllowedSourceRanges",
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ["execute-api:Invoke"],
        resources: ["execute-api:/*"],
        conditions: { NotIpAddress: { "aws:VpcSourceIp": [...sourceCidrs] } },
      }),
    );
  }
  return new PolicyDocument({ statements });
}

/**
 * Sets the account's API Gateway CloudWatch role, to the given one or to a role created here.
 * A parameter decides at deploy time (CloudFormation condition); a literal or nothing, at synth.
 */
function setAccountLoggingRole(scope: Construct, api: RestApi, givenArn: string | undefined): void {
  const create = () => {
    const role = new Role(scope, "ApiGatewayLogsRole", {
      description: "API Gateway account logging role (set by the activation broker stack)",
      assumedBy: new ServicePrincipal("apigateway.amazonaws.com"),
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName("service-role/AmazonAPIGatewayPushToCloudWatchLogs"),
      ],
    });
    // The setting outlives the stack (CloudFormation never unsets it), and other APIs in the
    // account may log through it: deleting the role would silently break their logging.
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
      reason:
        "The AWS-managed policy API Gateway documents for its account logging role; AWS keeps it in step with what API Gateway needs to write logs.",
    });
    return role;
  };
  let arn: string;
  if (givenArn === undefined || givenArn === "") {
    arn = create().roleArn;
  } else if (Token.isUnresolved(givenArn)) {
    const createRole = new CfnCondition(scope, "CreateLogRole", {
      expression: Fn.conditionEquals(givenArn, ""),
    });
    const role = create();
    (role.node.defaultChild as CfnRole).cfnOptions.condition = createRole;
    arn = Fn.conditionIf(createRole.logicalId, role.roleArn, givenArn).toString();
  } else {
    arn = givenArn;
  }
  const account = new CfnAccount(scope, "ApiGatewayAccount", { cloudWatchRoleArn: arn });
  // Stage logging is refused until the account has a role.
  api.deploymentStage.node.addDependency(account);
}

/**
 * The API's accepted findings, each with the reason it is acceptable (listed in docs/security.md).
 * Called once the routes are in, like cdk-nag's own checks, which see the finished API.
 */
export function acknowledgeApiFindings(api: RestApi, options: Pick<PrivateApiOptions, "tracing">): void {
  if (!(options.tracing ?? true)) {
    Validations.of(api).acknowledge({
      id: "api_gw_xray_enabled_check",
      reason:
        "CT.APIGATEWAY.PR.2: X-Ray was turned off on purpose by this deployment's settings (Tracing=false).",
    });
  }
  Validations.of(api).acknowledge(
    {
      id: "AwsSolutions-APIG4",
      reason:
        "Callers are servers not yet registered with AWS, so they hold no credentials to sign with (the reference's client contract). Access is restricted instead by the resource policy (only through the named VPC endpoint, optionally only from allowed source ranges) and the endpoint's security group.",
    },
    {
      id: "AwsSolutions-COG4",
      reason:
        "No Cognito users exist in this flow: the callers are unregistered servers, see AwsSolutions-APIG4.",
    },
    {
      id: "AwsSolutions-APIG3",
      reason:
        "The API is private: reachable only through the VPC endpoint from allowed on-premises ranges, with stage throttling. A WAF web ACL can be associated by the operator; it is not created here to avoid per-deployment WAF cost.",
    },
  );
}
