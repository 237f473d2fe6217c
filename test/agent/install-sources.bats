#!/usr/bin/env bats
# Where the agent comes from, in which order, and where it talks to: a failed install costs no
# registration, register-only, local packages, version and mirror pass-through, SSM endpoints.

load helpers/common

setup() {
  sandbox_setup
  distro rocky
  echo "fake key" >"$BATS_TEST_TMPDIR/agent.gpg"
}

# fake_package FILE [bad]: a package the stub package managers accept, with its .sig (the
# sha256 the gpg stub checks); "bad" writes a signature that does not match.
fake_package() {
  printf 'FAKE-AMAZON-SSM-AGENT-PACKAGE local\n' >"$1"
  if [[ ${2:-} == bad ]]; then printf '%064d' 0 >"$1.sig"; else sha256sum "$1" | head -c 64 >"$1.sig"; fi
}

@test "a failed install costs no registration: the pool's issued count is unchanged" {
  local before
  before=$(pool_issued default)
  # The bucket unreachable (nothing listens on port 9).
  run_install --url "$BROKER" --mirror-url http://127.0.0.1:9/mirror
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"no registration was taken"* ]]
  # ssm-setup-cli is there, but the manifest it fetches the agent with is not.
  harness POST /__s3/missing '["ssm-agent-manifest.json"]' >/dev/null
  run_install --url "$BROKER"
  [ "$status" -eq 20 ] || { show; return 1; }
  # The package method, with a signature that does not verify.
  harness POST /__reset >/dev/null
  harness POST /__s3/bad-signatures >/dev/null
  run_install --url "$BROKER" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  [ "$status" -eq 20 ] || { show; return 1; }
  [[ $stderr == *"signature check"*"failed"* ]]
  # A local package with a bad signature.
  fake_package "$BATS_TEST_TMPDIR/agent.rpm" bad
  run_install --url "$BROKER" --package "$BATS_TEST_TMPDIR/agent.rpm" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  [ "$status" -eq 20 ] || { show; return 1; }
  # An agent that does not run.
  install_agent_in_sandbox
  STUB_FAIL="amazon-ssm-agent:version"
  run_install --url "$BROKER"
  [ "$status" -eq 20 ] || { show; return 1; }
  [ "$(broker_requests)" -eq 0 ]
  [ "$(pool_issued default)" = "$before" ]
  # And the same broker does hand out a pair once the install works (the count can move).
  STUB_FAIL=""
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  [ "$(pool_issued default)" != "$before" ]
}

@test "the agent is installed and verified before the broker is asked" {
  run_install --url "$BROKER" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  show
  [ "$status" -eq 0 ]
  local install broker
  install=$(grep -n '^dnf -y install' "$STUB_LOG" | cut -d: -f1)
  broker=$(grep -n -- '-register -code' "$STUB_LOG" | cut -d: -f1)
  ((install < broker))
  grep -qx 'amazon-ssm-agent -version' "$STUB_LOG"
  [[ $stderr == *"agent 3.3.0.0 at"*"got activation"* ]]
}

@test "no region known before the broker and the agent must be downloaded: exit 2, broker not called" {
  REGION_ARG=()
  run_install --url "$BROKER"
  show
  [ "$status" -eq 2 ]
  [[ $stderr == *"pass --region"* ]]
  [ "$(broker_requests)" -eq 0 ]
  # An execute-api URL names its region: that region's bucket is used (the install is made to fail
  # before the broker, which does not exist, would be asked).
  harness POST /__s3/missing '["ssm-agent-manifest.json"]' >/dev/null
  run_install --url https://abc123.execute-api.eu-central-1.amazonaws.com/prod
  [ "$status" -eq 20 ] || { show; return 1; }
  s3_requests | grep -qx 'eu-central-1/latest/linux_amd64/ssm-setup-cli'
  run_install --url https://abc123.execute-api.eu-central-1.amazonaws.com/prod --agent-path /nonexistent
  [ "$status" -eq 20 ] || { show; return 1; }
}

