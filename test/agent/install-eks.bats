#!/usr/bin/env bats
# install-eks.sh: an EKS Hybrid Node through nodeadm (a stand-in that records its arguments and
# the config it is given, and registers with the emulated SSM the way nodeadm init does).

load helpers/common

setup() {
  sandbox_setup
  distro ubuntu
  EKS_CLUSTER_ARN="arn:aws:eks:$AGENT_TEST_REGION:123456789012:cluster/bats"
}

# The code the stand-in nodeadm was given, from its copy of the config.
given_code() { sed -n 's/^ *activationCode: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$BATS_TEST_TMPDIR/state/nodeadm-config.yaml"; }
# The file `nodeadm init` was pointed at.
config_path() { sed -n 's|^nodeadm init --config-source file://||p' "$STUB_LOG"; }

@test "install-eks.sh: nodeadm install, THEN the NodeConfig into a root-only file, nodeadm init, file removed" {
  use_stubs nodeadm
  local before
  before=$(pool_issued eks)
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 0 ]
  # The order, and the exact arguments nodeadm's README gives.
  grep '^nodeadm ' "$STUB_LOG" >"$BATS_TEST_TMPDIR/nodeadm-calls"
  [ "$(sed -n 1p "$BATS_TEST_TMPDIR/nodeadm-calls")" = "nodeadm install 1.31 --credential-provider ssm" ]
  [[ $(sed -n 2p "$BATS_TEST_TMPDIR/nodeadm-calls") == "nodeadm init --config-source file://$ROOT/tmp/"*/nodeConfig.yaml ]]
  [ "$(wc -l <"$BATS_TEST_TMPDIR/nodeadm-calls")" -eq 2 ]
  harness GET /__requests | grep -x 'broker GET /nodeconfig.yaml?pool=eks'
  # The config nodeadm read: the EKS pool's cluster and a fresh pair, in a 0600 file, now gone.
  grep -x 'kind: "NodeConfig"' "$BATS_TEST_TMPDIR/state/nodeadm-config.yaml"
  grep -x '    name: "bats"' "$BATS_TEST_TMPDIR/state/nodeadm-config.yaml"
  [ "$(cat "$BATS_TEST_TMPDIR/state/nodeadm-config.mode")" = "600" ]
  [ ! -e "$(config_path)" ]
  [ -z "$(ls -A "$ROOT/tmp")" ]
  # Registered through the stand-in's agent; the node carries the activation's EKSClusterARN tag.
  local id
  id=$(registered_id_in_sandbox)
  [ "$output" = "$id" ]
  emulator_lists "$id"
  env "${AWS_TEST_ENV[@]}" /usr/bin/aws ssm list-tags-for-resource --endpoint-url "$AGENT_TEST_EMULATOR_URL" \
    --region "$AGENT_TEST_REGION" --resource-type ManagedInstance --resource-id "$id" --output text |
    grep -F "$EKS_CLUSTER_ARN"
  [ "$(pool_issued eks)" -eq $((before + 1)) ]
  # The code appears nowhere: not on stdout or stderr, not in the log file or the stub log.
  local code
  code=$(given_code)
  [ ${#code} -ge 20 ]
  [ "$code" = "$(harness GET /__last-code)" ]
  [[ $output != *"$code"* && $stderr != *"$code"* ]]
  ! grep -qF "$code" "$STUB_LOG"
}

@test "no nodeadm on the host: downloaded, checked against its .sha256, installed" {
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.30
  show
  [ "$status" -eq 0 ]
  harness GET /__requests | grep -x 'eks amd64/nodeadm'
  harness GET /__requests | grep -x 'eks amd64/nodeadm.sha256'
  [ -x "$ROOT/usr/local/bin/nodeadm" ]
  grep -x 'nodeadm install 1.30 --credential-provider ssm' "$STUB_LOG"
  [ "$output" = "$(registered_id_in_sandbox)" ]
}

@test "a nodeadm that does not match its .sha256 is not run, and no slot is taken (exit 20)" {
  harness POST /__s3/bad-signatures >/dev/null
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"does not match its published SHA-256"* ]]
  [ ! -e "$ROOT/usr/local/bin/nodeadm" ]
  ! grep -q '^nodeadm ' "$STUB_LOG"
  [ "$(broker_requests)" -eq 0 ]
}

@test "nodeadm install fails: exit 20 before the broker is asked (no slot taken)" {
  use_stubs nodeadm
  STUB_FAIL="nodeadm:install"
  local before
  before=$(pool_issued eks)
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"nodeadm install 1.31 --credential-provider ssm failed; no registration was taken"* ]]
  [ "$(broker_requests)" -eq 0 ]
  [ "$(pool_issued eks)" -eq "$before" ]
  ! grep -q '^nodeadm init' "$STUB_LOG"
}

@test "nodeadm init fails printing the code: exit 21, the code masked, the file removed" {
  use_stubs nodeadm
  STUB_FAIL="nodeadm:init"
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 21 ]
  [[ $stderr == *"invalid ActivationCode format: ***"* ]]
  [[ $stderr == *"nodeadm init failed (activation "* ]]
  local code
  code=$(given_code)
  [ ${#code} -ge 20 ]
  [[ $output != *"$code"* && $stderr != *"$code"* ]]
  [ ! -e "$(config_path)" ]
  [ -z "$(ls -A "$ROOT/tmp")" ]
}

@test "with a pool that is not an EKS pool: the broker's 400 NotAnEksPool, exit 11" {
  use_stubs nodeadm
  run_eks --url "$BROKER" --pool web --kubernetes-version 1.31
  show
  [ "$status" -eq 11 ]
  [[ $stderr == *"GET $BROKER/nodeconfig.yaml?pool=web (HTTP 400, NotAnEksPool)"* ]]
  ! grep -q '^nodeadm init' "$STUB_LOG"
}

@test "a 200 that is not a NodeConfig for SSM is refused (exit 12), nodeadm init never runs" {
  use_stubs nodeadm
  harness POST /__faults '[{"status":200,"body":"apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  hybrid:\n    ssm:\n      activationId: not-a-uuid\n      activationCode: AAAAAAAAAAAAAAAAAAAA\n"}]' >/dev/null
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 12 ]
  [[ $stderr == *"broker NodeConfig has no valid activationId"* ]]
  ! grep -q '^nodeadm init' "$STUB_LOG"
}

