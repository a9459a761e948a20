"""The `peerboard` command: serve, demo, database migrations, cohorts and assignments."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

import migrations
from services import (
    assignments,
    cohorts,
    exports,
    identity,
    importing,
    lti,
    lti_keys,
    people,
    policy,
)
from services.db import make_engine, make_sessionmaker, transaction
from services.demo import seed_demo
from services.demo.living import seed_living_cohort
from services.errors import DomainError, Invalid, NotFound
from services.models import Role
from services.policy import Actor
from web.demo import (
    DEFAULT_IDP_PORT,
    DEFAULT_SMTP_PORT,
    demo_settings,
    run_demo_identity_provider,
    run_demo_smtp_sink,
)
from web.settings import Settings, load_settings

T = TypeVar("T")
DEMO_DATABASE_URL = "sqlite+aiosqlite:///peerboard-demo.db"


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        raise click.ClickException("invalid settings:\n" + "\n".join(lines)) from None


def _run_in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = make_engine(settings.database_url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except DomainError as exc:
        message = exc.message
        if isinstance(exc, Invalid) and exc.problems:
            message = exc.title + ":\n" + "\n".join(f"  {p.describe()}" for p in exc.problems)
        raise click.ClickException(message) from None


def _migrate(settings: Settings, action: str = "upgrade", revision: str = "head") -> None:
    async def go() -> None:
        if path := settings.sqlite_path:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        try:
            step = migrations.upgrade if action == "upgrade" else migrations.downgrade
            await step(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(go())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Peerboard: threaded discussion and anonymous stance peer review for cohorts.

    Settings come from the environment (and a .env file): DATABASE_URL, REDIS_URL,
    PEERBOARD_SECRET_KEY, PEERBOARD_BASE_URL, PEERBOARD_ENV.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (the reverse proxy in deploy/ already does).",
)
def serve(host: str, port: int, access_log: bool) -> None:
    """Serve Peerboard with the settings from the environment (uvloop, httptools)."""
    import uvicorn

    from web.app import create_app

    app = create_app(_settings())
    _freeze_startup_objects()
    uvicorn.run(app, **serve_options(host, port, access_log=access_log))


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, the ORM's mappers, routes, templates,
    the OpenAPI document) out of the garbage collector's reach: they live as long as the
    process, and a full collection walking them paused the server for ~300 ms every few
    seconds under load, the p99 of live delivery (bench/sse_bench.py)."""
    import gc

    gc.collect()
    gc.freeze()


