"""dmgw campaign / dmgw firmware: argument handling, the CSV selection, the progress line."""

import io

import pytest

from dmgateway.cli.campaign import _devices_from_csv, _Failed, progress_line
from dmgateway.cli import build_parser


def test_devices_from_csv(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("IMEI:1\nIMEI:2,extra\n\n")
    assert _devices_from_csv(str(plain)) == ["IMEI:1", "IMEI:2"]
    header = tmp_path / "header.csv"
    header.write_text("msisdn,device_id\n+44,IMEI:3\n")
    assert _devices_from_csv(str(header)) == ["IMEI:3"]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(_Failed):
        _devices_from_csv(str(empty))
    with pytest.raises(_Failed):
        _devices_from_csv(str(tmp_path / "missing.csv"))


def test_progress_line():
    view = {"state": "paused", "reason": "wave 2 failure ratio 0.167 above 0.050", "wave": 2, "waves": 3,
            "progress": {"by_state": {"done": 20, "failed": 4, "waiting": 76}, "by_result": {"200": 20, "402": 4}}}
    line = progress_line(view)
    assert line.startswith("[" + "#" * 9 + "-" * 31 + "] 24/100 paused wave 2/3")
    assert "codes 200:20 402:4" in line and "(wave 2 failure ratio" in line


def test_parser_knows_the_commands():
    parser = build_parser()
    args = parser.parse_args(["campaign", "--token", "t", "report", "abc", "--format", "csv"])
    assert (args.campaign_command, args.format, args.campaign_id) == ("report", "csv", "abc")
    args = parser.parse_args(["firmware", "--token", "t", "upload", "fw.bin", "--name", "fw", "--version", "2"])
    assert (args.path, args.name, args.version) == ("fw.bin", "fw", "2")
    with pytest.raises(SystemExit):
        parser.parse_args(["campaign", "explode"])


def test_unreachable_api_is_exit_2(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["campaign", "--url", "http://127.0.0.1:9", "--token", "t", "--timeout", "2", "list"])
    err = io.StringIO()
    assert args.func(args, io.StringIO(), err) == 2
    assert "cannot reach" in err.getvalue()
