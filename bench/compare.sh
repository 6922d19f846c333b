#!/usr/bin/env bash
# compare.sh: runs wsgate, nginx (4 KiB and 64 KiB buffers) and HAProxy, one
# worker each, in front of one echo backend and prints each scenario as a
# markdown table with ratios to nginx and HAProxy. Debian 12, as root.
#
#   bash bench/compare.sh            # every scenario, ~6 minutes
#   BENCH_SECS=3 bash bench/compare.sh   # shorter windows
#   BENCH_ONLY="rate idle" BENCH_PROXIES="wsgate haproxy" bash bench/compare.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${BENCH_SECS:-10}
only=${BENCH_ONLY:-"rate sat big idle churn capacity"}
proxies=${BENCH_PROXIES:-"wsgate nginx nginx64k haproxy"}
build=${WSGATE_BENCH_BUILD:-$root/build-bench}
work=$(mktemp -d /tmp/wsgate-bench.XXXXXX)
backend_port=18090
declare -A port=([wsgate]=18081 [nginx]=18082 [nginx64k]=18083 [haproxy]=18084)
declare -A pid=()   # the process whose CPU and RSS are measured
declare -A owner=() # the process to stop (nginx's master)

# -- dependencies and build ---------------------------------------------------

bash "$root/scripts/deps.sh" >&2
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
if ((${#need[@]} > 0)); then
  echo "compare.sh: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${need[@]}" >/dev/null
  # The packages start system services on port 80; this run needs none.
  systemctl stop nginx haproxy >/dev/null 2>&1 || true
  pkill -x nginx >/dev/null 2>&1 || true
  pkill -x haproxy >/dev/null 2>&1 || true
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWSGATE_TESTS=OFF \
  >/dev/null
cmake --build "$build" -j2 --target wsgate wsbench >/dev/null

ulimit -n "$(ulimit -Hn)"
bench="$build/wsbench"

cleanup() {
  for p in "${owner[@]}" ${backend_pid:-}; do
    kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# waits until 127.0.0.1:$1 accepts connections
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "compare.sh: nothing listens on port $1" >&2
  return 1
}

# -- the backend and the proxies ----------------------------------------------

cat >"$work/backend.yaml" <<EOF
listeners: [{ address: 127.0.0.1:$backend_port }]
workers: 1
limits: { max_connections: 20000, idle_timeout: 1h, max_message_size: 1MiB }
log: { level: warn }
routes: [{ name: echo, path_prefix: /, handler: echo, ping_interval: off }]
EOF
"$build/wsgate" -c "$work/backend.yaml" 2>"$work/backend.log" &
backend_pid=$!
wait_port "$backend_port"

start_wsgate() {
  cat >"$work/wsgate.yaml" <<EOF
listeners: [{ address: 127.0.0.1:${port[wsgate]} }]
workers: 1
limits: { max_connections: 20000, idle_timeout: 1h, max_message_size: 1MiB }
log: { level: warn }
routes: [{ name: echo, path_prefix: /, upstream: "ws://127.0.0.1:$backend_port" }]
EOF
  "$build/wsgate" -c "$work/wsgate.yaml" 2>"$work/wsgate.log" &
  pid[wsgate]=$!
  owner[wsgate]=$!
}

# start_nginx NAME BUFFER: nginx's own default proxy_buffer_size is one page.
start_nginx() {
  local name=$1 buffer=$2 dir="$work/$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  upstream echo { server 127.0.0.1:$backend_port; }
  server {
    listen 127.0.0.1:${port[$name]} backlog=4096;
    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host \$host;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_buffer_size $buffer;
      proxy_buffers 8 $buffer; # only so that nginx accepts 64k above
    }
  }
}
EOF
  nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" &
  owner[$name]=$!
}

start_haproxy() {
  # maxconn so that 2 descriptors a connection fit under the 20000 limit
  cat >"$work/haproxy.cfg" <<EOF
global
  maxconn 9950
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend fe
  bind 127.0.0.1:${port[haproxy]}
  default_backend be
backend be
  server echo 127.0.0.1:$backend_port
EOF
  haproxy -db -f "$work/haproxy.cfg" 2>"$work/haproxy.log" &
  pid[haproxy]=$!
  owner[haproxy]=$!
}

start_all() {
  for p in $proxies; do
    case $p in
    wsgate) start_wsgate ;;
    nginx) start_nginx nginx 4k ;;
    nginx64k) start_nginx nginx64k 64k ;;
    haproxy) start_haproxy ;;
    *) echo "compare.sh: unknown proxy $p" >&2; exit 2 ;;
    esac
  done
  for p in $proxies; do
    wait_port "${port[$p]}"
    if [[ $p == nginx* ]]; then
      pid[$p]=$(pgrep -P "${owner[$p]}" | head -n1) # the one worker
    fi
  done
}

