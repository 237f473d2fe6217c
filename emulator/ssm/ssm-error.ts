/**
 * An error SSM answers with. The wire shape is `{"__type": code, "message": …, "Message": …}`:
 * the AWS SDKs read either spelling, and the SSM Agent (aws-sdk-go v1) reads `Message`
 * (test/emulator/fixtures/agent-register-request.json), so both are sent.
 */
export class SsmError extends Error {
  override readonly name = "SsmError";

  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/**
 * Constraint violations. AWS phrases them as "1 validation error detected: Value 'x' at 'member'
 * failed to satisfy constraint: …"; sensitive members (codes, parameter values) never echo
 * their value, as in AWS.
 */
export function validationError(member: string, constraint: string, value?: unknown): SsmError {
  const shown = value === undefined ? "Value" : `Value '${String(value)}'`;
  return new SsmError(
    "ValidationException",
    `1 validation error detected: ${shown} at '${lowerFirst(member)}' failed to satisfy constraint: ${constraint}`,
  );
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
