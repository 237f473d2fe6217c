import {
  DeleteParameterCommand,
  GetParametersCommand,
  PutParameterCommand,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { ConfigError } from "../core/errors";
import type { SecretStore, ActivationPair } from "../core/ports";
import { TAG_DEPLOYMENT, TAG_POOL } from "../core/vend-policy";
import {
  DEFAULT_KMS_KEY_ID,
  DEFAULT_PARAMETER_PREFIX,
  isValidParameterPrefix,
  parameterName,
} from "./naming";
import { isSdkError, parameterStoreError } from "./sdk-errors";

export interface ParameterStoreSecretsOptions {
  /** Parameter hierarchy, e.g. `/activation-broker/prod`; defaults to DEFAULT_PARAMETER_PREFIX. */
  readonly prefix?: string;
  /** KMS key (id, ARN or alias) that encrypts the SecureString; defaults to alias/aws/ssm. */
  readonly kmsKeyId?: string;
  /** Tagged on each parameter so an operator can tell deployments apart in the console. */
  readonly deployment?: string;
}

/** The stored document: the reference's field names, so an operator reading it sees familiar keys. */
interface ParameterDocument {
  readonly ActivationId: string;
  readonly ActivationCode: string;
  readonly ExpirationDate: string;
}

/**
 * Activation Codes as SecureString parameters, one per activation, at
 * `${prefix}/${pool}/${activationId}`.
 *
 * Every error that leaves this class is built here or redacted (RedactedSdkError): PutParameter's
 * validation errors can quote the request's Value, and a response that fails to parse keeps its
 * decrypted body on hidden fields of the SDK error. Raw SDK errors therefore never escape, not even
 * as a `cause` (I6).
 */
export class ParameterStoreSecrets implements SecretStore {
  private readonly prefix: string;
  private readonly kmsKeyId: string;

  constructor(
    private readonly client: SSMClient,
    private readonly options: ParameterStoreSecretsOptions = {},
  ) {
    this.prefix = options.prefix ?? DEFAULT_PARAMETER_PREFIX;
    this.kmsKeyId = options.kmsKeyId ?? DEFAULT_KMS_KEY_ID;
    if (!isValidParameterPrefix(this.prefix)) {
      throw new ConfigError(
        `Parameter prefix '${this.prefix}' must look like /name or /name/sub (no trailing slash).`,
      );
    }
  }

  async put(secret: ActivationPair): Promise<void> {
    const document: ParameterDocument = {
      ActivationId: secret.activationId,
      ActivationCode: secret.activationCode,
      ExpirationDate: new Date(secret.expiresAt).toISOString(),
    };
    try {
      await this.client.send(
        new PutParameterCommand({
          Name: this.nameOf(secret.pool, secret.activationId),
          Type: "SecureString",
          KeyId: this.kmsKeyId,
          Value: JSON.stringify(document),
          // Never overwrite: a code, once stored, is the one SSM issued for that activation id.
          Overwrite: false,
          Tags: [
            { Key: TAG_POOL, Value: secret.pool },
            ...(this.options.deployment !== undefined
              ? [{ Key: TAG_DEPLOYMENT, Value: this.options.deployment }]
              : []),
          ],
        }),
      );
    } catch (error) {
      // Names are unique per activation id, so "already exists" only happens when the SDK retried
      // a write that had landed (the first answer was lost): the stored value is ours.
      if (isSdkError(error, "ParameterAlreadyExists")) return;
      throw parameterStoreError(error, "PutParameter");
    }
  }

  /**
   * One GetParameters call for up to 10 activations (its limit): a container that meets a new
   * activation reads the codes of the ready ones with it, so it reads once per few activations
   * rather than once per activation. Names SSM does not know come back as InvalidParameters.
   */
  async getMany(pool: string, activationIds: readonly string[]): Promise<ActivationPair[]> {
    let found: { Name?: string | undefined; Value?: string | undefined }[];
    try {
      const { Parameters } = await this.client.send(
        new GetParametersCommand({
          Names: activationIds.map((id) => this.nameOf(pool, id)),
          WithDecryption: true,
        }),
      );
      found = Parameters ?? [];
    } catch (error) {
      throw parameterStoreError(error, "GetParameters");
    }
    return activationIds.flatMap((activationId) => {
      const stored = found.find((p) => p.Name === this.nameOf(pool, activationId));
      if (!stored) return [];
      const document = parseDocument(stored.Value);
      if (!document || document.ActivationId !== activationId) {
        // Never include the value: it is the decrypted code (and JSON.parse's message quotes it).
        throw new Error(
          `Parameter for activation ${activationId} does not hold a valid activation document.`,
        );
      }
      return [
        {
          pool,
          activationId,
          activationCode: document.ActivationCode,
          expiresAt: Date.parse(document.ExpirationDate),
        },
      ];
    });
  }

  async delete(pool: string, activationId: string): Promise<void> {
    try {
      await this.client.send(new DeleteParameterCommand({ Name: this.nameOf(pool, activationId) }));
    } catch (error) {
      if (isSdkError(error, "ParameterNotFound")) return;
      throw parameterStoreError(error, "DeleteParameter");
    }
  }

  private nameOf(pool: string, activationId: string): string {
    return parameterName(this.prefix, pool, activationId);
  }
}

function parseDocument(value: string | undefined): ParameterDocument | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    // Stryker disable BlockStatement: emptying the catch leaves parsed undefined, which the next check also turns into undefined
    parsed = JSON.parse(value);
  } catch {
    // Stryker restore BlockStatement
    return undefined;
  }
  if (
    parsed === null ||
    // A JSON primitive has none of the three fields, so the check below refuses it too.
    // Stryker disable next-line ConditionalExpression: equivalent (see above)
    typeof parsed !== "object"
  ) {
    return undefined;
  }
  const { ActivationId, ActivationCode, ExpirationDate } = parsed as Record<string, unknown>;
  if (
    typeof ActivationId !== "string" ||
    typeof ActivationCode !== "string" ||
    typeof ExpirationDate !== "string" ||
    Number.isNaN(Date.parse(ExpirationDate))
  ) {
    return undefined;
  }
  return { ActivationId, ActivationCode, ExpirationDate };
}
