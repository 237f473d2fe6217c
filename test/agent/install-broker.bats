#!/usr/bin/env bats
# Talking to the broker: Retry-After, backoff, failures with clear messages and exit codes.

load helpers/common

setup() {
  sandbox_setup
  distro rocky
}

@test "503 with Retry-After, then 200: waits as told, then registers" {
  harness POST /__faults '[{"status":503,"retryAfter":2}]' >/dev/null
  local started=$SECONDS
  run_install --url "$BROKER"
  show
  [ "$status" -eq 0 ]
  (( SECONDS - started >= 2 ))
  [ "$(broker_requests)" -eq 2 ]
  [[ $stderr == *"broker busy (HTTP 503, Scripted: scripted 503); retrying in 2.000s"* ]]
  emulator_lists "$(registered_id_in_sandbox)"
}

@test "429 then 500 then 200: retries each transient failure" {
  harness POST /__faults '[{"status":429,"retryAfter":1},{"status":500},{"status":502,"body":"<html>bad gateway</html>"}]' >/dev/null
  run_install --url "$BROKER" --pool web
  show
  [ "$status" -eq 0 ]
  [ "$(broker_requests)" -eq 4 ]
}

@test "a Retry-After beyond the retry budget gives up at once (exit 10)" {
  harness POST /__faults '[{"status":503,"retryAfter":120}]' >/dev/null
  local started=$SECONDS
  run_install --url "$BROKER" --max-wait 30
  show
  [ "$status" -eq 10 ]
  (( SECONDS - started < 10 ))
  [[ $stderr == *"broker busy (HTTP 503"*"giving up after 1 attempt(s)"* ]]
}

@test "a broker that keeps failing: bounded retries, then exit 10" {
  harness POST /__faults "$(printf '[%s{"status":503}]' "$(printf '{"status":503},%.0s' {1..40})")" >/dev/null
  local started=$SECONDS
  run_install --url "$BROKER" --max-wait 2
  show
  [ "$status" -eq 10 ]
  (( SECONDS - started <= 5 ))
  (( $(broker_requests) >= 3 ))
  [[ $stderr == *"giving up after"* ]]
  [ ! -e "$ROOT/var/lib/amazon/ssm/registration" ]
}

@test "broker down: clear message naming the URL, exit 10" {
  run_install --url "http://127.0.0.1:9/prod" --max-wait 1
  show
  [ "$status" -eq 10 ]
  [[ $stderr == *"cannot reach the broker at http://127.0.0.1:9/prod/"* ]]
  [[ $stderr == *"giving up after"* ]]
}

@test "unknown pool: the broker's 404 PoolNotFound is reported, exit 11, no retry" {
  run_install --url "$AGENT_TEST_BROKER_URL" --pool no-such-pool
  show
  [ "$status" -eq 11 ]
  [[ $stderr == *"broker refused the request GET $AGENT_TEST_BROKER_URL/activations/no-such-pool (HTTP 404, PoolNotFound:"* ]]
  [ ! -e "$ROOT/var/lib/amazon/ssm/registration" ]
}

@test "other 4xx answers are not retried (exit 11)" {
  harness POST /__faults '[{"status":403,"body":"{\"message\":\"Forbidden\"}"}]' >/dev/null
  run_install --url "$BROKER"
  show
  [ "$status" -eq 11 ]
  [ "$(broker_requests)" -eq 1 ]
}

