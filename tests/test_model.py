"""The fast checks of archcalc.model accept exactly what pydantic accepts and give the same values:
every op and the spec's own models, on values of every plain kind (pydantic decides the rest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archcalc.errors import ArchcalcError
from archcalc.model import _REQUIRED, Model, _Decline, _pydantic, validation_error
from archcalc.ops import REGISTRY
from archcalc.spec.graph import load
from archcalc.spec.source import read_file
from archcalc.spec.spec import BlockDef, InputSpec, Spec

SCALARS = st.sampled_from([1, 2, 3, 1, 2, 3, 0, -1, 7, 0.0, 0.5, 1.0, 2.5, -0.5, True, False, None, "same", "valid", "zeros",
                           "reflect", "nearest", "bilinear", "tanh", "none", "row", "mean", "x", "", "float32"])
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, min_size=1, max_size=3), max_leaves=6)
MODELS: list[type[Model]] = [*dict.fromkeys(REGISTRY.values()), InputSpec, BlockDef, Spec]


def _pydantic_result(cls: type[Model], data: dict[str, Any]) -> Any:
    try:
        return cls._from(_pydantic(cls).model_validate(data))
    except validation_error():
        return "invalid"


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_checks_agree_with_pydantic(cls: type[Model], data: st.DataObject) -> None:
    required = [name for name, field in cls.model_fields.items() if field.default is _REQUIRED]
    optional = [name for name in cls.model_fields if name not in required]
    chosen = required + (data.draw(st.lists(st.sampled_from(optional), unique=True)) if optional else [])
    values = {name: data.draw(VALUES, label=name) for name in chosen}
    try:
        fast = cls._fast(values)
    except _Decline:
        return  # pydantic decides: nothing to compare
    expected = _pydantic_result(cls, values)
    assert expected != "invalid", values
    assert fast.model_dump() == expected.model_dump()
    assert {k: type(v) for k, v in fast.__dict__.items()} == {k: type(v) for k, v in expected.__dict__.items()}


def test_a_zoo_layer_takes_the_fast_path() -> None:
    conv = REGISTRY["conv2d"]._fast({"out": 64, "kernel": 7, "stride": 2, "padding": 3, "bias": False})
    assert (conv.out, conv.kernel, conv.stride, conv.padding, conv.groups) == (64, 7, 2, 3, 1)


def test_a_value_to_coerce_goes_to_pydantic() -> None:
    cls = REGISTRY["conv2d"]
    with pytest.raises(_Decline):
        cls._fast({"out": 64, "kernel": "3"})
    assert cls.model_validate({"out": 64, "kernel": "3"}).kernel == 3  # pydantic's lax mode
    with pytest.raises(validation_error(), match="greater than 0"):
        cls(out=64, kernel=0)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml"))[:12], ids=lambda p: p.stem)
def test_zoo_specs_take_the_fast_path_with_pydantic_values(path: Path) -> None:
    data = read_file(path)
    fast = Spec._fast(data)
    assert fast.model_dump() == _pydantic_result(Spec, data).model_dump()
    assert fast.layers is data["layers"]  # the loader's own list, which knows its lines


def test_a_valid_spec_is_analysed_without_importing_pydantic() -> None:
    """Start-up (issue 12): pydantic loads only when a value needs it."""
    code = (
        "import sys\nfrom archcalc.cli import main\n"
        "try:\n    main(['analyze', sys.argv[1], '--json'])\nexcept SystemExit:\n    pass\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(SPECS / "resnet50.yaml")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_spec_pydantic_coerces_keeps_the_lines_of_its_layers(tmp_path: Path) -> None:
    """224.0 is a whole number pydantic turns into 224 (the fast check declines it); the layers
    are still the loader's, so a later error names its line."""
    path = tmp_path / "net.yaml"
    path.write_text("name: n\ninput: [3, 8.0, 8]\nlayers:\n  - {op: conv2d, out: 4, kernel: 3}\n  - {op: add, from: [nowhere]}\n")
    with pytest.raises(ArchcalcError) as error:
        load(str(path))
    assert error.value.location is not None and error.value.location.line == 5
