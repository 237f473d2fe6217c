import { SSMClient } from "@aws-sdk/client-ssm";

/** An error shaped like the SDK's service exceptions (name = wire code, $fault, $metadata). */
export function sdkError(name: string, status = 400): Error {
  return Object.assign(new Error(`${name} from the stub`), {
    name,
    $fault: status < 500 ? "client" : "server",
    $metadata: { httpStatusCode: status },
  });
}

/**
 * An SSM client whose every call fails with `error`: the adapters' error mapping without a network.
 * A real SSMClient with its `send` replaced, as the SDK's paginators accept no other.
 */
export function failingClient(error: Error): SSMClient {
  return stubbedSsmClient(async () => Promise.reject(error));
}

/** A real SSMClient (the paginators check) whose `send` is `send`: no network, no credentials. */
export function stubbedSsmClient(send: () => Promise<unknown>): SSMClient {
  return Object.assign(new SSMClient({ region: "us-east-1" }), { send }) as SSMClient;
}

/** What `promise` rejects with; a promise that resolves fails the test. */
export async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}
