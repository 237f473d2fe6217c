import { CloudFormationClient } from "@aws-sdk/client-cloudformation";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { SSMClient } from "@aws-sdk/client-ssm";
import { clientConfig, type AwsClientsOptions } from "./clients";

/**
 * What the admin CLI asks before it knows the deployment: the stack's outputs and the broker
 * function's environment (src/cli/deployment.ts), and the profile's Region.
 */
export interface LookupClients {
  readonly cloudformation: CloudFormationClient;
  readonly lambda: LambdaClient;
  /** Only its resolved configuration is used: the Region the profile names. */
  readonly ssm: SSMClient;
  destroy(): void;
}

export function createLookupClients(options: AwsClientsOptions = {}): LookupClients {
  const clients = {
    cloudformation: new CloudFormationClient(clientConfig(options)),
    lambda: new LambdaClient(clientConfig(options)),
    ssm: new SSMClient(clientConfig(options)),
  };
  return {
    ...clients,
    destroy() {
      for (const client of Object.values(clients)) client.destroy();
    },
  };
}
