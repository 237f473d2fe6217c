#!/usr/bin/env bash
# install.sh: register this Linux server with AWS Systems Manager through the activation broker.
#
#   curl -fsSL https://BROKER/install.sh | sudo bash
#   curl -fsSL "https://BROKER/install.sh?pool=web" | sudo bash -s -- --proxy http://proxy:3128
#
# It asks the broker for an Activation ID + Code, installs the SSM Agent the way AWS recommends
# for hybrid nodes (ssm-setup-cli from the activation's region, which verifies the agent package
# signature), registers it, enables and starts the service, and prints the managed-node id.
# Safe to run at every boot: a host that is already registered is left alone (exit 0).
# Needs bash >= 4.2, curl and coreutils; no jq. Run `install.sh --help` for the options.
#
# Exit codes (install.ps1 uses the same numbers):
#    0  OK                    registered now, or already registered; --help; --dry-run
#    1  FAILURE               unexpected error
#    2  USAGE                 bad option or value
#    3  NOT_ROOT              must run as root
#    4  UNSUPPORTED           operating system or architecture not supported
#   10  BROKER_UNREACHABLE    broker unreachable or still busy (429/5xx) when the retry budget ran out
#   11  BROKER_REJECTED       broker refused the request (4xx, e.g. 404 PoolNotFound)
#   12  BROKER_BAD_ANSWER     broker answer unusable (not JSON, field missing or malformed)
#   20  INSTALL_FAILED        agent download, signature check or installation failed
#   21  REGISTRATION_FAILED   SSM refused the registration (e.g. InvalidActivation, ActivationExpired)
#   22  SERVICE_FAILED        agent service not started, or registration file not written
#
# Sources (checked when this script was written):
#   ssm-setup-cli flags (-register -activation-code -activation-id -region -override) and the
#     download location <bucket>/latest/<platform folder>/ssm-setup-cli:
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/setupcli/setupcli.go
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/setupcli/managers/downloadmanager/downloadmanager.go
#     https://docs.aws.amazon.com/systems-manager/latest/userguide/hybrid-multicloud-ssm-agent-install-linux.html
#   Regional bucket layout (linux_<arch> for every rpm distribution incl. SLES, debian_<arch> for
#     Debian and Ubuntu) and the .sig files of the rpm/deb packages:
#     https://docs.aws.amazon.com/systems-manager/latest/userguide/verify-agent-signature.html
#   Agent proxy settings for systemd (http_proxy / https_proxy / no_proxy in the unit's environment):
#     https://docs.aws.amazon.com/systems-manager/latest/userguide/configure-proxy-ssm-agent.html
#
# Test hooks (development only; never set them on a real server):
#   INSTALL_ROOT / --root DIR   treat DIR as "/" for every file read or written (os-release,
#                               registration file, systemd drop-in, lock); the root check is skipped
#   INSTALL_DOWNLOAD_BASE       replaces https://amazon-ssm-{region}.s3.{region}.amazonaws.com
#                               ("{region}" is substituted); http is accepted for loopback only
#   INSTALL_BACKOFF_BASE_MS, INSTALL_BACKOFF_CAP_MS   retry backoff (default 1000 and 30000)
#   INSTALL_MAX_WAIT            same as --max-wait
#   INSTALL_SOURCE_ONLY=1       define the functions, run nothing (for `source` in unit tests)
set -Eeuo pipefail
export LC_ALL=C
umask 077

readonly EXIT_OK=0
readonly EXIT_FAILURE=1
readonly EXIT_USAGE=2
readonly EXIT_NOT_ROOT=3
readonly EXIT_UNSUPPORTED=4
readonly EXIT_BROKER_UNREACHABLE=10
readonly EXIT_BROKER_REJECTED=11
readonly EXIT_BROKER_BAD_ANSWER=12
readonly EXIT_INSTALL_FAILED=20
readonly EXIT_REGISTRATION_FAILED=21
readonly EXIT_SERVICE_FAILED=22

# The broker fills these two in when it serves GET /install.sh; the environment or --url/--pool win.
BROKER_URL="${BROKER_URL:-__BROKER_URL__}"
BROKER_POOL="${BROKER_POOL:-__BROKER_POOL__}"
# An unrendered copy (read straight from the repository) still holds the markers: treat as unset.
case $BROKER_URL in __BROKER_*__) BROKER_URL="" ;; esac
case $BROKER_POOL in __BROKER_*__) BROKER_POOL="" ;; esac

REGION_OVERRIDE=""
CA_BUNDLE=""
PROXY_URL="${HTTPS_PROXY:-${https_proxy:-}}"
NO_PROXY_LIST=""
FORCE=0
DRY_RUN=0
INSTALL_METHOD="auto"
AGENT_KEY=""
MAX_WAIT="${INSTALL_MAX_WAIT:-300}"
ROOT="${INSTALL_ROOT:-/}"
BACKOFF_BASE_MS="${INSTALL_BACKOFF_BASE_MS:-1000}"
BACKOFF_CAP_MS="${INSTALL_BACKOFF_CAP_MS:-30000}"
DOWNLOAD_BASE_TEMPLATE='https://amazon-ssm-{region}.s3.{region}.amazonaws.com'
if [[ -n ${INSTALL_DOWNLOAD_BASE:-} ]]; then DOWNLOAD_BASE_TEMPLATE=$INSTALL_DOWNLOAD_BASE; fi
CONNECT_TIMEOUT=10
REQUEST_TIMEOUT=30

