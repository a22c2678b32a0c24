"""`imgclf`'s command line: --version, a help text for everything, and progress bars on terminals only."""

import argparse
import io
import logging
import re
import sys
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from imgclf.cli import COMMANDS, build_parser, main
from imgclf.ops.progress import progress

ANSI_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    # argparse has no public way to walk a parser: its actions are the only list of what it takes.
    (commands,) = (action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    return dict(commands.choices)


def test_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"imgclf {version('imgclf')}\n"


def test_every_command_is_on_the_command_line() -> None:
    assert set(subcommands()) == set(COMMANDS)


def test_every_command_and_option_has_a_help_text() -> None:
    parsers = {"imgclf": build_parser(), **{f"imgclf {name}": parser for name, parser in subcommands().items()}}
    for name, parser in parsers.items():
        for action in parser._actions:
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help != argparse.SUPPRESS, f"{where} has no help"
            if isinstance(action, argparse._SubParsersAction):
                for command in action._choices_actions:
                    assert command.help, f"imgclf {command.dest} has no help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_description(name: str) -> None:
    description = subcommands()[name].description
    assert description and len(description.split()) >= 20, f"imgclf {name} --help says too little"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_commands_that_need_redis_say_so(name: str) -> None:
    assert "IMGCLF_REDIS_URL" in (subcommands()[name].description or "")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_of_every_command_exits_0(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main([name, "--help"])
    assert exit.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: imgclf {name}")
    assert (subcommands()[name].description or "").splitlines()[0] in shown


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, and keeps what was drawn on it."""

    def isatty(self) -> bool:
        return True


def use_terminal(monkeypatch: pytest.MonkeyPatch, term: str = "xterm-256color") -> Terminal:
    """Make stderr a terminal of type `term`. Called in the test itself: pytest puts its own
    capture back on sys.stderr between a fixture's setup and the test."""
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", term)
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    return stderr


@pytest.fixture
def root_handlers() -> Iterator[None]:
    saved = logging.getLogger().handlers[:]
    yield
    logging.getLogger().handlers[:] = saved


def run_three_steps() -> None:
    with progress(3, "torchvision weights") as bar:
        for _ in range(3):
            bar.advance()


def test_progress_draws_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = use_terminal(monkeypatch)
    run_three_steps()
    drawn = ANSI_CONTROL.sub("", terminal.getvalue())
    assert "torchvision weights" in drawn
    assert "3/3" in drawn


def test_progress_draws_nothing_when_stderr_is_not_a_terminal(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich alone would draw into the pipe with it
    monkeypatch.setenv("TERM", "xterm-256color")
    run_three_steps()
    assert capfd.readouterr() == ("", "")


def test_progress_draws_nothing_on_a_dumb_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = use_terminal(monkeypatch, term="dumb")
    run_three_steps()
    assert terminal.getvalue() == ""


def test_log_lines_stay_whole_above_the_bar(monkeypatch: pytest.MonkeyPatch, root_handlers: None) -> None:
    terminal = use_terminal(monkeypatch)
    handler = logging.StreamHandler(sys.stderr)  # as `configure_logging` sets it up
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    with progress(2, "ONNX exports") as bar:
        logging.getLogger("imgclf.test").warning("exporting efficientnet_lite0")
        bar.advance()
    assert handler.stream is terminal  # given back
    drawn = ANSI_CONTROL.sub("", terminal.getvalue())
    assert "ONNX exports" in drawn
    assert "WARNING exporting efficientnet_lite0" in re.split(r"[\r\n]+", drawn)
