"""The production profile (``deploy/``): nginx in front of ``tally serve``. The nginx file is
parsed here and held to the settings of ``deploy/production.env``, so the two cannot drift
apart; where nginx is installed, ``nginx -t`` checks it too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values

from ledger.settings import Settings
from tests.support.paths import REPO

DEPLOY = REPO / "deploy"
NGINX_CONF = DEPLOY / "nginx.conf"
PRODUCTION_ENV = DEPLOY / "production.env"


@pytest.fixture
def nginx_installed() -> None:
    """nginx runs the production profile's proxy: scripts/test.sh installs it, and CI must test with it."""
    if shutil.which("nginx") is None:
        message = "nginx is not installed (scripts/test.sh installs nginx-light; apt-get install nginx-light)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class Block:
    """An nginx block: its directives in order (name, arguments) and its child blocks."""

    def __init__(self, name: str = "", arguments: tuple[str, ...] = ()):
        self.name = name
        self.arguments = arguments
        self.directives: list[tuple[str, tuple[str, ...]]] = []
        self.blocks: list[Block] = []

    def values(self, name: str) -> list[tuple[str, ...]]:
        return [arguments for directive, arguments in self.directives if directive == name]

    def value(self, name: str) -> str:
        found = self.values(name)
        assert len(found) == 1, f"{self.name} {' '.join(self.arguments)}: {name} is set {len(found)} times"
        return " ".join(found[0])

    def block(self, name: str, *arguments: str) -> Block:
        found = [b for b in self.blocks if b.name == name and b.arguments == arguments]
        assert len(found) == 1, f"no single block {name} {' '.join(arguments)}"
        return found[0]