readonly REG_FILE_REL="var/lib/amazon/ssm/registration"
readonly SERVICE_SYSTEMD="amazon-ssm-agent"
readonly SERVICE_SNAP="snap.amazon-ssm-agent.amazon-ssm-agent"

WORK_DIR=""
XTRACE=0

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  printf 'install.sh: error: %s\n' "$*" >&2
  exit "$code"
}

usage() {
  cat <<'EOF'
Usage: install.sh [options]
Register this server with AWS Systems Manager using an activation from the broker.

Options:
  --url URL             broker base URL (env BROKER_URL; filled in when served by the broker).
                        https only; http is accepted for 127.0.0.1/localhost (local testing)
  --pool NAME           activation pool, [A-Za-z0-9_-]{1,64} (env BROKER_POOL); default pool if empty
  --region REGION       override the region the broker answers with (e.g. eu-west-1)
  --ca-bundle FILE      PEM CA certificates to verify the broker's TLS certificate with
                        (verification is never turned off; used for the broker only)
  --proxy URL           HTTP(S) proxy for the broker, the downloads and the agent itself
                        (default: $HTTPS_PROXY / $https_proxy); the agent gets a systemd drop-in
  --no-proxy LIST       comma-separated hosts the agent reaches directly (169.254.169.254 is always added)
  --force               re-register even if this server is already registered
                        (clears the old registration; the agent is never uninstalled)
  --install-method M    auto (default: ssm-setup-cli, else the regional rpm/deb package),
                        setup-cli, or package
  --agent-key FILE      AWS SSM Agent public GPG key, required for the package method: the .sig of
                        the rpm/deb is checked with it (see verify-agent-signature in the AWS docs)
  --max-wait SECONDS    total time to keep retrying a busy or unreachable broker (default 300)
  --dry-run             print the plan and change nothing (the broker is not called: every
                        answer reserves a registration)
  --root DIR            test hook: use DIR instead of / for every host file
  -h, --help            show this help

Exit codes: 0 ok, 1 failure, 2 usage, 3 not root, 4 unsupported platform, 10 broker unreachable,
11 broker rejected the request, 12 broker answer unusable, 20 agent install failed,
21 registration refused, 22 service or registration file not ready.
EOF
}

# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
need_value() {
  [[ $# -ge 2 && -n $2 ]] || die "$EXIT_USAGE" "$1 needs a value (see --help)"
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      --url) need_value "$@"; BROKER_URL=$2; shift 2 ;;
      --url=*) BROKER_URL=${1#*=}; shift ;;
      --pool) need_value "$@"; BROKER_POOL=$2; shift 2 ;;
      --pool=*) BROKER_POOL=${1#*=}; shift ;;
      --region) need_value "$@"; REGION_OVERRIDE=$2; shift 2 ;;
      --region=*) REGION_OVERRIDE=${1#*=}; shift ;;
      --ca-bundle) need_value "$@"; CA_BUNDLE=$2; shift 2 ;;
      --ca-bundle=*) CA_BUNDLE=${1#*=}; shift ;;
      --proxy) need_value "$@"; PROXY_URL=$2; shift 2 ;;
      --proxy=*) PROXY_URL=${1#*=}; shift ;;
      --no-proxy) need_value "$@"; NO_PROXY_LIST=$2; shift 2 ;;
      --no-proxy=*) NO_PROXY_LIST=${1#*=}; shift ;;
      --force) FORCE=1; shift ;;
      --install-method) need_value "$@"; INSTALL_METHOD=$2; shift 2 ;;
      --install-method=*) INSTALL_METHOD=${1#*=}; shift ;;
      --agent-key) need_value "$@"; AGENT_KEY=$2; shift 2 ;;
      --agent-key=*) AGENT_KEY=${1#*=}; shift ;;
      --max-wait) need_value "$@"; MAX_WAIT=$2; shift 2 ;;
      --max-wait=*) MAX_WAIT=${1#*=}; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      --root) need_value "$@"; ROOT=$2; shift 2 ;;
      --root=*) ROOT=${1#*=}; shift ;;
      -h | --help) usage; exit "$EXIT_OK" ;;
      *) die "$EXIT_USAGE" "unknown option '$1' (see --help)" ;;
    esac
  done
}

is_loopback_http() {
  local re='^http://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?(/|$)'
  [[ $1 =~ $re ]]
}

