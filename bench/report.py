#!/usr/bin/env python3
"""Turns the BENCH lines of one bench/run into latest.md and PNG plots.

Input (latest.tsv): program<TAB>BENCH<TAB>figure<TAB>impl<TAB>value<TAB>unit<TAB>higher|lower
                or  program<TAB>NOTE<TAB>figure<TAB>impl<TAB>text
Every (program, figure, implementation) is reported as the median of its
rounds, next to the dataplane row of the same figure with the ratio
"how many times better dataplane is": peer/dataplane for lower-is-better
figures, dataplane/peer for higher-is-better ones.
"""
import argparse
import collections
import os
import shutil
import statistics
import subprocess
import sys

TITLES = {
    "eventloop-wakeup": "Event loop: cross-thread wake-up round trip",
    "eventloop-timers": "Event loop: timers armed and fired (libuv's million_timers method)",
    "eventloop-dispatch": "Event loop: dispatch through 100 active fds (libevent's bench -n 10000 -a 100)",
    "eventloop-idle": "Event loop: CPU of an idle loop thread",
    "eventloop-acquire": "Event loop: aio_context_acquire latency from another thread",
    "threadlet": "Thread pool (threadlets)",
    "block": "Block layer",
    "mq-costs": "Multiqueue: per-operation costs in-process (the inputs of docs/scaling.md)",
    "scaling": "Multiqueue scaling: one export from 1 vs 2 IOThreads, 2 and 4 fio jobs (4k randread QD16 each)",
    "nbd": "NBD servers (fio nbd engine over a unix socket, one 1 GiB image; job prefixes: tmpfs = /dev/shm, ext4 = disk file system with a warm page cache, ext4direct = O_DIRECT)",
    "rbd": "Ceph RBD over NBD (one-node memstore cluster on the same machine; fio nbd engine; rbd bench = librbd in-process, the ceiling)",
    "tls": "NBD servers over TLS (X.509 with client certificates; fio nbd engine, "
           "nbds+unix URI, 1 GiB image on /dev/shm)",
    "vhost": "vhost-user-blk exports (tests/vhost-user-load, one polling client thread; "
             "job names: disk-rw-qd<per queue>-q<queues>)",
}

# Sections in this order; programs not listed follow in order of appearance.
ORDER = ["eventloop-wakeup", "eventloop-timers", "eventloop-dispatch", "eventloop-idle",
         "eventloop-acquire", "threadlet", "block", "mq-costs", "nbd", "scaling",
         "rbd", "tls", "vhost"]

NBD_METRICS = [
    ("cpu-per-op", "server CPU per operation (us, lower is better)"),
    ("iops", "IOPS (higher is better)"),
    ("lat-mean", "mean completion latency (us, lower is better)"),
    ("lat-p99", "p99 completion latency (us, lower is better)"),
]


class Series:
    def __init__(self, unit, higher):
        self.unit = unit
        self.higher = higher
        self.values = []

    def median(self):
        return statistics.median(self.values)


def parse(path):
    data = collections.OrderedDict()   # program -> figure -> impl -> Series
    notes = collections.OrderedDict()  # program -> [(figure, impl, text)]
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 5 and cols[1] == "NOTE":
                notes.setdefault(cols[0], []).append((cols[2], cols[3], "\t".join(cols[4:])))
                continue
            if len(cols) != 7 or cols[1] != "BENCH":
                print(f"report.py: {path}:{lineno}: not a BENCH line, ignored", file=sys.stderr)
                continue
            prog, _, fig, impl, value, unit, better = cols
            try:
                v = float(value)
            except ValueError:
                print(f"report.py: {path}:{lineno}: bad value '{value}'", file=sys.stderr)
                continue
            s = data.setdefault(prog, collections.OrderedDict()).setdefault(
                fig, collections.OrderedDict()).setdefault(impl, Series(unit, better == "higher"))
            s.values.append(v)
    return data, notes


