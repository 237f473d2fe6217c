#!/usr/bin/env bats
# Theft at exhaustion (issue 21), end to end with the real served scripts: a thief registers one
# pair of a limit-10 activation 5 times; 9 honest servers then run install.sh one after another
# (and, in a limit-3 EKS pool, 2 nodes run install-eks.sh). The one SSM refuses asks the broker
# once with ?refused=, gets a pair of another activation and registers; the broker retires the
# stolen activation and logs a security WARN. The local stack records no metrics
# (src/entry/local-stack.ts gives the broker none), so the RefusedPairs count is asserted by
# test/core/refused-pairs.test.ts and test/http/refused-pairs.test.ts, not here.

load helpers/common

setup() {
  sandbox_setup
  [ -n "${AGENT_TEST_BROKER_LOG:-}" ]
  CODES=()
}

# fresh_host <distro>: a new sandbox root for the next server (same test, new machine).
fresh_host() {
  rm -rf "${BATS_TEST_TMPDIR:?}/root" "${BATS_TEST_TMPDIR:?}/bin" "${BATS_TEST_TMPDIR:?}/state"
  sandbox_setup
  distro "$1"
}

# thief_registers <activation-id> <code> <times>: RegisterManagedInstance straight at the emulated
# SSM, as a simulated agent does (the call is unsigned), each time as a new machine.
thief_registers() {
  local i answer
  for ((i = 0; i < $3; i++)); do
    answer=$(printf '{"ActivationCode":"%s","ActivationId":"%s","Fingerprint":"%s","PublicKey":"%s","PublicKeyType":"Rsa"}' \
      "$2" "$1" "$(cat /proc/sys/kernel/random/uuid)" "$(head -c 294 /dev/urandom | base64 -w 0)" |
      curl -fsS -X POST -H 'Content-Type: application/x-amz-json-1.1' \
        -H 'X-Amz-Target: AmazonSSM.RegisterManagedInstance' --data-binary @- "$AGENT_TEST_EMULATOR_URL/")
    [[ $answer == *'"InstanceId":"mi-'* ]] || { echo "thief registration $i: $answer"; return 1; }
  done
}

# activation_of <mi-id>: the activation a managed node registered with (DescribeInstanceInformation).
activation_of() {
  env "${AWS_TEST_ENV[@]}" /usr/bin/aws ssm describe-instance-information --endpoint-url "$AGENT_TEST_EMULATOR_URL" \
    --region "$AGENT_TEST_REGION" --filters "Key=InstanceIds,Values=$1" \
    --query 'InstanceInformationList[0].ActivationId' --output text
}

# registrations_of <activation-id>: SSM's RegistrationsCount.
registrations_of() {
  env "${AWS_TEST_ENV[@]}" /usr/bin/aws ssm describe-activations --endpoint-url "$AGENT_TEST_EMULATOR_URL" \
    --region "$AGENT_TEST_REGION" --filters "FilterKey=ActivationIds,FilterValues=$1" \
    --query 'ActivationList[0].RegistrationsCount' --output text
}

# pool_names <pool>: the activation ids the pool row holds (current and standby).
pool_names() {
  env "${AWS_TEST_ENV[@]}" /usr/bin/aws dynamodb get-item --endpoint-url "$AGENT_TEST_EMULATOR_URL" \
    --region "$AGENT_TEST_REGION" --table-name "$AGENT_TEST_TABLE" --consistent-read \
    --key "{\"pk\":{\"S\":\"POOL#$1\"}}" --query '[Item.activationId.S, Item.standbyId.S]' --output text
}

# broker_log_for <activation-id>: the broker's log lines since the test began that name it.
broker_log_for() { tail -c +"$((LOG_START + 1))" "$AGENT_TEST_BROKER_LOG" | grep -F "$1" || true; }