@test "--agent-path registers the agent that is there: nothing downloaded or installed" {
  mkdir -p "$ROOT/opt/vendor/bin"
  cp "$STUBS/amazon-ssm-agent" "$ROOT/opt/vendor/bin/amazon-ssm-agent"
  REGION_ARG=()
  run_install --url "$BROKER" --agent-path "$ROOT/opt/vendor/bin/amazon-ssm-agent"
  show
  [ "$status" -eq 0 ]
  emulator_lists "$output"
  [ -z "$(s3_requests)" ]
  ! grep -qE '^(ssm-setup-cli|dnf|yum|gpg)' "$STUB_LOG"
  grep -q '^amazon-ssm-agent -register -code \*\*\* -id .* -y$' "$STUB_LOG"
  [ ! -e "$ROOT/usr/bin/amazon-ssm-agent" ]
}

@test "golden image: --agent-path naming a missing agent exits 20 before the broker, downloading nothing" {
  run_install --url "$BROKER" --agent-path /usr/bin/amazon-ssm-agent
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"--agent-path"* ]]
  run_install --url "$BROKER" --agent-path "$ROOT/nonexistent/amazon-ssm-agent"
  [ "$status" -eq 20 ]
  [[ $stderr == *"--agent-path"* ]]
  [ "$(broker_requests)" -eq 0 ]
  [ -z "$(s3_requests)" ]
}

@test "--package with a good signature is installed from the file, offline" {
  fake_package "$BATS_TEST_TMPDIR/amazon-ssm-agent.rpm"
  REGION_ARG=()
  run_install --url "$BROKER" --package "$BATS_TEST_TMPDIR/amazon-ssm-agent.rpm" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  show
  [ "$status" -eq 0 ]
  grep -q '^gpg .*--verify .*amazon-ssm-agent.rpm.sig .*amazon-ssm-agent.rpm$' "$STUB_LOG"
  grep -q '^dnf -y install .*/amazon-ssm-agent.rpm$' "$STUB_LOG"
  [ -z "$(s3_requests)" ]
  emulator_lists "$output"
}

@test "--package with a bad or missing signature, or the wrong type, is not installed" {
  fake_package "$BATS_TEST_TMPDIR/amazon-ssm-agent.rpm" bad
  run_install --url "$BROKER" --package "$BATS_TEST_TMPDIR/amazon-ssm-agent.rpm" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"signature check of $BATS_TEST_TMPDIR/amazon-ssm-agent.rpm failed"* ]]
  ! grep -q '^dnf' "$STUB_LOG"
  rm "$BATS_TEST_TMPDIR/amazon-ssm-agent.rpm.sig"
  run_install --url "$BROKER" --package "$BATS_TEST_TMPDIR/amazon-ssm-agent.rpm" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  [ "$status" -eq 20 ]
  [[ $stderr == *"no signature"* ]]
  fake_package "$BATS_TEST_TMPDIR/amazon-ssm-agent.deb"
  run_install --url "$BROKER" --package "$BATS_TEST_TMPDIR/amazon-ssm-agent.deb" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  [ "$status" -eq 2 ]
  run_install --url "$BROKER" --package "$BATS_TEST_TMPDIR/amazon-ssm-agent.rpm"
  [ "$status" -eq 20 ]
  [[ $stderr == *"--agent-key"* ]]
  [ ! -e "$ROOT/usr/bin/amazon-ssm-agent" ]
  [ "$(broker_requests)" -eq 0 ]
}

