#!/usr/bin/env bats
# Talking to the broker: Retry-After, backoff, failures with clear messages and exit codes.

load helpers/common

setup() {
  sandbox_setup
  distro rocky
}

# use_old_curl: the sandbox's curl says it is 7.61.1 (RHEL 8): the script must retry by itself.
use_old_curl() {
  ln -sf "$STUBS/curl-7.61" "$BIN/curl"
  EXTRA_ENV+=(STUB_REAL_CURL="$(command -v curl)")
}

@test "503 with Retry-After, then 200: curl waits as told, then the host registers" {
  harness POST /__faults '[{"status":503,"retryAfter":2}]' >/dev/null
  local started=$SECONDS
  run_install --url "$BROKER"
  show
  [ "$status" -eq 0 ]
  (( SECONDS - started >= 2 ))
  [ "$(broker_requests)" -eq 2 ]
  emulator_lists "$(registered_id_in_sandbox)"
}

@test "curl older than 7.66 (RHEL 8): the script's own loop honours Retry-After and retries 429/5xx" {
  use_old_curl
  harness POST /__faults '[{"status":429,"retryAfter":2},{"status":503},{"status":502,"body":"<html>bad gateway</html>"}]' >/dev/null
  local started=$SECONDS
  run_install --url "$BROKER" --pool web
  show
  [ "$status" -eq 0 ]
  (( SECONDS - started >= 2 + 2 + 4 ))
  [ "$(broker_requests)" -eq 4 ]
  [[ $stderr == *"broker unavailable (HTTP 429, Scripted); retrying in 2s"* ]]
  # Without Retry-After: 1, 2, 4 ... 30 s by attempt.
  [[ $stderr == *"broker unavailable (HTTP 503, Scripted); retrying in 2s"* ]]
  [[ $stderr == *"broker unavailable (HTTP 502); retrying in 4s"* ]]
  [ "$(grep -c '^curl-7.61 broker call$' "$STUB_LOG")" -eq 4 ]
  ! grep -q 'with --retry' "$STUB_LOG"
}

@test "curl 7.66 or newer: one curl call does the retrying (--retry, --retry-max-time)" {
  harness POST /__faults '[{"status":429,"retryAfter":1},{"status":500},{"status":502,"body":"<html>bad gateway</html>"}]' >/dev/null
  run_install --url "$BROKER" --pool web
  show
  [ "$status" -eq 0 ]
  [ "$(broker_requests)" -eq 4 ]
  [[ $stderr != *"retrying in"* ]]
  grep -q -- '--retry-max-time "$MAX_WAIT"' "$INSTALL_SH"
}

@test "a Retry-After beyond --max-wait gives up at once (exit 10), with either curl" {
  harness POST /__faults '[{"status":503,"retryAfter":120}]' >/dev/null
  local started=$SECONDS
  run_install --url "$BROKER" --max-wait 30
  show
  [ "$status" -eq 10 ]
  (( SECONDS - started < 10 ))
  [[ $stderr == *"broker unavailable (HTTP 503, Scripted); gave up after"* ]]
  use_old_curl
  harness POST /__faults '[{"status":503,"retryAfter":120}]' >/dev/null
  run_install --url "$BROKER" --max-wait 30
  [ "$status" -eq 10 ] || { show; return 1; }
  (( SECONDS - started < 10 ))
}

@test "a broker that keeps failing: bounded retries, then exit 10, with either curl" {
  local faults
  faults=$(printf '[%s{"status":503}]' "$(printf '{"status":503},%.0s' {1..40})")
  harness POST /__faults "$faults" >/dev/null
  local started=$SECONDS
  run_install --url "$BROKER" --max-wait 3
  show
  [ "$status" -eq 10 ]
  (( SECONDS - started <= 8 ))
  (( $(broker_requests) >= 2 ))
  [[ $stderr == *"gave up after"* ]]
  [ ! -e "$ROOT/var/lib/amazon/ssm/registration" ]
  use_old_curl
  harness POST /__reset >/dev/null
  harness POST /__faults "$faults" >/dev/null
  started=$SECONDS
  run_install --url "$BROKER" --max-wait 3
  [ "$status" -eq 10 ] || { show; return 1; }
  (( SECONDS - started <= 8 ))
  (( $(broker_requests) >= 2 ))
}

@test "broker down: clear message naming the URL, exit 10" {
  run_install --url "http://127.0.0.1:9/prod" --max-wait 1
  show
  [ "$status" -eq 10 ]
  [[ $stderr == *"cannot reach the broker at http://127.0.0.1:9/prod/"* ]]
  [[ $stderr == *"gave up after"* ]]
}

