# shellcheck shell=bash
# Shared by the stubs that stand in for host tools in the install.sh tests. Test equipment only.
# STUB_LOG: file every stub appends its call to (the Activation Code is never written there).
# STUB_FAIL: space-separated "tool" or "tool:verb" entries that make a stub fail.
# STUB_STATE: directory for stub state (service states).
# SANDBOX_ROOT: the sandbox root the scripts work in (test/agent/helpers/common.bash).

stub_log() { printf '%s\n' "$*" >>"${STUB_LOG:?STUB_LOG is not set}"; }

stub_should_fail() { [[ " ${STUB_FAIL:-} " == *" $1 "* ]]; }

# What a package manager does with the fake package: check it, then put the stub agent in place.
stub_install_package() {
  local tool=$1 file=$2
  if stub_should_fail "$tool"; then
    echo "$tool: simulated failure" >&2
    return 1
  fi
  if [[ ! -f $file ]] || ! head -n 1 "$file" | grep -q '^FAKE-AMAZON-SSM-AGENT-PACKAGE'; then
    echo "$tool: $file is not an agent package" >&2
    return 1
  fi
  mkdir -p "${SANDBOX_ROOT:?}/usr/bin"
  cp "${STUB_DIR:?}/amazon-ssm-agent" "$SANDBOX_ROOT/usr/bin/amazon-ssm-agent"
  chmod 0755 "$SANDBOX_ROOT/usr/bin/amazon-ssm-agent"
  echo "$tool: installed amazon-ssm-agent from ${file##*/}" >&2
}

stub_package_arg() {
  local arg
  for arg in "$@"; do
    case $arg in *.rpm | *.deb) printf '%s' "$arg"; return 0 ;; esac
  done
  return 1
}