@test "--agent-version and --mirror-url are passed through to ssm-setup-cli; the mirror serves it" {
  REGION_ARG=()
  run_install --url "$BROKER" --agent-version 3.3.987.0 --mirror-url "$AGENT_TEST_HARNESS_URL/s3/mirror"
  show
  [ "$status" -eq 0 ]
  s3_requests | grep -qx 'mirror/latest/linux_amd64/ssm-setup-cli'
  s3_requests | grep -qx 'mirror/ssm-agent-manifest.json'
  grep -q -- "^ssm-setup-cli -register .* -version 3.3.987.0 -manifest-url $AGENT_TEST_HARNESS_URL/s3/mirror/ssm-agent-manifest.json\$" "$STUB_LOG"
  run_install --url "$BROKER" --agent-version 'latest; reboot'
  [ "$status" -eq 2 ]
  run_install --url "$BROKER" --agent-version latest --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  [ "$status" -eq 2 ]
  run_install --url "$BROKER" --mirror-url http://mirror.example.com/ssm
  [ "$status" -eq 2 ]
}

@test "--ssm-endpoint is written into the agent's configuration before it registers there" {
  # The stub agent, like the real one, registers with Ssm.Endpoint from its configuration; the
  # endpoint it would otherwise use is dead, so only the written configuration can succeed.
  STUB_SSM_ENDPOINT=http://127.0.0.1:9
  run_install --url "$BROKER" --ssm-endpoint "$AGENT_TEST_EMULATOR_URL" \
    --ec2messages-endpoint https://vpce-0a1-ec2m.ec2messages.us-east-1.vpce.amazonaws.com \
    --ssmmessages-endpoint https://vpce-0a1-ssmm.ssmmessages.us-east-1.vpce.amazonaws.com
  show
  [ "$status" -eq 0 ]
  emulator_lists "$output"
  local config="$ROOT/etc/amazon/ssm/amazon-ssm-agent.json"
  grep -qF "\"Ssm\": {\"Endpoint\": \"$AGENT_TEST_EMULATOR_URL\"}" "$config"
  grep -qF '"Mds": {"Endpoint": "https://vpce-0a1-ec2m.ec2messages.us-east-1.vpce.amazonaws.com"}' "$config"
  grep -qF '"Mgs": {"Endpoint": "https://vpce-0a1-ssmm.ssmmessages.us-east-1.vpce.amazonaws.com"}' "$config"
  [ "$(stat -c %a "$config")" = 644 ]
}

@test "--ssm-endpoint merges into an existing configuration with jq, and refuses to guess without it" {
  mkdir -p "$ROOT/etc/amazon/ssm"
  local config="$ROOT/etc/amazon/ssm/amazon-ssm-agent.json"
  printf '{"Agent":{"Region":"us-east-1"},"Ssm":{"HealthFrequencyMinutes":5,"Endpoint":""}}\n' >"$config"
  run_install --url "$BROKER" --ssm-endpoint https://vpce-0a1-ssm.ssm.us-east-1.vpce.amazonaws.com
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"jq is not installed"* ]]
  [ "$(broker_requests)" -eq 0 ]
  use_stubs_real jq
  STUB_SSM_ENDPOINT=http://127.0.0.1:9
  run_install --url "$BROKER" --ssm-endpoint "$AGENT_TEST_EMULATOR_URL"
  show
  [ "$status" -eq 0 ]
  [ "$(jq -r .Ssm.Endpoint "$config")" = "$AGENT_TEST_EMULATOR_URL" ]
  [ "$(jq -r .Ssm.HealthFrequencyMinutes "$config")" = 5 ]
  [ "$(jq -r .Agent.Region "$config")" = us-east-1 ]
  run_install --url "$BROKER" --ssm-endpoint 'https://x.example.com/"}'
  [ "$status" -eq 2 ]
}

@test "a registered host re-run with --ssm-endpoint gets the configuration and a restart" {
  run_install --url "$BROKER"
  [ "$status" -eq 0 ] || { show; return 1; }
  harness POST /__reset >/dev/null
  : >"$STUB_LOG"
  run_install --url "$BROKER" --ssm-endpoint https://vpce-0a1-ssm.ssm.us-east-1.vpce.amazonaws.com
  show
  [ "$status" -eq 0 ]
  grep -qx 'systemctl restart amazon-ssm-agent' "$STUB_LOG"
  [ "$(broker_requests)" -eq 0 ]
}