@test "unknown pool: the broker's 404 PoolNotFound is reported, exit 11, no retry" {
  run_install --url "$AGENT_TEST_BROKER_URL" --pool no-such-pool
  show
  [ "$status" -eq 11 ]
  [[ $stderr == *"broker refused the request GET $AGENT_TEST_BROKER_URL/activations/no-such-pool (HTTP 404, PoolNotFound)"* ]]
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
    '{"ActivationId":"'$uuid'","ActivationCode":"abcdefghijklmnopqrst","Region":"eu-west-1"}'
    "ACTIVATION_ID=$uuid\nREGION=eu-west-1\n"
    "ACTIVATION_ID=a-1\nACTIVATION_CODE=abcdefghijklmnopqrst\nREGION=eu-west-1\n"
    "ACTIVATION_ID=${uuid^^}\nACTIVATION_CODE=abcdefghijklmnopqrst\nREGION=eu-west-1\n"
    "ACTIVATION_ID=$uuid\nACTIVATION_CODE=abc\$(reboot)xyzabcdefghij\nREGION=eu-west-1\n"
    "ACTIVATION_ID=$uuid\nACTIVATION_CODE=tooshort12\nREGION=eu-west-1\n"
    "ACTIVATION_ID=$uuid\nACTIVATION_CODE=abcdefghijklmnopqrst\nREGION=eu-west-1; rm -rf /\n"
    "ACTIVATION_ID=$uuid\nACTIVATION_CODE=abcdefghijklmnopqrst abc\nREGION=eu-west-1\n"
  )
  local body json
  for body in "${bodies[@]}"; do
    json=$(printf '%s' "$body" | sed 's/\\n/\n/g' | sed 's/\\/\\\\/g; s/"/\\"/g' | sed ':a;N;$!ba;s/\n/\\n/g')
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
  [[ $stderr == *"plain http only on loopback"* ]]
  run_install
  [ "$status" -eq 2 ]
  [[ $stderr == *"no broker URL"* ]]
  run_install --url "$BROKER" --pool 'bad pool!'
  [ "$status" -eq 2 ]
  run_install --url "$BROKER" --bogus
  [ "$status" -eq 2 ]
  [ "$(broker_requests)" -eq 0 ]
}

@test "TLS verification cannot be turned off" {
  ! grep -qE -- '--insecure|(^|[^-])-k( |$)' "$INSTALL_SH" "$INSTALL_EKS_SH"
}

# A pair SSM refuses: the first answer here is a pair the emulated SSM does not know.
BOGUS_ID=00000000-0000-4000-8000-000000000000
BOGUS_PAIR="ACTIVATION_ID=$BOGUS_ID\\nACTIVATION_CODE=bogusbogusbogusbogus\\nREGION=us-east-1\\n"

@test "a pair SSM refuses (InvalidActivation): asked again ONCE with ?refused=, then registered" {
  harness POST /__faults "[{\"status\":200,\"body\":\"$BOGUS_PAIR\"}]" >/dev/null
  run_install --url "$BROKER" --pool web
  show
  [ "$status" -eq 0 ]
  [ "$(broker_requests)" -eq 2 ]
  harness GET /__requests | grep -qx "broker GET /activations/web?refused=$BOGUS_ID"
  [[ $stderr == *"SSM refused activation $BOGUS_ID (InvalidActivation): asking the broker once for another"* ]]
  [[ $stderr != *"bogusbogusbogusbogus"* && $output != *"bogusbogusbogusbogus"* ]]
  emulator_lists "$(registered_id_in_sandbox)"
}

@test "refused twice: exit 21 after exactly two broker calls, the codes never shown" {
  harness POST /__faults "[{\"status\":200,\"body\":\"$BOGUS_PAIR\"},{\"status\":200,\"body\":\"$BOGUS_PAIR\"}]" >/dev/null
  run_install --url "$BROKER"
  show
  [ "$status" -eq 21 ]
  [ "$(broker_requests)" -eq 2 ]
  harness GET /__requests | grep -qx "broker GET /?refused=$BOGUS_ID"
  [[ $stderr == *"InvalidActivation"* ]]
  [[ $stderr != *"bogusbogusbogusbogus"* && $output != *"bogusbogusbogusbogus"* ]]
}

@test "a registration that fails for another reason is not retried (exit 21, one broker call)" {
  STUB_SSM_ENDPOINT=http://127.0.0.1:9
  run_install --url "$BROKER"
  show
  [ "$status" -eq 21 ]
  [ "$(broker_requests)" -eq 1 ]
}
