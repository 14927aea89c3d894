#!/usr/bin/env bash
# A single-node Kubernetes control plane on 127.0.0.1, for tests: etcd, kube-apiserver (RBAC,
# service-account signing keys so TokenRequest/TokenReview work) and kube-controller-manager
# (garbage collector, namespace and service-account controllers, each with its own service-account
# credentials and bootstrap RBAC role, as in a real cluster). No kubelet, no scheduler:
# tests bind pods to a node name themselves.
#
# usage: control-plane.sh up DIR     start (or reuse, if DIR's control plane is healthy); prints
#                                    nothing on stdout; writes DIR/env (KUBECONFIG=…, …)
#        control-plane.sh down DIR   stop every process `up` started in DIR and wait for them
#
# Idempotent; `up` fails within E2E_CONTROL_PLANE_TIMEOUT seconds (default 120) and then stops
# what it started. Binaries come from build-tools.sh (built on demand).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TIMEOUT="${E2E_CONTROL_PLANE_TIMEOUT:-120}"
COMPONENTS=(kube-controller-manager kube-apiserver etcd)

usage() { die "usage: $0 up|down DIR"; }
[[ $# -eq 2 ]] || usage
cmd="$1"
DIR="$2"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

pid_alive() { [[ -f "$DIR/$1.pid" ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

# Stops one component: SIGTERM, then SIGKILL after 10 s. Only ever the pid we recorded.
stop_component() {
  local name="$1" pid
  [[ -f "$DIR/$name.pid" ]] || return 0
  pid="$(cat "$DIR/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$DIR/$name.pid"
}

down() {
  [[ -d "$DIR" ]] || return 0
  for c in "${COMPONENTS[@]}"; do stop_component "$c"; done
  rm -f "$DIR/env"
}

healthy() {
  [[ -f "$DIR/env" ]] || return 1
  for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
  kubectl --kubeconfig "$DIR/admin.kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

# wait_for DESCRIPTION COMMAND...: polls COMMAND every 0.5 s until it succeeds or the deadline.
wait_for() {
  local what="$1"
  shift
  while ! "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      return 1
    fi
    for c in "${COMPONENTS[@]}"; do
      if [[ -f "$DIR/$c.pid" ]] && ! pid_alive "$c"; then
        log "$c exited; last log lines:"
        tail -n 20 "$DIR/$c.log" >&2 || true
        return 1
      fi
    done
    sleep 0.5
  done
}

pki() {
  local p="$DIR/pki"
  [[ -f "$p/done" ]] && return 0
  mkdir -p "$p"
  (
    cd "$p"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
      -subj "/CN=akeyless-csi-e2e-ca" 2>/dev/null
    # serving certificate for 127.0.0.1
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # admin client certificate (system:masters)
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=e2e-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile client.ext -out admin.crt 2>/dev/null
    # kube-controller-manager's own identity (bound to its RBAC role by the bootstrap policy)
    openssl req -newkey rsa:2048 -nodes -keyout kcm.key -out kcm.csr \
      -subj "/CN=system:kube-controller-manager" 2>/dev/null
    openssl x509 -req -in kcm.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile client.ext -out kcm.crt 2>/dev/null
    # service-account token signing key pair
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
    touch done
  )
}

kubeconfig() {
  local file="$1" user="$2" server="$3"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $server
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $DIR/pki/$user.crt
    client-key: $DIR/pki/$user.key
contexts:
- name: e2e
  context: {cluster: e2e, user: $user}
current-context: e2e
EOF
}

up() {
  mkdir -p "$DIR"
  if healthy; then
    log "control plane in $DIR is already up"
    return 0
  fi
  down
  "$E2E_DIR/build-tools.sh" etcd kube
  pki
  deadline=$((SECONDS + TIMEOUT))
  # On any failure from here on, stop what we started.
  trap 'down' ERR

  local etcd_port etcd_peer api_port
  etcd_port="$(free_port)"
  etcd_peer="$(free_port)"
  api_port="$(free_port)"
  rm -rf "$DIR/etcd-data"

  log "starting etcd on 127.0.0.1:$etcd_port"
  setsid "$(etcd_bin)" --name e2e --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "e2e=http://127.0.0.1:$etcd_peer" \
    --listen-metrics-urls "" --log-level warn \
    --quota-backend-bytes 1073741824 --unsafe-no-fsync \
    >"$DIR/etcd.log" 2>&1 </dev/null &
  echo $! >"$DIR/etcd.pid"
  wait_for "etcd health" curl -fsS "http://127.0.0.1:$etcd_port/health"

  local server="https://127.0.0.1:$api_port"
  kubeconfig "$DIR/admin.kubeconfig" admin "$server"
  kubeconfig "$DIR/kcm.kubeconfig" kcm "$server"

  log "starting kube-apiserver on $server"
  setsid "$(kube_apiserver_bin)" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
    --client-ca-file "$DIR/pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$DIR/pki/sa.pub" \
    --service-account-signing-key-file "$DIR/pki/sa.key" \
    --authorization-mode RBAC \
    --service-cluster-ip-range 10.96.0.0/24 \
    --allow-privileged=true --profiling=false \
    >"$DIR/kube-apiserver.log" 2>&1 </dev/null &
  echo $! >"$DIR/kube-apiserver.pid"
  wait_for "kube-apiserver /readyz" kubectl --kubeconfig "$DIR/admin.kubeconfig" \
    --request-timeout=5s get --raw /readyz

  log "starting kube-controller-manager"
  setsid "$(kube_controller_manager_bin)" \
    --kubeconfig "$DIR/kcm.kubeconfig" \
    --authentication-kubeconfig "$DIR/kcm.kubeconfig" \
    --authorization-kubeconfig "$DIR/kcm.kubeconfig" \
    --controllers garbagecollector,namespace,serviceaccount \
    --use-service-account-credentials=true \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
    --root-ca-file "$DIR/pki/ca.crt" \
    --service-account-private-key-file "$DIR/pki/sa.key" \
    >"$DIR/kube-controller-manager.log" 2>&1 </dev/null &
  echo $! >"$DIR/kube-controller-manager.pid"
  # The serviceaccount controller creates `default` in every namespace once it runs.
  wait_for "kube-controller-manager (default service account)" \
    kubectl --kubeconfig "$DIR/admin.kubeconfig" -n default get serviceaccount default

  cat >"$DIR/env" <<EOF
KUBECONFIG=$DIR/admin.kubeconfig
E2E_API_SERVER=$server
E2E_CA_FILE=$DIR/pki/ca.crt
E2E_KUBE_VERSION=$KUBE_VERSION
E2E_CONTROL_PLANE_DIR=$DIR
EOF
  trap - ERR
  log "control plane up in $((SECONDS - deadline + TIMEOUT))s: $server"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) usage ;;
esac
