#!/usr/bin/env bash
# A three-node Docker Swarm on this one machine, plus a real TLS + password
# image registry, for tests that need more than the host's one-node swarm.
#
#   scripts/cluster.sh up                 # create, or repair / verify (idempotent)
#   scripts/cluster.sh status             # one line per node and the registry; exit 1 if not up
#   scripts/cluster.sh env [--json]       # the facts tests need (cluster.env / cluster.json)
#   scripts/cluster.sh stop-node NAME     # graceful stop of one node's engine
#   scripts/cluster.sh start-node NAME    # start it again, wait until the manager sees it Ready
#   scripts/cluster.sh down               # remove everything; the host is as it was found
#
# Layout (ENVIRONMENT.md sections 4, 5 and 8):
#   - host bridge swarmai-br0 10.213.0.1/24; network namespaces swarmai-n0
#     (10.213.0.10, the manager), swarmai-n1 (.11) and swarmai-n2 (.12), each
#     with a veth into the bridge and a default route via 10.213.0.1.  Nothing
#     is routed off the bridge: only the bridge, the namespaces and loopback.
#   - one dockerd per namespace.  Each also gets its own mount and UTS namespace:
#     UTS so the node has its own hostname (Swarm names nodes by hostname), and
#     mount so a per-node directory can be bind-mounted over /run.  Then the
#     default socket /var/run/docker.sock *inside* the node is that node's
#     engine (a container bind-mounting it talks to its own node, as on a real
#     machine), and exec-root, pidfile and the managed containerd are per node
#     without any path flag.  The host reaches node N at
#     unix:///run/swarmai-cluster/nN/docker.sock.  (`ip netns exec` cannot be
#     used: it remounts /sys and dockerd then fails with "Devices cgroup isn't
#     mounted"; nsenter + unshare leave /sys alone.)
#   - fake GPUs: each node's daemon.json carries the node-generic-resources that
#     `swarmai nodes config` prints for it (n1: GPUs 0-3, n2: GPUs 0-1, n0: none),
#     so the real Swarm scheduler enforces swarmai's per-device reservations.
#   - a CNCF distribution registry (Debian's docker-registry) on the HOST at
#     10.213.0.1:5443, TLS from a CA made here, htpasswd (bcrypt) auth.  Every
#     engine trusts the CA through /etc/docker/certs.d/10.213.0.1:5443/ca.crt
#     (one file: the filesystem is shared by all nodes).
#
# Odd steps, and why:
#   - The host dockerd sets the iptables FORWARD policy to DROP, and with
#     br_netfilter loaded, traffic bridged between two veths of swarmai-br0 goes
#     through FORWARD too: nodes could not reach each other.  `up` then inserts
#     one rule (bridge in AND out, nothing else) in DOCKER-USER; `down` removes it.
#   - Inside a node's fresh mount namespace the copies of the host's mounts under
#     /run and /var/lib/docker (netns files, container layers of the host engine)
#     are lazily unmounted before dockerd starts, so a node never pins the host
#     engine's namespaces or layers.  Propagation is private: nothing done inside
#     a node reaches the host's mount table.
#   - Each node's containers live under their own cgroup parent (/swarmai-nN),
#     so `stop-node` and `down` can find and remove exactly what a node left.
#   - The whole script holds an flock on itself: two callers never interleave.
#
# Files: /var/lib/swarmai-cluster (node data, registry CA, password, storage),
# /run/swarmai-cluster (sockets, pidfiles, cluster.env, cluster.json).
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."

readonly NODES=(swarmai-n0 swarmai-n1 swarmai-n2)
readonly ADDRS=(10.213.0.10 10.213.0.11 10.213.0.12)
readonly NODE_GPUS=("" "0 1 2 3" "0 1")
readonly BRIDGE=swarmai-br0 GATEWAY=10.213.0.1 PREFIX=24
readonly ADDR_POOL=10.214.0.0/16
readonly STATE=/var/lib/swarmai-cluster RUN=/run/swarmai-cluster
readonly REGISTRY=10.213.0.1:5443 REGISTRY_USER=swarmai
readonly REG_DIR=$STATE/registry
readonly CERTS_D=/etc/docker/certs.d
readonly REG_CERTS_D=$CERTS_D/$REGISTRY
readonly HOST_DOCKER=unix:///var/run/docker.sock
readonly FW_RULE=(-i "$BRIDGE" -o "$BRIDGE" -m comment --comment swarmai-cluster -j ACCEPT)
readonly PROBE_IMAGE=$REGISTRY/swarmai-cluster/probe:latest