def serve_options(host: str, port: int, *, access_log: bool) -> dict[str, Any]:
    """uvicorn's settings for `serve`: its C event loop and HTTP parser (the standard
    extras), not asyncio's loop and h11, which cost a third of a small request."""
    return {
        "host": host,
        "port": port,
        "proxy_headers": True,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": access_log,
        "log_level": "info",
    }


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--database-url",
    envvar="PEERBOARD_DEMO_DATABASE_URL",
    default=DEMO_DATABASE_URL,
    show_default=True,
    help="Where the demo keeps its data.",
)
@click.option(
    "--idp-port",
    default=DEFAULT_IDP_PORT,
    show_default=True,
    type=int,
    help="Port of the demo identity provider on 127.0.0.1.",
)
@click.option(
    "--smtp-port",
    default=DEFAULT_SMTP_PORT,
    show_default=True,
    type=int,
    help="Port of the demo SMTP sink on 127.0.0.1 (not started if PEERBOARD_SMTP_URL is set).",
)
def demo(host: str, port: int, database_url: str, idp_port: int, smtp_port: int) -> None:
    """Migrate, seed the Secure Base demo cohort, and serve it with a demo sign-in and a
    local SMTP sink (its mail shows on /dev/mail)."""
    import os
    from contextlib import ExitStack

    import uvicorn

    from web.app import create_app

    if os.environ.get("PEERBOARD_ENV", "demo") not in ("demo", "development"):
        raise click.ClickException(
            "peerboard demo signs anyone in with one click; it refuses to run with "
            f"PEERBOARD_ENV={os.environ['PEERBOARD_ENV']}"
        )
    with ExitStack() as running:
        issuer = running.enter_context(run_demo_identity_provider(idp_port))
        smtp_url = None
        if not os.environ.get("PEERBOARD_SMTP_URL"):
            smtp_url, _ = running.enter_context(run_demo_smtp_sink(smtp_port))
        try:
            settings = demo_settings(
                host=host, port=port, database_url=database_url, issuer=issuer, smtp_url=smtp_url
            )
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from None
        _migrate(settings)

        async def seed(session: AsyncSession) -> int:
            assignment = await seed_demo(session, issuer=issuer)
            assert assignment.id is not None
            await seed_living_cohort(
                session, assignment=assignment, issuer=issuer,
                sample_paper=assignment.sample_paper or "",
            )  # fmt: skip
            return assignment.id

        assignment_id = _run_in_transaction(settings, seed)
        click.echo(
            f"Peerboard demo: http://{host}:{port}/ — sign in as one of the demo people "
            f"(the Secure Base assignment is /assignments/{assignment_id}); mail goes to "
            f"{'the demo SMTP sink' if smtp_url else 'PEERBOARD_SMTP_URL'} and shows on "
            f"http://{host}:{port}/dev/mail"
        )
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    _migrate(_settings(), "upgrade", revision)
    click.echo(f"database upgraded to {revision}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" removes every table)."""
    _migrate(_settings(), "downgrade", revision)
    click.echo(f"database downgraded to {revision}")


@main.group("cohorts")
def cohorts_group() -> None:
    """Cohorts."""


@cohorts_group.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The cohort's display name.")
def cohorts_create(slug: str, name: str) -> None:
    """Create a cohort with URL name SLUG."""

    async def work(session: AsyncSession) -> str:
        cohort = await cohorts.create_cohort(session, actor=Actor.system(), slug=slug, name=name)
        return cohort.slug

    click.echo(f"created cohort {_run_in_transaction(_settings(), work)}")


@main.group("assignments")
def assignments_group() -> None:
    """Assignments."""


@assignments_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cohort", "cohort_slug", required=True, help="Slug of the cohort.")
@click.option("--json", "as_json", is_flag=True, help="Print the created assignment as JSON.")
def assignments_import(file: Path, cohort_slug: str, as_json: bool) -> None:
    """Import an assignment from FILE (plain-text format, .json or .toml)."""
    system = Actor.system()
    try:
        draft = importing.parse_assignment_document(file.read_bytes(), filename=file.name)
    except Invalid as exc:
        problems = "\n".join(f"  {file.name}: {p.describe()}" for p in exc.problems)
        raise click.ClickException(f"{exc.title}; nothing was imported:\n{problems}") from None

    async def work(session: AsyncSession) -> dict[str, Any]:
        cohort = await cohorts.get_cohort(session, actor=system, slug=cohort_slug)
        assignment = await assignments.import_assignment(
            session, actor=system, cohort=cohort, draft=draft
        )
        assert assignment.id is not None
        detail = await assignments.get_assignment(
            session, actor=system, assignment_id=assignment.id
        )
        view = assignments.present_assignment(detail, actor=system)
        return view.model_dump(mode="json")

    view = _run_in_transaction(_settings(), work)
    if as_json:
        keys = ("id", "cohort", "title", "phase", "questions", "rubric")
        out = {k: view[k] for k in keys}
        out["questions"] = [
            {"id": q["id"], "position": q["position"], "prompt": q["prompt"]}
            for q in view["questions"]
        ]
        out["references"] = len(view["references"])
        out["has_sample_paper"] = view["sample_paper"] is not None
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        click.echo(
            f"imported assignment {view['id']} {view['title']!r} "
            f"with {len(view['questions'])} questions into cohort {cohort_slug}"
        )


@main.command("export")
@click.argument("kind", type=click.Choice(list(exports.KINDS)))
@click.option("--assignment", "assignment_id", required=True, type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--view",
    type=click.Choice(list(exports.VIEWS)),
    default="moderator",
    show_default=True,
    help="student: the posts as a classmate sees them (aliases)",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: standard output).",
)
def export_command(kind: str, assignment_id: int, fmt: str, view: str, output: Path | None) -> None:
    """Export posts, reviews, participation or the audit log of an assignment."""
    settings = _settings()

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            async with transaction(make_sessionmaker(engine), write=False) as session:
                plan = await exports.plan(
                    session,
                    actor=Actor.system(),
                    assignment_id=assignment_id,
                    kind=kind,
                    view=view,
                )
                total = await exports.count(session, plan)
                sink = output.open("wb") if output else sys.stdout.buffer
                written = 0
                # The bar goes to stderr, so standard output stays pure data.
                with click.progressbar(length=total, label=f"{kind}", file=sys.stderr) as bar:

                    async def counted() -> AsyncIterator[list[Any]]:
                        nonlocal written
                        async for row in exports.rows(session, plan):
                            written += 1
                            bar.update(1)
                            yield row

                    encode = exports.as_csv if fmt == "csv" else exports.as_json
                    try:
                        async for chunk in encode(plan.columns, counted()):
                            sink.write(chunk)
                    finally:
                        if output:
                            sink.close()
                return written
        finally:
            await engine.dispose()

    try:
        written = asyncio.run(go())
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"exported {written} rows", err=True)


@main.group("phases")
def phases_group() -> None:
    """Assignment phases."""


@phases_group.command("advance")
def phases_advance() -> None:
    """Move assignments whose deadline passed (those with auto_advance) and remind people
    of deadlines within 24 hours; the web server does both every
    PEERBOARD_PHASE_TICK_SECONDS too, so this is for cron or by hand."""
    from services import phases, reminders

    async def work(session: AsyncSession) -> tuple[list[int], int]:
        return await phases.advance_due(session), await reminders.remind_due(session)

    moved, reminded = _run_in_transaction(_settings(), work)
    click.echo(f"advanced {len(moved)} assignment(s)" + (f": {moved}" if moved else ""))
    click.echo(f"sent {reminded} deadline reminder(s)")


@main.group("mail")
def mail_group() -> None:
    """Outgoing mail (the outbox)."""


@mail_group.command("send")
def mail_send() -> None:
    """Bundle due digests and deliver what the outbox holds, once (the web server does it
    every PEERBOARD_MAIL_TICK_SECONDS when PEERBOARD_SMTP_URL is set)."""
    from services.mail import deliver_round
    from web.app import make_mailer

    settings = _settings()
    mailer = make_mailer(settings)
    if mailer is None:
        raise click.ClickException("mail is off: set PEERBOARD_SMTP_URL")

    async def go() -> str:
        engine = make_engine(settings.database_url)
        try:
            return str(await deliver_round(mailer, make_sessionmaker(engine)))
        finally:
            await engine.dispose()

    click.echo(asyncio.run(go()))


@main.group("admin")
def admin_group() -> None:
    """Administration from the server's shell (no sign-in needed)."""


