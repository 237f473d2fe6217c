import {
  type Activation,
  AddTagsToResourceCommand,
  DeregisterManagedInstanceCommand,
  type InstanceInformation,
  type InstanceInformationStringFilter,
  paginateDescribeActivations,
  paginateDescribeInstanceInformation,
  paginateGetParametersByPath,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import type {
  ActivationInventory,
  ActivationRecord,
  ManagedNode,
  NodeInventory,
  PingStatus,
  SecretInventory,
  StoredParameter,
} from "../core/inventory";
import { POOL_NAME_PATTERN } from "../core/pool-config";
import { TAG_DEPLOYMENT, TAG_POOL } from "../core/vend-policy";
import type { PageProgress } from "./dynamodb-pool-inventory";
import type { ParameterStoreSecrets } from "./parameter-store-secrets";
import { isSdkError, parameterStoreError } from "./sdk-errors";
import { deleteActivation, throwIfTransient } from "./ssm-activations";

/**
 * Page sizes are SSM's documented maxima: DescribeActivations 50, DescribeInstanceInformation 50,
 * GetParametersByPath 10.
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeActivations.html
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
 */
const ACTIVATION_PAGE = 50;
const NODE_PAGE = 50;
const PARAMETER_PAGE = 10;

const ACTIVATION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function ssmCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throwIfTransient(error);
    throw error;
  }
}

/** Every activation of the account and Region; the janitor tells its own by their tags. */
export class SsmActivationInventory implements ActivationInventory {
  constructor(
    private readonly client: SSMClient,
    private readonly onPage: PageProgress = () => {},
  ) {}

  async list(): Promise<ActivationRecord[]> {
    const records: ActivationRecord[] = [];
    let pages = 0;
    await ssmCall(async () => {
      for await (const page of paginateDescribeActivations(
        { client: this.client, pageSize: ACTIVATION_PAGE },
        {},
      )) {
        for (const activation of page.ActivationList ?? []) {
          const record = toRecord(activation);
          if (record) records.push(record);
        }
        this.onPage("DescribeActivations", ++pages, records.length);
      }
    });
    return records;
  }

  delete(activationId: string): Promise<void> {
    return deleteActivation(this.client, activationId);
  }
}

function toRecord(activation: Activation): ActivationRecord | undefined {
  if (!activation.ActivationId) return undefined;
  return {
    activationId: activation.ActivationId,
    iamRole: activation.IamRole ?? "",
    registrationLimit: activation.RegistrationLimit ?? 0,
    registrationsCount: activation.RegistrationsCount ?? 0,
    expiresAt: activation.ExpirationDate?.getTime() ?? 0,
    expired: activation.Expired ?? false,
    createdAt: activation.CreatedDate?.getTime() ?? 0,
    ...(activation.DefaultInstanceName !== undefined && {
      defaultInstanceName: activation.DefaultInstanceName,
    }),
    tags: Object.fromEntries((activation.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])),
  };
}

/**
 * The codes' parameters under this deployment's prefix, listed WITHOUT decryption: the janitor
 * needs names and dates, never a code, and its role holds no kms:Decrypt.
 */
export class ParameterInventory implements SecretInventory {
  constructor(
    private readonly client: SSMClient,
    private readonly secrets: ParameterStoreSecrets,
    private readonly prefix: string,
    private readonly onPage: PageProgress = () => {},
  ) {}

  async list(): Promise<StoredParameter[]> {
    const found: StoredParameter[] = [];
    let pages = 0;
    try {
      for await (const page of paginateGetParametersByPath(
        { client: this.client, pageSize: PARAMETER_PAGE },
        { Path: this.prefix, Recursive: true, WithDecryption: false },
      )) {
        for (const parameter of page.Parameters ?? []) {
          const parsed = this.parse(parameter.Name);
          if (parsed) found.push({ ...parsed, lastModifiedAt: parameter.LastModifiedDate?.getTime() ?? 0 });
        }
        this.onPage("GetParametersByPath", ++pages, found.length);
      }
    } catch (error) {
      throw parameterStoreError(error, "GetParametersByPath");
    }
    return found;
  }

  delete(pool: string, activationId: string): Promise<void> {
    return this.secrets.delete(pool, activationId);
  }

