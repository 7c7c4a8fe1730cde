"""The `aigc-admin` command: start | worker | cronjob start | job | generate | migrate | up."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from aigc_admin.cli.logs import setup_logging
from aigc_admin.settings import SPECS, ConfigError, Settings, load_settings

app = typer.Typer(help="aigc-admin: an LLMOps control plane (models, deployments, fine-tuning, channels, gateway).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
cronjob_app = typer.Typer(help="Periodic tasks (rq-scheduler).", no_args_is_help=True)
generate_app = typer.Typer(help="Generate the GraphQL SDL or database migrations.", no_args_is_help=True)
account_app = typer.Typer(help="Repair accounts from the shell (when no administrator can sign in).",
                          no_args_is_help=True)
app.add_typer(cronjob_app, name="cronjob")
app.add_typer(generate_app, name="generate")
app.add_typer(account_app, name="account")


def _option_type(name: str) -> type:
    annotation = Settings.model_fields[name].annotation
    if annotation in (bool, int, float):
        return annotation  # type: ignore[return-value]
    return str  # Literal choices and strings: validated by the Settings model


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add every setting as a `--dotted.name` option (plus -c/--config.path); pass `settings=` to ``func``."""
    # the command's own parameters with their annotations evaluated (this module's are strings): typer reads the
    # Annotated[…, typer.Argument/Option] metadata from them, so NAMES stay arguments and keep their help
    hints = typing.get_type_hints(func, include_extras=True)
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(func).parameters.values() if p.name != "settings"]
    extra = [inspect.Parameter("config_path", inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=Annotated[str | None, typer.Option(
                                   "-c", "--config.path", help="TOML or JSON config file (env: AIGC_CONFIG_PATH).",
                                   rich_help_panel="Settings")])]
    for name, spec in SPECS.items():
        decls = [f"--{spec.flag}"] + (["-p"] if name == "http_port" else [])
        typ = _option_type(name)
        if typ is bool:
            decls = [f"--{spec.flag}/--no-{spec.flag}"]
        extra.append(inspect.Parameter(
            f"opt_{name}", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[typ | None, typer.Option(  # type: ignore[valid-type]
                *decls, help=f"{spec.help} (env {spec.envs[0]})", show_default=False,
                rich_help_panel="Settings")]))

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        config_path = kwargs.pop("config_path", None)
        flags = {k.removeprefix("opt_"): kwargs.pop(k) for k in list(kwargs) if k.startswith("opt_")}
        try:
            settings = load_settings(flags, config_path=config_path)
        except ConfigError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        setup_logging(settings)
        if settings.metrics_dir:  # before anything imports prometheus-client
            from aigc_admin.adapters.metrics_dir import enable_multiprocess

            enable_multiprocess(settings.metrics_dir)
        return func(settings=settings, **kwargs)

    wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
    return wrapper


