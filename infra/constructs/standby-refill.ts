import { Effect, type IRole, Policy, PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

export interface StandbyRefillProps {
  /** The broker function: it invokes itself to make each pool's next standby activation. */
  readonly function: IFunction;
  /** The function's execution role. */
  readonly role: IRole;
}

/**
 * Standby refills on Lambda (I9): a vend that finds no unused standby invokes the broker function
 * asynchronously (InvocationType Event) with a refill event, so CreateActivation never runs on
 * the response path and never in a frozen container. The alternative, a DynamoDB stream on the
 * pool table, would invoke the function for every batch of reservations: every vend is a write,
 * and stream filters cannot compare `issued` with `limit` to pass only the writes that matter.
 *
 * The permission is a Policy of its own, not a statement in the role's default policy: the
 * function depends on its role's default policy, so naming the function's ARN there would be a
 * cycle. It grants lambda:InvokeFunction on this one function and nothing else.
 */
export class StandbyRefill extends Construct {
  readonly policy: Policy;

  constructor(scope: Construct, id: string, props: StandbyRefillProps) {
    super(scope, id);
    this.policy = new Policy(this, "SelfInvoke", {
      roles: [props.role],
      statements: [
        new PolicyStatement({
          sid: "InvokeSelfForStandbyRefill",
          effect: Effect.ALLOW,
          actions: ["lambda:InvokeFunction"],
          resources: [props.function.functionArn],
        }),
      ],
    });
  }
}