# Memory is measured on fresh processes: a heap that earlier scenarios grew
# would hide what new connections cost.
restart_all() {
  for p in $proxies; do
    kill "${owner[$p]}" 2>/dev/null || true
    wait "${owner[$p]}" 2>/dev/null || true
  done
  start_all
}

start_all

# -- scenarios ------------------------------------------------------------------

declare -A res=() # res[scenario,proxy] = wsbench's result line

# kv LINE KEY: the value of KEY=... in LINE
kv() { sed -nE "s/.*(^| )$2=([^ ]*).*/\2/p" <<<"$1"; }

run() {
  local scenario=$1
  shift
  for p in $proxies; do
    res[$scenario,$p]=$("$bench" -u "ws://127.0.0.1:${port[$p]}/" -p "${pid[$p]}" "$@")
    echo "$scenario $p: ${res[$scenario,$p]}" >&2
  done
}

# ratio A B: A/B with two decimals, or - when either is missing
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-";
                                    else printf "%.2f", a / b }'
}

# table SCENARIO TITLE COLUMN:KEY...: one row per proxy, then the ratios of
# the first column's key to nginx and haproxy
table() {
  local scenario=$1 title=$2
  shift 2
  local cols=("$@") key
  key=${cols[-1]#*:} # the ratio column is the last one
  echo
  echo "**$title**"
  echo
  local head="| proxy |" rule="|---|"
  for c in "${cols[@]}"; do
    head+=" ${c%%:*} |"
    rule+="---|"
  done
  echo "$head × nginx | × HAProxy |"
  echo "$rule---|---|"
  for p in $proxies; do
    local line=${res[$scenario,$p]} row="| $p |"
    for c in "${cols[@]}"; do
      row+=" $(kv "$line" "${c#*:}") |"
    done
    row+=" $(ratio "$(kv "$line" "$key")" "$(kv "${res[$scenario,nginx]:-}" "$key")") |"
    row+=" $(ratio "$(kv "$line" "$key")" "$(kv "${res[$scenario,haproxy]:-}" "$key")") |"
    echo "$row"
  done
}

out="$work/tables.md"
for s in $only; do
  case $s in
  rate)
    run rate -c 100 -r 10000 -s 64 -d "$secs" -w 2
    table rate "64 B at a fixed 10,000 msg/s, 100 connections" \
      msg/s:mps p50_µs:p50_us p99_µs:p99_us "CPU µs per round trip:cpu_us_per" >>"$out"
    ;;
  sat)
    run sat -c 100 -k 1 -s 64 -d "$secs" -w 2
    table sat "64 B saturated, 100 connections, 1 in flight each" \
      msg/s:mps p50_µs:p50_us p99_µs:p99_us "CPU µs per round trip:cpu_us_per" >>"$out"
    ;;
  big)
    run big -c 10 -k 1 -s 65536 -d "$secs" -w 2
    table big "64 KiB saturated, 10 connections, 1 in flight each" \
      msg/s:mps p50_µs:p50_us p99_µs:p99_us "CPU µs per round trip:cpu_us_per" >>"$out"
    ;;
  idle)
    restart_all
    run idle -m idle -c 5000 -T -s 65536
    table idle "5,000 idle connections (RSS KiB per connection; CPU µs per upgrade)" \
      open:open "CPU µs per upgrade:cpu_us_per" "after one 64 KiB echo:touched_kib_per_conn" \
      "after the upgrade:idle_kib_per_conn" >>"$out"
    ;;
  churn)
    # A fixed rate, like the 64 B figure: closed-loop CPU per connection
    # varies with how fast each proxy lets the loop spin.
    run churn -m churn -c 200 -r 5000 -d "$secs" -w 1
    table churn "churn at a fixed 5,000 connections/s: connect, upgrade, one 64 B echo, close" \
      conn/s:cps p50_µs:p50_us p99_µs:p99_us errors:errors late:late \
      "CPU µs per connection:cpu_us_per" >>"$out"
    ;;
  capacity)
    restart_all
    run capacity -m idle -c 9900 -n 3
    table capacity "9,900 idle connections in 3 steps (RSS KiB of the process)" \
      step1:step1_rss_kib step2:step2_rss_kib step3:step3_rss_kib open:open \
      "KiB per connection:idle_kib_per_conn" >>"$out"
    ;;
  *)
    echo "compare.sh: unknown scenario $s" >&2
    exit 2
    ;;
  esac
done

echo
echo "wsgate $("$build/wsgate" --version | head -n1), $(nginx -v 2>&1), $(haproxy -v | head -n1)"
echo "$(nproc) cores; $secs s windows; one worker each; backend: wsgate's echo handler"
cat "$out"