  /** `${prefix}/${pool}/${activationId}` only: anything else under the prefix is someone else's. */
  private parse(name: string | undefined): Omit<StoredParameter, "lastModifiedAt"> | undefined {
    // Stryker disable next-line StringLiteral: GetParametersByPath(Path: prefix) only answers names under `${prefix}/`
    if (!name?.startsWith(`${this.prefix}/`)) return undefined;
    const [pool, activationId, ...rest] = name.slice(this.prefix.length + 1).split("/");
    if (rest.length > 0 || !pool || !activationId) return undefined;
    if (!POOL_NAME_PATTERN.test(pool) || !ACTIVATION_ID.test(activationId)) return undefined;
    return { name, pool, activationId };
  }
}

/**
 * Managed nodes through DescribeInstanceInformation. Its answer has no tags, so ownership, pool
 * and the Name tag come from tag filters (AND-combined): one listing per pool plus one for the
 * nodes that already carry a Name, instead of a ListTagsForResource per node.
 */
export class SsmNodeInventory implements NodeInventory {
  constructor(
    private readonly client: SSMClient,
    private readonly deployment: string,
    private readonly onPage: PageProgress = () => {},
  ) {}

  async listOwned(pools: readonly string[]): Promise<ManagedNode[]> {
    const mine: InstanceInformationStringFilter = { Key: `tag:${TAG_DEPLOYMENT}`, Values: [this.deployment] };
    const all = await this.describe([mine]);
    const named = new Set((await this.describe([mine, { Key: "tag-key", Values: ["Name"] }])).map(idOf));
    const poolOf = new Map<string, string>();
    for (const pool of pools) {
      for (const node of await this.describe([mine, { Key: `tag:${TAG_POOL}`, Values: [pool] }])) {
        poolOf.set(idOf(node), pool);
      }
    }
    return all.map((info) => toNode(info, poolOf.get(idOf(info)), named.has(idOf(info))));
  }

  async countHybrid(): Promise<number> {
    return (await this.describe([{ Key: "ResourceType", Values: ["ManagedInstance"] }])).length;
  }

  async addTags(instanceId: string, tags: Readonly<Record<string, string>>): Promise<void> {
    await ssmCall(() =>
      this.client.send(
        new AddTagsToResourceCommand({
          ResourceType: "ManagedInstance",
          ResourceId: instanceId,
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
        }),
      ),
    );
  }

  async deregister(instanceId: string): Promise<void> {
    try {
      await this.client.send(new DeregisterManagedInstanceCommand({ InstanceId: instanceId }));
    } catch (error) {
      if (isSdkError(error, "InvalidInstanceId")) return; // already gone
      throwIfTransient(error);
      throw error;
    }
  }

  private async describe(filters: InstanceInformationStringFilter[]): Promise<InstanceInformation[]> {
    const found: InstanceInformation[] = [];
    let pages = 0;
    await ssmCall(async () => {
      for await (const page of paginateDescribeInstanceInformation(
        { client: this.client, pageSize: NODE_PAGE },
        { Filters: filters },
      )) {
        found.push(...(page.InstanceInformationList ?? []));
        this.onPage("DescribeInstanceInformation", ++pages, found.length);
      }
    });
    return found;
  }
}

// Stryker disable next-line StringLiteral: SSM sends an InstanceId with every node; the fallback only types it
const idOf = (info: InstanceInformation): string => info.InstanceId ?? "";

const PING_STATUSES: readonly PingStatus[] = ["Online", "ConnectionLost", "Inactive"];

function toNode(info: InstanceInformation, pool: string | undefined, hasNameTag: boolean): ManagedNode {
  const ping = PING_STATUSES.find((p) => p === info.PingStatus) ?? "Inactive";
  return {
    instanceId: idOf(info),
    pingStatus: ping,
    hasNameTag,
    ...(info.ActivationId !== undefined && { activationId: info.ActivationId }),
    ...(info.ComputerName !== undefined && { computerName: info.ComputerName }),
    ...(info.Name !== undefined && { name: info.Name }),
    ...(info.LastPingDateTime !== undefined && { lastPingAt: info.LastPingDateTime.getTime() }),
    ...(info.RegistrationDate !== undefined && { registeredAt: info.RegistrationDate.getTime() }),
    ...(pool !== undefined && { pool }),
  };
}