@test "on a registered host: nodeadm and the broker are left alone (converges)" {
  use_stubs nodeadm
  mkdir -p "$ROOT/var/lib/amazon/ssm"
  printf '{"ManagedInstanceID":"mi-0123456789abcdef0","Region":"%s"}' "$AGENT_TEST_REGION" >"$ROOT/var/lib/amazon/ssm/registration"
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 0 ]
  [ "$output" = "mi-0123456789abcdef0" ]
  [ "$(broker_requests)" -eq 0 ]
  ! grep -q '^nodeadm ' "$STUB_LOG"
}

@test "--region, --containerd-source and --skip reach nodeadm; the region defaults to the broker URL's" {
  use_stubs nodeadm
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31 --region "$AGENT_TEST_REGION" \
    --containerd-source none --skip install-validation,node-ip-validation
  show
  [ "$status" -eq 0 ]
  grep -x "nodeadm install 1.31 --credential-provider ssm --region $AGENT_TEST_REGION --containerd-source none" "$STUB_LOG"
  grep -x "nodeadm init --config-source file://.*/nodeConfig.yaml --skip install-validation,node-ip-validation" "$STUB_LOG"
  # Without --region: the region an API Gateway URL names (the install fails before that broker,
  # which does not exist, would be asked).
  rm -f "$ROOT/var/lib/amazon/ssm/registration"
  : >"$STUB_LOG"
  STUB_FAIL="nodeadm:install"
  run_eks --url https://abc123.execute-api.eu-west-3.amazonaws.com/prod --pool eks --kubernetes-version 1.31
  [ "$status" -eq 20 ] || { show; return 1; }
  grep -x "nodeadm install 1.31 --credential-provider ssm --region eu-west-3" "$STUB_LOG"
}

@test "nodeadm init that finds nothing installed exits 0 and registers nothing: exit 21, not 22" {
  use_stubs nodeadm
  STUB_FAIL="nodeadm:nothing-installed"
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 21 ]
  [[ $stderr == *"nodeadm init registered nothing (are the components installed?)"* ]]
  [ ! -e "$ROOT/var/lib/amazon/ssm/registration" ]
}

@test "a pair SSM refuses: the NodeConfig is asked for again ONCE with ?refused=, then the node joins" {
  use_stubs nodeadm
  local bogus=00000000-0000-4000-8000-000000000000
  local yaml="apiVersion: node.eks.aws/v1alpha1\\nkind: NodeConfig\\nspec:\\n  cluster:\\n    name: \\\"bats\\\"\\n    region: \\\"$AGENT_TEST_REGION\\\"\\n  hybrid:\\n    ssm:\\n      activationCode: \\\"bogusbogusbogusbogus\\\"\\n      activationId: \\\"$bogus\\\"\\n"
  harness POST /__faults "[{\"status\":200,\"body\":\"$yaml\"}]" >/dev/null
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  show
  [ "$status" -eq 0 ]
  harness GET /__requests | grep -x "broker GET /nodeconfig.yaml?pool=eks&refused=$bogus"
  [ "$(broker_requests)" -eq 2 ]
  [[ $stderr == *"SSM refused activation $bogus (InvalidActivation)"* ]]
  emulator_lists "$(registered_id_in_sandbox)"
  # Refused twice: exit 21 after two broker calls.
  rm -f "$ROOT/var/lib/amazon/ssm/registration"
  harness POST /__reset >/dev/null
  harness POST /__faults "[{\"status\":200,\"body\":\"$yaml\"},{\"status\":200,\"body\":\"$yaml\"}]" >/dev/null
  run_eks --url "$BROKER" --pool eks --kubernetes-version 1.31
  [ "$status" -eq 21 ] || { show; return 1; }
  [ "$(broker_requests)" -eq 2 ]
  [[ $stderr != *bogusbogusbogusbogus* ]]
}

@test "--help documents every option; bad values are usage errors (exit 2)" {
  run_eks --help
  [ "$status" -eq 0 ]
  local option
  for option in --kubernetes-version --url --pool --region --containerd-source --skip --nodeadm-path --max-wait --proxy --no-proxy --force --verbose; do
    [[ $output == *"$option "* ]] || { echo "--help does not mention $option"; return 1; }
  done
  run_eks --url "$BROKER" --kubernetes-version latest
  [ "$status" -eq 2 ]
  [[ $stderr == *"--kubernetes-version needs the cluster's Kubernetes version, e.g. 1.31"* ]]
  run_eks --url "$BROKER"
  [ "$status" -eq 2 ]
  run_eks --url "$BROKER" --kubernetes-version 1.31 --containerd-source podman
  [ "$status" -eq 2 ]
  run_eks --url "$BROKER" --kubernetes-version 1.31 --skip 'x; reboot'
  [ "$status" -eq 2 ]
  [ "$(broker_requests)" -eq 0 ]
}