log() { printf 'cluster: %s\n' "$*" >&2; }
CLEANUP=()
REGISTRY_CONFIG_CHANGED=0
trap 'rm -rf "${CLEANUP[@]}"' EXIT
die() { log "error: $*"; exit 1; }

usage() {
  cat <<'USAGE'
usage: scripts/cluster.sh up|down|status|env [--json]|stop-node NAME|start-node NAME

A three-node Docker Swarm on this machine (one dockerd per network namespace:
swarmai-n0 manager 10.213.0.10, swarmai-n1 10.213.0.11 with fake GPUs 0-3,
swarmai-n2 10.213.0.12 with fake GPUs 0-1) and a TLS + htpasswd registry at
10.213.0.1:5443.

  up                 create the cluster, or repair / verify it (idempotent)
  status             one line per node and the registry; exit 1 if anything is not up
  env [--json]       print /run/swarmai-cluster/cluster.env (or cluster.json)
  stop-node NAME     stop that node's dockerd gracefully (e.g. swarmai-n2)
  start-node NAME    start it again; waits until the manager reports it Ready
  down               stop and remove everything; the host is left as it was found
USAGE
}

# ---------------------------------------------------------------- helpers

short() { printf 'n%s' "$1"; }                          # node index -> n0
node_sock() { printf 'unix://%s/%s/docker.sock' "$RUN" "$(short "$1")"; }
ndocker() { local i=$1; shift; timeout 60 docker -H "$(node_sock "$i")" "$@"; }
hdocker() { docker -H "$HOST_DOCKER" "$@"; }
manager() { ndocker 0 "$@"; }

node_index() {
  local i
  for i in "${!NODES[@]}"; do
    [ "${NODES[$i]}" = "$1" ] && { echo "$i"; return; }
  done
  die "unknown node '$1' (one of: ${NODES[*]})"
}

# A pid counts as alive unless it is gone or a zombie (pid 1 here may not reap).
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

engine_answers() { ndocker "$1" info --format '{{.ID}}' >/dev/null 2>&1; }

# Every live process of node i: those in its network namespace (dockerd,
# containerd, shims) and those in its cgroup parent (the containers).
node_pids() {
  local name=${NODES[$1]} d pid
  {
    if [ -e "/var/run/netns/$name" ]; then ip netns pids "$name" 2>/dev/null || true; fi
    for d in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
      if [ -d "$d" ]; then find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
    done
  } | sort -un | while read -r pid; do
    if alive "$pid"; then echo "$pid"; fi
  done
}

dockerd_pid() {
  local pid
  [ -e "/var/run/netns/${NODES[$1]}" ] || return 0
  for pid in $(ip netns pids "${NODES[$1]}" 2>/dev/null || true); do
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && alive "$pid"; then
      echo "$pid"
      return 0
    fi
  done
  return 0
}

wait_gone() {  # wait_gone SECONDS PID...
  local secs=$1 pid left; shift
  for _ in $(seq 1 $((secs * 5))); do
    left=0
    for pid in "$@"; do alive "$pid" && left=1; done
    [ "$left" = 0 ] && return 0
    sleep 0.2
  done
  return 1
}

is_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# ---------------------------------------------------------------- packages

