"""The soak scenario of scripts/bench (`--soak MINUTES`): a steady mixed load for a long time,
with the server's memory and the database's size sampled every 30 s, to show whether they
level off.

The load is paced, not flat out: `rate` requests a second in all, spread evenly over five kinds
(client credentials with a JWT, an authorization code made and exchanged, a refresh with
rotation, a device authorization, an API key introspected). Refresh tokens from the exchanges go
into a bounded pool that the refreshes draw from and put the rotated token back into; the
families that fall out of the pool are left to go idle. The client they belong to has a short
refresh lifetime, so that families end within the soak, as they do over days in a deployment.

A load generator, not a test: it waits on the clock to keep the pace.
"""
import collections, http.client, json, os, threading, time, urllib.parse

KINDS = ("client_credentials", "code exchange", "refresh", "device_authorization", "key introspection")
WORKERS = 8


class Load:
    def __init__(self, p, tools, clients, rate):
        self.p, self.tools, self.clients, self.rate = p, tools, clients, rate
        self.lock = threading.Lock()
        self.next_slot = 0
        self.refresh_pool = collections.deque(maxlen=200)
        self.done = collections.Counter()
        self.failed = collections.Counter()
        self.server_errors = 0
        self.first_failure = None
        self.stop = threading.Event()

    def take_slot(self):
        with self.lock:
            slot = self.next_slot
            self.next_slot += 1
        return slot

    def record(self, kind, status, expected, body):
        with self.lock:
            if status == expected:
                self.done[kind] += 1
                return True
            self.failed[kind] += 1
            self.server_errors += status >= 500
            if self.first_failure is None:
                self.first_failure = f"{kind}: {status} {body[:200]!r}"
            return False

    def worker(self, started):
        conn = http.client.HTTPConnection("127.0.0.1", self.p.port, timeout=30)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        web, jwt, device, rs, key = (self.clients[k] for k in ("web", "jwt", "device", "resource_server", "api_key"))

        def call(method, path, body=None, headers=None):
            nonlocal conn
            try:
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                return r.status, r.getheader("Location", ""), r.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.p.port, timeout=30)
                return 0, "", str(e).encode()

        basic = self.tools["basic"]
        while not self.stop.is_set():
            slot = self.take_slot()
            wait = started + slot / self.rate - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                break
            kind = KINDS[slot % len(KINDS)]
            if kind == "refresh" and not self.refresh_pool:
                kind = "code exchange"
            if kind == "client_credentials":
                status, _, body = call("POST", "/oauth/token", "grant_type=client_credentials",
                                       {**form, "Authorization": basic(jwt)})
                self.record(kind, status, 200, body)
            elif kind == "code exchange":
                status, location, body = call("GET", self.tools["authorize_path"], headers={"Cookie": self.clients["cookie"]})
                code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query).get("code")
                if not self.record("authorization request", status, 303, body) or not code:
                    continue
                status, _, body = call("POST", "/oauth/token", self.tools["exchange_body"](code[0]),
                                       {**form, "Authorization": basic(web)})
                if self.record(kind, status, 200, body):
                    self.refresh_pool.append(json.loads(body)["refresh_token"])
            elif kind == "refresh":
                try:
                    token = self.refresh_pool.popleft()
                except IndexError:
                    continue
                status, _, body = call("POST", "/oauth/token",
                                       "grant_type=refresh_token&refresh_token=" + urllib.parse.quote(token),
                                       {**form, "Authorization": basic(web)})
                if self.record(kind, status, 200, body):
                    self.refresh_pool.append(json.loads(body)["refresh_token"])
            elif kind == "device_authorization":
                status, _, body = call("POST", "/oauth/device_authorization",
                                       f"client_id={device['client_id']}&scope=read", form)
                self.record(kind, status, 200, body)
            else:
                status, _, body = call("POST", "/oauth/introspect", "token=" + urllib.parse.quote(key),
                                       {**form, "Authorization": basic(rs)})
                active = status == 200 and json.loads(body).get("active") is True
                self.record(kind, 200 if active else status or 1, 200, body)
        conn.close()


