#!/usr/bin/env bash
# Set up everything the project needs in a virtual environment (default .venv): Python
# packages from setup.py's extras at the versions of constraints.txt and, when missing and
# running as root, Debian packages. Safe to run repeatedly: it does nothing when setup.py,
# constraints.txt and this script are unchanged and the extras asked for are installed.
set -euo pipefail

VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-train,plot,dev}
APT_PACKAGES=${APT_PACKAGES:-}
PYTHON=${PYTHON:-python3}

cd "$(dirname "$0")/.."

missing=()
for pkg in $APT_PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: please install these Debian packages: ${missing[*]}" >&2
        exit 1
    fi
fi

stamp="$VENV/.pynq-neuro-setup"
hash="$(cat setup.py constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ -x "$VENV/bin/python" ]; then
    read -r have_hash have_extras < "$stamp" || true
    covered=yes
    for extra in ${EXTRAS//,/ }; do
        case ",$have_extras," in *",$extra,"*) ;; *) covered=no ;; esac
    done
    if [ "$have_hash" = "$hash" ] && [ "$covered" = yes ]; then
        exit 0
    fi
    # keep what was installed before, add what is asked now
    EXTRAS="$(echo "$have_extras,$EXTRAS" | tr ',' '\n' | grep -v '^$' | sort -u | paste -sd, -)"
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "setup: installing pynq-neuro[$EXTRAS] into $VENV (versions: constraints.txt)"
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
        -e ".[$EXTRAS]" \
        > "$VENV/pip-install.log" 2>&1; then
    grep -v "is neither a file nor a directory" "$VENV/pip-install.log" >&2
    echo "setup: pip install failed (log: $VENV/pip-install.log)" >&2
    exit 1
fi
"$VENV/bin/python" -c "import pynq_neuro, numpy, torch"
echo "$hash $EXTRAS" > "$stamp"
