#!/usr/bin/env bash
# The soak of examples/http, quiet and then under attack, in one run: started by
# `sudo SOAK=600 benches/http.sh` (which boots the unikernel on a tap in its namespace and
# exports what this script needs), not on its own.
#
# Two phases of $SOAK seconds each, with the same legitimate load:
#   - wrk at a moderate, paced load on keep-alive connections (16 connections, 5 ms between
#     requests on each), plus a second wrk that opens a new connection for every request
#     (4 connections, `Connection: close`), for socket churn; both with --latency;
#   - a sequential client that opens a connection per request (20 ms between them) and
#     times each from its connect to the end of its answer: wrk times a request from its
#     write, so a SYN the guest leaves unanswered (and the client's retransmission 1 s
#     later) shows only here;
#   - quiet: nothing else;
#   - attack: also $SLOWLORIS slowloris connections (a request line, then one header byte a
#     second per connection, never a whole header; reconnecting when the server closes) and
#     a flood of spoofed SYNs at $SYN_RATE a second from 198.18.0.0/15, both from
#     benches/attack, started 5 s before the load and ended 2 s after it, inside the
#     namespace only (the attack binary refuses to run anywhere else).
# Every 30 s the unikernel's /stats is read. At the end it prints the legitimate p50/p99
# of each phase and the ratio (the target: p99 under attack within 2x of quiet, for the
# connect-to-answer time as well, and the connection-per-request throughput within 2x), the
# errors, whether the guest is alive (QEMU runs, its console shows no panic, it answers),
# and the heap's high-water mark over time: flat means the last sample of a phase is
# within $FLAT_PERCENT % of the sample taken $SETTLE s into it (under attack /stats may go
# unanswered; the reading after the attack ends the series). It fails (status 1) if the
# guest died, a high-water mark did not stay flat, or a legitimate load's p99 grew past
# 2x (its throughput fell below half, for connections per request) or it served nothing
# under attack.
set -euo pipefail

: "${NS:?run through benches/http.sh (SOAK=600 sudo benches/http.sh)}"
: "${WORK:?}" "${SOAK:?}" "${ATTACK:?}" "${UNIKERNEL_URL:?}" "${UNIKERNEL_PID:?}" "${UNIKERNEL_SERIAL:?}"
SLOWLORIS=${SLOWLORIS:-200}
SYN_RATE=${SYN_RATE:-200}
SETTLE=${SETTLE:-60}
FLAT_PERCENT=${FLAT_PERCENT:-3}
TARGET=$(echo "$UNIKERNEL_URL" | sed -E 's|^http://([^/]+)/.*$|\1|'):80

in_ns() { ip netns exec "$NS" "$@"; }

cat >"$WORK/paced.lua" <<'EOF'
function delay() return 5 end
EOF
cat >"$WORK/close.lua" <<'EOF'
wrk.headers["Connection"] = "close"
function delay() return 20 end
EOF
# The sequential client: prints "requests failures p50_ms p99_ms max_ms" at the end.
cat >"$WORK/connect.py" <<'EOF'
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
REQUEST = b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n"

def answered(stream):
    # The head, then a body of its Content-Length.
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = stream.recv(4096)
        if not chunk:
            return False
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = stream.recv(4096)
        if not chunk:
            return False
        body += chunk
    return head.startswith(b"HTTP/1.1 200")

times, failures = [], 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=10) as stream:
            stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream.sendall(REQUEST)
            ok = answered(stream)
    except OSError:
        ok = False
    if ok:
        times.append((time.monotonic() - start) * 1000)
    else:
        failures += 1
    time.sleep(0.02)
times.sort()
pick = lambda q: times[min(len(times) - 1, int(len(times) * q))] if times else float("nan")
print(f"{len(times)} {failures} {pick(0.5):.2f} {pick(0.99):.2f} {times[-1] if times else float('nan'):.2f}")
EOF

# QEMU's CPU time so far (user + system, in clock ticks) and the wall clock (in ticks too):
# under TCG the guest's CPU runs while it has work and halts otherwise, so the share of a
# CPU QEMU took over a phase is how busy the guest was.
qemu_cpu() {
    local ticks
    ticks=$(getconf CLK_TCK)
    awk -v ticks="$ticks" -v now="$(date +%s.%N)" \
        '{ sub(/^.*\) /, ""); printf "%d %.0f\n", $12 + $13, now * ticks }' "/proc/$UNIKERNEL_PID/stat"
}

