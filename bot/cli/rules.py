"""`orderhub rules …`: check, explain, schema and diff for the rules file. Errors are sentences, never tracebacks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer

from bot.workers.rules_runtime import compile_rules
from engine.rules import RulesError, RuleSet, evaluate, json_schema
from engine.rules.diff import render as render_diff
from engine.rules.diff import replay
from engine.rules.explain import explain_lines, reproduce
from engine.text import t

app = typer.Typer(help="Check, explain and compare the business rules file.", no_args_is_help=True)

Language = Annotated[str, typer.Option("--language", "-l", help="zh or en (default: ORDERHUB_LANGUAGE)")]

_T = {
    "zh": {
        "ok": "✓ {path} 有效（版本 {version}）：{approvals} 条审批规则，{sla} 条时限，{bases} 个生产基地，{weights} 条优先级规则，{cats} 个异常类别",
        "missing": "找不到规则文件：{path}",
        "no_order": "找不到订单 {ref}（请用内部编号或 渠道:外部单号，例如 tmall:TM20251111-000123）",
        "db": "无法读取数据库：{err}（是否已运行 orderhub db upgrade？）",
        "stored": "数据库中保存的判定使用规则版本 {old}；以下为按当前规则 {new} 重新计算的结果",
        "bad_current": "当前规则文件无效，无法比较：",
        "no_version": "数据库中没有版本 {v}",
        "ambiguous": "版本前缀 {v} 不唯一，请多写几位：{hashes}",
        "versions_head": "已保存的规则版本（最新在后）：",
        "warning": "警告：",
        "versions_file": "当前生效的规则文件（ORDERHUB_RULES → ./rules.yaml → 内置示例）：{path}",
        "no_trace": "保存的判定只有结论（规则版本 {old}）；无法按当时的输入重现逐条规则的过程，以下仅列出结论",
    },
    "en": {
        "ok": "✓ {path} is valid (version {version}): {approvals} approval rules, {sla} time limits, {bases} bases, {weights} priority weights, {cats} anomaly categories",
        "missing": "rules file not found: {path}",
        "no_order": "order {ref} not found (use the internal id or channel:external_id, e.g. tmall:TM20251111-000123)",
        "db": "cannot read the database: {err} (has `orderhub db upgrade` been run?)",
        "stored": "the stored decisions used rules version {old}; below is a fresh evaluation with the current rules {new}",
        "bad_current": "the current rules file is invalid, nothing to compare against:",
        "no_version": "no stored rules version {v}",
        "ambiguous": "version prefix {v} is ambiguous, type more of it: {hashes}",
        "versions_head": "Stored rules versions (newest last):",
        "warning": "warning: ",
        "versions_file": "Rules file in effect here (ORDERHUB_RULES → ./rules.yaml → bundled): {path}",
        "no_trace": "the stored decisions (rules version {old}) keep only the outcome, and the evaluation could not be "
                    "reproduced from its recorded inputs; the summary follows",
    },
}


def _settings() -> Any:
    """Settings built when a command runs (never at import); a bad environment is a sentence, not a traceback."""
    from pydantic import ValidationError

    from bot.settings import Settings

    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(f"ORDERHUB_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in e.errors())
        typer.echo(f"invalid settings: {problems}", err=True)
        raise typer.Exit(1) from None


def _lang(language: str | None) -> str:
    if language in ("zh", "en"):
        return language
    from bot.settings import Settings

    try:
        return Settings().language
    except Exception:  # noqa: BLE001 - the language of a message must not be what fails; _settings() reports it
        return "zh"


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _db_fail(lang: str, e: Exception) -> NoReturn:
    """Exit 1 with the database error's type and first line (not a traceback: the operator reads this)."""
    _fail(_T[lang]["db"].format(err=type(e).__name__ + ": " + str(e).splitlines()[0]))