install_packages() {
  local missing=() pkg
  for pkg in docker-registry openssl iproute2 util-linux curl; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- network

fw_chain() { iptables -nL DOCKER-USER >/dev/null 2>&1 && echo DOCKER-USER || echo FORWARD; }

forward_blocked() {
  [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ] || return 1
  [ "$(iptables -S FORWARD | head -n 1)" != "-P FORWARD ACCEPT" ]
}

setup_network() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE $GATEWAY/$PREFIX"
    ip link add "$BRIDGE" type bridge
  fi
  # (grep reads a captured string: `cmd | grep -q` fails under pipefail when cmd
  # gets SIGPIPE.)
  if ! grep -q "inet $GATEWAY/$PREFIX" <<<"$(ip addr show dev "$BRIDGE")"; then
    ip addr add "$GATEWAY/$PREFIX" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up

  local i name veth
  for i in "${!NODES[@]}"; do
    name=${NODES[$i]} veth=swarmai-v$i
    if [ ! -e "/var/run/netns/$name" ]; then
      log "creating network namespace $name (${ADDRS[$i]})"
      ip netns add "$name"
    fi
    if ! ip -n "$name" link show eth0 >/dev/null 2>&1; then
      ip link del "$veth" 2>/dev/null || true
      ip link add "$veth" type veth peer name eth0 netns "$name"
    fi
    ip link set "$veth" master "$BRIDGE" up
    ip -n "$name" link set lo up
    ip -n "$name" link set eth0 up
    if ! grep -q "inet ${ADDRS[$i]}/$PREFIX" <<<"$(ip -n "$name" addr show dev eth0)"; then
      ip -n "$name" addr add "${ADDRS[$i]}/$PREFIX" dev eth0
    fi
    ip -n "$name" route replace default via "$GATEWAY" dev eth0
  done

  if forward_blocked; then
    if ! iptables -C DOCKER-USER "${FW_RULE[@]}" 2>/dev/null && ! iptables -C FORWARD "${FW_RULE[@]}" 2>/dev/null; then
      log "FORWARD policy drops bridged traffic (br_netfilter): allowing $BRIDGE <-> $BRIDGE in $(fw_chain)"
      iptables -I "$(fw_chain)" 1 "${FW_RULE[@]}"
    fi
  fi
}

teardown_network() {
  local chain i
  for chain in DOCKER-USER FORWARD; do
    while iptables -C "$chain" "${FW_RULE[@]}" 2>/dev/null; do
      log "removing the $BRIDGE ACCEPT rule from $chain"
      iptables -D "$chain" "${FW_RULE[@]}"
    done
  done
  for i in "${!NODES[@]}"; do
    if ip link show "swarmai-v$i" >/dev/null 2>&1; then
      ip link del "swarmai-v$i"
      log "deleted veth swarmai-v$i"
    fi
    if [ -e "/var/run/netns/${NODES[$i]}" ]; then
      ip netns del "${NODES[$i]}"
      log "deleted network namespace ${NODES[$i]}"
    fi
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link del "$BRIDGE"
    log "deleted bridge $BRIDGE"
  fi
}

# ---------------------------------------------------------------- engines