@admin_group.command("grant")
@click.option("--issuer", required=True, help="The identity provider's issuer URL.")
@click.option("--subject", required=True, help="The person's subject (sub) at that provider.")
@click.option("--cohort", "cohort_slug", help="Slug of the cohort (for a cohort role).")
@click.option(
    "--role",
    required=True,
    type=click.Choice([*(r.value for r in Role), "administrator"]),
    help="A cohort role, or administrator (service-wide, without --cohort).",
)
def admin_grant(issuer: str, subject: str, cohort_slug: str | None, role: str) -> None:
    """Give a person a role, even before they have ever signed in."""
    administrator = role == "administrator"
    if administrator and cohort_slug:
        raise click.UsageError("--role administrator is service-wide: leave out --cohort")
    if not administrator and not cohort_slug:
        raise click.UsageError(f"--role {role} needs --cohort")

    async def work(session: AsyncSession) -> int:
        user = await identity.grant(
            session,
            actor=Actor.system(),
            issuer=issuer,
            subject=subject,
            role=None if administrator else Role(role),
            cohort_slug=cohort_slug,
            administrator=administrator,
        )
        assert user.id is not None
        return user.id

    user_id = _run_in_transaction(_settings(), work)
    where = "service-wide" if administrator else f"in cohort {cohort_slug}"
    click.echo(f"granted {role} {where} to {subject} at {issuer} (user {user_id})")


@main.group("people")
def people_group() -> None:
    """People's own data: export and erasure (administrators, from the server's shell)."""


@people_group.command("export")
@click.option("--issuer", required=True, help="The identity provider's issuer URL.")
@click.option("--subject", required=True, help="The person's subject (sub) at that provider.")
def people_export(issuer: str, subject: str) -> None:
    """Print everything the service holds about a person, as JSON."""

    async def work(session: AsyncSession) -> dict[str, Any]:
        user = await identity.find_user(session, issuer=issuer, subject=subject)
        if user is None or user.id is None:
            raise click.ClickException(f"no person {subject} at {issuer}")
        actor = await policy.load_actor(
            session, user_id=user.id, is_administrator=user.is_administrator
        )
        return await people.export_person(session, actor=actor)

    click.echo(json.dumps(_run_in_transaction(_settings(), work), indent=2, ensure_ascii=False))


