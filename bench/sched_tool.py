#!/usr/bin/env python3
"""Helpers for bench/scheduler.sh, the refresh scheduler benchmark (stdlib only).

  sched_tool.py import  --url URL --key KEY --integration I --n N [--threads T]
                        [--user-prefix u] [--api-key]
      Imports N oauth2 connections (users u0..u{N-1}, each with its own
      access and refresh token, expires_in 3600; or with --api-key, an API
      key each) through POST /v1/connections, on T keep-alive connections;
      prints {"n","ok","errors","seconds","rate"}.

  sched_tool.py sample  --provider URL --keyrelay-pid P --provider-pid P
                        --baseline B --target N --out CSV [--timeout S] [--stall S]
      Every second, reads the fake provider's refresh counter (GET /stats) and
      the CPU time and memory of keyrelay, of the provider and of the whole
      machine, and appends one CSV row. Stops once TARGET refreshes beyond
      BASELINE were seen (exit 0), or after TIMEOUT seconds / STALL seconds
      without progress (exit 3).

  sched_tool.py report  RAW --out docs/scheduler-benchmark.md
      Turns bench/results/scheduler.txt into the report.
"""

import argparse
import csv
import http.client
import io
import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- import ------------------------------------------------------------------


def cmd_import(a):
    url = urllib.parse.urlsplit(a.url)
    headers = {"Authorization": f"Bearer {a.key}", "Content-Type": "application/json"}
    lock = threading.Lock()
    next_id = iter(range(a.n))
    result = {"ok": 0, "errors": 0, "first_error": None}
    started = time.monotonic()

    def connect():
        return http.client.HTTPConnection(url.hostname, url.port, timeout=60)

    def worker():
        conn = connect()
        while True:
            with lock:
                i = next(next_id, None)
            if i is None:
                break
            if a.api_key:
                creds = {"api_key": f"key-{a.user_prefix}-{i}"}
            else:
                creds = {"access_token": f"at-import-{i}", "refresh_token": f"rt-import-{i}",
                         "expires_in": 3600}
            body = json.dumps({"integration": a.integration, "user_id": f"{a.user_prefix}{i}",
                               "credentials": creds})
            status, text = None, ""
            for _ in range(3):  # a dropped keep-alive connection is retried
                try:
                    conn.request("POST", "/v1/connections", body, headers)
                    resp = conn.getresponse()
                    status, text = resp.status, resp.read().decode(errors="replace")
                    break
                except (http.client.HTTPException, OSError) as e:
                    text = repr(e)
                    conn.close()
                    conn = connect()
            with lock:
                if status == 201:
                    result["ok"] += 1
                else:
                    result["errors"] += 1
                    result["first_error"] = result["first_error"] or f"{status}: {text[:200]}"
                done = result["ok"] + result["errors"]
                if done % max(1, a.n // 10) == 0:
                    rate = done / (time.monotonic() - started)
                    print(f"[import] {done}/{a.n} ({rate:.0f}/s)", file=sys.stderr, flush=True)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    result.update(n=a.n, seconds=round(seconds, 3), rate=round(a.n / seconds, 1), threads=a.threads)
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


# --- sampling ----------------------------------------------------------------


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces: fields count from after ')'.
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_mem_kib(pid):
    """(VmRSS, VmHWM) of a process in KiB."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def machine_cpu_seconds():
    """(busy, total) CPU seconds of the whole machine, all cores."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]  # idle + iowait
    total = sum(vals[:8])     # guest time is already in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def provider_stats(base):
    with urllib.request.urlopen(f"{base}/stats", timeout=5) as r:
        return json.load(r)


SAMPLE_FIELDS = ["epoch", "refreshed", "keyrelay_cpu_s", "provider_cpu_s",
                 "keyrelay_rss_kib", "keyrelay_hwm_kib", "machine_busy_s", "machine_total_s",
                 "max_in_flight", "reused_refresh_tokens"]


def cmd_sample(a):
    started = time.time()
    last_progress, last_done = started, -1
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SAMPLE_FIELDS)
        k = 0
        while True:
            stats = provider_stats(a.provider)
            done = stats["refresh_grants"] - a.baseline
            busy, total = machine_cpu_seconds()
            rss, hwm = proc_mem_kib(a.keyrelay_pid)
            now = time.time()
            w.writerow([f"{now:.3f}", done,
                        f"{proc_cpu_seconds(a.keyrelay_pid):.2f}",
                        f"{proc_cpu_seconds(a.provider_pid):.2f}",
                        rss, hwm, f"{busy:.2f}", f"{total:.2f}",
                        stats["max_in_flight"], stats["reused_refresh_tokens"]])
            f.flush()
            if done != last_done:
                last_progress, last_done = now, done
            if k % 10 == 0:
                print(f"[sample] t={now - started:4.0f}s refreshed {done}/{a.target}",
                      file=sys.stderr, flush=True)
            if done >= a.target:
                return 0
            if now - started > a.timeout:
                print(f"[sample] timeout after {a.timeout}s: {done}/{a.target}", file=sys.stderr)
                return 3
            if now - last_progress > a.stall:
                print(f"[sample] no progress for {a.stall}s: {done}/{a.target}", file=sys.stderr)
                return 3
            # Stay on a one-second grid, whatever the sampling itself took.
            k += 1
            time.sleep(max(0.0, started + k - time.time()))


# --- the report ----------------------------------------------------------------
#
# The raw file (bench/results/scheduler.txt) is "# key: value" lines for the
# whole run, then blocks opened by "### <kind> key=value ...":
#   ### import          key=value lines
#   ### wrk phase=P     the wrk command ("$ ...") and its --latency output
#   ### round r=R       key=value lines (settings, timestamps, verification)
#   ### samples r=R     the sampler's CSV
#   ### log r=R         keyrelay's warnings and errors, counted by message
#   ### perf r=R        perf report output (BENCH_SCHED_PERF=1 only)


