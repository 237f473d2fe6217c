#!/usr/bin/env bash
# install.sh: register this Linux server with AWS Systems Manager through the activation broker.
#
#   curl -fsSL https://BROKER/install.sh | sudo bash
#   curl -fsSL "https://BROKER/install.sh?pool=web" | sudo bash -s -- --proxy http://proxy:3128
#   curl -fsSL https://BROKER/install.sh | sudo bash -s -- --eks 1.31 --pool edge   (EKS Hybrid Nodes)
#
# In this order: check the prerequisites; find the SSM Agent, or install it and verify it; only
# then ask the broker for an Activation ID + Code (each answer reserves a registration, so a
# failed install never costs one); register; enable and start the service; print the node id.
# Every run converges: it ends registered, enabled and running (enabled only with --no-start), or
# exits non-zero naming what is missing. Safe to run at every boot: a registered host is not
# registered again, only its service is checked (and started if it is down).
# Needs bash >= 4.2, curl and coreutils; jq only to merge endpoints into an existing agent
# configuration. Run `install.sh --help` for the options; docs/onboarding.md has examples.
#
# Exit codes (install.ps1 uses the same numbers):
#    0  OK                    registered (now or before), enabled and running; --help; --dry-run
#    1  FAILURE               unexpected error
#    2  USAGE                 bad option or value
#    3  NOT_ROOT              must run as root
#    4  UNSUPPORTED           operating system or architecture not supported
#   10  BROKER_UNREACHABLE    broker unreachable or still busy (429/5xx) when the retry budget ran out
#   11  BROKER_REJECTED       broker refused the request (4xx, e.g. 404 PoolNotFound)
#   12  BROKER_BAD_ANSWER     broker answer unusable (over 64 KB, not JSON, field missing or malformed)
#   20  INSTALL_FAILED        agent (--eks: nodeadm) missing, or its download, check or install failed
#   21  REGISTRATION_FAILED   SSM refused the registration (InvalidActivation, …); --eks: nodeadm init failed
#   22  SERVICE_FAILED        agent service not enabled or not running, or no registration file
#   23  DEREGISTER_FAILED     --deregister: SSM still lists the node (local registration cleared)
#
# Sources (checked when this script was written):
#   ssm-setup-cli flags (-register -activation-code -activation-id -region -override -version
#     -manifest-url), its download location <bucket>/latest/<platform folder>/ssm-setup-cli, the
#     manifest it reads first (<bucket>/ssm-agent-manifest.json; -manifest-url replaces the bucket
#     for every later download), its gpg check of the agent package, and that on-premises it only
#     installs together with a registration (-register and an activation are required):
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/setupcli/setupcli.go
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/setupcli/managers/downloadmanager/downloadmanager.go
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/setupcli/managers/verificationmanagers/linuxmanager.go
#     https://docs.aws.amazon.com/systems-manager/latest/userguide/hybrid-multicloud-ssm-agent-install-linux.html
#   Regional bucket layout (linux_<arch> for every rpm distribution incl. SLES, debian_<arch> for
#     Debian and Ubuntu) and the .sig files of the rpm/deb packages:
#     https://docs.aws.amazon.com/systems-manager/latest/userguide/verify-agent-signature.html
#   Agent proxy settings for systemd (http_proxy / https_proxy / no_proxy in the unit's environment):
#     https://docs.aws.amazon.com/systems-manager/latest/userguide/configure-proxy-ssm-agent.html
#   Agent configuration /etc/amazon/ssm/amazon-ssm-agent.json: an override laid over the built-in
#     defaults (a partial file is valid); "Ssm.Endpoint" is used for the ssm service, including
#     RegisterManagedInstance during `-register` (which has no endpoint flag of its own),
#     "Mds.Endpoint" for ec2messages and "Mgs.Endpoint" for ssmmessages:
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/amazon-ssm-agent.json.template
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/appconfig/appconfig.go
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/ssm/anonauth/anonauth_client.go
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/runcommand/mds/service.go
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/agent/session/config/config.go
#   `amazon-ssm-agent -register -clear` clears the local registration only; removing the node
#     from SSM is the DeregisterManagedInstance API, which needs IAM credentials:
#     https://github.com/aws/amazon-ssm-agent/blob/mainline/core/agent_parser.go
#     https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html
#
# Test hooks (development only; never set them on a real server):
#   INSTALL_ROOT / --root DIR   treat DIR as "/" for every file read or written (os-release,
#                               registration file, agent configuration, systemd drop-in, lock);
#                               the root check is skipped
#   INSTALL_DOWNLOAD_BASE       replaces https://amazon-ssm-{region}.s3.{region}.amazonaws.com
#                               ("{region}" is substituted); http is accepted for loopback only
#   INSTALL_BACKOFF_BASE_MS, INSTALL_BACKOFF_CAP_MS   retry backoff (default 1000 and 30000)
#   INSTALL_MAX_WAIT            same as --max-wait
#   INSTALL_NODEADM_BASE        replaces https://hybrid-assets.eks.amazonaws.com/releases/latest/bin/linux
#                               (--eks downloads <base>/<amd64|arm64>/nodeadm and its .sha256)
#   INSTALL_SOURCE_ONLY=1       define the functions, run nothing (for `source` in unit tests)
#
# EKS Hybrid Nodes (--eks VERSION): nodeadm, the hybrid nodes CLI, installs the Kubernetes
# components and the SSM Agent, and registers the node with the pair in the broker's NodeConfig
# (GET /nodeconfig.yaml). Sources (github.com/aws/eks-hybrid): README.md (download location,
# `nodeadm install <version> --credential-provider ssm`, `nodeadm init --config-source file://…`),
# hack/build-nodeadm.sh (the published nodeadm.sha256 is `sha256sum nodeadm` output),
# internal/node/hybrid/validator.go (nodeadm prints a rejected code: its output is masked).
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
readonly EXIT_DEREGISTER_FAILED=23

# The broker fills these two in when it serves GET /install.sh; the environment or --url/--pool win.
BROKER_URL="${BROKER_URL:-__BROKER_URL__}"
BROKER_POOL="${BROKER_POOL:-__BROKER_POOL__}"
# An unrendered copy (read straight from the repository) still holds the markers: treat as unset.
case $BROKER_URL in __BROKER_*__) BROKER_URL="" ;; esac
case $BROKER_POOL in __BROKER_*__) BROKER_POOL="" ;; esac

# The broker's answer is a few hundred bytes; anything past this is refused unread (exit 12).
readonly MAX_ANSWER_BYTES=65536

