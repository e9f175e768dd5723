"""`vibrawatch fleet report`: per-board score trends and the alarm timeline of a fleet database.

    path = write_report(FleetStore("fleet.db"), "out/fleet")   # report.md + PNGs

Times are the host's receive times (every board's clock need not be set). A board's trend is
its summaries' median score with the min-max band and the threshold; the timeline shows, per
board, when its alarm was raised, from the raise to the clear (or to the last message seen).
"""

import time
from pathlib import Path

from .errors import VibrawatchError


def _plt():
    try:
        import matplotlib
    except ImportError as exc:
        raise VibrawatchError("the fleet report's plots need matplotlib: pip install "
                              "'vibrawatch[plots]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def alarm_spans(alarms, end):
    """[(raised_at, cleared_at or end, seq)] from one board's (seq, alarm, received) events."""
    spans, raised = [], None
    for seq, on, received in alarms:
        if on and raised is None:
            raised = (received, seq)
        elif not on and raised is not None:
            spans.append((raised[0], received, raised[1]))
            raised = None
    if raised is not None:
        spans.append((raised[0], end, raised[1]))
    return spans


def write_report(store, out_dir):
    plt = _plt()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    boards = store.boards()
    if not boards:
        raise VibrawatchError("the fleet database %s holds no boards yet" % store.path)
    t0 = min([b["last_seen"] for b in boards if b["last_seen"]] or [time.time()])
    for b in boards:
        rows = store.summaries(b["id"])
        if rows:
            t0 = min(t0, rows[0][-1])
    end = max([b["last_seen"] or t0 for b in boards])
    md = ["# Fleet report", "",
          "From %s (%d boards). Times in seconds from %s (host clock)." % (
              store.path, len(boards), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0))),
          "", "| board | model | state | summaries | windows | alarm raises | samples dropped "
          "| alarm events lost | summaries skipped |", "|---|---|---|---|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.45 * len(boards)))
    for i, b in enumerate(boards):
        name = b["id"]
        rows = store.summaries(name)
        events = [(a[2], a[3], a[7]) for a in store.alarms(name)]
        spans = alarm_spans(events, end)
        md.append("| %s | %s | %s | %d | %d | %d | %d | %d | %d |" % (
            name, b["model"] or "?", b["state"] or "?", len(rows),
            sum(r[2] for r in rows), len(spans), b["dropped"] or 0, b["alarms_lost"] or 0,
            b["summaries_skipped"] or 0))
        png = out / ("trend-%s.png" % name)
        _trend(plt, rows, spans, b.get("thr"), name, t0, png)
        for a, z, _seq in spans:
            ax.barh(i, z - a, left=a - t0, color="tab:red", height=0.6)
        if rows:
            ax.plot([r[-1] - t0 for r in rows], [i] * len(rows), "|", color="0.6", ms=4)
    ax.set_yticks(range(len(boards)), [b["id"] for b in boards])
    ax.set_xlabel("time (s)")
    ax.set_title("alarm timeline (red: alarm raised; ticks: summaries received)")
    fig.tight_layout()
    fig.savefig(out / "alarm-timeline.png", dpi=100)
    plt.close(fig)
    md += ["", "![alarm timeline](alarm-timeline.png)", "", "## Alarm events", "",
           "| board | run | window | event | score | received (s) |", "|---|---|---|---|---|---|"]
    for board, run, seq, on, score, _ms, _t, received in store.alarms():
        md.append("| %s | %s | %d | %s | %.4g | %.1f |" % (
            board, run, seq, "raised" if on else "cleared", score, received - t0))
    md += ["", "## Score trends", ""]
    for b in boards:
        md += ["![%s](trend-%s.png)" % (b["id"], b["id"]), ""]
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path


def _trend(plt, rows, spans, thr, name, t0, png):
    fig, ax = plt.subplots(figsize=(9, 3))
    if rows:
        t = [r[-1] - t0 for r in rows]
        ax.fill_between(t, [r[3] for r in rows], [r[5] for r in rows], color="tab:blue",
                        alpha=0.2, lw=0, label="min-max of each summary")
        ax.plot(t, [r[4] for r in rows], ".-", color="tab:blue", lw=1, ms=3, label="median")
        ax.set_yscale("log")
    if thr:
        ax.axhline(thr, color="tab:orange", ls="--", label="threshold")
    for a, z, _seq in spans:
        ax.axvspan(a - t0, z - t0, color="tab:red", alpha=0.15, lw=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score")
    ax.set_title("%s: scores per summary (red: alarm raised)" % name)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
