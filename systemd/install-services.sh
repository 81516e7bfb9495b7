#!/usr/bin/env bash
# Installs (or removes) the camera recorder and the S3 uploader as systemd services.
# Idempotent: run it again after `git pull` to update code, venv and units.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: sudo systemd/install-services.sh [options]

Installs from this checkout, on Debian, Ubuntu or Raspberry Pi OS:
  users video-recorder, s3-uploader   system accounts (no login shell) for the recorder
                              (and FFmpeg) and the uploader (and the viewer); both in the
                              group video-footage, which is all they share
  /opt/video-recorder         code + .venv, owned by root (the services cannot change it)
  /etc/video-recorder/recorder.env   the recorder's settings (cameras), owner video-recorder,
  /etc/video-recorder/uploader.env   the uploader's (bucket, keys), owner s3-uploader; mode
                              600; split from .env.example, or from an existing .env (kept
                              as .env.before-split, owner root), only if absent
  /var/lib/video-recorder     recorded data, logs, state (group video-footage, setgid)
  /etc/systemd/system         every systemd/*.service of the checkout, enabled (not started)

Options:
  --start          also (re)start the units after installing
  --with-viewer    also enable video-viewer.service (the footage web page); without it
                   the unit is installed but left disabled
  --uninstall      stop, disable and remove the units and /opt/video-recorder;
                   keeps /var/lib/video-recorder, /etc/video-recorder and the users
  --root DIR       install into DIR instead of / (staging or tests); skips apt,
                   useradd, chown and talking to a running systemd (also: ROOT=DIR,
                   --prefix DIR)
  --no-apt         do not install ffmpeg / python3-venv with apt-get
  --no-pip         create the venv but do not install requirements.txt into it (offline)
  -h, --help       this text

Environment: PYTHON (interpreter for the venv, default python3), ROOT (as --root).
Running code is not restarted on update unless --start is given.
EOF
}

# FFmpeg parses untrusted streams as the recorder's user: that user must not be able to read
# the bucket keys or the encryption password, so the uploader has its own user and settings.
RECORDER_USER=video-recorder
UPLOADER_USER=s3-uploader
SHARED_GROUP=video-footage
APT_PACKAGES=(ffmpeg python3-venv)
PYTHON=${PYTHON:-python3}
ROOT=${ROOT:-}
START=0
UNINSTALL=0
NO_APT=0
NO_PIP=0
WITH_VIEWER=0
VIEWER_UNIT=video-viewer.service

die() { echo "install-services: error: $*" >&2; exit 1; }
say() { echo "install-services: $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --start) START=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --no-apt) NO_APT=1 ;;
        --no-pip) NO_PIP=1 ;;
        --with-viewer) WITH_VIEWER=1 ;;
        --root|--prefix)
            [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a directory"
            ROOT=$2; shift ;;
        --root=*|--prefix=*) ROOT=${1#*=}; [ -n "$ROOT" ] || die "${1%%=*} needs a directory" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install-services: error: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$START" = 1 ] && [ "$UNINSTALL" = 1 ] && die "--start and --uninstall exclude each other"

# A fake root (anything but /) means: lay out files only, touch nothing system-wide.
if [ -n "$ROOT" ] && [ "$ROOT" != / ]; then
    mkdir -p "$ROOT" 2>/dev/null || die "cannot create root directory $ROOT"
    ROOT=$(cd "$ROOT" && pwd -P)
    FAKE_ROOT=1
else
    ROOT=""
    FAKE_ROOT=0
    [ "$(id -u)" = 0 ] || die "run as root (sudo $0), or use --root DIR for a staging install"
fi

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
APP=$ROOT/opt/video-recorder
VENV=$APP/.venv
ETC=$ROOT/etc/video-recorder
ENV_FILE=$ETC/.env                    # the single file of installs before the split
ENV_BACKUP=$ETC/.env.before-split
RECORDER_ENV=$ETC/recorder.env
UPLOADER_ENV=$ETC/uploader.env
DATA=$ROOT/var/lib/video-recorder
UNIT_DIR=$ROOT/etc/systemd/system
# Paths as the services see them (without ROOT): written into .env and messages.
DATA_REAL=/var/lib/video-recorder

# systemd is only driven for a real install on a machine booted with systemd (not in a
# container or chroot); a fake root gets its enable symlinks through `systemctl --root`.
if [ "$FAKE_ROOT" = 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    SYSTEMD=live
elif command -v systemctl >/dev/null; then
    SYSTEMD=offline
else
    SYSTEMD=none
fi

# ------------------------------------------------------------------ helpers
# Ownership only matters (and only works) on a real install; a fake root keeps the caller's.
own() {
    [ "$FAKE_ROOT" = 1 ] && return 0
    chown "$@"
}

units_in_checkout() {
    local u
    for u in "$SRC"/systemd/*.service; do
        [ -f "$u" ] && basename "$u"
    done
    return 0
}

systemctl_offline() {
    systemctl --root="${ROOT:-/}" "$@"
}

# DATA_DIR as the services will read it from the .env (last assignment, quotes and a trailing
# comment removed, no trailing slash); empty when unset.
env_data_dir() {
    local value
    value=$(sed -n 's/^[[:space:]]*DATA_DIR[[:space:]]*=[[:space:]]*//p' "$RECORDER_ENV" | tail -n1)
    value=$(printf '%s' "$value" | sed 's/[[:space:]]\{1,\}#.*$//; s/[[:space:]]*$//' | tr -d "\"'")
    [ "$value" = / ] || value=${value%/}
    printf '%s' "$value"
}

