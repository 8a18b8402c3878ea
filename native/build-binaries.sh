#!/usr/bin/env bash
# Cache-or-build the native stack's server binaries from Go modules, at the
# versions .env pins, into $LLMTEL_CACHE/bin (default ~/.cache/llmtel/bin).
# A cached binary is reused; a first build takes many minutes on 2 cores, so
# every step prints what it builds and a heartbeat while it runs.
#
#   native/build-binaries.sh            # build whatever is missing
#   native/build-binaries.sh --print    # print NAME=PATH for every binary
#   native/build-binaries.sh --with-bench [--print]   # also telemetrygen (make bench only)
#
# Why each build looks the way it does: ../shared/DESIGN.md, "Building the real
# binaries without Docker". Loki and Tempo are not used: see DESIGN.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
set -a
# shellcheck source=/dev/null
. "$ROOT/.env"
set +a

CACHE="${LLMTEL_CACHE:-$HOME/.cache/llmtel}"
BIN="$CACHE/bin"
LOGS="$CACHE/build-logs"
export GOTOOLCHAIN=local GOFLAGS="-trimpath" CGO_ENABLED=0
mkdir -p "$BIN" "$LOGS"

minor="${OTELCOL_VERSION#0.}"; minor="${minor%%.*}"
export OTELCOL_STABLE_VERSION="1.$((minor - 94)).0"
# The collector's name carries a hash of its manifest: a new component means a new build.
manifest_hash="$(sha256sum "$ROOT/collector-config/builder-config.yaml" | cut -c1-10)"

declare -A PATHS=(
  [otelcol]="$BIN/otelcol-llmtel-$OTELCOL_VERSION-$manifest_hash"
  [prometheus]="$BIN/prometheus-$PROMETHEUS_VERSION"
  [promtool]="$BIN/promtool-$PROMETHEUS_VERSION"
  [alertmanager]="$BIN/alertmanager-$ALERTMANAGER_VERSION"
  [amtool]="$BIN/amtool-$ALERTMANAGER_VERSION"
  [victorialogs]="$BIN/victoria-logs-$VICTORIALOGS_VERSION"
  [jaeger]="$BIN/jaeger-$JAEGER_MODULE_VERSION"
  [telemetrygen]="$BIN/telemetrygen-$OTELCOL_VERSION"
)
ORDER=(otelcol prometheus promtool alertmanager amtool victorialogs jaeger)

print=false
for arg in "$@"; do
  case "$arg" in
    --print) print=true ;;
    # The load generator of `make bench`, kept out of the default build (make test, CI).
    --with-bench) ORDER+=(telemetrygen) ;;
    *) echo "[build] unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if $print; then
  for name in "${ORDER[@]}"; do echo "$name=${PATHS[$name]}"; done
  exit 0
fi

# run LABEL CMD...: run a build step with its output in a log file and a
# heartbeat every 30 s, so a long build never looks hung.
run() {
  local label="$1"; shift
  local log="$LOGS/$label.log" start=$SECONDS last=$SECONDS
  echo "[build] $label: started (log: $log)"
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    if (( SECONDS - last >= 30 )) && kill -0 "$pid" 2>/dev/null; then
      last=$SECONDS
      echo "[build] $label: still building, $((SECONDS - start)) s"
    fi
  done
  if ! wait "$pid"; then
    echo "[build] $label: FAILED after $((SECONDS - start)) s; last lines of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
  echo "[build] $label: done in $((SECONDS - start)) s"
}

# A writable copy of a module from the module cache, for modules whose own
# go.mod (replace lines, embedded assets) must be honoured.
module_copy() {
  local module="$1" version="$2" dest="$3"
  local dir
  dir="$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" ]] || { echo "[build] cannot download $module@$version" >&2; exit 1; }
  rm -rf "$dest"; cp -r "$dir" "$dest"; chmod -R u+w "$dest"
}

build_otelcol() {
  local work="$CACHE/work/otelcol" out="${PATHS[otelcol]}"
  rm -rf "$work"; mkdir -p "$work"
  GOBIN="$CACHE/tools" go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION"
  OUTPUT_PATH="$work/dist" envsubst <"$ROOT/collector-config/builder-config.yaml" >"$work/manifest.yaml"
  "$CACHE/tools/builder" --config="$work/manifest.yaml"
  mv "$work/dist/otelcol-llmtel" "$out"
}

