"""``dmgw sim fleet`` options: the same API defaults as ``dmgw api``, generated ids
that cannot collide with existing accounts unless asked, ``dmgw --version``."""

import pytest

from dmgateway import __version__, cli
from dmgateway.cli import api as api_cli
from dmgateway.cli import sim as simcli


def parse(*argv):
    return cli.build_parser().parse_args(["sim", "fleet", "--url", "http://127.0.0.1:8080/dm", *argv])


def test_api_defaults_are_dmgw_apis():
    args = parse()
    assert args.api == api_cli.DEFAULT_URL + "/api/v1"
    assert args.token_file == api_cli.DEFAULT_TOKEN_FILE
    assert simcli._api_base(api_cli.DEFAULT_URL) == args.api
    assert simcli._api_base(args.api + "/") == args.api


def test_provisioned_ids_are_a_fresh_block_per_run_unless_asked():
    runs = [simcli._load_devices(parse("--provision", "--count", "3")) for _ in range(4)]
    ids = [[d.device_id for d in devices] for devices in runs]
    assert all(len(run) == 3 and all(len(i) == len("IMEI:") + 15 for i in run) for run in ids)
    assert len({run[0] for run in ids}) > 1  # a random block each time (1 in 100000 to repeat)
    fixed = [[d.device_id for d in simcli._load_devices(parse("--provision", "--count", "2", "--first", "7"))]
             for _ in range(2)]
    assert fixed[0] == fixed[1] == ["IMEI:350000000000007", "IMEI:350000000000008"]
    reused = simcli._load_devices(parse("--provision", "--count", "1", "--reuse-ids"))
    assert reused[0].device_id == "IMEI:350000000000000"
    # without --provision the ids must match accounts made elsewhere: fixed
    assert simcli._load_devices(parse("--count", "1"))[0].device_id == "IMEI:350000000000000"


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == "dmgw (dmgateway) %s" % (__version__,)
