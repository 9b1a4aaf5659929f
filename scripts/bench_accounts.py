"""Anti-enumeration timing for scripts/bench: does the answer to "forgot password" or to a
registration take longer for an address that has an account than for one that has none?

Each scenario posts the form one request at a time, alternating an address with an account and
one without, and compares the latency distributions. The bodies and statuses are compared too
(they must be identical). Measured, not asserted: the harness reports the medians and their
difference in BENCHMARKS.md. Needs the server started with `accounts.registration = "open"` and
`limits.emails_per_address = 0` (one client sends every request).
"""
import re, statistics, time, urllib.parse

FORM = "application/x-www-form-urlencoded"
# Emails about one address: three, then the per-address back-off (Policy::EMAIL).
USES_PER_ADDRESS = 3


def seed(p, prefix, count):
    """`count` accounts made with `postern admin user invite` (no password hashing, no email)."""
    emails = [f"{prefix}-{i}@example.org" for i in range(count)]
    for e in emails:
        p.admin("user", "invite", e)
    return emails


def form_session(p, http, path):
    """(cookie header, csrf value) from a GET of the form at `path`."""
    _, headers, body = http("GET", p.base + path)
    csrf = re.search(rb'name="csrf" value="([^"]+)"', body)[1].decode()
    cookie = "; ".join(c.split(";")[0] for c in headers.get_all("Set-Cookie") or [])
    return cookie, csrf


def measure(p, http, path, fields_for, existing, unknown):
    """Posts `fields_for(email)` for each address in turn, alternating; returns the latencies
    (ms) of each kind, and whether every answer was the same status and body."""
    cookie, csrf = form_session(p, http, path)
    headers = {"Content-Type": FORM, "Cookie": cookie, "Origin": p.base}
    times = {"existing": [], "unknown": []}
    answers = set()
    for known, fresh in zip(existing, unknown):
        for kind, email in (("existing", known), ("unknown", fresh)):
            body = urllib.parse.urlencode(dict(csrf=csrf, **fields_for(email)))
            started = time.perf_counter()
            status, _, page = http("POST", p.base + path, body, headers)
            times[kind].append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise SystemExit(f"{path} answered {status} for {email}: {page[:200]!r}")
            answers.add(page)
    return times, len(answers) == 1


def summary(name, times, identical):
    e, u = times["existing"], times["unknown"]
    med_e, med_u = statistics.median(e), statistics.median(u)
    p90 = lambda xs: sorted(xs)[int(len(xs) * 0.9) - 1]
    return dict(name=name, samples=len(e), existing_median_ms=round(med_e, 2), unknown_median_ms=round(med_u, 2),
                difference_ms=round(med_e - med_u, 2), existing_p90_ms=round(p90(e), 2),
                unknown_p90_ms=round(p90(u), 2), identical_answers=identical)


def run(p, http, quick):
    """Both scenarios; returns their summaries."""
    accounts = 8 if quick else 40
    results = []
    existing = seed(p, "bench-forgot", accounts)
    known = [e for e in existing for _ in range(USES_PER_ADDRESS)]
    unknown = [f"nobody-forgot-{i}@example.org" for i in range(len(known))]
    times, same = measure(p, http, "/password/forgot", lambda email: dict(email=email), known, unknown)
    results.append(summary("forgot password", times, same))

    existing = seed(p, "bench-register", accounts)
    known = [e for e in existing for _ in range(USES_PER_ADDRESS)]
    unknown = [f"new-{i}@example.org" for i in range(len(known))]
    fields = lambda email: dict(email=email, name="Bench", password="a bench password, long enough")
    times, same = measure(p, http, "/register", fields, known, unknown)
    results.append(summary("registration (Argon2id, default parameters)", times, same))
    return results