def _load_file(path: Path, lang: str) -> RuleSet:
    """Load a rules file or exit 1 with every problem printed as file:line:column field: message."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(_T[lang]["missing"].format(path=path))
    except (OSError, UnicodeDecodeError) as e:
        _fail(f"{path}: {e}")
    try:
        return compile_rules(text, str(path))
    except RulesError as e:
        _fail(e.render(lang))
    raise AssertionError("unreachable")  # pragma: no cover


@app.command()
def check(
    file: Annotated[Path | None, typer.Argument(help="rules file (default: ORDERHUB_RULES, ./rules.yaml, the bundled example)")] = None,
    language: Language = "",
) -> None:
    """Validate a rules file; exit code 1 and a located message for every problem."""
    lang = _lang(language or None)
    path = file if file is not None else _settings().rules_path
    rules = _load_file(path, lang)
    m = rules.model
    typer.echo(
        _T[lang]["ok"].format(
            path=path,
            version=rules.version[:12],
            approvals=len(m.approvals),
            sla=len(m.sla.limits),
            bases=len(m.bases),
            weights=len(m.priority.weights),
            cats=len(m.anomalies.categories),
        )
    )
    for calendar, year in rules.holiday_gaps(datetime.now(rules.tz).date()):
        typer.echo(_T[lang]["warning"] + t("admin.holidays_run_out", lang, calendar=calendar, year=year, next=year + 1,
                                            source=rules.holiday_source or "rules file"))
    gaps = rules.library_gaps()
    if gaps:
        typer.echo(_T[lang]["warning"] + t("admin.library_categories_missing", lang, ids=", ".join(gaps)))


@app.command()
def schema() -> None:
    """Print the JSON Schema of the rules file (for editor autocompletion)."""
    typer.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))


@app.command()
def explain(
    order: Annotated[str, typer.Argument(help="internal id or channel:external_id")],
    rules_file: Annotated[Path | None, typer.Option("--rules", help="rules file (default: the configured one)")] = None,
    stored: Annotated[bool, typer.Option("--stored", help="show the decisions stored with the order instead")] = False,
    version: Annotated[str | None, typer.Option("--version", help="evaluate with a stored rules version (hash prefix)")] = None,
    refund: Annotated[int | None, typer.Option("--refund", help="explain this refund of the order (default: its "
                                                                 "latest refund, if any)")] = None,
    language: Language = "",
) -> None:
    """Every rule considered for an order, matched or not, and why (with its refund: the refund matrix too)."""
    lang = _lang(language or None)
    settings = _settings()
    rules = None if version else _load_file(rules_file or settings.rules_path, lang)
    for line in asyncio.run(_explain(settings, rules, order, stored, lang, version, refund)):
        typer.echo(line)


async def _explain(settings: Any, rules: RuleSet | None, ref: str, stored: bool, lang: str, version: str | None = None,
                   refund_id: int | None = None) -> list[str]:
    from sqlalchemy.exc import SQLAlchemyError

    repo, engine = _repo(settings)
    try:
        try:
            if version:
                found = await repo.find_version(version)
                if not found:
                    _fail(_T[lang]["no_version"].format(v=version))
                if len(found) > 1:
                    _fail(_T[lang]["ambiguous"].format(v=version, hashes=", ".join(v.hash[:12] for v in found)))
                rules = compile_rules(found[0].text, f"{found[0].source_path}@{found[0].hash[:12]}")
            assert rules is not None
            order = await repo.find_order(ref)
            if order is None:
                _fail(_T[lang]["no_order"].format(ref=ref))
            assert order is not None
            now = datetime.now(UTC)
            old_version, old_decisions = await repo.stored_decisions(order.id)
            facts = (await repo.facts_for([order], now, stock=True))[order.id]
            refund_line, facts, now = await _with_refund(engine, order.id, refund_id, facts, now, lang)
            maker = None  # the rules version that made the stored decisions, when their trace must be recomputed
            if stored and old_decisions and "trace" not in old_decisions and old_version:
                if old_version == rules.version:
                    maker = rules
                elif (found_maker := await repo.get_version(old_version)) is not None:
                    maker = compile_rules(found_maker.text, f"{found_maker.source_path}@{found_maker.hash[:12]}")
        except SQLAlchemyError as e:
            _db_fail(lang, e)
    finally:
        await engine.dispose()
    tz = ZoneInfo(settings.timezone)
    if stored and old_decisions:
        if "trace" in old_decisions:  # stored in full (before intake stored the compact form)
            return explain_lines(old_decisions, order.key, lang, tz)
        # Intake stores the compact form: evaluate again exactly as then, with the version that decided then.
        again = reproduce(old_decisions, order, maker) if maker is not None else None
        if again is None:
            note = _T[lang]["no_trace"].format(old=str(old_version or "")[:12])
            return [note, *explain_lines(old_decisions, order.key, lang, tz)]
        return explain_lines(again.to_json(), order.key, lang, tz)
    lines = []
    if old_version and old_version != rules.version:
        lines.append(_T[lang]["stored"].format(old=old_version[:12], new=rules.version[:12]))
    decisions = evaluate(order, facts, rules, now)
    return lines + refund_line + explain_lines(decisions.to_json(), f"{order.key} (#{order.id})", lang, tz) + \
        _carrier_lines(rules, order, decisions.to_json().get("region"), lang) + \
        _owner_lines(rules, order, decisions.to_json().get("region"), decisions.route, lang)


def _owner_lines(rules: RuleSet, order: Any, region: str | None, route: Any, lang: str) -> list[str]:
    """The `owners:` rows considered for the order's current stage (only when the file has any)."""
    from engine.rules.owners import explain_owner_lines

    if not rules.owners:
        return []
    base = getattr(order, "production_base", None) or (route.base if route is not None else None)
    return ["", *explain_owner_lines(rules.owners, order.stage, region, base, rules.product_types_of(order), lang)]


