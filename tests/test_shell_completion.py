"""Shell completion (click's, README "Shell completion"): commands, options, and for SPEC the
built-in specs' names and files."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import SPECS

from archcalc.cli import main


def _complete(words: str, shell: str = "bash") -> list[str]:
    """What `archcalc` answers a shell asking to complete the last of `words` (as bash_source's
    script asks: COMP_WORDS and COMP_CWORD in the environment)."""
    parts = words.split(" ")
    env = {"_ARCHCALC_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    result = CliRunner().invoke(main, [], prog_name="archcalc", env=env)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_a_spec_completes_to_files_and_the_zoo_names_that_start_so() -> None:
    zoo = sorted(path.stem for path in SPECS.glob("resn*.yaml"))  # resnet18 ... resnext101_32x8d
    assert "resnet50" in zoo
    assert _complete("archcalc summary resn") == ["file,resn", *(f"plain,{name}" for name in zoo)]


@pytest.mark.parametrize("command", ["memory", "report", "rf", "verify", "formula", "solve", "graph", "sweep", "analyze", "flops"])
def test_every_command_taking_a_spec_completes_it(command: str) -> None:
    assert "plain,vgg16_bn" in _complete(f"archcalc {command} vgg16")


def test_each_spec_of_compare_completes() -> None:
    assert _complete("archcalc compare resnet18 mobilenet_v3") == ["file,mobilenet_v3", "plain,mobilenet_v3_large", "plain,mobilenet_v3_small"]


def test_a_path_completes_to_files_only() -> None:
    assert _complete("archcalc summary specs/") == ["file,specs/"]


def test_commands_and_options_complete() -> None:
    assert _complete("archcalc fl") == ["plain,flops"]
    assert "plain,--valid-inputs" in _complete("archcalc solve unet --")


@pytest.mark.parametrize(("shell", "hook"), [("bash", "complete -o nosort -F _archcalc_completion archcalc"), ("zsh", "compdef _archcalc_completion archcalc"), ("fish", "complete --no-files --command archcalc")])
def test_each_shell_gets_its_script(shell: str, hook: str) -> None:
    result = CliRunner().invoke(main, [], prog_name="archcalc", env={"_ARCHCALC_COMPLETE": f"{shell}_source"})
    assert result.exit_code == 0
    assert hook in result.stdout


def test_zsh_shows_what_a_name_is() -> None:
    # zsh's protocol: type, value, help on three lines
    assert _complete("archcalc summary unet", "zsh")[:6] == ["file", "unet", "_", "plain", "unet", "built-in spec"]