# no_code_anywhere: no code the broker handed out is in any script output, stub log or broker log line.
no_code_anywhere() {
  local code
  for code in "${CODES[@]}"; do
    [ ${#code} -ge 20 ]
    if grep -rqF -- "$code" "$BATS_TEST_TMPDIR/outputs" "$AGENT_TEST_BROKER_LOG"; then
      echo "an Activation Code leaked"
      return 1
    fi
  done
}

@test "install.sh: a thief used 5 slots of a limit-10 activation; 9 honest servers all register, the refused one heals once" {
  LOG_START=$(wc -c <"$AGENT_TEST_BROKER_LOG")
  mkdir -p "$BATS_TEST_TMPDIR/outputs"
  # The thief takes one pair as any server would, then registers it 5 times.
  local pair thief_id thief_code
  pair=$(curl -fsS -H 'Accept: text/plain' "$AGENT_TEST_BROKER_URL/activations/theft")
  thief_id=$(sed -n 's/^ACTIVATION_ID=//p' <<<"$pair")
  thief_code=$(sed -n 's/^ACTIVATION_CODE=//p' <<<"$pair")
  CODES+=("$thief_code")
  thief_registers "$thief_id" "$thief_code" 5
  [ "$(registrations_of "$thief_id")" -eq 5 ]

  local i id refused_at=0 requests
  for i in {1..9}; do
    fresh_host rocky
    run_install --url "$BROKER" --pool theft
    { echo "$output"; echo "$stderr"; cat "$STUB_LOG"; } >"$BATS_TEST_TMPDIR/outputs/server-$i"
    [ "$status" -eq 0 ] || { echo "honest server $i"; show; return 1; }
    id=$(registered_id_in_sandbox)
    [ "$output" = "$id" ]
    emulator_lists "$id"
    CODES+=("$(harness GET /__last-code)")
    requests=$(harness GET /__requests | grep '^broker ')
    if [[ $stderr == *"SSM refused activation"* ]]; then
      # Refused once, on the stolen activation, when SSM's count reached the limit: asked again
      # once, naming it, and registered with another activation.
      [ "$refused_at" -eq 0 ] || { echo "refused again at server $i"; show; return 1; }
      refused_at=$i
      [[ $stderr == *"SSM refused activation $thief_id (RegistrationLimitExceeded): asking the broker once for another"* ]]
      [ "$requests" = "broker GET /activations/theft"$'\n'"broker GET /activations/theft?refused=$thief_id" ] || { echo "$requests"; return 1; }
    else
      [ "$requests" = "broker GET /activations/theft" ] || { echo "server $i: $requests"; return 1; }
    fi
    if ((refused_at)); then
      [ "$(activation_of "$id")" != "$thief_id" ]
    else
      [ "$(activation_of "$id")" = "$thief_id" ]
    fi
  done
  # 5 stolen + 5 honest registrations used the limit; the sixth honest server was refused.
  [ "$refused_at" -eq 6 ]
  [ "$(registrations_of "$thief_id")" -eq 10 ]
  # Retired: the pool row no longer names the stolen activation.
  [[ $(pool_names theft) != *"$thief_id"* ]]
  # The broker's security WARNs: the refused pair, and the theft its own count reveals.
  local lines
  lines=$(broker_log_for "$thief_id")
  echo "$lines"
  grep -E "^[0-9:]{8} WARN +security: SSM refuses an activation the broker was handing out; retired .*reason=full issued=7 registrationsCount=10 .*action=retired" <<<"$lines"
  # The broker handed out 7 pairs (the thief's and 6 honest) and SSM counts 10: theft.
  grep -E "^[0-9:]{8} WARN +security: an activation has more registrations than pairs handed out.* issued=7 registrationsCount=10 action=retired detectedBy=refused-pair" <<<"$lines"
  # The access log says what the ?refused= check found.
  tail -c +"$((LOG_START + 1))" "$AGENT_TEST_BROKER_LOG" | grep -E "INFO +request .*pool=theft .*refused=retired"
  no_code_anywhere
}

@test "install-eks.sh: a thief used 2 slots of a limit-3 EKS activation; the refused node asks once at /nodeconfig.yaml?refused= and joins" {
  LOG_START=$(wc -c <"$AGENT_TEST_BROKER_LOG")
  mkdir -p "$BATS_TEST_TMPDIR/outputs"
  local config thief_id thief_code
  config=$(curl -fsS "$AGENT_TEST_BROKER_URL/nodeconfig.yaml?pool=eks-theft")
  thief_id=$(sed -n 's/^ *activationId: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' <<<"$config")
  thief_code=$(sed -n 's/^ *activationCode: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' <<<"$config")
  CODES+=("$thief_code")
  thief_registers "$thief_id" "$thief_code" 2

  local i id requests
  for i in 1 2; do
    fresh_host ubuntu
    use_stubs nodeadm
    run_eks --url "$BROKER" --pool eks-theft --kubernetes-version 1.31
    { echo "$output"; echo "$stderr"; cat "$STUB_LOG"; } >"$BATS_TEST_TMPDIR/outputs/node-$i"
    [ "$status" -eq 0 ] || { echo "honest node $i"; show; return 1; }
    id=$(registered_id_in_sandbox)
    emulator_lists "$id"
    CODES+=("$(harness GET /__last-code)")
    requests=$(harness GET /__requests | grep '^broker ')
    if ((i == 1)); then
      [ "$requests" = "broker GET /nodeconfig.yaml?pool=eks-theft" ] || { echo "$requests"; return 1; }
      [ "$(activation_of "$id")" = "$thief_id" ]
    else
      [[ $stderr == *"SSM refused activation $thief_id (RegistrationLimitExceeded): asking the broker once for another"* ]]
      [ "$requests" = "broker GET /nodeconfig.yaml?pool=eks-theft"$'\n'"broker GET /nodeconfig.yaml?pool=eks-theft&refused=$thief_id" ] || { echo "$requests"; return 1; }
      [ "$(activation_of "$id")" != "$thief_id" ]
    fi
  done
  [[ $(pool_names eks-theft) != *"$thief_id"* ]]
  local lines
  lines=$(broker_log_for "$thief_id")
  echo "$lines"
  # Theft exactly at exhaustion: the broker handed out 3 pairs and SSM counts 3 registrations, so
  # its own count shows no theft; the refusal alone is what it sees, and logs.
  grep -E "^[0-9:]{8} WARN +security: SSM refuses an activation the broker was handing out; retired .*reason=full issued=3 registrationsCount=3 .*action=retired" <<<"$lines"
  ! grep -E "more registrations than pairs handed out" <<<"$lines"
  no_code_anywhere
}