attackers=()
stop_attackers() {
    for pid in "${attackers[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_attackers EXIT

# One phase: the legitimate load for $SOAK s (and the attack, for phase "attack"), /stats
# every 30 s into $WORK/soak-<phase>-stats.txt.
phase() {
    local name=$1
    echo "== soak, $name: ${SOAK} s$([ "$name" = attack ] && echo " with $SLOWLORIS slowloris connections and $SYN_RATE spoofed SYNs/s")"
    attackers=()
    if [ "$name" = attack ]; then
        ip netns exec "$NS" "$ATTACK" slowloris --target "$TARGET" --connections "$SLOWLORIS" \
            --seconds $((SOAK + 7)) >"$WORK/soak-slowloris.txt" 2>&1 &
        attackers+=($!)
        ip netns exec "$NS" "$ATTACK" syn-flood --target "$TARGET" --rate "$SYN_RATE" \
            --seconds $((SOAK + 7)) >"$WORK/soak-synflood.txt" 2>&1 &
        attackers+=($!)
        sleep 5
    fi
    # The stack's work over the phase: /stats before the load and after it.
    in_ns curl -s -m 5 --retry 2 "${UNIKERNEL_URL}stats" >"$WORK/soak-$name-work-start.txt" || true
    qemu_cpu >"$WORK/soak-$name-cpu-start.txt"
    ip netns exec "$NS" wrk -t1 -c16 -d"${SOAK}"s --latency -s "$WORK/paced.lua" "$UNIKERNEL_URL" \
        >"$WORK/soak-$name-paced.txt" 2>&1 &
    local paced=$!
    ip netns exec "$NS" wrk -t1 -c4 -d"${SOAK}"s --latency -s "$WORK/close.lua" "$UNIKERNEL_URL" \
        >"$WORK/soak-$name-close.txt" 2>&1 &
    local close=$!
    ip netns exec "$NS" python3 "$WORK/connect.py" "${TARGET%:*}" "${TARGET#*:}" "$SOAK" \
        >"$WORK/soak-$name-connect.txt" 2>&1 &
    local connect=$!
    : >"$WORK/soak-$name-stats.txt"
    local start
    start=$(date +%s)
    while kill -0 "$paced" 2>/dev/null; do
        sleep 30
        local stats used high sockets expired
        stats=$(in_ns curl -s -m 5 --retry 2 "${UNIKERNEL_URL}stats" || true)
        used=$(echo "$stats" | awk '/^heap_used/ { print $2 }')
        high=$(echo "$stats" | awk '/^heap_high_water/ { print $2 }')
        sockets=$(echo "$stats" | awk '/^sockets/ { print $2 }')
        # In /stats order: half-open requests expired and evicted, waiting connections
        # reset by the listener, SYNs it dropped for want of room, connections the app
        # closed for slowness and gave up at its cap.
        expired=$(echo "$stats" | awk '/^(half_open_expired|half_open_evicted|waiting_evicted|syn_dropped|expired|evicted) / { printf "%s%s", sep, $2; sep = "/" }')
        echo "$(($(date +%s) - start)) ${used:-?} ${high:-?} ${sockets:-?} ${expired:-?}" |
            tee -a "$WORK/soak-$name-stats.txt" |
            awk -v phase="$name" '{ printf "%-6s t=%4ss heap_used=%s heap_high_water=%s sockets=%s half_open_expired/evicted,waiting_evicted,syn_dropped,expired,evicted=%s\n", phase, $1, $2, $3, $4, $5 }'
    done
    wait "$paced" "$close" "$connect" || true
    qemu_cpu >"$WORK/soak-$name-cpu-end.txt"
    in_ns curl -s -m 5 --retry 2 "${UNIKERNEL_URL}stats" >"$WORK/soak-$name-work-end.txt" || true
    for pid in "${attackers[@]}"; do wait "$pid" || true; done
    attackers=()
    if [ "$name" = attack ]; then
        cat "$WORK/soak-slowloris.txt" "$WORK/soak-synflood.txt"
    fi
}

phase quiet
phase attack

# The guest after both phases: QEMU still runs, no panic on its console, it answers.
alive=yes
kill -0 "$UNIKERNEL_PID" 2>/dev/null || alive="no (QEMU exited)"
grep -qE "panicked|memory allocation" "$UNIKERNEL_SERIAL" && alive="no (its console: $(grep -m1 -E "panicked|memory allocation" "$UNIKERNEL_SERIAL"))"
page=$(in_ns curl -s -m 10 -o /dev/null -w "%{http_code}" "$UNIKERNEL_URL" || true)
[ "$page" = 200 ] || alive="no (GET / answered ${page:-nothing})"
final_stats=$(in_ns curl -s -m 10 "${UNIKERNEL_URL}stats" || true)

python3 - "$WORK" "$SETTLE" "$FLAT_PERCENT" "$alive" "$final_stats" <<'EOF'
import re, sys
work, settle, flat_percent, alive, final_stats = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]

