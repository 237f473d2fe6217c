#!/usr/bin/env bash
# install-eks.sh: join this Linux host to an EKS cluster as a hybrid node (EKS Hybrid Nodes), its
# AWS credentials an SSM hybrid activation from the broker's EKS pool.
#   curl -fsSL "https://BROKER/install-eks.sh?pool=edge" | sudo bash -s -- --kubernetes-version 1.31
# Order: nodeadm found, or downloaded and checked against its published SHA-256; `nodeadm install`
# (Kubernetes components, SSM Agent); only then the NodeConfig (one registration) into a root-only
# file; `nodeadm init`; the file removed. docs/eks.md: options, sources.
set -Eeuo pipefail
export LC_ALL=C
umask 077

# Exit codes (install.sh's numbers):
readonly EXIT_OK=0                    # joined (now or before); --help
readonly EXIT_FAILURE=1               # unexpected error
readonly EXIT_USAGE=2                 # bad option or value
readonly EXIT_NOT_ROOT=3              # must run as root
readonly EXIT_UNSUPPORTED=4           # architecture not supported
readonly EXIT_BROKER_UNREACHABLE=10   # broker unreachable, or busy (429/5xx) when --max-wait ran out
readonly EXIT_BROKER_REJECTED=11      # broker refused the request (4xx, e.g. 400 NotAnEksPool)
readonly EXIT_BROKER_BAD_ANSWER=12    # broker answer unusable (over 64 KB, not a NodeConfig for SSM)
readonly EXIT_INSTALL_FAILED=20       # nodeadm missing, or its download, check or `nodeadm install` failed
readonly EXIT_REGISTRATION_FAILED=21  # nodeadm init failed or registered nothing, also with a second pair

