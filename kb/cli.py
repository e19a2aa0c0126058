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
from typing import Any

import click

import dsl
from dsl.diagnostics import MAX_ERRORS, Diagnostic
from dsl.findings import FINDING_OUTCOMES
from dsl.load import display_path, rulebook_files
from kb.store.schema import declaration_schema

DEFAULT_RULEBOOKS = "rulebooks"


def _paths(paths: tuple[str, ...]) -> list[str]:
    if paths:
        return list(paths)
    if Path(DEFAULT_RULEBOOKS).is_dir():
        return [DEFAULT_RULEBOOKS]
    raise click.UsageError("give a rulebook file or folder (no ./rulebooks folder here)")


def _print_diagnostics(diags: list[Diagnostic], sources: dict[str, str],
                       unreported: int = 0) -> None:
    """Each diagnostic with its source line, the first MAX_ERRORS errors only; then how many
    more there are (`unreported`: found by the parser past the limit, not described)."""
    color = sys.stderr.isatty()
    shown = 0
    more = unreported
    for d in diags:
        if d.is_error:
            if shown >= MAX_ERRORS:
                more += 1
                continue
            shown += 1
        text = dsl.render(d, sources)
        if color:
            first, _, rest = text.partition("\n")
            first = click.style(first, fg="red" if d.is_error else "yellow", bold=True)
            text = first + ("\n" + rest if rest else "")
        click.echo(text, err=True)
    if more:
        click.echo(f"… and {more:,} more error(s), not shown: excon describes the first "
                   f"{MAX_ERRORS} of a run (fix those first; a later error is often their "
                   "consequence)", err=True)


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
    result = dsl.load(_paths(paths), declaration_schema(), checks=False)
    errors = len(result.errors) + result.unreported
    warnings = len(result.diagnostics) - len(result.errors)
    if fmt == "json":
        click.echo(json.dumps([d.as_dict() for d in result.diagnostics], ensure_ascii=False,
                              indent=2))
    else:
        _print_diagnostics(result.diagnostics, result.sources, result.unreported)
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