@people_group.command("erase")
@click.option("--issuer", required=True, help="The identity provider's issuer URL.")
@click.option("--subject", required=True, help="The person's subject (sub) at that provider.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def people_erase(issuer: str, subject: str, yes: bool) -> None:
    """Erase a person: name, e-mail and subject go; their posts stay under "Former member"
    or their alias, their reviews stay anonymous; the audit log keeps a tombstone."""
    if not yes:
        click.confirm(f"Erase {subject} at {issuer}? This cannot be undone", abort=True)

    async def work(session: AsyncSession) -> people.Erasure:
        try:
            return await people.erase_person(
                session, actor=Actor.system(), issuer=issuer, subject=subject
            )
        except NotFound:
            raise click.ClickException(f"no person {subject} at {issuer}") from None

    done = _run_in_transaction(_settings(), work)
    click.echo(
        f"erased user {done.user_id}: {done.memberships_removed} membership(s) removed, "
        f"{done.posts_kept} post(s) kept under 'Former member' or their alias"
    )


@main.group("lti")
def lti_group() -> None:
    """LTI 1.3: the LMS platforms that launch Peerboard, and Peerboard's signing keys."""


@lti_group.command("add")
@click.option("--issuer", required=True, help="The platform's issuer (iss of its tokens).")
@click.option("--client-id", required=True, help="The client id the platform gave Peerboard.")
@click.option(
    "--deployment-id", "deployment_ids", multiple=True, help="A deployment id (repeatable)."
)
@click.option("--auth-login-url", required=True, help="The platform's OIDC authentication URL.")
@click.option("--token-url", required=True, help="The platform's OAuth 2 access token URL.")
@click.option("--jwks-url", required=True, help="The platform's public keyset URL.")
@click.option("--name", default="", help="A name for people to recognize it by.")
@click.option(
    "--frame-origin", "frame_origins", multiple=True,
    help="Another origin whose pages show Peerboard in a frame (repeatable).",
)  # fmt: skip
def lti_add(
    issuer: str, client_id: str, deployment_ids: tuple[str, ...], auth_login_url: str,
    token_url: str, jwks_url: str, name: str, frame_origins: tuple[str, ...],
) -> None:  # fmt: skip
    """Register a platform by hand (or add deployments to one already registered)."""
    settings = _settings()

    async def work(session: AsyncSession) -> int:
        platform = await lti.register_platform(
            session,
            actor=Actor.system(),
            secret=settings.secret_key,
            spec=lti.PlatformSpec(
                issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                token_url=token_url, jwks_url=jwks_url, deployment_ids=deployment_ids,
                name=name, frame_origins=frame_origins,
            ),
        )  # fmt: skip
        assert platform.id is not None
        return platform.id

    platform_id = _run_in_transaction(settings, work)
    click.echo(f"registered platform {platform_id}: {issuer} (client {client_id})")
    click.echo(f"  login initiation URL: {settings.base_url}/lti/login")
    click.echo(f"  redirect (launch) URL: {settings.base_url}/lti/launch")
    click.echo(f"  public keyset URL:    {settings.base_url}/lti/jwks.json")


@lti_group.command("list")
def lti_list() -> None:
    """The registered platforms and their deployments."""

    async def work(session: AsyncSession) -> list[Any]:
        return await lti.list_platforms(session, actor=Actor.system())

    for p in _run_in_transaction(_settings(), work):
        deployments = ", ".join(p.deployments) or "no deployments"
        click.echo(f"{p.id}\t{p.name}\t{p.issuer}\t{p.client_id}\t{deployments}")


@lti_group.command("registration-url")
def lti_registration_url() -> None:
    """A link (valid 7 days) for an LMS administrator's Dynamic Registration."""
    from urllib.parse import urlencode

    settings = _settings()
    invite = lti.make_invite(secret=settings.secret_key)
    click.echo(f"{settings.base_url}/lti/register?{urlencode({'invite': invite})}")


@lti_group.command("rotate-key")
def lti_rotate_key() -> None:
    """Make a new signing key; the old one stays published for two days."""
    settings = _settings()

    async def work(session: AsyncSession) -> str:
        return (await lti_keys.rotate(session, secret=settings.secret_key)).kid

    click.echo(f"new signing key {_run_in_transaction(settings, work)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