validate_args() {
  [[ -n $BROKER_URL ]] || die "$EXIT_USAGE" "no broker URL: pass --url, or download this script from the broker (GET /install.sh)"
  local url_re='^https?://[]A-Za-z0-9.:[-]+(/[A-Za-z0-9._~%/-]*)?$'
  [[ $BROKER_URL =~ $url_re ]] || die "$EXIT_USAGE" "--url must look like https://host[:port][/path]"
  if [[ $BROKER_URL == http://* ]] && ! is_loopback_http "$BROKER_URL"; then
    die "$EXIT_USAGE" "--url must use https (the answer holds a secret); plain http is accepted for loopback only"
  fi
  BROKER_URL=${BROKER_URL%/}
  local pool_re='^[A-Za-z0-9_-]{1,64}$'
  [[ -z $BROKER_POOL || $BROKER_POOL =~ $pool_re ]] || die "$EXIT_USAGE" "--pool must match [A-Za-z0-9_-]{1,64}"
  [[ -z $REGION_OVERRIDE ]] || valid_region "$REGION_OVERRIDE" || die "$EXIT_USAGE" "--region '$REGION_OVERRIDE' is not a region name"
  [[ -z $CA_BUNDLE || -r $CA_BUNDLE ]] || die "$EXIT_USAGE" "--ca-bundle '$CA_BUNDLE' is not a readable file"
  [[ -z $AGENT_KEY || -r $AGENT_KEY ]] || die "$EXIT_USAGE" "--agent-key '$AGENT_KEY' is not a readable file"
  case $INSTALL_METHOD in auto | setup-cli | package) ;; *) die "$EXIT_USAGE" "--install-method must be auto, setup-cli or package" ;; esac
  [[ $MAX_WAIT =~ ^[0-9]{1,5}$ ]] || die "$EXIT_USAGE" "--max-wait must be a whole number of seconds"
  [[ $BACKOFF_BASE_MS =~ ^[0-9]{1,7}$ && $BACKOFF_CAP_MS =~ ^[0-9]{1,7}$ ]] || die "$EXIT_USAGE" "INSTALL_BACKOFF_*_MS must be whole milliseconds"
  if [[ -n $PROXY_URL ]]; then
    # The value ends up in a systemd unit file: no whitespace, quotes or backslashes.
    local proxy_re='^https?://[^[:space:]"\\]+$'
    [[ $PROXY_URL =~ $proxy_re ]] || die "$EXIT_USAGE" "--proxy must look like http://host:port"
  fi
  local no_proxy_re='^[A-Za-z0-9.,:*/_-]*$'
  [[ $NO_PROXY_LIST =~ $no_proxy_re ]] || die "$EXIT_USAGE" "--no-proxy must be a comma-separated host list"
  [[ -d $ROOT ]] || die "$EXIT_USAGE" "--root '$ROOT' is not a directory"
  ROOT=${ROOT%/}
}

valid_region() {
  local re='^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
  [[ $1 =~ $re ]]
}

# Host path under the (test) root.
host_path() { printf '%s/%s' "$ROOT" "${1#/}"; }

# ---------------------------------------------------------------------------------------------
# JSON: a small, strict reader for the broker's and the agent's small documents (no jq on most
# servers). Walks the text once; string and scalar values land in JSON["a.b"] (arrays skipped).
# Handles any key order, whitespace and escapes (\" \\ \/ \b \f \n \r \t \uXXXX).
# ---------------------------------------------------------------------------------------------
declare -gA JSON=()
_js=""
_ji=0
_jn=0
_jstr=""

json_parse() {
  JSON=()
  _js=$1
  _ji=0
  _jn=${#1}
  _json_ws
  [[ ${_js:_ji:1} == "{" ]] || return 1
  _json_value "" 0 || return 1
  _json_ws
  ((_ji == _jn))
}

_json_ws() {
  while ((_ji < _jn)); do
    case ${_js:_ji:1} in
      ' ' | $'\t' | $'\n' | $'\r') _ji=$((_ji + 1)) ;;
      *) return 0 ;;
    esac
  done
  return 0
}

_json_string() {
  local c out="" hex
  _ji=$((_ji + 1))
  while ((_ji < _jn)); do
    c=${_js:_ji:1}
    case $c in
      '"')
        _ji=$((_ji + 1))
        _jstr=$out
        return 0
        ;;
      \\)
        c=${_js:_ji+1:1}
        _ji=$((_ji + 2))
        case $c in
          '"' | \\ | /) out+=$c ;;
          b) out+=$'\b' ;;
          f) out+=$'\f' ;;
          n) out+=$'\n' ;;
          r) out+=$'\r' ;;
          t) out+=$'\t' ;;
          u)
            hex=${_js:_ji:4}
            [[ $hex =~ ^[0-9A-Fa-f]{4}$ ]] || return 1
            _ji=$((_ji + 4))
            # Printable ASCII is decoded; anything else cannot be part of a valid field anyway.
            if ((16#$hex >= 32 && 16#$hex < 127)); then
              printf -v c '%b' "\\x${hex:2:2}"
              out+=$c
            else
              out+='?'
            fi
            ;;
          *) return 1 ;;
        esac
        ;;
      *)
        out+=$c
        _ji=$((_ji + 1))
        ;;
    esac
  done
  return 1
}

