import {
  type Activation,
  CreateActivationCommand,
  DeleteActivationCommand,
  DescribeActivationsCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { ActivationRejectedError } from "../core/errors";
import type {
  ActivationProvider,
  ActivationSummary,
  CreateActivationRequest,
  CreatedActivation,
} from "../core/ports";
import { TAG_DEPLOYMENT } from "../core/vend-policy";
import { isClientFault, isSdkError, sdkErrorName, transientError } from "./sdk-errors";

/** SSM's throttling answers: the generic one, and SSM's own for concurrent updates of one resource. */
/**
 * What DeleteActivation answers for an activation that no longer exists ("The activation might have
 * been deleted") or an id SSM does not know.
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html
 * (also https://docs.aws.amazon.com/goto/WebAPI/ssm/DeleteActivation)
 */
const ALREADY_GONE_ERRORS = ["InvalidActivation", "InvalidActivationId"];

/** SSM's documented maximum page size for DescribeActivations. */
const PAGE_SIZE = 50;

export interface SsmActivationsOptions {
  /** Value of the activation-broker:deployment tag that marks this deployment's activations. */
  readonly deployment: string;
}

/** Hybrid activations through the SSM API. The codes it returns go straight to the SecretStore. */
export class SsmActivations implements ActivationProvider {
  constructor(
    private readonly client: SSMClient,
    private readonly options: SsmActivationsOptions,
  ) {}

  async create(request: CreateActivationRequest): Promise<CreatedActivation> {
    let output;
    try {
      output = await this.client.send(
        new CreateActivationCommand({
          IamRole: request.iamRole,
          RegistrationLimit: request.registrationLimit,
          ExpirationDate: new Date(request.expiresAt),
          DefaultInstanceName: request.defaultInstanceName,
          Description: request.description,
          Tags: Object.entries(request.tags).map(([Key, Value]) => ({ Key, Value })),
        }),
      );
    } catch (error) {
      throwIfTransient(error);
      if (isClientFault(error)) {
        // The request carries no code, so SSM's explanation ("role not found", "limit out of
        // range") is safe to pass on, and it is what an operator needs to fix the pool config.
        const message = error instanceof Error ? error.message : "";
        throw new ActivationRejectedError(
          `SSM refused CreateActivation for pool '${request.pool}' (${sdkErrorName(error)}): ${message}`,
          { cause: error },
        );
      }
      throw error;
    }
    if (!output.ActivationId || !output.ActivationCode) {
      throw new Error("CreateActivation answered without an activation id or code.");
    }
    return { activationId: output.ActivationId, activationCode: output.ActivationCode };
  }

  async delete(activationId: string): Promise<void> {
    try {
      await this.client.send(new DeleteActivationCommand({ ActivationId: activationId }));
    } catch (error) {
      if (isSdkError(error, ...ALREADY_GONE_ERRORS)) return;
      throwIfTransient(error);
      throw error;
    }
  }

  async listOwned(): Promise<ActivationSummary[]> {
    const owned: ActivationSummary[] = [];
    let nextToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new DescribeActivationsCommand({ MaxResults: PAGE_SIZE, NextToken: nextToken }),
        );
      } catch (error) {
        throwIfTransient(error);
        throw error;
      }
      // DescribeActivations filters by id, role or instance name only, so tags are matched here.
      for (const activation of page.ActivationList ?? []) {
        const summary = toSummary(activation);
        if (summary?.tags[TAG_DEPLOYMENT] === this.options.deployment) owned.push(summary);
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return owned;
  }

  async describe(activationId: string): Promise<ActivationSummary | undefined> {
    let page;
    try {
      page = await this.client.send(
        new DescribeActivationsCommand({
          Filters: [{ FilterKey: "ActivationIds", FilterValues: [activationId] }],
        }),
      );
    } catch (error) {
      throwIfTransient(error);
      throw error;
    }
    const found = (page.ActivationList ?? []).find((a) => a.ActivationId === activationId);
    return found && toSummary(found);
  }
}

function throwIfTransient(error: unknown): void {
  const transient = transientError(error, "SSM", 2);
  if (transient) throw transient;
}

function toSummary(activation: Activation): ActivationSummary | undefined {
  if (!activation.ActivationId) return undefined;
  const expiresAt = activation.ExpirationDate?.getTime() ?? 0;
  return {
    activationId: activation.ActivationId,
    iamRole: activation.IamRole ?? "",
    registrationLimit: activation.RegistrationLimit ?? 0,
    registrationsCount: activation.RegistrationsCount ?? 0,
    expiresAt,
    expired: activation.Expired ?? false,
    createdAt: activation.CreatedDate?.getTime() ?? 0,
    tags: Object.fromEntries((activation.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""])),
  };
}