def database_bytes(p, tools):
    """The database's size on disk: the SQLite file with its write-ahead log, or PostgreSQL's
    own count for the database."""
    if p.pg:
        return int(tools["psql_value"](p.pg[0], f"SELECT pg_database_size('{p.pg[2]}')"))
    return sum(os.path.getsize(p.db_path + s) for s in ("", "-wal", "-shm") if os.path.exists(p.db_path + s))


def largest_tables(p, top=8):
    """SQLite: the tables and indexes that take the most room, with their row counts (tables)."""
    if p.pg:
        return []
    import sqlite3
    con = sqlite3.connect(f"file:{p.db_path}?mode=ro", uri=True, timeout=30)
    try:
        sizes = con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT ?", (top,)).fetchall()
        tables = {n for (n,) in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        return [dict(name=n, mib=round(b / 1024 / 1024, 1),
                     rows=con.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] if n in tables else None)
                for n, b in sizes]
    finally:
        con.close()


def run(p, tools, clients, minutes, rate, sample_secs=30):
    """Runs the load for `minutes`; returns the samples and the totals."""
    load = Load(p, tools, clients, rate)
    started = time.monotonic()
    threads = [threading.Thread(target=load.worker, args=(started,), daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    samples = []
    print(f"scripts/bench: soak for {minutes} min at {rate} requests/s; a sample every {sample_secs} s", flush=True)
    try:
        for i in range(int(minutes * 60 / sample_secs) + 1):
            at = started + i * sample_secs
            time.sleep(max(0.0, at - time.monotonic()))
            with load.lock:
                done, failed = sum(load.done.values()), sum(load.failed.values())
            sample = dict(minute=round((time.monotonic() - started) / 60, 1),
                          rss_mib=round(tools["proc_kib"](p.proc.pid, "VmRSS") / 1024, 1),
                          database_mib=round(database_bytes(p, tools) / 1024 / 1024, 1),
                          requests=done, failed=failed)
            samples.append(sample)
            print(f"  {sample['minute']:>5} min: RSS {sample['rss_mib']} MiB, database {sample['database_mib']} MiB, "
                  f"{done:,} requests, {failed:,} failed", flush=True)
    finally:
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
    elapsed = time.monotonic() - started
    return dict(minutes=minutes, rate=rate, samples=samples, elapsed_s=round(elapsed),
                achieved_rate=round(sum(load.done.values()) / elapsed),
                by_kind=dict(load.done), failed=dict(load.failed), server_errors=load.server_errors,
                first_failure=load.first_failure, largest=largest_tables(p),
                peak_rss_mib=round(tools["proc_kib"](p.proc.pid, "VmHWM") / 1024, 1))


def markdown(result, meta):
    """The soak's section of BENCHMARKS.md."""
    s = result["samples"]
    lines = [f"Soak: `{meta['command']}` at {meta['commit']} on {meta['date']} ({meta['database']}, {meta['cpu']}, "
             f"{meta['cores']} cores). {result['rate']} requests/s asked (a code exchange is two: the authorization "
             f"request and the exchange), {result['achieved_rate']} served, for "
             f"{result['minutes']} minutes; {sum(result['failed'].values())} failed, {result['server_errors']} 5xx. "
             f"Requests by kind: " + ", ".join(f"{k} {v:,}" for k, v in sorted(result["by_kind"].items())) + ".",
             "", "| minute | RSS (MiB) | database (MiB) | requests so far |", "| ---: | ---: | ---: | ---: |"]
    # A long soak keeps its table short: every k-th sample (and the last), at most about 40 rows.
    step = max(1, -(-len(s) // 40))
    shown = [x for i, x in enumerate(s) if i % step == 0 or i == len(s) - 1]
    if step > 1:
        lines[-2:-2] = [f"One sample in {step} of the {len(s)} (one each 30 s) is shown, and the last.", ""]
    lines += [f"| {x['minute']} | {x['rss_mib']} | {x['database_mib']} | {x['requests']:,} |" for x in shown]
    lines += ["", f"Peak RSS during the soak {result['peak_rss_mib']} MiB (the set-up's one sign-in not counted)."]
    if result["largest"]:
        lines += ["", "What takes the room at the end:", "", "| table or index | MiB | rows |", "| --- | ---: | ---: |"]
        lines += [f"| {t['name']} | {t['mib']} | {'' if t['rows'] is None else format(t['rows'], ',')} |"
                  for t in result["largest"]]
    return "\n".join(lines)
