#!/usr/bin/env bats
# Every supported distribution family and both architectures: the right bucket folder, the
# right package tool, and a real registration through the broker and the emulated SSM.

load helpers/common

setup() { sandbox_setup; }

# distro  folder-prefix  package-tool
PLATFORMS=(
  "rhel linux dnf" "centos linux yum" "rocky linux dnf" "alma linux dnf" "oracle linux dnf"
  "fedora linux dnf" "amzn2 linux yum" "al2023 linux dnf" "debian debian apt-get"
  "ubuntu debian apt-get" "sles linux zypper" "opensuse linux zypper"
)

@test "each family and architecture downloads its bucket folder and installs with its package tool" {
  # The package method (--agent-key), its install made to fail: the folder and tool show, and no
  # registration is taken.
  echo "fake key" >"$BATS_TEST_TMPDIR/agent.gpg"
  local entry d prefix tool machine arch ext
  for entry in "${PLATFORMS[@]}"; do
    read -r d prefix tool <<<"$entry"
    for machine in x86_64 aarch64; do
      arch=amd64 ext=rpm
      [[ $machine == aarch64 ]] && arch=arm64
      [[ $prefix == debian ]] && ext=deb
      rm -f "$BIN"/{dnf,yum,zypper,apt-get,dpkg}
      distro "$d"
      harness POST /__reset >/dev/null
      : >"$STUB_LOG"
      ARCH=$machine STUB_FAIL=$tool
      run_install --url "$BROKER" --region ap-southeast-2 --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
      [[ $status -eq 20 ]] || { echo "$d/$machine"; show; return 1; }
      s3_requests | grep -qx "ap-southeast-2/latest/${prefix}_${arch}/amazon-ssm-agent.$ext" || { echo "$d/$machine: wrong package"; show; return 1; }
      grep -q "^$tool " "$STUB_LOG" || { echo "$d/$machine: not installed with $tool"; show; return 1; }
      [ "$(broker_requests)" -eq 0 ]
    done
  done
  STUB_FAIL=""
}

@test "each family registers for real through the broker and the emulated SSM (x86_64)" {
  local entry d prefix tool id
  for entry in "${PLATFORMS[@]}"; do
    read -r d prefix tool <<<"$entry"
    rm -rf "$ROOT" "$BATS_TEST_TMPDIR/state"
    mkdir -p "$ROOT/etc" "$ROOT/tmp" "$ROOT/run"
    rm -f "$BIN"/{dnf,yum,zypper,apt-get,dpkg}
    distro "$d"
    harness POST /__reset >/dev/null
    run_install --url "$AGENT_TEST_BROKER_URL"
    [[ $status -eq 0 ]] || { echo "$d:"; show; return 1; }
    id=$(registered_id_in_sandbox)
    [[ $output == "$id" ]] || { echo "$d: stdout is not the node id"; show; return 1; }
    emulator_lists "$id" || { echo "$d: emulator does not list $id"; return 1; }
    [[ $(s3_downloads) == "$AGENT_TEST_REGION/latest/${prefix}_amd64/ssm-setup-cli" ]] ||
      { echo "$d: downloads: $(s3_requests)"; return 1; }
  done
}

@test "aarch64 hosts download the arm64 ssm-setup-cli (rpm and deb families)" {
  ARCH=aarch64
  distro rocky
  run_install --url "$BROKER" --pool web
  show
  [ "$status" -eq 0 ]
  [ "$(s3_downloads)" = "$AGENT_TEST_REGION/latest/linux_arm64/ssm-setup-cli" ]

  rm -rf "$ROOT/var" "$BATS_TEST_TMPDIR/state" "$ROOT/usr"
  rm -f "$BIN"/{dnf,yum}
  distro ubuntu
  harness POST /__reset >/dev/null
  run_install --url "$BROKER" --pool web
  show
  [ "$status" -eq 0 ]
  [ "$(s3_downloads)" = "$AGENT_TEST_REGION/latest/debian_arm64/ssm-setup-cli" ]
}

@test "package fallback: no ssm-setup-cli in the bucket -> signed rpm via dnf, gpg-checked" {
  distro al2023
  echo "fake key" >"$BATS_TEST_TMPDIR/agent.gpg"
  harness POST /__s3/missing '["ssm-setup-cli"]' >/dev/null
  run_install --url "$BROKER" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  show
  [ "$status" -eq 0 ]
  grep -q '^gpg .*--verify .*amazon-ssm-agent.rpm.sig .*amazon-ssm-agent.rpm$' "$STUB_LOG"
  grep -q '^dnf -y install .*/amazon-ssm-agent.rpm$' "$STUB_LOG"
  grep -q "^amazon-ssm-agent -register -code \\*\\*\\* -id .* -region $AGENT_TEST_REGION -y\$" "$STUB_LOG"
  emulator_lists "$(registered_id_in_sandbox)"
  s3_requests | grep -qx "$AGENT_TEST_REGION/latest/linux_amd64/amazon-ssm-agent.rpm.sig"
}

@test "package method on Debian and SUSE uses apt-get and zypper" {
  echo "fake key" >"$BATS_TEST_TMPDIR/agent.gpg"
  distro debian
  run_install --url "$BROKER" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  show
  [ "$status" -eq 0 ]
  grep -q '^apt-get -y install .*/amazon-ssm-agent.deb$' "$STUB_LOG"

  rm -rf "$ROOT/var" "$ROOT/usr" "$BATS_TEST_TMPDIR/state"
  rm -f "$BIN"/{apt-get,dpkg}
  : >"$STUB_LOG"
  distro sles
  run_install --url "$BROKER" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  show
  [ "$status" -eq 0 ]
  grep -q '^zypper --non-interactive --no-gpg-checks install .*/amazon-ssm-agent.rpm$' "$STUB_LOG"
}

@test "a package whose signature does not verify is not installed (exit 20)" {
  distro rhel
  echo "fake key" >"$BATS_TEST_TMPDIR/agent.gpg"
  harness POST /__s3/bad-signatures >/dev/null
  run_install --url "$BROKER" --agent-key "$BATS_TEST_TMPDIR/agent.gpg"
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"signature check"*"failed"* ]]
  ! grep -q '^dnf' "$STUB_LOG"
  [ ! -e "$ROOT/usr/bin/amazon-ssm-agent" ]
}

@test "no ssm-setup-cli in the bucket and no --agent-key: unverified packages are refused (exit 20)" {
  distro rhel
  harness POST /__s3/missing '["ssm-setup-cli"]' >/dev/null
  run_install --url "$BROKER"
  show
  [ "$status" -eq 20 ]
  [[ $stderr == *"--agent-key"* ]]
}

@test "unsupported operating system: clear message, exit 4, broker not called" {
  distro alpine
  run_install --url "$BROKER"
  show
  [ "$status" -eq 4 ]
  [[ $stderr == *"unsupported operating system 'Alpine Linux v3.20'"* ]]
  [ "$(broker_requests)" -eq 0 ]
}

@test "missing os-release: exit 4" {
  use_stubs uname systemctl
  run_install --url "$BROKER"
  show
  [ "$status" -eq 4 ]
  [[ $stderr == *"os-release"* ]]
}

@test "unsupported architecture: clear message, exit 4, broker not called" {
  distro ubuntu
  for ARCH in s390x armv7l i686; do
    run_install --url "$BROKER"
    [ "$status" -eq 4 ] || { show; return 1; }
    [[ $stderr == *"unsupported architecture '$ARCH'"* ]]
  done
  [ "$(broker_requests)" -eq 0 ]
}
