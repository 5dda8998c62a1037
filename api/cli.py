"""`todo-api`: serve (the default), migrate, dev-token, schema, assets."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import jwt
import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from api.gc_tuning import tune_for_serving
from api.settings import Settings, SettingsError, load_settings, with_dev_secret
from db.embedded import EmbeddedPostgres, EmbeddedPostgresError, open_embedded_postgres
from db.url import DatabaseURL

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("api")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DEFAULT_TOKEN_TTL = 3600


class StartupError(Exception):
    """A problem the operator must fix: printed as its one line, exit status 1."""


class Signalled(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: unwind (stopping the embedded PostgreSQL) and exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def configure_logging(*, quiet: bool = False, settings: Settings | None = None) -> None:
    """Our own lines at INFO (WARNING when quiet); libraries' only from WARNING up.

    Before the settings are read (so that their errors print) a plain console handler;
    then LOG_FORMAT's (api/observability.py). The service promises one line for the
    database and one when it is listening, so uvicorn's start-up and shutdown chatter
    is kept at WARNING (its errors show).
    """
    level = logging.WARNING if quiet else logging.INFO
    if settings is None:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    else:
        from api.observability import configure_logging as configure_handlers

        configure_handlers(settings, level=level)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    configure_logging(quiet=command == "migrate" and args.quiet)
    if command == "schema":  # needs no configuration
        from schema.schema import schema

        print(schema.as_str())
        return
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(quiet=command == "migrate" and args.quiet, settings=settings)
    if command == "assets":
        from api.docs import assets_command

        raise SystemExit(assets_command(settings.data_dir))
    if command == "dev-token":
        print(dev_token(settings, args.user, email=args.email, name=args.name, ttl=args.ttl))
        return
    try:
        with _signals_unwind():
            if command == "migrate":
                migrate(settings, announce=not args.quiet)
            else:
                serve(settings, host=args.host, port=args.port, workers=args.workers)
    except (StartupError, EmbeddedPostgresError) as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
    except Signalled as stop:
        # Stopped before the service was up (once it is, a signal is a clean stop).
        raise SystemExit(128 + stop.signum) from None


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """Ctrl-C and SIGTERM (docker stop, systemd, process managers) raise Signalled,
    which unwinds through the `finally` blocks: an embedded PostgreSQL stops with us."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Signalled(signum)

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _stop(embedded: EmbeddedPostgres) -> None:
    """Stop the embedded PostgreSQL (when ours is the last handle on it), without letting
    an impatient second Ctrl-C cut that short."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        embedded.stop()
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def migrate(settings: Settings, *, announce: bool = True) -> None:
    """Upgrade the database (DATABASE_DIRECT_URL when set) to the latest migration."""
    from db.migrations import run_migrations  # serving processes never load Alembic

    url, embedded, about = _database(settings)
    try:
        target, pooled = settings.migration_database(url)
        variable = "DATABASE_DIRECT_URL" if settings.database_direct_url is not None else "DATABASE_URL"
        if target.connect_timeout is None:
            target = replace(target, connect_timeout=settings.db_connect_timeout_seconds)
        try:
            asyncio.run(run_migrations(target, pooled=pooled))
        except Exception as error:
            problem = database_problem(error, target, variable, target.connect_timeout)
            if problem is None:
                raise
            raise StartupError(problem) from None
    finally:
        if embedded is not None:
            _stop(embedded)
    if announce:
        log.info("%s", about)
        print("Database is at the latest migration.")


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    # The port first: if it is taken, nothing else starts (and nothing claims it did).
    sock = _bind(host, port)
    embedded: EmbeddedPostgres | None = None
    try:
        # Resolve the database and the dev secret once here, so every worker agrees.
        url, embedded, about = _database(settings)
        os.environ["DATABASE_URL"] = url.url
        with_dev_secret(settings)
        if settings.migrate_on_start:
            # Once, before the workers start, and in a child process so that the serving
            # processes never load Alembic and SQLAlchemy (about 26 MB each). The child
            # reports its own failure in one line.
            child = subprocess.run([sys.executable, "-m", "api", "migrate", "--quiet"], check=False)
            if child.returncode != 0:
                if child.returncode < 0:
                    print(f"Migrations did not finish (signal {-child.returncode}).", file=sys.stderr)
                raise SystemExit(1)
            os.environ["MIGRATE_ON_START"] = "false"
        else:
            _check_database(settings, url)
        log.info("%s", about)  # once the database has answered
        if settings.graphql_ide:
            from api.docs import ensure_graphiql

            ensure_graphiql(settings.data_dir)  # once, before the workers start
        _run_uvicorn(settings, sock, host=host, workers=workers)
    finally:
        sock.close()
        if embedded is not None:
            _stop(embedded)


def worker_app() -> FastAPI:
    """The app in each uvicorn worker (a fresh process when --workers > 1)."""
    from api.main import app_factory

    settings = load_settings()
    configure_logging(settings=settings)
    app = app_factory(settings)
    if app.state.fast_paths:
        # Here, in the serving process once its imports are done and the app is built,
        # just before uvicorn starts it: what is frozen is what lives as long as the
        # process. (What the app's start-up opens later, the pool, is a few objects.)
        tune_for_serving()
    return app


class _Server(uvicorn.Server):
    """uvicorn's server, saying "Listening" once it really accepts connections."""

    def __init__(self, config: uvicorn.Config, address: str) -> None:
        super().__init__(config)
        self.address = address

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except OSError as error:  # another process started listening on the port meanwhile
            await self.lifespan.shutdown()
            raise StartupError(_bind_problem(error, self.config.host, self.config.port)) from None
        if self.started:
            log.info("Listening on %s", self.address)


