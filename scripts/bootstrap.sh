#!/usr/bin/env bash
# Set-up helper for ./run: Python 3.11 + .venv, RabbitMQ (with management and
# prometheus plugins), PostgreSQL for the tests, fonts and poppler, the portal's
# htmx (npm), Chromium for the browser tests, Prometheus (promtool) for the alert tests.
#
# Sourced by ./run, which then calls `bootstrap MODE` (MODE: app | tests).
# Can also be run on its own: `bash scripts/bootstrap.sh [app|tests]`.
#
# Every step is idempotent and prints one `[setup] ...` line; apt-get is only
# used when something is missing, and `apt-get update` runs at most once.

# ---------------------------------------------------------------- helpers ---

say()  { printf '[setup] %s\n' "$*" >&2; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# The Debian service tools live in sbin, which a non-root PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac
export PATH
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

TB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$TB_ROOT/.venv"
STAMP="$VENV/.tongban-installed"
APT_UPDATED=0
PG_INSTALLED_BY_US=0

# Privileges: run as root directly; otherwise through sudo if it needs no
# password (CI has no stdin), or may prompt when we have a terminal.
SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
    if sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    elif [[ -t 0 ]]; then
        SUDO=(sudo)
    fi
fi
can_root() { [[ $(id -u) -eq 0 || ${#SUDO[@]} -gt 0 ]]; }
as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif [[ ${#SUDO[@]} -gt 0 ]]; then "${SUDO[@]}" "$@"
    else return 1
    fi
}
can_apt() { can_root && command -v apt-get >/dev/null 2>&1; }

# apt_install PKG... : non-interactive install; returns non-zero (never exits)
# so callers decide whether a failure is fatal.
apt_install() {
    can_apt || return 1
    local log
    log="$(mktemp)"
    if [[ $APT_UPDATED -eq 0 ]]; then
        say "apt-get update"
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1; then
            tail -n 15 "$log" >&2; rm -f "$log"; return 1
        fi
        APT_UPDATED=1
    fi
    say "apt-get install -y $*"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold \
            --no-install-recommends "$@" >"$log" 2>&1; then
        tail -n 15 "$log" >&2; rm -f "$log"; return 1
    fi
    rm -f "$log"
}

# port_open HOST PORT : a plain TCP connect, no client tools needed.
port_open() {
    # shellcheck disable=SC2016  # expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# url_host URL / url_port URL DEFAULT : enough URL parsing for amqp:// and
# postgresql:// URLs (user:pass@host:port/path, IPv6 in brackets).
url_hostport() {
    local rest="${1#*://}"
    rest="${rest%%/*}"; rest="${rest%%\?*}"; rest="${rest##*@}"
    printf '%s' "$rest"
}
url_host() {
    local hp; hp="$(url_hostport "$1")"
    if [[ $hp == \[* ]]; then hp="${hp#[}"; printf '%s' "${hp%%]*}"
    else printf '%s' "${hp%%:*}"
    fi
}
url_port() {
    local hp port; hp="$(url_hostport "$1")"
    if [[ $hp == \[* ]]; then hp="${hp#*]}"; else hp="${hp#"${hp%%:*}"}"; fi
    port="${hp#:}"
    printf '%s' "${port:-$2}"
}
# redact_url URL : hide a password before printing a URL.
redact_url() { sed -E 's#^([a-z0-9+.-]+://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }
is_local_host() {
    case "$1" in ''|localhost|127.*|::1|0.0.0.0) return 0 ;; *) return 1 ;; esac
}

# http_ok URL USER:PASS : does the URL answer 2xx (curl, else Python)?
http_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 5 -u "$2" "$1" 2>/dev/null
    else
        "$VENV/bin/python" - "$1" "$2" <<'EOF' 2>/dev/null
import base64, sys, urllib.request
req = urllib.request.Request(sys.argv[1])
req.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[2].encode()).decode())
urllib.request.urlopen(req, timeout=5).read()
EOF
    fi
}

# wait_for SECONDS CMD... : poll CMD about once a second, for at most SECONDS.
wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do
        ((SECONDS < end)) || return 1
        sleep 1
    done
}

# -------------------------------------------------------------- 1. Python ---

py_is_311() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' >/dev/null 2>&1
}
py_version() { "$1" -c 'import platform; print(platform.python_version())'; }

find_python() {
    local c
    for c in python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 && py_is_311 "$c"; then
            PYTHON="$(command -v "$c")"
            return 0
        fi
    done
    return 1
}

ensure_python() {
    if ! find_python; then
        # Debian 12's python3 is 3.11.
        apt_install python3 python3-venv python3-dev || true
        find_python || die "Python 3.11 is required (pyproject: >=3.11,<3.12). Install it, e.g. on Debian 12: apt-get install -y python3 python3-venv python3-dev (or put any python3.11 on PATH)."
    fi
    say "Python $(py_version "$PYTHON") ($PYTHON)"
}

# ----------------------------------------------------------- 2. virtualenv ---

venv_ok() {
    [[ -x $VENV/bin/python ]] && py_is_311 "$VENV/bin/python" \
        && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

# pip prints harmless warnings about the machine's extra local index
# locations (e.g. /opt/pypi-more) that do not hold a given package: hide them.
pip_quiet() {
    local -
    set -o pipefail   # the filter always succeeds; pip's status decides
    "$VENV/bin/python" -m pip "$@" 2>&1 \
        | { grep -v -E "^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$" || true; }
}

ensure_venv() {
    if venv_ok; then
        say "Python $(py_version "$VENV/bin/python") in .venv"
    else
        if [[ -e $VENV ]]; then
            # Only replace a venv we may write to (e.g. not another user's
            # whose base Python we merely cannot run).
            [[ -w $VENV && -w $VENV/bin ]] \
                || die ".venv exists but its Python does not run for $(id -un) and it is not writable; run as its owner or remove it (rm -rf .venv)"
            say ".venv is unusable (Python gone or not 3.11): recreating it"
        fi
        ensure_python
        rm -rf "$VENV"
        say "creating .venv"
        if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
            # Debian ships venv/ensurepip separately, in python3-venv.
            rm -rf "$VENV"
            apt_install python3-venv || true
            "$PYTHON" -m venv "$VENV" \
                || die "could not create a virtualenv with $PYTHON; on Debian: apt-get install -y python3-venv"
        fi
        pip_quiet install -q --upgrade pip || die "upgrading pip in .venv failed"
    fi

    local want have
    want="$(sha256sum "$TB_ROOT/pyproject.toml" | cut -d' ' -f1)"
    have="$(cat "$STAMP" 2>/dev/null || true)"
    if [[ $want == "$have" ]]; then
        say "tongban[test] installed in .venv (pyproject.toml unchanged)"
        return 0
    fi
    say "pip install -e '.[test]' into .venv"
    rm -f "$STAMP"
    # PYTHONWARNINGS quiets setuptools' generic "Editable installation" notice.
    (cd "$TB_ROOT" && PYTHONWARNINGS=ignore pip_quiet install -q -e '.[test]') \
        || die "pip install -e '.[test]' failed (see the messages above)"
    printf '%s\n' "$want" >"$STAMP"
}

# ------------------------------------------------------------- 3. RabbitMQ ---

AMQP_PORT=5672

rabbit_installed() { command -v rabbitmq-server >/dev/null 2>&1; }
rabbit_alive() {
    { can_root && command -v rabbitmq-diagnostics >/dev/null 2>&1 \
        && as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; } \
        || port_open 127.0.0.1 "$AMQP_PORT"
}
systemd_is_init() { [[ -d /run/systemd/system ]]; }

start_rabbit() {
    say "starting RabbitMQ"
    if systemd_is_init; then
        as_root systemctl start rabbitmq-server >/dev/null 2>&1 || true
    else
        # Every quorum queue holds file handles, and a broker whose budget is spent stalls (even its own
        # boot, recovering its queues): start it with the open-files hard limit (at most 65536), not the
        # shell's 1024. The Debian wrapper switches user through `su`, whose PAM session sets the limit
        # back: as root, switch with setpriv, which keeps it.
        (
            local hard
            hard="$(ulimit -Hn)"
            [[ $hard == unlimited || $hard -gt 65536 ]] && hard=65536
            ulimit -n "$hard" 2>/dev/null || true
            if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null && id rabbitmq >/dev/null 2>&1 \
                && [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
                cd /var/lib/rabbitmq && HOME=/var/lib/rabbitmq setpriv --reuid rabbitmq --regid rabbitmq \
                    --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server -detached
            else
                as_root rabbitmq-server -detached
            fi
        ) >/dev/null 2>&1 || true
    fi
    wait_for 60 rabbit_alive \
        || die "RabbitMQ did not answer within 60 s; see /var/log/rabbitmq/"
}

# A whole restart of this machine's broker (the chaos run's fault): stop the node, start it as above,
# wait until it has booted (its queues recovered) and raise its file-handle budget again.
restart_rabbit() {
    can_root || die "restarting RabbitMQ needs root"
    as_root rabbitmqctl -q shutdown >/dev/null 2>&1 || true
    start_rabbit
    as_root rabbitmqctl -q await_startup --timeout 300 >/dev/null 2>&1 \
        || die "RabbitMQ did not finish booting within 300 s; see /var/log/rabbitmq/"
    ensure_rabbit_file_handles
}

ensure_rabbitmq() {
    local url="${TONGBAN_AMQP_URL:-}" host
    if [[ -n $url ]]; then
        host="$(url_host "$url")"
        if ! is_local_host "$host"; then
            say "RabbitMQ: using $host from TONGBAN_AMQP_URL (no local broker management)"
            return 0
        fi
        AMQP_PORT="$(url_port "$url" 5672)"
    fi

    if rabbit_alive; then
        say "RabbitMQ running"
    elif rabbit_installed; then
        can_root || die "RabbitMQ is installed but stopped; start it as root: rabbitmq-server -detached (or systemctl start rabbitmq-server), or set TONGBAN_AMQP_URL to a reachable broker"
        start_rabbit
    elif can_apt; then
        apt_install rabbitmq-server || die "installing rabbitmq-server failed"
        # The package may already have started it (init script).
        rabbit_alive || start_rabbit
        say "RabbitMQ installed and running"
    else
        die "RabbitMQ is not installed. As root run: apt-get update && apt-get install -y rabbitmq-server && rabbitmq-server -detached -- or set TONGBAN_AMQP_URL=amqp://USER:PASS@HOST:5672/ to a reachable broker"
    fi

    ensure_rabbit_plugins
    ensure_rabbit_file_handles
}

# RabbitMQ budgets file handles from its open-files limit at start (927 under the usual 1024) and
# counts a quorum queue's reservations against it; a deployment's registry has ~110 quorum queues,
# and once the budget is spent every new connection stalls. Most reservations are never opened, so
# a larger budget is safe; it lasts until the broker restarts (this runs before every `./run`).
RABBIT_FILE_HANDLES=8192
ensure_rabbit_file_handles() {
    can_root && command -v rabbitmqctl >/dev/null 2>&1 || return 0
    local limit
    limit="$(as_root rabbitmqctl -q eval 'proplists:get_value(total_limit, file_handle_cache:info([total_limit])).' 2>/dev/null || true)"
    [[ $limit =~ ^[0-9]+$ ]] || return 0
    if (( limit < RABBIT_FILE_HANDLES )); then
        as_root rabbitmqctl -q eval "file_handle_cache:set_limit($RABBIT_FILE_HANDLES)." >/dev/null 2>&1 \
            && say "RabbitMQ file-handle budget raised from $limit to $RABBIT_FILE_HANDLES (room for quorum queues)"
    fi
}

ensure_rabbit_plugins() {
    local api=http://127.0.0.1:15672/api/overview
    local enabled p missing=()
    if can_root; then
        enabled="$(as_root rabbitmq-plugins list -q -e -m 2>/dev/null || true)"
        for p in rabbitmq_management rabbitmq_prometheus; do
            grep -qx "$p" <<<"$enabled" || missing+=("$p")
        done
        if [[ ${#missing[@]} -gt 0 ]]; then
            say "enabling RabbitMQ plugins: ${missing[*]}"
            as_root rabbitmq-plugins enable --quiet "${missing[@]}" >/dev/null \
                || die "rabbitmq-plugins enable ${missing[*]} failed"
        else
            say "RabbitMQ plugins rabbitmq_management, rabbitmq_prometheus enabled"
        fi
    elif ! http_ok "$api" guest:guest; then
        die "cannot enable the RabbitMQ management plugin without root; as root run: rabbitmq-plugins enable rabbitmq_management rabbitmq_prometheus"
    fi

    if http_ok "$api" guest:guest; then
        say "RabbitMQ management API answering on 127.0.0.1:15672"
        return 0
    fi
    say "waiting for the RabbitMQ management API (127.0.0.1:15672)"
    wait_for 60 http_ok "$api" guest:guest \
        || die "RabbitMQ management API did not answer on $api with guest:guest within 60 s"
}

# ----------------------------------------------------------- 4. PostgreSQL ---

PG_DEFAULT_URL=postgresql://postgres@127.0.0.1:5432/postgres

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1
    else
        port_open "$PG_HOST" "$PG_PORT"
    fi
}
# Debian keeps one directory per installed major version here.
# shellcheck disable=SC2012
pg_version() { ls /etc/postgresql 2>/dev/null | head -1; }

start_postgres() {
    local ver; ver="$(pg_version)"
    say "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 \
        || as_root service postgresql start >/dev/null 2>&1 || true
    wait_for 30 pg_ready || true
}

# Only for a cluster this script just installed: let the tests in as the
# postgres role over TCP without a password. Existing installations' auth is
# never touched.
trust_local_tcp() {
    local ver hba line='host all all 127.0.0.1/32 trust'
    ver="$(pg_version)"
    hba="/etc/postgresql/$ver/main/pg_hba.conf"
    [[ -f $hba ]] || return 0
    if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        say "pg_hba.conf: $line (new local test cluster)"
        # First matching line wins, so put it at the top.
        as_root sed -i "1i $line  # added by tongban ./run" "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main reload >/dev/null 2>&1 \
        || as_root service postgresql reload >/dev/null 2>&1 || true
}

pg_can_connect() {
    PG_ERR="$("$VENV/bin/python" - "$TONGBAN_TEST_PG_URL" 2>&1 <<'EOF'
import sys
import psycopg2
try:
    psycopg2.connect(sys.argv[1], connect_timeout=5).close()
except psycopg2.Error as exc:
    sys.exit(str(exc).strip())
EOF
)"
}

ensure_postgres() {
    export TONGBAN_TEST_PG_URL="${TONGBAN_TEST_PG_URL:-$PG_DEFAULT_URL}"
    PG_HOST="$(url_host "$TONGBAN_TEST_PG_URL")"; PG_HOST="${PG_HOST:-127.0.0.1}"
    PG_PORT="$(url_port "$TONGBAN_TEST_PG_URL" 5432)"
    local fix="set TONGBAN_TEST_PG_URL=postgresql://USER[:PASS]@HOST:PORT/DB to a server the tests can use"

    if pg_ready; then
        say "PostgreSQL answering on $PG_HOST:$PG_PORT"
    elif ! is_local_host "$PG_HOST"; then
        die "PostgreSQL at $PG_HOST:$PG_PORT (TONGBAN_TEST_PG_URL) does not answer"
    elif [[ -n $(pg_version) ]]; then
        can_root || die "PostgreSQL is installed but stopped; as root run: pg_ctlcluster $(pg_version) main start -- or $fix"
        start_postgres
    elif can_apt; then
        apt_install postgresql || die "installing postgresql failed"
        PG_INSTALLED_BY_US=1
        pg_ready || start_postgres
        say "PostgreSQL $(pg_version) installed"
    else
        die "PostgreSQL is not installed. As root run: apt-get update && apt-get install -y postgresql -- or $fix"
    fi

    if [[ $PG_INSTALLED_BY_US -eq 1 ]]; then
        trust_local_tcp
        wait_for 15 pg_ready || true
    fi
    pg_ready || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT; start it (pg_ctlcluster $(pg_version) main start) or $fix"

    # Answering is not enough: the tests must be able to log in.
    if ! wait_for 5 pg_can_connect; then
        printf '%s\n' "$PG_ERR" >&2
        die "PostgreSQL answers, but connecting to $(redact_url "$TONGBAN_TEST_PG_URL") failed. This script never changes an existing server's authentication: allow it (e.g. pg_hba.conf: host all all 127.0.0.1/32 trust) or $fix"
    fi
}

# ------------------------------------------------------ 5. fonts, poppler ---


# PDF notices embed a TrueType CJK font (reportlab cannot use CFF fonts such as Noto CJK);
# services/intake/notices.py looks for these files, in this order.
CJK_TRUETYPE_FONTS=(
    /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
    /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
    /usr/share/fonts/truetype/arphic/uming.ttc
    /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf
)

truetype_cjk_font() {
    local f
    if [[ -n ${TONGBAN_CJK_FONT:-} && -f $TONGBAN_CJK_FONT ]]; then
        printf '%s' "$TONGBAN_CJK_FONT"; return 0
    fi
    for f in "${CJK_TRUETYPE_FONTS[@]}"; do
        [[ -f $f ]] && { printf '%s' "$f"; return 0; }
    done
    return 1
}

ensure_fonts() {
    local f
    if f="$(truetype_cjk_font)"; then
        say "Chinese font: $f"
        return 0
    fi
    if apt_install fonts-wqy-microhei && f="$(truetype_cjk_font)"; then
        say "Chinese font installed: $f"
        return 0
    fi
    # Not fatal for the demo; PDF notices fail with a message naming the package.
    warn "no TrueType Chinese font: PDF notices cannot be rendered. As root: apt-get install -y fonts-wqy-microhei"
}

# ensure_tool WHAT PACKAGE NEEDED_BY CHECK... : the tool there (CHECK succeeds), else installed from Debian's
# PACKAGE. Not fatal for the set-up when neither: the tests that need it fail saying what is missing.
ensure_tool() {
    local what=$1 package=$2 needed_by=$3
    shift 3
    if "$@"; then
        say "$what present"
    elif apt_install "$package" && "$@"; then
        say "$what installed ($package)"
    else
        warn "$what missing: $needed_by need it. As root: apt-get install -y $package"
    fi
}

has_command() { command -v "$1" >/dev/null 2>&1; }
is_executable() { [[ -x $1 ]]; }

ensure_poppler() { ensure_tool pdftoppm poppler-utils "the PDF tests" has_command pdftoppm; }

# The deployment tests build the generated kustomize overlay with `kubectl kustomize`. Any kubectl does (the
# overlay keeps to what kustomize v2 reads); Debian's comes with kubernetes-client.
ensure_kubectl() { ensure_tool kubectl kubernetes-client "the deployment tests" has_command kubectl; }

# The browser tests (tests/browser/) drive Debian's Chromium through Playwright; no browser download.
CHROMIUM="${TONGBAN_CHROMIUM:-/usr/bin/chromium}"

ensure_chromium() {
    ensure_tool "Chromium ($CHROMIUM, or set TONGBAN_CHROMIUM)" chromium "the browser tests" is_executable "$CHROMIUM"
}

# The alert rule tests (promtool check/test rules) and the scrape test (a real Prometheus started by the test)
# use Debian's `prometheus` package: /usr/bin/prometheus and /usr/bin/promtool.
PROMETHEUS="${TONGBAN_PROMETHEUS:-/usr/bin/prometheus}"

prometheus_tools() { [[ -x $PROMETHEUS ]] && has_command promtool; }

ensure_prometheus() {
    ensure_tool "Prometheus ($PROMETHEUS, promtool)" prometheus "the alert rule and scrape tests" prometheus_tools
}

# The portal serves htmx from its npm package (services/portal/static/package.json); the pages work
# without it, so a failure here only warns. Reinstalled when package-lock.json changes.
PORTAL_STATIC="$TB_ROOT/services/portal/static"
PORTAL_NPM_STAMP="$PORTAL_STATIC/node_modules/.tongban-lock-sha256"

ensure_portal_npm() {
    local want have log
    [[ -f $PORTAL_STATIC/package-lock.json ]] || return 0
    want="$(sha256sum "$PORTAL_STATIC/package-lock.json" | cut -d' ' -f1)"
    have="$(cat "$PORTAL_NPM_STAMP" 2>/dev/null || true)"
    if [[ -d $PORTAL_STATIC/node_modules/htmx.org && $want == "$have" ]]; then
        say "portal htmx installed (package-lock.json unchanged)"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1 && ! { apt_install npm && command -v npm >/dev/null 2>&1; }; then
        warn "npm missing: the portal's pages work, without htmx. As root: apt-get install -y npm, then ./run setup"
        return 0
    fi
    say "npm ci in services/portal/static (htmx)"
    log="$(mktemp)"
    if (cd "$PORTAL_STATIC" && npm ci --no-audit --no-fund) >"$log" 2>&1; then
        printf '%s\n' "$want" >"$PORTAL_NPM_STAMP"
    else
        tail -n 15 "$log" >&2
        warn "npm ci failed in services/portal/static: the portal's pages work, without htmx"
    fi
    rm -f "$log"
}

# ------------------------------------------------------------------ main ---

# bootstrap app   : what `tongban demo/up/...` needs
# bootstrap tests : that, plus PostgreSQL, poppler, Chromium and Prometheus for the test suite
bootstrap() {
    local mode="${1:-app}"
    ensure_venv
    ensure_rabbitmq
    if [[ $mode == tests ]]; then
        ensure_postgres
    fi
    ensure_fonts
    ensure_portal_npm
    if [[ $mode == tests ]]; then
        ensure_poppler
        ensure_kubectl   # the deployment tests
        ensure_chromium
        ensure_prometheus
    fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    bootstrap "${1:-tests}"
    say "done"
fi
