"""The project's own fuzzing of the HTTP edge (issue 11, "Done when": 0 5xx with Unicode
digits and chunked bodies among the inputs). Schemathesis (``tests/api/test_api_schema.py``)
generates from the OpenAPI document; this generates what the document cannot suggest:
digits that ``str.isdigit()`` and ``int()`` take but the strict rule refuses (Thai,
superscripts, Arabic-Indic, Devanagari, fullwidth), put in every path, query and header
position of the main routes and in every key and value of their JSON bodies, sent whole
or chunked, over a real uvicorn server. Any answer is fine but a 5xx (or no answer at all:
a dropped connection fails the test too).

Bounded and derandomized: the same examples every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.main import create_app
from api.state import AppState
from ledger.core.record import node_to_json, sign_entry
from ledger.election.validation import validate_tally
from tests.support.api import KEYED_ROLES, VOLUNTEER, make_settings, serving, sign_in
from tests.support.factories import VOLUNTEER_KEY, signed_tally, stand_in_photos, tally_json

DIGITS = {
    "thai": "๐๑๒๓๔๕๖๗๘๙",
    "superscript": "⁰¹²³⁴⁵⁶⁷⁸⁹",
    "arabic_indic": "٠١٢٣٤٥٦٧٨٩",
    "extended_arabic_indic": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "fullwidth": "０１２３４５６７８９",
}
UNICODE_DIGITS = "".join(DIGITS.values())
EXAMPLES = 120
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# A number spelled with at least one non-ASCII digit, sometimes with ASCII digits, a sign or spaces.
numbers: st.SearchStrategy[str] = st.builds(
    lambda script, ascii_mix, body, affix: (
        affix[0]
        + "".join(DIGITS[script][int(c)] if c.isascii() and not ascii_mix[i % len(ascii_mix)] else c for i, c in enumerate(body))
        + affix[1]
    ),
    st.sampled_from(sorted(DIGITS)),
    st.lists(st.booleans(), min_size=1, max_size=4).map(lambda flags: [False, *flags]),
    st.text(alphabet="0123456789", min_size=1, max_size=12),
    st.sampled_from([("", ""), ("", ""), ("", ""), ("-", ""), ("+", ""), (" ", ""), ("", " "), ("0", "")]),
).filter(lambda text: not text.isascii())


@st.composite
def spliced(draw: st.DrawFn, valid: str) -> str:
    """``valid`` with a run of its characters (digits first) replaced by Unicode digits."""
    number = draw(numbers)
    digit_at = [i for i, c in enumerate(valid) if c.isdigit()]
    over_digits: bool = draw(st.booleans())
    if digit_at and over_digits:
        start = draw(st.sampled_from(digit_at))
        end = start
        while end < len(valid) and valid[end].isdigit():
            end += 1
        return valid[:start] + number + valid[end:]
    start = draw(st.integers(0, len(valid)))
    end = draw(st.integers(start, min(len(valid), start + 4)))
    return valid[:start] + number + valid[end:]


def fuzzed(valid: str) -> st.SearchStrategy[str]:
    return st.one_of(numbers, spliced(valid))


def _header_value(text: str) -> bytes:
    """Header values travel as latin-1 bytes: superscripts ¹²³ arrive as themselves, other
    scripts as their UTF-8 bytes (which the server reads as latin-1)."""
    text = text.strip(" \t") or "¹"  # HTTP drops the spaces around a value anyway
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


class Target:
    """The app under a real uvicorn server (header bytes reach it as sent; the test client
    would re-encode them), and what the cases need: keys for every role, valid values."""

    def __init__(self, client: httpx.Client, state: AppState, tokens: dict[str, str], values: dict[str, str]):
        self.client = client
        self.state = state
        self.tokens = tokens
        self.values = values

    def request(self, method: str, path: str, *, role: str | None, headers: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        sent = dict(headers or {})
        if role is not None and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.tokens[role]}"
        answer = self.client.request(method, path, headers=sent, **kwargs)
        assert answer.status_code < 500, f"{method} {path} {kwargs} {sent}: {answer.status_code} {answer.text[:500]}"
        return answer


@pytest.fixture
def target(tmp_path: Path, database_url: str) -> Iterator[Target]:
    state = AppState.open(
        make_settings(
            tmp_path / "data",
            database_url,
            api_refresh_aggregates=True,
            aggregates_refresh_seconds=0.2,
            access_cache_seconds=30.0,
            feed_heartbeat_seconds=0.05,
            feed_poll_seconds=0.02,
        )
    )
    stand_in_photos(state.ledger_app.ledger)
    election = state.ledger_app.election
    record = state.ledger.submit_tally(signed_tally(election, "BKK_1-0001", submission_id="fuzz-sealed")).receipt["record_cid"]
    state.ledger_app.batcher.seal_due(force=True)
    tokens: dict[str, str] = {}
    principal_id = "1"
    for role in KEYED_ROLES:
        scope = {"constituencies": ["BKK_1"]} if role == "constituency_head" else None
        principal, tokens[role] = state.access.create_principal(role=role, name=f"fuzz {role}", scope=scope)
        principal_id = str(principal.id)
    state.access.register_volunteer(address=VOLUNTEER)
    with serving(create_app(app_state=state)) as url, httpx.Client(base_url=url, timeout=30) as client:
        tokens["volunteer"] = sign_in(client, VOLUNTEER_KEY)  # type: ignore[arg-type]
        for token in tokens.values():
            client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})  # cached: the fast paths answer
        values = {
            "cid": record,
            "unit_id": "BKK_1-0001",
            "batch_id": "1",
            "constituency_id": "BKK_1",
            "province_id": "BKK",
            "view": "unofficial",
            "format": "json",
            "after": "0",
            "limit": "10",
            "offset": "0",
            "max_events": "1",
            "timeout": "0.1",
            "principal_id": principal_id,
            "address": VOLUNTEER,
            "include_revoked": "false",
            "constituency": "BKK_1",
        }
        yield Target(client, state, tokens, values)
    state.close()


# Every GET of the main routes: (path template, role, query parameters it takes).
READS = [
    ("/v1/records/{cid}", None, ()),
    ("/v1/units/{unit_id}/records", None, ()),
    ("/v1/proofs/{cid}", None, ()),
    ("/v1/units/{unit_id}/proofs", None, ()),
    ("/v1/batches", None, ("offset", "limit")),
    ("/v1/batches/{batch_id}", None, ()),
    ("/v1/batches/{batch_id}/oz-dump", None, ()),
    ("/v1/content/{cid}", None, ("format",)),
    ("/v1/photos/{cid}", None, ()),
    ("/v1/election/constituencies/{constituency_id}", None, ()),
    ("/v1/aggregates/{view}/national", None, ()),
    ("/v1/aggregates/{view}/provinces", None, ("format",)),
    ("/v1/aggregates/{view}/provinces/{province_id}", None, ()),
    ("/v1/aggregates/{view}/constituencies", "newsroom", ("format",)),
    ("/v1/aggregates/{view}/constituencies/{constituency_id}", None, ()),
    ("/v1/aggregates/{view}/party-list", None, ("format",)),
    ("/v1/aggregates/{view}/house", None, ()),
    ("/v1/feed", "newsroom", ("after", "limit", "view")),
    ("/v1/feed/stream", "newsroom", ("after", "max_events", "timeout", "view")),
    ("/v1/admin/principals", "admin", ("include_revoked",)),
    ("/v1/admin/volunteers", "admin", ("offset", "limit")),
    ("/v1/members/{address}", "admin", ()),
    ("/v1/coverage", "coordinator", ("constituency",)),
    ("/v1/coverage/{constituency_id}/uncovered", "coordinator", ("limit",)),
    ("/v1/review/queue", "constituency_head", ("limit",)),
    ("/v1/units/{unit_id}/review", "constituency_head", ()),
    ("/v1/auth/whoami", "volunteer", ()),
    ("/v1/health", None, ()),
]


def _placeholders(template: str) -> list[str]:
    return [part[1:-1] for part in template.split("/") if part.startswith("{")]


# Every position of every read above: a path segment, a query parameter, or a header.
HEADERS = ("Last-Event-ID", "If-None-Match", "Authorization")
POSITIONS = [
    (template, role, query_names, where, name)
    for template, role, query_names in READS
    for where, names in (("path", _placeholders(template)), ("query", query_names), ("header", HEADERS))
    for name in names
]

# In a header only latin-1 travels as itself; of the Unicode digits that is ¹²³.
header_numbers = st.text(alphabet="¹²³0123456789", min_size=1, max_size=12).filter(lambda text: not text.isascii())
TOKENS = [
    "Bearer tvs1.{address}.{number}.c-NgFQmVCAapqXFx0KWfnJVhYSBW54OGoTviGSe6Y3A",
    "Bearer tvs1.{spliced_address}.1796251699.c-NgFQmVCAapqXFx0KWfnJVhYSBW54OGoTviGSe6Y3A",
    "Bearer tly_{number}",
    "Bearer {number}",
    "{number}",
    "Bearer tvs1.{number}",
]


def _draw_header(data: st.DataObject, name: str) -> bytes:
    number = data.draw(st.one_of(header_numbers, header_numbers, numbers))
    if name == "Authorization":
        template = data.draw(st.sampled_from(TOKENS))
        address = data.draw(st.one_of(spliced(VOLUNTEER), st.just(VOLUNTEER[:20] + number + VOLUNTEER[20:])))
        return _header_value(template.format(address=VOLUNTEER, number=number, spliced_address=address))
    valid = "1" if name == "Last-Event-ID" else '"0123456789abcdef"'
    return _header_value(data.draw(st.one_of(st.just(number), spliced(valid))))


@given(data=st.data())
@settings(max_examples=12, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_unicode_digits_in_every_path_query_and_header_position_get_no_5xx(target: Target, data: st.DataObject) -> None:
    for template, role, query_names, where, name in POSITIONS:
        path_values = {placeholder: target.values[placeholder] for placeholder in _placeholders(template)}
        query = {parameter: target.values[parameter] for parameter in query_names}
        if template == "/v1/feed/stream":
            query.update(max_events="1", timeout="0.1")  # the stream ends by itself
        headers: dict[str, Any] = {}
        if where == "path":
            path_values[name] = data.draw(fuzzed(path_values[name]))
        elif where == "query":
            query[name] = data.draw(fuzzed(query[name]))
        else:
            headers[name] = _draw_header(data, name)
        target.request("GET", template.format(**path_values), role=role, params=query, headers=headers)


# -- bodies ---------------------------------------------------------------------------------


def _bodies(values: dict[str, str]) -> dict[str, tuple[str | None, Any]]:
    """A valid (or nearly valid) body for every POST of the main routes, with its role."""
    from ledger.election import load_election
    from tests.support.factories import tally_json as unsigned

    election = load_election("th2566")
    signature = "0x" + "11" * 65
    return {
        "/v1/auth/challenge": (None, {"address": VOLUNTEER}),
        "/v1/auth/session": (None, {"address": VOLUNTEER, "nonce": "0123456789abcdef0123456789abcdef", "signature": signature}),
        "/v1/tallies": ("volunteer", signed_tally(election, "BKK_1-0002", submission_id="fuzz-body-0001")),
        "/v1/decisions": (
            "constituency_head",
            {
                "decision_id": "fuzz-decision-0001",
                "decided_at": "2023-05-14T12:00:00Z",
                "role": "constituency_head",
                "action": "accept",
                "subject": "BKK_1-0001",
                "record": values["cid"],
                "decider": VOLUNTEER,
                "signature": signature,
            },
        ),
        "/v1/admin/principals": (
            "admin",
            {
                "role": "constituency_head",
                "name": "fuzz head 2",
                "scope": {"constituencies": ["BKK_1", "BKK_2"], "provinces": ["BKK"]},
            },
        ),
        "/v1/admin/volunteers": ("admin", {"address": "0x" + "12" * 20, "name": "volunteer 7"}),
        "/v1/organisations": ("admin", {"id": "org-7", "name": "Organisation 7", "kind": "university"}),
        "/v1/members": (
            "admin",
            {"address": "0x" + "34" * 20, "level": 1, "name": "member 9", "contact": "+66 81 234 5678", "organisation": "org-7"},
        ),
        f"/v1/members/{VOLUNTEER}/assignments": ("admin", {"areas": ["BKK_1-0001", "BKK_1-0002"]}),
        "/v1/custodial/tallies": ("coordinator", {"volunteer": VOLUNTEER, "tally": unsigned(election, "BKK_1-0003")}),
    }


def _positions(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every key ("key", path to it) and every leaf value ("value", path) of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield "key", (*path, key)
            yield from _positions(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _positions(item, (*path, index))
    else:
        yield "value", path


def _replace(value: Any, path: tuple[Any, ...], kind: str, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if kind == "key" and not rest:
            return {(new if key == head else key): item for key, item in value.items()}
        return {key: (_replace(item, rest, kind, new) if key == head else item) for key, item in value.items()}
    return [(_replace(item, rest, kind, new) if index == head else item) for index, item in enumerate(value)]


@st.composite
def mutated(draw: st.DrawFn, body: Any) -> Any:
    kind, path = draw(st.sampled_from(list(_positions(body))))
    current: Any = body
    for step in path[:-1] if kind == "key" else path:
        current = current[step]
    original = str(path[-1]) if kind == "key" else current
    if kind == "key":
        return _replace(body, path, "key", draw(fuzzed(original)))
    if isinstance(original, bool) or original is None:
        return _replace(body, path, "value", draw(numbers))
    if isinstance(original, int):
        # The number itself in another script: as a string, or left as the JSON number's text.
        return _replace(body, path, "value", draw(st.one_of(fuzzed(str(original)), st.just(str(original)))))
    return _replace(body, path, "value", draw(fuzzed(str(original))))


def _chunks(payload: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in sorted({min(len(payload), c) for c in cuts}):
        yield payload[start:cut]
        start = cut
    yield payload[start:]


@given(data=st.data())
@settings(max_examples=40, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_unicode_digits_in_every_json_key_and_value_whole_or_chunked_get_no_5xx(target: Target, data: st.DataObject) -> None:
    for path, (role, body) in _bodies(target.values).items():
        payload = json.dumps(data.draw(mutated(body)), ensure_ascii=data.draw(st.booleans())).encode()
        if data.draw(st.booleans()):  # chunked: no Content-Length
            cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=6))
            target.request("POST", path, role=role, content=_chunks(payload, cuts), headers={"Content-Type": "application/json"})
        else:
            target.request("POST", path, role=role, content=payload, headers={"Content-Type": "application/json"})


@given(data=st.data())
@FUZZ
def test_signed_tallies_with_unicode_digit_keys_get_no_5xx_and_are_refused(target: Target, data: st.DataObject) -> None:
    """A tally signed by a client that skips validation: its party or candidate keys, or its
    numbers, in another script. The signature is good, so only the strict rule can refuse it."""
    election = target.state.ledger_app.election
    unit = data.draw(st.sampled_from(["BKK_1-0002", "BKK_1-0003", "BKK_1-0004"]))
    node = validate_tally(
        {**tally_json(election, unit, submission_id=f"fuzz-{unit}"), "submitter": VOLUNTEER},
        election=election,
        photo_exists=lambda _cid: True,
        signed=False,
    )
    ballot = data.draw(st.sampled_from(["party_list", "constituency"]))
    votes = dict(node[ballot]["votes"])  # type: ignore[index]
    key = data.draw(st.sampled_from(sorted(votes)))
    votes[data.draw(fuzzed(key))] = votes.pop(key)
    node[ballot] = {**node[ballot], "votes": votes}  # type: ignore[dict-item]
    signed = node_to_json(sign_entry(node, VOLUNTEER_KEY))
    answer = target.request("POST", "/v1/tallies", role="volunteer", json=signed)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["path"][:2] == [ballot, "votes"]
