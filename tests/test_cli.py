from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import compactnets as cn
from compactnets import complexity
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


def _refuse_to_count(*args: object, **kwargs: object) -> None:
    raise AssertionError("counted a model: `compactnets list` should read the stored counts")


def test_list_reads_stored_counts_without_counting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(complexity, "profile", _refuse_to_count)
    assert main(["list"]) == 0
    assert f"{len(cn.list_models())} model(s)" in capsys.readouterr().out


# macs, macs+bn+act and macs+act+pool conventions; an ImageNet, a CIFAR and a SqueezeNet card
LIST_SAMPLE = ["mobilenetv2_100", "antnet_g2_cifar", "squeezenet_10_simple_bypass"]


@pytest.mark.parametrize("name", LIST_SAMPLE)
def test_list_shows_the_counted_values(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    card = cn.model_card(name)
    with torch.device("meta"):
        counted = cn.profile(cn.create_model(name), card.input_size, convention=card.convention)
    for flags in ([], ["--count"]):
        assert main(["list", name, "--json", *flags]) == 0
        (record,) = json.loads(capsys.readouterr().out)
        assert (record["params"], record["macs"], record["madds_paper_convention"]) == (
            counted.params, counted.macs, counted.madds,
        )  # fmt: skip


def test_list_counts_a_model_without_current_stored_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    count_card = complexity.count_card
    monkeypatch.setattr(complexity, "count_card", lambda name: calls.append(name) or count_card(name))
    assert main(["list", "mobilenetv1_025"]) == 0 and calls == []
    assert main(["list", "mobilenetv1_025", "--count"]) == 0 and calls == ["mobilenetv1_025"]
    stored = {**complexity._stored(), "mobilenetv1_025": {**complexity._stored()["mobilenetv1_025"], "input_size": []}}
    monkeypatch.setattr(complexity, "_stored", lambda: stored)  # stored for another input size: stale
    assert main(["list", "mobilenetv1_0*"]) == 0 and calls == ["mobilenetv1_025", "mobilenetv1_025"]


def test_profile_compares_with_the_paper_only_at_the_cards_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "mobilenetv2_100", "--input-size", "3x7x7"]) == 0
    assert "reproduced: not compared" in capsys.readouterr().out
    assert main(["profile", "mobilenetv2_100"]) == 0
    assert "reproduced: madds" in capsys.readouterr().out


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
        (["profile", "mobilenetv2_100", "--input-size", "4,224,224"], "takes 3-channel images, got 4"),
        (["profile", "squeezenet_11", "--input-size", "3x7x7"], "squeezenet_11 needs at least 17x17 input, got 7x7"),
    ],
)
def test_bad_input_exits_2_with_a_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_export_of_a_too_small_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.onnx"
    assert main(["export", "squeezenet_11", "--input-size", "3x7x7", "--out", str(out)]) == 2
    message = "compactnets export: error: squeezenet_11 needs at least 17x17 input, got 7x7"
    assert capsys.readouterr().err.strip() == message
    assert not out.exists()


def test_console_entry_point_and_usage_errors() -> None:
    run = subprocess.run([sys.executable, "-m", "compactnets", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "profile" in run.stdout
    run = subprocess.run([sys.executable, "-m", "compactnets", "frobnicate"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr
