import { randomBytes, randomInt, randomUUID, timingSafeEqual } from "node:crypto";
import type { ActivationRecord, SsmState } from "./ssm-state";
import { SsmError } from "./ssm-error";
import {
  type Body,
  epochSeconds,
  paginate,
  readEnum,
  readInteger,
  readList,
  readObject,
  readString,
  readStringList,
  readTags,
  readTimestamp,
} from "./request-fields";

const DAY_MS = 24 * 60 * 60 * 1000;

// Activation IDs are lower-case UUIDs.
// Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html (ActivationId pattern)
const ACTIVATION_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// DefaultInstanceName may only hold letters, spaces, digits and _.:/=+-@ (≤ 256).
// Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html
const INSTANCE_NAME_PATTERN = /^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$/u;

// Real codes are 20 characters drawn from letters, digits, "+" and "/" (CreateActivation
// answers ActivationCode with length 20–250), so clients that pattern-check them keep working.
const CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The client's clock and ours may disagree by the time a request travels; a caller asking for
// "exactly 30 days" must not be refused because a second passed in flight.
const THIRTY_DAY_TOLERANCE_MS = 60_000;

function newActivationCode(): string {
  let code = "";
  for (let i = 0; i < 20; i += 1) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

function newManagedInstanceId(): string {
  // Hybrid node IDs are "mi-" followed by 17 lower-case hex digits.
  // Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html (InstanceId pattern)
  return `mi-${randomBytes(9).toString("hex").slice(0, 17)}`;
}

export function isExpired(activation: ActivationRecord, now: Date): boolean {
  return activation.expirationDate.getTime() <= now.getTime();
}

/** Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html */
export function createActivation(state: SsmState, body: Body): Body {
  const now = state.clock.now();
  // IamRole is required, at most 64 characters.
  const iamRole = readString(body, "IamRole", { required: true, min: 1, max: 64 }) as string;
  // Description 0–256 characters.
  const description = readString(body, "Description", { max: 256 });
  const defaultInstanceName = readString(body, "DefaultInstanceName", {
    max: 256,
    pattern: INSTANCE_NAME_PATTERN,
  });
  // RegistrationLimit 1–1000, "The default value is 1."
  const registrationLimit = readInteger(body, "RegistrationLimit", { min: 1, max: 1000 }) ?? 1;
  // "You can specify a date up to 30 days in advance. If you don't provide an expiration date,
  // the activation code expires in 24 hours."
  const requested = readTimestamp(body, "ExpirationDate");
  const expirationDate = requested ?? new Date(now.getTime() + DAY_MS);
  if (requested) {
    if (requested.getTime() <= now.getTime()) {
      throw new SsmError("ValidationException", "ExpirationDate must be in the future.");
    }
    if (requested.getTime() > now.getTime() + 30 * DAY_MS + THIRTY_DAY_TOLERANCE_MS) {
      throw new SsmError("ValidationException", "ExpirationDate can be at most 30 days in the future.");
    }
  }
  const tags = readTags(body, "Tags") ?? [];
  // RegistrationMetadata is "reserved for internal use": accepted, ignored.
  readList(body, "RegistrationMetadata");

  const activation: ActivationRecord = {
    activationId: randomUUID(),
    activationCode: newActivationCode(),
    iamRole,
    registrationLimit,
    registrationsCount: 0,
    expirationDate,
    createdDate: now,
    tags,
    seq: state.nextSeq(),
    ...(description !== undefined ? { description } : {}),
    ...(defaultInstanceName !== undefined ? { defaultInstanceName } : {}),
  };
  state.activations.set(activation.activationId, activation);
  return { ActivationId: activation.activationId, ActivationCode: activation.activationCode };
}

/** The Activation shape. Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Activation.html */
function toWire(activation: ActivationRecord, now: Date): Body {
  return {
    ActivationId: activation.activationId,
    ...(activation.description !== undefined ? { Description: activation.description } : {}),
    ...(activation.defaultInstanceName !== undefined
      ? { DefaultInstanceName: activation.defaultInstanceName }
      : {}),
    IamRole: activation.iamRole,
    RegistrationLimit: activation.registrationLimit,
    RegistrationsCount: activation.registrationsCount,
    ExpirationDate: epochSeconds(activation.expirationDate),
    Expired: isExpired(activation, now),
    CreatedDate: epochSeconds(activation.createdDate),
    Tags: activation.tags.map((t) => ({ ...t })),
  };
}

const ACTIVATION_FILTER_KEYS = ["ActivationIds", "DefaultInstanceName", "IamRole"] as const;

/**
 * Filters: FilterKey ActivationIds | DefaultInstanceName | IamRole, values matched exactly
 * (any value of a filter matches; all filters must match). MaxResults 1–50.
 * Sources: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeActivations.html
 *          https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeActivationsFilter.html
 */
export function describeActivations(state: SsmState, body: Body): Body {
  const now = state.clock.now();
  const maxResults = readInteger(body, "MaxResults", { min: 1, max: 50 }) ?? 50;
  const nextToken = readString(body, "NextToken");
  const filters = (readList(body, "Filters") ?? []).map((raw) => {
    const filter = readObject(raw, "Filters");
    const key = readEnum(filter, "FilterKey", ACTIVATION_FILTER_KEYS);
    if (key === undefined)
      throw new SsmError("InvalidFilter", "The filter name isn't valid. FilterKey is required.");
    return { key, values: readStringList(filter, "FilterValues") ?? [] };
  });

  const matching = [...state.activations.values()]
    .filter((a) =>
      filters.every(({ key, values }) => {
        const actual =
          key === "ActivationIds" ? a.activationId : key === "IamRole" ? a.iamRole : a.defaultInstanceName;
        return actual !== undefined && values.includes(actual);
      }),
    )
    .sort((x, y) => (x.seq < y.seq ? -1 : 1));
  const { page, nextToken: next } = paginate(matching, (a) => a.seq, nextToken, maxResults);
  return { ActivationList: page.map((a) => toWire(a, now)), ...(next ? { NextToken: next } : {}) };
}

/**
 * Unknown (or already deleted) IDs answer InvalidActivationId; a malformed ID fails the pattern.
 * Deleting an activation doesn't deregister the nodes registered with it.
 * Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html
 */
export function deleteActivation(state: SsmState, body: Body): Body {
  const activationId = readString(body, "ActivationId", {
    required: true,
    pattern: ACTIVATION_ID_PATTERN,
  }) as string;
  if (!state.activations.delete(activationId)) {
    throw new SsmError(
      "InvalidActivationId",
      "The activation ID isn't valid. Verify that you entered the correct ActivationId and try again.",
    );
  }
  return {};
}

function codesMatch(expected: string, given: string): boolean {
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(given, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The call SSM Agent makes for `amazon-ssm-agent -register` (undocumented; the request, the
 * answer the agent accepts and its three errors are in
 * test/emulator/fixtures/agent-register-request.json).
 * It runs to completion synchronously, so concurrent registrations can't both take the last slot.
 */
export function registerManagedInstance(state: SsmState, body: Body): Body {
  const now = state.clock.now();
  const activationCode = readString(body, "ActivationCode", { required: true, sensitive: true }) as string;
  const activationId = readString(body, "ActivationId", { required: true }) as string;
  const fingerprint = readString(body, "Fingerprint");
  readString(body, "PublicKey");
  readString(body, "PublicKeyType");

  const activation = state.activations.get(activationId);
  if (!activation || !codesMatch(activation.activationCode, activationCode)) {
    // Same answer for "no such activation" and "wrong code": it must not reveal which IDs exist.
    throw new SsmError(
      "InvalidActivation",
      "The activation isn't valid. The activation might have been deleted, or the ActivationId and the ActivationCode don't match.",
    );
  }
  if (isExpired(activation, now)) {
    throw new SsmError("ActivationExpired", `Activation ${activationId} has expired.`);
  }
  if (activation.registrationsCount >= activation.registrationLimit) {
    throw new SsmError(
      "RegistrationLimitExceeded",
      `Activation ${activationId} has reached its registration limit of ${activation.registrationLimit}.`,
    );
  }
  activation.registrationsCount += 1;

  let instanceId = newManagedInstanceId();
  while (state.managedNodes.has(instanceId)) instanceId = newManagedInstanceId();
  // The node inherits the activation's role, default name and tags (API_CreateActivation.html, Tags:
  // "tags assigned to the activation are automatically applied to the on-premises servers or VMs").
  state.managedNodes.set(instanceId, {
    instanceId,
    activationId,
    iamRole: activation.iamRole,
    registrationDate: now,
    lastPingDateTime: now,
    pingStatus: "Online",
    tags: activation.tags.map((t) => ({ ...t })),
    seq: state.nextSeq(),
    ...(activation.defaultInstanceName !== undefined ? { name: activation.defaultInstanceName } : {}),
    ...(fingerprint !== undefined ? { fingerprint } : {}),
  });
  return { InstanceId: instanceId };
}