def _carrier_lines(rules: RuleSet, order: Any, region: str | None, lang: str) -> list[str]:
    """The `carriers:` rows considered for the order (by goods, then region, then default)."""
    from engine.carriers.rules import goods_of

    g = goods_of(order.data.items)
    head = "[承运商]" if lang == "zh" else "[carrier]"
    facts = (f"  (region {order.region or region or '-'}; weight_kg {g.weight_kg if g.weight_kg is not None else '?'}; "
             f"size_cm {g.size_cm if g.size_cm is not None else '?'})")
    return ["", head, facts, *rules.model.carriers.explain(order.region or region, g)]


async def _with_refund(engine: Any, order_id: int, refund_id: int | None, facts: Any, now: datetime, lang: str
                       ) -> tuple[list[str], Any, datetime]:
    """The facts of the order's refund as it was decided (amount, who asked, shipped/delivered then), evaluated
    at its request time; none: the facts unchanged."""
    from dataclasses import replace as dc_replace
    from engine.rules.facts import RefundRequest
    from storage.refunds_repo import SqlRefunds

    refunds = await SqlRefunds(engine).of_order(order_id)
    chosen = next((r for r in refunds if r.id == refund_id), None) if refund_id else (refunds[-1] if refunds
                                                                                       else None)
    if refund_id and chosen is None:
        _fail(f"order has no refund {refund_id}" if lang == "en" else f"该订单没有退款 {refund_id}")
    if chosen is None:
        return [], facts, now
    f = chosen.decision.get("facts", {})
    at = lambda k: datetime.fromisoformat(f[k]) if f.get(k) else None  # noqa: E731
    req = RefundRequest(chosen.amount, chosen.requested_at, chosen.requested_by, at("shipped_at"), at("delivered_at"))
    head = (f"refund #{chosen.id}: {chosen.state.value}, ¥{chosen.amount}, requested {chosen.requested_at:%Y-%m-%d %H:%M}Z"
            if lang == "en" else
            f"退款 #{chosen.id}：{chosen.state.value}，¥{chosen.amount}，申请于 {chosen.requested_at:%Y-%m-%d %H:%M}Z")
    return [head], dc_replace(facts, refund=req), chosen.requested_at


@app.command()
def versions(language: Language = "") -> None:
    """The rules versions stored so far (hash, when, by whom, from which file), and the file in effect now."""
    lang = _lang(language or None)
    settings = _settings()
    for line in asyncio.run(_versions(settings, lang)):
        typer.echo(line)
    typer.echo(_T[lang]["versions_file"].format(path=settings.rules_path))


async def _versions(settings: Any, lang: str) -> list[str]:
    from sqlalchemy.exc import SQLAlchemyError

    repo, engine = _repo(settings)
    try:
        stored = await repo.list_versions()
    except SQLAlchemyError as e:
        _db_fail(lang, e)
    finally:
        await engine.dispose()
    tz = ZoneInfo(settings.timezone)
    lines = [_T[lang]["versions_head"]]
    for v in stored:
        lines.append(f"  {v.hash[:12]}  {v.loaded_at.astimezone(tz):%Y-%m-%d %H:%M:%S %Z}  {v.loaded_by}  {v.source_path}")
    return lines


@app.command()
def diff(
    new: Annotated[Path, typer.Argument(help="the proposed rules file")],
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="replay orders created in the last N days")] = 30,
    current: Annotated[Path | None, typer.Option("--current", help="compare against this file (default: the configured one)")] = None,
    language: Language = "",
) -> None:
    """Replay recent stored orders against a proposed file and print what would change."""
    lang = _lang(language or None)
    settings = _settings()
    new_rules = _load_file(new, lang)
    cur_path = current or settings.rules_path
    try:
        cur_rules = compile_rules(cur_path.read_text(encoding="utf-8"), str(cur_path))
    except RulesError as e:
        _fail(_T[lang]["bad_current"] + "\n" + e.render(lang))
    except OSError as e:
        _fail(f"{cur_path}: {e}")
    for line in asyncio.run(_diff(settings, cur_rules, new_rules, days, lang)):
        typer.echo(line)


async def _diff(settings: Any, old: RuleSet, new: RuleSet, days: int, lang: str) -> list[str]:
    from sqlalchemy.exc import SQLAlchemyError

    repo, engine = _repo(settings)
    now = datetime.now(UTC)
    try:
        orders = await repo.orders_created_since(now - timedelta(days=days))
        facts = await repo.facts_for(orders, now, stock=True)
    except SQLAlchemyError as e:
        _db_fail(lang, e)
    finally:
        await engine.dispose()
    report = replay(((o, facts[o.id]) for o in orders), old, new, now, days)
    return render_diff(report, old, new, lang)


def _repo(settings: Any) -> tuple[Any, Any]:
    """The rules repository on the runtime's own database engine (bot/wiring/runtime.py), not one of our own."""
    from bot.wiring.runtime import database_engine
    from storage.db import make_sessionmaker
    from storage.rules_repo import RulesRepo

    engine = database_engine(settings)
    return RulesRepo(make_sessionmaker(engine)), engine