def impl_order(figs):
    """dataplane first, then its variants, then peers in order of appearance."""
    seen = []
    for impls in figs.values():
        for impl in impls:
            if impl not in seen:
                seen.append(impl)

    def key(i):
        if i == "dataplane":
            return (0, seen.index(i))
        if i.startswith("dataplane"):
            return (1, seen.index(i))
        return (2, seen.index(i))
    return sorted(seen, key=key)


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def advantage(dp, peer, higher):
    """How many times better dataplane is than peer (None if undefined)."""
    if dp is None or peer is None or dp <= 0 or peer <= 0:
        return None
    return dp / peer if higher else peer / dp


def cell(impls, impl, dp):
    s = impls.get(impl)
    if s is None:
        return "—"
    m = s.median()
    text = fmt(m)
    if impl != "dataplane":
        adv = advantage(dp, m, s.higher)
        if adv is not None:
            text += f" (×{adv:.3g})"
    return text


def spread(s):
    if len(s.values) < 2:
        return ""
    m = s.median()
    if abs(m) < 0.01:
        return ""  # relative spread of values near zero (idle CPU) says nothing
    return f"{100 * (max(s.values) - min(s.values)) / m:.0f}%"


def table(figs, out, label="figure", rename=None):
    impls = impl_order(figs)
    out.append("| " + label + " | unit | " + " | ".join(impls) + " | max spread |")
    out.append("|---|---|" + "---|" * len(impls) + "---|")
    for fig, by_impl in figs.items():
        any_s = next(iter(by_impl.values()))
        dp = by_impl["dataplane"].median() if "dataplane" in by_impl else None
        unit = any_s.unit + (" ↑" if any_s.higher else " ↓")
        spreads = [spread(s) for s in by_impl.values()]
        worst = max((float(x[:-1]) for x in spreads if x), default=None)
        name = rename(fig) if rename else fig
        out.append(f"| {name} | {unit} | " + " | ".join(cell(by_impl, i, dp) for i in impls)
                   + f" | {'' if worst is None else f'{worst:.0f}%'} |")
    out.append("")


def nbd_split(fig):
    """nbd-<job>-<metric> (or tls-..., vhost-...) -> (job, metric)."""
    for prefix in ("nbd-", "tls-", "vhost-"):
        if fig.startswith(prefix):
            fig = fig[len(prefix):]
            break
    body = fig
    for metric, _ in NBD_METRICS:
        if body.endswith("-" + metric):
            return body[: -len(metric) - 1], metric
    return body, ""


def write_md(data, notes, args, path):
    out = []
    out.append("# dataplane benchmarks: latest run")
    out.append("")
    out.append(f"Run {args.started}, {args.mode} mode, {args.rounds} round(s) per figure "
               f"(median reported), {args.duration} s in all; {args.host}.")
    if args.only:
        out.append("")
        out.append(f"This run re-ran only the programs named `{args.only}*` (`bench/run --only "
                   f"{args.only}`); the other figures are from the run before, on the same machine.")
    out.append("")
    out.append("Reproduce with `make bench` (or `bench/run [--rounds N]`); `make bench-quick` "
               "is the smoke run (small counts, a few seconds per figure: its figures are not "
               "comparable with these).")
    out.append("")
    out.append("How to read: each cell is the median over rounds. **(×r) is dataplane's "
               "advantage over that implementation**: peer/dataplane for lower-is-better "
               "figures (↓), dataplane/peer for higher-is-better ones (↑), so r > 1 means "
               "dataplane is ahead and r < 1 means the peer is. `dataplane-*` columns are "
               "other configurations of dataplane, compared the same way against the default. "
               "\"max spread\" is (max − min)/median over the rounds of the noisiest cell of "
               "that row: this machine is shared, so a large spread means a noisy figure.")
    out.append("")

    nbd = data.get("nbd")
    if nbd:
        out.append("## Headline: NBD server CPU per operation")
        out.append("")
        out.append("Server CPU time (user + system, all threads, from /proc/<pid>/stat) "
                   "divided by the operations fio completed. On 2 cores one fio job at QD32 "
                   "uses most of a core itself, so IOPS alone cannot rank the servers; the "
                   "CPU a server spends per operation can.")
        out.append("")
        cpu = collections.OrderedDict((f, v) for f, v in nbd.items() if nbd_split(f)[1] == "cpu-per-op")
        table(cpu, out, "job", lambda f: nbd_split(f)[0])
        if "dataplane" not in impl_order(nbd):
            out.append("_dataplaned was not measured in this run (see the notes below)._")
            out.append("")

    for prog, figs in data.items():
        out.append(f"## {TITLES.get(prog, prog)}")
        out.append("")
        if prog in ("nbd", "tls", "vhost"):
            metrics = NBD_METRICS
            if prog == "nbd":
                out.append("Server CPU per operation is in the headline table above.")
                out.append("")
                metrics = NBD_METRICS[1:]
            for metric, desc in metrics:
                sub = collections.OrderedDict((f, v) for f, v in figs.items() if nbd_split(f)[1] == metric)
                if not sub:
                    continue
                out.append(f"### {desc}")
                out.append("")
                table(sub, out, "job", lambda f: nbd_split(f)[0])
        else:
            table(figs, out)
        for fig, impl, text in notes.get(prog, []):
            out.append(f"- note ({fig}, {impl}): {text}")
        if notes.get(prog):
            out.append("")

    rest = [(p, n) for p, n in notes.items() if p not in data]
    if rest:
        out.append("## Not measured / notes")
        out.append("")
        for prog, items in rest:
            for fig, impl, text in items:
                where = prog if fig in ("-", prog) else f"{prog} {fig}"
                if impl not in ("-", ""):
                    where += f" ({impl})"
                out.append(f"- {where}: {text}")
        out.append("")

    plots = sorted(p for p in os.listdir(os.path.dirname(path) or ".") if p.endswith(".png"))
    if plots:
        out.append("## Plots")
        out.append("")
        for p in plots:
            out.append(f"![{p[:-4]}]({p})")
        out.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


