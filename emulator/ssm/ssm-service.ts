import { addTagsToResource, listTagsForResource, removeTagsFromResource } from "./tagging";
import {
  createActivation,
  deleteActivation,
  describeActivations,
  registerManagedInstance,
} from "./activations";
import { deregisterManagedInstance, describeInstanceInformation } from "./managed-nodes";
import {
  deleteParameter,
  deleteParameters,
  describeParameters,
  getParameter,
  getParameters,
  getParametersByPath,
  putParameter,
} from "./parameters";
import type { Body } from "./request-fields";
import type { SsmState } from "./ssm-state";
import { SsmError } from "./ssm-error";

type Operation = (state: SsmState, body: Body) => Body;

/** The operations this emulator answers, keyed by the part of X-Amz-Target after "AmazonSSM.". */
export const SSM_OPERATIONS: Readonly<Record<string, Operation>> = {
  CreateActivation: createActivation,
  DescribeActivations: describeActivations,
  DeleteActivation: deleteActivation,
  RegisterManagedInstance: registerManagedInstance,
  DescribeInstanceInformation: describeInstanceInformation,
  DeregisterManagedInstance: deregisterManagedInstance,
  AddTagsToResource: addTagsToResource,
  ListTagsForResource: listTagsForResource,
  RemoveTagsFromResource: removeTagsFromResource,
  PutParameter: putParameter,
  GetParameter: getParameter,
  GetParameters: getParameters,
  GetParametersByPath: getParametersByPath,
  DeleteParameter: deleteParameter,
  DeleteParameters: deleteParameters,
  DescribeParameters: describeParameters,
};

export function invokeSsm(state: SsmState, operation: string, body: Body): Body {
  const handler = Object.hasOwn(SSM_OPERATIONS, operation) ? SSM_OPERATIONS[operation] : undefined;
  if (!handler) {
    throw new SsmError(
      "UnknownOperationException",
      `Operation AmazonSSM.${operation} is not supported by the emulator.`,
    );
  }
  return handler(state, body);
}