# Write each node's daemon.json (paths are as seen INSIDE the node, where /run is
# $RUN/nN); print the indexes whose file changed.
write_daemon_configs() {
  local stack gpus i
  stack=$(mktemp --suffix .yaml)
  {
    echo 'version: 1'
    echo 'name: swarmai-cluster'
    echo 'nodes:'
    for i in "${!NODES[@]}"; do
      gpus=${NODE_GPUS[$i]}
      [ -n "$gpus" ] || continue
      # shellcheck disable=SC2086  # split the list of ids
      printf '  %s: {gpus: [%s]}\n' "${NODES[$i]}" "$(printf '"%s",' $gpus | sed 's/,$//')"
    done
    echo 'models: [{name: probe, runtime: fastapi, model: "models:/probe@production"}]'
  } >"$stack"
  .venv/bin/swarmai nodes config "$stack" --output json | .venv/bin/python -c '
import json, pathlib, sys
fragments = json.load(sys.stdin)
state, nodes = sys.argv[1], sys.argv[2:]
for i, name in enumerate(nodes):
    short = f"n{i}"
    resources = fragments.get(name, {}).get("daemon_json", {}).get("node-generic-resources", [])
    wanted = {
        "data-root": f"{state}/{short}/docker",
        "exec-root": "/var/run/docker",
        "pidfile": "/var/run/docker.pid",
        "hosts": ["unix:///var/run/docker.sock"],
        "cgroup-parent": f"/{name}",
        "node-generic-resources": resources,
    }
    path = pathlib.Path(state, short, "daemon.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(wanted, indent=2) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        print(i)
' "$STATE" "${NODES[@]}" || { rm -f "$stack"; die "swarmai nodes config failed (is .venv set up? scripts/venv.sh)"; }
  rm -f "$stack"
}

launch_engine() {
  local i=$1 name=${NODES[$1]} s
  s=$(short "$1")
  mkdir -p "$RUN/$s" "$STATE/$s"
  if [ -n "$(node_pids "$i")" ]; then
    die "$name: leftover processes $(node_pids "$i" | tr '\n' ' ')(run stop-node $name)"
  fi
  # Nothing of this node runs: whatever is under its /run is stale runtime state.
  find "$RUN/$s" -mindepth 1 -delete 2>/dev/null || rm -rf "${RUN:?}/$s"/*
  log "$name: starting dockerd (log: $STATE/$s/dockerd.log)"
  # shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
  setsid nsenter --net="/var/run/netns/$name" \
    unshare --mount --uts --propagation private sh -c '
      set -e
      hostname "$1"
      findmnt -rn -o TARGET | grep -E "^(/run/|/var/lib/docker/)" | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
      mount --bind "$2" /run
      mkdir -p /run/docker
      exec dockerd --config-file "$3"' \
    sh "$name" "$RUN/$s" "$STATE/$s/daemon.json" \
    >>"$STATE/$s/dockerd.log" 2>&1 </dev/null 9<&- &
}

wait_engine() {
  local i=$1 s
  s=$(short "$1")
  for _ in $(seq 1 120); do
    engine_answers "$i" && return 0
    sleep 0.5
  done
  log "${NODES[$i]}: dockerd did not answer within 60 s; last log lines:"
  tail -n 20 "$STATE/$s/dockerd.log" >&2
  exit 1
}

# SIGTERM: dockerd stops its containers (no live-restore), then its containerd.
signal_engine() {
  local pid
  pid=$(dockerd_pid "$1")
  if [ -n "$pid" ]; then
    log "${NODES[$1]}: stopping dockerd (pid $pid)"
    kill -TERM "$pid"
  fi
}

# Wait for a signalled node to exit, then end and clean whatever it left.
finish_engine() {
  local i=$1 name=${NODES[$1]} pid left d
  pid=$(dockerd_pid "$i")
  if [ -n "$pid" ]; then
    if ! wait_gone 90 "$pid"; then
      log "$name: dockerd still running after 90 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone 10 "$pid" || true
    fi
  fi
  left=$(node_pids "$i")
  if [ -n "$left" ]; then
    log "$name: ending leftover processes $(tr '\n' ' ' <<<"$left")"
    # shellcheck disable=SC2086
    kill -TERM $left 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_gone 10 $left || { kill -KILL $left 2>/dev/null || true; wait_gone 10 $left || true; }
  fi
  [ -z "$(node_pids "$i")" ] || die "$name: processes left: $(node_pids "$i" | tr '\n' ' ')"
  for d in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
    if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  rm -f "$RUN/$(short "$i")/docker.pid"
}

stop_engine() { signal_engine "$1"; finish_engine "$1"; }

# Start node i unless its engine answers already (restart it when restart=1).
ensure_engine() {
  local i=$1 restart=${2:-0}
  if [ "$restart" = 1 ] && [ -n "$(dockerd_pid "$i")" ]; then
    log "${NODES[$i]}: daemon.json changed; restarting"
    stop_engine "$i"
  fi
  if [ -z "$(dockerd_pid "$i")" ]; then
    [ -z "$(node_pids "$i")" ] || stop_engine "$i"
    launch_engine "$i"
  fi
}

# ---------------------------------------------------------------- swarm

swarm_state() { ndocker "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unreachable; }

wait_state_settles() {  # pending -> active after a restart; give it a while
  local i=$1 state
  for _ in $(seq 1 60); do
    state=$(swarm_state "$i")
    [ "$state" = pending ] || { echo "$state"; return; }
    sleep 0.5
  done
  echo "$state"
}

setup_swarm() {
  local state token i nid
  state=$(wait_state_settles 0)
  if [ "$state" = active ] && [ "$(ndocker 0 info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
    log "${NODES[0]}: in a swarm but not its manager; leaving it"
    manager swarm leave --force >/dev/null
    state=inactive
  fi
  case $state in
    active) ;;
    inactive)
      log "${NODES[0]}: initialising the swarm (advertise ${ADDRS[0]}, address pool $ADDR_POOL)"
      manager swarm init --advertise-addr "${ADDRS[0]}" --listen-addr "${ADDRS[0]}:2377" \
        --default-addr-pool "$ADDR_POOL" >/dev/null ;;
    *) die "${NODES[0]}: swarm state '$state'; run 'scripts/cluster.sh down' then 'up'" ;;
  esac
  token=$(manager swarm join-token -q worker)
  for i in 1 2; do
    state=$(wait_state_settles "$i")
    nid=$(ndocker "$i" info --format '{{.Swarm.NodeID}}')
    if [ "$state" = active ] && ! grep -qx "$nid" <<<"$(manager node ls -q)"; then
      log "${NODES[$i]}: member of another swarm; leaving it"
      ndocker "$i" swarm leave --force >/dev/null
      state=inactive
    fi
    case $state in
      active) ;;
      inactive|error)
        [ "$state" = error ] && ndocker "$i" swarm leave --force >/dev/null
        log "${NODES[$i]}: joining the swarm via ${ADDRS[0]}:2377"
        ndocker "$i" swarm join --token "$token" --advertise-addr "${ADDRS[$i]}" \
          --listen-addr "${ADDRS[$i]}:2377" "${ADDRS[0]}:2377" >/dev/null ;;
      *) die "${NODES[$i]}: swarm state '$state'" ;;
    esac
  done
}

# Wait until the manager reports node i Ready under its hostname; drop stale
# entries (same hostname, another node id, Down) left by an earlier join.
wait_ready() {
  local i=$1 name=${NODES[$1]} nid status="" id host st
  nid=$(ndocker "$i" info --format '{{.Swarm.NodeID}}')
  for _ in $(seq 1 120); do
    status=$(manager node inspect "$nid" --format '{{.Description.Hostname}} {{.Status.State}}' 2>/dev/null || true)
    [ "$status" = "$name ready" ] && break
    sleep 0.5
  done
  [ "$status" = "$name ready" ] || die "$name: manager reports '$status' (want '$name ready')"
  manager node ls --format '{{.ID}} {{.Hostname}} {{.Status}}' | while read -r id host st; do
    if [ "$host" = "$name" ] && [ "$id" != "$nid" ] && [ "$st" != Ready ]; then
      log "$name: removing stale node entry $id"
      manager node rm --force "$id" >/dev/null
    fi
  done
}

node_resources() {  # as the manager sees them: kind=value,... sorted
  local nid
  nid=$(ndocker "$1" info --format '{{.Swarm.NodeID}}' 2>/dev/null) || return 0
  manager node inspect "$nid" --format \
    '{{range .Description.Resources.GenericResources}}{{if .DiscreteResourceSpec}}{{.DiscreteResourceSpec.Kind}}={{.DiscreteResourceSpec.Value}}{{"\n"}}{{end}}{{end}}' \
    2>/dev/null | sed '/^$/d' | sort | paste -sd, - || true
}

expected_resources() {
  local g
  for g in ${NODE_GPUS[$1]}; do printf 'swarmai-gpu-%s-%s=1\n' "${NODES[$1]}" "$g"; done | sort | paste -sd, -
}

verify_nodes() {
  local i got want
  for i in "${!NODES[@]}"; do
    wait_ready "$i"
    want=$(expected_resources "$i")
    for _ in $(seq 1 40); do
      got=$(node_resources "$i")
      [ "$got" = "$want" ] && break
      sleep 0.5
    done
    [ "$got" = "$want" ] || die "${NODES[$i]}: generic resources '$got', want '$want'"
  done
  log "swarm: ${NODES[*]} Ready; GPUs n1: ${NODE_GPUS[1]}, n2: ${NODE_GPUS[2]}"
}

# ---------------------------------------------------------------- registry

registry_pid() {
  local pid
  pid=$(cat "$RUN/registry.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && alive "$pid" \
    && [ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" = "docker-registry serve $REG_DIR/config.yml " ]; then
    echo "$pid"
  fi
  return 0
}

registry_answers() {  # unauthenticated /v2/ must say 401 over verified TLS
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$REG_DIR/ca.crt" \
    "https://$REGISTRY/v2/" 2>/dev/null)" = 401 ]
}

make_registry_files() {
  mkdir -p "$REG_DIR/data"   # ca.crt readable by all; keys and password 0600
  if [ ! -s "$REG_DIR/ca.crt" ] || [ ! -s "$REG_DIR/ca.key" ]; then
    log "registry: making a CA"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=swarmai-cluster CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$REG_DIR/ca.key" -out "$REG_DIR/ca.crt" 2>/dev/null
    rm -f "$REG_DIR/server.crt"
  fi
  if [ ! -s "$REG_DIR/server.crt" ] || [ ! -s "$REG_DIR/server.key" ]; then
    log "registry: making a server certificate for IP:${REGISTRY%:*}"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=${REGISTRY%:*}" \
      -keyout "$REG_DIR/server.key" -out "$REG_DIR/server.csr" 2>/dev/null
    openssl x509 -req -days 825 -in "$REG_DIR/server.csr" -CA "$REG_DIR/ca.crt" -CAkey "$REG_DIR/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -out "$REG_DIR/server.crt" -extfile <(printf '%s\n' \
        "subjectAltName=IP:${REGISTRY%:*}" "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth") 2>/dev/null
    rm -f "$REG_DIR/server.csr"
  fi
  if [ ! -s "$REG_DIR/password" ]; then
    log "registry: generating the password for user $REGISTRY_USER"
    (umask 077; openssl rand -hex 24 >"$REG_DIR/password")
  fi
  chmod 0600 "$REG_DIR/password" "$REG_DIR/ca.key" "$REG_DIR/server.key"
  if [ ! -s "$REG_DIR/htpasswd" ] || [ "$REG_DIR/password" -nt "$REG_DIR/htpasswd" ]; then
    # bcrypt is what the registry accepts; apache2-utils' htpasswd may be absent.
    .venv/bin/python -c '
import bcrypt, sys
password = open(sys.argv[2], "rb").read().strip()
print(sys.argv[1] + ":" + bcrypt.hashpw(password, bcrypt.gensalt(rounds=10, prefix=b"2a")).decode())
' "$REGISTRY_USER" "$REG_DIR/password" >"$REG_DIR/htpasswd.new"
    chmod 0600 "$REG_DIR/htpasswd.new"
    mv "$REG_DIR/htpasswd.new" "$REG_DIR/htpasswd"
  fi
  cat >"$REG_DIR/config.yml.new" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  tls:
    certificate: $REG_DIR/server.crt
    key: $REG_DIR/server.key
auth:
  htpasswd:
    realm: swarmai-cluster
    path: $REG_DIR/htpasswd
YAML
  if cmp -s "$REG_DIR/config.yml.new" "$REG_DIR/config.yml"; then
    rm -f "$REG_DIR/config.yml.new"
  else
    mv "$REG_DIR/config.yml.new" "$REG_DIR/config.yml"
    REGISTRY_CONFIG_CHANGED=1
  fi
  # Every engine (nodes and host) reads this same file: the filesystem is shared.
  if [ ! -d "$CERTS_D" ]; then
    mkdir -p "$CERTS_D"
    touch "$STATE/certs.d-created"   # so `down` removes it again
  fi
  mkdir -p "$REG_CERTS_D"
  cmp -s "$REG_DIR/ca.crt" "$REG_CERTS_D/ca.crt" || install -m 0644 "$REG_DIR/ca.crt" "$REG_CERTS_D/ca.crt"
}

start_registry() {
  if [ -n "$(registry_pid)" ] && registry_answers && [ "$REGISTRY_CONFIG_CHANGED" = 0 ]; then
    return
  fi
  stop_registry
  mkdir -p "$RUN"
  log "registry: starting on $REGISTRY (log: $REG_DIR/registry.log)"
  setsid docker-registry serve "$REG_DIR/config.yml" >>"$REG_DIR/registry.log" 2>&1 </dev/null 9<&- &
  echo $! >"$RUN/registry.pid"
  for _ in $(seq 1 60); do
    registry_answers && return
    sleep 0.5
  done
  tail -n 20 "$REG_DIR/registry.log" >&2
  die "registry did not answer on https://$REGISTRY/v2/"
}

stop_registry() {
  local pid
  pid=$(registry_pid)
  [ -n "$pid" ] || return 0
  log "registry: stopping (pid $pid)"
  kill -TERM "$pid"
  wait_gone 15 "$pid" || { kill -KILL "$pid" 2>/dev/null || true; wait_gone 5 "$pid" || true; }
}

# Log in with a throw-away DOCKER_CONFIG, push a tiny image from the host
# engine, pull it on n1 and n2, then delete the local copies.
verify_registry() {
  local tmp i
  tmp=$(mktemp -d)
  CLEANUP+=("$tmp")   # holds a registry login: removed on exit, whatever happens
  mkdir -p "$tmp/config" "$tmp/rootfs"
  echo "swarmai-cluster registry probe" >"$tmp/rootfs/probe"
  DOCKER_CONFIG=$tmp/config hdocker login "$REGISTRY" -u "$REGISTRY_USER" --password-stdin \
    <"$REG_DIR/password" >/dev/null 2>&1 || die "registry: login as $REGISTRY_USER refused"
  tar -C "$tmp/rootfs" -c . | hdocker import - "$PROBE_IMAGE" >/dev/null
  DOCKER_CONFIG=$tmp/config hdocker push -q "$PROBE_IMAGE" >/dev/null \
    || die "registry: push of $PROBE_IMAGE from the host engine failed"
  hdocker rmi "$PROBE_IMAGE" >/dev/null
  for i in 1 2; do
    DOCKER_CONFIG=$tmp/config ndocker "$i" pull -q "$PROBE_IMAGE" >/dev/null \
      || die "registry: ${NODES[$i]} could not pull $PROBE_IMAGE"
    ndocker "$i" rmi "$PROBE_IMAGE" >/dev/null
  done
  log "registry: $REGISTRY verified (TLS, login, push from host, pull on ${NODES[1]} and ${NODES[2]})"
}

# ---------------------------------------------------------------- facts

write_env() {
  local i hosts=() socks=()
  for i in "${!NODES[@]}"; do socks+=("$(node_sock "$i")"); hosts+=("${NODES[$i]}"); done
  mkdir -p "$RUN"
  cat >"$RUN/cluster.env.new" <<ENV
MANAGER_HOST=$(node_sock 0)
NODES="${hosts[*]}"
NODE_HOSTS="${socks[*]}"
NODE_ADDRS="${ADDRS[*]}"
GATEWAY_HOST=${ADDRS[0]}
REGISTRY=$REGISTRY
REGISTRY_USER=$REGISTRY_USER
REGISTRY_PASSWORD_FILE=$REG_DIR/password
REGISTRY_CA=$REG_DIR/ca.crt
ENV
  mv "$RUN/cluster.env.new" "$RUN/cluster.env"
  .venv/bin/python -c '
import json, shlex, sys
env = dict(shlex.split(line)[0].split("=", 1) for line in open(sys.argv[1]) if line.strip())
nodes = env["NODES"].split()
facts = {**env, "NODES": nodes,
         "NODE_HOSTS": dict(zip(nodes, env["NODE_HOSTS"].split())),
         "NODE_ADDRS": dict(zip(nodes, env["NODE_ADDRS"].split()))}
print(json.dumps(facts, indent=2))
' "$RUN/cluster.env" >"$RUN/cluster.json.new"
  mv "$RUN/cluster.json.new" "$RUN/cluster.json"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  local changed i start=$SECONDS
  install_packages
  [ -x .venv/bin/swarmai ] || die ".venv/bin/swarmai missing: run scripts/venv.sh first"
  hdocker info >/dev/null 2>&1 || die "the host engine does not answer: run scripts/install-engine.sh first"
  setup_network
  mkdir -p "$STATE" "$RUN"
  make_registry_files
  start_registry
  changed=" $(write_daemon_configs | tr '\n' ' ')"
  for i in "${!NODES[@]}"; do
    if [[ "$changed" == *" $i "* ]]; then ensure_engine "$i" 1; else ensure_engine "$i"; fi
  done
  for i in "${!NODES[@]}"; do wait_engine "$i"; done
  setup_swarm
  verify_nodes
  verify_registry
  write_env
  log "up in $((SECONDS - start)) s; facts in $RUN/cluster.env (scripts/cluster.sh env)"
}

cmd_down() {
  local i d
  stop_registry
  for i in "${!NODES[@]}"; do signal_engine "$i"; done   # all at once
  for i in "${!NODES[@]}"; do finish_engine "$i"; done   # waits; ends leftovers
  # Node mounts live in the nodes' private mount namespaces, gone with them;
  # never delete through a mount point that is somehow left on the host.
  findmnt -rn -o TARGET | { grep -E "^($RUN|$STATE)(/|$)" || true; } | sort -r | while read -r d; do
    log "unmounting $d"
    umount -l "$d"
  done
  teardown_network
  if [ -d "$REG_CERTS_D" ]; then rm -rf "$REG_CERTS_D"; log "removed $REG_CERTS_D"; fi
  if [ -e "$STATE/certs.d-created" ] && [ -d "$CERTS_D" ]; then
    rmdir "$CERTS_D" 2>/dev/null || true   # only if empty: someone else may use it now
  fi
  for d in "$RUN" "$STATE"; do
    if [ -e "$d" ]; then rm -rf "$d"; log "removed $d"; fi
  done
  log "down: nothing of the cluster is left"
}

cmd_status() {
  local i ok=0 eng state mgr res
  for i in "${!NODES[@]}"; do
    eng=down state=- mgr=- res=-
    if engine_answers "$i"; then
      eng=up
      state=$(swarm_state "$i")
    fi
    if engine_answers 0; then
      local nid
      nid=$(ndocker "$i" info --format '{{.Swarm.NodeID}}' 2>/dev/null || true)
      if [ -z "$nid" ]; then   # engine down: ask the manager by hostname
        nid=$(manager node ls --filter "name=${NODES[$i]}" -q 2>/dev/null | head -n 1 || true)
      fi
      [ -z "$nid" ] || mgr=$(manager node inspect "$nid" --format '{{.Status.State}}/{{.Spec.Availability}}' 2>/dev/null || echo -)
      res=$(node_resources "$i"); res=${res:-none}
      [ "$eng" = up ] || res=-
    fi
    printf '%-11s %-12s engine=%-4s swarm=%-8s manager-sees=%-12s gpus=%s\n' \
      "${NODES[$i]}" "${ADDRS[$i]}" "$eng" "$state" "$mgr" "$res"
    [ "$eng" = up ] && [ "$state" = active ] && [ "${mgr%%/*}" = ready ] || ok=1
  done
  if [ -n "$(registry_pid)" ] && registry_answers; then
    printf '%-11s %-12s up (TLS, htpasswd user %s)\n' registry "$REGISTRY" "$REGISTRY_USER"
  else
    printf '%-11s %-12s down\n' registry "$REGISTRY"; ok=1
  fi
  return "$ok"
}

cmd_env() {
  local file=$RUN/cluster.env
  [ "${1:-}" = --json ] && file=$RUN/cluster.json
  [ -f "$file" ] || die "$file missing: run 'scripts/cluster.sh up'"
  cat "$file"
}

cmd_stop_node() {
  local i
  i=$(node_index "$1")
  if [ -z "$(dockerd_pid "$i")" ] && [ -z "$(node_pids "$i")" ]; then
    log "$1: already stopped"
    return
  fi
  stop_engine "$i"
  # The manager notices a missing worker by its heartbeats (about 15 s): wait
  # for it, so that callers see the same state the scheduler acts on.
  if [ "$i" != 0 ] && engine_answers 0; then
    log "$1: stopped; waiting until the manager reports it Down"
    local st=""
    for _ in $(seq 1 120); do
      st=$(manager node ls --filter "name=$1" --format '{{.Hostname}} {{.Status}}' 2>/dev/null | awk -v n="$1" '$1 == n {print $2}' | sort -u | paste -sd, -)
      [ "$st" = Down ] && break
      sleep 0.5
    done
    [ "$st" = Down ] || die "$1: manager still reports '$st'"
  fi
  log "$1: stopped"
}

cmd_start_node() {
  local i
  i=$(node_index "$1")
  if [ ! -e "/var/run/netns/$1" ] || [ ! -f "$STATE/$(short "$i")/daemon.json" ]; then
    die "$1: not set up; run 'scripts/cluster.sh up'"
  fi
  ensure_engine "$i"
  wait_engine "$i"
  if [ "$i" != 0 ]; then
    engine_answers 0 || die "the manager ${NODES[0]} is down: start-node ${NODES[0]} first"
  fi
  wait_ready "$i"
  if [ "$i" = 0 ]; then   # a restarted manager sees its workers "unknown" for a while
    local w
    for w in 1 2; do
      if engine_answers "$w"; then wait_ready "$w"; fi
    done
  fi
  log "$1: Ready"
}

main() {
  [ $# -ge 1 ] || { usage >&2; exit 2; }
  case $1 in
    -h|--help|help) usage; exit 0 ;;
  esac
  [ "$(id -u)" -eq 0 ] || exec sudo -E "$SELF" "$@"
  # One caller at a time: the lock is this script file itself (no file to clean
  # up).  Background daemons are started with fd 9 closed so they never hold it.
  exec 9<"$SELF"
  flock -w 900 9 || die "another scripts/cluster.sh is still running"
  local cmd=$1; shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env "$@" ;;
    stop-node) [ $# -eq 1 ] || die "usage: stop-node NAME"; cmd_stop_node "$1" ;;
    start-node) [ $# -eq 1 ] || die "usage: start-node NAME"; cmd_start_node "$1" ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
