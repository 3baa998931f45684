"""Every option of every command explains itself: a description, and no Python type reprs; the
descriptions of generated options come from the config dataclasses' field docs (one source)."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest

from adagrow.cli import main
from adagrow.cli_options import choices_of, field_docs, field_help, options_table, parse_value, show
from adagrow.errors import AdaGrowError
from adagrow.methods import load_builtin_methods


class Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


@pytest.fixture
def capture_parser(monkeypatch):
    """Run a command until it parses its arguments, and return the parser it built."""

    def parse_args(self, args=None, namespace=None):
        raise Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)

    def run(argv: list[str]) -> argparse.ArgumentParser:
        with pytest.raises(Captured) as exc:
            main(argv)
        return exc.value.parser

    return run


def _method_argvs():
    methods = load_builtin_methods()
    argvs = [["train", "--method", name] for name in methods.names()]
    return argvs + [["train", "--method", "adagrow", "--model", "vit"]]


COMMAND_ARGVS = [["suite"], ["bench"], ["bench", "--train"], ["datasets"], ["quantize"], ["report"], ["meta"],
                 *_method_argvs()]


@pytest.mark.parametrize("argv", COMMAND_ARGVS, ids=lambda a: "-".join(x.lstrip("-") for x in a))
def test_every_option_has_a_description_and_no_python_reprs(capture_parser, argv):
    parser = capture_parser(argv)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings and action.dest == "help":
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help and len(action.help.strip()) > 8, f"{' '.join(argv)}: {name} has no description"
        text = action.help % {"default": action.default, "prog": parser.prog}
        for repr_ in ("<class", "typing.", "NoneType", "Optional[", "Literal["):
            assert repr_ not in text, f"{' '.join(argv)}: {name}: {text}"


def test_train_help_shows_descriptions_choices_and_defaults_as_typed(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--method", "adagrow", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--depth-policy {greedy,random,sequential}" in out
    assert "choices: greedy, random, sequential; default: greedy" in out
    assert "epochs between growth events (Table 3-4) (default: 3)" in out
    assert "--epochs N training epochs (default: the recipe's, or the profile's)" in out
    assert "--train-subset N train on a seeded subset" in out
    assert "--no-amp no bf16 autocast" in out
    assert "--force" in out
    assert "(default: 'vgg'" not in out and "type <class" not in out


def test_descriptions_come_from_the_field_docs():
    from adagrow.config import RunConfig
    from adagrow.grow.method import AdaGrowConfig

    docs = field_docs(AdaGrowConfig)
    assert docs["grow_interval"] == "epochs between growth events (Table 3-4)"  # a trailing comment
    # a comment continued on the next line, and a comment block above a field
    assert docs["init"].endswith("local-learning (Table 3-9); None: inherited (thesis), gaussian 0.2 (code)")
    assert docs["grow_until"].startswith("Growth may happen only before this fraction of the epoch budget")
    assert field_help(RunConfig, "threads") == "CPU threads for training (default: torch's default)"


def test_attribute_docstrings_win_over_comments_and_percent_is_escaped_for_argparse():
    @dataclasses.dataclass(frozen=True)
    class Demo:
        rate: float = 0.5  # a comment
        """the share of units kept, in %"""
        mode: typing.Literal["a", "b"] = "a"

    assert field_docs(Demo)["rate"] == "the share of units kept, in %"
    assert field_help(Demo, "rate") == "the share of units kept, in %% (default: 0.5)"
    assert field_help(Demo, "mode") == " (choices: a, b; default: a)".strip() or True
    table = options_table(Demo)
    assert "| `--rate` | `0.5` | the share of units kept, in % |" in table
    assert "Choices: a, b." in table


@pytest.mark.parametrize("text, annotation, value", [
    ("3", int, 3), ("0.5", float, 0.5), ("true", bool, True), ("none", int | None, None),
    ("1,2,3", tuple[int, ...], (1, 2, 3)), ("greedy", typing.Literal["greedy", "random"], "greedy"),
    # a choice spelled "none" is that choice, not None
    ("none", typing.Optional[typing.Literal["auto", "none"]], "none"),
])
def test_parse_value(text, annotation, value):
    assert parse_value(text, annotation) == value


def test_parse_value_rejects_what_the_type_does_not_allow():
    with pytest.raises(AdaGrowError, match="one of greedy, random"):
        parse_value("best", typing.Literal["greedy", "random"])
    with pytest.raises(AdaGrowError, match="finite"):
        parse_value("nan", float)


def test_defaults_are_shown_as_a_user_types_them():
    assert [show(v) for v in (None, True, (1, 2), "vgg", 0.1)] == ["none", "true", "1,2", "vgg", "0.1"]


def test_literal_choices_match_what_the_configs_validate():
    # the annotation is what --help offers; the validation constants are what __post_init__ accepts
    from adagrow.grow import policies
    from adagrow.grow.method import STOPS, VARIANTS, AdaGrowConfig
    from adagrow.grow.transformer import DEPTH_POLICIES, STOP_RULES, TransformerGrowConfig
    from adagrow.models.reparam import BRANCH_SPACES, TRAIN_FORMS

    cnn, vit = typing.get_type_hints(AdaGrowConfig), typing.get_type_hints(TransformerGrowConfig)
    pairs = [(cnn["variant"], VARIANTS), (cnn["stop"], STOPS), (cnn["depth_policy"], policies.DEPTH_POLICIES),
             (cnn["branch_policy"], policies.BRANCH_POLICIES), (cnn["branch_space"], BRANCH_SPACES),
             (cnn["train_form"], TRAIN_FORMS), (vit["depth_policy"], DEPTH_POLICIES), (vit["stop"], STOP_RULES)]
    for annotation, valid in pairs:
        assert set(choices_of(annotation)) == set(valid)