# Where a DATA_DIR outside /var/lib/video-recorder is allowed: a drop-in per unit adds it to
# ReadWritePaths= (the sandbox) and RequiresMountsFor= (start only once its disk is mounted,
# never record onto the empty mount point below it).
DROPIN_NAME=data-dir.conf
remove_data_dir_dropin() {
    local dir="$UNIT_DIR/$1.d"
    if [ -e "$dir/$DROPIN_NAME" ]; then
        rm -f "$dir/$DROPIN_NAME"
        rmdir "$dir" 2>/dev/null || true
        say "removed $dir/$DROPIN_NAME"
        return 0
    fi
    return 1
}

write_data_dir_dropin() {   # unit, data dir; returns 0 when the file changed
    local dir="$UNIT_DIR/$1.d" tmp escaped=${2//%/%%}
    tmp=$(mktemp)
    cat > "$tmp" <<EOF_DROPIN
# Written by install-services.sh from DATA_DIR in /etc/video-recorder/recorder.env: run it again
# after changing DATA_DIR. The disk must be mounted for the service to start.
[Unit]
RequiresMountsFor=$escaped

[Service]
ReadWritePaths=$escaped
EOF_DROPIN
    if cmp -s "$tmp" "$dir/$DROPIN_NAME"; then
        rm -f "$tmp"
        return 1
    fi
    install -d -m 755 "$dir"
    install -m 644 "$tmp" "$dir/$DROPIN_NAME"
    rm -f "$tmp"
    own root:root "$dir" "$dir/$DROPIN_NAME"
    say "installed $dir/$DROPIN_NAME (DATA_DIR $2 writable, its mount required)"
    return 0
}

# Why the units cannot use `data_dir` as DATA_DIR, or nothing when they can.
data_dir_problem() {
    case "$1" in
        /*[[:space:]]*) echo "it contains white space, which ReadWritePaths= would split" ;;
        /home|/home/*|/root|/root/*|/run/user|/run/user/*) echo "ProtectHome=yes hides it from the services" ;;
        /tmp|/tmp/*|/var/tmp|/var/tmp/*) echo "PrivateTmp=yes gives the services their own, empty $1" ;;
        /) echo "the whole file system cannot be the data directory" ;;
        /*) ;;
        *) echo "it is relative: the services would resolve it under /opt/video-recorder, which they cannot write; give an absolute path" ;;
    esac
}

# ------------------------------------------------------------------ uninstall
if [ "$UNINSTALL" = 1 ]; then
    # Units from the checkout plus those recorded at install time (the checkout may be newer).
    mapfile -t units < <( { units_in_checkout; cat "$APP/.installed-units" 2>/dev/null || true; } | sort -u)
    for unit in "${units[@]}"; do
        [ -n "$unit" ] || continue
        if [ -e "$UNIT_DIR/$unit" ]; then
            case "$SYSTEMD" in
                live) systemctl disable --now "$unit" || say "warning: could not stop/disable $unit" ;;
                offline) systemctl_offline disable "$unit" >/dev/null 2>&1 || true ;;
            esac
            rm -f "$UNIT_DIR/$unit"
            say "removed unit $unit"
        fi
        remove_data_dir_dropin "$unit" || true
    done
    if [ "$SYSTEMD" = live ]; then
        systemctl daemon-reload
        systemctl reset-failed "${units[@]}" 2>/dev/null || true
    elif [ "$FAKE_ROOT" = 0 ]; then
        say "systemd is not running here: if the units were running, stop them yourself"
    fi
    if [ -d "$APP" ]; then
        rm -rf "$APP"
        say "removed $APP (code and venv)"
    fi
    say "kept (remove by hand if you no longer need them):"
    say "  $DATA   recorded segments, logs, state"
    say "  $ETC   settings with camera passwords and keys"
    say "  users $RECORDER_USER, $UPLOADER_USER and group $SHARED_GROUP   (userdel $RECORDER_USER; userdel $UPLOADER_USER; groupdel $SHARED_GROUP)"
    exit 0
fi

# ------------------------------------------------------------------ install
for f in services/__main__.py requirements.txt .env.example; do
    [ -f "$SRC/$f" ] || die "$SRC/$f missing: run the script from a checkout of the project"
done
mapfile -t units < <(units_in_checkout)
[ "${#units[@]}" -gt 0 ] || die "no unit files in $SRC/systemd/"

# 1. System packages, only those missing.
if [ "$FAKE_ROOT" = 1 ] || [ "$NO_APT" = 1 ]; then
    :   # staging install or --no-apt: the system is not ours to change
elif ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    say "warning: not a Debian-like system; install ${APT_PACKAGES[*]} yourself"
else
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
fi

# 2. Service accounts: system users without login, each with its own group, both in the shared
# group (the units set it as their group; membership is for `sudo -u` with the commands).
if [ "$FAKE_ROOT" = 0 ]; then
    if ! getent group "$SHARED_GROUP" >/dev/null; then
        groupadd --system "$SHARED_GROUP"
        say "created group $SHARED_GROUP"
    fi
    nologin=$(command -v nologin || echo /usr/sbin/nologin)
    for user in "$RECORDER_USER" "$UPLOADER_USER"; do
        if ! getent group "$user" >/dev/null; then
            groupadd --system "$user"
            say "created group $user"
        fi
        if ! getent passwd "$user" >/dev/null; then
            useradd --system --gid "$user" --home-dir "$DATA_REAL" --no-create-home \
                --shell "$nologin" --comment "camera footage: $user" "$user"
            say "created user $user"
        fi
        if ! id -nG "$user" | tr ' ' '\n' | grep -qx "$SHARED_GROUP"; then
            usermod -a -G "$SHARED_GROUP" "$user"
            say "added $user to group $SHARED_GROUP"
        fi
    done
fi

# 3. Code: staged next to the target, then swapped in only where it differs, so that a
# re-run with unchanged code changes nothing and an update drops deleted modules.
install -d -m 755 "$APP"
own root:root "$APP"
stage=$(mktemp -d "$APP/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
items=(services requirements.txt README.md docs .env.example)
present=()
for item in "${items[@]}"; do
    [ -e "$SRC/$item" ] && present+=("$item")
done
tar -C "$SRC" --exclude=__pycache__ --exclude='*.pyc' -cf - "${present[@]}" \
    | tar -C "$stage" --no-same-owner -xf -
# Readable by all (the code holds no secrets), writable by root only.
chmod -R u=rwX,go=rX "$stage"
code_changed=0
for item in "${present[@]}"; do
    # Byte code written when someone runs the commands as root is not a difference.
    if ! diff -rq -x __pycache__ -x '*.pyc' "$stage/$item" "$APP/$item" >/dev/null 2>&1; then
        rm -rf "${APP:?}/$item"
        mv "$stage/$item" "$APP/$item"
        code_changed=1
    fi
done
own -R root:root "$APP"
if [ "$code_changed" = 1 ]; then say "code installed in $APP"; else say "code in $APP unchanged"; fi

# 4. Virtual environment; requirements are reinstalled only when requirements.txt changed.
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3)"
    venv_args=()
    [ "$NO_PIP" = 1 ] && venv_args+=(--without-pip)
    "$PYTHON" -m venv --clear "${venv_args[@]}" "$VENV" \
        || die "could not create $VENV (on Debian/Ubuntu: apt-get install python3-venv)"
    say "created $VENV"
    code_changed=1
fi
req_hash=$(sha256sum "$APP/requirements.txt" | cut -d' ' -f1)
if [ "$NO_PIP" = 1 ]; then
    say "--no-pip: requirements.txt not installed into $VENV"
elif [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$req_hash" ]; then
    if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        "$VENV/bin/python" -m ensurepip --upgrade >/dev/null \
            || die "$VENV has no pip (recreate it: rm -rf $VENV and run again)"
    fi
    say "installing requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$APP/requirements.txt" \
        || die "pip install failed (network? see the pip output above)"
    echo "$req_hash" > "$VENV/.requirements.sha256"
    code_changed=1
    # Fail here, not at the first service start, if the code cannot even be imported.
    (cd "$APP" && "$VENV/bin/python" -B -m services --help >/dev/null) \
        || die "the installed code does not start: $VENV/bin/python -m services --help failed"
fi
own -R root:root "$VENV"
chmod -R go-w "$VENV"

# 5. Settings: one file per daemon, each readable by its user only (mode 600; under
# ProtectSystem=strict neither service can modify /etc). Never overwritten; an existing single
# .env is split by each key's used_by (services/common/env_split.py) and kept as a backup.
install -d -m 750 "$ETC"
own "root:$SHARED_GROUP" "$ETC"
chmod 750 "$ETC"
# Owner and mode of a settings file; says so when it changes them.
secure_env() {   # file, user
    local perm
    perm=$(stat -c '%a' "$1")
    if [ $((8#$perm & 8#077)) -ne 0 ]; then
        chmod 600 "$1"
        say "warning: $1 was readable by other users (mode $perm); now 600"
    fi
    if [ "$FAKE_ROOT" = 0 ] && [ "$(stat -c '%U' "$1")" != "$2" ]; then
        chown "$2:$2" "$1"
        say "made $1 readable by $2 only (owner $2, mode 600)"
    fi
}
split_env() {   # source file, its name in messages
    local tmp_rec tmp_upl dropped
    tmp_rec=$(mktemp "$ETC/.recorder.env.XXXXXX")   # mode 600 from the start
    tmp_upl=$(mktemp "$ETC/.uploader.env.XXXXXX")
    dropped=$(cd "$APP" && "$VENV/bin/python" -B -m services.common.env_split "$1" "$tmp_rec" "$tmp_upl") \
        || { rm -f "$tmp_rec" "$tmp_upl"; die "could not split $1"; }
    own "$RECORDER_USER:$RECORDER_USER" "$tmp_rec"
    own "$UPLOADER_USER:$UPLOADER_USER" "$tmp_upl"
    mv "$tmp_rec" "$RECORDER_ENV"
    mv "$tmp_upl" "$UPLOADER_ENV"
    say "split $2 into $RECORDER_ENV (owner $RECORDER_USER) and $UPLOADER_ENV (owner $UPLOADER_USER)"
    [ -z "$dropped" ] || say "warning: keys no setting declares were left out of both (see $ENV_BACKUP): $dropped"
}
if [ -e "$RECORDER_ENV" ] || [ -e "$UPLOADER_ENV" ]; then
    for pair in "$RECORDER_ENV:$RECORDER_USER" "$UPLOADER_ENV:$UPLOADER_USER"; do
        if [ -e "${pair%%:*}" ]; then
            say "keeping existing ${pair%%:*}"
            secure_env "${pair%%:*}" "${pair##*:}"
        else
            say "warning: ${pair%%:*} is missing: the ${pair##*:} service will not start"
        fi
    done
    if [ -e "$ENV_FILE" ]; then
        say "warning: $ENV_FILE is no longer read by the units; move it away (its keys belong in $RECORDER_ENV or $UPLOADER_ENV)"
    fi
elif [ -e "$ENV_FILE" ]; then
    secure_env "$ENV_FILE" root
    split_env "$ENV_FILE" "$ENV_FILE"
    mv "$ENV_FILE" "$ENV_BACKUP"
    say "kept the single file as $ENV_BACKUP (owner root): delete it once the services run"
else
    tmp=$(mktemp "$ETC/.env.XXXXXX")
    sed "s|^DATA_DIR=.*|DATA_DIR=$DATA_REAL|" "$SRC/.env.example" > "$tmp"
    grep -q '^DATA_DIR=' "$tmp" || echo "DATA_DIR=$DATA_REAL" >> "$tmp"
    split_env "$tmp" .env.example
    rm -f "$tmp"
fi

# 6. Data directory: the only place the sandboxed services may write (ReadWritePaths=).
# Every folder belongs to the shared group with setgid, so what one daemon creates the other can
# read. completed/ is the hand-off: the recorder moves segments in, the uploader moves them out
# to uploaded/ (or deletes them), and both need write on it; no sticky bit there, it would stop
# the uploader from moving the recorder's files. state/ and logs/ are shared but sticky: each
# daemon writes its own files and lock and cannot remove the other's. Migration from one user:
# the uploader's files change owner, every file gets the shared group.
layout_data_dir() {   # directory
    local d=$1 dir
    install -d "$d" "$d/videos" "$d/videos/recordings" "$d/videos/completed" "$d/videos/uploaded" \
        "$d/logs" "$d/state"
    chmod 2750 "$d" "$d/videos"
    chmod 2770 "$d/videos/recordings" "$d/videos/completed" "$d/videos/uploaded"
    chmod 3770 "$d/logs" "$d/state"
    [ "$FAKE_ROOT" = 1 ] && return 0
    chgrp -R "$SHARED_GROUP" "$d"
    chown "$RECORDER_USER" "$d" "$d/videos" "$d/videos/recordings" "$d/videos/completed" "$d/logs" "$d/state"
    chown -R "$UPLOADER_USER" "$d/videos/uploaded"
    find "$d/state" "$d/logs" -mindepth 1 -maxdepth 1 \( -name 'uploader.*' -o -name 'multipart-uploads*' \
        -o -name 'source-index.sqlite3*' -o -name 's3-uploader.log*' \) -exec chown -R "$UPLOADER_USER" {} +
    # Segments must stay group-readable for the uploader (files were 640 under one user already).
    find "$d/videos" -type f -exec chmod g+r {} +
}
layout_data_dir "$DATA"

# 7. Units.
install -d -m 755 "$UNIT_DIR"
units_changed=0
for unit in "${units[@]}"; do
    if ! cmp -s "$SRC/systemd/$unit" "$UNIT_DIR/$unit"; then
        install -m 644 "$SRC/systemd/$unit" "$UNIT_DIR/$unit"
        own root:root "$UNIT_DIR/$unit"
        say "installed $UNIT_DIR/$unit"
        units_changed=1
    fi
done
data_dir=$(env_data_dir)
problem=""
[ -z "$data_dir" ] || [ "$data_dir" = "$DATA_REAL" ] || problem=$(data_dir_problem "$data_dir")
for unit in "${units[@]}"; do
    if [ -z "$data_dir" ] || [ "$data_dir" = "$DATA_REAL" ] || [ -n "$problem" ]; then
        if remove_data_dir_dropin "$unit"; then units_changed=1; fi
    elif write_data_dir_dropin "$unit" "$data_dir"; then
        units_changed=1
    fi
done
if [ -z "$data_dir" ]; then
    say "warning: DATA_DIR is not set in $RECORDER_ENV: the services would use ./data under /opt/video-recorder, which they cannot write; set DATA_DIR=$DATA_REAL"
elif [ -n "$problem" ]; then
    say "warning: DATA_DIR in $RECORDER_ENV is '$data_dir', but $problem; the units may only write to $DATA_REAL"
elif [ "$data_dir" != "$DATA_REAL" ] && [ "$FAKE_ROOT" = 0 ]; then
    if [ -d "$data_dir" ] && layout_data_dir "$data_dir" 2>/dev/null; then
        say "DATA_DIR $data_dir laid out for $RECORDER_USER and $UPLOADER_USER (group $SHARED_GROUP)"
    else
        # exFAT/FAT have no owners or modes: one owner for all, so the split of users cannot hold there.
        say "warning: could not set owners and modes in DATA_DIR $data_dir (missing, or exFAT/FAT: mount it with uid=$RECORDER_USER,gid=$SHARED_GROUP,umask=0007)"
    fi
fi
printf '%s\n' "${units[@]}" > "$APP/.installed-units"
# The units to enable (and start): the viewer only when asked for.
enabled=()
for unit in "${units[@]}"; do
    [ "$unit" = "$VIEWER_UNIT" ] && [ "$WITH_VIEWER" = 0 ] && continue
    enabled+=("$unit")
done
if [ "$WITH_VIEWER" = 0 ] && printf '%s\n' "${units[@]}" | grep -qx "$VIEWER_UNIT"; then
    say "$VIEWER_UNIT installed, not enabled (--with-viewer enables it; see docs/operations.md)"
fi
chmod 644 "$APP/.installed-units"

case "$SYSTEMD" in
    live)
        [ "$units_changed" = 1 ] && systemctl daemon-reload
        systemctl enable --quiet "${enabled[@]}"
        say "enabled ${enabled[*]}"
        if [ "$START" = 1 ]; then
            systemctl restart "${enabled[@]}"
            say "started ${enabled[*]}"
        elif [ "$code_changed" = 1 ] || [ "$units_changed" = 1 ]; then
            say "to (re)start: systemctl restart ${enabled[*]}  (running units keep the old code until then)"
        fi
        ;;
    offline)
        # Enabling is just symlinks, which systemctl can create without a running systemd.
        systemctl_offline enable "${enabled[@]}" >/dev/null 2>&1 \
            || say "warning: could not enable ${enabled[*]} (systemctl --root=${ROOT:-/} enable failed)"
        if [ "$FAKE_ROOT" = 0 ]; then
            say "systemd is not running here (no /run/systemd/system): units enabled for the next boot, nothing started"
        fi
        [ "$START" = 1 ] && say "--start ignored: no running systemd to start the units with"
        ;;
    none)
        say "systemctl not found: units copied but not enabled"
        ;;
esac
say "done. Next: edit $RECORDER_ENV (cameras) and $UPLOADER_ENV (bucket), then: systemctl restart ${enabled[*]}"
