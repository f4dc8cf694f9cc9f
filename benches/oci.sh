#!/usr/bin/env bash
# Container start of a unikernel through the OCI path against the bare runner and a runc
# container, in one run: the time from the command to the guest's first line of output
# and to its exit, for
#   - podman run --runtime uk-runtime   (examples/hello, `cargo uk pkg`)
#   - ctr run --runc-binary uk-runtime  (the same image, containerd's runc v2 shim)
#   - runner boot --vmm monitor         (the same ELF, no container machinery)
#   - ctr run, podman run --runtime runc (a static C hello, the equivalent Linux container)
#   - runc run                          (the same static binary, a bare bundle)
# then the host memory of one running http VM (the container's process and conmon).
# Prints medians and ratios to the runc container and to the bare runner.
#
#   sudo benches/oci.sh [runs]     (default 10; needs podman, containerd, runc, gcc)
#
# podman keeps its storage and containerd its root in a temporary folder, deleted at exit.
set -euo pipefail
runs=${1:-10}
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "benches/oci.sh makes containers: run it as root" >&2; exit 1; }
for tool in podman ctr containerd runc gcc; do
    command -v "$tool" >/dev/null || { echo "benches/oci.sh needs $tool: apt-get install -y podman containerd runc gcc" >&2; exit 1; }
done
export CARGO_INCREMENTAL=0
(cd "$repo" && cargo build -q --release -p uk-runtime -p runner)
runtime=$repo/target/release/uk-runtime
runner=$repo/target/release/runner

tmp=$(mktemp -d)
containerd_pid=
cleanup() {
    podman "${podman_global[@]}" rm -a -f -t 0 >/dev/null 2>&1 || true
    podman "${podman_global[@]}" system reset -f >/dev/null 2>&1 || true
    [ -n "$containerd_pid" ] && kill "$containerd_pid" 2>/dev/null && wait "$containerd_pid" 2>/dev/null
    rm -rf "$tmp"
}
podman_global=(--root "$tmp/podman" --runroot "$tmp/podman-run" --storage-driver vfs --cgroup-manager cgroupfs --events-backend none)
trap cleanup EXIT
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

(cd "$repo" && cargo uk pkg hello -q --tag uk-bench-hello:1 --output "$tmp/hello.tar" >/dev/null)
(cd "$repo" && cargo uk pkg http -q --tag uk-bench-http:1 --output "$tmp/http.tar" >/dev/null)
hello_elf=$repo/examples/target/x86_64-unknown-none/release/hello

# The equivalent static Linux program, as a bundle (runc) and an image (podman).
mkdir -p "$tmp/static/rootfs"
printf '#include <unistd.h>\nint main(void) { write(1, "hello from a static binary\\n", 27); return 0; }\n' > "$tmp/hello.c"
gcc -static -Os -o "$tmp/static/rootfs/hello" "$tmp/hello.c"
(cd "$tmp/static" && runc spec && sed -i 's/"sh"/"\/hello"/; s/"terminal": true/"terminal": false/' config.json)
tar -C "$tmp/static/rootfs" -c . | podman "${podman_global[@]}" import -q --change 'ENTRYPOINT ["/hello"]' - localhost/uk-bench-static:1 >/dev/null

podman "${podman_global[@]}" load -q -i "$tmp/hello.tar" >/dev/null
podman "${podman_global[@]}" load -q -i "$tmp/http.tar" >/dev/null

cat > "$tmp/containerd.toml" <<EOF
version = 2
root = "$tmp/containerd/root"
state = "$tmp/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$tmp/containerd/containerd.sock"
EOF
containerd --config "$tmp/containerd.toml" >"$tmp/containerd.log" 2>&1 &
containerd_pid=$!
ctr=(ctr -a "$tmp/containerd/containerd.sock")
for _ in $(seq 100); do "${ctr[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${ctr[@]}" images import "$tmp/hello.tar" >/dev/null
podman "${podman_global[@]}" save -q --format oci-archive -o "$tmp/static.tar" localhost/uk-bench-static:1
"${ctr[@]}" images import --base-name localhost/uk-bench-static "$tmp/static.tar" >/dev/null

