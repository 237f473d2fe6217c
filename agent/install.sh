#!/usr/bin/env bash
# install.sh: register this Linux server with AWS Systems Manager through the activation broker.
#   curl -fsSL "https://BROKER/install.sh?pool=web" | sudo bash -s -- --proxy http://proxy:3128
# Order: prerequisites; the SSM Agent found, or installed and verified; only then one pair from the
# broker (each answer reserves a registration: a failed install costs none); register; enable and
# start the service; print the node id. Re-runs converge. Needs bash >= 4.2, curl, coreutils (jq to
# merge endpoints into an existing agent configuration). docs/onboarding.md: options, sources.
set -Eeuo pipefail
export LC_ALL=C
umask 077

# Exit codes (the same in install.ps1 and install-eks.sh):
readonly EXIT_OK=0                    # registered (now or before), enabled and running; --help
readonly EXIT_FAILURE=1               # unexpected error
readonly EXIT_USAGE=2                 # bad option or value
readonly EXIT_NOT_ROOT=3              # must run as root
readonly EXIT_UNSUPPORTED=4           # operating system or architecture not supported
readonly EXIT_BROKER_UNREACHABLE=10   # broker unreachable, or busy (429/5xx) when --max-wait ran out
readonly EXIT_BROKER_REJECTED=11      # broker refused the request (4xx, e.g. 404 PoolNotFound)
readonly EXIT_BROKER_BAD_ANSWER=12    # broker answer unusable (over 64 KB, a field missing or malformed)
readonly EXIT_INSTALL_FAILED=20       # agent missing, or its download, check or install failed
readonly EXIT_REGISTRATION_FAILED=21  # SSM refused the registration, also with a second pair
readonly EXIT_SERVICE_FAILED=22       # service not enabled or not running, or no registration file