def parse_nginx(text: str) -> Block:
    """nginx's grammar, enough for this file: words and quoted strings, ``;`` ends a
    directive, ``{ … }`` a block, ``#`` a comment to the end of the line."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{};]|[^\s{};#"\']+|#[^\n]*', text)
    root = Block()
    stack = [root]
    words: list[str] = []
    for token in tokens:
        if token.startswith("#"):
            continue
        if token == ";":
            stack[-1].directives.append((words[0], tuple(words[1:])))
            words = []
        elif token == "{":
            child = Block(words[0], tuple(words[1:]))
            stack[-1].blocks.append(child)
            stack.append(child)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token.strip("\"'") if token[0] in "\"'" else token)
    assert len(stack) == 1 and not words, "unbalanced braces or a directive without ';'"
    return root


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert match, f"not an nginx time: {value!r}"
    return int(match.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[match.group(2)]


def size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG])?", value)
    assert match, f"not an nginx size: {value!r}"
    return int(match.group(1)) * {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[(match.group(2) or "").lower() or None]


@pytest.fixture(scope="module")
def http() -> Block:
    return parse_nginx(NGINX_CONF.read_text()).block("http")


@pytest.fixture(scope="module")
def production() -> Settings:
    """The settings ``tally serve`` reads with production.env loaded (every variable in it
    must be a setting)."""
    names = {f"TALLY_{name.upper()}" for name in Settings.model_fields}
    assert set(dotenv_values(PRODUCTION_ENV)) <= names, set(dotenv_values(PRODUCTION_ENV)) - names
    return Settings(_env_file=PRODUCTION_ENV)  # type: ignore[call-arg]


def test_the_production_profile_trusts_only_the_local_proxy(production: Settings) -> None:
    from api.runtime import uvicorn_options

    options = uvicorn_options(production)
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == ["127.0.0.1"]
    assert Settings().trusted_proxies == []  # and without the profile, nobody


def test_nginx_cuts_off_slow_headers_and_bodies(http: Block, production: Settings) -> None:
    assert 0 < seconds(http.value("client_header_timeout")) <= 15
    assert seconds(http.value("client_body_timeout")) == production.body_idle_timeout_seconds
    assert seconds(http.value("keepalive_timeout")) == production.keep_alive_timeout_seconds
    assert seconds(http.value("send_timeout")) <= 60


def test_nginx_refuses_bodies_over_the_limits_of_the_api(http: Block, production: Settings) -> None:
    assert size(http.value("client_max_body_size")) == production.max_json_bytes
    server = http.block("server")
    assert size(server.block("location", "=", "/v1/photos").value("client_max_body_size")) == production.max_photo_bytes
    assert not server.block("location", "/").values("client_max_body_size")  # the http-wide JSON limit


def test_nginx_sets_the_forwarded_headers_and_proxies_to_the_api(http: Block, production: Settings) -> None:
    server = http.block("server")
    headers = {arguments[0].lower(): arguments[1] for arguments in server.values("proxy_set_header")}
    # Set to the address nginx saw, not appended to what the client sent ($proxy_add_x_forwarded_for).
    assert headers["x-forwarded-for"] == "$remote_addr"
    assert headers["x-forwarded-proto"] == "$scheme"
    assert http.block("upstream", "tally").value("server") == f"{production.host}:{production.port}"
    assert production.host in production.trusted_proxies
    for location in server.blocks:
        assert location.value("proxy_pass") == "http://tally"


def test_nginx_caps_open_event_streams_as_the_api_does(http: Block, production: Settings) -> None:
    zones = {arguments[1].split("=")[1].split(":")[0]: arguments[0] for arguments in http.values("limit_conn_zone")}
    assert zones == {"streams_per_ip": "$binary_remote_addr", "streams_per_key": "$http_authorization"}
    assert http.value("limit_conn_status") == "429"
    stream = http.block("server").block("location", "=", "/v1/feed/stream")
    caps = {arguments[0]: int(arguments[1]) for arguments in stream.values("limit_conn")}
    assert caps == {"streams_per_key": production.feed_max_streams_per_key, "streams_per_ip": production.feed_max_streams_per_ip}
    assert stream.value("proxy_buffering") == "off"
    assert seconds(stream.value("proxy_read_timeout")) > production.feed_heartbeat_seconds


def test_the_parser_reads_what_nginx_reads() -> None:
    parsed = parse_nginx("a 1; # comment ; {\nb { c \"x y\" 'z'; }\n")
    assert parsed.directives == [("a", ("1",))] and parsed.block("b").directives == [("c", ("x y", "z"))]
    with pytest.raises(AssertionError):
        parse_nginx("a { b 1; ")


@pytest.mark.usefixtures("nginx_installed")
def test_nginx_accepts_the_file(tmp_path: Path) -> None:
    checked = subprocess.run(
        [
            "nginx",
            "-t",
            "-q",
            "-c",
            str(NGINX_CONF),
            "-p",
            str(tmp_path),
            "-g",
            f"pid {tmp_path / 'nginx.pid'}; error_log stderr;",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.usefixtures("nginx_installed")
def test_nginx_in_front_of_tally_serve(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file itself, run: nginx with deploy/nginx.conf (its ports moved, its header
    timeout shortened to 1 s so the test is quick) in front of the app as tally serve runs it."""
    import socket
    import time

    import httpx

    from tests.support.api import make_settings, served_as_tally_serve, serving
    from tests.support.net import free_port

    settings = make_settings(
        tmp_path / "data",
        database_url,
        rate_limit_enabled=True,
        rate_limit_anonymous=5.0,
        rate_limit_burst_seconds=2.0,
        trusted_proxies=["127.0.0.1"],
    )
    app, options = served_as_tally_serve(settings, monkeypatch)
    nginx_port = free_port()
    with serving(app, **options) as tally_url:
        tally_port = tally_url.rsplit(":", 1)[1]
        temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir()
        config = NGINX_CONF.read_text()
        for old, new in (
            ("listen 80;", f"listen 127.0.0.1:{nginx_port};"),
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{tally_port};"),
            ("client_header_timeout 10s;", "client_header_timeout 1s;"),
            (
                "http {",
                "http {\n    access_log off;\n"
                + "".join(
                    f"    {name}_temp_path {path};\n".replace("body_temp", "client_body_temp") for name, path in temp.items()
                ),
            ),
        ):
            assert old in config, old
            config = config.replace(old, new, 1)
        (tmp_path / "nginx.conf").write_text(config)
        nginx = subprocess.Popen(
            [
                "nginx",
                "-c",
                str(tmp_path / "nginx.conf"),
                "-p",
                str(tmp_path),
                "-g",
                f"daemon off; master_process off; pid {tmp_path / 'nginx.pid'}; error_log stderr;",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", nginx_port), timeout=1).close()
                    break
                except OSError:
                    assert nginx.poll() is None and time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
            with httpx.Client(base_url=f"http://127.0.0.1:{nginx_port}", timeout=10) as http:
                # A forged X-Forwarded-For is replaced: one client, one bucket.
                answers = [
                    http.get("/v1/auth/whoami", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(40)
                ]
                assert answers.count(429) >= 20 and answers.count(200) >= 5, answers
                time.sleep(2.5)  # the bucket refills
                assert (
                    http.post(
                        "/v1/auth/challenge", content=b" " * (300 * 1024), headers={"Content-Type": "application/json"}
                    ).status_code
                    == 413
                )
            # Slow headers: nginx closes the connection, where uvicorn alone would wait forever.
            slow = socket.create_connection(("127.0.0.1", nginx_port))
            slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            slow.settimeout(5.0)
            began = time.monotonic()
            try:
                while slow.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - began < 3.0
            slow.close()
        finally:
            nginx.terminate()
            nginx.wait(10)
