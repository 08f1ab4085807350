"""Layer names: `names` patterns for a repeat's copies, `flat` copies numbered in their container,
`inline` calls whose layers are named as if written in their place.

Expected paths are written out by hand from the rules in docs/spec-format.md ("Naming layers"),
the way torchvision names nn.Sequential's children (0, 1, 2 ...) and DenseNet's
(`'denselayer%d' % (i + 1)`).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from archcalc.errors import SpecError
from archcalc.spec.graph import load


def paths(tmp_path: Path, text: str) -> list[str]:
    spec = tmp_path / "net.yaml"
    spec.write_text(textwrap.dedent(text))
    return list(load(str(spec)).nodes)


def error(tmp_path: Path, text: str) -> SpecError:
    spec = tmp_path / "net.yaml"
    spec.write_text(textwrap.dedent(text))
    with pytest.raises(SpecError) as caught:
        load(str(spec))
    return caught.value


DENSE = """\
    name: dense
    input: [4, 8, 8]
    blocks:
      unit:
        args: [k]
        layers:
          - {name: norm1, op: batchnorm2d}
          - {name: conv1, op: conv2d, out: $k, kernel: 1}
    layers:
      - {name: block1, block: unit, repeat: 3, k: 4, names: "denselayer{$i + 1}"}
      - {name: relu, op: relu, repeat: 2, names: "act{$i * 10}x"}
"""


def test_names_pattern_names_the_copies(tmp_path: Path) -> None:
    assert paths(tmp_path, DENSE) == [
        "block1.denselayer1.norm1", "block1.denselayer1.conv1",
        "block1.denselayer2.norm1", "block1.denselayer2.conv1",
        "block1.denselayer3.norm1", "block1.denselayer3.conv1",
        "relu.act0x", "relu.act10x",
    ]


VGG = """\
    name: vggish
    input: [3, 32, 32]
    blocks:
      conv_relu:
        args: [out]
        layers:
          - {op: conv2d, out: $out, kernel: 3, padding: 1}
          - {op: relu}
      stage:
        args: [out, convs]
        layers:
          - {name: convs, block: conv_relu, repeat: $convs, out: $out, inline: true}
          - {op: max_pool2d, kernel: 2, stride: 2}
      features:
        layers:
          - {name: stage1, block: stage, out: 8, convs: 1, inline: true}
          - {name: stage2, block: stage, out: 16, convs: 2, inline: true}
    layers:
      - {name: features, block: features}
      - {op: flatten}
      - {op: linear, out: 10, repeat: 2, flat: true}