def parse_raw(path):
    meta, blocks, cur = {}, [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("### "):
                parts = line[4:].split()
                cur = {"kind": parts[0], "attrs": dict(p.split("=", 1) for p in parts[1:]), "lines": []}
                blocks.append(cur)
            elif line.startswith("# ") and ": " in line:
                # Run-wide facts, wherever they are (loadavg_after comes last).
                k, v = line[2:].split(": ", 1)
                meta[k.strip()] = v.strip()
            elif cur is not None:
                cur["lines"].append(line)
    return meta, blocks


def kv_lines(lines):
    out = {}
    for line in lines:
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def parse_wrk_block(block):
    """bench/report.py's wrk parser, on one block."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # no __pycache__ in bench/
    import report  # noqa: E402  (bench/report.py)
    run = {"target": block["attrs"].get("phase", "?"), "round": 0, "lines": block["lines"]}
    out = report.parse_wrk(run)
    out.update({k: float(v) for k, v in kv_lines(block["lines"]).items() if k in ("start", "end")})
    out["max"] = None
    for line in block["lines"]:
        m = re.match(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", line)
        if m:
            out["max"] = report.to_ms(m.group(1))
    return out


def pct(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def analyse_round(rnd, samples, wrk, nproc):
    """Rates, CPU split and the rate inside/outside the wrk window of one round."""
    rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO("\n".join(samples)))]
    t0 = float(rnd["keyrelay_started"])
    done = int(rnd.get("refreshed_once") or 0)
    first = float(rnd["first_refresh"]) if rnd.get("first_refresh") else t0
    last = float(rnd["last_refresh"]) if rnd.get("last_refresh") else t0
    out = {"rows": rows, "t0": t0, "done": done}
    rates = []  # (middle of the second, refreshes/s)
    for a, b in zip(rows, rows[1:]):
        rates.append(((a["epoch"] + b["epoch"]) / 2, (b["refreshed"] - a["refreshed"]) / (b["epoch"] - a["epoch"])))
    # Per-second rates while the scheduler had work: after the first refresh
    # and before the last one (the partial seconds at both ends left out).
    busy = [r for (t, r) in rates if first + 1 <= t <= last - 1]
    out["p50"] = statistics.median(busy) if busy else None
    out["p10"] = pct(busy, 10) if busy else None
    out["p90"] = pct(busy, 90) if busy else None
    out["max"] = max(busy) if busy else None
    out["duration_total"] = last - t0
    out["duration_busy"] = last - first
    out["mean_total"] = done / (last - t0) if last > t0 else None
    out["mean_busy"] = done / (last - first) if last > first else None
    # CPU from the first sample to the one at (or after) the last refresh.
    a = rows[0]
    b = next((r for r in rows if r["epoch"] >= last), rows[-1])
    wall = b["epoch"] - a["epoch"]
    if wall > 0:
        kr = (b["keyrelay_cpu_s"] - a["keyrelay_cpu_s"]) / wall
        up = (b["provider_cpu_s"] - a["provider_cpu_s"]) / wall
        mach = (b["machine_busy_s"] - a["machine_busy_s"]) / wall
        out["cpu"] = {"keyrelay": kr, "provider": up, "other": max(0.0, mach - kr - up),
                      "idle": max(0.0, nproc - mach), "cores": nproc}
        refreshed = b["refreshed"] - a["refreshed"]
        if refreshed > 0:
            out["kr_cpu_ms_per_refresh"] = 1000 * (b["keyrelay_cpu_s"] - a["keyrelay_cpu_s"]) / refreshed
            out["up_cpu_ms_per_refresh"] = 1000 * (b["provider_cpu_s"] - a["provider_cpu_s"]) / refreshed
    # CPU used by other processes, second by second: its median says whether
    # something else (a build) ran through the round, beyond wrk's and the
    # profilers' windows.
    others = []
    for a, b in zip(rows, rows[1:]):
        dt = b["epoch"] - a["epoch"]
        if dt > 0 and b["epoch"] <= last + 1:
            others.append(max(0.0, ((b["machine_busy_s"] - a["machine_busy_s"]) - (b["keyrelay_cpu_s"] - a["keyrelay_cpu_s"])
                                     - (b["provider_cpu_s"] - a["provider_cpu_s"])) / dt))
    out["other_median"] = statistics.median(others) if others else 0.0
    out["noisy"] = out["other_median"] > 0.2
    out["hwm_kib"] = max(r["keyrelay_hwm_kib"] for r in rows)
    out["max_in_flight"] = int(rows[-1]["max_in_flight"])
    # The refresh rate while wrk ran, and in the busy seconds outside it.
    if wrk and "start" in wrk:
        inside = [r for (t, r) in rates if wrk["start"] <= t <= wrk["end"] and first + 1 <= t <= last - 1]
        outside = [r for (t, r) in rates if not (wrk["start"] <= t <= wrk["end"]) and first + 1 <= t <= last - 1]
        out["rate_during_wrk"] = statistics.mean(inside) if inside else None
        out["rate_outside_wrk"] = statistics.mean(outside) if outside else None
        overlap = max(0.0, min(wrk["end"], last) - max(wrk["start"], first))
        out["wrk_overlap"] = overlap / (wrk["end"] - wrk["start"])
    return out


def fnum(v, fmt="{:,.0f}", none="–"):
    return none if v is None else fmt.format(v)


SCHEMA_DESC = {
    "shipped": "as shipped",
    "lookup-index": "+ lookup index",
}
TARGET = 500


def gather_rounds(meta, blocks):
    """The rounds of a raw file, analysed, and its wrk runs by phase."""
    wrks = {b["attrs"]["phase"]: parse_wrk_block(b) for b in blocks if b["kind"] == "wrk"}
    rounds = []
    for b in blocks:
        if b["kind"] != "round":
            continue
        r = b["attrs"]["r"]
        kv = kv_lines(b["lines"])
        samples = next(x["lines"] for x in blocks if x["kind"] == "samples" and x["attrs"]["r"] == r)
        logb = next((x["lines"] for x in blocks if x["kind"] == "log" and x["attrs"]["r"] == r), [])
        perf = next((x["lines"] for x in blocks if x["kind"] == "perf" and x["attrs"]["r"] == r), None)
        strace = next((x["lines"] for x in blocks if x["kind"] == "strace" and x["attrs"]["r"] == r), None)
        wrk = wrks.get(f"storm-{r}")
        rounds.append({"r": r, "kv": kv, "an": analyse_round(kv, samples, wrk, int(meta.get("nproc", 2))),
                       "wrk": wrk, "log": [l for l in logb if l.strip()], "perf": perf, "strace": strace,
                       "traced": kv.get("traced") == "1"})
    return rounds, wrks


def render_earlier(w, earlier):
    """A short summary of other raw files kept next to this one."""
    if not earlier:
        return
    w("## Earlier runs")
    w("")
    w("Other raw outputs kept in `bench/results/` (`python3 bench/sched_tool.py report FILE --out OUT` "
      "renders any of them in full):")
    w("")
    w("| file | keyrelay | round | schema | concurrency | all due within | refreshed | mean refreshes/s "
      "| checks | proxy during the storm: req/s, p50, max |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for path, meta, rounds in earlier:
        for rd in rounds:
            kv, an, x = rd["kv"], rd["an"], rd["wrk"]
            proxy = f"{x['rps']:,.0f}, {x['p50']:.2f} ms, {fnum(x['max'], '{:,.0f} ms')}" if x else "–"
            w(f"| `{os.path.basename(path)}` | {meta.get('keyrelay_commit', '?').split(' ')[0]} | {rd['r']} | "
              f"{SCHEMA_DESC.get(kv['schema'], kv['schema'])} | {kv['concurrency']} | "
              f"{int(kv['spread_ms']) / 1000:g} s | {an['done']:,} of {int(kv['n']):,} | "
              f"{fnum(an['mean_total'])}{' (traced)' if rd['traced'] else ''}{' ⚠ other load' if an['noisy'] else ''} | "
              f"{'passed' if kv.get('check_ok') == '1' else 'FAILED'} | {proxy} |")
    w("")
    for path, meta, rounds in earlier:
        imp = meta.get("_import", {})
        probe = meta.get("_probe", {})
        if imp.get("rate") and probe.get("rate"):
            w(f"Imports in `{os.path.basename(path)}`: {float(imp['rate']):,.0f}/s for the bulk import (with the "
              f"lookup index), {float(probe['rate']):,.1f}/s for {int(probe['n']):,} more with the schema as "
              f"shipped, at {int(imp['n']):,} connections.")
            w("")


def render(meta, blocks, earlier=()):
    imp = next((kv_lines(b["lines"]) for b in blocks if b["kind"] == "import"), {})
    probe = next((kv_lines(b["lines"]) for b in blocks if b["kind"] == "import-probe"), {})
    rounds, wrks = gather_rounds(meta, blocks)
    n = int(meta.get("n", imp.get("n", 0)))
    spread_s = int(meta.get("spread_ms", 60000)) / 1000

    L = []
    w = L.append
    w("# Refresh scheduler benchmark")
    w("")
    w("Generated by `bash bench/scheduler.sh` (do not edit by hand: re-run it). "
      f"Raw output (wrk runs, per-second samples, checks, profiles): `bench/results/{meta.get('raw_name', 'scheduler.txt')}`.")
    w("")
    w("The goal (from the issue): *with 100,000 connections due within the same minute, "
      f"at least {TARGET} refreshes per second against a local fake provider on this 2-core "
      "machine, without starving proxy traffic.*")
    w("")
    w("## Result")
    w("")
    plan = meta.get("shipped_lookup_plan") or "SEARCH connections USING INDEX connections_listing (project_id=?)"
    scans = "connections_listing (project_id=?)" in plan
    w("*Schema*: **as shipped** is keyrelay's database as its migrations make it"
      + (". **+ lookup index** adds one index the benchmark creates with the `sqlite3` CLI, "
         "`CREATE INDEX … ON connections(project_id, integration_key, user_id)`"
         if any(r["kv"]["schema"] == "lookup-index" for r in rounds) else "")
      + ". keyrelay looks connections up by `(project_id, integration_key, user_id)` (each refresh and "
      f"each import does it once), and as shipped SQLite runs that lookup as `{plan}`"
      + (", i.e. through *every connection of the project*. " if scans else ". ")
      + "No keyrelay code is changed.")
    w("")
    w("| round | schema | scheduler_concurrency | all due within | refreshed | wall time | mean refreshes/s "
      "| p50 of per-second rates | checks | target: mean ≥ 500/s |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for rd in rounds:
        kv, an = rd["kv"], rd["an"]
        ok = kv.get("check_ok") == "1"
        complete = kv.get("complete") == "1"
        wall = f"{an['duration_total']:.1f} s" if complete else \
            f"stopped after {meta.get('timeout')} s"
        w(f"| {rd['r']} | {SCHEMA_DESC.get(kv['schema'], kv['schema'])} | {kv['concurrency']} | "
          f"{int(kv['spread_ms']) / 1000:g} s | {an['done']:,} of {int(kv['n']):,} | {wall} | **{fnum(an['mean_total'])}** | {fnum(an['p50'])} | "
          f"{'passed' if ok else '**FAILED**'} | "
          f"{'(traced with strace: not compared)' if rd['traced'] else 'met' if (an['mean_total'] or 0) >= TARGET else '**not met**'}"
          f"{' ⚠ other load' if an['noisy'] else ''} |")
    w("")
    w("*All due within*: the due times are spread evenly over this long from keyrelay's restart "
      f"({spread_s:g} s is the issue's scenario, and caps the rate at {n / spread_s:,.0f}/s while they "
      "arrive; 1 s makes all due at once and measures the capacity). "
      "*Mean refreshes/s*: connections refreshed ÷ time from keyrelay's start to the last refresh. *Checks*: no connection refreshed twice, one `refreshed` event "
      "per refresh, no failure recorded, the provider's count equals the database's, no refresh token "
      "presented twice; for a round that completed also every connection refreshed and no lease left. "
      "*⚠ other load*: other processes (a build, say) kept CPU busy through the round (median over its "
      "seconds > 0.2 cores, beyond wrk and the profilers): its figures are low and not compared.")
    w("")
    if wrks:
        w("Proxy traffic during the storm (`wrk` against keyrelay's `/v1/proxy`, one api_key connection; "
          "the same command each time):")
        w("")
        w("| when | schema | req/s | p50 | p99 | max | errors | refreshes/s meanwhile |")
        w("|---|---|---|---|---|---|---|---|")
        order = ["idle-shipped", "idle-lookup-index"] + [f"storm-{rd['r']}" for rd in rounds] + \
            [p for p in wrks if p.startswith("idle-after-")]
        for ph in order:
            x = wrks.get(ph)
            if not x:
                continue
            meanwhile = "– (scheduler idle)"
            if ph.startswith("storm-"):
                rd = next(r for r in rounds if f"storm-{r['r']}" == ph)
                label = f"storm, round {rd['r']} (concurrency {rd['kv']['concurrency']})"
                schema = rd["kv"]["schema"]
                meanwhile = fnum(rd["an"].get("rate_during_wrk"))
                if rd["an"].get("wrk_overlap", 1) < 0.99:
                    meanwhile += f" (the storm covered only {rd['an']['wrk_overlap']:.0%} of the run)"
            elif ph.startswith("idle-after-"):
                label, schema = "scheduler on, nothing due (after the storms)", ph[len("idle-after-"):]
            else:
                label, schema = "scheduler off (before the storms)", ph[len("idle-"):]
            w(f"| {label} | {SCHEMA_DESC.get(schema, schema)} | {x['rps']:,.0f} | {x['p50']:.2f} ms | "
              f"{x['p99']:.2f} ms | {fnum(x['max'], '{:,.1f} ms')} | {x['non2xx'] + x['socket_errors']} | {meanwhile} |")
        w("")
        w("wrk's percentiles include its correction for coordinated omission: a stall of all 16 connections "
          "is counted as the requests a steady client would have sent meanwhile, so a single stall of one "
          "second can make p99 about a second; *max* is the slowest request actually sent.")
        w("")
        cmd = next(iter(wrks.values()))["cmd"]
        w(f"`{cmd}`")
        w("")

    w("## Setup")
    w("")
    w(f"- Machine: {meta.get('nproc')} cores ({meta.get('cpu')}), {meta.get('mem')}, "
      f"{meta.get('kernel')}, {meta.get('os')}.")
    w(f"- Load average (1, 5, 15 min) at the start: {meta.get('loadavg_start')}; before the proxy runs and "
      f"storms (after the import): {meta.get('loadavg_before')}; at the end: {meta.get('loadavg_after')}. "
      "The script first waits until no `rustc`/`cargo` runs; the *all else CPU* columns below show "
      "whatever else ran during the storms.")
    w(f"- keyrelay: {meta.get('keyrelay_commit')}; release build (fat LTO); embedded SQLite "
      f"(WAL, synchronous=NORMAL, pool of 8) on {meta.get('data_fs')}; `KEYRELAY_LOG=warn`. "
      f"Database after the import: {meta.get('db_size_mib')} MiB.")
    w("- Fake provider: `bench/upstream` (`POST /token` answers a refresh grant with new, rotated "
      "tokens, `expires_in` 3600; `GET /stats` counts grants, the most in flight at once, and refresh "
      "tokens presented twice).")
    w(f"- Date: {meta.get('date')}. Settings: {meta.get('settings')}.")
    w("")
    w("Steps:")
    w("")
    w(f"1. keyrelay runs with `scheduler = false`; {int(imp.get('n', 0)):,} oauth2 connections "
      f"(access token, refresh token, `expires_in` 3600) are imported through `POST /v1/connections` with "
      f"{imp.get('threads')} keep-alive client threads, with the lookup index in place: "
      f"**{float(imp.get('rate', 0)):,.0f} imports/s** ({float(imp.get('seconds', 0)):.1f} s, "
      f"{imp.get('errors')} errors).")
    if probe.get("n"):
        w(f"   Then, with the schema as shipped, {int(probe['n']):,} more (api_key connections, never "
          f"refreshed) on top of those: **{float(probe['rate']):,.1f} imports/s** "
          f"({float(probe['seconds']):.1f} s, {probe.get('errors')} errors), the import rate as shipped "
          f"at {n:,} connections.")
    w("2. Before each round keyrelay is stopped, the round's schema set, and `next_refresh_at` of every "
      "oauth2 connection set to `now + abs(random()) % spread` with the `sqlite3` CLI. Each connection's "
      "`refresh_count` is copied aside.")
    w(f"3. keyrelay restarts with the scheduler on; a sampler reads the provider's refresh counter, "
      "the CPU time of keyrelay, of the provider and of the machine, and keyrelay's memory every second, "
      f"until every connection was refreshed or {meta.get('timeout')} s passed. wrk runs against the proxy "
      f"{meta.get('wrk_at')} s into the storm for 10 s, then (when asked for) perf profiles keyrelay for "
      f"{meta.get('perf_seconds')} s and, in a round marked *traced*, strace follows: all of them cost the "
      "scheduler CPU, which shows as dips in the timelines (the rounds' means include them).")
    w("4. keyrelay is stopped and the round checked in the database against the copy, and at the provider.")
    w("")

    for rd in rounds:
        kv, an = rd["kv"], rd["an"]
        w(f"## Round {rd['r']}: {SCHEMA_DESC.get(kv['schema'], kv['schema'])}, scheduler_concurrency = "
          f"{kv['concurrency']}, due within {int(kv['spread_ms']) / 1000:g} s")
        w("")
        if an["noisy"]:
            w(f"⚠ Other processes used a median {an['other_median']:.2f} cores through this round (see the "
              "*all else CPU* column): its rate is lower than keyrelay alone would reach.")
            w("")
        if rd["traced"]:
            w("This round's keyrelay was traced with `strace` for 5 s after the wrk run (and perf), which "
              "slows it down a lot meanwhile: its rate is not compared with the others.")
            w("")
        w(f"All due within {int(kv['spread_ms']) / 1000:g} s of the restart; "
          f"`scheduler_interval_ms = {kv['interval_ms']}`, `scheduler_concurrency = {kv['concurrency']}` "
          f"(the scheduler claims {int(kv['concurrency']) * 8} due connections per UPDATE).")
        w("")
        w("| measure | value |")
        w("|---|---|")
        state = "all refreshed" if kv.get("complete") == "1" else f"stopped after {meta.get('timeout')} s"
        w(f"| refreshed (database / provider) | {an['done']:,} / {int(kv['provider_refreshed']):,} of "
          f"{int(kv['n']):,} ({state}) |")
        if kv.get("complete") != "1" and an["mean_total"]:
            w(f"| all {int(kv['n']):,} at that rate would take | {int(kv['n']) / an['mean_total'] / 60:,.0f} min |")
            w(f"| tokens the provider issued that keyrelay never stored (it was stopped mid-storm) | "
              f"{kv.get('lost_at_stop')} |")
        w(f"| keyrelay start → last refresh; first → last refresh | {an['duration_total']:.1f} s; "
          f"{an['duration_busy']:.1f} s |")
        w(f"| mean rate over those | {fnum(an['mean_total'])}; {fnum(an['mean_busy'])} refreshes/s |")
        w(f"| per-second rate p10 / p50 / p90 / max | {fnum(an['p10'])} / {fnum(an['p50'])} / "
          f"{fnum(an['p90'])} / {fnum(an['max'])} |")
        if an.get("rate_during_wrk") is not None:
            w(f"| mean rate while wrk ran / the rest of the storm | {fnum(an['rate_during_wrk'])} / "
              f"{fnum(an['rate_outside_wrk'])} refreshes/s |")
        cpu = an.get("cpu")
        if cpu:
            w(f"| CPU, cores busy (of {cpu['cores']}) | keyrelay {cpu['keyrelay']:.2f}, provider "
              f"{cpu['provider']:.2f}, all else (wrk, sampler, …) {cpu['other']:.2f}, idle {cpu['idle']:.2f} |")
        if "kr_cpu_ms_per_refresh" in an:
            w(f"| CPU time per refresh | keyrelay {an['kr_cpu_ms_per_refresh']:.2f} ms, provider "
              f"{an['up_cpu_ms_per_refresh']:.3f} ms |")
        w(f"| keyrelay RSS after start / peak (VmHWM) | {int(kv['rss_before_kib']) / 1024:.1f} MiB / "
          f"{an['hwm_kib'] / 1024:.1f} MiB |")
        w(f"| most token requests in flight at the provider at once | {an['max_in_flight']} |")
        w(f"| connections refreshed once / not / more than once | {int(kv['refreshed_once']):,} / "
          f"{int(kv['not_refreshed']):,} / {int(kv['refreshed_more']):,} |")
        w(f"| `refreshed` events / connections whose events ≠ refreshes | {int(kv['events_refreshed']):,} / "
          f"{int(kv['events_wrong']):,} |")
        w(f"| leases left / failures recorded / not active / other events | "
          f"{kv['leases_left']} / {kv['failures']} / {kv['not_active']} / {kv['events_other']} |")
        reuse_note = ""
        stopped = [x for x in rounds if int(x["r"]) < int(rd["r"]) and x["kv"].get("complete") != "1"]
        if int(kv["reused_refresh_tokens"]) > 0 and stopped:
            reuse_note = (f" (connections whose new tokens were lost when round {stopped[-1]['r']} was stopped "
                          "mid-storm: keyrelay still held their spent refresh token)")
        w(f"| refresh tokens presented twice (provider) | {kv['reused_refresh_tokens']}{reuse_note} |")
        if kv.get("next_min_s"):
            w(f"| next_refresh_at of the refreshed, from the round's end | {kv['next_min_s']} s to "
              f"{kv['next_max_s']} s |")
        w(f"| keyrelay log: warnings / errors | {kv['log_warn']} / {kv['log_error']} |")
        w("")
        rows, t0 = an["rows"], an["t0"]
        due_from = float(kv.get("due_from", t0))
        w("Timeline, 10-second slices from keyrelay's start (*due*: how many had fallen due by the "
          "slice's end; CPU in cores busy):")
        w("")
        w("| slice | refreshes/s | refreshed | due | backlog | keyrelay CPU | provider CPU | all else CPU |")
        w("|---|---|---|---|---|---|---|---|")
        step = 10
        for i in range(0, len(rows) - 1, step):
            a, b = rows[i], rows[min(i + step, len(rows) - 1)]
            dt = b["epoch"] - a["epoch"]
            if dt <= 0:
                continue
            due = min(int(kv["n"]), round(int(kv["n"]) * max(0.0, b["epoch"] - due_from) / (int(kv["spread_ms"]) / 1000)))
            kr = (b["keyrelay_cpu_s"] - a["keyrelay_cpu_s"]) / dt
            up = (b["provider_cpu_s"] - a["provider_cpu_s"]) / dt
            other = max(0.0, (b["machine_busy_s"] - a["machine_busy_s"]) / dt - kr - up)
            w(f"| {a['epoch'] - t0:.0f}–{b['epoch'] - t0:.0f} s | {(b['refreshed'] - a['refreshed']) / dt:,.0f} | "
              f"{int(b['refreshed']):,} | {due:,} | {max(0, due - int(b['refreshed'])):,} | {kr:.2f} | "
              f"{up:.2f} | {other:.2f} |")
        w("")
        if rd["log"]:
            w("keyrelay's warnings and errors (count × level message):")
            w("")
            w("```")
            L.extend(l.rstrip() for l in rd["log"][:20])
            w("```")
            w("")
        if rd["perf"]:
            w(f"Where keyrelay's CPU goes (`perf record -F 499 -p <keyrelay>` for "
              f"{meta.get('perf_seconds', '?')} s after the wrk run; self time by thread, by library, by symbol):")
            w("")
            w("```")
            L.extend(l.rstrip() for l in rd["perf"][:60])
            w("```")
            w("")
        if rd["strace"]:
            w("Where keyrelay waits (`strace -f -c` for 3 s: seconds spent in each system call, summed over "
              "threads; then `strace -f -e trace=clock_nanosleep` for 2 s: who sleeps, and how long):")
            w("")
            w("```")
            w("% time     seconds  usecs/call     calls    errors syscall")
            L.extend(l.rstrip() for l in rd["strace"][:20])
            w("```")
            w("")
    render_analysis(w, meta, rounds, wrks, imp, probe)
    render_earlier(w, earlier)
    return "\n".join(L) + "\n"


def perf_threads(perf):
    """{"sqlx-sqlite-wor": 83.9, "tokio-rt-worker": 16.1} from a perf block."""
    out = {}
    for line in perf or []:
        m = re.match(r"^\s+([\d.]+)%\s+(\S+)$", line)
        if m and not m.group(2).startswith("["):
            out.setdefault(m.group(2), float(m.group(1)))
    return out


def render_analysis(w, meta, rounds, wrks, imp, probe):
    """What limits the rate: the measured contrasts, then what they mean for
    keyrelay at the measured commit, and what to change."""
    spread = meta.get("spread_ms", "60000")
    n = int(meta.get("n", 0))
    plan = meta.get("shipped_lookup_plan", "")
    # Does the schema as shipped scan the project for each lookup? (Raw
    # files from before the plan was recorded are from 0c5e306: it did.)
    scans = not plan or "connections_listing (project_id=?)" in plan
    plan = plan or "SEARCH connections USING INDEX connections_listing (project_id=?)"

    def slow(r):
        return r["kv"]["schema"] == "shipped" and scans

    def label(r):
        return "with the lookup index" if r["kv"]["schema"] == "lookup-index" else "as shipped"

    clean = [r for r in rounds if r["kv"].get("complete") == "1" and not r["traced"] and not r["an"]["noisy"]]
    noisy = [r["r"] for r in rounds if r["an"]["noisy"]]
    fast = [r for r in clean if not slow(r)]
    scenario = [r for r in fast if r["kv"]["spread_ms"] == spread]
    capacity = [r for r in fast if int(r["kv"]["spread_ms"]) < int(spread)]
    best = max(capacity or fast, key=lambda r: r["an"]["mean_total"] or 0) if fast else None
    ship = next((r for r in rounds if slow(r)), None)
    idle = {k[len("idle-"):]: v for k, v in wrks.items() if k.startswith("idle-") and not k.startswith("idle-after")}

    w("## What limits the rate")
    w("")
    if noisy:
        w(f"- Rounds {', '.join(noisy)} ran with other load on the machine and are left out below.")
    if not scans:
        w(f"- As shipped, SQLite runs keyrelay's connection lookup as `{plan}`: the schema indexes it "
          "(it did not up to 0c5e306, see *Earlier runs* if kept).")
    if ship:
        a = ship["an"]
        w(f"- **As shipped: {fnum(a['mean_total'])} refreshes/s at {n:,} connections**, "
          f"{a.get('kr_cpu_ms_per_refresh', 0):.1f} ms of keyrelay CPU per refresh with keyrelay using "
          f"{a['cpu']['keyrelay']:.2f} of {a['cpu']['cores']} cores. The provider is not the limit: "
          f"{a.get('up_cpu_ms_per_refresh', 0):.2f} ms of its CPU per refresh.")
        st = perf_threads(ship["perf"])
        w("- Why: before refreshing, the engine reads the connection again with `SELECT * FROM connections "
          "WHERE project_id = ? AND integration_key = ? AND user_id = ?` (`Store::get_connection`, from "
          "`refresh_once`). No index starts with those columns, so SQLite takes `connections_listing"
          f"(project_id, created_at, id)` (`EXPLAIN QUERY PLAN`: `{plan}`) and reads every connection "
          "row of the project, credentials included, for each lookup: the cost of a refresh grows with "
          "the number of connections"
          + (f". perf puts {st.get('sqlx-sqlite-wor', 0):.0f}% of keyrelay's CPU on sqlx's SQLite worker "
             "threads, mostly in the kernel copying those pages out of the page cache (`filemap_read`, "
             "`_copy_to_iter`: SQLite's `pread`s) and in B-tree and page-cache code "
             "(`sqlite3BtreeTableMoveto`, `pcache1*`, their mutexes)." if st else "."))
        if int(ship["kv"]["log_warn"]) > 0:
            w(f"- keyrelay logged {ship['kv']['log_warn']} sqlx *slow statement* warnings (a statement over "
              "1 s) for that lookup: the refreshes in flight share 8 pooled SQLite connections, each lookup "
              "a full scan.")
    if best:
        b = best["an"]
        bt = perf_threads(best["perf"])
        due = (f"with all {n:,} due at once" if int(best["kv"]["spread_ms"]) <= 1000
               else f"with all {n:,} due within {int(best['kv']['spread_ms']) / 1000:g} s")
        w(f"- **{label(best).capitalize()}: {fnum(b['mean_total'])} refreshes/s** {due} "
          f"(round {best['r']}, concurrency {best['kv']['concurrency']}), "
          f"{b.get('kr_cpu_ms_per_refresh', 0):.2f} ms of keyrelay CPU per refresh, keyrelay using "
          f"{b['cpu']['keyrelay']:.2f} of {b['cpu']['cores']} cores with {b['cpu']['idle']:.2f} idle"
          + (f"; perf: {bt.get('sqlx-sqlite-wor', 0):.0f}% on the SQLite worker threads, "
             f"{bt.get('tokio-rt-worker', 0):.0f}% on the tokio runtime (token request, JSON, sealing, engine)"
             if bt else "")
          + f". The provider used {b.get('up_cpu_ms_per_refresh', 0):.2f} ms of CPU per refresh.")
        if b["cpu"]["idle"] < 0.15 * b["cpu"]["cores"]:
            w("  The machine's CPU is the limit there: keyrelay, the provider and the sampler use nearly "
              "all of both cores.")
        elif b["cpu"]["idle"] > 0.25 * b["cpu"]["cores"]:
            w(f"  The CPU is not the limit there ({b['cpu']['idle']:.2f} cores idle): the refreshes wait on "
              "something serial.")
        # Concurrency 32 against more, same schema and spread, clean rounds only.
        for lo in [r for r in fast if r["kv"]["concurrency"] == "32"]:
            for hi in [r for r in fast if int(r["kv"]["concurrency"]) > 32
                       and r["kv"]["spread_ms"] == lo["kv"]["spread_ms"] and r["kv"]["schema"] == lo["kv"]["schema"]]:
                w(f"- scheduler_concurrency {hi['kv']['concurrency']} against 32 (all due within "
                  f"{int(lo['kv']['spread_ms']) / 1000:g} s): {fnum(hi['an']['mean_total'])} against "
                  f"{fnum(lo['an']['mean_total'])} refreshes/s.")
    traced = next((r for r in rounds if r["strace"]), None)
    if traced:
        sleep_row = next((l.split() for l in traced["strace"] if l.split()[-1:] == ["clock_nanosleep"]), None)
        by_thread = next((l.split(": ", 1)[1] for l in traced["strace"] if l.startswith("sleeps in 2 s by thread")), "")
        by_len = next((l.split(": ", 1)[1] for l in traced["strace"] if l.startswith("sleeps by length")), "")
        if sleep_row:
            w(f"- What it waits on (round {traced['r']}, traced with strace): in the 3 s traced, keyrelay's "
              f"threads slept {float(sleep_row[1]):.1f} s in all in `clock_nanosleep` ({sleep_row[3]} calls, "
              f"{sleep_row[0]}% of all system-call time; about {float(sleep_row[1]) / 3:.1f} threads asleep at "
              f"any moment). Who sleeps: {by_thread or '?'}; for how long (ms): "
              f"{by_len or '?'}. Those lengths (1, 2, 5, 10, 15, 20, 25, 50, 100 ms) are SQLite's busy "
              "handler backing off (`busy_timeout` is 5 s): a connection that wants to write while another "
              "holds SQLite's single write lock sleeps and retries. Every refresh writes twice (its lease "
              "`UPDATE`, then the commit transaction) from 8 pooled connections, so the writers mostly "
              "wait for each other, in milliseconds-long sleeps, while the CPU idles. (strace slows keyrelay "
              "while it runs; the pattern, not the rate, is the finding.)")
    if best:
        w("- The rate does not depend on the provider's latency here (the fake answers in microseconds). A "
          "real token endpoint taking 100–300 ms caps the scheduler at `scheduler_concurrency` ÷ latency: "
          "32 ÷ 0.1 s = 320 refreshes/s at the default, below the target; the concurrency would have to be "
          "raised with the provider's latency in mind.")
    for r in scenario:
        a = r["an"]
        backlog = 0
        for x in a["rows"]:
            due = min(n, n * max(0.0, x["epoch"] - float(r["kv"]["due_from"])) / (int(spread) / 1000))
            backlog = max(backlog, due - x["refreshed"])
        cap = n / (int(spread) / 1000)
        verdict = "kept up with the arrivals" if (a["mean_total"] or 0) >= 0.85 * cap else "fell behind the arrivals"
        w(f"- In the issue's scenario (all due within {int(spread) / 1000:g} s, round {r['r']}, concurrency "
          f"{r['kv']['concurrency']}) keyrelay {label(r)} {verdict} (at most {cap:,.0f}/s): "
          f"{fnum(a['mean_total'])} refreshes/s overall, the last refresh {a['duration_total']:.0f} s after "
          f"the start, the backlog never above {backlog:,.0f}.")
    if probe.get("rate") and imp.get("rate") and scans:
        w(f"- The same lookup makes imports slow: {float(imp['rate']):,.0f}/s with the index, "
          f"{float(probe['rate']):,.1f}/s as shipped at {n:,} connections (`connections::upsert` looks "
          "the connection up first). As each import costs in proportion to the connections already there, "
          f"importing all {n:,} as shipped would take about {n / (2 * float(probe['rate'])) / 60:,.1f} min "
          f"instead of {float(imp['seconds']) / 60:.1f}.")
    elif probe.get("rate") and imp.get("rate"):
        w(f"- Imports: {float(imp['rate']):,.0f}/s for the bulk import, {float(probe['rate']):,.0f}/s for "
          f"{int(probe['n']):,} more with the schema as shipped, at {n:,} connections.")
    if ship and idle.get("shipped") and idle.get("lookup-index") and idle["shipped"]["max"] and idle["lookup-index"]["max"] \
            and idle["shipped"]["max"] > 2 * idle["lookup-index"]["max"]:
        w(f"- Even idle, the proxy feels it: its slowest request took {idle['shipped']['max']:.0f} ms as "
          f"shipped and {idle['lookup-index']['max']:.0f} ms with the index (its connection's cache entry "
          "lapses every 10 s, and the lookup that follows scans the table).")
    for r in rounds:
        x = wrks.get(f"storm-{r['r']}")
        base = idle.get(r["kv"]["schema"])
        if not x or not base or r["an"].get("wrk_overlap", 0) < 0.9 or r["an"]["noisy"]:
            continue
        stalled = x["max"] is not None and x["max"] >= 250
        w(f"- Proxy traffic {label(r)}, during the storm (round {r['r']}, concurrency "
          f"{r['kv']['concurrency']}, all due within {int(r['kv']['spread_ms']) / 1000:g} s): "
          f"{x['rps']:,.0f} req/s against {base['rps']:,.0f} idle ({x['rps'] / base['rps']:.0%}), p50 "
          f"{x['p50']:.2f} ms, p99 {x['p99']:.2f} ms, max {fnum(x['max'], '{:,.0f}')} ms (idle: "
          f"{base['p50']:.2f} / {base['p99']:.2f} / {fnum(base['max'], '{:,.0f}')} ms)"
          + (": requests stall for as long as a lookup takes. The proxy's occasional database reads "
             "(its cached key, integration and connection lapse after 10–30 s) wait for one of the 8 "
             "pooled SQLite connections behind the scheduler's scans, then scan themselves. That is "
             "starving proxy traffic." if stalled and slow(r) else
             ": slower because both share 2 cores, not starved." if not stalled else
             ": some requests stall; see the raw output."))
    w("")
    w("## Suggestions (for the keyrelay commit measured)")
    w("")
    k = 0

    def item(text):
        nonlocal k
        k += 1
        w(f"{k}. {text}")

    if scans:
        item("Add the missing index in a migration for both backends, e.g. `CREATE UNIQUE INDEX "
             "connections_lookup ON connections(project_id, integration_key, user_id)`, or look connections "
             "up by `(integration_id, user_id)`, which the table's `UNIQUE` constraint already indexes. This "
             "is what the *+ lookup index* rounds measure; the proxy's cache misses and the connection API "
             "use the same lookup.")
    item("Fewer statements per scheduled refresh. Reading the code, after its share of the claim "
         "`UPDATE … RETURNING *`, each refresh reads the connection again (`refresh_once` → "
         "`get_connection`, though the claim has just returned the row; the credentials are decrypted twice "
         "too), reads the integration for its client secret (`client_of` → `integrations::client_secret`; "
         "up to 0c5e306 `scheduler::refresh_claimed` read it once more), takes the lease again with a second "
         "`UPDATE` (the claim holds it already), and commits (`UPDATE` + event `INSERT`): two writes per "
         "refresh on SQLite's single writer. Sending claimed connections straight to the token call, with "
         "the client secret read once per batch, would leave one write; committing a batch's results in "
         "fewer transactions would go further.")
    item("Writes without the busy-handler backoff: queue write transactions in the process (one "
         "connection, or an async mutex around writes, with `BEGIN IMMEDIATE`) instead of letting 8 pooled "
         "connections collide on SQLite's write lock and sleep 1–100 ms in its busy handler; and batch the "
         "scheduler's commits (one transaction for a batch's results and events). That sleeping looks like "
         "what holds the rate while CPU is left idle.")
    item("Shutdown: the scheduler task is aborted (`startup.rs`) and the runtime ends, so refreshes in "
         "flight are dropped after the provider has answered but before the new tokens are stored. With a "
         "provider that rotates refresh tokens those connections keep a spent refresh token: their next "
         "refresh presents it again, which real providers may answer with `invalid_grant` (the connection "
         "then needs re-authorization) or by revoking the grant. A round stopped mid-storm shows it "
         "(*tokens the provider issued that keyrelay never stored*; with another round after it, the "
         "provider counts the reuse). Stop claiming on shutdown, wait (bounded) for the refreshes in "
         "flight, and release the leases of claimed connections not started (they stay leased until the "
         "lease lapses).")
    item("Every scheduled refresh puts the decrypted credentials in the proxy cache (`put_connection`), "
         "whether or not anything proxies through that connection: up to 100,000 entries of plaintext "
         "tokens, and the insert cost, during a storm. Updating only entries already cached would avoid "
         "both.")
    w("")


def cmd_report(a):
    meta, blocks = parse_raw(a.raw)
    meta["raw_name"] = os.path.basename(a.raw)
    # Other raw outputs kept beside this one (scheduler-<commit>.txt) are
    # summarised at the end.
    import glob
    earlier = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(a.raw)), "scheduler-*.txt"))):
        if os.path.abspath(path) != os.path.abspath(a.raw):
            m, b = parse_raw(path)
            m["_import"] = next((kv_lines(x["lines"]) for x in b if x["kind"] == "import"), {})
            m["_probe"] = next((kv_lines(x["lines"]) for x in b if x["kind"] == "import-probe"), {})
            earlier.append((path, m, gather_rounds(m, b)[0]))
    text = render(meta, blocks, earlier)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("import")
    i.add_argument("--url", required=True)
    i.add_argument("--key", required=True)
    i.add_argument("--integration", required=True)
    i.add_argument("--n", type=int, required=True)
    i.add_argument("--threads", type=int, default=8)
    i.add_argument("--user-prefix", default="u")
    i.add_argument("--api-key", action="store_true", help="api_key credentials instead of oauth2 tokens")
    s = sub.add_parser("sample")
    s.add_argument("--provider", required=True)
    s.add_argument("--keyrelay-pid", type=int, required=True)
    s.add_argument("--provider-pid", type=int, required=True)
    s.add_argument("--baseline", type=int, required=True)
    s.add_argument("--target", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--timeout", type=float, default=1800)
    s.add_argument("--stall", type=float, default=60)
    r = sub.add_parser("report")
    r.add_argument("raw")
    r.add_argument("--out", required=True)
    a = p.parse_args()
    return {"import": cmd_import, "sample": cmd_sample, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
