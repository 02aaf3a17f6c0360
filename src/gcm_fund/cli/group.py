"""The command group's habits: global flags after the command, a closed pipe that ends a
command quietly, and flags shown without a type in help."""

import errno
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

from gcm_fund.cli import terminal
from gcm_fund.cli.terminal import say
from gcm_fund.errors import EXIT_OK, EXIT_OUTPUT

GLOBAL_FLAGS = frozenset({"--debug", "--verbose", "-v"})


class Commands(TyperGroup):
    """The command group, with two habits of a shell tool.

    `--debug` and `-v` may come after the command too (`gcm-fund allocate -v`); and output
    that cannot be written ends the command cleanly: a closed pipe (`| head`) quietly with
    status 0, anything else (a full disk behind `> file`) with one message.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Only up to `--`: after it every word is an argument, even one spelled `-v`; and
        # never the value of an option (`--source -v` names a source called `-v`).
        end = args.index("--") if "--" in args else len(args)
        command = next((self.commands.get(a) for a in args[:end] if not a.startswith("-")),
                       None)
        takes_value = {opt for param in getattr(command, "params", ())
                       if isinstance(param, TyperOption) and not param.is_flag
                       for opt in param.opts}
        hoisted: list[str] = []
        rest: list[str] = []
        for i, word in enumerate(args[:end]):
            value = i > 0 and args[i - 1] in takes_value
            (hoisted if word in GLOBAL_FLAGS and not value else rest).append(word)
        return super().parse_args(ctx, [*hoisted, *rest, *args[end:]])

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            # Command bodies map their own OSErrors (_guard); what reaches here is the
            # printing of results to stdout.
            terminal.quiet_stdout()
            if exc.errno == errno.EPIPE:
                raise typer.Exit(EXIT_OK) from None
            say(f"error: cannot write the output to standard output: {exc.strerror}")
            raise typer.Exit(EXIT_OUTPUT) from None


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    # A flag takes no value: show `--force`, not `--force <bool>` (typer >= 0.25 labels
    # every option with its type).
    return None if self.is_flag else _option_type(self, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign,assignment]
