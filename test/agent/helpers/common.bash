# shellcheck shell=bash
# Variables set here are read by the .bats files; status/output/stderr are set by bats' `run`.
# shellcheck disable=SC2034,SC2154
# Sandbox for running the real agent/install.sh and agent/install-eks.sh: a temporary root with a
# fake os-release, a PATH that holds only stubs and a short list of real tools, and the local stack
# + harness started by test/agent/bats.test.ts (or by hand: npx tsx test/agent/support/serve.ts).
# The scripts carry no test hooks: `sandboxed` rewrites their block of host paths into the sandbox,
# and stubs on PATH (id, systemctl, package managers, the agent) stand in for the host.
bats_require_minimum_version 1.5.0

REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
STUBS="$REPO_ROOT/test/agent/stubs"

# The only real host tools install.sh and the stubs get. No jq, no python, and none of the host's
# own package managers or systemctl: a dependency the script must not have fails the test.
REAL_TOOLS=(bash curl cat cp mv rm mkdir mktemp chmod head tail grep sed wc sleep sha256sum flock base64 touch)

sandbox_setup() {
  : "${AGENT_TEST_BROKER_URL:?run through vitest (test/agent/bats.test.ts), or export what 'npx tsx test/agent/support/serve.ts' prints}"
  : "${AGENT_TEST_HARNESS_URL:?}" "${AGENT_TEST_EMULATOR_URL:?}"
  ROOT="$BATS_TEST_TMPDIR/root"
  BIN="$BATS_TEST_TMPDIR/bin"
  STUB_LOG="$BATS_TEST_TMPDIR/calls.log"
  mkdir -p "$ROOT/etc" "$ROOT/tmp" "$ROOT/run" "$BIN" "$BATS_TEST_TMPDIR/state"
  : >"$STUB_LOG"
  local tool
  for tool in "${REAL_TOOLS[@]}"; do ln -s "$(command -v "$tool")" "$BIN/$tool"; done
  use_stubs id
  INSTALL_SH=$(sandboxed "$REPO_ROOT/agent/install.sh")
  INSTALL_EKS_SH=$(sandboxed "$REPO_ROOT/agent/install-eks.sh")
  harness POST /__reset >/dev/null
  BROKER="$AGENT_TEST_HARNESS_URL/broker"
  ARCH=x86_64
  STUB_FAIL=""
  # The broker URLs here name no region, and the agent is downloaded before the broker is asked:
  # run_install passes --region first (a test's own --region wins; REGION_ARG=() drops it).
  REGION_ARG=(--region "$AGENT_TEST_REGION")
  # Extra NAME=value pairs for the script's environment (e.g. AWS credentials for --deregister).
  EXTRA_ENV=()
}

# sandboxed SCRIPT: a copy whose block of host paths ("# --- host paths" to "# --- end of host
# paths") points into $ROOT, and whose downloads (the agent bucket, nodeadm's releases) come from
# the harness; prints the copy's path. Every constant of the block must have moved: a path added to
# the script outside the sandbox fails here, not on the host.
sandboxed() {
  local copy="$BATS_TEST_TMPDIR/${1##*/}" block='/^# --- host paths/,/^# --- end of host paths/'
  sed -e "$block"'{
    s|"/|"'"$ROOT"'/|g
    s|^BUCKET=.*|BUCKET="'"$AGENT_TEST_HARNESS_URL"'/s3/{region}"|
    s|^NODEADM_RELEASES=.*|NODEADM_RELEASES="'"$AGENT_TEST_HARNESS_URL"'/eks"|
  }' "$1" >"$copy"
  if sed -n "$block"p "$copy" | sed "s|\"$ROOT/|\"|g; s|\"$AGENT_TEST_HARNESS_URL/|\"|g" | grep -E '"(/|https?://)'; then
    echo "sandboxed: $1 has host paths the sandbox did not move" >&2
    return 1
  fi
  [[ $(sed -n "$block"p "$copy" | grep -c "$ROOT\|$AGENT_TEST_HARNESS_URL") -ge 3 ]]
  printf '%s' "$copy"
}

# install_agent_in_sandbox: an agent that is already there (register-only runs).
install_agent_in_sandbox() {
  mkdir -p "$ROOT/usr/bin"
  cp "$STUBS/amazon-ssm-agent" "$ROOT/usr/bin/amazon-ssm-agent"
}

# Credentials the real AWS CLI signs with against the emulator (it checks the shape only).
AWS_TEST_ENV=(AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true)

# pool_issued <pool>: the pool's `issued` count in the emulated DynamoDB (0 before the first vend),
# read with the real AWS CLI.
pool_issued() {
  local issued
  issued=$(env "${AWS_TEST_ENV[@]}" /usr/bin/aws dynamodb get-item --endpoint-url "$AGENT_TEST_EMULATOR_URL" \
    --region "$AGENT_TEST_REGION" --table-name "$AGENT_TEST_TABLE" --consistent-read \
    --key "{\"pk\":{\"S\":\"POOL#$1\"}}" --query 'Item.issued.N' --output text)
  [[ $issued == None ]] && issued=0
  printf '%s' "$issued"
}

harness() {
  local method=$1 path=$2 body=${3:-}
  curl -fsS -X "$method" -H 'Content-Type: application/json' --data "$body" "$AGENT_TEST_HARNESS_URL$path"
}

