import {
  CreateActivationCommand,
  DeleteActivationCommand,
  DescribeActivationsCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { ActivationRejectedError } from "../core/errors";
import type {
  ActivationCount,
  ActivationProvider,
  CreateActivationRequest,
  CreatedActivation,
} from "../core/ports";
import type { ActivationStatus, ActivationStatusReader } from "../core/refused-pairs";
import { isClientFault, isSdkError, sdkErrorName, transientError } from "./sdk-errors";

/**
 * What DeleteActivation answers for an activation that no longer exists ("The activation might have
 * been deleted") or an id SSM does not know.
 * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html
 * (also https://docs.aws.amazon.com/goto/WebAPI/ssm/DeleteActivation)
 */
const ALREADY_GONE_ERRORS = ["InvalidActivation", "InvalidActivationId"];

/** Hybrid activations through the SSM API. The codes it returns go straight to the SecretStore. */
export class SsmActivations implements ActivationProvider, ActivationStatusReader {
  constructor(private readonly client: SSMClient) {}

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
        // Stryker disable next-line StringLiteral: unreachable, isClientFault holds only for an Error
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

  delete(activationId: string): Promise<void> {
    return deleteActivation(this.client, activationId);
  }

  async describe(activationId: string): Promise<ActivationCount | undefined> {
    const status = await this.status(activationId);
    if (!status) return undefined;
    const { registrationLimit, registrationsCount } = status;
    return { activationId, registrationLimit, registrationsCount };
  }

  /** One DescribeActivations call filtered by the id: counts, expiry, and whether SSM knows it. */
  async status(activationId: string): Promise<ActivationStatus | undefined> {
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
    if (!found) return undefined;
    return {
      activationId,
      registrationLimit: found.RegistrationLimit ?? 0,
      registrationsCount: found.RegistrationsCount ?? 0,
      // SSM always sends both; a missing date reads as expired, the side that retires.
      expiresAt: found.ExpirationDate?.getTime() ?? 0,
      expired: found.Expired ?? false,
    };
  }
}

/** Shared with the janitor's inventory: an activation already gone is not an error. */
export async function deleteActivation(client: SSMClient, activationId: string): Promise<void> {
  try {
    await client.send(new DeleteActivationCommand({ ActivationId: activationId }));
  } catch (error) {
    if (isSdkError(error, ...ALREADY_GONE_ERRORS)) return;
    throwIfTransient(error);
    throw error;
  }
}

export function throwIfTransient(error: unknown): void {
  const transient = transientError(error, "SSM", 2);
  if (transient) throw transient;
}