"""


def test_inline_calls_continue_the_containers_numbering(tmp_path: Path) -> None:
    # torchvision's make_layers: [conv, relu, pool] then [conv, relu, conv, relu, pool], one
    # nn.Sequential numbered 0 ... 7; at the top level flatten is entry 1, the linears 2 and 3
    assert paths(tmp_path, VGG) == [
        "features.0", "features.1", "features.2",
        "features.3", "features.4", "features.5", "features.6", "features.7",
        "1", "2", "3",
    ]


def test_flat_copies_are_numbered_in_the_container_and_keep_their_names(tmp_path: Path) -> None:
    # MobileNetV2's features: a stem, then each inverted residual appended as features.N, whose
    # layers keep their names (features.2.conv); inline rows of blocks continue the numbering
    assert paths(tmp_path, """\
        name: rows
        input: [4, 16, 16]
        blocks:
          res:
            layers:
              - {name: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
              - {name: add, op: add, from: [input, conv]}
          row:
            args: [n]
            layers:
              - {op: relu}
              - {name: rest, block: res, repeat: $n, flat: true}
          features:
            layers:
              - {op: conv2d, out: 4, kernel: 1}
              - {name: skipped, op: relu, when: false}
              - {block: row, n: 1, inline: true}
              - {block: row, n: 2, inline: true}
              - {name: tail, block: res}
        layers:
          - {name: features, block: features}
    """) == [
        "features.0",  # the stem; the skipped entry takes no number
        "features.1", "features.2.conv", "features.2.add",  # row 1: its relu, one copy
        "features.3", "features.4.conv", "features.4.add", "features.5.conv", "features.5.add",
        "features.tail.conv", "features.tail.add",  # a named entry keeps its name
    ]


def test_skipped_entries_take_no_number(tmp_path: Path) -> None:
    # torchvision's InvertedResidual appends its expansion only when it expands: conv.0 is then
    # the depthwise convolution
    assert paths(tmp_path, """\
        name: skip
        input: [4, 8, 8]
        layers:
          - {op: conv2d, out: 8, kernel: 1, when: false}
          - {op: conv2d, out: 4, kernel: 3, padding: 1}
          - {op: relu}
    """) == ["0", "1"]


def test_from_uses_the_entries_own_names_inside_an_inline_call(tmp_path: Path) -> None:
    network = load(str(_write(tmp_path, """\
        name: residual
        input: [4, 8, 8]
        blocks:
          res:
            layers:
              - {op: conv2d, out: 4, kernel: 3, padding: 1}
              - {op: add, from: [input, 0]}  # entry 0 of this block, whichever number it takes
        layers:
          - {op: relu}
          - {block: res, repeat: 2, inline: true}
    """)))
    # the relu is 0; the copies' layers take 1, 2 and 3, 4
    assert list(network.nodes) == ["0", "1", "2", "3", "4"]
    assert network.nodes["2"].inputs == ("0", "1")
    assert network.nodes["4"].inputs == ("2", "3")


def _write(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "net.yaml"
    spec.write_text(textwrap.dedent(text))
    return spec


BAD = [
    # (entry, a piece of the message, the layer path reported)
    ('{name: r, op: relu, names: "a{$i}"}', "'names' names the copies of a 'repeat', but the entry has no 'repeat'", "r"),
    ('{name: r, op: relu, repeat: 2, flat: true, names: "a{$i}"}', "but 'flat' numbers the copies in the container", "r"),
    ('{name: r, op: relu, repeat: 2, names: "same"}', "gives copies 0 and 1 the same name 'same'", "r"),
    ('{name: r, op: relu, repeat: 2, names: "a{$i / 2}"}', "must be a whole number, got 0.0", "r"),
    ('{name: r, op: relu, repeat: 2, names: "a{$i == 0}"}', "must be a whole number, got True", "r"),
    ('{name: r, op: relu, repeat: 2, names: "a{$i"}', "unmatched brace", "r"),
    ('{name: r, op: relu, repeat: 2, names: "a}{$i}"}', "unmatched brace", "r"),
    ('{name: r, op: relu, repeat: 2, names: "a.{$i}"}', "a name has no dots", "r"),
    ('{name: r, op: relu, repeat: 1, names: "input"}', "is not 'input'", "r"),
    ('{name: r, op: relu, repeat: 2, names: "{__import__(\'os\')}"}', "__import__", "r"),
    ('{name: r, op: relu, repeat: 2, names: "{$j}"}', "j", "r"),
    ('{name: r, op: relu, repeat: 2, names: [a, b]}', "'names' must be a text", "r"),
    ('{name: r, op: relu, repeat: 2, names: "' + "x" * 201 + '{$i}"}', "at most 200 characters", "r"),
    ('{name: r, op: relu, repeat: 2, names: "' + "{$i}" * 9 + '"}', "more than 8 {expressions}", "r"),
    ('{name: r, op: relu, repeat: 2, names: "{(2 ** 60) ** 10}{(2 ** 60) ** 10}{$i}"}', "has at most 200 characters", "r"),
    ("{name: r, op: relu, flat: 1}", "'flat' must be true or false, got 1", "r"),
    ("{name: r, op: relu, inline: yes please}", "'inline' must be true or false", "r"),
    ("{name: r, op: relu, inline: true}", "it does not apply to an op", "r"),
    ("{name: r, block: b, inline: true, flat: true}", "it does not apply to 'flat' or 'names'", "r"),
]


def test_a_flat_number_taken_by_a_name_is_a_located_error(tmp_path: Path) -> None:
    found = error(tmp_path, "name: bad\ninput: [4]\nlayers:\n  - {op: relu, repeat: 2, flat: true}\n"
                            "  - {name: '1', op: relu}\n")
    assert found.message == "two layers would both be named '1'; rename one"
    assert found.location is not None and found.location.line == 5 and found.layer == "1"


@pytest.mark.parametrize(("entry", "message", "layer"), BAD)
def test_bad_names_are_located_errors(tmp_path: Path, entry: str, message: str, layer: str) -> None:
    found = error(tmp_path, f"name: bad\ninput: [4]\nlayers:\n  - {entry}\n"
                            "blocks: {b: {layers: [{op: relu}]}}\n")
    assert message in found.message
    assert found.location is not None and found.location.line == 4
    assert found.layer == layer


def test_cli_reports_a_bad_pattern_in_one_line(tmp_path: Path) -> None:
    spec = _write(tmp_path, 'name: bad\ninput: [4]\nlayers:\n  - {name: r, op: relu, repeat: 2, names: "x"}\n')
    done = subprocess.run([sys.executable, "-m", "archcalc", "summary", str(spec)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith(f"archcalc: error: {spec}:4 layer 'r': 'names' gives copies 0 and 1")
    assert "Traceback" not in done.stderr


def test_the_docs_vgg_example_names_features_0_to_9(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "spec-format.md").read_text()
    section = docs[docs.index("### Naming layers"):]
    example = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml\n") + 8)]
    spec = _write(tmp_path, "name: vgg_docs\ninput: [3, 32, 32]\n" + example)
    assert list(load(str(spec)).nodes) == [f"features.{i}" for i in range(10)]
