"""Benchmark of the WBXML codec against lxml and against our XML codec.

Run: ``.venv/bin/python bench/codec.py [--repeat N] [--seconds S]``.

Every message of ``tests/fixtures/dm`` is read once, then written as compact
XML (our XML writer) and as WBXML; all timings use those bytes.  Rows:

* ``wbxml.decode_node`` (bytes -> element tree) against ``lxml.etree.fromstring``
  of the equivalent XML, and ``wbxml.encode_node`` against ``lxml.etree.tostring``;
* ``wbxml.decode``/``encode`` (bytes <-> SyncML model) against our
  ``xml.decode``/``encode``;
* ``xml.encode`` and ``wbxml.encode`` (written straight from the model)
  against the element-tree path (``message_to_node`` then the tree writer).

Throughput is messages per second (the ratio column compares these: the same
messages either way), MB/s of the wire form each side reads or writes, and
the CPU time per message (``time.process_time``, the same loops).  Each
figure is the best of several repetitions (``time.perf_counter``), ours and
the reference measured in alternation.  This prints; it asserts nothing.
"""

import argparse
import sys
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dmgateway.codec import mapping, wbxml, xml  # noqa: E402
from dmgateway.codec.wbxml_pages import SYNCML11, SYNCML12  # noqa: E402


def _loops(function, min_seconds):
    """How many calls of ``function`` take at least ``min_seconds``."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            function()
        if time.perf_counter() - start >= min_seconds:
            return loops
        loops *= 2


def best_times(functions, repeat, min_seconds):
    """Best wall-clock and CPU time per call of each function, measured in
    alternation: ``[(wall, cpu), ...]``.

    Alternating the candidates within every repetition keeps a busy machine
    from favouring whichever ran while it was quiet.
    """
    loops = [_loops(function, min_seconds) for function in functions]
    best = [float("inf")] * len(functions)
    best_cpu = [float("inf")] * len(functions)
    for _ in range(repeat):
        for index, (function, count) in enumerate(zip(functions, loops)):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(count):
                function()
            best[index] = min(best[index], (time.perf_counter() - start) / count)
            best_cpu[index] = min(best_cpu[index], (time.process_time() - start_cpu) / count)
    return list(zip(best, best_cpu))


def load_corpus():
    messages = [xml.decode(path.read_bytes())
                for path in sorted((ROOT / "tests" / "fixtures" / "dm").glob("*.xml"))]
    if not messages:
        raise SystemExit("no DM corpus in tests/fixtures/dm")
    return messages


def _xml_by_tree(msg):
    return xml.serialize(mapping.message_to_node(msg), syncml_uri=xml.syncml_namespace(msg.hdr.ver_dtd))


def _wbxml_by_tree(msg):
    root = mapping.message_to_node(msg)
    wbxml._embedded_tnds(root, wbxml._tree_to_opaque, wbxml.DEFAULT_MAX_DEPTH)
    return wbxml.encode_node(root, SYNCML11 if msg.hdr.ver_dtd == "1.1" else SYNCML12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="repetitions (best is kept)")
    parser.add_argument("--seconds", type=float, default=0.1, help="minimum time per repetition")
    args = parser.parse_args()

    messages = load_corpus()
    count = len(messages)
    nodes = [mapping.message_to_node(m) for m in messages]
    vocabs = [SYNCML11 if m.hdr.ver_dtd == "1.1" else SYNCML12 for m in messages]
    xml_docs = [xml.encode(m) for m in messages]
    wbxml_docs = [wbxml.encode(m) for m in messages]
    lxml_trees = [etree.fromstring(x) for x in xml_docs]
    xml_bytes = sum(map(len, xml_docs))
    wbxml_bytes = sum(map(len, wbxml_docs))

    decode_node, encode_node = wbxml.decode_node, wbxml.encode_node
    fromstring, tostring = etree.fromstring, etree.tostring
    pairs = [
        ("decode: bytes -> tree",
         ("wbxml.decode_node", lambda: [decode_node(d, SYNCML12) for d in wbxml_docs], wbxml_bytes),
         ("lxml fromstring", lambda: [fromstring(d) for d in xml_docs], xml_bytes)),
        ("encode: tree -> bytes",
         ("wbxml.encode_node", lambda: [encode_node(n, v) for n, v in zip(nodes, vocabs)],
          wbxml_bytes),
         ("lxml tostring", lambda: [tostring(t) for t in lxml_trees], xml_bytes)),
        ("decode: bytes -> model",
         ("wbxml.decode", lambda: [wbxml.decode(d) for d in wbxml_docs], wbxml_bytes),
         ("xml.decode", lambda: [xml.decode(d) for d in xml_docs], xml_bytes)),
        ("encode: model -> bytes",
         ("wbxml.encode", lambda: [wbxml.encode(m) for m in messages], wbxml_bytes),
         ("xml.encode", lambda: [xml.encode(m) for m in messages], xml_bytes)),
        # the model writer against the element-tree path it replaced (same bytes)
        ("encode XML: fast/tree",
         ("xml.encode", lambda: [xml.encode(m) for m in messages], xml_bytes),
         ("serialize(tree)", lambda: [_xml_by_tree(m) for m in messages], xml_bytes)),
        ("encode WBXML: fast/tree",
         ("wbxml.encode", lambda: [wbxml.encode(m) for m in messages], wbxml_bytes),
         ("encode_node(tree)", lambda: [_wbxml_by_tree(m) for m in messages], wbxml_bytes)),
    ]

    print("corpus: %d messages, %d bytes XML (compact), %d bytes WBXML (%.0f%%)"
          % (count, xml_bytes, wbxml_bytes, 100.0 * wbxml_bytes / xml_bytes))
    print("best of %d repetitions, >= %.2f s each" % (args.repeat, args.seconds))
    print()
    header = "%-24s %-18s %9s %7s %10s   %-16s %9s %7s %10s   %5s %9s"
    print(header % ("", "ours", "msg/s", "MB/s", "CPU us/msg",
                    "reference", "msg/s", "MB/s", "CPU us/msg", "ratio", "CPU ratio"))
    for title, (name, function, size), (ref_name, ref_function, ref_size) in pairs:
        (ours, ours_cpu), (ref, ref_cpu) = best_times((function, ref_function), args.repeat,
                                                      args.seconds)
        print("%-24s %-18s %9.0f %7.2f %10.1f   %-16s %9.0f %7.2f %10.1f   %5.2f %9.2f" % (
            title, name, count / ours, size / ours / 1e6, ours_cpu / count * 1e6,
            ref_name, count / ref, ref_size / ref / 1e6, ref_cpu / count * 1e6, ref / ours,
            ref_cpu / ours_cpu))
    print()
    print("ratio = our messages/s divided by the reference's (1.0 = as fast); CPU ratio = the "
          "reference's CPU per message divided by ours (steadier on a busy machine); "
          "target >= 0.5 against lxml.")


if __name__ == "__main__":
    main()
