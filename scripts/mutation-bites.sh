#!/usr/bin/env bash
# `npm run test:bites`: shows that the cheaper CI still bites (docs/testing.md, "It bites").
# In a throw-away worktree of HEAD (uncommitted changes are not part of it):
#   (a) weakens the slot reservation in src/aws/dynamodb-pool-store.ts (`#issued < #limit`
#       becomes `#issued <= #limit`: one pair more than the activation's registration limit) and
#       runs the unit, contract and adapter suites, part of `npm test`: they must fail;
#   (b) plants an untested guard in src/core/reconcile.ts and runs the CI mutation gate
#       (`npm run test:mutation:changed`, against the committed baseline): it must fail, naming
#       the new survivors.
# Exits 0 only when both fail as they should. Takes minutes: not part of .ci/run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
tree="$work/tree"
cleanup() {
  git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
git -C "$repo" worktree add --detach --quiet "$tree" HEAD
ln -s "$repo/node_modules" "$tree/node_modules"
cd "$tree"

# Replaces one exact line (or fragment) of a file, and fails when it is not there: a check
# that edits nothing would prove nothing.
replace() {
  local file=$1 from=$2 to=$3
  FROM=$from TO=$to node -e '
    const fs = require("fs");
    const [file] = process.argv.slice(1);
    const text = fs.readFileSync(file, "utf8");
    if (text.split(process.env.FROM).length !== 2) throw new Error(`${file}: expected "${process.env.FROM}" once`);
    fs.writeFileSync(file, text.replace(process.env.FROM, process.env.TO));
  ' "$file"
}

verdict=0

echo "== (a) reservation weakened: #issued < #limit -> #issued <= #limit"
replace src/aws/dynamodb-pool-store.ts '"attribute_exists(#activationId) AND #issued < #limit AND' \
  '"attribute_exists(#activationId) AND #issued <= #limit AND'
git --no-pager diff --stat
if npx vitest run test/core test/contract test/aws --reporter=json --outputFile="$work/a.json" >"$work/a.log" 2>&1; then
  echo "NOT CAUGHT: the suites pass with the weakened reservation"
  verdict=1
else
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`caught: ${r.numFailedTests} of ${r.numTotalTests} tests fail:`);
    for (const f of r.testResults)
      for (const t of f.assertionResults)
        if (t.status === "failed") console.log(`  ${f.name.replace(process.cwd() + "/", "")} > ${t.fullName}`);
  ' "$work/a.json"
fi
git checkout --quiet -- src/aws/dynamodb-pool-store.ts

echo
echo "== (b) an untested guard planted in src/core/reconcile.ts; the CI gate runs"
replace src/core/reconcile.ts '  const issued = after.issued ?? 0;' \
  '  const issued = after.issued ?? 0;
  if (summary.registrationsCount < 0) return { pool, status: "missing", activationId };'
git --no-pager diff --stat
if npx tsx scripts/mutation-gate.ts changed >"$work/b.log" 2>&1; then
  echo "NOT CAUGHT: the mutation gate passes"
  verdict=1
else
  echo "caught: the gate fails:"
fi
grep -E "Incremental report|mutant result\(s\) are reused|mutation gate|new survivor|Final mutation score" "$work/b.log" |
  sed -E 's/\x1b\[[0-9;]*m//g; s/^/  /'

echo
[ "$verdict" = 0 ] && echo "bites: both weakenings fail CI" || echo "bites: FAILED"
exit "$verdict"