# Event-loop, thread-pool and block figures that make the README's headline
# (prefixes; the first figure of each that exists is taken).
HEADLINE_FIGURES = ["timers-1M-cpu", "timers-100k-cpu", "dispatch-", "wakeup-roundtrip",
                    "async-pummel-1", "idle-cpu", "threadlet-throughput-w64",
                    "threadlet-roundtrip", "block-randread-4k-qd32-iops"]


def write_headline(data, args, path):
    """headline.md: the rows the top-level README quotes, ready to paste."""
    out = [f"<!-- bench/results/headline.md: generated by bench/report.py from the run of "
           f"{args.started} ({args.mode}, {args.rounds} rounds, median). -->", ""]
    nbd = data.get("nbd")
    if nbd:
        out.append("NBD server CPU per operation (µs, lower is better; in brackets "
                   "peer/dataplane, > 1 means dataplaned is thriftier):")
        out.append("")
        cpu = collections.OrderedDict((f, v) for f, v in nbd.items() if nbd_split(f)[1] == "cpu-per-op")
        table(cpu, out, "job", lambda f: nbd_split(f)[0])
        iops = collections.OrderedDict(
            (f, v) for f, v in nbd.items()
            if nbd_split(f)[1] == "iops" and nbd_split(f)[0].endswith(
                ("4k-randread-qd32-2jobs", "4k-randread-qd1", "4k-randwrite-qd32")))
        if iops:
            out.append("IOPS of QD1 reads, QD32 writes and two connections at QD32 "
                       "(higher is better):")
            out.append("")
            table(iops, out, "job", lambda f: nbd_split(f)[0])
    rows = collections.OrderedDict()
    for prefix in HEADLINE_FIGURES:
        for prog, figs in data.items():
            if prog == "nbd":
                continue
            for f, by in figs.items():
                if f.startswith(prefix) and f not in rows:
                    rows[f] = by
                    break
            else:
                continue
            break
    if rows:
        out.append("Event loop, thread pool and block layer (in brackets dataplane's "
                   "advantage, > 1 means dataplane is ahead):")
        out.append("")
        out.append("| figure | unit | dataplane | others |")
        out.append("|---|---|---|---|")
        for f, by in rows.items():
            any_s = next(iter(by.values()))
            dp = by["dataplane"].median() if "dataplane" in by else None
            others = "; ".join(f"{i} {cell(by, i, dp)}" for i in impl_order({f: by}) if i != "dataplane")
            out.append(f"| {f} | {any_s.unit} {'↑' if any_s.higher else '↓'} | "
                       f"{fmt(dp) if dp is not None else '—'} | {others} |")
        out.append("")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out))


