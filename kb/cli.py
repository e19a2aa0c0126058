"""The `excon` command line: a thin click layer over the `dsl` and `kb` libraries.

Exit status: 0 when clean, 1 when a rulebook has errors (or `fmt --check` finds files to
reformat), 2 for usage errors (click's own convention).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
from pathlib import Path

import click

import dsl
from dsl.diagnostics import Diagnostic
from dsl.load import display_path, rulebook_files
from kb.schema import declaration_schema

DEFAULT_RULEBOOKS = "rulebooks"


def _paths(paths: tuple[str, ...]) -> list[str]:
    if paths:
        return list(paths)
    if Path(DEFAULT_RULEBOOKS).is_dir():
        return [DEFAULT_RULEBOOKS]
    raise click.UsageError("give a rulebook file or folder (no ./rulebooks folder here)")


def _print_diagnostics(diags: list[Diagnostic], sources: dict[str, str]) -> None:
    color = sys.stderr.isatty()
    for d in diags:
        text = dsl.render(d, sources)
        if color:
            first, _, rest = text.partition("\n")
            first = click.style(first, fg="red" if d.is_error else "yellow", bold=True)
            text = first + ("\n" + rest if rest else "")
        click.echo(text, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="excon")
def cli() -> None:
    """excon: export-control rulebooks, checks and a knowledge base.

    Policy staff write rulebooks (*.excon); `excon check` reads them and reports problems with
    their file, line and column; `excon fmt` lays them out canonically.
    """


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object per diagnostic, for editors and CI.")
@click.option("--warnings-as-errors", is_flag=True, help="Exit 1 on warnings too.")
def check(paths: tuple[str, ...], fmt: str, warnings_as_errors: bool) -> None:
    """Check rulebook files or folders (default: ./rulebooks).

    Reports every syntax error, unknown or duplicate name, invalid date or interval, type and
    unit error, conflict without precedence, unreachable exception and broken example.
    """
    result = dsl.load(_paths(paths), declaration_schema())
    errors = len(result.errors)
    warnings = len(result.diagnostics) - errors
    if fmt == "json":
        click.echo(json.dumps([d.as_dict() for d in result.diagnostics], ensure_ascii=False,
                              indent=2))
    else:
        _print_diagnostics(result.diagnostics, result.sources)
        rb = result.rulebook
        summary = (
            f"{len(result.files)} file(s), {len(rb.rules) if rb else 0} rules, "
            f"{len(rb.instruments) if rb else 0} instruments, "
            f"{len(rb.examples) if rb else 0} examples: "
            f"{errors} error(s), {warnings} warning(s)"
        )
        click.echo(summary, err=True)
    if errors or (warnings_as_errors and warnings):
        sys.exit(1)


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        Path(tmp).chmod(path.stat().st_mode & 0o777)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--check", "check_only", is_flag=True,
              help="Change nothing; exit 1 if any file is not in canonical layout.")
@click.option("--diff", is_flag=True, help="Change nothing; print what would change.")
def fmt(paths: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Lay rulebook files out canonically (default: ./rulebooks; '-' for stdin to stdout).

    Comments are kept; formatting twice changes nothing more; files with syntax errors are left
    untouched and their errors reported.
    """
    if paths == ("-",):
        data = sys.stdin.buffer.read()
        sf, diags = dsl.parse_bytes(data, "<stdin>")
        if diags:
            _print_diagnostics(diags, {"<stdin>": data.decode("utf-8", "replace")})
            sys.exit(1)
        click.echo(dsl.format_file(sf), nl=False)
        return
    failed = changed = 0
    for root in _paths(paths):
        if not Path(root).exists():
            raise click.UsageError(f"'{root}' does not exist")
        for path in rulebook_files(Path(root)):
            name = display_path(path)
            data = path.read_bytes()
            sf, diags = dsl.parse_bytes(data, name)
            if diags:
                _print_diagnostics(diags, {name: data.decode("utf-8", "replace")})
                failed += 1
                continue
            old = data.decode("utf-8")
            new = dsl.format_file(sf)
            if new == old:
                continue
            changed += 1
            if diff:
                click.echo("".join(difflib.unified_diff(
                    old.splitlines(True), new.splitlines(True), name, name + " (formatted)")))
            elif check_only:
                click.echo(f"would reformat {name}", err=True)
            else:
                _write_atomically(path, new)
                click.echo(f"reformatted {name}", err=True)
    if failed or ((check_only or diff) and changed):
        sys.exit(1)


def main() -> None:
    cli(prog_name="excon")


if __name__ == "__main__":
    main()