class _Workers(Multiprocess):
    """uvicorn's worker supervisor, saying "Listening" once every worker serves."""

    address = ""
    ready = False
    signalled = False

    def handle_int(self) -> None:
        self.signalled = True
        super().handle_int()

    def handle_term(self) -> None:
        self.signalled = True
        super().handle_term()

    def init_processes(self) -> None:
        super().init_processes()
        pending = list(self.processes)
        while pending and not self.should_exit.is_set():
            self.handle_signals()
            if not all(worker.process.is_alive() for worker in pending):
                return  # the supervisor's loop reports it and stops
            pending = [worker for worker in pending if not worker.is_ready(timeout=1)]
            if pending:
                time.sleep(0.1)
        if not pending:
            self.ready = True
            log.info("Listening on %s (%d workers)", self.address, len(self.processes))


def _run_uvicorn(settings: Settings, sock: socket.socket, *, host: str, workers: int) -> None:
    config = uvicorn.Config(
        "api.cli:worker_app",
        factory=True,
        host=host,
        port=sock.getsockname()[1],
        workers=workers,
        proxy_headers=True,
        server_header=False,
        log_config=None,  # configure_logging() is the configuration, in every process
        access_log=False,
        # After the SIGTERM drain (api/drain.py): how long requests in flight may take.
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
    )
    address = _address(sock)
    if workers > 1:
        sock.listen(config.backlog)  # now, so that no other process can take the port
        supervisor = _Workers(config, sockets=[sock])
        supervisor.address = address
        supervisor.run()  # returns on SIGINT/SIGTERM, or when a worker cannot start
        if not supervisor.ready and not supervisor.signalled:
            raise SystemExit(3)  # uvicorn has said why (a worker could not start)
        return
    server = _Server(config, address)
    # uvicorn raises the signal that stopped it again once it has shut down: a clean stop.
    with contextlib.suppress(Signalled):
        server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)  # uvicorn has said why (the application's start-up failed)


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket's address, taken before anything starts (as uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError(_bind_problem(error, host, port)) from None
    sock.set_inheritable(True)
    return sock


def _bind_problem(error: OSError, host: str, port: int) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use: stop the process listening there"
            " or start with another --port."
        )
    if isinstance(error, socket.gaierror):
        return f"Cannot listen on {host}:{port}: unknown host ({error.strerror}). Check --host."
    return f"Cannot listen on {host}:{port}: {error.strerror or error}. Check --host and --port."


def _database(settings: Settings) -> tuple[DatabaseURL, EmbeddedPostgres | None, str]:
    """DATABASE_URL, or the embedded PostgreSQL (started here), and the line saying which."""
    if settings.database_url is not None:
        mode = " (through a transaction-mode pooler)" if settings.db_pooled else ""
        return settings.database_url, None, f"Using the database at {_shown(settings.database_url)}{mode}"
    embedded = open_embedded_postgres(settings.data_dir)
    shown = settings.data_dir / "postgres"
    socket_path = embedded.socket
    if socket_path.parent == embedded.pgdata:
        socket_path = shown / socket_path.name
    about = (
        f"No DATABASE_URL set: using the embedded PostgreSQL in {shown}"
        f" (Unix socket {socket_path}, no TCP port)"
    )
    return embedded.url, embedded, about


def _check_database(settings: Settings, url: DatabaseURL) -> None:
    """With MIGRATE_ON_START=false: can the service connect at all?"""
    import asyncpg

    async def connect() -> None:
        timeout = url.connect_timeout or settings.db_connect_timeout_seconds
        connection = await asyncpg.connect(url.asyncpg_dsn, timeout=timeout)
        await connection.close()

    try:
        asyncio.run(connect())
    except Exception as error:
        timeout = url.connect_timeout or settings.db_connect_timeout_seconds
        problem = database_problem(error, url, "DATABASE_URL", timeout)
        if problem is None:
            raise
        raise StartupError(problem) from None


