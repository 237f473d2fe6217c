import { describe, expect, it } from "vitest";
import { scriptBaseUrl } from "../../src/http/script-url";

const PUBLIC = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/prod";
const VPCE = "vpce-0a1b2c3d4e5f60718";
const ALIAS_HOST = `abc123defg-${VPCE}.execute-api.eu-west-1.amazonaws.com`;

describe("the URL served install scripts point at", () => {
  it("is the alias when the request came through an associated endpoint's alias", () => {
    expect(scriptBaseUrl(PUBLIC, [VPCE], ALIAS_HOST)).toBe(`https://${ALIAS_HOST}/prod`);
    expect(scriptBaseUrl(PUBLIC, ["vpce-11111111", VPCE], ALIAS_HOST.toUpperCase())).toBe(
      `https://${ALIAS_HOST}/prod`,
    );
  });

  it("is the configured URL for the private-DNS name and when no Host came", () => {
    expect(scriptBaseUrl(PUBLIC, [VPCE], "abc123defg.execute-api.eu-west-1.amazonaws.com")).toBe(PUBLIC);
    expect(scriptBaseUrl(PUBLIC, [VPCE], undefined)).toBe(PUBLIC);
  });

  it.each([
    ["an arbitrary host", "evil.example.com"],
    [
      "the alias of an endpoint not associated",
      "abc123defg-vpce-99999999999999999.execute-api.eu-west-1.amazonaws.com",
    ],
    ["another API's alias through our endpoint", `zzz999zzzz-${VPCE}.execute-api.eu-west-1.amazonaws.com`],
    ["our alias in another region", `abc123defg-${VPCE}.execute-api.us-east-1.amazonaws.com`],
    ["our alias as a prefix of another domain", `${ALIAS_HOST}.evil.example.com`],
    ["our alias with a port", `${ALIAS_HOST}:8443`],
    ["our alias with a path", `${ALIAS_HOST}/x`],
  ])("is the configured URL for %s", (_, host) => {
    expect(scriptBaseUrl(PUBLIC, [VPCE], host)).toBe(PUBLIC);
  });

  it("is the configured URL when no endpoint is associated", () => {
    expect(scriptBaseUrl(PUBLIC, [], ALIAS_HOST)).toBe(PUBLIC);
  });
});
