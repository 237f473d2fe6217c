import type { ManagedNodeRecord, SsmState } from "./ssm-state";
import { SsmError } from "./ssm-error";
import {
  type Body,
  epochSeconds,
  paginate,
  readInteger,
  readList,
  readObject,
  readString,
  readStringList,
} from "./request-fields";

// Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html
const MANAGED_INSTANCE_ID_PATTERN = /^mi-[0-9a-f]{17}$/;

/** The InstanceInformation shape. Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html */
function toWire(node: ManagedNodeRecord): Body {
  return {
    InstanceId: node.instanceId,
    PingStatus: node.pingStatus,
    LastPingDateTime: epochSeconds(node.lastPingDateTime),
    ActivationId: node.activationId,
    IamRole: node.iamRole,
    RegistrationDate: epochSeconds(node.registrationDate),
    ResourceType: "ManagedInstance",
    ...(node.name !== undefined ? { Name: node.name } : {}),
    // "The fully qualified host name of the managed node", as the agent reports it.
    ...(node.computerName !== undefined ? { ComputerName: node.computerName } : {}),
    ...(node.ipAddress !== undefined ? { IPAddress: node.ipAddress } : {}),
    SourceId: node.instanceId,
    SourceType: "AWS::SSM::ManagedInstance",
  };
}

type NodePredicate = (node: ManagedNodeRecord) => boolean;

// Keys shared by the legacy InstanceInformationFilterList and the newer Filters list.
// Sources: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformationFilter.html
//          https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformationStringFilter.html
function predicateFor(key: string, values: string[]): NodePredicate | "instance-ids" {
  switch (key) {
    case "InstanceIds":
      return "instance-ids";
    case "ActivationIds":
      return (n) => values.includes(n.activationId);
    case "IamRole":
      return (n) => values.includes(n.iamRole);
    case "PingStatus":
      return (n) => values.includes(n.pingStatus);
    case "ResourceType":
      return () => values.includes("ManagedInstance");
    case "SourceIds":
      return (n) => values.includes(n.instanceId);
    case "SourceTypes":
      return () => values.includes("AWS::SSM::ManagedInstance");
    case "tag-key":
      return (n) => n.tags.some((t) => values.includes(t.Key));
    default:
      if (key.startsWith("tag:") && key.length > 4) {
        const tagKey = key.slice(4);
        return (n) => n.tags.some((t) => t.Key === tagKey && values.includes(t.Value));
      }
      // Platform, agent version and association data aren't simulated: no node matches them.
      if (["AgentVersion", "PlatformTypes", "PlatformType", "AssociationStatus"].includes(key))
        return () => false;
      throw new SsmError("InvalidFilterKey", `The specified key isn't valid: ${key}`);
  }
}

/**
 * InstanceInformationFilterList (legacy, key/valueSet) and Filters (Key/Values, with tag:Name and
 * tag-key) can't be combined; tag filters can't be combined with other filter types; an unknown
 * node ID in an InstanceIds filter is an error; MaxResults is 5–50.
 * Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html
 */
export function describeInstanceInformation(state: SsmState, body: Body): Body {
  const maxResults = readInteger(body, "MaxResults", { min: 5, max: 50 }) ?? 50;
  const nextToken = readString(body, "NextToken");
  const legacy = readList(body, "InstanceInformationFilterList");
  const modern = readList(body, "Filters");
  if (legacy?.length && modern?.length) {
    throw new SsmError(
      "ValidationException",
      "InstanceInformationFilterList and Filters can't be used together.",
    );
  }
  const filters = [
    ...(legacy ?? []).map((raw) => {
      const f = readObject(raw, "InstanceInformationFilterList");
      return {
        key: readString(f, "key", { required: true }) as string,
        values: readStringList(f, "valueSet", { required: true, min: 1, max: 100 }) as string[],
      };
    }),
    ...(modern ?? []).map((raw) => {
      const f = readObject(raw, "Filters");
      return {
        key: readString(f, "Key", { required: true, min: 1 }) as string,
        values: readStringList(f, "Values", { required: true, min: 1, max: 100 }) as string[],
      };
    }),
  ];
  const isTag = (key: string) => key.startsWith("tag:") || key === "tag-key";
  if (filters.some((f) => isTag(f.key)) && filters.some((f) => !isTag(f.key))) {
    throw new SsmError("InvalidFilterKey", "Tag filters can't be combined with other filter types.");
  }

  const predicates: NodePredicate[] = [];
  for (const { key, values } of filters) {
    const predicate = predicateFor(key, values);
    if (predicate === "instance-ids") {
      const unknown = values.filter((id) => !state.managedNodes.has(id));
      if (unknown.length > 0)
        throw new SsmError("InvalidInstanceId", `Instance IDs not found: ${unknown.join(", ")}`);
      predicates.push((n) => values.includes(n.instanceId));
    } else {
      predicates.push(predicate);
    }
  }
  const matching = [...state.managedNodes.values()]
    .filter((n) => predicates.every((p) => p(n)))
    .sort((x, y) => (x.seq < y.seq ? -1 : 1));
  const { page, nextToken: next } = paginate(matching, (n) => n.seq, nextToken, maxResults);
  return { InstanceInformationList: page.map(toWire), ...(next ? { NextToken: next } : {}) };
}

/**
 * Removes the node; its activation's RegistrationsCount is not given back (re-registering needs
 * an activation with slots left).
 * Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html
 */
export function deregisterManagedInstance(state: SsmState, body: Body): Body {
  const instanceId = readString(body, "InstanceId", {
    required: true,
    min: 20,
    max: 124,
    pattern: MANAGED_INSTANCE_ID_PATTERN,
  }) as string;
  if (!state.managedNodes.delete(instanceId)) {
    throw new SsmError("InvalidInstanceId", `Instance ${instanceId} is not a registered managed node.`);
  }
  return {};
}