def plot(name, title, ylabel, rows, impls, outdir):
    """rows: [(label, {impl: value})] -> outdir/name.png, clustered bars."""
    dat = os.path.join(outdir, f".{name}.dat")
    vals = [v for _, r in rows for v in r.values() if v > 0]
    if not vals:
        return
    logscale = max(vals) / min(vals) > 50
    with open(dat, "w", encoding="utf-8") as f:
        for label, r in rows:
            f.write(f'"{label}" ' + " ".join(
                (repr(r[i]) if i in r and (r[i] > 0 or not logscale) else "?") for i in impls) + "\n")
    def q(text):
        """A gnuplot single-quoted string ('' is a literal quote)."""
        return "'" + text.replace("'", "''") + "'"

    gp = [
        "set terminal pngcairo size 1000,520 noenhanced font ',10'",
        f"set output {q(os.path.join(outdir, name + '.png'))}",
        f"set title {q(title)}",
        f"set ylabel {q(ylabel)}",
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set datafile missing '?'",
        "set key outside right top",
        "set grid ytics",
        "set xtics rotate by -15",
    ]
    gp.append("set logscale y" if logscale else "set yrange [0:*]")
    cols = ", ".join(
        (f"{q(dat)} using {k + 2}:xtic(1) title {q(i)}" if k == 0 else f"'' using {k + 2} title {q(i)}")
        for k, i in enumerate(impls))
    gp.append("plot " + cols)
    res = subprocess.run(["gnuplot"], input="\n".join(gp), text=True, capture_output=True)
    if res.returncode != 0:
        print(f"report.py: gnuplot failed for {name}: {res.stderr.strip()}", file=sys.stderr)
    os.unlink(dat)


def write_plots(data, outdir):
    if not shutil.which("gnuplot"):
        print("report.py: gnuplot not installed: no plots", file=sys.stderr)
        return
    for old in os.listdir(outdir):
        if old.endswith(".png"):
            os.unlink(os.path.join(outdir, old))
    for prog, label in (("nbd", "NBD"), ("tls", "NBD over TLS")):
        figs = data.get(prog)
        if not figs:
            continue
        impls = impl_order(figs)
        for metric, desc in NBD_METRICS:
            rows = [(nbd_split(f)[0], {i: s.median() for i, s in by.items()})
                    for f, by in figs.items() if nbd_split(f)[1] == metric]
            if rows:
                plot(f"{prog}-{metric}", f"{label}: {desc}", desc, rows, impls, outdir)
    for prog, figs in data.items():
        if not prog.startswith("eventloop-"):
            continue
        impls = impl_order(figs)
        by_unit = collections.OrderedDict()
        for f, by in figs.items():
            s = next(iter(by.values()))
            by_unit.setdefault((s.unit, s.higher), []).append(
                (f, {i: x.median() for i, x in by.items()}))
        for k, ((unit, higher), rows) in enumerate(by_unit.items()):
            name = prog if len(by_unit) == 1 else f"{prog}-{k + 1}"
            plot(name, TITLES.get(prog, prog),
                 f"{unit} ({'higher' if higher else 'lower'} is better)", rows, impls, outdir)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", default="full")
    ap.add_argument("--rounds", default="3")
    ap.add_argument("--started", default="")
    ap.add_argument("--duration", default="?")
    ap.add_argument("--host", default="")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data, notes = parse(args.raw)
    rank = {p: i for i, p in enumerate(ORDER)}
    data = collections.OrderedDict(sorted(data.items(), key=lambda kv: rank.get(kv[0], len(ORDER))))
    if not args.no_plots:
        write_plots(data, args.out)
    write_md(data, notes, args, os.path.join(args.out, "latest.md"))
    write_headline(data, args, os.path.join(args.out, "headline.md"))


if __name__ == "__main__":
    main()
