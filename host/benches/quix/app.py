"""Quix Streams side of the Weir vs Quix Streams side-by-side benchmark.

Launched as a subprocess by the Rust benchmark:

    python app.py --bootstrap HOST:PORT --input TOPIC --output TOPIC \
        --mode stateless|windowed --expect N --group G --state-dir DIR
        [--loglevel WARNING] [--max-seconds 600]

Modes (both exactly-once, auto_offset_reset=earliest, commit every 100 ms):
  stateless  value bytes upper-cased, key kept, written to --output.
  windowed   count per key over 10 s tumbling windows on the record timestamp,
             final results only; each closed window is written to --output as
             JSON {"start": ms, "end": ms, "value": count} under the record key.

The app stops by itself once it has processed N *input* records (counted with
Application(on_message_processed=...), which fires after each consumed record
has been processed and its offset stored in the checkpoint). It then calls
app.stop(); Quix leaves its poll loop and force-commits the checkpoint (the
transaction with the produced outputs, changelog writes and input offsets)
before app.run() returns. Output count is NOT used as the stop condition: in
windowed mode, final() only closes a window when a later record advances the
partition's stream time past its end, so the last window of each partition
stays open.

At exit it prints one JSON line to stdout:
  {"records": N, "seconds": wall s from process start, "cpu": user+sys s, ...}
Quix's own logs go to stderr.
"""

import time

_T0_MONO = time.monotonic()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def _seconds_since_process_start() -> float:
    """Wall seconds since the process was exec'd (includes interpreter start
    and imports). Uses /proc on Linux; falls back to the time of the first
    line of this script."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        # field 22 (starttime, clock ticks since boot); skip "pid (comm)"
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except Exception:
        return time.monotonic() - _T0_MONO


def _cpu_seconds() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--mode", choices=("stateless", "windowed"), required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--loglevel", default="WARNING")
    # Safety net: stop (exit code 1, records < N) if N records have not been
    # processed after this many seconds. A sleeping timer thread, so no
    # per-record cost (unlike app.run(timeout=...), which adds a sink).
    p.add_argument("--max-seconds", type=float, default=600.0)
    args = p.parse_args()

    from quixstreams import Application

    expect = args.expect
    seen = 0
    first_at = None

    def on_processed(topic, partition, offset):
        nonlocal seen, first_at
        if first_at is None:
            first_at = time.monotonic()
        seen += 1
        if seen >= expect:
            app.stop()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=0.1,
        state_dir=args.state_dir,
        on_message_processed=on_processed,
        loglevel=args.loglevel,
        auto_create_topics=True,
        # Only the input-consuming loop matters here; a short poll timeout
        # keeps the stop responsive.
        consumer_poll_timeout=0.1,
    )

    if args.mode == "stateless":
        in_t = app.topic(
            args.input, key_deserializer="bytes", value_deserializer="bytes"
        )
        out_t = app.topic(
            args.output, key_serializer="bytes", value_serializer="bytes"
        )
        sdf = app.dataframe(in_t)
        sdf = sdf.apply(bytes.upper)
        sdf.to_topic(out_t)
    else:
        in_t = app.topic(
            args.input, key_deserializer="bytes", value_deserializer="bytes"
        )
        out_t = app.topic(
            args.output, key_serializer="bytes", value_serializer="json"
        )
        # nisshi workaround: its DescribeConfigs returns only configs set
        # explicitly on the topic (no broker defaults), so "retention.ms" is
        # missing and Quix's TopicManager.derive_topic_config() (used to
        # derive the changelog topic config for the window store) raises
        # KeyError('retention.ms'). Fill in Apache Kafka's default (7 days),
        # which is what Quix would read from a stock Kafka broker. No-op when
        # the broker does report it.
        in_t.broker_config.extra_config.setdefault("retention.ms", "604800000")
        sdf = app.dataframe(in_t)
        sdf = sdf.tumbling_window(10_000).count().final()
        sdf.to_topic(out_t)

    if expect > 0:
        import threading

        watchdog = threading.Timer(args.max_seconds, app.stop)
        watchdog.daemon = True
        watchdog.start()
        app.run()
        watchdog.cancel()

    seconds = _seconds_since_process_start()
    done_mono = time.monotonic()
    out = {
        "records": seen,
        "seconds": round(seconds, 4),
        "cpu": round(_cpu_seconds(), 4),
        # wall seconds from the first processed input record to exit-ready
        "processing_seconds": round(done_mono - first_at, 4) if first_at else 0.0,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if seen >= expect else 1


if __name__ == "__main__":
    sys.exit(main())
