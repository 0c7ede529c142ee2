#!/usr/bin/env bash
# Install and start a Docker engine 26 + Compose v2 + buildx (and debootstrap,
# for the offline images), and a one-node swarm.
#
# Idempotent: every step checks before it acts, so a reused machine (daemon
# already running, swarm already initialised) costs a few seconds.  Debian
# bookworm's docker.io is 20.10 (no Compose v2, no `stack deploy --detach`),
# so the engine comes from the trixie suite, pinned low so nothing else is
# upgraded.  See ../shared/ENVIRONMENT.md section 1.
set -euo pipefail

log() { printf 'install-engine: %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

engine_is_recent() {
  command -v dockerd >/dev/null 2>&1 || return 1
  local major
  major=$(dockerd --version | sed -E 's/^Docker version ([0-9]+).*/\1/')
  [ "${major:-0}" -ge 26 ] && docker compose version >/dev/null 2>&1 \
    && docker buildx version >/dev/null 2>&1
}

add_trixie_source() {
  local src=/etc/apt/sources.list.d/swarmai-trixie.sources
  local pref=/etc/apt/preferences.d/swarmai-trixie.pref
  if [ ! -f "$src" ]; then
    log "adding the Debian trixie apt source (pinned at priority 100)"
    $SUDO tee "$src" >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  if [ ! -f "$pref" ]; then
    $SUDO tee "$pref" >/dev/null <<'PREF'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PREF
  fi
}

install_engine() {
  if engine_is_recent && command -v debootstrap >/dev/null 2>&1; then
    log "engine $(dockerd --version) already installed"
    return
  fi
  add_trixie_source
  log "installing docker.io, docker-compose and docker-buildx from trixie"
  $SUDO apt-get update -qq
  # debootstrap builds the Debian base every offline image starts FROM.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    docker.io/trixie docker-compose/trixie docker-buildx/trixie debootstrap >/dev/null
}

start_daemon() {
  if docker info >/dev/null 2>&1; then
    log "dockerd already answering"
    return
  fi
  log "starting dockerd (log: /var/log/swarmai-dockerd.log)"
  $SUDO setsid dockerd >/var/log/swarmai-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return
    sleep 1
  done
  log "dockerd did not answer within 60 s; last log lines:"
  tail -n 20 /var/log/swarmai-dockerd.log >&2
  exit 1
}

init_swarm() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" = "active" ]; then
    log "swarm already active"
    return
  fi
  log "initialising a one-node swarm"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
}

install_engine
start_daemon
[ "${SWARMAI_NO_SWARM:-0}" = "1" ] || init_swarm
log "ready: $(docker version --format 'engine {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /')"
