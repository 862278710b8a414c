"""dmgateway.live: the timestamps of session summaries and events."""

import datetime

import pytest

from dmgateway.live import iso_time


@pytest.mark.parametrize("when", [0.0, 1796486400.123, 1796486400.9999994, 1796486400.9999996, 1796486400.0009995,
                                  1796486400.0005, -0.5, -1e-7, 4102444800.5, 1796486399.9995])
def test_iso_time_is_what_datetime_gives(when):
    s = datetime.datetime.fromtimestamp(when, tz=datetime.timezone.utc)
    expected = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        s.year, s.month, s.day, s.hour, s.minute, s.second, s.microsecond // 1000)
    assert iso_time(when) == expected
    assert iso_time(when) == expected  # the second's text cached