_json_value() {
  local path=$1 depth=$2 key lit
  ((depth <= 32)) || return 1
  _json_ws
  case ${_js:_ji:1} in
    '{')
      _ji=$((_ji + 1))
      _json_ws
      if [[ ${_js:_ji:1} == "}" ]]; then
        _ji=$((_ji + 1))
        return 0
      fi
      while true; do
        _json_ws
        [[ ${_js:_ji:1} == '"' ]] || return 1
        _json_string || return 1
        key=$_jstr
        _json_ws
        [[ ${_js:_ji:1} == ":" ]] || return 1
        _ji=$((_ji + 1))
        _json_value "${path:+$path.}$key" $((depth + 1)) || return 1
        _json_ws
        case ${_js:_ji:1} in
          ,) _ji=$((_ji + 1)) ;;
          '}')
            _ji=$((_ji + 1))
            return 0
            ;;
          *) return 1 ;;
        esac
      done
      ;;
    '[')
      _ji=$((_ji + 1))
      _json_ws
      if [[ ${_js:_ji:1} == "]" ]]; then
        _ji=$((_ji + 1))
        return 0
      fi
      while true; do
        _json_value "${path}[]" $((depth + 1)) || return 1
        _json_ws
        case ${_js:_ji:1} in
          ,) _ji=$((_ji + 1)) ;;
          ']')
            _ji=$((_ji + 1))
            return 0
            ;;
          *) return 1 ;;
        esac
      done
      ;;
    '"')
      _json_string || return 1
      if [[ -n $path ]]; then JSON[$path]=$_jstr; fi
      ;;
    *)
      lit=${_js:_ji:64}
      [[ $lit =~ ^(true|false|null|-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?) ]] || return 1
      if [[ -n $path ]]; then JSON[$path]=${BASH_REMATCH[1]}; fi
      _ji=$((_ji + ${#BASH_REMATCH[1]}))
      ;;
  esac
}

json_get() { printf '%s' "${JSON[$1]-}"; }

# Text from a remote party, made safe to print: one line, printable ASCII, bounded.
sanitize() {
  local s=${1//[^[:print:]]/ }
  printf '%s' "${s:0:300}"
}

# ---------------------------------------------------------------------------------------------
# Platform
# ---------------------------------------------------------------------------------------------
OS_ID=""
OS_NAME=""
FAMILY=""   # rpm | deb
PKG_TOOL="" # dnf | yum | zypper | apt-get | dpkg
ARCH=""     # amd64 | arm64
FOLDER=""   # linux_amd64 | linux_arm64 | debian_amd64 | debian_arm64

# os-release is data, not a script: read KEY=value lines instead of sourcing it.
read_os_release() {
  local file line key value
  file=$(host_path /etc/os-release)
  [[ -r $file ]] || file=$(host_path /usr/lib/os-release)
  [[ -r $file ]] || return 1
  local id="" like="" version="" name=""
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^([A-Z_]+)=(.*)$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    value=${value%\"}
    value=${value#\"}
    value=${value%\'}
    value=${value#\'}
    case $key in
      ID) id=$value ;;
      ID_LIKE) like=$value ;;
      VERSION_ID) version=$value ;;
      PRETTY_NAME) name=$value ;;
    esac
  done <"$file"
  OS_ID=${id,,}
  OS_LIKE=${like,,}
  OS_NAME=$(sanitize "${name:-$id $version}")
}

detect_platform() {
  OS_LIKE=""
  read_os_release || die "$EXIT_UNSUPPORTED" "cannot read $(host_path /etc/os-release): unsupported operating system"
  case $OS_ID in
    rhel | centos | rocky | almalinux | ol | fedora | amzn) FAMILY=rpm ;;
    sles | sles_sap | opensuse-leap | opensuse-tumbleweed | opensuse | suse) FAMILY=rpm ;;
    debian | ubuntu) FAMILY=deb ;;
    *)
      # A close derivative (ID_LIKE) is given a chance, with a warning: it uses the same packages.
      case " $OS_LIKE " in
        *" rhel "* | *" fedora "* | *" centos "* | *" suse "*) FAMILY=rpm ;;
        *" debian "* | *" ubuntu "*) FAMILY=deb ;;
        *) die "$EXIT_UNSUPPORTED" "unsupported operating system '${OS_NAME:-unknown}' (supported: RHEL, CentOS, Rocky, AlmaLinux, Oracle Linux, Fedora, Amazon Linux 2/2023, Debian, Ubuntu, SUSE/openSUSE)" ;;
      esac
      log "warning: '$OS_NAME' is not a tested distribution; treating it like ${OS_LIKE%% *}"
      ;;
  esac

  local machine
  machine=$(uname -m)
  case $machine in
    x86_64 | amd64) ARCH=amd64 ;;
    aarch64 | arm64) ARCH=arm64 ;;
    *) die "$EXIT_UNSUPPORTED" "unsupported architecture '$(sanitize "$machine")' (supported: x86_64, aarch64)" ;;
  esac

  if [[ $FAMILY == deb ]]; then
    FOLDER="debian_$ARCH"
    if command -v apt-get >/dev/null 2>&1; then PKG_TOOL=apt-get; else PKG_TOOL=dpkg; fi
  else
    FOLDER="linux_$ARCH"
    if [[ $OS_ID == sles* || $OS_ID == opensuse* || $OS_ID == suse || " $OS_LIKE " == *" suse "* ]]; then
      PKG_TOOL=zypper
    elif command -v dnf >/dev/null 2>&1; then
      PKG_TOOL=dnf
    else
      PKG_TOOL=yum
    fi
  fi
}

