#!/usr/bin/env bash
# Builds postward's binary RPM offline and checks what is in it.
#   contrib/rpm/build.sh [TOPDIR]        (default target/rpm)
# Sources: the tracked files of this checkout (uncommitted changes included) and a
# `cargo vendor` tarball; rpmbuild then runs without network (unshare -n) when it can.
# Needs: rpm (rpmbuild, rpm2cpio), cpio, cargo. On Debian rpm's dependency database is
# empty, hence --nodeps.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
top=$(realpath -m "${1:-target/rpm}")
rm -rf "$top"
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,vendor-tmp}

echo "== sources for postward $version"
git ls-files -z | tar --null -T - --transform "s,^,postward-$version/," -czf "$top/SOURCES/postward-$version.tar.gz"
cargo vendor --locked --quiet "$top/vendor-tmp/vendor" >/dev/null
tar -czf "$top/SOURCES/postward-$version-vendor.tar.gz" -C "$top/vendor-tmp" vendor
rm -rf "$top/vendor-tmp"
cp contrib/rpm/postward.spec "$top/SPECS/"

echo "== rpmbuild -bb (offline)"
build=(rpmbuild -bb --nodeps --define "_topdir $top" --define "pw_version $version" "$top/SPECS/postward.spec")
if unshare -n true 2>/dev/null; then
    unshare -n "${build[@]}" >"$top/rpmbuild.log" 2>&1 || { tail -40 "$top/rpmbuild.log"; exit 1; }
else
    echo "(unshare -n not permitted here: building with the network present, still --frozen/offline)"
    "${build[@]}" >"$top/rpmbuild.log" 2>&1 || { tail -40 "$top/rpmbuild.log"; exit 1; }
fi
rpm_file=$(ls "$top"/RPMS/*/postward-"$version"-*.rpm)
echo "built $rpm_file ($(du -h "$rpm_file" | cut -f1))"

echo "== checks"
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
files=$(rpm -qlp "$rpm_file")
echo "$files"
for want in /usr/sbin/postward-policyd /usr/sbin/postward-greyd /usr/sbin/postward-authd \
    /etc/postward/policyd.toml /etc/postward/greyd.toml /etc/postward/authd.toml \
    /usr/lib/systemd/system/postward-greyd.service /usr/lib/systemd/system/postward-authd.socket \
    /etc/sysconfig/postward-greyd /etc/pam.d/postward-authd /var/lib/postward \
    /usr/share/man/man8/postward-authd.8 /usr/share/man/man5/postward-greyd.toml.5 \
    /etc/fail2ban/filter.d/postward-authd.conf /usr/lib/sysusers.d/postward.conf \
    /usr/lib/tmpfiles.d/postward.conf /var/lib/postward-authd; do
    grep -q "^$want" <<<"$files" || fail "$want is not in the package"
done
configs=$(rpm -qcp "$rpm_file")
for want in /etc/postward/policyd.toml /etc/postward/greyd.toml /etc/postward/authd.toml /etc/sysconfig/postward-authd; do
    grep -qx "$want" <<<"$configs" || fail "$want is not a %config file"
done
# noreplace: rpm's file flags, bit 16 (RPMFILE_NOREPLACE) next to bit 1 (RPMFILE_CONFIG).
rpm -qp --qf '[%{FILEFLAGS} %{FILENAMES}\n]' "$rpm_file" | awk '$2 ~ /^\/etc\/postward\// && $1 != 0 && and($1, 16) == 0 {print; bad=1} END {exit bad}' \
    || fail "a config file under /etc/postward is not %config(noreplace)"
rpm -qp --scripts "$rpm_file" | grep -q 'useradd -r -g \$name' || fail "no per-daemon system users created in %pre"
# Each daemon's secrets and state belong to its own account alone.
owners=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm_file")
for want in "-rw-r----- root:postward-authd /etc/postward/authd.toml" \
    "-rw-r----- root:postward-authd /etc/postward/passwd" \
    "-rw-r----- root:postward-greyd /etc/postward/greyd.toml" \
    "-rw-r----- root:postward-policyd /etc/postward/policyd.toml" \
    "drwxr-x--- postward-greyd:postward-greyd /var/lib/postward" \
    "drwx------ postward-authd:postward-authd /var/lib/postward-authd"; do
    grep -qxF -- "$want" <<<"$owners" || fail "not in the package as: $want"
done
for d in policyd greyd authd; do
    grep -q "^u postward-$d " contrib/rpm/postward.sysusers || fail "postward-$d missing from postward.sysusers"
done
root=$(mktemp -d)
(cd "$root" && rpm2cpio "$rpm_file" | cpio -idm --quiet)
for d in policyd greyd authd; do
    "$root/usr/sbin/postward-$d" --version || fail "postward-$d from the package does not run"
    # --check-config also checks the accounts and files a configuration names, which exist
    # on an installed system (sysusers, the package's files) but not on this build host:
    # the check runs on a copy with those pointed at what is here.
    sed -e 's|^user = .*|user = "root"|' -e 's|^socket_group = .*|socket_group = "root"|' \
        -e "s|\"/etc/postward/|\"$root/etc/postward/|g" "$root/etc/postward/$d.toml" >"$root/check-$d.toml"
    "$root/usr/sbin/postward-$d" --check-config --config "$root/check-$d.toml" >"$root/check-$d.log" 2>&1 \
        || { cat "$root/check-$d.log"; fail "the packaged $d.toml does not pass --check-config"; }
done
rm -rf "$root"
echo "== rpm ok: $rpm_file"