# use_stubs_real TOOL...: a real host tool the script may use when present (e.g. jq, aws).
use_stubs_real() {
  local tool
  for tool in "$@"; do
    # Debian's AWS CLI v2, not whatever wrapper (pyenv shim) PATH finds first.
    if [[ $tool == aws ]]; then ln -sf /usr/bin/aws "$BIN/aws"; else ln -sf "$(command -v "$tool")" "$BIN/$tool"; fi
  done
}

use_stubs() {
  local stub
  for stub in "$@"; do ln -sf "$STUBS/$stub" "$BIN/$stub"; done
}

# distro <name>: fake os-release plus the package manager stubs that distribution ships.
distro() {
  local id like="" version name
  case $1 in
    rhel) id=rhel like=fedora version=9.4 name="Red Hat Enterprise Linux 9.4 (Plow)" ;;
    centos) id=centos like="rhel fedora" version=7 name="CentOS Linux 7 (Core)" ;;
    rocky) id=rocky like="rhel centos fedora" version=9.3 name="Rocky Linux 9.3 (Blue Onyx)" ;;
    alma) id=almalinux like="rhel centos fedora" version=9.4 name="AlmaLinux 9.4 (Seafoam Ocelot)" ;;
    oracle) id=ol like=fedora version=8.9 name="Oracle Linux Server 8.9" ;;
    fedora) id=fedora version=40 name="Fedora Linux 40 (Server Edition)" ;;
    amzn2) id=amzn like="centos rhel fedora" version=2 name="Amazon Linux 2" ;;
    al2023) id=amzn like=fedora version=2023 name="Amazon Linux 2023.5.20240805" ;;
    debian) id=debian version=12 name="Debian GNU/Linux 12 (bookworm)" ;;
    ubuntu) id=ubuntu like=debian version=24.04 name="Ubuntu 24.04 LTS" ;;
    sles) id=sles like=suse version=15.5 name="SUSE Linux Enterprise Server 15 SP5" ;;
    opensuse) id=opensuse-leap like="suse opensuse" version=15.5 name="openSUSE Leap 15.5" ;;
    alpine) id=alpine version=3.20.0 name="Alpine Linux v3.20" ;;
    *) echo "unknown distro $1" >&2; return 1 ;;
  esac
  {
    echo "NAME=\"${name% *}\""
    echo "ID=\"$id\""
    [[ -z $like ]] || echo "ID_LIKE=\"$like\""
    echo "VERSION_ID=\"$version\""
    echo "PRETTY_NAME=\"$name\""
  } >"$ROOT/etc/os-release"
  case $1 in
    centos | amzn2) use_stubs yum ;;
    rhel | rocky | alma | oracle | fedora | al2023) use_stubs dnf yum ;;
    debian | ubuntu) use_stubs apt-get dpkg ;;
    sles | opensuse) use_stubs zypper ;;
  esac
  use_stubs systemctl gpg uname
}

# run_install [args...]: the real script, in a clean environment; stdout in $output, stderr in $stderr.
run_install() {
  run_script "$INSTALL_SH" "${REGION_ARG[@]}" "$@"
}

# run_eks [args...]: the same for install-eks.sh.
run_eks() { run_script "$INSTALL_EKS_SH" "$@"; }

run_script() {
  run --separate-stderr env -i PATH="$BIN" HOME="$BATS_TEST_TMPDIR" TMPDIR="$ROOT/tmp" \
    SANDBOX_ROOT="$ROOT" STUB_DIR="$STUBS" STUB_LOG="$STUB_LOG" STUB_STATE="$BATS_TEST_TMPDIR/state" STUB_ARCH="$ARCH" \
    STUB_FAIL="$STUB_FAIL" STUB_SSM_ENDPOINT="${STUB_SSM_ENDPOINT:-$AGENT_TEST_EMULATOR_URL}" \
    NO_PROXY=127.0.0.1,localhost "${EXTRA_ENV[@]}" \
    "$BIN/bash" ${BASH_FLAGS:+"$BASH_FLAGS"} "$@"
}

show() {
  echo "--- exit $status; stdout:"
  echo "$output"
  echo "--- stderr:"
  echo "$stderr"
  echo "--- stub calls:"
  cat "$STUB_LOG"
}

registered_id_in_sandbox() {
  local file="$ROOT/var/lib/amazon/ssm/registration"
  [[ -s $file ]] || return 1
  [[ $(cat "$file") =~ \"ManagedInstanceID\":\"(mi-[0-9a-f]{17})\" ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}

# emulator_lists <mi-id>: the emulated SSM lists the node (DescribeInstanceInformation).
emulator_lists() {
  local body
  body=$(curl -fsS -X POST -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Target: AmazonSSM.DescribeInstanceInformation' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/eu-west-1/ssm/aws4_request, SignedHeaders=host, Signature=0' \
    --data "{\"Filters\":[{\"Key\":\"InstanceIds\",\"Values\":[\"$1\"]}]}" "$AGENT_TEST_EMULATOR_URL/")
  [[ $body == *"\"$1\""* ]]
}

broker_requests() { harness GET /__requests | grep -c '^broker ' || true; }
s3_requests() { harness GET /__requests | sed -n 's/^s3 //p'; }
# The files fetched from the bucket, without the manifest ssm-setup-cli's pre-flight asks for.
s3_downloads() { s3_requests | grep -v 'ssm-agent-manifest.json$' || true; }

# A snapshot of every file under the sandbox root (path, mode, content hash).
tree_snapshot() {
  (cd "$ROOT" && find . -print0 | sort -z | xargs -0 -I{} sh -c 'printf "%s " "{}"; [ -f "{}" ] && sha256sum < "{}" || echo dir')
}
