#!/usr/bin/env bash
# Builds the molt container image without a registry: no base image is pulled. The image is
# assembled from the `molt` binary built here and exactly the shared libraries it needs
# (as `ldd` reports them, at the paths `ldd` names), then loaded with `docker import`.
# For CI, tests, and air-gapped users. With a registry, deploy/Dockerfile is the usual way.
#
# Usage: deploy/build-image.sh [--tag TAG] [--profile PROFILE] [--binary PATH] [--user UID[:GID]]
#                              [--extra-lib NAME|PATH]... [--check-plugin FILE.so]... [--no-verify]
# Run with --help for details.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/build-image.sh [options]

Builds `molt` with cargo, assembles a minimal root filesystem (the binary, the shared
libraries it and the plugins it loads need, /tmp, /releases, /state, /etc/passwd and
/etc/group) and loads it into docker with `docker import`. No registry is used.

Options:
  --tag TAG             image name (default: molt:local)
  --profile PROFILE     cargo profile to build (default: release; `dev` builds target/debug)
  --binary PATH         use this prebuilt `molt` instead of building one
  --user UID[:GID]      user the container runs as (default: 0:0, or $MOLT_IMAGE_USER).
                        root is the default here because tests bind-mount host directories,
                        which are owned by root; use 10001:10001 (the image's `molt` user)
                        anywhere else. /releases and /state are owned by this user.
  --extra-lib LIB       also ship LIB (a file name such as libssl.so.3, or a path) and what it
                        needs, for plugins with native dependencies; repeatable. libgcc_s.so.1
                        and libm.so.6 are always shipped: Rust cdylibs link libgcc_s (unwinding)
                        and float maths call libm, even when `molt` itself does not.
  --check-plugin FILE   after building, check inside the image that FILE (a plugin .so) finds
                        every library it needs; repeatable
  --no-verify           skip the checks that run the image
  -h, --help            this help

Environment: CARGO_TARGET_DIR (where cargo builds), CARGO (the cargo to run), DOCKER (the
docker client to run), MOLT_IMAGE_USER (default of --user).
EOF
}

die() {
    echo "build-image: error: $*" >&2
    exit 1
}
say() {
    echo "build-image: $*" >&2
}

tag=molt:local
profile=release
binary=
user=${MOLT_IMAGE_USER:-0:0}
verify=1
extra_libs=(libgcc_s.so.1 libm.so.6)
plugins=()

while [[ $# -gt 0 ]]; do
    case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --profile) profile=${2:?--profile needs a value}; shift 2 ;;
    --binary) binary=${2:?--binary needs a value}; shift 2 ;;
    --user) user=${2:?--user needs a value}; shift 2 ;;
    --extra-lib) extra_libs+=("${2:?--extra-lib needs a value}"); shift 2 ;;
    --check-plugin) plugins+=("${2:?--check-plugin needs a value}"); shift 2 ;;
    --no-verify) verify=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ $user =~ ^[0-9]+(:[0-9]+)?$ ]] || die "--user wants a numeric UID or UID:GID, got '$user'"
uid=${user%%:*}
gid=${user#*:}
[[ $user == *:* ]] || gid=$uid

cargo=${CARGO:-cargo}
docker=${DOCKER:-docker}
for tool in "$docker" ldd tar; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed (needed to build the image)"
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# 1. The binary.
if [[ -z $binary ]]; then
    command -v "$cargo" >/dev/null || die "'$cargo' is not installed (or pass --binary PATH)"
    case $profile in
    dev) profile_dir=debug ;;
    *) profile_dir=$profile ;;
    esac
    target_dir=${CARGO_TARGET_DIR:-$repo/target}
    say "building molt (cargo profile '$profile', target dir $target_dir)"
    (cd "$repo" && "$cargo" build --profile "$profile" -p molt-supervisor --bin molt) ||
        die "cargo build failed"
    binary=$target_dir/$profile_dir/molt
fi
[[ -f $binary && -x $binary ]] || die "no executable molt at $binary"

# 2. The root filesystem.
work=$(mktemp -d "${TMPDIR:-/tmp}/molt-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"

install -D -m 0755 "$binary" "$rootfs/usr/local/bin/molt"

# The absolute paths `ldd` names for FILE (the loader included), one a line; fails on a
# library it cannot find.
needed_libs() {
    local out
    out=$(ldd "$1" 2>&1) || {
        # A static binary: nothing to ship.
        [[ $out == *"not a dynamic executable"* || $out == *"statically linked"* ]] && return 0
        die "ldd $1 failed: $out"
    }
    if grep -q "not found" <<<"$out"; then
        die "ldd $1: missing libraries:"$'\n'"$(grep "not found" <<<"$out")"
    fi
    # `name => /path (addr)` or `/path (addr)`; the vDSO has no path.
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) { print $i; break } }' <<<"$out"
}

libs=$(needed_libs "$binary")
libc_path=$(grep -m1 '/libc\.so' <<<"$libs" || true)
[[ -n $libc_path || -z $libs ]] || die "ldd $binary names no libc; cannot tell where libraries live"

