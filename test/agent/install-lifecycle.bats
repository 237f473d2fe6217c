#!/usr/bin/env bats
# Idempotency, --force, secrecy of the Activation Code, services and proxy.

load helpers/common

setup() {
  sandbox_setup
  distro ubuntu
}

@test "second run on a registered, running host changes nothing and does not call the broker" {
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
  # Only looked at the service: nothing installed, registered, enabled or started.
  ! grep -vE '^systemctl is-(enabled|active) --quiet amazon-ssm-agent$' "$STUB_LOG"
  grep -q 'is-active' "$STUB_LOG"
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
  local option count=0
  for option in $(sed -n '/^readonly OPTIONS="/,/^"/p' "$INSTALL_SH" | grep -oE '^  --[a-z0-9-]+'); do
    [[ $output == *"$option "* ]] || { echo "--help does not mention $option"; return 1; }
    count=$((count + 1))
  done
  ((count >= 17))
}

@test "re-run on a registered host whose service is down starts it (no broker call)" {
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  local first=$output
  rm -f "$BATS_TEST_TMPDIR/state/systemd/amazon-ssm-agent.active"
  harness POST /__reset >/dev/null
  : >"$STUB_LOG"
  run_install --url "$BROKER"
  show
  [ "$status" -eq 0 ]
  [ "$output" = "$first" ]
  grep -qx 'systemctl start amazon-ssm-agent' "$STUB_LOG"
  [ -e "$BATS_TEST_TMPDIR/state/systemd/amazon-ssm-agent.active" ]
  [[ $stderr == *"not running: starting it"* ]]
  [ "$(broker_requests)" -eq 0 ]
}

@test "re-run on a registered host whose service will not start: exit 22 naming it" {
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  rm -f "$BATS_TEST_TMPDIR/state/systemd/amazon-ssm-agent.active"
  STUB_FAIL="systemctl:start"
  run_install --url "$BROKER"
  show
  [ "$status" -eq 22 ]
  [[ $stderr == *"registered as mi-"*"amazon-ssm-agent service cannot be started"* ]]
  [ -z "$output" ]
}

@test "a registration file without an agent: exit 22, and --force installs and re-registers" {
  mkdir -p "$ROOT/var/lib/amazon/ssm"
  echo '{"ManagedInstanceID":"mi-0123456789abcdef0","Region":"us-east-1"}' >"$ROOT/var/lib/amazon/ssm/registration"
  run_install --url "$BROKER"
  show
  [ "$status" -eq 22 ]
  [[ $stderr == *"no SSM Agent is installed"* ]]
  run_install --url "$BROKER" --force
  [ "$status" -eq 0 ] || { show; return 1; }
  emulator_lists "$output"
}

@test "--no-start registers and enables the service but leaves it stopped" {
  run_install --url "$BROKER" --no-start
  show
  [ "$status" -eq 0 ]
  emulator_lists "$output"
  [ -e "$BATS_TEST_TMPDIR/state/systemd/amazon-ssm-agent.enabled" ]
  [ ! -e "$BATS_TEST_TMPDIR/state/systemd/amazon-ssm-agent.active" ]
  [[ $stderr == *"enabled, not started (--no-start)"* ]]
  # At first boot the service starts; a later run without --no-start converges to running.
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  [ -e "$BATS_TEST_TMPDIR/state/systemd/amazon-ssm-agent.active" ]
}

@test "stdout carries only the node id; tools' output shows with --verbose or on failure" {
  run_install --url "$BROKER"
  show
  [ "$status" -eq 0 ]
  [[ $output =~ ^mi-[0-9a-f]{17}$ ]]
  [[ $stderr != *"  | "* ]]
  run_install --url "$BROKER" --force --verbose
  show
  [ "$status" -eq 0 ]
  [[ $stderr == *"  | Successfully registered the instance with AWS SSM"* ]]
  # Dropped options are refused, not ignored (docs/onboarding.md says why they went).
  local option
  for option in --dry-run --quiet --deregister --eks=1.31 --root=/ --log-file=/tmp/x --install-method=none --ca-bundle=/x; do
    run_install --url "$BROKER" "$option"
    [ "$status" -eq 2 ] || { echo "$option accepted"; show; return 1; }
  done
}