@test "a 200 that is not a usable pair: exit 12, nothing registered" {
  # Hostile input: every field must have the shape SSM gives it before anything uses it. The
  # region comes from the answer here (no --region), so its shape is checked too.
  install_agent_in_sandbox
  REGION_ARG=()
  local uuid=0b1c2d3e-0000-4000-8000-0123456789ab
  local bodies=(
    '<html>captive portal</html>'
    '{"ActivationId":"'$uuid'","Region":"eu-west-1"}'
    '{"ActivationId":"a-1","ActivationCode":"abcdefghijklmnopqrst","Region":"eu-west-1"}'
    '{"ActivationId":"'${uuid^^}'","ActivationCode":"abcdefghijklmnopqrst","Region":"eu-west-1"}'
    '{"ActivationId":"'$uuid'","ActivationCode":"abc$(reboot)xyzabcdefghij","Region":"eu-west-1"}'
    '{"ActivationId":"'$uuid'","ActivationCode":"tooshort12","Region":"eu-west-1"}'
    '{"ActivationId":"'$uuid'","ActivationCode":"abcdefghijklmnopqrst","Region":"eu-west-1; rm -rf /"}'
    '{"ActivationId":"'$uuid'","ActivationCode":"abcdefghijklmnopqrst","Region":"eu-west-1"} trailing'
  )
  local body json
  for body in "${bodies[@]}"; do
    json=$(printf '%s' "$body" | sed 's/\\/\\\\/g; s/"/\\"/g')
    harness POST /__faults "[{\"status\":200,\"body\":\"$json\"}]" >/dev/null
    run_install --url "$BROKER"
    [ "$status" -eq 12 ] || { echo "accepted: $body"; show; return 1; }
  done
  [ ! -e "$ROOT/var/lib/amazon/ssm/registration" ]
  ! grep -q -- '-register -code' "$STUB_LOG"
}

@test "an answer over 64 KB is refused unread and fast (exit 12), with or without Content-Length" {
  install_agent_in_sandbox
  local pad
  pad=$(head -c 70000 /dev/zero | tr '\0' a)
  local started=$SECONDS
  harness POST /__faults "[{\"status\":200,\"body\":\"{\\\"pad\\\":\\\"$pad\\\"}\"}]" >/dev/null
  run_install --url "$BROKER"
  show
  [ "$status" -eq 12 ]
  [[ $stderr == *"larger than 65536 bytes"* ]]
  harness POST /__faults "[{\"status\":200,\"contentLength\":true,\"body\":\"{\\\"pad\\\":\\\"$pad\\\"}\"}]" >/dev/null
  run_install --url "$BROKER"
  [ "$status" -eq 12 ] || { show; return 1; }
  [[ $stderr == *"larger than 65536 bytes"* ]]
  (( SECONDS - started < 10 ))
  [ ! -e "$ROOT/var/lib/amazon/ssm/registration" ]
}

@test "a hostile answer just under 64 KB (thousands of tokens) is refused fast (exit 12)" {
  install_agent_in_sandbox
  local many
  many=$(printf '1,%.0s' {1..30000})
  local started=$SECONDS
  harness POST /__faults "[{\"status\":200,\"body\":\"{\\\"a\\\":[${many}1]}\"}]" >/dev/null
  run_install --url "$BROKER"
  show
  [ "$status" -eq 12 ]
  (( SECONDS - started < 10 ))
}

@test "the region in the answer can be overridden with --region" {
  run_install --url "$BROKER" --region ap-southeast-2
  show
  [ "$status" -eq 0 ]
  [ "$(s3_downloads)" = "ap-southeast-2/latest/linux_amd64/ssm-setup-cli" ]
  grep -q -- '-region ap-southeast-2' "$STUB_LOG"
}

@test "plain http is refused for a non-loopback broker; no URL is a usage error (exit 2)" {
  run_install --url http://broker.example.com
  [ "$status" -eq 2 ]
  [[ $stderr == *"must use https"* ]]
  run_install
  [ "$status" -eq 2 ]
  [[ $stderr == *"no broker URL"* ]]
  run_install --url "$BROKER" --pool 'bad pool!'
  [ "$status" -eq 2 ]
  run_install --url "$BROKER" --bogus
  [ "$status" -eq 2 ]
  [ "$(broker_requests)" -eq 0 ]
}

@test "--ca-bundle must be readable; verification cannot be turned off" {
  run_install --url "$BROKER" --ca-bundle /nonexistent.pem
  [ "$status" -eq 2 ]
  ! grep -qE -- '--insecure|(^|[^-])-k( |$)' "$INSTALL_SH"
}

@test "registration refused by SSM (InvalidActivation): agent message shown, exit 21" {
  harness POST /__faults '[{"status":200,"body":"{\"ActivationId\":\"00000000-0000-0000-0000-000000000000\",\"ActivationCode\":\"bogusbogusbogusbogus\",\"Region\":\"eu-west-1\"}"}]' >/dev/null
  run_install --url "$BROKER"
  show
  [ "$status" -eq 21 ]
  [[ $stderr == *"InvalidActivation"* ]]
  [[ $stderr != *"bogusbogusbogusbogus"* && $output != *"bogusbogusbogusbogus"* ]]
}
