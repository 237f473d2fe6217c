/**
 * The URL the served install scripts point back at. `publicUrl` is the API's own URL (on AWS its
 * private-DNS name, `https://<api>.execute-api.<region>.amazonaws.com/<stage>`). A request that
 * came through the alias of one of the API's VPC endpoints (`<api>-<vpce>.execute-api…`, for
 * servers whose DNS does not reach the VPC's resolver) gets that alias, so the script works for
 * the server that fetched it. Any other Host, which a caller can set at will, gets `publicUrl`:
 * a script never points at a host the caller chose.
 */
export function scriptBaseUrl(
  publicUrl: string,
  vpcEndpointIds: readonly string[],
  requestHost: string | undefined,
): string {
  const url = new URL(publicUrl);
  const [apiId, ...domain] = url.hostname.split(".");
  const host = requestHost?.trim().toLowerCase();
  const alias = vpcEndpointIds.find((vpce) => host === [`${apiId}-${vpce}`, ...domain].join("."));
  if (!alias) return publicUrl;
  url.hostname = host!;
  return url.toString().replace(/\/+$/, "");
}