# The broker fills these two in when it serves GET /install.sh; the environment or --url/--pool win.
BROKER_URL="${BROKER_URL:-__BROKER_URL__}"
BROKER_POOL="${BROKER_POOL:-__BROKER_POOL__}"
case $BROKER_URL in __BROKER_*__) BROKER_URL="" ;; esac # an unrendered copy: unset
case $BROKER_POOL in __BROKER_*__) BROKER_POOL="" ;; esac
# --- host paths (constants; the tests rewrite this block into their sandbox) ---
REG_FILE="/var/lib/amazon/ssm/registration"
AGENT_CONFIG="/etc/amazon/ssm/amazon-ssm-agent.json"
UNIT_DIR="/etc/systemd/system"
OS_RELEASE="/etc/os-release"
LOCK_FILE="/run/ssm-activation-broker-install.lock"
AGENT_BINS=("/usr/bin/amazon-ssm-agent" "/snap/amazon-ssm-agent/current/amazon-ssm-agent")
BUCKET="https://amazon-ssm-{region}.s3.{region}.amazonaws.com"
# --- end of host paths ---
readonly MAX_ANSWER_BYTES=65536 # the answer is ~200 bytes; anything larger is refused unread
REGION="" PROXY="${HTTPS_PROXY:-${https_proxy:-}}" NO_PROXY_LIST="" MAX_WAIT=300
SSM_ENDPOINT="" MDS_ENDPOINT="" MGS_ENDPOINT="" AGENT_PATH="" PACKAGE="" AGENT_KEY=""
AGENT_VERSION="" MIRROR="" FORCE=0 NO_START=0 VERBOSE=0
WORK="" AGENT="" SETUP_CLI="" TOOL_OUT="" CHANGED=0 FRESH=0 XTRACE=0 ACT_ID="" ACT_CODE="" ACT_REGION=""
OS_NAME="" FAMILY="" PKG_TOOL="" ARCH="" FOLDER=""
log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: ${*:2}" && exit "$1"; }
# Text from elsewhere, safe to print: one line of printable ASCII, at most 300 characters.
sanitize() { local s=${1:0:300} && printf '%s' "${s//[^[:print:]]/ }"; }
# Runs a tool, its output captured with the code masked out; shown with --verbose or on failure.
run_tool() {
  local rc=0
  TOOL_OUT=$("$@" 2>&1 </dev/null) || rc=$?
  if [[ -n $ACT_CODE ]]; then TOOL_OUT=${TOOL_OUT//"$ACT_CODE"/***}; fi
  if [[ -n $TOOL_OUT ]] && ((VERBOSE || rc != 0)); then printf '  | %s\n' "${TOOL_OUT//$'\n'/$'\n'  | }" >&2; fi
  return "$rc"
}
# option, its value ("-": a flag, which sets 1), the variable it sets, its help (`--help`).
readonly OPTIONS="
  --url URL              BROKER_URL    broker base URL (env BROKER_URL; filled in when served): https, http on loopback
  --pool NAME            BROKER_POOL   activation pool, [A-Za-z0-9_-]{1,64} (env BROKER_POOL); default pool if empty
  --region REGION        REGION        download and registration region (default: the broker URL's, else the answer's)
  --max-wait SECONDS     MAX_WAIT      how long to retry a busy or unreachable broker (default 300)
  --proxy URL            PROXY         proxy for the broker, the downloads and the agent (default \$HTTPS_PROXY)
  --no-proxy LIST        NO_PROXY_LIST hosts the agent reaches directly (169.254.169.254 always)
  --ssm-endpoint URL     SSM_ENDPOINT  the agent's Ssm.Endpoint (its registration goes there too), e.g. a VPC endpoint
  --ec2messages-endpoint URL MDS_ENDPOINT the agent's Mds.Endpoint
  --ssmmessages-endpoint URL MGS_ENDPOINT the agent's Mgs.Endpoint
  --agent-path PATH      AGENT_PATH    register this agent binary (e.g. a golden image's); install nothing
  --package FILE         PACKAGE       install this local rpm/deb; FILE.sig is checked with --agent-key
  --agent-key FILE       AGENT_KEY     the SSM Agent public GPG key: install the signed package, checked with it
  --agent-version V      AGENT_VERSION ssm-setup-cli's -version: stable, latest or e.g. 3.3.987.0
  --mirror-url URL       MIRROR        a copy of the regional agent bucket (https)
  --force     -          FORCE         re-register a registered server (the agent is never uninstalled)
  --no-start  -          NO_START      register and enable the service, do not start it
  --verbose   -          VERBOSE       also show the output of the tools run
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
      printf 'Usage: install.sh [options]   (as root; docs/onboarding.md)\n' && sed -E 's/^(  --[^ ]+)( [A-Z]+| +-) +[A-Z_]+ +/\1\2  /; s/ +-  / /' <<<"${OPTIONS#$'\n'}"
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
}
is_loopback() { [[ $1 =~ ^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?(/|$) ]]; }
# https://host[:port][/path], no credentials, query or whitespace; plain http on loopback only.
valid_url() { [[ $1 =~ ^https?://[]A-Za-z0-9.:[-]+(/[A-Za-z0-9._~%/-]*)?$ ]] && { [[ $1 == https://* ]] || is_loopback "$1"; }; }
# An agent endpoint has no path: the agent's SDK adds its own.
valid_endpoint() { valid_url "$1" && [[ $1 =~ ^https?://[^/]+/?$ ]]; }
valid_region() { [[ $1 =~ ^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$ ]]; }

validate_args() {
  [[ -n $BROKER_URL ]] || die "$EXIT_USAGE" "no broker URL: pass --url, or download this script from the broker (GET /install.sh)"
  valid_url "$BROKER_URL" || die "$EXIT_USAGE" "--url must look like https://host[:port][/path] (plain http only on loopback: the answer holds a secret)"
  BROKER_URL=${BROKER_URL%/}
  [[ -z $BROKER_POOL || $BROKER_POOL =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "$EXIT_USAGE" "--pool must match [A-Za-z0-9_-]{1,64}"
  [[ -z $REGION ]] || valid_region "$REGION" || die "$EXIT_USAGE" "--region '$(sanitize "$REGION")' is not a region name"
  [[ -z $AGENT_KEY || -r $AGENT_KEY ]] || die "$EXIT_USAGE" "--agent-key '$AGENT_KEY' is not a readable file"
  [[ $MAX_WAIT =~ ^[0-9]{1,5}$ ]] || die "$EXIT_USAGE" "--max-wait must be a whole number of seconds"
  [[ -z $AGENT_PATH || -z $PACKAGE ]] || die "$EXIT_USAGE" "--agent-path and --package exclude each other"
  [[ -z $PACKAGE || (-f $PACKAGE && -r $PACKAGE) ]] || die "$EXIT_USAGE" "--package '$PACKAGE' is not a readable file"
  if [[ -n $AGENT_VERSION ]]; then
    [[ $AGENT_VERSION =~ ^(stable|latest|[0-9]{1,4}(\.[0-9]{1,6}){2,3})$ ]] || die "$EXIT_USAGE" "--agent-version must be stable, latest or a version like 3.3.987.0"
    [[ -z $AGENT_KEY$AGENT_PATH$PACKAGE ]] || die "$EXIT_USAGE" "--agent-version is passed to ssm-setup-cli: it cannot be combined with --agent-key, --package or --agent-path"
  fi
  if [[ -n $MIRROR ]]; then
    valid_url "$MIRROR" || die "$EXIT_USAGE" "--mirror-url must look like https://host[:port][/path]"
    MIRROR=${MIRROR%/}
    BUCKET=$MIRROR
  fi
  local option
  for option in "ssm-endpoint $SSM_ENDPOINT" "ec2messages-endpoint $MDS_ENDPOINT" "ssmmessages-endpoint $MGS_ENDPOINT"; do
    [[ $option != *" "?* ]] || valid_endpoint "${option#* }" || die "$EXIT_USAGE" "--${option%% *} must look like https://host[:port]"
  done
  # The proxy ends up in a systemd unit file: no whitespace, quotes or backslashes.
  [[ -z $PROXY || $PROXY =~ ^https?://[^[:space:]\"\\]+$ ]] || die "$EXIT_USAGE" "--proxy must look like http://host:port"
  [[ $NO_PROXY_LIST =~ ^[A-Za-z0-9.,:*/_-]*$ ]] || die "$EXIT_USAGE" "--no-proxy must be a comma-separated host list"
}
# os-release is data, not a script: its KEY=value lines are read, never sourced.
detect_platform() {
  local line id="" like="" name=""
  [[ -r $OS_RELEASE ]] || die "$EXIT_UNSUPPORTED" "cannot read $OS_RELEASE: unsupported operating system"
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^(ID|ID_LIKE|PRETTY_NAME)=[\"\']?([^\"\']*) ]] || continue
    case ${BASH_REMATCH[1]} in ID) id=${BASH_REMATCH[2],,} ;; ID_LIKE) like=" ${BASH_REMATCH[2],,} " ;; *) name=${BASH_REMATCH[2]} ;; esac
  done <"$OS_RELEASE"
  OS_NAME=$(sanitize "${name:-$id}")
  case " $id $like " in
    *" debian "* | *" ubuntu "*) FAMILY=deb ;;
    *" rhel "* | *" centos "* | *" fedora "* | *" amzn "* | *" suse "* | *" sles "* | *" opensuse"*) FAMILY=rpm ;;
    *) die "$EXIT_UNSUPPORTED" "unsupported operating system '${OS_NAME:-unknown}' (supported: RHEL and its rebuilds, Fedora, Amazon Linux 2/2023, Debian, Ubuntu, SUSE/openSUSE)" ;;
  esac
  case $(uname -m) in x86_64 | amd64) ARCH=amd64 ;; aarch64 | arm64) ARCH=arm64 ;; *) ARCH="" ;; esac
  [[ -n $ARCH ]] || die "$EXIT_UNSUPPORTED" "unsupported architecture '$(sanitize "$(uname -m)")' (supported: x86_64, aarch64)"
  if [[ $FAMILY == deb ]]; then
    FOLDER=debian_$ARCH PKG_TOOL=dpkg
    if command -v apt-get >/dev/null; then PKG_TOOL=apt-get; fi
  else
    FOLDER=linux_$ARCH PKG_TOOL=yum
    if [[ " $id $like " == *suse* || $id == sles* ]]; then PKG_TOOL=zypper; elif command -v dnf >/dev/null; then PKG_TOOL=dnf; fi
  fi
}

agent_binary() {
  local bin
  for bin in "${AGENT_PATH:-${AGENT_BINS[0]}}" "${AGENT_PATH:-${AGENT_BINS[1]}}"; do
    if [[ -f $bin && -x $bin ]]; then printf '%s' "$bin" && return 0; fi
  done
  return 1
}
service_name() { if [[ $(agent_binary) == */snap/* ]]; then echo snap.amazon-ssm-agent.amazon-ssm-agent; else echo amazon-ssm-agent; fi; }
# The ManagedInstanceID of a valid registration file (a pattern: no JSON parser needed for one field).
registered_id() {
  [[ -s $REG_FILE && $(head -c 4096 "$REG_FILE") =~ \"ManagedInstanceID\"[[:space:]]*:[[:space:]]*\"(mi-[0-9a-f]{17})\" ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}
verify_agent() {
  run_tool "$1" -version || die "$EXIT_INSTALL_FAILED" "$1 does not run (-version failed): the agent is not usable"
  [[ $TOOL_OUT =~ SSM\ Agent\ version:\ ([0-9.]+) ]] || die "$EXIT_INSTALL_FAILED" "$1 -version did not report an SSM Agent version"
  log "agent ${BASH_REMATCH[1]} at $1"
  AGENT=$1
}
svc() { command -v systemctl >/dev/null && run_tool systemctl "$1" "$(service_name)"; }
svc_is() { command -v systemctl >/dev/null && systemctl "is-$1" --quiet "$(service_name)" 2>/dev/null; }

# The end of every run: registered, enabled and running (enabled and stopped with --no-start), or
# an exit naming what is missing. Prints the node id on stdout.
converge() {
  local id name
  name=$(service_name)
  id=$(registered_id) || die "$EXIT_SERVICE_FAILED" "no registration: $REG_FILE holds no ManagedInstanceID"
  svc_is enabled || svc enable || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service cannot be enabled"
  if ((NO_START)); then
    if ((FRESH)) && svc_is active; then svc stop || die "$EXIT_SERVICE_FAILED" "--no-start: cannot stop the $name service"; fi
    log "registered as managed node $id; $name enabled, not started (--no-start)"
  else
    if ((CHANGED)) && svc_is active; then
      svc restart || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service cannot be restarted"
    elif ! svc_is active; then
      log "the $name service is not running: starting it"
      svc start || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service cannot be started"
    fi
    svc_is active || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service is not running"
    log "registered as managed node $id; $name enabled and running"
  fi
  printf '%s\n' "$id"
}
proxy_shown() { printf "%s" "${PROXY/\/\/*@/\/\/***@}"; }
configure_proxy() {
  [[ -n $PROXY ]] || return 0
  # curl and ssm-setup-cli read the proxy from the environment; the agent from its unit.
  local agent_no_proxy="169.254.169.254${NO_PROXY_LIST:+,$NO_PROXY_LIST}"
  local inherited=${NO_PROXY:-${no_proxy:-}}
  export https_proxy=$PROXY HTTPS_PROXY=$PROXY http_proxy=$PROXY no_proxy="${inherited:+$inherited,}$agent_no_proxy"
  export NO_PROXY=$no_proxy
  command -v systemctl >/dev/null || { log "warning: no systemd: set the agent's proxy by hand" && return 0; }
  local dropin content
  dropin="$UNIT_DIR/$(service_name).service.d/10-broker-proxy.conf"
  printf -v content '[Service]\nEnvironment="http_proxy=%s"\nEnvironment="https_proxy=%s"\nEnvironment="no_proxy=%s"\n' "$PROXY" "$PROXY" "$agent_no_proxy"
  [[ ! -f $dropin || "$(cat "$dropin")"$'\n' != "$content" ]] || return 0
  mkdir -p "${dropin%/*}"
  printf '%s' "$content" >"$dropin.tmp" # 0600 (umask): the URL may hold credentials
  mv -f "$dropin.tmp" "$dropin"
  CHANGED=1
  run_tool systemctl daemon-reload || log "warning: systemctl daemon-reload failed"
  log "agent proxy set to $(proxy_shown) in $dropin"
}

# Ssm/Mds/Mgs.Endpoint: merged with jq into an existing file (other settings kept), else a minimal
# file the agent lays over its defaults. Before -register, which takes its endpoint from here.
configure_endpoints() {
  [[ -n $SSM_ENDPOINT$MDS_ENDPOINT$MGS_ENDPOINT ]] || return 0
  local new old=""
  if [[ -s $AGENT_CONFIG ]]; then
    old=$(cat "$AGENT_CONFIG")
    command -v jq >/dev/null || die "$EXIT_INSTALL_FAILED" "$AGENT_CONFIG exists and jq is not installed to merge the endpoints into it: install jq, or set Ssm.Endpoint, Mds.Endpoint and Mgs.Endpoint there by hand"
    new=$(jq --arg ssm "$SSM_ENDPOINT" --arg mds "$MDS_ENDPOINT" --arg mgs "$MGS_ENDPOINT" \
      'if $ssm > "" then .Ssm.Endpoint = $ssm else . end | if $mds > "" then .Mds.Endpoint = $mds else . end | if $mgs > "" then .Mgs.Endpoint = $mgs else . end' \
      "$AGENT_CONFIG" 2>/dev/null) || die "$EXIT_INSTALL_FAILED" "$AGENT_CONFIG is not valid JSON: fix it or remove it, then run again"
  else
    # The values passed valid_endpoint: no quote or backslash reaches this JSON.
    local -a parts=()
    [[ -z $SSM_ENDPOINT ]] || parts+=("\"Ssm\": {\"Endpoint\": \"$SSM_ENDPOINT\"}")
    [[ -z $MDS_ENDPOINT ]] || parts+=("\"Mds\": {\"Endpoint\": \"$MDS_ENDPOINT\"}")
    [[ -z $MGS_ENDPOINT ]] || parts+=("\"Mgs\": {\"Endpoint\": \"$MGS_ENDPOINT\"}")
    new="{$(IFS=, && printf '%s' "${parts[*]}")}"
  fi
  [[ $new != "$old" ]] || return 0
  mkdir -p "${AGENT_CONFIG%/*}"
  (umask 022 && printf '%s\n' "$new" >"$AGENT_CONFIG.tmp") && mv -f "$AGENT_CONFIG.tmp" "$AGENT_CONFIG"
  CHANGED=1
  log "agent endpoints written to $AGENT_CONFIG:${SSM_ENDPOINT:+ ssm $SSM_ENDPOINT}${MDS_ENDPOINT:+ ec2messages $MDS_ENDPOINT}${MGS_ENDPOINT:+ ssmmessages $MGS_ENDPOINT}"
}
bucket() { printf '%s' "${BUCKET//\{region\}/$REGION}"; }
package_url() { printf '%s/latest/%s/amazon-ssm-agent.%s' "$(bucket)" "$FOLDER" "$FAMILY"; }
# Downloads from AWS or the mirror; prints the HTTP status.
download() {
  local status proto='=https'
  if is_loopback "$1"; then proto='=https,http'; fi
  status=$(curl --silent --show-error --proto "$proto" --connect-timeout 10 --max-time 600 --retry 3 \
    --output "$2" --write-out '%{http_code}' --url "$1" 2>"$WORK/download-errors") || true
  printf '%s' "${status:-000}"
}
# The download region must be known before the broker is asked, or a failed download would cost
# a registration: --region, else the region an API Gateway or VPC endpoint URL names.
resolve_region() {
  if [[ -z $REGION && $BROKER_URL =~ \.([a-z]{2}(-[a-z]+)+-[0-9]{1,2})\.(vpce\.)?amazonaws\.com(\.cn)?(:[0-9]+)?(/|$) ]]; then REGION=${BASH_REMATCH[1]}; fi
  if [[ -z $REGION && $BUCKET == *"{region}"* ]]; then
    die "$EXIT_USAGE" "the agent must be downloaded, and its region is not known before the broker is asked (the broker URL names none): pass --region REGION, or --mirror-url, --package or --agent-path"
  fi
}
# ssm-setup-cli installs the agent only with a registration: what it needs is checked first (its
# download, the manifest it reads, gpg). Returns 3 when the bucket has none for this platform.
prepare_setup_cli() {
  local url status
  url="$(bucket)/latest/$FOLDER/ssm-setup-cli"
  log "downloading $url"
  status=$(download "$url" "$WORK/ssm-setup-cli")
  if [[ $status == 40[34] ]]; then log "ssm-setup-cli not available at $url (HTTP $status)" && return 3; fi
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url (HTTP $status): check the network, --proxy or --mirror-url (no registration was taken)"
  status=$(download "$(bucket)/ssm-agent-manifest.json" "$WORK/manifest.json")
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "ssm-setup-cli could not fetch the agent: $(bucket)/ssm-agent-manifest.json answers HTTP $status (no registration was taken)"
  command -v gpg >/dev/null || die "$EXIT_INSTALL_FAILED" "ssm-setup-cli checks the agent package with gpg, which is not installed (no registration was taken)"
  chmod 0700 "$WORK/ssm-setup-cli"
  SETUP_CLI="$WORK/ssm-setup-cli"
}

# The package method: the .sig is checked with the AWS key before the package manager sees it
# (so the package tools are not asked to trust a key of their own).
need_key() {
  [[ -n $AGENT_KEY ]] || die "$EXIT_INSTALL_FAILED" "installing a package needs --agent-key FILE (the SSM Agent public key from https://docs.aws.amazon.com/systems-manager/latest/userguide/verify-agent-signature.html) to check its signature"
  command -v gpg >/dev/null || die "$EXIT_INSTALL_FAILED" "gpg is needed to check the agent package signature"
}
install_package() {
  local pkg=$1 origin=$2
  mkdir -p "$WORK/gnupg"
  run_tool gpg --batch --quiet --homedir "$WORK/gnupg" --import "$AGENT_KEY" || die "$EXIT_INSTALL_FAILED" "cannot import --agent-key $AGENT_KEY"
  run_tool gpg --batch --quiet --homedir "$WORK/gnupg" --verify "$pkg.sig" "$pkg" || die "$EXIT_INSTALL_FAILED" "signature check of $origin failed: not installing it (no registration was taken)"
  log "package signature verified ($origin)"
  case $PKG_TOOL in
    zypper) run_tool zypper --non-interactive --no-gpg-checks install "$pkg" ;;
    apt-get) DEBIAN_FRONTEND=noninteractive run_tool apt-get -y install "$pkg" ;;
    dpkg) run_tool dpkg -i "$pkg" ;;
    *) run_tool "$PKG_TOOL" -y install "$pkg" ;;
  esac || die "$EXIT_INSTALL_FAILED" "$PKG_TOOL could not install $origin"
  agent_binary >/dev/null || die "$EXIT_INSTALL_FAILED" "$PKG_TOOL finished but amazon-ssm-agent is not installed"
}

# Step 2: an agent that runs, or a checked ssm-setup-cli (the package method with --agent-key).
prepare_agent() {
  local bin pkg="$WORK/amazon-ssm-agent.$FAMILY" url
  if bin=$(agent_binary); then verify_agent "$bin" && return 0; fi
  [[ -z $AGENT_PATH ]] || die "$EXIT_INSTALL_FAILED" "--agent-path '$AGENT_PATH' is not an executable file"
  if [[ -n $PACKAGE ]]; then
    [[ $PACKAGE == *."$FAMILY" ]] || die "$EXIT_USAGE" "--package must be a .$FAMILY on $OS_NAME"
    need_key
    [[ -r $PACKAGE.sig ]] || die "$EXIT_INSTALL_FAILED" "no signature $PACKAGE.sig next to --package: download the .sig with the package"
    cp -- "$PACKAGE" "$pkg" && cp -- "$PACKAGE.sig" "$pkg.sig" # the file checked is the file installed
    install_package "$pkg" "$PACKAGE"
  else
    resolve_region
    if [[ -z $AGENT_KEY ]]; then prepare_setup_cli && return 0; fi
    [[ -n $AGENT_KEY || -z $AGENT_VERSION ]] || die "$EXIT_INSTALL_FAILED" "ssm-setup-cli is not available for $FOLDER at $(bucket)"
    need_key # before any download
    url=$(package_url)
    log "downloading $url"
    [[ $(download "$url" "$pkg") == 200 && $(download "$url.sig" "$pkg.sig") == 200 ]] ||
      die "$EXIT_INSTALL_FAILED" "cannot download $url or its .sig (no registration was taken)"
    install_package "$pkg" "$url"
  fi
  verify_agent "$(agent_binary)"
}
# curl >= 7.66.0 retries 429/5xx itself, as Retry-After says (curl/curl#4195). Older curl (RHEL/
# CentOS 7 and 8 and rebuilds, Debian 10, Ubuntu 18.04, SLES 12): the small loop in broker_get.
curl_honours_retry_after() {
  [[ $(curl --version 2>/dev/null) =~ ^curl\ ([0-9]+)\.([0-9]+) ]] || return 1
  ((BASH_REMATCH[1] > 7 || (BASH_REMATCH[1] == 7 && BASH_REMATCH[2] >= 66)))
}
# GET the broker's text answer (docs/http-api.md) into $WORK/answer, or exit 10/11/12.
broker_get() {
  local url=$1 status rc started=$SECONDS delay=1 wait
  local -a args=(--silent --show-error --proto '=https,http' --connect-timeout 10 --max-time 30
    --header 'Accept: text/plain' --max-filesize "$MAX_ANSWER_BYTES" --output "$WORK/answer"
    --dump-header "$WORK/headers" --write-out '%{http_code}' --user-agent 'ssm-activation-broker-install/2')
  if curl_honours_retry_after && ((MAX_WAIT)); then args+=(--retry 1000 --retry-connrefused --retry-max-time "$MAX_WAIT"); fi
  while true; do
    rc=0
    status=$(curl "${args[@]}" --url "$url" 2>"$WORK/curl-errors") || rc=$?
    if ((rc == 63)) || [[ $(wc -c <"$WORK/answer" 2>/dev/null || echo 0) -gt $MAX_ANSWER_BYTES ]]; then
      die "$EXIT_BROKER_BAD_ANSWER" "broker answer from GET $url is larger than $MAX_ANSWER_BYTES bytes: refused unread"
    fi
    case $rc:$status in
      0:200) return 0 ;;
      0:4[0-9][0-9]) [[ $status == 429 ]] || die "$EXIT_BROKER_REJECTED" "broker refused the request GET $url (HTTP $status$(answer_summary))" ;;
      0:5[0-9][0-9]) ;;
      0:*) die "$EXIT_BROKER_BAD_ANSWER" "unexpected answer from the broker GET $url (HTTP $status)" ;;
    esac
    if ((rc)); then status="cannot reach the broker at $url: $(sanitize "$(head -n 1 "$WORK/curl-errors")")"; else status="HTTP $status$(answer_summary)"; fi
    # The fallback loop (old curl): Retry-After in seconds, else 1, 2, 4 ... 30 s.
    wait=$(sed -n 's/^[Rr]etry-[Aa]fter:[[:space:]]*\([0-9]\{1,5\}\).*/\1/p' "$WORK/headers" 2>/dev/null | tail -n 1)
    wait=${wait:-$delay} delay=$((delay < 16 ? delay * 2 : 30))
    if curl_honours_retry_after || ((SECONDS - started + wait > MAX_WAIT)); then
      die "$EXIT_BROKER_UNREACHABLE" "broker unavailable ($status); gave up after $((SECONDS - started))s (--max-wait $MAX_WAIT)"
    fi
    log "broker unavailable ($status); retrying in ${wait}s"
    sleep "$wait"
  done
}
# ", PoolNotFound" from an error body, without parsing it: the first "code" value, if any.
answer_summary() {
  if [[ $(head -c 1024 "$WORK/answer" 2>/dev/null) =~ \"code\":\"([A-Za-z]{1,64})\" ]]; then printf ', %s' "${BASH_REMATCH[1]}"; fi
}
# One pair: KEY=value lines, each value checked for SSM's shape (a lower-case UUID, a 20-250
# character code, a region); nothing else is used. $1: a refused activation (?refused=).
fetch_activation() {
  local url key value id_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  url=$BROKER_URL/${BROKER_POOL:+activations/$BROKER_POOL}${1:+?refused=$1}
  ACT_ID="" ACT_CODE="" ACT_REGION=""
  broker_get "$url"
  while IFS='=' read -r key value; do
    case $key in ACTIVATION_ID) ACT_ID=$value ;; ACTIVATION_CODE) ACT_CODE=$value ;; REGION) ACT_REGION=$value ;; esac
  done <"$WORK/answer"
  rm -f -- "$WORK/answer"
  [[ $ACT_ID =~ $id_re ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid ACTIVATION_ID"
  [[ $ACT_CODE =~ ^[A-Za-z0-9+/=]{20,250}$ ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid ACTIVATION_CODE" # never echoed
  ACT_REGION=${REGION:-$ACT_REGION}
  valid_region "$ACT_REGION" || die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid REGION (pass --region to override)"
  log "got activation $ACT_ID (region $ACT_REGION${BROKER_POOL:+, pool $BROKER_POOL})"
}

# The code goes to the tool as an argument, for this one call, and nowhere else.
register() {
  local -a flags
  if [[ -n $SETUP_CLI ]]; then
    flags=(-register -activation-code "$ACT_CODE" -activation-id "$ACT_ID" -region "$ACT_REGION")
    ((!FORCE)) || flags+=(-override)
    [[ -z $AGENT_VERSION ]] || flags+=(-version "$AGENT_VERSION")
    [[ -z $MIRROR ]] || flags+=(-manifest-url "$MIRROR/ssm-agent-manifest.json")
    log "running ssm-setup-cli ${flags[*]/"$ACT_CODE"/***}"
    cd "$WORK" # ssm-setup-cli works in its current directory
    if run_tool "$SETUP_CLI" "${flags[@]}"; then cd - >/dev/null && return 0; fi
    cd - >/dev/null
    agent_binary >/dev/null || die "$EXIT_INSTALL_FAILED" "ssm-setup-cli failed before the agent was installed: this cost one registration; --agent-key (the package method) or --package install before the broker is asked"
    AGENT=$(agent_binary) SETUP_CLI="" # the agent is there: a second attempt registers it directly
    return 1
  fi
  svc stop || true
  flags=(-register -code "$ACT_CODE" -id "$ACT_ID" -region "$ACT_REGION" -y)
  ((!FORCE)) || flags+=(-clear)
  log "running amazon-ssm-agent ${flags[*]/"$ACT_CODE"/***}"
  run_tool "$AGENT" "${flags[@]}"
}

# Steps 3 and 4, with the code held in memory only, and tracing (bash -x) suspended meanwhile.
fetch_and_register() {
  if [[ $- == *x* ]]; then XTRACE=1 && set +x; fi
  fetch_activation ""
  if ! register; then
    # A refused pair (used up, deleted, expired) is reported ONCE; the broker answers another.
    [[ $TOOL_OUT =~ (RegistrationLimitExceeded|InvalidActivation|ActivationExpired) ]] ||
      die "$EXIT_REGISTRATION_FAILED" "registration failed: $(sanitize "$(grep -m 1 -i fail <<<"$TOOL_OUT" || true)")"
    log "SSM refused activation $ACT_ID (${BASH_REMATCH[1]}): asking the broker once for another"
    fetch_activation "$ACT_ID"
    register || die "$EXIT_REGISTRATION_FAILED" "registration failed with a second pair too: $(sanitize "$(grep -m 1 -i fail <<<"$TOOL_OUT" || true)")"
  fi
  ACT_CODE="" FRESH=1 CHANGED=0
  if ((XTRACE)); then set -x; fi
}
main() {
  parse_args "$@"
  validate_args
  detect_platform
  local existing
  [[ $(id -u) == 0 ]] || die "$EXIT_NOT_ROOT" "run as root (sudo bash install.sh ...)"
  # Two runs at once (cloud-init and a timer) must not both take a registration.
  mkdir -p "${LOCK_FILE%/*}" && exec 9>"$LOCK_FILE"
  if command -v flock >/dev/null; then flock -w 900 9 || die "$EXIT_FAILURE" "another install.sh holds $LOCK_FILE"; fi
  existing=$(registered_id) || existing=""
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ssm-install.XXXXXXXX")
  trap 'ACT_CODE=""; rm -rf -- "$WORK"' EXIT

  # 1. Prerequisites: the agent's proxy and endpoints.
  configure_proxy
  configure_endpoints
  if [[ -n $existing ]] && ((!FORCE)); then
    log "already registered as managed node $existing (--force re-registers)"
    agent_binary >/dev/null || die "$EXIT_SERVICE_FAILED" "registered as $existing, but no SSM Agent is installed: run again with --force to install and re-register it"
    converge
    exit "$EXIT_OK"
  fi
  # 2. The agent, found or installed and verified. 3-4. Only then a pair, and the registration.
  prepare_agent
  fetch_and_register
  # 5. Enabled and running (or enabled only), and verified.
  converge
}

main "$@"
