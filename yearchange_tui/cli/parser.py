"""The ``yearchange`` argument parser, in French: usage, help headings and errors.

argparse builds its texts in English; :class:`FrenchParser` and its help formatter
translate them for their own instances only (argparse's module and any other parser in
the process keep their texts). A text missing from the table stays as argparse has it.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, NoReturn

from yearchange_tui.cli.util import EXIT_USAGE

# argparse's headings (it appends the colon; French puts a space before it) and the help
# texts of its own actions.
_HEADINGS = {
    "positional arguments": "arguments positionnels ",
    "options": "options ",
    "optional arguments": "options ",
}
_ACTION_HELP = {
    "show this help message and exit": "afficher cette aide et quitter",
    "show program's version number and exit": "afficher la version et quitter",
}
USAGE_PREFIX = "usage : "

# argparse's error templates and their French text (same placeholders).
_ERRORS = (
    ("the following arguments are required: %s", "arguments obligatoires manquants : %s"),
    ("unrecognized arguments: %s", "arguments inconnus : %s"),
    ("argument %(argument_name)s: %(message)s", "argument %(argument_name)s : %(message)s"),
    ("invalid choice: %(value)r (choose from %(choices)s)",
     "choix invalide : %(value)r (choix possibles : %(choices)s)"),
    ("unknown parser %(parser_name)r (choices: %(choices)s)",
     "commande inconnue %(parser_name)r (choix possibles : %(choices)s)"),
    ("invalid %(type)s value: %(value)r", "valeur invalide (%(type)s) : %(value)r"),
    ("expected one argument", "une valeur attendue"),
    ("expected at least one argument", "au moins une valeur attendue"),
    ("expected at most one argument", "au plus une valeur attendue"),
    ("expected %s argument", "%s valeur attendue"),
    ("expected %s arguments", "%s valeurs attendues"),
    ("one of the arguments %s is required", "l'un des arguments %s est obligatoire"),
    ("not allowed with argument %s", "incompatible avec l'argument %s"),
    ("ambiguous option: %(option)s could match %(matches)s",
     "option ambiguë : %(option)s peut désigner %(matches)s"),
    ("ignored explicit argument %r", "valeur ignorée : %r"),
    ("can't open '%(filename)s': %(error)s", "impossible d'ouvrir « %(filename)s » : %(error)s"),
)
_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[sr]")


def _pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching ``template`` with its placeholders captured."""
    parts: list[str] = []
    position = 0
    for index, match in enumerate(_PLACEHOLDER.finditer(template)):
        parts.append(re.escape(template[position:match.start()]))
        parts.append(f"(?P<{match.group(1) or f'p{index}'}>.+?)")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _fill(template: str, values: list[str]) -> str:
    """``template`` with its placeholders replaced, in order, by ``values`` (already shown)."""
    iterator = iter(values)
    return _PLACEHOLDER.sub(lambda _match: next(iterator), template)


_COMPILED = [(_pattern(english), english, french) for english, french in _ERRORS]


def translate_error(message: str) -> str:
    """argparse's English error ``message`` in French (unchanged when unknown).

    Args:
        message: the text argparse passes to ``ArgumentParser.error``.
    """
    for pattern, english, french in _COMPILED:
        match = pattern.match(message)
        if match is None:
            continue
        names = [name or f"p{index}" for index, name in
                 enumerate(m.group(1) for m in _PLACEHOLDER.finditer(english))]
        values = [match.group(name) for name in names]
        if "message" in names:  # ``argument X: …`` wraps another error
            values[names.index("message")] = translate_error(match.group("message"))
        return _fill(french, values)
    return message


class FrenchHelpFormatter(argparse.HelpFormatter):
    """argparse's help formatter with French headings, usage prefix and own-action help."""

    def add_usage(self, usage: str | None, actions: Any, groups: Any,
                  prefix: str | None = None) -> None:
        """Add the usage line, prefixed ``usage : `` unless a prefix is given."""
        super().add_usage(usage, actions, groups, USAGE_PREFIX if prefix is None else prefix)

    def start_section(self, heading: str | None) -> None:
        """Start a help section under its French heading."""
        super().start_section(_HEADINGS.get(heading or "", heading))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return _ACTION_HELP.get(action.help or "", action.help)


class FrenchParser(argparse.ArgumentParser):
    """An argument parser that speaks French and exits with status 2 on bad usage.

    Its sub-command parsers are French parsers too.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", FrenchHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print the usage and the French error on stderr, then exit with status 2."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog} : erreur d'utilisation : "
                              f"{translate_error(message)}\n")