python3 - "$runs" "$tmp" "$runtime" "$runner" "$hello_elf" "${podman_global[*]}" <<'PY'
import shlex, statistics, subprocess, sys, time
runs, tmp, runtime, runner, elf, podman_global = int(sys.argv[1]), *sys.argv[2:]
podman = ["podman", *shlex.split(podman_global)]
ulimits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
ctr = ["ctr", "-a", f"{tmp}/containerd/containerd.sock"]

def timed(command, expect):
    """Seconds to the first line of output and to the exit."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp)
    first = process.stdout.readline()
    first_at = time.perf_counter() - start
    rest = process.stdout.read()
    code = process.wait()
    exit_at = time.perf_counter() - start
    if expect not in first or code != 0:
        sys.exit(f"{command}: status {code}, first line {first!r}")
    return first_at, exit_at

cases = {
    "podman + uk-runtime": lambda i: [*podman, "run", "--rm", "--runtime", runtime, *ulimits, "localhost/uk-bench-hello:1"],
    "ctr + uk-runtime": lambda i: [*ctr, "run", "--rm", "--runc-binary", runtime, "localhost/uk-bench-hello:1", f"uk-bench-{i}"],
    "runner --vmm monitor": lambda i: [runner, "boot", "--vmm", "monitor", "-q", elf],
    "ctr + runc (static)": lambda i: [*ctr, "run", "--rm", "localhost/uk-bench-static:1", f"uk-bench-static-{i}"],
    "podman + runc (static)": lambda i: [*podman, "run", "--rm", "--runtime", "runc", *ulimits, "localhost/uk-bench-static:1"],
    "runc run (static)": lambda i: ["runc", "--root", f"{tmp}/runc", "run", "-b", f"{tmp}/static", f"uk-bench-{i}"],
}
expect = {name: (b"hello from a static" if "static" in name else b"hello from a unikernel") for name in cases}
results = {name: ([], []) for name in cases}
# Alternating, so that a slow moment of the host is shared by all.
for i in range(runs):
    for name, command in cases.items():
        first, end = timed(command(i), expect[name])
        results[name][0].append(first)
        results[name][1].append(end)

base = statistics.median(results["runc run (static)"][1])
bare = statistics.median(results["runner --vmm monitor"][1])
print(f"{runs} runs each, medians (ms); ratios of the time to exit")
print(f"{'':26} {'first output':>13} {'exit':>9} {'/ runc run':>11} {'/ runner':>9}")
for name, (firsts, ends) in results.items():
    first, end = statistics.median(firsts), statistics.median(ends)
    print(f"{name:26} {first * 1e3:13.1f} {end * 1e3:9.1f} {end / base:10.2f}x {end / bare:8.2f}x")
PY

# Host memory of one running VM: the http example behind podman, serving.
podman "${podman_global[@]}" run -d --name uk-bench-http -p 18081:80 --runtime "$runtime" "${ulimits[@]}" localhost/uk-bench-http:1 >/dev/null
for _ in $(seq 120); do
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:18081/)" = 200 ] && break
    sleep 0.5
done
pid=$(podman "${podman_global[@]}" inspect --format '{{.State.Pid}}' uk-bench-http)
conmon=$(podman "${podman_global[@]}" inspect --format '{{.State.ConmonPid}}' uk-bench-http)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
echo "one http VM (32 MiB guest) serving: VMM process RSS $(rss "$pid") KiB, PSS $(pss "$pid") KiB; conmon RSS $(rss "$conmon") KiB, PSS $(pss "$conmon") KiB"
podman "${podman_global[@]}" stop -t 5 uk-bench-http >/dev/null
