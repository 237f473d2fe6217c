#!/usr/bin/env bats
# The script's own JSON reader (servers have no jq): key order, whitespace, escapes, nesting.

setup() {
  # shellcheck source=agent/install.sh
  INSTALL_SOURCE_ONLY=1 source "$BATS_TEST_DIRNAME/../../agent/install.sh"
  set +eu
}

@test "reads fields in any order and spacing" {
  json_parse $' {\n "Region" : "eu-west-1",\t"ActivationCode":"Ab+/=09","ActivationId":"x-1" } '
  [ "$(json_get ActivationId)" = x-1 ]
  [ "$(json_get ActivationCode)" = "Ab+/=09" ]
  [ "$(json_get Region)" = eu-west-1 ]
}

@test "decodes escapes" {
  json_parse '{"a":"q\"b\\s\/t\u0041\n"}'
  [ "$(json_get a)" = $'q"b\\s/tA\n' ]
}

@test "nested objects are addressed by path; nested keys never shadow top-level ones" {
  json_parse '{"error":{"code":"PoolNotFound","message":"Pool x"},"list":[{"ActivationCode":"no"}],"ActivationCode":"yes"}'
  [ "$(json_get error.code)" = PoolNotFound ]
  [ "$(json_get error.message)" = "Pool x" ]
  [ "$(json_get ActivationCode)" = yes ]
  json_parse '{"Pool":"\"ActivationCode\":\"fake\"","n":1}'
  [ -z "$(json_get ActivationCode)" ]
}

@test "rejects what is not one JSON object" {
  local bad
  for bad in '' '<html>' '{"a":"b"' '{"a":"b"} trailing' '["a"]' '{"a":tru}' '{"a":"\x"}' '{a:"b"}'; do
    if json_parse "$bad"; then echo "accepted: $bad"; return 1; fi
  done
}

@test "documents over 64 KB are refused without being read" {
  local big
  big="{\"a\":\"$(printf 'x%.0s' {1..65600})\"}"
  if json_parse "$big"; then echo "accepted 65 KB"; return 1; fi
}

@test "a 64 KB document is parsed or refused in well under a second, however it is built" {
  local long many escapes started
  long="{\"a\":\"$(printf 'x%.0s' {1..65000})\",\"ActivationId\":\"x-1\"}"
  many="{\"a\":[$(printf '1,%.0s' {1..30000})1]}"
  escapes="{\"a\":\"$(printf '\\\\n%.0s' {1..20000})\"}"
  started=$EPOCHREALTIME
  json_parse "$long"
  [ "$(json_get ActivationId)" = x-1 ]
  if json_parse "$many"; then echo "accepted 30000 tokens"; return 1; fi
  if json_parse "$escapes"; then echo "accepted 20000 escapes"; return 1; fi
  local elapsed_ms=$(( (${EPOCHREALTIME/./} - ${started/./}) / 1000 ))
  echo "elapsed ${elapsed_ms} ms"
  (( elapsed_ms < 2000 ))
}
