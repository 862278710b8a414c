"""``/metrics``: the gateway's counters in the Prometheus text format.

Labels stay bounded (bearer, outcome), never device ids.
"""

from twisted.web import resource

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


def render_metrics(samples):
    """Prometheus text for ``[(name, type, help, {labels: value} or value)]``."""
    lines = []
    for name, kind, help_text, value in samples:
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s %s" % (name, kind))
        if isinstance(value, dict):
            for labels, number in sorted(value.items()):
                label_text = ",".join('%s="%s"' % (k, v) for k, v in labels)
                lines.append("%s{%s} %s" % (name, label_text, _number(number)))
        else:
            lines.append("%s %s" % (name, _number(value)))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _number(value):
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return str(int(value))


class MetricsResource(resource.Resource):
    """Serves whatever ``collect()`` returns (a list for :func:`render_metrics`)."""

    isLeaf = True

    def __init__(self, collect):
        super().__init__()
        self.collect = collect

    def render_GET(self, request):
        request.setHeader(b"Content-Type", CONTENT_TYPE)
        return render_metrics(self.collect())
