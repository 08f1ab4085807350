"""`archcalc report`: the design review in every format, its figures, silencing and bad options."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main
from archcalc.figures.memory import MemoryOptions
from archcalc.review.report import build_report
from archcalc.spec.graph import load


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_glance_figures_are_the_analysis() -> None:
    report = build_report(load(str(SPECS / "resnet50.yaml")), MemoryOptions(batch=32))
    g = report.glance
    assert g.params == 25_557_032  # torchvision docs
    assert g.flops == 8_178_368_512  # torch.utils.flop_counter
    assert g.depth == 50 and g.receptive_field == (427, 427)
    # the stages: 112, 56, 28, 14, 7, 1 and the head; their parameters add up to the total
    assert [s.resolution for s in report.stages] == [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7), (1, 1), ()]
    assert sum(s.params for s in report.stages) == g.params
    # 32 images x 64x112x112 float32 per stem output (conv1, bn1; relu works in place but is an
    # output of its own): 3 x 32 x 64 x 112 x 112 x 4 bytes
    assert report.stages[0].activation_bytes == 3 * 32 * 64 * 112 * 112 * 4


def test_block_tree_groups_repeats() -> None:
    report = build_report(load(str(SPECS / "resnet18.yaml")), MemoryOptions())
    layer2 = next(n for n in report.tree if n.name == "layer2")
    assert layer2.kind == "basic ×2" and [c.name for c in layer2.children] == ["layer2.0", "layer2.1"]
    # layer2: conv 3x3 64->128 + conv 3x3 128->128 + 2 BN, the projection 1x1 + BN, then a
    # second block of two 3x3 128->128 convs and 2 BN
    assert layer2.params == (73_728 + 147_456 + 512) + (8_192 + 256) + (2 * 147_456 + 512)


def test_terminal_report_has_every_section() -> None:
    code, out, _ = run("report", str(SPECS / "resnet50.yaml"))
    assert code == 0
    for text in ("design review: resnet50", "25,557,032", "layer3", "Stages", "Findings", "dropped-pixels", "225"):
        assert text in out


@pytest.mark.parametrize("fmt", ["markdown", "html", "json"])
def test_file_formats(fmt: str, tmp_path) -> None:
    target = tmp_path / f"review.{fmt}"
    code, _, err = run("report", str(SPECS / "vgg16.yaml"), "--format", fmt, "-o", str(target))
    assert code == 0 and "wrote" in err
    text = target.read_text()
    if fmt == "json":
        data = json.loads(text)
        assert data["glance"]["params"] == 138_357_544
        assert any(f["rule"] == "dense-heavy" for f in data["findings"])
    elif fmt == "markdown":
        assert text.startswith("# Design review: vgg16") and "| Layers |" in text and "dense-heavy" in text
    else:
        assert text.lstrip().lower().startswith("<!doctype html") and "dense-heavy" in text


def test_rules_can_be_silenced_on_the_command_line_and_in_the_spec(tmp_path) -> None:
    _, out, _ = run("report", str(SPECS / "vgg16.yaml"), "--format", "json", "--ignore", "dense-heavy")
    assert not any(f["rule"] == "dense-heavy" for f in json.loads(out)["findings"])
    text = (SPECS / "vgg16.yaml").read_text() + "ignore: [dense-heavy]\n"
    spec = tmp_path / "vgg16_quiet.yaml"
    spec.write_text(text)
    _, out, _ = run("report", str(spec), "--format", "json")
    data = json.loads(out)
    assert data["ignored"] == ["dense-heavy"]
    assert not any(f["rule"] == "dense-heavy" for f in data["findings"])


def test_bad_options_exit_2(tmp_path) -> None:
    code, _, err = run("report", str(SPECS / "resnet18.yaml"), "--ignore", "no-such-rule")
    assert code == 2 and "no-such-rule" in err and "dropped-pixels" in err
    code, _, err = run("report", str(SPECS / "resnet18.yaml"), "--format", "markdown", "-o", str(tmp_path / "missing" / "r.md"))
    assert code == 2 and "cannot write" in err
    code, _, err = run("report", "resnet1800")
    assert code == 2 and "did you mean" in err