REGION_OVERRIDE=""
CA_BUNDLE=""
PROXY_URL="${HTTPS_PROXY:-${https_proxy:-}}"
NO_PROXY_LIST=""
FORCE=0
DRY_RUN=0
INSTALL_METHOD="auto"
AGENT_KEY=""
AGENT_PATH=""
PACKAGE_FILE=""
AGENT_VERSION=""
MIRROR_URL=""
SSM_ENDPOINT=""
EC2MESSAGES_ENDPOINT=""
SSMMESSAGES_ENDPOINT=""
NO_START=0
DEREGISTER=0
LOG_LEVEL=1 # 0 --quiet, 1 normal, 2 --verbose
LOG_FILE=""
MAX_WAIT="${INSTALL_MAX_WAIT:-300}"
ROOT="${INSTALL_ROOT:-/}"
BACKOFF_BASE_MS="${INSTALL_BACKOFF_BASE_MS:-1000}"
BACKOFF_CAP_MS="${INSTALL_BACKOFF_CAP_MS:-30000}"
DOWNLOAD_BASE_TEMPLATE='https://amazon-ssm-{region}.s3.{region}.amazonaws.com'
if [[ -n ${INSTALL_DOWNLOAD_BASE:-} ]]; then DOWNLOAD_BASE_TEMPLATE=$INSTALL_DOWNLOAD_BASE; fi
EKS_VERSION=""  # --eks: the cluster's Kubernetes version; the node joins EKS through nodeadm
NODEADM_PATH="" # --nodeadm-path
NODEADM_BASE=${INSTALL_NODEADM_BASE:-https://hybrid-assets.eks.amazonaws.com/releases/latest/bin/linux}
CONNECT_TIMEOUT=10
REQUEST_TIMEOUT=30

readonly REG_FILE_REL="var/lib/amazon/ssm/registration"
readonly AGENT_CONFIG_REL="etc/amazon/ssm/amazon-ssm-agent.json"
readonly SERVICE_SYSTEMD="amazon-ssm-agent"
readonly SERVICE_SNAP="snap.amazon-ssm-agent.amazon-ssm-agent"

WORK_DIR=""
XTRACE=0
AGENT_BIN=""  # the agent binary registration uses (found, given or installed)
SETUP_CLI=""  # the verified ssm-setup-cli that installs and registers in one step
DOWNLOAD_REGION=""
TOOL_OUT=""
NODEADM=""         # --eks: the nodeadm binary (found, given or downloaded)
NODECONFIG_FILE="" # --eks: the broker's NodeConfig, root-only, removed after nodeadm init

# ---------------------------------------------------------------------------------------------
# Messages: stderr by level, and everything (tool output included) to --log-file.
# ---------------------------------------------------------------------------------------------
_emit() {
  local level=$1 text=$2 stamp
  if [[ -n $LOG_FILE ]]; then
    printf -v stamp '%(%Y-%m-%dT%H:%M:%S)T' -1
    printf '%s install.sh: %s\n' "$stamp" "$text" >>"$LOG_FILE" 2>/dev/null || true
  fi
  if ((LOG_LEVEL >= level)); then printf 'install.sh: %s\n' "$text" >&2; fi
}
log() { _emit 1 "$*"; }
vlog() { _emit 2 "$*"; }
warn() { _emit 1 "warning: $*"; }
die() {
  local code=$1
  shift
  _emit 0 "error: $*"
  exit "$code"
}

# Runs a tool with its output captured (the Activation Code masked out of it), so that it lands in
# the log file, and on stderr with --verbose or when the tool fails. Returns the tool's status.
run_tool() {
  local rc out line
  set +e
  out=$("$@" 2>&1 </dev/null)
  rc=$?
  set -e
  if [[ -n $ACT_CODE ]]; then out=${out//"$ACT_CODE"/***}; fi
  TOOL_OUT=$out
  [[ -n $out ]] || return "$rc"
  while IFS= read -r line; do
    if [[ -n $LOG_FILE ]]; then printf '  | %s\n' "$line" >>"$LOG_FILE" 2>/dev/null || true; fi
    if ((LOG_LEVEL >= 2 || (rc != 0 && LOG_LEVEL >= 1))); then printf '  | %s\n' "$line" >&2; fi
  done <<<"$out"
  return "$rc"
}

usage() {
  cat <<'EOF_USAGE'
Usage: install.sh [options]
Register this server with AWS Systems Manager using an activation from the broker.
Order: prerequisites, agent (found or installed and verified), THEN the broker's pair, register,
enable and start. A failed install never costs a registration.

Broker:
  --url URL             broker base URL (env BROKER_URL; filled in when served by the broker).
                        https only; http is accepted for 127.0.0.1/localhost (local testing)
  --pool NAME           activation pool, [A-Za-z0-9_-]{1,64} (env BROKER_POOL); default pool if empty
  --region REGION       region to download the agent from and register in (default: the broker's
                        answer; needed before the broker is asked when the agent must be downloaded
                        and the broker URL names no region, e.g. a custom domain)
  --ca-bundle FILE      PEM CA certificates to verify the broker's TLS certificate with
                        (verification is never turned off; used for the broker only)
  --max-wait SECONDS    total time to keep retrying a busy or unreachable broker (default 300)

Network:
  --proxy URL           HTTP(S) proxy for the broker, the downloads and the agent itself
                        (default: $HTTPS_PROXY / $https_proxy); the agent gets a systemd drop-in
  --no-proxy LIST       comma-separated hosts the agent reaches directly (169.254.169.254 is always added)
  --ssm-endpoint URL    reach SSM through this endpoint, e.g. an interface VPC endpoint
                        https://vpce-0abc-1234.ssm.eu-west-1.vpce.amazonaws.com; written to the
                        agent's configuration (Ssm.Endpoint) before it registers, so the
                        registration goes there too
  --ec2messages-endpoint URL   the same for ec2messages (Mds.Endpoint)
  --ssmmessages-endpoint URL   the same for ssmmessages (Mgs.Endpoint)

Agent:
  --install-method M    auto (default: ssm-setup-cli, else the regional rpm/deb package),
                        setup-cli, package, or none (register the agent that is already there)
  --agent-path PATH     register this agent binary; nothing is installed
  --package FILE        install this local rpm/deb (FILE.sig next to it is checked with --agent-key)
  --agent-key FILE      AWS SSM Agent public GPG key, required for the package method and --package:
                        the .sig of the rpm/deb is checked with it (see verify-agent-signature in the
                        AWS docs)
  --agent-version V     agent version for ssm-setup-cli: stable, latest or e.g. 3.3.987.0
  --mirror-url URL      a copy of the regional agent bucket (https): ssm-setup-cli, the packages
                        and ssm-setup-cli's manifest (-manifest-url) come from there

EKS Hybrid Nodes (Linux only):
  --eks VERSION         join an EKS cluster as a hybrid node instead: the cluster's Kubernetes
                        version, e.g. 1.31. nodeadm (found, or downloaded and checked against its
                        .sha256) runs `install VERSION --credential-provider ssm`; THEN the
                        NodeConfig of the EKS pool (--pool) is fetched into a root-only file for
                        `nodeadm init`, and removed. The agent options do not apply.
  --nodeadm-path PATH   use this nodeadm binary; nothing is downloaded

Lifecycle:
  --force               re-register even if this server is already registered
                        (clears the old registration; the agent is never uninstalled)
  --no-start            register and enable the service but do not start it (it starts at boot)
  --deregister          deregister the node with SSM (aws CLI and credentials from the
                        environment), clear the local registration, stop and disable the agent
  --dry-run             print the plan and change nothing (the broker is not called: every
                        answer reserves a registration)

Output:
  --quiet               errors only (stdout still carries the node id)
  --verbose             also show the output of the tools this script runs
  --log-file FILE       append every message and tool output to FILE (0600; the code is masked)
  --root DIR            test hook: use DIR instead of / for every host file
  -h, --help            show this help

Exit codes: 0 ok, 1 failure, 2 usage, 3 not root, 4 unsupported platform, 10 broker unreachable,
11 broker rejected the request, 12 broker answer unusable (incl. over 64 KB), 20 agent missing or
install failed, 21 registration refused, 22 service not enabled/running or no registration file,
23 deregistration with SSM failed.
EOF_USAGE
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
      --ssm-endpoint) need_value "$@"; SSM_ENDPOINT=$2; shift 2 ;;
      --ssm-endpoint=*) SSM_ENDPOINT=${1#*=}; shift ;;
      --ec2messages-endpoint) need_value "$@"; EC2MESSAGES_ENDPOINT=$2; shift 2 ;;
      --ec2messages-endpoint=*) EC2MESSAGES_ENDPOINT=${1#*=}; shift ;;
      --ssmmessages-endpoint) need_value "$@"; SSMMESSAGES_ENDPOINT=$2; shift 2 ;;
      --ssmmessages-endpoint=*) SSMMESSAGES_ENDPOINT=${1#*=}; shift ;;
      --force) FORCE=1; shift ;;
      --install-method) need_value "$@"; INSTALL_METHOD=$2; shift 2 ;;
      --install-method=*) INSTALL_METHOD=${1#*=}; shift ;;
      --agent-path) need_value "$@"; AGENT_PATH=$2; shift 2 ;;
      --agent-path=*) AGENT_PATH=${1#*=}; shift ;;
      --package) need_value "$@"; PACKAGE_FILE=$2; shift 2 ;;
      --package=*) PACKAGE_FILE=${1#*=}; shift ;;
      --agent-key) need_value "$@"; AGENT_KEY=$2; shift 2 ;;
      --agent-key=*) AGENT_KEY=${1#*=}; shift ;;
      --agent-version) need_value "$@"; AGENT_VERSION=$2; shift 2 ;;
      --agent-version=*) AGENT_VERSION=${1#*=}; shift ;;
      --mirror-url) need_value "$@"; MIRROR_URL=$2; shift 2 ;;
      --mirror-url=*) MIRROR_URL=${1#*=}; shift ;;
      --max-wait) need_value "$@"; MAX_WAIT=$2; shift 2 ;;
      --max-wait=*) MAX_WAIT=${1#*=}; shift ;;
      --no-start) NO_START=1; shift ;;
      --deregister) DEREGISTER=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      --eks) need_value "$@"; EKS_VERSION=$2; shift 2 ;;
      --eks=*) EKS_VERSION=${1#*=}; shift ;;
      --nodeadm-path) need_value "$@"; NODEADM_PATH=$2; shift 2 ;;
      --nodeadm-path=*) NODEADM_PATH=${1#*=}; shift ;;
      --quiet) LOG_LEVEL=0; shift ;;
      --verbose) LOG_LEVEL=2; shift ;;
      --log-file) need_value "$@"; LOG_FILE=$2; shift 2 ;;
      --log-file=*) LOG_FILE=${1#*=}; shift ;;
      --root) need_value "$@"; ROOT=$2; shift 2 ;;
      --root=*) ROOT=${1#*=}; shift ;;
      -h | --help) usage; exit "$EXIT_OK" ;;
      *) die "$EXIT_USAGE" "unknown option '$(sanitize "$1")' (see --help)" ;;
    esac
  done
}

