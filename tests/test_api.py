"""The Python API: every example of docs/api.md runs, importing archcalc stays cheap, bad input
raises the command line's errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SPECS

import archcalc

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"


def _examples() -> list[tuple[str, str]]:
    """Each ```python block of docs/api.md (and the README's), named by the heading above it."""
    found = []
    for page in (API_DOC, ROOT / "README.md"):
        text = page.read_text()
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
            prose = re.sub(r"^```.*?^```", "", text[: match.start()], flags=re.DOTALL | re.MULTILINE)
            headings = re.findall(r"^#+ (.+)$", prose, re.MULTILINE)
            found.append((f"{page.name}-{len(found)}-{headings[-1] if headings else 'top'}", match.group(1)))
    return found


EXAMPLES = _examples()


def test_the_api_page_has_examples_that_check_figures() -> None:
    assert len(EXAMPLES) >= 8
    assert all("assert" in code for _, code in EXAMPLES)


@pytest.mark.parametrize("code", [c for _, c in EXAMPLES], ids=[n for n, _ in EXAMPLES])
def test_every_example_of_the_api_page_and_readme_runs(code: str) -> None:
    exec(compile(code, "docs example", "exec"), {"__name__": "docs_example"})  # noqa: S102 - our own docs


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT)


def test_importing_archcalc_loads_nothing_heavy() -> None:
    # the CLI imports the package first: every module here would cost start-up time
    heavy = ["pydantic", "numpy", "yaml", "sympy", "networkx", "rich", "click", "importlib.metadata", "archcalc.analysis", "archcalc.api"]
    done = _fresh(f"import sys, archcalc\nprint(sorted(set({heavy!r}) & set(sys.modules)))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_numeric_analysis_through_the_api_does_not_import_sympy() -> None:
    done = _fresh(
        "import sys, archcalc\na = archcalc.analyze('resnet50', batch=128, dtype='float16', optimizer='sgd')\n"
        "assert a.totals.params == 25557032\nassert 'sympy' not in sys.modules, 'sympy was imported'\n"
    )
    assert done.returncode == 0, done.stderr


def test_version_is_the_one_the_cli_reports() -> None:
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert archcalc.__version__ == declared
    cli = _fresh("from archcalc.cli import main\nmain(['--version'])")
    assert cli.stdout.startswith(f"archcalc, version {declared}")


def test_the_package_lists_its_api() -> None:
    for name in ("load", "loads", "analyze", "Analysis", "LayerResult", "Totals", "Network", "ArchcalcError", "SpecError", "ShapeError", "OptionError"):
        assert name in archcalc.__all__ and name in dir(archcalc)
        assert getattr(archcalc, name) is not None
    assert issubclass(archcalc.SpecError, archcalc.ArchcalcError)
    with pytest.raises(AttributeError, match="no attribute 'lod'"):
        archcalc.lod  # noqa: B018


def test_load_takes_a_zoo_name_a_path_or_a_pathlib_path() -> None:
    resnet18 = SPECS / "resnet18.yaml"
    for source in ("resnet18", "resnet18.yaml", str(resnet18), resnet18):
        network = archcalc.load(source)
        assert network.name == "resnet18" and network.file == str(resnet18)


def test_a_dict_is_validated_as_a_file_but_has_no_file_or_line() -> None:
    with pytest.raises(archcalc.SpecError) as caught:
        archcalc.load({"name": "x", "input": [4], "layers": [{"op": "linear", "outt": 2}]})
    location = caught.value.location
    assert location is None or (location.file is None and location.line is None)
    assert str(caught.value) == "layer '0': out: required field is missing; outt: unknown field; did you mean 'out'?"


def test_text_errors_name_the_text_and_the_line() -> None:
    text = "name: x\ninput: [4]\nlayers:\n  - {op: linear, out: 2}\n  - {op: linear, out: 2, bias: maybe}\n"
    with pytest.raises(archcalc.SpecError, match=r"^<string>:5 "):
        archcalc.loads(text)
    with pytest.raises(archcalc.SpecError, match=r"^mine.yaml:5 "):
        archcalc.loads(text, name="mine.yaml")


def test_text_is_held_to_the_size_limit_of_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHCALC_MAX_SPEC_BYTES", "20")
    with pytest.raises(archcalc.SpecError, match="larger than 20 bytes"):
        archcalc.loads("name: x\ninput: [4]\nlayers:\n  - {op: linear, out: 2}\n")
    with pytest.raises(archcalc.SpecError, match="larger than 20 bytes"):
        archcalc.loads("name: é\n" + "# ééééééé\n")  # 19 characters, 27 bytes of UTF-8


def test_a_string_is_never_read_as_yaml() -> None:
    with pytest.raises(archcalc.SpecError, match="did you mean resnet50"):
        archcalc.load("resnt50")
    with pytest.raises(archcalc.SpecError, match="no such file"):
        archcalc.load("name: x\ninput: [4]\nlayers: []\n")


def test_the_wrong_python_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="loads"):
        archcalc.load(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        archcalc.loads(b"name: x")  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(3, 0, 8), (3, -1, 8), (3, True, 8), (3, 8.0, 8), (3, "8x", 8), "3,,8", (3, 2**1024, 8)])
def test_an_input_shape_archcalc_cannot_use_is_an_option_error(shape: object) -> None:
    with pytest.raises(archcalc.OptionError, match="input_shape must be sizes >= 1 or symbol names"):
        archcalc.load("resnet18", input_shape=shape)  # type: ignore[arg-type]


def test_input_shapes_as_tuples_or_text_agree() -> None:
    assert archcalc.load("resnet18", input_shape="3,64,64").input_shape == (3, 64, 64)
    assert archcalc.load("resnet18", input_shape=[3, "64", 64]).input_shape == (3, 64, 64)


@pytest.mark.parametrize("batch", [0, -2, True, 1.5, "12x", "", None])
def test_a_batch_archcalc_cannot_use_is_an_option_error(batch: object) -> None:
    with pytest.raises(archcalc.OptionError):
        archcalc.analyze("resnet18", batch=batch)  # type: ignore[arg-type]


def test_a_batch_given_as_digits_is_a_number() -> None:
    a = archcalc.analyze("resnet18", batch="4")
    b = archcalc.analyze("resnet18", batch=4)
    assert a.memory.options.batch == 4 and a.memory == b.memory


def test_a_batch_symbol_must_not_be_one_of_the_specs_sizes() -> None:
    network = archcalc.load("resnet18", input_shape=(3, "B", "W"))
    with pytest.raises(archcalc.OptionError, match="batch symbol 'B' is also a size"):
        archcalc.analyze(network, batch="B")


def test_precision_must_be_a_known_policy() -> None:
    with pytest.raises(archcalc.OptionError, match="precision must be one of fp32, bf16, fp16, bf16-mixed, fp16-mixed"):
        archcalc.analyze("resnet18", precision="fp8")  # type: ignore[arg-type]
