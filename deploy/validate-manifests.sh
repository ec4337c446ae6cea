#!/usr/bin/env bash
# Validates the Kubernetes manifests offline, against the API schemas of pinned Kubernetes
# versions (kubernetes-validate ships them; no cluster and no network beyond PyPI for the
# install). Exits non-zero when any manifest is invalid, has unknown fields (--strict), or
# names a kind/apiVersion that does not exist in a checked version.
#
# Usage: deploy/validate-manifests.sh [FILE.yaml...]     (default: deploy/k8s/*.yaml)
# Environment:
#   K8S_VERSIONS                 versions to check (default "1.30.0 1.33.0": the oldest one
#                                the manifests support, the preStop sleep needs 1.30, and a
#                                recent one)
#   KUBERNETES_VALIDATE_VERSION  the pinned validator (default 1.37.0; it ships schemas for
#                                Kubernetes 1.25 to 1.37)
#   MOLT_TOOLS_DIR               where its virtualenv goes (default ~/.cache/molt)
set -euo pipefail

die() {
    echo "validate-manifests: error: $*" >&2
    exit 1
}

versions=${K8S_VERSIONS:-1.30.0 1.33.0}
validator_version=${KUBERNETES_VALIDATE_VERSION:-1.37.0}
tools=${MOLT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/molt}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The validator, in its own virtualenv (installed once, reused after).
venv=$tools/kubernetes-validate-$validator_version
validate=$venv/bin/kubernetes-validate
if [[ ! -x $validate ]]; then
    command -v python3 >/dev/null || die "python3 is needed to install kubernetes-validate"
    echo "validate-manifests: installing kubernetes-validate==$validator_version into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$validator_version" || die "pip install kubernetes-validate failed"
fi

if [[ $# -gt 0 ]]; then
    candidates=("$@")
else
    candidates=("$here"/k8s/*.yaml)
fi

# kustomization.yaml is kustomize's own file, not a Kubernetes object: no schema to check.
files=()
for f in "${candidates[@]}"; do
    [[ -f $f ]] || die "no such file: $f"
    if grep -qE '^kind:[[:space:]]*Kustomization[[:space:]]*$' "$f"; then
        echo "validate-manifests: skipping $f (a kustomization, not a Kubernetes object)" >&2
        continue
    fi
    files+=("$f")
done
[[ ${#files[@]} -gt 0 ]] || die "no manifests to validate"

status=0
for version in $versions; do
    # The validator only warns (exit 0) about a kind it has no schema for: a misspelt kind or
    # apiVersion would slip through, so that warning counts as a failure here.
    if ! out=$("$validate" --kubernetes-version "$version" --strict "${files[@]}" 2>&1); then
        status=1
    fi
    echo "$out"
    if grep -q "Couldn't find schema" <<<"$out"; then
        echo "validate-manifests: unknown kind or apiVersion for Kubernetes $version (see above)" >&2
        status=1
    fi
done

if [[ $status != 0 ]]; then
    echo "validate-manifests: FAILED" >&2
else
    echo "validate-manifests: ${#files[@]} files valid for Kubernetes $versions" >&2
fi
exit $status
