#!/usr/bin/env bats
# Idempotency, --force, --dry-run, secrecy of the Activation Code, services and proxy.

load helpers/common

setup() {
  sandbox_setup
  distro ubuntu
}

@test "second run on a registered host changes nothing and does not call the broker" {
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  local first=$output
  harness POST /__reset >/dev/null
  : >"$STUB_LOG"
  local before
  before=$(tree_snapshot)
  run_install --url "$BROKER"
  show
  [ "$status" -eq 0 ]
  [ "$output" = "$first" ]
  [[ $stderr == *"already registered as managed node $first"* ]]
  [ "$(broker_requests)" -eq 0 ]
  [ ! -s "$STUB_LOG" ]
  [ "$(tree_snapshot)" = "$before" ]
}

@test "--force re-registers an installed agent with -clear, never reinstalls it" {
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  local first=$output
  : >"$STUB_LOG"
  harness POST /__reset >/dev/null
  run_install --url "$BROKER" --force
  show
  [ "$status" -eq 0 ]
  [[ $output =~ ^mi-[0-9a-f]{17}$ ]]
  [ "$output" != "$first" ]
  emulator_lists "$output"
  grep -q -- '^amazon-ssm-agent -register -code \*\*\* -id .* -y -clear$' "$STUB_LOG"
  ! grep -qE '^(ssm-setup-cli|apt-get|dpkg)' "$STUB_LOG"
  [ -z "$(s3_requests)" ]
  grep -qx 'systemctl stop amazon-ssm-agent' "$STUB_LOG"
  grep -qx 'systemctl start amazon-ssm-agent' "$STUB_LOG"
}

@test "an installed but unregistered agent is registered in place" {
  mkdir -p "$ROOT/usr/bin"
  cp "$STUBS/amazon-ssm-agent" "$ROOT/usr/bin/amazon-ssm-agent"
  run_install --url "$BROKER"
  show
  [ "$status" -eq 0 ]
  [ -z "$(s3_requests)" ]
  grep -q '^amazon-ssm-agent -register' "$STUB_LOG"
}

@test "--force with ssm-setup-cli passes -override" {
  mkdir -p "$ROOT/var/lib/amazon/ssm"
  echo '{"ManagedInstanceID":"mi-0123456789abcdef0","Region":"eu-west-1"}' >"$ROOT/var/lib/amazon/ssm/registration"
  run_install --url "$BROKER" --force
  show
  [ "$status" -eq 0 ]
  grep -q -- "^ssm-setup-cli -register -activation-code \\*\\*\\* -activation-id .* -region $AGENT_TEST_REGION -override\$" "$STUB_LOG"
  [ "$output" != mi-0123456789abcdef0 ]
}

@test "the service is enabled and started, and the node id printed is the registration file's" {
  run_install --url "$BROKER"
  show
  [ "$status" -eq 0 ]
  grep -qx 'systemctl enable amazon-ssm-agent' "$STUB_LOG"
  grep -qx 'systemctl is-active --quiet amazon-ssm-agent' "$STUB_LOG"
  [ "$output" = "$(registered_id_in_sandbox)" ]
}

@test "a service that will not start: exit 22" {
  STUB_FAIL="systemctl:enable"
  run_install --url "$BROKER"
  show
  [ "$status" -eq 22 ]
}

@test "--dry-run prints the plan, changes nothing and does not call the broker" {
  local before
  before=$(tree_snapshot)
  run_install --url "$BROKER" --pool web --proxy http://proxy.internal:3128 --dry-run
  show
  [ "$status" -eq 0 ]
  [[ $output == *"Plan (dry run"* ]]
  [[ $output == *"GET $BROKER/activations/web"* ]]
  [[ $output == *"latest/debian_amd64/ssm-setup-cli"* ]]
  [[ $output == *"proxy:     http://proxy.internal:3128"* ]]
  [ "$(broker_requests)" -eq 0 ]
  [ -z "$(s3_requests)" ]
  [ ! -s "$STUB_LOG" ]
  [ "$(tree_snapshot)" = "$before" ]
}

@test "the Activation Code appears in no output, no stub log and no left-over file" {
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  local code
  code=$(harness GET /__last-code)
  [[ ${#code} -ge 8 ]]
  emulator_lists "$output"
  [[ $output != *"$code"* ]]
  [[ $stderr != *"$code"* ]]
  ! grep -rF -- "$code" "$ROOT" "$STUB_LOG" "$BATS_TEST_TMPDIR/state"
  [ -z "$(ls -A "$ROOT/tmp")" ]
}

@test "even under bash -x the code is not traced" {
  BASH_FLAGS=-x run_install --url "$BROKER" --force
  [ "$status" -eq 0 ] || { show; return 1; }
  local code
  code=$(harness GET /__last-code)
  [[ ${#code} -ge 8 ]]
  [[ $stderr == *"+ "* ]]
  [[ $stderr != *"$code"* ]]
  [[ $output != *"$code"* ]]
}

@test "--proxy writes a private systemd drop-in for the agent before it registers" {
  # A loopback proxy (NO_PROXY keeps the test's own traffic off it): nothing leaves the machine.
  run_install --url "$BROKER" --proxy http://user:secret@127.0.0.1:3128 --no-proxy 10.0.0.0/8,.corp
  show
  [ "$status" -eq 0 ]
  local dropin="$ROOT/etc/systemd/system/amazon-ssm-agent.service.d/10-broker-proxy.conf"
  [ -f "$dropin" ]
  [ "$(stat -c %a "$dropin")" = 600 ]
  grep -qx 'Environment="https_proxy=http://user:secret@127.0.0.1:3128"' "$dropin"
  grep -qx 'Environment="no_proxy=169.254.169.254,10.0.0.0/8,.corp"' "$dropin"
  [[ $stderr == *"http://***@127.0.0.1:3128"* && $stderr != *secret* ]]
  # daemon-reload happens before the agent is registered and started.
  [ "$(grep -n 'daemon-reload' "$STUB_LOG" | cut -d: -f1)" -lt "$(grep -n '^ssm-setup-cli' "$STUB_LOG" | cut -d: -f1)" ]
}

@test "a proxy value that could break the unit file is rejected (exit 2)" {
  run_install --url "$BROKER" --proxy $'http://p:1\nExecStartPre=/bin/sh'
  [ "$status" -eq 2 ]
  run_install --url "$BROKER" --proxy 'http://p:1" "x'
  [ "$status" -eq 2 ]
}

@test "--help documents every option the script accepts" {
  run_install --help
  [ "$status" -eq 0 ]
  local option
  for option in $(grep -oE '^      --[a-z-]+\)' "$INSTALL_SH" | tr -d ' )'); do
    [[ $output == *"$option"* ]] || { echo "--help does not mention $option"; return 1; }
  done
}