def database_problem(
    error: BaseException, url: DatabaseURL, variable: str, timeout: float | None = None
) -> str | None:
    """One line naming the cause and what to do, when `error` (or what it wraps) comes
    from the database or from reaching it; None for anything else."""
    import asyncpg

    cause = _find_cause(error, (asyncpg.PostgresError, asyncpg.ClientConfigurationError, OSError))
    if cause is None:
        return None
    where, server = _shown(url), _shown(url, database=False)
    user = urlsplit(url.asyncpg_dsn).username or "the default user"
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if isinstance(cause, asyncpg.InvalidCatalogNameError):
        return (
            f"Database {url.database!r} does not exist on {server}:"
            f" create it (createdb {url.database}) or fix {variable}."
        )
    if isinstance(cause, asyncpg.InvalidPasswordError):
        return f"The database at {server} refused the password for user {user!r}: fix it in {variable}."
    if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError):
        return (
            f"The database at {server} refused user {user!r}: {message}."
            f" Fix the user in {variable} (or the server's pg_hba.conf)."
        )
    if isinstance(cause, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return f"The database at {server} cannot take a connection now: {message}. Try again shortly."
    if isinstance(cause, OSError | asyncpg.PostgresConnectionError | asyncpg.ClientConfigurationError):
        return (
            f"Cannot reach the database at {where}: {_network_cause(cause, timeout)}."
            f" Check {variable} and that the server is running."
        )
    code = getattr(cause, "sqlstate", None)
    return f"The database at {where} refused: {message} (SQLSTATE {code})."


def _shown(url: DatabaseURL, *, database: bool = True) -> str:
    """The URL without its password (and without the database name unless `database`);
    a Unix-socket directory (?host=/path) is kept: without it the URL says nothing."""
    parts = urlsplit(url.redacted)
    hosts = [value for key, value in parse_qsl(urlsplit(url.asyncpg_dsn).query) if key == "host"]
    query = f"host={hosts[0]}" if hosts else ""
    return urlunsplit(parts._replace(path=parts.path if database else "", query=query))


def _find_cause(error: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """`error`, or the first of the exceptions it wraps (SQLAlchemy's .orig, __cause__,
    __context__), that is one of `kinds`."""
    queue: list[BaseException] = [error]
    seen: set[int] = set()
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kinds):
            return current
        wrapped = [getattr(current, "orig", None), current.__cause__, current.__context__]
        queue.extend(e for e in wrapped if isinstance(e, BaseException))
    return None


def _network_cause(error: BaseException, timeout: float | None) -> str:
    text = str(error)
    if isinstance(error, TimeoutError):
        return "no answer in time" if timeout is None else f"no answer within {timeout:g} s"
    if isinstance(error, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused (nothing listens there)"
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror})"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or text})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return text.splitlines()[0] if text else type(error).__name__


def dev_token(
    settings: Settings,
    user: str,
    *,
    email: str | None = None,
    name: str | None = None,
    ttl: int = DEFAULT_TOKEN_TTL,
) -> str:
    """An HS256 token the running service accepts (shared or development secret)."""
    if not user.strip():
        raise ValueError("user must not be empty")
    if ttl <= 0:
        raise ValueError("ttl must be a positive number of seconds")
    settings = with_dev_secret(settings)
    if settings.better_auth_secret is None:
        raise SystemExit(
            "dev-token signs with BETTER_AUTH_SECRET, which is not set; this deployment"
            " verifies Better Auth's JWKS tokens, so get one from GET /api/auth/token."
        )
    now = int(time.time())
    claims: dict[str, object] = {"sub": user, "iat": now, "exp": now + ttl}
    if email or not name:
        claims["email"] = email or f"{user}@example.com"
    claims["name"] = name or user.capitalize()
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.better_auth_secret, algorithm="HS256")


def _user_id(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty (it becomes the token's sub)")
    return value


def _seconds(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds (got {value!r})") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds (got {seconds})")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the HTTP service (the default)")
    for target in (parser, serve):
        target.add_argument("--host", default="127.0.0.1")
        target.add_argument("--port", type=int, default=8000)
        target.add_argument("--workers", type=int, default=1)
    migrate = sub.add_parser("migrate", help="upgrade the database to the latest migration")
    migrate.add_argument("--quiet", action="store_true", help="print nothing but errors")
    token = sub.add_parser("dev-token", help="print a bearer token for local use")
    token.add_argument("--user", required=True, type=_user_id, help="the user id (token sub)")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument(
        "--ttl",
        type=_seconds,
        default=DEFAULT_TOKEN_TTL,
        help=f"lifetime in seconds (default {DEFAULT_TOKEN_TTL})",
    )
    sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    sub.add_parser("assets", help="install GraphiQL's files (npm packages) into DATA_DIR/graphiql")
    return parser
