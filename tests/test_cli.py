from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compactnets.cli import main


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "antnet_g*_cifar"]) == 0
    out = capsys.readouterr().out
    assert "antnet_g2_cifar" in out and "73.2M" in out and "macs+bn+act" in out
    assert "mobilenetv2" not in out


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "mobilenetv2_100", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["params"] == 3_504_872 and record["paper_madds"] == "300M"


def test_profile_json_per_layer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "antnet_g2_cifar", "--json", "--per-layer", "--convention", "paper"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 2_193_795 and data["convention"] == "macs+bn+act"
    assert sum(layer.get("macs", 0) for layer in data["layers"]) == data["macs"]


def test_profile_text_with_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "mobilenetv2_100", "--input-size", "160", "--num-classes", "10", "--per-layer"]) == 0
    out = capsys.readouterr().out
    assert "160x160" in out and "features.0.conv" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["profile", "antnet_g3"], "did you mean"),
        (["profile", "antnet_g2", "--convention", "+flops"], "unknown counting term"),
        (["profile", "antnet_g2", "--input-size", "3,x"], "--input-size"),
        (["list", "zzz*"], "no model matches"),
    ],
)
def test_bad_input_exits_2_with_a_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_entry_point_and_usage_errors() -> None:
    run = subprocess.run([sys.executable, "-m", "compactnets", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "profile" in run.stdout
    run = subprocess.run([sys.executable, "-m", "compactnets", "frobnicate"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr
