"""The load generator side of scripts/bench: wrk, driven by generated Lua scripts.

Every scenario counts as an error any answer whose status is not the one it expects (wrk's own
count only knows >= 400), plus wrk's connection, read, write and timeout errors (printed by
kind when there are any); 5xx answers are also counted apart, as `server_errors`.
"""
import os, re, resource, shutil, subprocess

COMMON = """
local threads = {}
local n = 0
setup = function(thread)
  thread:set("tid", n)
  thread:set("nthreads", %(threads)d)
  n = n + 1
  table.insert(threads, thread)
end
bad = 0
broken = 0
wrk.method = "%(method)s"
wrk.body = %(body)s
%(headers)s
response = function(status, headers, body)
  if status ~= %(expect)d and not exhausted then
    bad = bad + 1
    if status >= 500 then broken = broken + 1 end
    if bad == 1 then io.stderr:write("UNEXPECTED ", status, " ", body:sub(1, 200), "\\n") end
  end
  %(on_response)s
end
done = function(summary, latency, requests)
  local b, s = 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    s = s + t:get("broken")
  end
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%f %%f %%d\\n", summary.requests,
    b + e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99), s))
  io.write(string.format("SOCKET %%d %%d %%d %%d\\n", e.connect, e.read, e.write, e.timeout))
end
"""

# A queue of values per thread, read from a file of lines: thread T takes lines T, T+N, T+2N, …
# A thread that runs out stops, so the run ends early and the rate is over the time it ran.
QUEUE = """
queue = {}
head = 1
tail = 0
init = function(args)
  local i = 0
  for line in io.lines("%(file)s") do
    if i %% nthreads == tid then tail = tail + 1; queue[tail] = line end
    i = i + 1
  end
end
take = function()
  local v = queue[head]
  if v == nil then
    -- Out of values: this thread stops, and what it sends meanwhile is not counted.
    exhausted = true
    wrk.thread:stop()
    return "exhausted"
  end
  queue[head] = nil
  head = head + 1
  return v
end
give = function(v)
  tail = tail + 1
  queue[tail] = v
end
"""


def ensure_wrk(as_root):
    if shutil.which("wrk"):
        return
    print("scripts/bench: installing wrk", flush=True)
    as_root(["apt-get", "update", "-q"])
    as_root(["apt-get", "install", "-y", "-q", "wrk"])


def lua_string(s):
    return "nil" if s is None else '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(method="GET", body=None, headers=None, expect=200, extra="", on_response="", threads=2):
    hdrs = "\n".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in (headers or {}).items())
    return COMMON % dict(method=method, body=lua_string(body), headers=hdrs, expect=expect,
                         on_response=on_response, threads=threads) + extra


# Called once, right before the next measured run starts (after its warm-up): the harness's
# --flamegraphs starts perf there, so that a profile leaves out a scenario's set-up.
before_measure = None

# The server under test: a measured run (not a set-up, not in the background, with no load in
# the background beside it) reports the CPU time the server used per request (`cpu_us`, with
# user and system apart) and wrk's own (`wrk_cpu_us`).
watched_pid = None
_background = []


def cpu_seconds(pid):
    """The user and the system CPU time `pid` (all its threads) has used so far, in seconds;
    None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick
    except (OSError, IndexError, ValueError):
        return None


def run(tmp, url, lua, seconds, connections, warmup, threads=2, background=False, set_up=False):
    """Runs wrk with `lua` (after a warm-up of `warmup` seconds, unless 0) and returns the
    figures; with `background`, returns the started process for `finish`. A `set_up` run
    (making codes for a scenario, say) is not the measured one."""
    global before_measure
    path = os.path.join(tmp, f"s{abs(hash(lua)) % 10**8}.lua")
    with open(path, "w") as f:
        f.write(lua)
    cmd = lambda secs: ["wrk", f"-t{threads}", f"-c{max(connections, threads)}", f"-d{secs}s", "--timeout", "10s", "-s", path, url]
    if warmup:
        subprocess.run(cmd(warmup), capture_output=True)
    if before_measure and not set_up:
        start, before_measure = before_measure, None
        start()
    _background[:] = [b for b in _background if b.poll() is None]
    watched = watched_pid if not (set_up or background or _background) else None
    cpu_before = cpu_seconds(watched) if watched else None
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd(seconds), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if background:
        _background.append(proc)
        return proc
    result = finish(proc)
    cpu_after = cpu_seconds(watched) if cpu_before is not None else None
    if cpu_after is not None and result["requests"]:
        per_request = [(after - before) * 1e6 / result["requests"] for before, after in zip(cpu_before, cpu_after)]
        result["cpu_us"] = round(sum(per_request), 1)
        result["cpu_user_us"], result["cpu_system_us"] = (round(x, 1) for x in per_request)
        # wrk is the only child that ends meanwhile: what it used is the load's own cost.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime
        result["wrk_cpu_us"] = round(used * 1e6 / result["requests"], 1)
    return result


def finish(proc):
    out, err = proc.communicate()
    m = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)", out)
    for line in sorted(set(l for l in err.splitlines() if l.startswith("UNEXPECTED")))[:3]:
        print("    first unexpected answer:", line.removeprefix("UNEXPECTED "), flush=True)
    if not m:
        raise SystemExit("wrk output not understood:\n" + out + err)
    socket = re.search(r"SOCKET (\d+) (\d+) (\d+) (\d+)", out)
    if socket and any(int(x) for x in socket.groups()):
        kinds = ", ".join(f"{k} {v}" for k, v in zip(("connect", "read", "write", "timeout"), socket.groups()))
        print(f"    socket errors: {kinds}", flush=True)
    n, errors, micros, p50, p99 = int(m[1]), int(m[2]), int(m[3]), float(m[4]), float(m[5])
    return {"requests": n, "rps": round(n / (micros / 1e6)), "p50_ms": round(p50 / 1000, 2),
            "p99_ms": round(p99 / 1000, 2), "errors": errors, "server_errors": int(m[6])}
