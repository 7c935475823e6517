#!/usr/bin/python3
"""Turn the runs file (one TSV line per run) into the Markdown result table.

    table.py RUNS.tsv

Columns of RUNS.tsv, as bench/run writes them:
    scenario tool round messages size polls octets wall_s rss_kib cpu_s verdict detail accounts
(messages: over all mailboxes; size: each message's nominal size; octets: all
messages on the wire, CRLF; accounts: mailboxes, absent in older files)

Per scenario and tool: the median wall time (and min-max) over all runs;
msgs/s and MB/s from that median (for c, ms per poll instead); the median
peak RSS and CPU; correct runs / runs; and the median divided by popferry's
median in the same scenario (below 1 = faster than popferry). Failed runs
are still timed and included: the "correct" column says how many there were.
"""
import collections
import statistics
import sys

TITLES = {
    "a": "a: {n} x {size}, plain",
    "b": "b: {n} x {size}, plain",
    "c": "c: {polls} empty polls, TLS",
    "d": "d: {n} x {size}, 20 ms RTT",
    "e": "e: {n} x {size}, plain",
    "f": "f: {n} x {size}, relay at 20 ms RTT",
    "g": "g: {accounts} accounts x {per} x {size}, plain",
}


def size_text(octets):
    if octets >= 1 << 20:
        return "%.0f MiB" % (octets / (1 << 20))
    return "%.0f KiB" % (octets / 1024)


def main(path):
    runs = collections.OrderedDict()
    with open(path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            scen, tool, _, n, size, polls, octets, wall, rss, cpu, verdict = fields[:11]
            accounts = int(fields[12]) if len(fields) > 12 else 1
            runs.setdefault((scen, tool), []).append(
                (int(n), int(polls), int(octets), float(wall), int(rss), float(cpu), verdict,
                 int(size), accounts))

    base = {scen: statistics.median(r[3] for r in rs)
            for (scen, tool), rs in runs.items() if tool == "popferry"}
    print("| scenario | tool | runs | median wall s (min-max) | msgs/s | MB/s "
          "| peak RSS MiB | CPU s | correct | ratio to popferry |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (scen, tool), rs in sorted(runs.items(), key=lambda kv: kv[0][0]):
        n, polls, octets = rs[0][:3]
        walls = [r[3] for r in rs]
        wall = statistics.median(walls)
        accounts = rs[0][8]
        title = TITLES.get(scen, scen).format(n=n, polls=polls, size=size_text(rs[0][7]),
                                              accounts=accounts, per=n // accounts)
        if scen == "c":
            rate, mbs = "%.1f ms/poll" % (wall / polls * 1000), "-"
        else:
            rate = n / wall
            rate, mbs = "%.*f" % (2 if rate < 10 else 0, rate), "%.1f" % (octets / 1e6 / wall)
        rss = statistics.median(r[4] for r in rs) / 1024
        cpu = statistics.median(r[5] for r in rs)
        good = sum(r[6] == "ok" for r in rs)
        ratio = "%.2f" % (wall / base[scen]) if base.get(scen) else "-"
        print("| %s | %s | %d | %.3f (%.3f-%.3f) | %s | %s | %.1f | %.2f | %d/%d | %s |"
              % (title, tool, len(rs), wall, min(walls), max(walls), rate, mbs,
                 rss, cpu, good, len(rs), ratio))


if __name__ == "__main__":
    main(sys.argv[1])