BROKER_URL="${BROKER_URL:-__BROKER_URL__}"
BROKER_POOL="${BROKER_POOL:-__BROKER_POOL__}"
case $BROKER_URL in __BROKER_*__) BROKER_URL="" ;; esac # an unrendered copy: unset
case $BROKER_POOL in __BROKER_*__) BROKER_POOL="" ;; esac
# --- host paths (constants; the tests rewrite this block into their sandbox) ---
REG_FILE="/var/lib/amazon/ssm/registration"
NODEADM_DEST="/usr/local/bin/nodeadm"
LOCK_FILE="/run/ssm-activation-broker-install.lock"
NODEADM_RELEASES="https://hybrid-assets.eks.amazonaws.com/releases/latest/bin/linux"
# --- end of host paths ---
readonly MAX_ANSWER_BYTES=65536
K8S_VERSION="" REGION="" CONTAINERD_SOURCE="" SKIP="" NODEADM_PATH="" MAX_WAIT=300
PROXY="${HTTPS_PROXY:-${https_proxy:-}}" NO_PROXY_LIST="" FORCE=0 VERBOSE=0
WORK="" NODEADM="" TOOL_OUT="" ACT_ID="" ACT_CODE=""
log() { printf 'install-eks.sh: %s\n' "$*" >&2; }
die() { log "error: ${*:2}" && exit "$1"; }
sanitize() { local s=${1:0:300} && printf '%s' "${s//[^[:print:]]/ }"; }
run_tool() {
  local rc=0
  TOOL_OUT=$("$@" 2>&1 </dev/null) || rc=$?
  if [[ -n $ACT_CODE ]]; then TOOL_OUT=${TOOL_OUT//"$ACT_CODE"/***}; fi
  if [[ -n $TOOL_OUT ]] && ((VERBOSE || rc != 0)); then printf '  | %s\n' "${TOOL_OUT//$'\n'/$'\n'  | }" >&2; fi
  return "$rc"
}

# option, its value ("-": a flag, which sets 1), the variable it sets, its help (`--help`).
readonly OPTIONS="
  --kubernetes-version V K8S_VERSION   the cluster's Kubernetes version, e.g. 1.31 (nodeadm install V)
  --url URL              BROKER_URL    broker base URL (env BROKER_URL; filled in when served): https, http on loopback
  --pool NAME            BROKER_POOL   the EKS pool (env BROKER_POOL); default pool if empty
  --region REGION        REGION        nodeadm install --region (default: the broker URL's; nodeadm's own: us-west-2)
  --containerd-source S  CONTAINERD_SOURCE nodeadm install --containerd-source: none, distro or docker
  --skip PHASES          SKIP          nodeadm init --skip, e.g. install-validation (comma-separated)
  --nodeadm-path PATH    NODEADM_PATH  use this nodeadm; nothing is downloaded
  --max-wait SECONDS     MAX_WAIT      how long to retry a busy or unreachable broker (default 300)
  --proxy URL            PROXY         proxy for the broker, the download and nodeadm (default \$HTTPS_PROXY)
  --no-proxy LIST        NO_PROXY_LIST hosts nodeadm reaches directly (169.254.169.254 always)
  --force     -          FORCE         run nodeadm init again on a registered host
  --verbose   -          VERBOSE       also show nodeadm's output
"
parse_args() {
  local opt value line
  declare -A var=() takes=()
  while read -r opt value line; do
    [[ -z $opt ]] || var[$opt]=${line%% *} takes[$opt]=${value#-}
  done <<<"$OPTIONS"
  while (($#)); do
    opt=${1%%=*} value=${1#*=}
    if [[ $opt == -h || $opt == --help ]]; then
      printf 'Usage: install-eks.sh --kubernetes-version V [options]   (as root; docs/eks.md)\n' && sed -E 's/^(  --[^ ]+)( [A-Z]+| +-) +[A-Z0-9_]+ +/\1\2  /; s/ +-  / /' <<<"${OPTIONS#$'\n'}"
      exit "$EXIT_OK"
    fi
    [[ -n ${var[$opt]:-} ]] || die "$EXIT_USAGE" "unknown option '$(sanitize "$1")' (see --help)"
    if [[ -z ${takes[$opt]:-} ]]; then
      [[ $1 == "$opt" ]] || die "$EXIT_USAGE" "$opt takes no value"
      value=1
    elif [[ $1 == "$opt" ]]; then
      value=${2:-} && shift
    fi
    [[ -n $value ]] || die "$EXIT_USAGE" "$opt needs a value (see --help)"
    printf -v "${var[$opt]}" '%s' "$value"
    shift
  done
  [[ $K8S_VERSION =~ ^[0-9]{1,2}\.[0-9]{1,3}(\.[0-9]{1,4})?$ ]] || die "$EXIT_USAGE" "--kubernetes-version needs the cluster's Kubernetes version, e.g. 1.31"
  [[ -n $BROKER_URL ]] || die "$EXIT_USAGE" "no broker URL: pass --url, or download this script from the broker (GET /install-eks.sh)"
  [[ $BROKER_URL =~ ^https?://[]A-Za-z0-9.:[-]+(/[A-Za-z0-9._~%/-]*)?$ && ($BROKER_URL == https://* || $BROKER_URL =~ ^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?(/|$)) ]] ||
    die "$EXIT_USAGE" "--url must look like https://host[:port][/path] (plain http only on loopback: the answer holds a secret)"
  BROKER_URL=${BROKER_URL%/}
  [[ -z $BROKER_POOL || $BROKER_POOL =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "$EXIT_USAGE" "--pool must match [A-Za-z0-9_-]{1,64}"
  if [[ -z $REGION && $BROKER_URL =~ \.([a-z]{2}(-[a-z]+)+-[0-9]{1,2})\.(vpce\.)?amazonaws\.com(\.cn)?(:[0-9]+)?(/|$) ]]; then REGION=${BASH_REMATCH[1]}; fi
  [[ -z $REGION || $REGION =~ ^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$ ]] || die "$EXIT_USAGE" "--region '$(sanitize "$REGION")' is not a region name"
  [[ -z $CONTAINERD_SOURCE || $CONTAINERD_SOURCE =~ ^(none|distro|docker)$ ]] || die "$EXIT_USAGE" "--containerd-source must be none, distro or docker"
  [[ -z $SKIP || $SKIP =~ ^[a-z-]+(,[a-z-]+)*$ ]] || die "$EXIT_USAGE" "--skip takes nodeadm init phase names, comma-separated"
  [[ $MAX_WAIT =~ ^[0-9]{1,5}$ ]] || die "$EXIT_USAGE" "--max-wait must be a whole number of seconds"
  [[ -z $PROXY || $PROXY =~ ^https?://[^[:space:]\"\\]+$ ]] || die "$EXIT_USAGE" "--proxy must look like http://host:port"
  [[ $NO_PROXY_LIST =~ ^[A-Za-z0-9.,:*/_-]*$ ]] || die "$EXIT_USAGE" "--no-proxy must be a comma-separated host list"
}

registered_id() {
  [[ -s $REG_FILE && $(head -c 4096 "$REG_FILE") =~ \"ManagedInstanceID\"[[:space:]]*:[[:space:]]*\"(mi-[0-9a-f]{17})\" ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}
# nodeadm found (--nodeadm-path, PATH, NODEADM_DEST), or downloaded and checked against its SHA-256.
prepare_nodeadm() {
  local arch url file="$WORK/nodeadm" expected actual
  if [[ -n $NODEADM_PATH ]]; then
    [[ -f $NODEADM_PATH && -x $NODEADM_PATH ]] || die "$EXIT_INSTALL_FAILED" "--nodeadm-path '$NODEADM_PATH' is not an executable file"
    NODEADM=$NODEADM_PATH
  elif NODEADM=$(command -v nodeadm) || { [[ -x $NODEADM_DEST ]] && NODEADM=$NODEADM_DEST; }; then
    :
  else
    case $(uname -m) in x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) die "$EXIT_UNSUPPORTED" "unsupported architecture (supported: x86_64, aarch64)" ;; esac
    url="$NODEADM_RELEASES/$arch/nodeadm"
    log "downloading $url"
    if ! curl --silent --show-error --fail --proto '=https,http' --retry 3 --max-time 600 --output "$file" --url "$url" ||
      ! curl --silent --show-error --fail --proto '=https,http' --retry 3 --max-time 60 --output "$file.sha256" --url "$url.sha256"; then
      die "$EXIT_INSTALL_FAILED" "cannot download $url or its .sha256; no registration was taken"
    fi
    expected=$(head -c 64 "$file.sha256")
    actual=$(sha256sum "$file")
    [[ $expected =~ ^[0-9a-f]{64}$ && ${actual%% *} == "$expected" ]] || die "$EXIT_INSTALL_FAILED" "$url does not match its published SHA-256: not running it"
    mkdir -p "${NODEADM_DEST%/*}" && chmod 0755 "$file" && mv -f "$file" "$NODEADM_DEST"
    NODEADM=$NODEADM_DEST
  fi
  log "nodeadm at $NODEADM"
}

# nodeadm downloads the Kubernetes components and the agent: it gets the proxy too.
run_nodeadm() {
  if [[ -z $PROXY ]]; then run_tool "$NODEADM" "$@" && return 0 || return; fi
  HTTPS_PROXY=$PROXY HTTP_PROXY=$PROXY NO_PROXY="169.254.169.254${NO_PROXY_LIST:+,$NO_PROXY_LIST}" run_tool "$NODEADM" "$@"
}
# GET the NodeConfig into $WORK/nodeConfig.yaml (0600 in a 0700 directory), retrying a busy or
# unreachable broker as install.sh does (curl >= 7.66.0 honours Retry-After itself; older, a loop).
fetch_nodeconfig() {
  local url=$1 status rc started=$SECONDS wait delay=1 native=0 out="$WORK/nodeConfig.yaml"
  local -a args=(--silent --show-error --proto '=https,http' --connect-timeout 10 --max-time 30
    --max-filesize "$MAX_ANSWER_BYTES" --output "$out" --dump-header "$WORK/headers" --write-out '%{http_code}')
  if [[ $(curl --version) =~ ^curl\ ([0-9]+)\.([0-9]+) ]] && ((BASH_REMATCH[1] > 7 || (BASH_REMATCH[1] == 7 && BASH_REMATCH[2] >= 66))) && ((MAX_WAIT)); then
    native=1 && args+=(--retry 1000 --retry-connrefused --retry-max-time "$MAX_WAIT")
  fi
  while true; do
    rc=0
    status=$(curl "${args[@]}" --url "$url" 2>"$WORK/curl-errors") || rc=$?
    if ((rc == 63)) || [[ $(wc -c <"$out" 2>/dev/null || echo 0) -gt $MAX_ANSWER_BYTES ]]; then
      die "$EXIT_BROKER_BAD_ANSWER" "broker answer from GET $url is larger than $MAX_ANSWER_BYTES bytes: refused unread"
    fi
    case $rc:$status in
      0:200) break ;;
      0:429 | 0:5??) status="HTTP $status" ;;
      0:4??) die "$EXIT_BROKER_REJECTED" "broker refused the request GET $url (HTTP $status$([[ $(head -c 1024 "$out") =~ \"code\":\"([A-Za-z]{1,64})\" ]] && printf ', %s' "${BASH_REMATCH[1]}"))" ;;
      0:*) die "$EXIT_BROKER_BAD_ANSWER" "unexpected answer from the broker GET $url (HTTP $status)" ;;
      *) status="cannot reach the broker at $url: $(sanitize "$(head -n 1 "$WORK/curl-errors")")" ;;
    esac
    wait=$(sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*\([0-9]\{1,5\}\).*/\1/p' "$WORK/headers" 2>/dev/null | tail -n 1)
    wait=${wait:-$delay} delay=$((delay < 16 ? delay * 2 : 30))
    ((!native && SECONDS - started + wait <= MAX_WAIT)) ||
      die "$EXIT_BROKER_UNREACHABLE" "broker unavailable ($status); gave up after $((SECONDS - started))s (--max-wait $MAX_WAIT)"
    log "broker unavailable ($status); retrying in ${wait}s"
    sleep "$wait"
  done
  # Hostile input until checked: a NodeConfig for SSM credentials with a pair of SSM's shapes.
  local line id="" code="" kind=0 id_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  while IFS= read -r line; do
    [[ ! $line =~ ^kind:[[:space:]]*\"?NodeConfig\"?[[:space:]]*$ ]] || kind=1
    [[ ! $line =~ ^[[:space:]]+activationId:[[:space:]]*\"?([^\"[:space:]]*)\"?[[:space:]]*$ ]] || id=${BASH_REMATCH[1]}
    [[ ! $line =~ ^[[:space:]]+activationCode:[[:space:]]*\"?([^\"[:space:]]*)\"?[[:space:]]*$ ]] || code=${BASH_REMATCH[1]}
    [[ $line != *iamRolesAnywhere* ]] || kind=0
  done <"$out"
  ((kind)) || die "$EXIT_BROKER_BAD_ANSWER" "broker answer is not a nodeadm NodeConfig for SSM credentials"
  [[ $id =~ $id_re ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker NodeConfig has no valid activationId"
  [[ $code =~ ^[A-Za-z0-9+/=]{20,250}$ ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker NodeConfig has no valid activationCode" # never echoed
  ACT_ID=$id ACT_CODE=$code
  log "got a NodeConfig with activation $ACT_ID${BROKER_POOL:+ (pool $BROKER_POOL)}"
}

# nodeadm init with the NodeConfig; the file is removed whatever happens (and by the EXIT trap).
init() {
  local -a flags=(init --config-source "file://$WORK/nodeConfig.yaml")
  [[ -z $SKIP ]] || flags+=(--skip "$SKIP")
  log "running nodeadm ${flags[*]}"
  run_nodeadm "${flags[@]}" || {
    rm -f -- "$WORK/nodeConfig.yaml"
    return 1
  }
  rm -f -- "$WORK/nodeConfig.yaml"
  # nodeadm init exits 0 when it finds no components installed, having registered nothing.
  registered_id >/dev/null || { TOOL_OUT+=$'\nnodeadm init registered nothing (are the components installed?)' && return 1; }
}
main() {
  parse_args "$@"
  [[ $(id -u) == 0 ]] || die "$EXIT_NOT_ROOT" "run as root (sudo bash install-eks.sh ...)"
  mkdir -p "${LOCK_FILE%/*}" && exec 9>"$LOCK_FILE"
  if command -v flock >/dev/null; then flock -w 900 9 || die "$EXIT_FAILURE" "another install holds $LOCK_FILE"; fi
  local existing pool_query=${BROKER_POOL:+?pool=$BROKER_POOL}
  if existing=$(registered_id) && ((!FORCE)); then
    log "already registered as managed node $existing: nodeadm init is not run again (--force runs it)"
    printf '%s\n' "$existing" && exit "$EXIT_OK"
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ssm-install.XXXXXXXX")
  trap 'ACT_CODE=""; rm -rf -- "$WORK"' EXIT
  prepare_nodeadm
  local -a install=(install "$K8S_VERSION" --credential-provider ssm)
  [[ -z $REGION ]] || install+=(--region "$REGION")
  [[ -z $CONTAINERD_SOURCE ]] || install+=(--containerd-source "$CONTAINERD_SOURCE")
  log "running nodeadm ${install[*]}"
  run_nodeadm "${install[@]}" || die "$EXIT_INSTALL_FAILED" "nodeadm ${install[*]} failed; no registration was taken"

  if [[ $- == *x* ]]; then set +x; fi # tracing would print the code; it is not turned back on
  fetch_nodeconfig "$BROKER_URL/nodeconfig.yaml$pool_query"
  if ! init; then
    # A refused pair (activation used up, deleted or expired) is reported to the broker ONCE.
    [[ $TOOL_OUT =~ (RegistrationLimitExceeded|InvalidActivation|ActivationExpired) ]] ||
      die "$EXIT_REGISTRATION_FAILED" "nodeadm init failed (activation $ACT_ID): $(sanitize "${TOOL_OUT##*$'\n'}")"
    log "SSM refused activation $ACT_ID (${BASH_REMATCH[1]}): asking the broker once for another"
    fetch_nodeconfig "$BROKER_URL/nodeconfig.yaml${pool_query:-?}${pool_query:+&}refused=$ACT_ID"
    init || die "$EXIT_REGISTRATION_FAILED" "nodeadm init failed with a second pair too (activation $ACT_ID): $(sanitize "${TOOL_OUT##*$'\n'}")"
  fi
  ACT_CODE=""
  log "joined the EKS cluster as hybrid node $(registered_id)"
  registered_id && echo
}

main "$@"