def ms(text, label):
    m = re.search(r"^\s+" + label + r"%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

def wrk(path):
    text = open(path).read()
    done = re.search(r"(\d+) requests in", text)
    if not done:
        # wrk gives up when its first connection fails.
        return 0, 0.0, float("nan"), float("nan"), "wrk did not run: " + " ".join(text.split())[:120]
    requests = int(done.group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = []
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += [f"{kind} {n}" for kind, n in zip(("connect", "read", "write", "timeout"), m.groups()) if n != "0"]
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors.append(f"non-2xx {m.group(1)}")
    return requests, rps, ms(text, "50"), ms(text, "99"), ", ".join(errors) or "none"

failed = []
stats = dict(line.split(" ", 1) for line in final_stats.splitlines() if " " in line)
print("== soak: legitimate clients, quiet vs under attack")
print(f"{'phase':7} {'load':22} {'requests':>9} {'req/s':>8} {'p50_ms':>8} {'p99_ms':>8}  errors")
rows = {}
for phase in ("quiet", "attack"):
    for load, label in (("paced", "keep-alive, paced"), ("close", "connection per request")):
        row = wrk(f"{work}/soak-{phase}-{load}.txt")
        rows[phase, load] = row
        print(f"{phase:7} {label:22} {row[0]:9} {row[1]:8.0f} {row[2]:8.2f} {row[3]:8.2f}  {row[4]}")
for load, label in (("paced", "keep-alive"), ("close", "connection per request")):
    quiet, attack = rows["quiet", load], rows["attack", load]
    if attack[0] == 0 or quiet[0] == 0:
        print(f"p99 under attack / quiet ({label}): no figure, a phase served nothing")
        failed.append(f"the {label} load served nothing in a phase")
        continue
    ratio = attack[3] / quiet[3]
    print(f"p99 under attack / quiet ({label}): {attack[3]:.2f} / {quiet[3]:.2f} ms = {ratio:.2f}x "
          f"({'within' if ratio <= 2 else 'NOT within'} 2x); p50 {attack[2] / quiet[2]:.2f}x")
    if ratio > 2:
        failed.append(f"the {label} load's p99 grew {ratio:.2f}x under attack")
    if load == "close":
        within = attack[1] * 2 >= quiet[1]
        print(f"requests/s under attack / quiet ({label}): {attack[1]:.0f} / {quiet[1]:.0f} = "
              f"{attack[1] / quiet[1]:.2f}x ({'within' if within else 'NOT within'} 2x)")
        if not within:
            failed.append(f"the {label} load's throughput fell {quiet[1] / attack[1]:.2f}x under attack")

print("== sequential client, a connection per request, from its connect to the end of its answer")
print(f"{'phase':7} {'requests':>9} {'failed':>7} {'p50_ms':>8} {'p99_ms':>8} {'max_ms':>8}")
connect = {}
for phase in ("quiet", "attack"):
    fields = open(f"{work}/soak-{phase}-connect.txt").read().split()
    try:
        requests, failures = int(fields[0]), int(fields[1])
        p50, p99, worst = map(float, fields[2:5])
    except (IndexError, ValueError):
        print(f"{phase:7} the client did not report: {' '.join(fields)[:120]}")
        failed.append(f"the sequential client did not report in the {phase} phase")
        continue
    connect[phase] = (requests, p99)
    print(f"{phase:7} {requests:9} {failures:7} {p50:8.2f} {p99:8.2f} {worst:8.2f}")
if len(connect) == 2 and connect["quiet"][0] and connect["attack"][0]:
    ratio = connect["attack"][1] / connect["quiet"][1]
    print(f"connect-to-answer p99 under attack / quiet: {connect['attack'][1]:.2f} / {connect['quiet'][1]:.2f} ms "
          f"= {ratio:.2f}x ({'within' if ratio <= 2 else 'NOT within'} 2x)")
    if ratio > 2:
        failed.append(f"the connect-to-answer p99 grew {ratio:.2f}x under attack")
elif len(connect) == 2:
    failed.append("the sequential client was answered in no phase")

def qemu_share(phase):
    # QEMU's CPU time over the load / the wall time (see qemu_cpu in the script).
    try:
        (cpu0, wall0), (cpu1, wall1) = (map(int, open(f"{work}/soak-{phase}-cpu-{end}.txt").read().split())
                                        for end in ("start", "end"))
    except (OSError, ValueError):
        return "?"
    return f"{(cpu1 - cpu0) * 100 / max(wall1 - wall0, 1):.0f}%"

print("== the guest's work over each phase (from /stats before and after the load)")
print(f"{'phase':7} {'polls/s':>8} {'rx/s':>7} {'tx/s':>7} {'polls/rx':>8} {'sockets':>8} {'conns':>6} {'waits/s':>8} {'guest_cpu':>9}")
for phase in ("quiet", "attack"):
    ends = []
    for end in ("start", "end"):
        try:
            text = open(f"{work}/soak-{phase}-work-{end}.txt").read()
        except OSError:
            text = ""
        ends.append(dict((k, int(v)) for k, v in (line.split(" ", 1) for line in text.splitlines() if " " in line)
                         if v.strip().isdigit()))
    first, last = ends
    keys = ("uptime_ms", "polls", "rx_frames", "tx_frames", "waits")
    if not all(k in first and k in last for k in keys):
        print(f"{phase:7} no figure (/stats unanswered, or an image without a poll count)")
        continue
    seconds = (last["uptime_ms"] - first["uptime_ms"]) / 1000
    rate = lambda k: (last[k] - first[k]) / seconds
    rx = last["rx_frames"] - first["rx_frames"]
    print(f"{phase:7} {rate('polls'):8.0f} {rate('rx_frames'):7.0f} {rate('tx_frames'):7.0f} "
          f"{(last['polls'] - first['polls']) / max(rx, 1):8.2f} {last.get('sockets', 0):8} "
          f"{last.get('connections', 0):6} {rate('waits'):8.1f} {qemu_share(phase):>9}")

print("== heap high-water mark over time (bytes)")
for phase in ("quiet", "attack"):
    samples = [line.split() for line in open(f"{work}/soak-{phase}-stats.txt") if line.strip()]
    answered = [(int(s[0]), int(s[2])) for s in samples if s[2] != "?"]
    missed = len(samples) - len(answered)
    if phase == "attack" and "heap_high_water" in stats:
        # A high-water mark only grows: the one read after the attack ended is its end.
        answered.append((int(samples[-1][0]) + 1 if samples else 0, int(stats["heap_high_water"])))
    print(f"{phase}: " + " ".join(f"{t}s:{h}" for t, h in answered) + (f"  ({missed} samples unanswered)" if missed else ""))
    settled = [(t, h) for t, h in answered if t >= settle] or answered
    if not settled:
        failed.append(f"{phase}: no /stats answered")
        continue
    (since, first), last = settled[0], settled[-1][1]
    growth = (last - first) * 100 / first
    flat = growth <= flat_percent
    print(f"{phase}: {first} at {since} s -> {last} at the end: {growth:+.1f} % "
          f"({'flat' if flat else 'NOT flat'}, tolerance {flat_percent:g} %)")
    if not flat:
        failed.append(f"{phase}: the heap's high-water mark grew {growth:+.1f} % after {settle} s")
if stats:
    print("after both phases: " + ", ".join(f"{k} {stats[k]}" for k in
          ("heap_size", "heap_used", "heap_high_water", "sockets", "accepted", "expired", "evicted",
            "half_open_expired", "half_open_evicted", "waiting_evicted", "syn_dropped", "syn_cookies",
            "cookie_connections") if k in stats))
print(f"guest alive: {alive}")
if alive != "yes":
    failed.append(f"the guest is not alive: {alive}")
print("soak: " + ("FAIL (" + "; ".join(failed) + ")" if failed else
      "PASS (alive, heap flat, legitimate p99 and connect-to-answer p99 within 2x, "
      "connection-per-request throughput within 2x)"))
sys.exit(1 if failed else 0)
EOF