download_base() {
  local region=$1
  printf '%s' "${DOWNLOAD_BASE_TEMPLATE//\{region\}/$region}"
}

# ---------------------------------------------------------------------------------------------
# Agent state
# ---------------------------------------------------------------------------------------------
agent_binary() {
  local candidate
  for candidate in /usr/bin/amazon-ssm-agent /snap/amazon-ssm-agent/current/amazon-ssm-agent; do
    if [[ -x $(host_path "$candidate") ]]; then
      host_path "$candidate"
      return 0
    fi
  done
  return 1
}

service_name() {
  local bin
  if bin=$(agent_binary) && [[ $bin == */snap/* ]]; then printf '%s' "$SERVICE_SNAP"; else printf '%s' "$SERVICE_SYSTEMD"; fi
}

# Prints the ManagedInstanceID of the registration file, if there is a valid one.
registered_id() {
  local file content id
  file=$(host_path "/$REG_FILE_REL")
  [[ -s $file ]] || return 1
  content=$(head -c 65536 "$file")
  json_parse "$content" || return 1
  id=$(json_get ManagedInstanceID)
  [[ $id =~ ^mi-[0-9a-f]{17}$ ]] || return 1
  printf '%s' "$id"
}

# ---------------------------------------------------------------------------------------------
# Broker
# ---------------------------------------------------------------------------------------------
ACT_ID=""
ACT_CODE=""
ACT_REGION=""

broker_endpoint() {
  if [[ -n $BROKER_POOL ]]; then printf '%s/activations/%s' "$BROKER_URL" "$BROKER_POOL"; else printf '%s/' "$BROKER_URL"; fi
}

# Capped exponential backoff with jitter ("equal jitter": half fixed, half random), in ms.
backoff_ms() {
  local attempt=$1 ceiling=$BACKOFF_BASE_MS i
  for ((i = 1; i < attempt && ceiling < BACKOFF_CAP_MS; i++)); do ceiling=$((ceiling * 2)); done
  ((ceiling <= BACKOFF_CAP_MS)) || ceiling=$BACKOFF_CAP_MS
  local half=$((ceiling / 2))
  printf '%d' $((half + (RANDOM * 32768 + RANDOM) % (half + 1)))
}

sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# Fills ACT_ID, ACT_CODE, ACT_REGION from the broker, or exits with a BROKER_* code.
# The answer stays in shell variables: it is never written to a file or passed in argv.
fetch_activation() {
  local url attempt=0 started=$SECONDS out rc status body retry_after delay_ms reason elapsed
  url=$(broker_endpoint)
  local headers="$WORK_DIR/broker-headers" errors="$WORK_DIR/broker-errors"
  local -a args=(--silent --show-error --proto '=https,http' --connect-timeout "$CONNECT_TIMEOUT"
    --max-time "$REQUEST_TIMEOUT" --header 'Accept: application/json'
    --user-agent 'ssm-activation-broker-install/1 (linux)' --dump-header "$headers"
    --write-out '\n%{http_code}')
  if [[ -n $CA_BUNDLE ]]; then args+=(--cacert "$CA_BUNDLE"); fi

  while true; do
    attempt=$((attempt + 1))
    : >"$headers"
    set +e
    out=$(curl "${args[@]}" --url "$url" 2>"$errors")
    rc=$?
    set -e
    status=${out##*$'\n'}
    body=${out%$'\n'*}
    out=""
    retry_after=""
    if [[ $rc -ne 0 ]]; then
      reason="cannot reach the broker at $url: $(sanitize "$(head -n 1 "$errors")")"
      status=000
    fi

    case $status in
      200)
        parse_activation "$body"
        body=""
        return 0
        ;;
      429 | 503)
        retry_after=$(header_value retry-after "$headers")
        reason="broker busy (HTTP $status$(error_summary "$body"))"
        ;;
      000) ;;
      500 | 502 | 504) reason="broker failed (HTTP $status$(error_summary "$body"))" ;;
      4??) die "$EXIT_BROKER_REJECTED" "broker refused the request GET $url (HTTP $status$(error_summary "$body"))" ;;
      *) die "$EXIT_BROKER_BAD_ANSWER" "unexpected answer from the broker GET $url (HTTP $status)" ;;
    esac
    body=""

    if [[ $retry_after =~ ^[0-9]{1,6}$ ]] && ((retry_after > 0)); then
      delay_ms=$((retry_after * 1000))
    else
      delay_ms=$(backoff_ms "$attempt")
    fi
    elapsed=$((SECONDS - started))
    if ((elapsed * 1000 + delay_ms > MAX_WAIT * 1000)); then
      die "$EXIT_BROKER_UNREACHABLE" "$reason; giving up after $attempt attempt(s) in ${elapsed}s (--max-wait $MAX_WAIT)"
    fi
    log "$reason; retrying in $(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))s (attempt $attempt)"
    sleep_ms "$delay_ms"
  done
}

header_value() {
  local name=$1 file=$2 line value=""
  # With a proxy the file holds several header blocks; the last one is the broker's.
  while IFS= read -r line; do
    line=${line%$'\r'}
    if [[ ${line,,} == "$name:"* ]]; then
      value=${line#*:}
      value=${value//[[:space:]]/}
    fi
  done <"$file"
  printf '%s' "$value"
}

# ", PoolNotFound: Pool 'x' is not configured." from an error body, when there is one.
error_summary() {
  if json_parse "$1" && [[ -n ${JSON[error.code]-} ]]; then
    printf ', %s: %s' "$(sanitize "${JSON[error.code]}")" "$(sanitize "${JSON[error.message]-}")"
  fi
  JSON=()
}

parse_activation() {
  json_parse "$1" || die "$EXIT_BROKER_BAD_ANSWER" "broker answer is not a JSON object"
  ACT_ID=${JSON[ActivationId]-}
  ACT_CODE=${JSON[ActivationCode]-}
  ACT_REGION=${JSON[Region]-}
  JSON=()
  [[ $ACT_ID =~ ^[A-Za-z0-9-]{1,64}$ ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid ActivationId"
  # The code is checked for shape only, and never echoed, even in this message.
  [[ $ACT_CODE =~ ^[A-Za-z0-9+/=]{8,250}$ ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid ActivationCode"
  if [[ -n $REGION_OVERRIDE ]]; then
    ACT_REGION=$REGION_OVERRIDE
  elif ! valid_region "$ACT_REGION"; then
    die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid Region (pass --region to override)"
  fi
}

# ---------------------------------------------------------------------------------------------
# Proxy for the agent
# ---------------------------------------------------------------------------------------------
proxy_display() {
  local re='^([a-z]+://)[^@/]*@(.*)$'
  if [[ $1 =~ $re ]]; then printf '%s***@%s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"; else printf '%s' "$1"; fi
}

proxy_dropin_path() { host_path "/etc/systemd/system/$(service_name).service.d/10-broker-proxy.conf"; }

configure_agent_proxy() {
  [[ -n $PROXY_URL ]] || return 0
  # curl (broker, downloads) and ssm-setup-cli read the proxy from the environment.
  export https_proxy=$PROXY_URL HTTPS_PROXY=$PROXY_URL http_proxy=$PROXY_URL
  local agent_no_proxy="169.254.169.254${NO_PROXY_LIST:+,$NO_PROXY_LIST}"
  local inherited=${NO_PROXY:-${no_proxy:-}}
  no_proxy="${inherited:+$inherited,}$agent_no_proxy"
  export no_proxy NO_PROXY=$no_proxy
  if ! command -v systemctl >/dev/null 2>&1; then
    log "warning: no systemd; configure the agent's proxy by hand (https_proxy=$(proxy_display "$PROXY_URL"))"
    return 0
  fi
  local dropin
  dropin=$(proxy_dropin_path)
  mkdir -p "${dropin%/*}"
  # 0600: the proxy URL may carry credentials.
  (
    umask 077
    printf '[Service]\nEnvironment="http_proxy=%s"\nEnvironment="https_proxy=%s"\nEnvironment="no_proxy=%s"\n' \
      "$PROXY_URL" "$PROXY_URL" "$agent_no_proxy" >"$dropin.tmp"
  )
  mv -f "$dropin.tmp" "$dropin"
  systemctl daemon-reload || log "warning: systemctl daemon-reload failed"
  log "agent proxy set to $(proxy_display "$PROXY_URL") in ${dropin#"$ROOT"}"
}

# ---------------------------------------------------------------------------------------------
# Install and register
# ---------------------------------------------------------------------------------------------
# Prints the HTTP status; the file lands in $2. Downloads go to AWS (or the test hook), never
# through --ca-bundle, which is meant for the broker's private CA.
download() {
  local url=$1 dest=$2 status proto='=https'
  if is_loopback_http "$url"; then proto='=https,http'; fi
  set +e
  status=$(curl --silent --show-error --proto "$proto" --connect-timeout "$CONNECT_TIMEOUT" \
    --max-time 600 --retry 3 --output "$dest" --write-out '%{http_code}' --url "$url" 2>"$WORK_DIR/download-errors")
  set -e
  if [[ $status != 200 ]]; then
    log "download of $url failed (HTTP ${status:-000}) $(sanitize "$(head -n 1 "$WORK_DIR/download-errors")")"
  fi
  printf '%s' "${status:-000}"
}

setup_cli_url() { printf '%s/latest/%s/ssm-setup-cli' "$(download_base "$1")" "$FOLDER"; }
package_url() {
  local ext=rpm
  [[ $FAMILY == deb ]] && ext=deb
  printf '%s/latest/%s/amazon-ssm-agent.%s' "$(download_base "$1")" "$FOLDER" "$ext"
}

# 0: ssm-setup-cli installed, registered and started the agent; 3: ssm-setup-cli is not available.
install_with_setup_cli() {
  local url status cli="$WORK_DIR/ssm-setup-cli" rc
  url=$(setup_cli_url "$ACT_REGION")
  log "downloading $url"
  status=$(download "$url" "$cli")
  if [[ $status != 200 ]]; then
    log "ssm-setup-cli not available (HTTP $status)"
    return 3
  fi
  chmod 0700 "$cli"
  local -a flags=(-register -activation-code "$ACT_CODE" -activation-id "$ACT_ID" -region "$ACT_REGION")
  if ((FORCE)); then flags+=(-override); fi
  log "running ssm-setup-cli -register -activation-code *** -activation-id $ACT_ID -region $ACT_REGION$( ((FORCE)) && printf ' -override')"
  # ssm-setup-cli takes the code only as an argument: it is in its argv for the few seconds of
  # the registration call, and nowhere else. Its own log goes to our stderr.
  set +e
  (cd "$WORK_DIR" && "$cli" "${flags[@]}") >&2
  rc=$?
  set -e
  flags=()
  if ((rc != 0)); then
    if agent_binary >/dev/null; then
      die "$EXIT_REGISTRATION_FAILED" "ssm-setup-cli installed the agent but registration failed (exit $rc); see its messages above"
    fi
    die "$EXIT_INSTALL_FAILED" "ssm-setup-cli failed (exit $rc) before the agent was installed"
  fi
  return 0
}

install_package() {
  local url status pkg sig ext=rpm
  [[ $FAMILY == deb ]] && ext=deb
  [[ -n $AGENT_KEY ]] || die "$EXIT_INSTALL_FAILED" "the package method needs --agent-key FILE (the SSM Agent public key from https://docs.aws.amazon.com/systems-manager/latest/userguide/verify-agent-signature.html) to check the package signature"
  command -v gpg >/dev/null 2>&1 || die "$EXIT_INSTALL_FAILED" "gpg is needed to check the agent package signature"
  url=$(package_url "$ACT_REGION")
  pkg="$WORK_DIR/amazon-ssm-agent.$ext"
  sig="$pkg.sig"
  log "downloading $url"
  status=$(download "$url" "$pkg")
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url (HTTP $status)"
  status=$(download "$url.sig" "$sig")
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url.sig (HTTP $status)"

  local gnupg="$WORK_DIR/gnupg"
  mkdir -p "$gnupg"
  gpg --batch --quiet --homedir "$gnupg" --import "$AGENT_KEY" >&2 ||
    die "$EXIT_INSTALL_FAILED" "cannot import --agent-key $AGENT_KEY"
  gpg --batch --quiet --homedir "$gnupg" --verify "$sig" "$pkg" >&2 ||
    die "$EXIT_INSTALL_FAILED" "signature check of $url failed: not installing it"
  log "package signature verified"

  # The signature was checked above with the AWS key, so the package tools are not asked to
  # trust a key of their own (rpm's keyring does not hold it).
  case $PKG_TOOL in
    dnf) dnf -y install "$pkg" >&2 ;;
    yum) yum -y install "$pkg" >&2 ;;
    zypper) zypper --non-interactive --no-gpg-checks install "$pkg" >&2 ;;
    apt-get) DEBIAN_FRONTEND=noninteractive apt-get -y install "$pkg" >&2 ;;
    dpkg) dpkg -i "$pkg" >&2 ;;
  esac || die "$EXIT_INSTALL_FAILED" "$PKG_TOOL could not install $pkg"
  agent_binary >/dev/null || die "$EXIT_INSTALL_FAILED" "$PKG_TOOL finished but amazon-ssm-agent is not installed"
}

svc() {
  local verb=$1 name
  name=$(service_name)
  if command -v systemctl >/dev/null 2>&1; then
    systemctl "$verb" "$name" >&2
  elif command -v service >/dev/null 2>&1; then
    if [[ $verb == enable ]]; then return 0; fi
    service "$name" "$verb" >&2
  else
    log "warning: no systemctl or service command: cannot $verb $name"
    return 1
  fi
}

register_with_agent() {
  local bin out rc
  bin=$(agent_binary)
  svc stop || true
  local -a flags=(-register -code "$ACT_CODE" -id "$ACT_ID" -region "$ACT_REGION" -y)
  if ((FORCE)); then flags+=(-clear); fi
  log "running amazon-ssm-agent -register -code *** -id $ACT_ID -region $ACT_REGION -y$( ((FORCE)) && printf ' -clear')"
  # The agent takes the code only as an argument: it is in its argv for the one registration
  # call and nowhere else.
  set +e
  out=$("$bin" "${flags[@]}" 2>&1)
  rc=$?
  set -e
  flags=()
  out=${out//"$ACT_CODE"/***}
  printf '%s\n' "$out" >&2
  ((rc == 0)) || die "$EXIT_REGISTRATION_FAILED" "the agent could not register (exit $rc): $(sanitize "$(printf '%s' "$out" | grep -m 1 -i 'fail' || printf '%s' "${out##*$'\n'}")")"
}

start_and_verify() {
  svc enable || die "$EXIT_SERVICE_FAILED" "cannot enable the $(service_name) service"
  svc start || die "$EXIT_SERVICE_FAILED" "cannot start the $(service_name) service"
  if command -v systemctl >/dev/null 2>&1; then
    systemctl is-active --quiet "$(service_name)" || die "$EXIT_SERVICE_FAILED" "the $(service_name) service is not running"
  fi
  local id
  id=$(registered_id) || die "$EXIT_SERVICE_FAILED" "registration reported success but $(host_path "/$REG_FILE_REL") holds no ManagedInstanceID"
  log "registered as managed node $id (region $ACT_REGION)"
  printf '%s\n' "$id"
}

# ---------------------------------------------------------------------------------------------
# Plan, main
# ---------------------------------------------------------------------------------------------
print_plan() {
  local region_label=${REGION_OVERRIDE:-"{region}"} agent_state="not installed" existing
  if agent_binary >/dev/null; then agent_state="installed at $(agent_binary)"; fi
  existing=$(registered_id || true)
  printf 'Plan (dry run: nothing is changed and the broker is not called):\n'
  printf '  platform:  %s (%s packages, %s via %s), arch %s\n' "$OS_NAME" "$FAMILY" "$FOLDER" "$PKG_TOOL" "$ARCH"
  printf '  broker:    GET %s\n' "$(broker_endpoint)"
  printf '  region:    %s\n' "${REGION_OVERRIDE:-from the broker answer}"
  printf '  agent:     %s\n' "$agent_state"
  if [[ -n $existing ]]; then printf '  current:   registered as %s; --force: clear and re-register\n' "$existing"; fi
  if agent_binary >/dev/null; then
    printf '  register:  amazon-ssm-agent -register -code *** -id <id> -region %s -y%s\n' "$region_label" "$( ((FORCE)) && printf ' -clear')"
  else
    if [[ $INSTALL_METHOD != package ]]; then
      printf '  install:   %s\n' "$(setup_cli_url "$region_label")"
      printf '             ssm-setup-cli -register -activation-code *** -activation-id <id> -region %s%s\n' "$region_label" "$( ((FORCE)) && printf ' -override')"
    fi
    if [[ $INSTALL_METHOD != setup-cli ]]; then
      if [[ $INSTALL_METHOD == package ]]; then printf '  install:   '; else printf '  fallback:  '; fi
      printf '%s (+ .sig, checked with gpg) via %s\n' "$(package_url "$region_label")" "$PKG_TOOL"
      printf '             amazon-ssm-agent -register -code *** -id <id> -region %s -y\n' "$region_label"
    fi
  fi
  if [[ -n $PROXY_URL ]]; then printf '  proxy:     %s in %s\n' "$(proxy_display "$PROXY_URL")" "$(proxy_dropin_path)"; fi
  printf '  service:   enable and start %s\n' "$(service_name)"
  printf '  verify:    %s holds ManagedInstanceID\n' "$(host_path "/$REG_FILE_REL")"
}

cleanup() {
  ACT_CODE=""
  if [[ -n $WORK_DIR && -d $WORK_DIR ]]; then rm -rf -- "$WORK_DIR"; fi
}

# xtrace would print the code: suspend it while the code is in memory, restore it after.
quiet_begin() {
  if [[ $- == *x* ]]; then XTRACE=1; fi
  { set +x; } 2>/dev/null
}
quiet_end() { if ((XTRACE)); then set -x; fi; }

main() {
  parse_args "$@"
  validate_args
  detect_platform

  local existing=""
  if ((!DRY_RUN)); then
    if [[ $ROOT == "" && $EUID -ne 0 ]]; then die "$EXIT_NOT_ROOT" "run as root (sudo bash install.sh ...)"; fi
    # Two runs at once (cloud-init and a timer) must not both take a registration.
    local lock
    lock=$(host_path /run/ssm-activation-broker-install.lock)
    mkdir -p "${lock%/*}"
    exec 9>"$lock"
    if command -v flock >/dev/null 2>&1; then
      flock -w 900 9 || die "$EXIT_FAILURE" "another install.sh holds $lock"
    fi
  fi

  if existing=$(registered_id) && ((!FORCE)); then
    log "already registered as managed node $existing; nothing to do (--force re-registers)"
    printf '%s\n' "$existing"
    exit "$EXIT_OK"
  fi
  if ((DRY_RUN)); then
    print_plan
    exit "$EXIT_OK"
  fi

  trap cleanup EXIT
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ssm-install.XXXXXXXX")
  configure_agent_proxy

  quiet_begin
  fetch_activation
  log "got activation $ACT_ID (region $ACT_REGION${BROKER_POOL:+, pool $BROKER_POOL})"
  if agent_binary >/dev/null; then
    log "agent already installed at $(agent_binary): registering it (never reinstalled)"
    register_with_agent
  else
    local rc=0
    if [[ $INSTALL_METHOD != package ]]; then
      install_with_setup_cli || rc=$?
      if ((rc == 3)) && [[ $INSTALL_METHOD == setup-cli ]]; then
        die "$EXIT_INSTALL_FAILED" "ssm-setup-cli is not available for $FOLDER in $ACT_REGION"
      fi
    fi
    if [[ $INSTALL_METHOD == package ]] || ((rc == 3)); then
      install_package
      register_with_agent
    fi
  fi
  ACT_CODE=""
  quiet_end

  start_and_verify
}

# Test hook: INSTALL_SOURCE_ONLY=1 loads the functions without running (unit tests of the parser).
if [[ ${INSTALL_SOURCE_ONLY:-} != 1 ]]; then main "$@"; fi