def _allowance(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from kb.inputs.report import parse_allowance

    try:
        return parse_allowance(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def _print_loads(loads: list[Any], kept: bool) -> None:
    """Each input file's counts, and its first rejected rows with the reason."""
    for load in loads:
        click.echo(load.summary(), err=True)
        for warning in load.warnings():
            click.echo(f"  {warning}", err=True)
        for p in load.problems[:10]:
            click.echo(f"  {load.file}:{p.line}: {p.column}: {p.value!r}: expected {p.expected}",
                       err=True)
        if kept and load.rejected_rows > len(load.problems[:10]):
            click.echo("  … every rejected row is in the rejected_rows table", err=True)


def _iso_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An --as-of date, checked before any work is done."""
    import datetime as dt

    if value is not None:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise click.BadParameter("expected a date YYYY-MM-DD") from None
    return value


REJECT_FUTURE = click.option(
    "--reject-future", is_flag=True,
    help="Reject declarations dated after today (by default they load, with a warning).")
STRICT = click.option(
    "--strict", is_flag=True,
    help="A column of an input file that excon does not read is an error, not a warning.")


@cli.command()
@click.argument("rulebooks", nargs=-1, type=click.Path())
@click.option("--db", "db_path", default="kb.db", show_default=True, type=click.Path(),
              help="The knowledge base file to (re)build.")
@click.option("--declarations", type=click.Path(allow_dash=True),
              help="declarations.csv ('-' for standard input).")
@click.option("--licences", type=click.Path(allow_dash=True), help="licences.csv")
@click.option("--parties", type=click.Path(allow_dash=True), help="parties.csv")
@click.option("--unit-values", type=click.Path(allow_dash=True),
              help="A published unit-value table (code,low,high,unit,source; unit USD/kg or "
                   "USD/t) that takes precedence over the rulebooks' indicative ranges.")
@click.option("--allow-rejected", default="0", show_default=True, callback=_allowance,
              help="Rejected rows a file may have (a count, or a percentage such as 1%) "
                   "before the build fails and the previous database stays.")
@REJECT_FUTURE
@STRICT
@click.option("--force", is_flag=True,
              help="Build even when an input table ends up empty where the previous "
                   "database had rows.")
def build(rulebooks: tuple[str, ...], db_path: str, declarations: str | None,
          licences: str | None, parties: str | None, unit_values: str | None,
          allow_rejected: str, force: bool, reject_future: bool, strict: bool) -> None:
    """Build the knowledge base from rulebooks (default ./rulebooks) and input files.

    Writes a new file next to the target and swaps it in only when it is complete and passes
    its integrity check; a failed build leaves the previous database untouched. Bad input rows
    are reported and kept in the rejected_rows table; good rows load.
    """
    from kb.build import BuildError
    from kb.build import build as build_kb

    try:
        report = build_kb(Path(db_path), [Path(p) for p in _paths(rulebooks)],
                          declarations, licences, parties, unit_values,
                          allow_rejected=allow_rejected, force=force,
                          reject_future=reject_future, strict=strict)
    except BuildError as e:
        _print_diagnostics(e.diagnostics, e.sources)
        _print_loads(e.loads, kept=False)
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    _print_diagnostics(report.warnings, {})
    _print_loads(report.loads, kept=True)
    c = report.counts
    click.echo(f"built {db_path}: {c.get('rules', 0)} rules, {c.get('instruments', 0)} "
               f"instruments, {c.get('items', 0)} items, {c.get('declarations', 0):,} "
               f"declarations (rulebook version {report.rulebook_version})", err=True)


@cli.command("demo-data")
@click.option("--declarations", "n", default=20_000, show_default=True,
              help="How many declarations.")
@click.option("--seed", default=1, show_default=True, help="Random seed (same seed, same data).")
@click.option("--out", default="demo", show_default=True, type=click.Path(),
              help="Folder for declarations.csv, licences.csv, parties.csv, truth.csv.")
@click.option("--rulebooks", "rulebook_paths", multiple=True, type=click.Path(),
              help="Rulebooks whose items and codes to use (default ./rulebooks).")
@click.option("--cases-per", type=click.IntRange(min=1), default=200, show_default=True,
              help="One planted case of each kind per this many declarations (200: about 8 %"
                   " of declarations planted; 2000: under 1 %, a realistic prevalence).")
def demo_data(n: int, seed: int, out: str, rulebook_paths: tuple[str, ...],
              cases_per: int) -> None:
    """Write realistic synthetic input files with planted violations and a truth file.

    Controlled goods use the rulebook's items and customs codes; licences cover most of them;
    truth.csv lists every planted case (unlicensed, banned destination, listed party,
    relabelled, transshipment, split consignments, related parties).
    """
    from kb.inputs import demo

    try:
        data = demo.generate(n, seed, [Path(p) for p in _paths(rulebook_paths)], cases_per)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    files = demo.write(data, Path(out))
    click.echo(f"wrote {len(data.declarations):,} declarations, {len(data.licences):,} "
               f"licences, {len(data.parties):,} parties and {len(data.truth):,} planted "
               f"declarations to {out}/ ({', '.join(p.name for p in files.values())})", err=True)


FAIL_ON_HELP = "Exit 1 when a finding has one of these outcomes (comma-separated)."


@cli.command()
@click.argument("declarations", type=click.Path(allow_dash=True), required=False)
@click.option("--licences", type=click.Path(allow_dash=True), help="licences.csv")
@click.option("--parties", type=click.Path(allow_dash=True), help="parties.csv")
@click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False),
              help="Screen against this knowledge base: its rulebooks, licences and parties "
                   "(unless given), and its declarations as history. Nothing is written to it.")
@click.option("--stdin", "stdin_mode", is_flag=True,
              help="Keep running: read one declaration per line from standard input as a "
                   "JSON object, and write its findings as one JSON line, as each arrives.")
@click.option("--as-of", "as_of", callback=_iso_date,
              help="Judge every declaration by the law of this date.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(), help="Write findings here (default stdout).")
@click.option("--rulebooks", "rulebook_paths", multiple=True, type=click.Path(),
              help="Rulebooks to screen against (default ./rulebooks).")
@click.option("--fail-on", default="", help=FAIL_ON_HELP)
@click.option("--unit-values", type=click.Path(allow_dash=True),
              help="A published unit-value table (as for excon build).")
@click.option("--allow-rejected", default="0", show_default=True, callback=_allowance,
              help="Rejected rows a file may have (a count, or a percentage such as 1%) "
                   "before the exit status is 1.")
@REJECT_FUTURE
@STRICT
@click.option("--engine", type=click.Choice(["sqlite", "duckdb", "postgres", "spark"]),
              default="sqlite", show_default=True,
              help="The SQL engine that runs the compiled checks (spark: a local session).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="The language of the findings' explanations: zh, in Chinese (from the "
                   "rulebook's `title zh`, `then … zh`, `explain zh` and items' Chinese names).")
@click.option("--dsn", help="PostgreSQL connection string for --engine postgres "
                            "(postgresql://user@host/db); the checks run in a schema of their "
                            "own, dropped afterwards.")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Screen with a parameter set to another value on every day, without "
                   "editing the rulebook (split-total-minor-metals=300kg, split-window=30days, "
                   "surge-rise='more than 40%'); repeatable. Findings resting on it are "
                   "unverified, their caveat naming the setting, under another rulebook "
                   "version.")
def screen(declarations: str | None, licences: str | None, parties: str | None,
           db_path: str | None, stdin_mode: bool, as_of: str | None,
           fmt: str, output: str | None, rulebook_paths: tuple[str, ...], fail_on: str,
           unit_values: str | None, allow_rejected: str, reject_future: bool, strict: bool,
           engine: str, lang: str, dsn: str | None, settings: tuple[str, ...]) -> None:
    """Screen a declarations file against the rulebooks and print the findings.

    Every finding names the declaration, the rule, the outcome (prohibited, unlicensed,
    undetermined, risk), the instrument and provision, and a sentence saying why. Screening
    uses a private in-memory knowledge base; no database file is modified. Exit status 0, or 1
    with --fail-on when a finding has one of the listed outcomes; 2 for usage errors.
    """

    from dsl.overrides import SettingError, parse_setting
    from kb.inputs.report import LoadError
    from kb.screen.output import in_language, screen_lines, write_findings
    from kb.screen.screener import (
        Screener,
        ScreeningError,
        basis_counts,
        beyond_sources,
    )

    if (engine == "postgres") != (dsn is not None):
        raise click.UsageError("--engine postgres needs --dsn, and --dsn needs --engine "
                               "postgres")
    if dsn is not None and not dsn.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("expected a postgresql:// connection string",
                                 param_hint="--dsn")
    wanted = {o.strip() for o in fail_on.split(",") if o.strip()}
    unknown = wanted - set(FINDING_OUTCOMES)
    if unknown:
        raise click.BadParameter(f"unknown outcome(s): {', '.join(sorted(unknown))}",
                                 param_hint="--fail-on")
    if (declarations is None) == (not stdin_mode):
        raise click.UsageError("give a declarations file, or --stdin to read them one by one")
    if stdin_mode:
        ignored = [name for name, given in (("-o", output), ("--fail-on", fail_on),
                                            ("--unit-values", unit_values),
                                            ("--format", fmt != "csv")) if given]
        if ignored:
            raise click.UsageError(f"--stdin answers each line on standard output as JSON: "
                                   f"{', '.join(ignored)} cannot be used with it")
    rulebooks = [Path(p) for p in _paths(rulebook_paths)] if rulebook_paths or not db_path \
        else None
    try:
        parameters = dict(parse_setting(s) for s in settings)
    except SettingError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None
    try:
        if db_path is not None or stdin_mode:  # licences and parties stay for every screening
            screener = Screener(rulebooks, db=Path(db_path) if db_path else None,
                                licences=licences, parties=parties, parameters=parameters)
            licences = parties = None
        else:
            screener = Screener(rulebooks, parameters=parameters)
        if stdin_mode:
            screen_lines(screener, as_of, dsn or engine, lang)
            return
        assert declarations is not None
        findings, reports = screener.screen_files(declarations, licences, parties, as_of,
                                                  engine=dsn or engine,
                                                  unit_values=unit_values,
                                                  reject_future=reject_future, last=True)
        screener.close()
    except (ScreeningError, LoadError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    _print_loads([r for r in reports if r.rejected_rows or r.warnings()], kept=False)
    write_findings(in_language(findings, screener, lang), fmt, output)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.outcome] = counts.get(f.outcome, 0) + 1
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "no findings"
    bases = basis_counts(findings)
    by_basis = "; " + ", ".join(f"{n} {b}" for b, n in bases.items()) if findings else ""
    click.echo(f"{len(findings)} finding(s): {summary}{by_basis} "
               f"(rulebook version {screener.version})", err=True)
    if bases["lapsed-by-text"] or bases["unverified"]:
        click.echo(f"warning: {bases['lapsed-by-text'] + bases['unverified']} finding(s) are "
                   "not settled: they rest on a suspension that ended by its own text after the "
                   "sources were checked (lapsed-by-text) or on a fact the rulebook marks "
                   "unverified; their caveat says what to check", err=True)
    beyond = beyond_sources(screener, screener.last_judged_day)
    if beyond:  # once per run, naming each rulebook whose sources stop before
        checked = "; ".join(f"{name} {day}" for name, day in beyond)
        click.echo(f"warning: declarations are judged up to {screener.last_judged_day}, after "
                   f"the days the rulebooks' sources were checked through ({checked}): a "
                   "later decision may have changed the law", err=True)
    too_many = [w for r in reports if (w := r.too_many_rejected(allow_rejected))]
    too_many += [e for r in reports for e in r.errors(strict)]
    for w in too_many:
        click.echo(f"error: {w}", err=True)
    if wanted & set(counts) or too_many:
        sys.exit(1)


@cli.command("add")
@click.argument("declarations", type=click.Path(allow_dash=True))
@click.option("--db", "db_path", default="kb.db", show_default=True,
              type=click.Path(dir_okay=False), help="The knowledge base to add them to.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(), help="Write findings here (default stdout).")
@click.option("--allow-rejected", default="0", show_default=True, callback=_allowance,
              help="Rejected rows the file may have (a count, or a percentage such as 1%) "
                   "before nothing is added.")
@REJECT_FUTURE
@STRICT
@click.option("--engine", type=click.Choice(["sqlite", "duckdb"]), default="sqlite",
              show_default=True, help="The SQL engine that runs the compiled checks.")
def add_command(declarations: str, db_path: str, fmt: str, output: str | None,
                allow_rejected: str, reject_future: bool, strict: bool, engine: str) -> None:
    """Screen a day's declarations against a knowledge base's history and add them to it.

    The findings are those a build from every declaration would give them: windows,
    first-seen dates and licence draw-downs continue from the knowledge base's declarations,
    with its rulebooks, licences and parties. The declarations, their derived rows and their
    findings are added in one transaction, or nothing is (a declaration already there, one
    dated on or before the latest there, or too many rejected rows). Exit status 0, or 1.
    """
    from kb.build import AddError, add
    from kb.inputs.report import LoadError
    from kb.screen.output import write_findings
    from kb.screen.screener import ScreeningError

    try:
        report = add(Path(db_path), declarations, engine=engine, allow_rejected=allow_rejected,
                     reject_future=reject_future, strict=strict)
    except (AddError, ScreeningError, LoadError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    _print_loads([r for r in report.loads if r.rejected_rows or r.warnings()], kept=True)
    write_findings(report.findings, fmt, output)
    click.echo(f"added {report.added:,} declaration(s) to {db_path} with "
               f"{len(report.findings):,} finding(s) (run {report.run_id}; rulebook version "
               f"{report.rulebook_version})", err=True)


@cli.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
def test_examples(paths: tuple[str, ...]) -> None:
    """Run every example in the rulebooks through the compiled checks (default ./rulebooks).

    Prints each failing example with its file and line, what was expected and what was found;
    exit status 1 when an example fails, or when there is no example to run (a wrong path
    would otherwise pass).
    """
    from kb.screen.examples import run_examples
    from kb.screen.screener import ScreeningError

    failed = total = 0
    try:
        for result in run_examples([Path(p) for p in _paths(paths)]):
            total += 1
            if result.passed:
                continue
            failed += 1
            click.echo(f"{result.location}: FAILED example \"{result.example.title}\"",
                       err=True)
            for expect, why in result.failures:
                click.echo(f"  {expect.where}: {why}", err=True)
    except ScreeningError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    click.echo(f"{total - failed} passed, {failed} failed", err=True)
    if total == 0:
        click.echo(f"error: no examples in {', '.join(_paths(paths))}: nothing was tested",
                   err=True)
    if failed or total == 0:
        sys.exit(1)


@cli.command()
@click.option("--dialect", type=click.Choice(["sqlite", "duckdb", "postgres", "spark"]),
              help="Write the bundle for this SQL engine.")
@click.option("--format", "fmt", type=click.Choice(["sql", "json", "ftm"]), default="sql",
              show_default=True, help="json: the checked rules as rules.json; ftm: the listed "
                                      "parties as FollowTheMoney entities (lists.ftm.jsonl).")
@click.option("--out", required=True, type=click.Path(), help="Folder to write into.")
@click.option("--rulebooks", "rulebook_paths", multiple=True, type=click.Path(),
              help="Rulebooks to export (default ./rulebooks).")
def export(dialect: str | None, fmt: str, out: str, rulebook_paths: tuple[str, ...]) -> None:
    """Export the compiled checks for other tools: a bundle per SQL engine, or the rules as
    JSON.

    SQL: a folder that runs the checks on that engine without excon — the tables, the
    rulebook's rows as CSV with a load script, every support relation and a view per rule
    plus `findings`, a self-check, a manifest and a README with the commands. The inputs go
    in its `inputs/` folder, written by `excon prepare`. JSON: rules.json and its JSON Schema
    (rules.schema.json). FtM: every listed party, its owners and each period of each listing
    as FollowTheMoney entities (Company or Organization, Ownership, Sanction), JSON lines.
    """
    from kb.screen import bundle
    from kb.screen import export as exporter
    from kb.screen.screener import Screener, ScreeningError

    if fmt == "sql" and dialect is None:
        raise click.UsageError("give --dialect sqlite|duckdb|postgres|spark, or --format json")
    try:
        screener = Screener([Path(p) for p in _paths(rulebook_paths)])
    except ScreeningError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "ftm":
        from kb.publish.ftm import FtmError, write_party_entities

        target = folder / "lists.ftm.jsonl"
        try:
            with target.open("w", encoding="utf-8") as f:
                n = write_party_entities(screener.db.conn, screener.rulebook, f)
        except FtmError as e:
            target.unlink(missing_ok=True)
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        click.echo(f"wrote {n:,} FollowTheMoney entities to {target}", err=True)
        return
    if fmt == "json":
        (folder / "rules.json").write_text(
            exporter.rules_json_text(screener.rulebook, screener.compiled,
                                     [Path(p) for p in _paths(rulebook_paths)]),
            encoding="utf-8")
        (folder / "rules.schema.json").write_text(exporter.rules_schema_text(), encoding="utf-8")
        click.echo(f"wrote {folder / 'rules.json'} and rules.schema.json", err=True)
        return
    assert dialect is not None
    found = bundle.write_bundle(screener.db.conn, screener.compiled, dialect, folder)
    click.echo(f"wrote the {dialect} bundle to {folder}/ ({len(screener.compiled.rules)} "
               f"checks, {len(found['tables'])} tables; scripts: "
               f"{', '.join(found['scripts'])}); next: excon prepare --bundle {folder} "
               "--declarations …", err=True)


@cli.command()
@click.option("--declarations", required=True, type=click.Path(allow_dash=True),
              help="declarations.csv ('-' for standard input).")
@click.option("--licences", type=click.Path(allow_dash=True), help="licences.csv")
@click.option("--parties", type=click.Path(allow_dash=True), help="parties.csv")
@click.option("--unit-values", type=click.Path(allow_dash=True),
              help="A published unit-value table (as for excon build).")
@click.option("--as-of", "as_of", callback=_iso_date,
              help="Judge every declaration by the law of this date.")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False),
              help="The exported bundle: its inputs/ folder is written, with the rulebooks "
                   "it keeps, and a rulebook version other than its own is refused.")
@click.option("--out", type=click.Path(),
              help="Folder to write into (default: the bundle's inputs/ folder).")
@click.option("--rulebooks", "rulebook_paths", multiple=True, type=click.Path(),
              help="Rulebooks the bundle was exported from (default: the bundle's own, "
                   "else ./rulebooks).")
@click.option("--allow-rejected", default="0", show_default=True, callback=_allowance,
              help="Rejected rows a file may have (a count, or a percentage such as 1%) "
                   "before the exit status is 1.")
@REJECT_FUTURE
@STRICT
def prepare(declarations: str, licences: str | None, parties: str | None,
            unit_values: str | None, as_of: str | None, bundle_dir: str | None,
            out: str | None, rulebook_paths: tuple[str, ...], allow_rejected: str,
            reject_future: bool, strict: bool) -> None:
    """Write the input tables of an exported bundle for these input files: the declarations,
    licences and parties as excon validates them, and what only Python computes (party-name
    keys, fuzzy matches against the lists, the links between parties, licence items).

    Rejected rows are reported as `excon screen` reports them and left out."""

    from kb.inputs.report import LoadError
    from kb.screen import bundle
    from kb.screen.screener import Screener, ScreeningError

    expected = None
    if bundle_dir is not None:
        try:
            made = json.loads((Path(bundle_dir) / "manifest.json").read_text("utf-8"))
            expected = str(made["rulebook_version"])
        except (OSError, ValueError, KeyError) as e:
            raise click.UsageError(f"{bundle_dir} is not an exported bundle (its "
                                   f"manifest.json: {e})") from None
        out = out or str(Path(bundle_dir) / "inputs")
        kept = Path(bundle_dir) / "rulebooks"
        if not rulebook_paths and kept.is_dir():
            rulebook_paths = (str(kept),)
    if out is None:
        raise click.UsageError("give --bundle (the exported bundle) or --out")
    try:
        screener = Screener([Path(p) for p in _paths(rulebook_paths)])
        if expected is not None and screener.version != expected:
            raise ScreeningError(
                f"{bundle_dir} was exported from rulebook version {expected}, these rulebooks "
                f"are version {screener.version}: export the bundle again, or give the "
                "rulebooks it was made from")
        with screener.loaded(declarations, licences, parties, as_of, unit_values,
                             reject_future) as reports:
            rows = bundle.write_inputs(screener.db.conn, Path(out), screener.version)
            # what the inputs were prepared with, beside them
            (Path(out) / "prepared.json").write_text(json.dumps({
                "rulebook_version": screener.version, "as_of": as_of,
                "files": {r.table: r.file for r in reports}, "rows": rows}, indent=2) + "\n",
                encoding="utf-8")
    except (ScreeningError, LoadError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    _print_loads([r for r in reports if r.rejected_rows or r.warnings()], kept=False)
    click.echo(f"wrote {', '.join(f'{t} ({n:,})' for t, n in rows.items())} to {out}/ "
               f"(rulebook version {screener.version})", err=True)
    too_many = [w for r in reports if (w := r.too_many_rejected(allow_rejected))]
    too_many += [e for r in reports for e in r.errors(strict)]
    for w in too_many:
        click.echo(f"error: {w}", err=True)
    if too_many:
        sys.exit(1)


@cli.command()
@click.argument("declaration_id")
@click.option("--db", "db_path", default="kb.db", show_default=True, type=click.Path(),
              help="The knowledge base holding the declaration.")
@click.option("--as-of", "as_of", callback=_iso_date,
              help="Judge by the law of this date instead of its own.")
@click.option("--rulebooks", "rulebook_paths", multiple=True, type=click.Path(),
              help="Rulebooks (default ./rulebooks).")
def explain(declaration_id: str, db_path: str, as_of: str | None,
            rulebook_paths: tuple[str, ...]) -> None:
    """Why a declaration got — or did not get — each finding.

    For every rule: whether it was in force on the judging date (and which suspension or
    repeal cut it), how each part of its condition came out, which licence was tried and why
    it did or did not cover, which exception applied, and the finding.
    """

    from kb.screen.explain import ExplainError
    from kb.screen.explain import explain as explain_declaration
    from kb.screen.screener import ScreeningError

    try:
        result = explain_declaration(Path(db_path), declaration_id, as_of,
                                     tuple(Path(p) for p in _paths(rulebook_paths)))
    except (ExplainError, ScreeningError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    click.echo(result.text(), nl=False)


@cli.command()
@click.option("--db", "db_path", default="kb.db", show_default=True, type=click.Path(),
              help="The built knowledge base to serve.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8001, show_default=True, type=int, help="Port to listen on.")
@click.option("--credentials", type=click.Path(),
              help="File of analyst logins, one name:password-hash per line, read again when "
                   "it changes (also read from the EXCON_CREDENTIALS environment variable).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Server processes sharing the port  [default: one per CPU, at most 8]")
@click.option("--sessions", type=click.Path(), default=None,
              help="SQLite file of login sessions and failed logins, shared by the workers  "
                   "[default: .NAME.sessions beside the knowledge base]")
@click.option("--session-hours", type=click.FloatRange(min=0.01), default=8.0,
              show_default=True, help="How long a login lasts.")
@click.option("--decisions", type=click.Path(dir_okay=False), default=None,
              help="SQLite file of the analysts' decisions on findings, made if missing and "
                   "never touched by a build  [default: NAME.decisions.db beside the "
                   "knowledge base]")
@click.option("--https-proxy", is_flag=True,
              help="Served behind an HTTPS reverse proxy: cookies are Secure, HSTS is sent, "
                   "and the proxy's X-Forwarded-For names the client (for login limits).")
@click.option("--proxy-ips", default="127.0.0.1", show_default=True,
              help="With --https-proxy: the proxy addresses whose forwarded headers to trust.")
@click.option("--max-requests", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="A worker is replaced after about this many requests.")
@click.option("--timeout", "timeout_s", type=click.IntRange(min=1), default=60,
              show_default=True,
              help="A worker silent for this many seconds is killed and replaced.")
def serve(db_path: str, host: str, port: int, credentials: str | None,
          workers: int | None, sessions: str | None, session_hours: float,
          decisions: str | None, https_proxy: bool, proxy_ips: str, max_requests: int,
          timeout_s: int) -> None:
    """Publish the knowledge base with Datasette, read-only.

    Reference data (instruments, items, codes, countries, public lists, rules) is public;
    declarations, licences, findings and runs need an analyst login, as do arbitrary SQL and
    downloading the database. The server serves a snapshot of the file taken at start: a
    rebuild does not disturb it. Send it SIGHUP to serve the new build.
    """
    from kb.publish.serve import Options, ServeError, default_workers, read_credentials
    from kb.publish.serve import serve as run_server

    options = Options(workers=workers or default_workers(),
                      sessions=Path(sessions) if sessions else None,
                      session_hours=session_hours, https_proxy=https_proxy,
                      proxy_ips=proxy_ips, max_requests=max_requests, timeout_s=timeout_s,
                      decisions=Path(decisions) if decisions else None)
    try:
        run_server(Path(db_path), host, port, read_credentials(credentials), options)
    except ServeError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@cli.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--declarations", type=click.Path(), default=None,
              help="Declarations to screen under both versions (CSV or Parquet).")
@click.option("--licences", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--parties", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--db", "db_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Screen the declarations, licences and parties this knowledge base holds "
                   "(instead of files).")
@click.option("--as-of", default=None, help="Judge every declaration by the law of this date "
                                            "(YYYY-MM-DD) instead of its own date.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True)
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="File to write the report to ('-': standard output).")
@click.option("--fail-on-change", "fail_on", default="",
              help="Exit 1 when the diff has changes of these kinds (comma-separated): any, "
                   "law, findings, appeared, disappeared, changed, outcome.")
def diff_command(old: str, new: str, declarations: str | None, licences: str | None,
                 parties: str | None, db_path: str | None, as_of: str | None, fmt: str,
                 out: str, fail_on: str) -> None:
    """Show what a rulebook change does before it is published.

    OLD and NEW are rulebook folders or files, git revisions (git:REV or git:REV:PATH, PATH
    defaulting to rulebooks), or db:KB.DB for the rulebooks a knowledge base was built from.
    Reports the rules, items, instruments, listings and amendments that changed, in plain
    words, and the findings that appear, disappear or change when the same declarations are
    screened under both, with counts by rule, outcome and destination and a sample of each.
    """
    from kb.screen.diff import (
        DiffError,
        check_fail_kinds,
        diff,
        html_report,
        inputs_of,
        text_report,
    )

    if (declarations is None) == (db_path is None):
        raise click.UsageError("give the declarations to screen: --declarations FILE, or "
                               "--db KB.DB for those a knowledge base holds")
    try:
        kinds = check_fail_kinds([k.strip() for k in fail_on.split(",") if k.strip()])
        with inputs_of(Path(db_path) if db_path else None) as held:
            result = diff(old, new, declarations or held["declarations"],
                          licences or held.get("licences"), parties or held.get("parties"),
                          as_of)
    except DiffError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    for warning in result.warnings:  # future-dated rows, unread columns, an empty file
        click.echo(warning, err=True)
    if fmt == "json":
        report = json.dumps(result.as_dict(), ensure_ascii=False, indent=1)
    elif fmt == "html":
        report = html_report(result)
    else:
        report = text_report(result)
    with click.open_file(out, "w", encoding="utf-8") as f:
        f.write(report + "\n")
    failed = [k for k in kinds if result.has(k)]
    if failed:
        click.echo(f"changes of kind {', '.join(failed)} (--fail-on-change)", err=True)
        sys.exit(1)


@cli.command()
def lsp() -> None:
    """Run the rulebook language server on standard input and output (for an editor).

    Diagnostics as you type, hover on instruments and items, go to definition, find
    references, completion in context, and formatting (excon fmt). Set up: editors/README.md.
    """
    from dsl.lsp import main as serve_lsp

    serve_lsp(declaration_schema())


@cli.command("decisions")
@click.option("--db", "db_path", default="kb.db", show_default=True, type=click.Path(),
              help="The knowledge base whose decisions to export (its NAME.decisions.db).")
@click.option("--decisions", type=click.Path(dir_okay=False), default=None,
              help="The decisions file, if not the one beside the knowledge base.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True)
@click.option("--log", is_flag=True,
              help="Every decision ever recorded (the audit log), not only the standing ones.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="File to write ('-': standard output).")
def decisions_export(db_path: str, decisions: str | None, fmt: str, log: bool,
                     out: str) -> None:
    """Export the analysts' decisions on findings (recorded in the served knowledge base's
    pages) as CSV or JSON: the standing decision on each finding, or with --log every one."""
    from kb.publish.decisions import DecisionError, decisions_path, export

    path = Path(decisions) if decisions else decisions_path(Path(db_path))
    try:
        with click.open_file(out, "w", encoding="utf-8") as f:
            n = export(path, fmt, f, log=log)
    except DecisionError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    click.echo(f"{n} decision(s)", err=True)


@cli.command()
@click.argument("rulebook", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(), help="Folder to write NAME.html into.")
def docs(rulebook: str, out: str) -> None:
    """Write a readable, printable HTML document of one rulebook.

    Every instrument with its provisions and the rules citing them, every rule in plain words
    with its validity, amendments and examples, the items with their codes, the lists and
    parties, a timeline of what was in force from July 2023 to today, and every unverified
    fact. One self-contained file: no scripts, no network.
    """
    from kb.documents.html import DocsError, write

    try:
        path = write(Path(rulebook), Path(out))
    except DocsError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    click.echo(f"wrote {path}")


@cli.command("password-hash")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The password (prompted for when not given; '-' reads standard input).")
def password_hash(password: str) -> None:
    """Print the hash of a password, for a `name:hash` line of `excon serve --credentials`."""
    from kb.publish.auth import hash_password

    if password == "-":
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise click.BadParameter("the password is empty", param_hint="--password")
    click.echo(hash_password(password))


def main() -> None:
    cli(prog_name="excon")


if __name__ == "__main__":
    main()
