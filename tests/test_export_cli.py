"""`archcalc export`: writes PyTorch source without torch, refuses what it cannot write with a
clear message and exit 2, and says which extra to install for ONNX."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archcalc.cli import main

SPEC = """\
name: small
input: [3, 16, 16]
layers:
  - {name: conv, op: conv2d, out: 8, kernel: 3, padding: 1}
  - {name: bn, op: batchnorm2d}
  - {name: pool, op: max_pool2d, kernel: 2}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out: 10}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SPEC)
    return path


def test_export_pytorch_writes_a_module(spec: Path, tmp_path: Path) -> None:
    target = tmp_path / "net.py"
    out = CliRunner().invoke(main, ["export", str(spec), "--to", "pytorch", "-o", str(target)])
    assert out.exit_code == 0, out.output
    source = target.read_text()
    compile(source, str(target), "exec")
    assert "class Net(nn.Module):" in source
    assert "self.conv = nn.Conv2d(3, 8, kernel_size=(3, 3), padding=(1, 1))" in source
    assert "x_fc = self.fc(x_flatten)" in source and "return x_fc" in source


def test_export_needs_numbers(spec: Path, tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["export", str(spec), "--input", "3,H,W", "--to", "pytorch", "-o", str(tmp_path / "n.py")])
    assert out.exit_code == 2
    assert "give numbers with --input" in out.output
    assert not (tmp_path / "n.py").exists()


def test_export_lists_every_layer_without_a_pytorch_form(tmp_path: Path) -> None:
    # `verify`'s executor runs these, but a pool whose uneven padding is left out of the count
    # has no torch module: both layers are named, with their op
    spec = tmp_path / "odd.yaml"
    spec.write_text(
        "name: odd\ninput: [1, 4, 4]\nlayers:\n"
        "  - {name: a, op: avg_pool2d, kernel: 2, stride: 1, padding: same, count_include_pad: false}\n"
        "  - {name: b, op: avg_pool2d, kernel: 2, stride: 1, padding: same, count_include_pad: false}\n"
    )
    out = CliRunner().invoke(main, ["export", str(spec), "--to", "pytorch", "-o", str(tmp_path / "odd.py")])
    assert out.exit_code == 2
    assert "2 layers have no PyTorch form" in out.output
    assert "  a: avg_pool2d with uneven padding" in out.output and "  b: avg_pool2d" in out.output


def test_export_never_writes_over_the_spec(spec: Path) -> None:
    out = CliRunner().invoke(main, ["export", str(spec), "--to", "pytorch", "-o", str(spec)])
    assert out.exit_code == 2
    assert spec.read_text() == SPEC


def test_export_onnx_without_torch_names_the_extra(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("torch", "onnx", "onnxscript"):
        monkeypatch.setitem(sys.modules, name, None)  # `import torch` raises ImportError
    out = CliRunner().invoke(main, ["export", str(spec), "--to", "onnx", "-o", str(tmp_path / "n.onnx")])
    assert out.exit_code == 2
    assert "pip install 'archcalc[onnx]'" in out.output
    assert not (tmp_path / "n.onnx").exists()


def test_writing_the_source_imports_no_torch(spec: Path, tmp_path: Path) -> None:
    """The core and the PyTorch source writer never import torch (only running the file does)."""
    code = (
        "import sys; from archcalc.cli import main\n"
        f"try: main(['-q', 'export', {str(spec)!r}, '--to', 'pytorch', '-o', {str(tmp_path / 'n.py')!r}])\n"
        "except SystemExit as exc: assert exc.code in (0, None), exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "n.py").exists()