is_loopback_http() {
  local re='^http://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?(/|$)'
  [[ $1 =~ $re ]]
}

# https://host[:port][/path] (no credentials, query or whitespace); http for loopback only.
valid_url() {
  local re='^https?://[]A-Za-z0-9.:[-]+(/[A-Za-z0-9._~%/-]*)?$'
  [[ $1 =~ $re ]] || return 1
  [[ $1 == https://* ]] || is_loopback_http "$1"
}

# An endpoint the agent's configuration can hold: https://host[:port][/], no path (the agent's
# SDK appends its own), or http on loopback (tests).
valid_endpoint() {
  local re='^https?://[]A-Za-z0-9.:[-]+/?$'
  [[ $1 =~ $re ]] || return 1
  [[ $1 == https://* ]] || is_loopback_http "$1"
}

validate_args() {
  [[ -n $BROKER_URL || $DEREGISTER == 1 ]] || die "$EXIT_USAGE" "no broker URL: pass --url, or download this script from the broker (GET /install.sh)"
  if [[ -n $BROKER_URL ]]; then
    local url_re='^https?://[]A-Za-z0-9.:[-]+(/[A-Za-z0-9._~%/-]*)?$'
    [[ $BROKER_URL =~ $url_re ]] || die "$EXIT_USAGE" "--url must look like https://host[:port][/path]"
    if [[ $BROKER_URL == http://* ]] && ! is_loopback_http "$BROKER_URL"; then
      die "$EXIT_USAGE" "--url must use https (the answer holds a secret); plain http is accepted for loopback only"
    fi
    BROKER_URL=${BROKER_URL%/}
  fi
  local pool_re='^[A-Za-z0-9_-]{1,64}$'
  [[ -z $BROKER_POOL || $BROKER_POOL =~ $pool_re ]] || die "$EXIT_USAGE" "--pool must match [A-Za-z0-9_-]{1,64}"
  [[ -z $REGION_OVERRIDE ]] || valid_region "$REGION_OVERRIDE" || die "$EXIT_USAGE" "--region '$(sanitize "$REGION_OVERRIDE")' is not a region name"
  [[ -z $CA_BUNDLE || -r $CA_BUNDLE ]] || die "$EXIT_USAGE" "--ca-bundle '$CA_BUNDLE' is not a readable file"
  [[ -z $AGENT_KEY || -r $AGENT_KEY ]] || die "$EXIT_USAGE" "--agent-key '$AGENT_KEY' is not a readable file"
  case $INSTALL_METHOD in auto | setup-cli | package | none) ;; *) die "$EXIT_USAGE" "--install-method must be auto, setup-cli, package or none" ;; esac
  if [[ -n $AGENT_PATH ]]; then
    [[ $INSTALL_METHOD == auto || $INSTALL_METHOD == none ]] || die "$EXIT_USAGE" "--agent-path registers an existing agent: it cannot be combined with --install-method $INSTALL_METHOD"
    [[ -z $PACKAGE_FILE ]] || die "$EXIT_USAGE" "--agent-path and --package exclude each other"
    INSTALL_METHOD=none
  fi
  if [[ -n $PACKAGE_FILE ]]; then
    [[ $INSTALL_METHOD == auto || $INSTALL_METHOD == package ]] || die "$EXIT_USAGE" "--package cannot be combined with --install-method $INSTALL_METHOD"
    [[ -f $PACKAGE_FILE && -r $PACKAGE_FILE ]] || die "$EXIT_USAGE" "--package '$PACKAGE_FILE' is not a readable file"
    INSTALL_METHOD=package
  fi
  if [[ -n $AGENT_VERSION ]]; then
    local version_re='^(stable|latest|[0-9]{1,4}(\.[0-9]{1,6}){2,3})$'
    [[ $AGENT_VERSION =~ $version_re ]] || die "$EXIT_USAGE" "--agent-version must be stable, latest or a version like 3.3.987.0"
    [[ $INSTALL_METHOD == auto || $INSTALL_METHOD == setup-cli ]] || die "$EXIT_USAGE" "--agent-version is passed to ssm-setup-cli: use it with --install-method auto or setup-cli (--package installs a pinned file)"
    INSTALL_METHOD=setup-cli
  fi
  if [[ -n $MIRROR_URL ]]; then
    valid_url "$MIRROR_URL" || die "$EXIT_USAGE" "--mirror-url must look like https://host[:port][/path]"
    MIRROR_URL=${MIRROR_URL%/}
    DOWNLOAD_BASE_TEMPLATE=$MIRROR_URL
  fi
  local option value
  for option in ssm-endpoint ec2messages-endpoint ssmmessages-endpoint; do
    case $option in
      ssm-endpoint) value=$SSM_ENDPOINT ;;
      ec2messages-endpoint) value=$EC2MESSAGES_ENDPOINT ;;
      ssmmessages-endpoint) value=$SSMMESSAGES_ENDPOINT ;;
    esac
    [[ -z $value ]] || valid_endpoint "$value" || die "$EXIT_USAGE" "--$option must look like https://host[:port]"
  done
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
  if ((DEREGISTER && (FORCE || NO_START))); then die "$EXIT_USAGE" "--deregister cannot be combined with --force or --no-start"; fi
  validate_eks_args
}

validate_eks_args() {
  if [[ -z $EKS_VERSION ]]; then
    [[ -z $NODEADM_PATH ]] || die "$EXIT_USAGE" "--nodeadm-path needs --eks"
    return 0
  fi
  local version_re='^[0-9]{1,2}\.[0-9]{1,3}(\.[0-9]{1,4})?$'
  [[ $EKS_VERSION =~ $version_re ]] || die "$EXIT_USAGE" "--eks needs the cluster's Kubernetes version, e.g. 1.31"
  ((!DEREGISTER)) || die "$EXIT_USAGE" "--eks cannot be combined with --deregister (nodeadm uninstall removes a hybrid node)"
  ((!NO_START)) || die "$EXIT_USAGE" "--eks cannot be combined with --no-start (nodeadm init starts the node)"
  # nodeadm installs and configures the SSM Agent itself.
  if [[ $INSTALL_METHOD != auto || -n $AGENT_PATH$PACKAGE_FILE$AGENT_KEY$AGENT_VERSION$MIRROR_URL ]] ||
    [[ -n $SSM_ENDPOINT$EC2MESSAGES_ENDPOINT$SSMMESSAGES_ENDPOINT ]]; then
    die "$EXIT_USAGE" "--eks: nodeadm installs the SSM Agent, so the Agent options (--install-method, --agent-path, --package, --agent-key, --agent-version, --mirror-url, --*-endpoint) do not apply"
  fi
  [[ $NODEADM_BASE =~ ^https:// ]] || is_loopback_http "$NODEADM_BASE" || die "$EXIT_USAGE" "INSTALL_NODEADM_BASE must use https"
}

# --log-file: opened (0600) before anything else is done, so that every later message lands there.
open_log_file() {
  [[ -n $LOG_FILE ]] || return 0
  local file=$LOG_FILE
  LOG_FILE=""
  [[ -d ${file%/*} || $file != */* ]] || die "$EXIT_USAGE" "--log-file: directory ${file%/*} does not exist"
  [[ ! -L $file ]] || die "$EXIT_USAGE" "--log-file '$file' is a symbolic link"
  (umask 077 && : >>"$file") 2>/dev/null || die "$EXIT_USAGE" "--log-file '$file' cannot be written"
  LOG_FILE=$file
}

valid_region() {
  local re='^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
  [[ $1 =~ $re ]]
}

# Host path under the (test) root.
host_path() { printf '%s/%s' "$ROOT" "${1#/}"; }

# ---------------------------------------------------------------------------------------------
# JSON: a small, strict reader for the broker's and the agent's small documents (no jq on most
# servers). String and scalar values land in JSON["a.b"] (arrays skipped). Handles any key order,
# whitespace and escapes (\" \\ \/ \b \f \n \r \t \uXXXX).
# Bash re-measures a string on every ${s:i:n}, so a reader that steps one character at a time is
# quadratic (72 s for 256 KB). This one moves a token or a run of plain characters per step, and
# refuses documents over 64 KB or with more than JSON_MAX_MARKS structural characters, quotes
# and backslashes: a hostile answer costs a few hundred steps at most.
# ---------------------------------------------------------------------------------------------
readonly JSON_MAX_MARKS=512
readonly _JSON_RUN='^([^"\\]*)(["\\])'
declare -gA JSON=()
_js=""
_ji=0
_jn=0
_jstr=""

json_parse() {
  JSON=()
  ((${#1} <= MAX_ANSWER_BYTES)) || return 1
  local marks=${1//[^\{\}\[\],:\"\\]/}
  ((${#marks} <= JSON_MAX_MARKS)) || return 1
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
  case ${_js:_ji:1} in
    ' ' | $'\t' | $'\n' | $'\r')
      [[ ${_js:_ji} =~ ^[[:space:]]+ ]]
      _ji=$((_ji + ${#BASH_REMATCH[0]}))
      ;;
  esac
  return 0
}

_json_string() {
  local out="" c hex rest
  _ji=$((_ji + 1))
  while ((_ji < _jn)); do
    rest=${_js:_ji}
    # A run of plain characters, then the quote or backslash that ends it.
    [[ $rest =~ $_JSON_RUN ]] || return 1
    out+=${BASH_REMATCH[1]}
    _ji=$((_ji + ${#BASH_REMATCH[0]}))
    if [[ ${BASH_REMATCH[2]} == '"' ]]; then
      _jstr=$out
      return 0
    fi
    c=${_js:_ji:1}
    _ji=$((_ji + 1))
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
  local s=${1:0:300}
  s=${s//[^[:print:]]/ }
  printf '%s' "$s"
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

# The region of an API Gateway or VPC endpoint URL (…execute-api.eu-west-1.amazonaws.com,
# ….eu-west-1.vpce.amazonaws.com), so the agent can be fetched before the broker is asked.
region_from_url() {
  local re='\.([a-z]{2}(-[a-z]+)+-[0-9]{1,2})\.(vpce\.)?amazonaws\.com(\.cn)?(:[0-9]+)?(/|$)'
  [[ $1 =~ $re ]] && printf '%s' "${BASH_REMATCH[1]}"
}

# ---------------------------------------------------------------------------------------------
# Agent state
# ---------------------------------------------------------------------------------------------
agent_binary() {
  if [[ -n $AGENT_PATH ]]; then
    [[ -f $AGENT_PATH && -x $AGENT_PATH ]] || return 1
    printf '%s' "$AGENT_PATH"
    return 0
  fi
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

# The agent runs and names its version (`amazon-ssm-agent -version`), or the install is not done.
verify_agent() {
  local bin=$1 version
  run_tool "$bin" -version || die "$EXIT_INSTALL_FAILED" "$bin does not run (-version failed): the agent is not usable"
  version=$(sanitize "${TOOL_OUT##*version: }")
  [[ $TOOL_OUT == *"SSM Agent version: "* && $version =~ ^[0-9.]+$ ]] || die "$EXIT_INSTALL_FAILED" "$bin -version did not report an SSM Agent version"
  log "agent $version at $bin"
}

# Prints the ManagedInstanceID of the registration file, if there is a valid one.
registered_id() {
  local file content id
  file=$(host_path "/$REG_FILE_REL")
  [[ -s $file ]] || return 1
  content=$(head -c "$MAX_ANSWER_BYTES" "$file")
  json_parse "$content" || return 1
  id=$(json_get ManagedInstanceID)
  [[ $id =~ ^mi-[0-9a-f]{17}$ ]] || return 1
  printf '%s' "$id"
}

registered_region() {
  local file
  file=$(host_path "/$REG_FILE_REL")
  json_parse "$(head -c "$MAX_ANSWER_BYTES" "$file")" || return 1
  valid_region "${JSON[Region]-}" && printf '%s' "${JSON[Region]}"
}

# ---------------------------------------------------------------------------------------------
# Service
# ---------------------------------------------------------------------------------------------
svc() {
  local verb=$1 name
  name=$(service_name)
  if command -v systemctl >/dev/null 2>&1; then
    run_tool systemctl "$verb" "$name"
  elif command -v service >/dev/null 2>&1; then
    case $verb in enable | disable) return 0 ;; esac
    run_tool service "$name" "$verb"
  else
    warn "no systemctl or service command: cannot $verb $name"
    return 1
  fi
}

svc_enabled() {
  if command -v systemctl >/dev/null 2>&1; then systemctl is-enabled --quiet "$(service_name)" 2>/dev/null; else return 0; fi
}

svc_active() {
  if command -v systemctl >/dev/null 2>&1; then
    systemctl is-active --quiet "$(service_name)" 2>/dev/null
  elif command -v service >/dev/null 2>&1; then
    service "$(service_name)" status >/dev/null 2>&1
  else
    return 1
  fi
}

# The end of every run but --deregister: registered, enabled and running (enabled and stopped
# with --no-start), or a non-zero exit naming what is missing.
converge() {
  local id name
  name=$(service_name)
  id=$(registered_id) || die "$EXIT_SERVICE_FAILED" "no registration: $(host_path "/$REG_FILE_REL") holds no ManagedInstanceID"
  if ! svc_enabled; then
    svc enable || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service cannot be enabled"
    svc_enabled || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service is not enabled"
  fi
  if ((NO_START)); then
    if ((FRESH_REGISTRATION)) && svc_active; then svc stop || die "$EXIT_SERVICE_FAILED" "--no-start: cannot stop the $name service"; fi
    log "registered as managed node $id; $name enabled, not started (--no-start)"
  else
    if ((CONFIG_CHANGED)) && svc_active; then
      svc restart || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service cannot be restarted"
    elif ! svc_active; then
      log "the $name service is not running: starting it"
      svc start || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service cannot be started"
    fi
    svc_active || die "$EXIT_SERVICE_FAILED" "registered as $id, but the $name service is not running"
    log "registered as managed node $id; $name enabled and running"
  fi
  printf '%s\n' "$id"
}

# ---------------------------------------------------------------------------------------------
# Agent configuration: endpoints (e.g. interface VPC endpoints with their own DNS names)
# ---------------------------------------------------------------------------------------------
CONFIG_CHANGED=0
FRESH_REGISTRATION=0

agent_config_path() { host_path "/$AGENT_CONFIG_REL"; }

# Writes Ssm/Mds/Mgs "Endpoint" into the agent's configuration: merged with jq into an existing
# file (which ssm-setup-cli, too, merges into rather than replaces: its configurationmanager.go),
# else a minimal file, which the agent lays over its defaults. Runs before the registration,
# since `amazon-ssm-agent -register` takes its endpoint from this file only.
configure_agent_endpoints() {
  [[ -n $SSM_ENDPOINT$EC2MESSAGES_ENDPOINT$SSMMESSAGES_ENDPOINT ]] || return 0
  local file new="" old=""
  file=$(agent_config_path)
  if [[ -s $file ]]; then
    old=$(head -c 1048576 "$file")
    command -v jq >/dev/null 2>&1 ||
      die "$EXIT_INSTALL_FAILED" "${file#"$ROOT"} exists and jq is not installed to merge the endpoints into it: install jq, or set Ssm.Endpoint, Mds.Endpoint and Mgs.Endpoint there by hand"
    new=$(jq --arg ssm "$SSM_ENDPOINT" --arg mds "$EC2MESSAGES_ENDPOINT" --arg mgs "$SSMMESSAGES_ENDPOINT" '
      (if $ssm == "" then . else .Ssm.Endpoint = $ssm end)
      | (if $mds == "" then . else .Mds.Endpoint = $mds end)
      | (if $mgs == "" then . else .Mgs.Endpoint = $mgs end)' "$file" 2>/dev/null) ||
      die "$EXIT_INSTALL_FAILED" "${file#"$ROOT"} is not valid JSON: fix it or remove it, then run again"
  else
    # The values passed valid_endpoint: no quote or backslash can reach this JSON.
    local -a parts=()
    [[ -z $SSM_ENDPOINT ]] || parts+=("\"Ssm\": {\"Endpoint\": \"$SSM_ENDPOINT\"}")
    [[ -z $EC2MESSAGES_ENDPOINT ]] || parts+=("\"Mds\": {\"Endpoint\": \"$EC2MESSAGES_ENDPOINT\"}")
    [[ -z $SSMMESSAGES_ENDPOINT ]] || parts+=("\"Mgs\": {\"Endpoint\": \"$SSMMESSAGES_ENDPOINT\"}")
    local IFS=,
    new="{${parts[*]}}"
    unset IFS
  fi
  if [[ $new == "$old" ]]; then
    vlog "agent configuration already holds the endpoints"
    return 0
  fi
  mkdir -p "${file%/*}"
  (umask 022 && printf '%s\n' "$new" >"$file.tmp")
  mv -f "$file.tmp" "$file"
  CONFIG_CHANGED=1
  log "agent endpoints written to ${file#"$ROOT"}:${SSM_ENDPOINT:+ ssm $SSM_ENDPOINT}${EC2MESSAGES_ENDPOINT:+ ec2messages $EC2MESSAGES_ENDPOINT}${SSMMESSAGES_ENDPOINT:+ ssmmessages $SSMMESSAGES_ENDPOINT}"
  if [[ -n $SSM_ENDPOINT && ( -z $EC2MESSAGES_ENDPOINT || -z $SSMMESSAGES_ENDPOINT ) ]]; then
    log "note: ec2messages and ssmmessages keep their default names unless --ec2messages-endpoint and --ssmmessages-endpoint are given"
  fi
}

# ---------------------------------------------------------------------------------------------
# Broker
# ---------------------------------------------------------------------------------------------
ACT_ID=""
ACT_CODE=""
BROKER_BODY=""
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

# The status of the last response in a --dump-header file (a proxy adds its own block first).
status_from_headers() {
  local line status=000
  while IFS= read -r line; do
    if [[ $line =~ ^HTTP/[0-9.]+\ ([0-9]{3}) ]]; then status=${BASH_REMATCH[1]}; fi
  done <"$1"
  printf '%s' "$status"
}

# Fills ACT_ID, ACT_CODE, ACT_REGION from the broker, or exits with a BROKER_* code.
fetch_activation() {
  broker_get "$(broker_endpoint)" application/json
  parse_activation "$BROKER_BODY"
  BROKER_BODY=""
}

# GET url from the broker, retrying while it is busy or unreachable; the 200 answer's body lands
# in BROKER_BODY, anything else exits with a BROKER_* code.
# The answer stays in shell variables, never in argv (only --eks writes its NodeConfig, to the
# root-only file nodeadm reads). At most
# MAX_ANSWER_BYTES + 1 bytes are read: curl stops at a larger Content-Length (--max-filesize),
# and head cuts off anything sent without one.
broker_get() {
  local url=$1 accept=$2 attempt=0 started=$SECONDS rc status body retry_after delay_ms reason elapsed
  local headers="$WORK_DIR/broker-headers" errors="$WORK_DIR/broker-errors"
  local -a args=(--silent --show-error --proto '=https,http' --connect-timeout "$CONNECT_TIMEOUT"
    --max-time "$REQUEST_TIMEOUT" --header "Accept: $accept" --max-filesize "$MAX_ANSWER_BYTES"
    --user-agent 'ssm-activation-broker-install/1 (linux)' --dump-header "$headers")
  if [[ -n $CA_BUNDLE ]]; then args+=(--cacert "$CA_BUNDLE"); fi

  while true; do
    attempt=$((attempt + 1))
    : >"$headers"
    set +e
    body=$(
      curl "${args[@]}" --url "$url" 2>"$errors" | head -c $((MAX_ANSWER_BYTES + 1))
      exit "${PIPESTATUS[0]}"
    )
    rc=$?
    set -e
    status=$(status_from_headers "$headers")
    retry_after=""
    reason=""
    # 63: the announced size is over --max-filesize; 23: head stopped reading past the cap.
    if ((rc == 63 || ${#body} > MAX_ANSWER_BYTES)); then
      body=""
      die "$EXIT_BROKER_BAD_ANSWER" "broker answer from GET $url is larger than $MAX_ANSWER_BYTES bytes: refused unread"
    fi
    if [[ $rc -ne 0 ]]; then
      reason="cannot reach the broker at $url: $(sanitize "$(head -n 1 "$errors")")"
      status=000
    fi

    case $status in
      200)
        BROKER_BODY=$body
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

# The answer is hostile input until each field has the shape SSM gives it: a lower-case UUID
# (API_DeleteActivation, ActivationId pattern), a 20-250 character code (API_CreateActivation),
# a region name. Nothing else from the answer is used.
parse_activation() {
  json_parse "$1" || die "$EXIT_BROKER_BAD_ANSWER" "broker answer is not a JSON object"
  ACT_ID=${JSON[ActivationId]-}
  ACT_CODE=${JSON[ActivationCode]-}
  ACT_REGION=${JSON[Region]-}
  JSON=()
  local id_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  [[ $ACT_ID =~ $id_re ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid ActivationId"
  # The code is checked for shape only, and never echoed, even in this message.
  [[ $ACT_CODE =~ ^[A-Za-z0-9+/=]{20,250}$ ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker answer has no valid ActivationCode"
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
    warn "no systemd; configure the agent's proxy by hand (https_proxy=$(proxy_display "$PROXY_URL"))"
    return 0
  fi
  local dropin content
  dropin=$(proxy_dropin_path)
  printf -v content '[Service]\nEnvironment="http_proxy=%s"\nEnvironment="https_proxy=%s"\nEnvironment="no_proxy=%s"\n' \
    "$PROXY_URL" "$PROXY_URL" "$agent_no_proxy"
  if [[ -f $dropin && "$(cat "$dropin")"$'\n' == "$content" ]]; then return 0; fi
  mkdir -p "${dropin%/*}"
  # 0600: the proxy URL may carry credentials.
  (umask 077 && printf '%s' "$content" >"$dropin.tmp")
  mv -f "$dropin.tmp" "$dropin"
  CONFIG_CHANGED=1
  run_tool systemctl daemon-reload || warn "systemctl daemon-reload failed"
  log "agent proxy set to $(proxy_display "$PROXY_URL") in ${dropin#"$ROOT"}"
}

# ---------------------------------------------------------------------------------------------
# Install (before the broker is asked) and register (after)
# ---------------------------------------------------------------------------------------------
# Prints the HTTP status; the file lands in $2. Downloads go to AWS or the mirror, never through
# --ca-bundle, which is meant for the broker's private CA. $3=head: only ask whether it is there.
download() {
  local url=$1 dest=$2 status proto='=https'
  local -a how=(--output "$dest")
  if [[ ${3:-} == head ]]; then how=(--head --output /dev/null); fi
  if is_loopback_http "$url"; then proto='=https,http'; fi
  set +e
  status=$(curl --silent --show-error --proto "$proto" --connect-timeout "$CONNECT_TIMEOUT" \
    --max-time 600 --retry 3 "${how[@]}" --write-out '%{http_code}' --url "$url" 2>"$WORK_DIR/download-errors")
  set -e
  if [[ $status != 200 ]]; then
    vlog "download of $url failed (HTTP ${status:-000}) $(sanitize "$(head -n 1 "$WORK_DIR/download-errors")")"
  fi
  printf '%s' "${status:-000}"
}

setup_cli_url() { printf '%s/latest/%s/ssm-setup-cli' "$(download_base "$1")" "$FOLDER"; }
manifest_url() { printf '%s/ssm-agent-manifest.json' "$(download_base "$1")"; }
package_url() {
  local ext=rpm
  [[ $FAMILY == deb ]] && ext=deb
  printf '%s/latest/%s/amazon-ssm-agent.%s' "$(download_base "$1")" "$FOLDER" "$ext"
}

# Where the agent comes from when it must be downloaded: --region, else the broker URL's region.
# Without either the download would have to wait for the broker's answer, and a failed install
# would then cost a registration: refused instead.
resolve_download_region() {
  DOWNLOAD_REGION=${REGION_OVERRIDE:-$(region_from_url "$BROKER_URL" || true)}
  if [[ -z $DOWNLOAD_REGION && $DOWNLOAD_BASE_TEMPLATE == *"{region}"* ]]; then
    die "$EXIT_USAGE" "the agent must be downloaded, and its region is not known before the broker is asked (the broker URL names none): pass --region REGION, or --mirror-url, --package or --agent-path"
  fi
  DOWNLOAD_REGION=${DOWNLOAD_REGION:-us-east-1}
}

# ssm-setup-cli installs the agent only together with a registration (on-premises it requires
# -register and an activation), so it cannot run before the broker is asked. Everything it needs
# that can fail for a network or host reason is checked first: its own download, the manifest
# it reads first (same host and proxy as the agent package), and gpg for its signature check.
# 0: ready in SETUP_CLI; 3: no ssm-setup-cli at that location.
prepare_setup_cli() {
  local url status cli="$WORK_DIR/ssm-setup-cli"
  url=$(setup_cli_url "$DOWNLOAD_REGION")
  log "downloading $url"
  status=$(download "$url" "$cli")
  if [[ $status == 404 || $status == 403 ]]; then
    log "ssm-setup-cli not available at $url (HTTP $status)"
    return 3
  fi
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url (HTTP $status): check the network, --proxy or --mirror-url (no registration was taken)"
  chmod 0700 "$cli"
  url=$(manifest_url "$DOWNLOAD_REGION")
  status=$(download "$url" /dev/null head)
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "ssm-setup-cli could not fetch the agent: $url answers HTTP $status (no registration was taken)"
  command -v gpg >/dev/null 2>&1 || die "$EXIT_INSTALL_FAILED" "ssm-setup-cli checks the agent package with gpg, which is not installed (no registration was taken)"
  SETUP_CLI=$cli
}

# The package method: the .sig is checked with the AWS key before the package manager sees it.
install_package() {
  local pkg=$1 sig=$2 origin=$3
  [[ -n $AGENT_KEY ]] || die "$EXIT_INSTALL_FAILED" "installing a package needs --agent-key FILE (the SSM Agent public key from https://docs.aws.amazon.com/systems-manager/latest/userguide/verify-agent-signature.html) to check its signature"
  command -v gpg >/dev/null 2>&1 || die "$EXIT_INSTALL_FAILED" "gpg is needed to check the agent package signature"
  local gnupg="$WORK_DIR/gnupg"
  mkdir -p "$gnupg"
  run_tool gpg --batch --quiet --homedir "$gnupg" --import "$AGENT_KEY" ||
    die "$EXIT_INSTALL_FAILED" "cannot import --agent-key $AGENT_KEY"
  run_tool gpg --batch --quiet --homedir "$gnupg" --verify "$sig" "$pkg" ||
    die "$EXIT_INSTALL_FAILED" "signature check of $origin failed: not installing it"
  log "package signature verified ($origin)"
  # The signature was checked above with the AWS key, so the package tools are not asked to
  # trust a key of their own (rpm's keyring does not hold it).
  case $PKG_TOOL in
    dnf) run_tool dnf -y install "$pkg" ;;
    yum) run_tool yum -y install "$pkg" ;;
    zypper) run_tool zypper --non-interactive --no-gpg-checks install "$pkg" ;;
    apt-get) DEBIAN_FRONTEND=noninteractive run_tool apt-get -y install "$pkg" ;;
    dpkg) run_tool dpkg -i "$pkg" ;;
  esac || die "$EXIT_INSTALL_FAILED" "$PKG_TOOL could not install $origin"
  agent_binary >/dev/null || die "$EXIT_INSTALL_FAILED" "$PKG_TOOL finished but amazon-ssm-agent is not installed"
}

install_downloaded_package() {
  local url status pkg ext=rpm
  [[ $FAMILY == deb ]] && ext=deb
  [[ -n $AGENT_KEY ]] || install_package "" "" "" # names the missing key before any download
  url=$(package_url "$DOWNLOAD_REGION")
  pkg="$WORK_DIR/amazon-ssm-agent.$ext"
  log "downloading $url"
  status=$(download "$url" "$pkg")
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url (HTTP $status)"
  status=$(download "$url.sig" "$pkg.sig")
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url.sig (HTTP $status)"
  install_package "$pkg" "$pkg.sig" "$url"
}

install_local_package() {
  local ext=rpm
  [[ $FAMILY == deb ]] && ext=deb
  [[ $PACKAGE_FILE == *."$ext" ]] || die "$EXIT_USAGE" "--package must be a .$ext on $OS_NAME"
  [[ -n $AGENT_KEY ]] || install_package "" "" "" # names the missing key first
  [[ -r $PACKAGE_FILE.sig ]] || die "$EXIT_INSTALL_FAILED" "no signature $PACKAGE_FILE.sig next to --package: download the .sig with the package"
  # Copies, so the file checked is the file installed even if the original changes meanwhile.
  cp -- "$PACKAGE_FILE" "$WORK_DIR/amazon-ssm-agent.$ext"
  cp -- "$PACKAGE_FILE.sig" "$WORK_DIR/amazon-ssm-agent.$ext.sig"
  install_package "$WORK_DIR/amazon-ssm-agent.$ext" "$WORK_DIR/amazon-ssm-agent.$ext.sig" "$PACKAGE_FILE"
}

# Step 2 of every registration: an agent that runs, or a verified ssm-setup-cli ready to install
# it. No registration has been taken yet, so every failure here costs nothing but this run.
prepare_agent() {
  local bin
  if bin=$(agent_binary); then
    verify_agent "$bin"
    AGENT_BIN=$bin
    return 0
  fi
  if [[ -n $AGENT_PATH ]]; then die "$EXIT_INSTALL_FAILED" "--agent-path '$AGENT_PATH' is not an executable file"; fi
  if [[ $INSTALL_METHOD == none ]]; then
    die "$EXIT_INSTALL_FAILED" "no SSM Agent at $(host_path /usr/bin/amazon-ssm-agent) or the snap path, and --install-method none: install it first or pass --agent-path"
  fi
  if [[ -n $PACKAGE_FILE ]]; then
    install_local_package
  else
    resolve_download_region
    local rc=0
    if [[ $INSTALL_METHOD != package ]]; then
      prepare_setup_cli || rc=$?
      if ((rc == 0)); then return 0; fi
      if [[ $INSTALL_METHOD == setup-cli ]]; then
        die "$EXIT_INSTALL_FAILED" "ssm-setup-cli is not available for $FOLDER at $(download_base "$DOWNLOAD_REGION")"
      fi
    fi
    install_downloaded_package
  fi
  AGENT_BIN=$(agent_binary)
  verify_agent "$AGENT_BIN"
}

register_with_setup_cli() {
  local rc
  local -a flags=(-register -activation-code "$ACT_CODE" -activation-id "$ACT_ID" -region "$ACT_REGION")
  local shown="-register -activation-code *** -activation-id $ACT_ID -region $ACT_REGION"
  if ((FORCE)); then flags+=(-override) && shown+=" -override"; fi
  if [[ -n $AGENT_VERSION ]]; then flags+=(-version "$AGENT_VERSION") && shown+=" -version $AGENT_VERSION"; fi
  if [[ -n $MIRROR_URL ]]; then
    flags+=(-manifest-url "$(manifest_url "")") && shown+=" -manifest-url $(manifest_url "")"
  fi
  log "running ssm-setup-cli $shown"
  # ssm-setup-cli takes the code only as an argument: it is in its argv for the few seconds of
  # the registration call, and nowhere else.
  rc=0
  (cd "$WORK_DIR" && run_tool "$SETUP_CLI" "${flags[@]}") || rc=$?
  flags=()
  if ((rc != 0)); then
    if agent_binary >/dev/null; then
      die "$EXIT_REGISTRATION_FAILED" "ssm-setup-cli installed the agent but registration failed (exit $rc); see its messages above"
    fi
    die "$EXIT_INSTALL_FAILED" "ssm-setup-cli failed (exit $rc) before the agent was installed: this cost one registration of the pool; --install-method package or --package install before the broker is asked"
  fi
  AGENT_BIN=$(agent_binary) || die "$EXIT_INSTALL_FAILED" "ssm-setup-cli finished but amazon-ssm-agent is not installed"
}

register_with_agent() {
  local rc
  svc stop || true
  local -a flags=(-register -code "$ACT_CODE" -id "$ACT_ID" -region "$ACT_REGION" -y)
  if ((FORCE)); then flags+=(-clear); fi
  log "running amazon-ssm-agent -register -code *** -id $ACT_ID -region $ACT_REGION -y$( ((FORCE)) && printf ' -clear')"
  # The agent takes the code only as an argument: it is in its argv for the one registration
  # call and nowhere else.
  rc=0
  run_tool "$AGENT_BIN" "${flags[@]}" || rc=$?
  flags=()
  local line
  line=$(printf '%s\n' "$TOOL_OUT" | grep -m 1 -i 'fail' || printf '%s' "${TOOL_OUT##*$'\n'}")
  ((rc == 0)) || die "$EXIT_REGISTRATION_FAILED" "the agent could not register (exit $rc): $(sanitize "$line")"
}

# ---------------------------------------------------------------------------------------------
# --deregister
# ---------------------------------------------------------------------------------------------
deregister() {
  local id region bin name failed=""
  name=$(service_name)
  id=$(registered_id || true)
  if bin=$(agent_binary); then
    if svc_active; then svc stop || die "$EXIT_SERVICE_FAILED" "cannot stop the $name service"; fi
    if svc_enabled; then svc disable || warn "cannot disable the $name service"; fi
    log "$name stopped and disabled"
  fi
  if [[ -z $id ]]; then
    log "not registered: nothing to deregister"
    return 0
  fi
  region=$(registered_region || true)
  region=${REGION_OVERRIDE:-$region}
  # Only an IAM principal may call DeregisterManagedInstance; the node's own credentials are the
  # agent's, so the operator's (environment, profile) are used through the AWS CLI.
  if ! command -v aws >/dev/null 2>&1; then
    failed="the AWS CLI (aws) is not installed"
  elif [[ -z $region ]]; then
    failed="the registration names no region (pass --region)"
  else
    local -a args=(ssm deregister-managed-instance --instance-id "$id" --region "$region")
    [[ -z $SSM_ENDPOINT ]] || args+=(--endpoint-url "$SSM_ENDPOINT")
    log "running aws ${args[*]}"
    if run_tool aws "${args[@]}"; then
      log "SSM deregistered $id"
    else
      failed="aws ssm deregister-managed-instance failed: $(sanitize "${TOOL_OUT##*$'\n'}")"
    fi
  fi
  if [[ -n $bin ]]; then
    run_tool "$bin" -register -clear || warn "amazon-ssm-agent -register -clear failed"
  fi
  rm -f -- "$(host_path "/$REG_FILE_REL")"
  log "local registration of $id cleared"
  if [[ -n $failed ]]; then
    die "$EXIT_DEREGISTER_FAILED" "$id is still registered with SSM ($failed): run 'aws ssm deregister-managed-instance --instance-id $id${region:+ --region $region}' with credentials allowed to"
  fi
}

# ---------------------------------------------------------------------------------------------
# EKS Hybrid Nodes (--eks)
# ---------------------------------------------------------------------------------------------
nodeconfig_endpoint() { printf '%s/nodeconfig.yaml%s' "$BROKER_URL" "${BROKER_POOL:+?pool=$BROKER_POOL}"; }

nodeadm_binary() {
  if [[ -n $NODEADM_PATH ]]; then
    [[ -f $NODEADM_PATH && -x $NODEADM_PATH ]] || return 1
    printf '%s' "$NODEADM_PATH"
    return 0
  fi
  local found
  if found=$(command -v nodeadm 2>/dev/null); then
    printf '%s' "$found"
    return 0
  fi
  [[ -x $(host_path /usr/local/bin/nodeadm) ]] || return 1
  host_path /usr/local/bin/nodeadm
}

# Finds nodeadm, or downloads it and checks it against the SHA-256 published beside it.
prepare_nodeadm() {
  if NODEADM=$(nodeadm_binary); then
    log "nodeadm at $NODEADM"
    return 0
  fi
  [[ -z $NODEADM_PATH ]] || die "$EXIT_INSTALL_FAILED" "--nodeadm-path '$NODEADM_PATH' is not an executable file"
  local url="$NODEADM_BASE/$ARCH/nodeadm" file="$WORK_DIR/nodeadm" dest status expected actual
  log "downloading $url"
  status=$(download "$url" "$file")
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url (HTTP $status); no registration was taken"
  status=$(download "$url.sha256" "$file.sha256")
  [[ $status == 200 ]] || die "$EXIT_INSTALL_FAILED" "cannot download $url.sha256 (HTTP $status); no registration was taken"
  expected=$(head -c 64 "$file.sha256")
  actual=$(sha256sum "$file")
  actual=${actual%% *}
  if ! [[ $expected =~ ^[0-9a-f]{64}$ && $actual == "$expected" ]]; then
    die "$EXIT_INSTALL_FAILED" "$url does not match its published SHA-256 ($url.sha256): not running it"
  fi
  dest=$(host_path /usr/local/bin/nodeadm)
  mkdir -p "${dest%/*}"
  chmod 0755 "$file"
  mv -f "$file" "$dest"
  NODEADM=$dest
  log "nodeadm installed at $dest (SHA-256 checked)"
}

# nodeadm downloads the Kubernetes components and the agent: it gets the proxy too.
run_nodeadm() {
  if [[ -n $PROXY_URL ]]; then
    run_tool env "HTTPS_PROXY=$PROXY_URL" "HTTP_PROXY=$PROXY_URL" \
      "NO_PROXY=169.254.169.254${NO_PROXY_LIST:+,$NO_PROXY_LIST}" "$NODEADM" "$@"
  else
    run_tool "$NODEADM" "$@"
  fi
}

# The NodeConfig is hostile input like any answer: it must be a NodeConfig for SSM credentials,
# holding a pair of the shapes SSM gives (nodeadm's own checks: a lower-case UUID, a 20-250
# character code). ACT_CODE is kept only to mask it in nodeadm's output.
parse_nodeconfig() {
  local text=$1 line kind=0 id="" code=""
  local id_re='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  while IFS= read -r line; do
    line=${line%$'\r'}
    if [[ $line =~ ^kind:[[:space:]]*NodeConfig[[:space:]]*$ ]]; then kind=1; fi
    if [[ $line =~ ^[[:space:]]+activationId:[[:space:]]*\"?([^\"[:space:]]*)\"?[[:space:]]*$ ]]; then id=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ^[[:space:]]+activationCode:[[:space:]]*\"?([^\"[:space:]]*)\"?[[:space:]]*$ ]]; then code=${BASH_REMATCH[1]}; fi
  done < <(printf '%s\n' "$text")
  ((kind)) || die "$EXIT_BROKER_BAD_ANSWER" "broker answer is not a nodeadm NodeConfig"
  [[ $text != *iamRolesAnywhere* ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker NodeConfig is not for SSM credentials"
  [[ $id =~ $id_re ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker NodeConfig has no valid activationId"
  # The code is checked for shape only, and never echoed, even in this message.
  [[ $code =~ ^[A-Za-z0-9+/=]{20,250}$ ]] || die "$EXIT_BROKER_BAD_ANSWER" "broker NodeConfig has no valid activationCode"
  ACT_ID=$id
  ACT_CODE=$code
}

# The --eks run, in the same order as a plain one: nodeadm and the Kubernetes components first,
# THEN the broker's NodeConfig (one registration), nodeadm init, and the file removed whatever
# happens (here, and by the EXIT trap, which removes WORK_DIR).
eks_join() {
  local existing=$1 id
  if [[ -n $existing ]] && ((!FORCE)); then
    log "already registered as managed node $existing: nodeadm init is not run again (--force runs it)"
    printf '%s\n' "$existing"
    return 0
  fi
  prepare_nodeadm
  log "running nodeadm install $EKS_VERSION --credential-provider ssm"
  run_nodeadm install "$EKS_VERSION" --credential-provider ssm ||
    die "$EXIT_INSTALL_FAILED" "nodeadm install $EKS_VERSION --credential-provider ssm failed; no registration was taken"

  quiet_begin
  broker_get "$(nodeconfig_endpoint)" application/yaml
  parse_nodeconfig "$BROKER_BODY"
  NODECONFIG_FILE="$WORK_DIR/nodeConfig.yaml"
  # umask 077 (set at the top) makes the file 0600, inside the 0700 WORK_DIR. The newline $(…)
  # took off the answer goes back: a YAML file ends with one.
  printf '%s\n' "$BROKER_BODY" >"$NODECONFIG_FILE"
  BROKER_BODY=""
  log "got a NodeConfig with activation $ACT_ID${BROKER_POOL:+ (pool $BROKER_POOL)}"
  log "running nodeadm init --config-source file://$NODECONFIG_FILE"
  if ! run_nodeadm init --config-source "file://$NODECONFIG_FILE"; then
    rm -f -- "$NODECONFIG_FILE"
    die "$EXIT_REGISTRATION_FAILED" "nodeadm init failed (activation $ACT_ID)"
  fi
  rm -f -- "$NODECONFIG_FILE"
  ACT_CODE=""
  quiet_end

  id=$(registered_id) || die "$EXIT_SERVICE_FAILED" "nodeadm init finished, but $(host_path "/$REG_FILE_REL") holds no ManagedInstanceID"
  log "joined the EKS cluster as hybrid node $id"
  printf '%s\n' "$id"
}

print_eks_plan() {
  local existing=$1 where
  printf 'Plan (dry run: nothing is changed and the broker is not called):\n'
  printf '  platform:  %s, arch %s\n' "$OS_NAME" "$ARCH"
  if [[ -n $existing && $FORCE == 0 ]]; then
    printf '  current:   registered as %s: nodeadm init is not run again (--force runs it)\n' "$existing"
    return 0
  fi
  if where=$(nodeadm_binary); then
    printf '  nodeadm:   %s\n' "$where"
  else
    printf '  nodeadm:   download %s/%s/nodeadm (+ .sha256, checked) to %s\n' "$NODEADM_BASE" "$ARCH" "$(host_path /usr/local/bin/nodeadm)"
  fi
  printf '  install:   nodeadm install %s --credential-provider ssm\n' "$EKS_VERSION"
  printf '  broker:    GET %s (after nodeadm install succeeded)\n' "$(nodeconfig_endpoint)"
  printf '  config:    a root-only (0600) temporary file, removed after nodeadm init\n'
  printf '  init:      nodeadm init --config-source file://<that file>\n'
  printf '  verify:    %s holds ManagedInstanceID\n' "$(host_path "/$REG_FILE_REL")"
}

# ---------------------------------------------------------------------------------------------
# Plan, main
# ---------------------------------------------------------------------------------------------
print_plan() {
  local existing=$1 region=${REGION_OVERRIDE:-$(region_from_url "$BROKER_URL" || true)} agent_state="not installed"
  local label=${region:-"{region}"}
  if agent_binary >/dev/null; then agent_state="installed at $(agent_binary)"; fi
  printf 'Plan (dry run: nothing is changed and the broker is not called):\n'
  printf '  platform:  %s (%s packages, %s via %s), arch %s\n' "$OS_NAME" "$FAMILY" "$FOLDER" "$PKG_TOOL" "$ARCH"
  if ((DEREGISTER)); then
    printf '  deregister: %s (aws ssm deregister-managed-instance), clear it locally, stop and disable %s\n' "${existing:-nothing registered}" "$(service_name)"
    return 0
  fi
  if [[ -n $existing && $FORCE == 0 ]]; then
    printf '  current:   registered as %s: the broker is not called; the service is checked\n' "$existing"
  else
    [[ -z $existing ]] || printf '  current:   registered as %s; --force: clear and re-register\n' "$existing"
    printf '  agent:     %s\n' "$agent_state"
    if ! agent_binary >/dev/null; then
      if [[ -n $PACKAGE_FILE ]]; then
        printf '  install:   %s (+ .sig, checked with gpg) via %s\n' "$PACKAGE_FILE" "$PKG_TOOL"
      elif [[ $INSTALL_METHOD == none ]]; then
        printf '  install:   none (--install-method none): exit 20 unless the agent is there\n'
      else
        if [[ $INSTALL_METHOD != package ]]; then
          printf '  install:   %s (+ %s reachable, gpg present)\n' "$(setup_cli_url "$label")" "$(manifest_url "$label")"
          printf '             after the broker: ssm-setup-cli -register -activation-code *** -activation-id <id> -region %s%s%s%s\n' "$label" \
            "$( ((FORCE)) && printf ' -override')" "${AGENT_VERSION:+ -version $AGENT_VERSION}" "${MIRROR_URL:+ -manifest-url $(manifest_url "")}"
        fi
        if [[ $INSTALL_METHOD != setup-cli ]]; then
          if [[ $INSTALL_METHOD == package ]]; then printf '  install:   '; else printf '  fallback:  '; fi
          printf '%s (+ .sig, checked with gpg) via %s\n' "$(package_url "$label")" "$PKG_TOOL"
        fi
      fi
    fi
    printf '  broker:    GET %s (after the agent is in place)\n' "$(broker_endpoint)"
    printf '  region:    %s\n' "${REGION_OVERRIDE:-from the broker answer}"
    if agent_binary >/dev/null || [[ $INSTALL_METHOD != auto && $INSTALL_METHOD != setup-cli ]]; then
      printf '  register:  amazon-ssm-agent -register -code *** -id <id> -region %s -y%s\n' "$label" "$( ((FORCE)) && printf ' -clear')"
    else
      printf '  register:  by ssm-setup-cli (with amazon-ssm-agent -register, if the package fallback is used)\n'
    fi
  fi
  if [[ -n $PROXY_URL ]]; then printf '  proxy:     %s in %s\n' "$(proxy_display "$PROXY_URL")" "$(proxy_dropin_path)"; fi
  if [[ -n $SSM_ENDPOINT$EC2MESSAGES_ENDPOINT$SSMMESSAGES_ENDPOINT ]]; then
    printf '  endpoints: %sin %s\n' "${SSM_ENDPOINT:+Ssm.Endpoint=$SSM_ENDPOINT }${EC2MESSAGES_ENDPOINT:+Mds.Endpoint=$EC2MESSAGES_ENDPOINT }${SSMMESSAGES_ENDPOINT:+Mgs.Endpoint=$SSMMESSAGES_ENDPOINT }" \
      "$(agent_config_path)"
  fi
  if ((NO_START)); then
    printf '  service:   enable %s, do not start it (--no-start)\n' "$(service_name)"
  else
    printf '  service:   enable and start %s\n' "$(service_name)"
  fi
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
  open_log_file
  detect_platform

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

  local existing=""
  existing=$(registered_id || true)
  if ((DRY_RUN)); then
    if [[ -n $EKS_VERSION ]]; then print_eks_plan "$existing"; else print_plan "$existing"; fi
    exit "$EXIT_OK"
  fi
  trap cleanup EXIT
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ssm-install.XXXXXXXX")
  if [[ -n $EKS_VERSION ]]; then
    eks_join "$existing"
    exit "$EXIT_OK"
  fi
  if ((DEREGISTER)); then
    deregister
    exit "$EXIT_OK"
  fi

  # 1. Prerequisites: the agent's proxy and endpoints, written before it runs or registers.
  configure_agent_proxy
  if [[ -n $existing ]] && ((!FORCE)); then
    # Converge: a registered host is never registered again, but its service is made to run.
    log "already registered as managed node $existing (--force re-registers)"
    agent_binary >/dev/null || die "$EXIT_SERVICE_FAILED" "registered as $existing, but no SSM Agent is installed: run again with --force to install and re-register it"
    configure_agent_endpoints
    converge
    exit "$EXIT_OK"
  fi
  configure_agent_endpoints

  # 2. The agent, found or installed and verified. Nothing is reserved yet.
  prepare_agent

  # 3. Only now a pair from the broker, and 4. the registration.
  quiet_begin
  fetch_activation
  log "got activation $ACT_ID (region $ACT_REGION${BROKER_POOL:+, pool $BROKER_POOL})"
  if [[ -n $SETUP_CLI ]]; then register_with_setup_cli; else register_with_agent; fi
  ACT_CODE=""
  quiet_end
  FRESH_REGISTRATION=1
  CONFIG_CHANGED=0

  # 5. Enabled and running (or enabled only, --no-start), and verified.
  converge
}

# Test hook: INSTALL_SOURCE_ONLY=1 loads the functions without running (unit tests of the parser).
if [[ ${INSTALL_SOURCE_ONLY:-} != 1 ]]; then main "$@"; fi