# Where a library name resolves: beside libc first (the same multiarch directory), then the
# loader cache.
resolve_lib() {
    local name=$1 path
    if [[ $name == /* ]]; then
        [[ -f $name ]] || die "--extra-lib $name: no such file"
        echo "$name"
        return
    fi
    if [[ -n $libc_path && -e $(dirname "$libc_path")/$name ]]; then
        echo "$(dirname "$libc_path")/$name"
        return
    fi
    if command -v ldconfig >/dev/null; then
        path=$(ldconfig -p | awk -v n="$name" '$1 == n { print $NF; exit }')
        [[ -n $path ]] && { echo "$path"; return; }
    fi
    die "cannot find the shared library $name on this machine"
}

for name in "${extra_libs[@]}"; do
    path=$(resolve_lib "$name")
    libs+=$'\n'"$path"$'\n'"$(needed_libs "$path")"
done

lib_dirs=()
while IFS= read -r lib; do
    [[ -n $lib ]] || continue
    # At the path ldd names (the ELF interpreter path, e.g. /lib64/ld-linux-x86-64.so.2, must
    # match), with symlinks resolved to the file they point at.
    install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
    dir=$(dirname "$lib")
    [[ " ${lib_dirs[*]} " == *" $dir "* ]] || lib_dirs+=("$dir")
    say "library $lib"
done < <(sort -u <<<"$libs")

# The loader finds the libraries through /etc/ld.so.cache (when ldconfig is here to build
# it), or else through LD_LIBRARY_PATH: dlopen of a plugin resolves libgcc_s the same way.
mkdir -p "$rootfs/etc"
printf '%s\n' "${lib_dirs[@]}" >"$rootfs/etc/ld.so.conf"
env_changes=()
if command -v ldconfig >/dev/null && ldconfig -r "$rootfs" 2>/dev/null; then
    say "wrote /etc/ld.so.cache"
else
    ld_path=$(IFS=:; echo "${lib_dirs[*]}")
    env_changes=(--change "ENV LD_LIBRARY_PATH=$ld_path")
    say "no ldconfig: the image sets LD_LIBRARY_PATH=$ld_path"
fi

mkdir -p "$rootfs/tmp" "$rootfs/releases" "$rootfs/state" "$rootfs/var/run/molt" "$rootfs/root"
chmod 1777 "$rootfs/tmp"
chmod 0755 "$rootfs/releases" "$rootfs/state"
chmod 0700 "$rootfs/root"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
molt:x:10001:10001:molt:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
molt:x:10001:
nogroup:x:65534:
EOF
# glibc reads this for getaddrinfo (`molt push --to dns+http://...` resolves names);
# docker and kubernetes provide /etc/hosts, /etc/resolv.conf and /etc/hostname.
echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"

# 3. The image. Everything is owned by root except /releases and /state, owned by the user
# the container runs as (tar applies the ownership, so no chown and no root is needed here).
tarball=$work/rootfs.tar
tar -C "$rootfs" --numeric-owner --owner=0 --group=0 \
    --exclude=./releases --exclude=./state -cf "$tarball" .
tar -C "$rootfs" --numeric-owner --owner="$uid" --group="$gid" -rf "$tarball" ./releases ./state

say "importing the image as $tag (runs as $uid:$gid)"
changes=(
    --change 'ENTRYPOINT ["/usr/local/bin/molt"]'
    --change 'CMD ["run", "--volume", "/releases", "--app", "counter", "--listen", "0.0.0.0:8080", "--control", "0.0.0.0:7070", "--state-dir", "/state", "--token-file", "/var/run/molt/token"]'
    --change "USER $uid:$gid"
    --change 'WORKDIR /'
    --change 'EXPOSE 8080 7070'
    --change 'ENV RUST_BACKTRACE=1'
    "${env_changes[@]}"
)
import_image() {
    "$docker" import "${changes[@]}" "$@" --message "molt, assembled by deploy/build-image.sh" \
        "$tarball" "$tag" 2>&1
}
# molt drains and snapshots on SIGTERM. Daemons before Docker 23 refuse STOPSIGNAL in
# `import --change`; SIGTERM is their default stop signal anyway, so the image is the same.
if ! out=$(import_image --change 'STOPSIGNAL SIGTERM'); then
    if [[ $out == *"stopsignal is not a valid change command"* ]]; then
        say "this docker daemon takes no STOPSIGNAL on import; SIGTERM is its default anyway"
        out=$(import_image) || die "docker import failed: $out"
    else
        die "docker import failed: $out"
    fi
fi

# 4. Checks: the binary starts, and every library it and the plugins need resolves inside.
if [[ $verify == 1 ]]; then
    say "verify: docker run --rm $tag --help"
    if ! help=$("$docker" run --rm "$tag" --help 2>&1); then
        die "the image does not start: $help"
    fi
    if [[ -n $help ]]; then
        head -n 5 <<<"$help" >&2
    else
        say "(molt printed no usage: the binary is still a stub; it started and exited 0)"
    fi

    loader=$(grep -m1 '/ld-linux' <<<"$libs" || true)
    if [[ -n $loader ]]; then
        say "verify: the loader inside the image resolves molt's libraries"
        out=$("$docker" run --rm --entrypoint "$loader" "$tag" --list /usr/local/bin/molt 2>&1) ||
            die "inside the image, $loader --list /usr/local/bin/molt failed: $out"
        ! grep -q "not found" <<<"$out" || die "inside the image, molt misses libraries: $out"
        for plugin in "${plugins[@]}"; do
            plugin=$(readlink -f "$plugin")
            [[ -f $plugin ]] || die "--check-plugin $plugin: no such file"
            out=$("$docker" run --rm --entrypoint "$loader" -v "$plugin:/plugin.so:ro" "$tag" \
                --list /plugin.so 2>&1) || die "inside the image, $plugin does not load: $out"
            ! grep -q "not found" <<<"$out" || die "inside the image, $plugin misses libraries: $out"
            say "verify: $(basename "$plugin") finds all its libraries inside the image"
        done
    fi
fi

say "done: $tag ($(du -sh "$rootfs" | cut -f1) unpacked)"