# --- commands --------------------------------------------------------------------------------
@app.command(help="Run the HTTP server: GraphQL API (and GraphiQL) at /graphql, /healthz, /readyz.")
@with_settings
def start(*, settings: Settings) -> None:
    import uvicorn

    from aigc_admin.web.app import create_app

    host, port = settings.listen
    options: dict[str, Any] = {"host": host, "port": port, "log_config": None, "proxy_headers": True,
                               "access_log": settings.server_access_log,
                               "ws_per_message_deflate": settings.server_ws_compression,
                               "ws_max_size": settings.server_ws_max_message_bytes}
    processes = settings.api_processes
    if processes == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Several processes on one socket (uvicorn's supervisor replaces one that dies). What must happen once happens
    # here first: migrations, first-start data, generated keys; and one /metrics shows them all (a shared dir).
    import asyncio

    from aigc_admin.adapters.metrics_dir import enable_multiprocess
    from aigc_admin.web.app import announce_admin_password

    metrics_dir = settings.metrics_dir or str(settings.storage_dir / "metrics")
    enable_multiprocess(metrics_dir, fresh=True)
    settings = settings.model_copy(update={"metrics_dir": metrics_dir})
    settings.jwt_secret()  # generated and kept now, so that every process reads the same keys
    settings.encryption_key()
    announce_admin_password(settings, asyncio.run(_first_start(settings)))
    _export(settings)
    uvicorn.run("aigc_admin.web.app:app_from_environment", factory=True, workers=processes, **options)


async def _first_start(settings: Settings) -> str | None:
    from aigc_admin.bootstrap import open_platform

    async with open_platform(settings, apply_migrations=True) as platform:
        return await platform.first_start()


@app.command(help="Run an RQ worker on the platform's queues.")
@with_settings
def worker(burst: Annotated[bool, typer.Option("--burst", help="Exit when the queues are empty.")] = False,
           *, settings: Settings) -> None:
    from aigc_admin.workers.periodic import run_worker

    _refuse_embedded(settings, "worker")
    _export(settings)
    run_worker(settings, burst=burst)


@cronjob_app.command("start", help="Run rq-scheduler with periodic tasks registered "
                                   "(all of them when no NAMES are given and --cronjob.auto is on).")
@with_settings
def cronjob_start(names: Annotated[list[str] | None, typer.Argument(help="Task names, e.g. audit.retention.")] = None,
                  burst: Annotated[bool, typer.Option("--burst", help="Enqueue what is due, then exit.")] = False,
                  *, settings: Settings) -> None:
    from aigc_admin.workers.periodic import PERIODIC_TASKS, run_scheduler

    unknown = [n for n in names or [] if n not in PERIODIC_TASKS]
    if unknown:
        typer.echo(f"error: unknown task(s) {', '.join(unknown)}; known: {', '.join(PERIODIC_TASKS)}", err=True)
        raise typer.Exit(2)
    _refuse_embedded(settings, "cronjob start")
    _export(settings)
    run_scheduler(settings, list(names or []), burst=burst)


@app.command(help="Run one periodic task once, now (e.g. `aigc-admin job audit.retention`).")
@with_settings
def job(name: Annotated[str, typer.Argument(help="Task name.")], *, settings: Settings) -> None:
    import json

    from aigc_admin.workers.periodic import PERIODIC_TASKS, run_now

    if name not in PERIODIC_TASKS:
        typer.echo(f"error: unknown task {name!r}; known: {', '.join(PERIODIC_TASKS)}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(run_now(settings, name), default=str))


@app.command(help="Apply pending database migrations.")
@with_settings
def migrate(*, settings: Settings) -> None:
    import asyncio

    from aigc_admin.adapters.db import migrate as run

    asyncio.run(run(settings))
    typer.echo(f"database is up to date ({settings.db_drive})")


@account_app.command("reset-password", help="Set a new password for a local account (a random one, printed once, "
                                            "unless --password is given).")
@with_settings
def account_reset_password(
        username: Annotated[str, typer.Argument(help="The account's username.")],
        password: Annotated[str | None, typer.Option("--password", help="The new password (at least 8 characters); "
                                                     "read from AIGC_NEW_PASSWORD when that is set.",
                                                     envvar="AIGC_NEW_PASSWORD")] = None,
        *, settings: Settings) -> None:
    async def reset() -> str:
        async with _accounts(settings) as accounts:
            account, new = await accounts.reset_password(username, password)
            return f"password of {account.username!r} reset" + ("" if password else f"; new password: {new}")
    typer.echo(_repair(reset))


@account_app.command("enable", help="Enable an account (one an administrator disabled, or that was locked out).")
@with_settings
def account_enable(
        username: Annotated[str, typer.Argument(help="The account's username.")],
        platform_admin: Annotated[bool, typer.Option("--platform-admin",
                                                     help="Also make it a platform administrator.")] = False,
        *, settings: Settings) -> None:
    async def enable() -> str:
        async with _accounts(settings) as accounts:
            account = await accounts.enable(username, platform_admin=platform_admin)
            return f"account {account.username!r} enabled" + (" (platform administrator)"
                                                               if account.is_platform_admin else "")
    typer.echo(_repair(enable))


@contextlib.asynccontextmanager
async def _accounts(settings: Settings) -> AsyncIterator[Any]:
    from aigc_admin.bootstrap import open_platform

    async with open_platform(settings, apply_migrations=True) as platform:
        yield platform.account_recovery


def _repair(action: Callable[[], Any]) -> str:
    import asyncio

    from aigc_admin.domain.errors import DomainError

    try:
        return str(asyncio.run(action()))
    except DomainError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(1) from None


@generate_app.command("schema", help="Print (or write) the GraphQL SDL; schema.graphql is this output.")
def generate_schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
) -> None:
    from aigc_admin.resolvers.root import export_sdl

    sdl = export_sdl()
    if output:
        output.write_text(sdl)
    else:
        sys.stdout.write(sdl)


@generate_app.command("docs", help="Regenerate .env.example and the settings table in docs/configuration.md.")
def generate_docs(root: Annotated[Path, typer.Option("--root", help="Repository root.")] = Path(".")) -> None:
    from aigc_admin.cli.docs_gen import write_docs

    changed = write_docs(root)
    typer.echo("\n".join(str(c) for c in changed) if changed else "docs are up to date")


@generate_app.command("migrations", help="Write a new migration for model changes (developers).")
def generate_migrations(name: Annotated[str | None, typer.Option("--name", "-n")] = None) -> None:
    import asyncio

    from aigc_admin.adapters.db.migration_tools import make_migrations

    written = asyncio.run(make_migrations(name))
    typer.echo("\n".join(written) if written else "No changes detected")


@app.command(help="Everything on one machine: API + worker + scheduler with embedded defaults "
                  "(SQLite, embedded Redis, local runtime). Ctrl-C stops all.")
@with_settings
def up(*, settings: Settings) -> None:
    # one scrape of the API shows its worker and scheduler too: they count into one directory, emptied here
    metrics_dir = settings.metrics_dir or str(settings.storage_dir / "metrics")
    from aigc_admin.adapters.metrics_dir import enable_multiprocess

    enable_multiprocess(metrics_dir, fresh=True)
    from aigc_admin.cli.up import run_all

    run_all(settings.model_copy(update={"metrics_dir": metrics_dir}))


def _export(settings: Settings) -> None:
    """Jobs load their settings from the environment: give them exactly this process's settings."""
    import os

    os.environ.pop("AIGC_CONFIG_PATH", None)
    os.environ.update(settings.to_env())


def _refuse_embedded(settings: Settings, what: str) -> None:
    if settings.redis_embedded:
        typer.echo(f"error: '{what}' needs a shared Redis: set --redis.hosts (AIGC_REDIS_HOSTS) to host:port; "
                   "'embedded' works only inside 'aigc-admin up'", err=True)
        raise typer.Exit(2)


def main() -> None:
    app()