build_prometheus() {
  # go install refuses prometheus' own go.mod (exclude lines); a wrapper
  # module that requires it builds the same packages.
  local work="$CACHE/work/prometheus" module_version
  module_version="v0.3$(printf '%02d' "$(cut -d. -f2 <<<"$PROMETHEUS_VERSION")").$(cut -d. -f3 <<<"$PROMETHEUS_VERSION")"
  rm -rf "$work"; mkdir -p "$work"; cd "$work"
  go mod init llmtel.local/promwrap
  go get "github.com/prometheus/prometheus/cmd/prometheus@$module_version" \
    "github.com/prometheus/prometheus/cmd/promtool@$module_version"
  local ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
  go build -ldflags "$ldflags" -o "$work/prometheus" github.com/prometheus/prometheus/cmd/prometheus
  go build -ldflags "$ldflags" -o "$work/promtool" github.com/prometheus/prometheus/cmd/promtool
  # Moved into the cache only when complete: a killed build leaves nothing cached.
  mv "$work/prometheus" "${PATHS[prometheus]}"; mv "$work/promtool" "${PATHS[promtool]}"
  cd "$ROOT"
}

build_alertmanager() {
  local work="$CACHE/work/alertmanager"
  rm -rf "$work"; mkdir -p "$work"
  local ldflags="-s -w -X github.com/prometheus/common/version.Version=$ALERTMANAGER_VERSION"
  GOBIN="$work" go install -ldflags "$ldflags" \
    "github.com/prometheus/alertmanager/cmd/alertmanager@v$ALERTMANAGER_VERSION" \
    "github.com/prometheus/alertmanager/cmd/amtool@v$ALERTMANAGER_VERSION"
  mv "$work/alertmanager" "${PATHS[alertmanager]}"
  mv "$work/amtool" "${PATHS[amtool]}"
}

build_victorialogs() {
  local work="$CACHE/work/victorialogs"
  module_copy github.com/VictoriaMetrics/VictoriaLogs "v$VICTORIALOGS_VERSION" "$work"
  cd "$work"
  go build -ldflags "-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-v$VICTORIALOGS_VERSION" \
    -o "$work/victoria-logs" ./app/victoria-logs
  mv "$work/victoria-logs" "${PATHS[victorialogs]}"
  cd "$ROOT"
}

build_jaeger() {
  # Jaeger's go.mod has a replace line, which go install refuses: build from a copy.
  local work="$CACHE/work/jaeger"
  module_copy github.com/jaegertracing/jaeger "v$JAEGER_MODULE_VERSION" "$work"
  cd "$work"
  go build -ldflags "-s -w" -o "$work/jaeger-bin" ./cmd/jaeger
  mv "$work/jaeger-bin" "${PATHS[jaeger]}"
  cd "$ROOT"
}

build_telemetrygen() {
  # Contrib's load generator; its go.mod has no replace lines, so go install works.
  local work="$CACHE/work/telemetrygen"
  rm -rf "$work"; mkdir -p "$work"
  GOBIN="$work" go install -ldflags "-s -w" \
    "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v$OTELCOL_VERSION"
  mv "$work/telemetrygen" "${PATHS[telemetrygen]}"
}

missing=()
for name in "${ORDER[@]}"; do
  [[ -x "${PATHS[$name]}" ]] || missing+=("$name")
done
if (( ${#missing[@]} == 0 )); then
  echo "[build] all binaries cached in $BIN"
  exit 0
fi
# One build at a time per cache: parallel test sessions would share work dirs.
exec 9>"$CACHE/build.lock"
if ! flock -n 9; then
  echo "[build] another build holds $CACHE/build.lock; waiting for it"
  flock 9
fi
missing=()
for name in "${ORDER[@]}"; do
  [[ -x "${PATHS[$name]}" ]] || missing+=("$name")
done
(( ${#missing[@]} )) || { echo "[build] all binaries cached in $BIN"; exit 0; }
command -v go >/dev/null || { echo "[build] Go is required to build the native stack (see README)" >&2; exit 1; }
command -v envsubst >/dev/null || { echo "[build] envsubst (gettext-base) is required" >&2; exit 1; }
echo "[build] building ${missing[*]} into $BIN (first build: about 15 minutes on 2 cores)"
step=0
for name in "${missing[@]}"; do
  step=$((step + 1))
  [[ -x "${PATHS[$name]}" ]] && continue # promtool/amtool come with their servers
  echo "[build] step $step/${#missing[@]}: $name"
  case "$name" in
    otelcol) run otelcol build_otelcol ;;
    prometheus | promtool) run prometheus build_prometheus ;;
    alertmanager | amtool) run alertmanager build_alertmanager ;;
    victorialogs) run victorialogs build_victorialogs ;;
    jaeger) run jaeger build_jaeger ;;
    telemetrygen) run telemetrygen build_telemetrygen ;;
  esac
done
echo "[build] all binaries ready in $BIN"
