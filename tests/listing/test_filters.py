"""Status and search filters, and the totals that follow them, on both interfaces."""

from __future__ import annotations

import pytest

from db.url import DatabaseURL
from tests.listing.data import (
    FilterUser,
)
from tests.listing.interfaces import ListingClient
from tests.support import db_fetch


def _matches(task: tuple[str, str | None, bool], status: str, search: str | None) -> bool:
    title, description, completed = task
    if (status == "PENDING" and completed) or (status == "COMPLETED" and not completed):
        return False
    if search is None:
        return True
    needle = search.lower()
    return needle in title.lower() or needle in (description or "").lower()


@pytest.mark.parametrize("status", ["ALL", "PENDING", "COMPLETED", None])
@pytest.mark.parametrize(
    "search", [None, "milk", "MILK", "mIlK", "%", "50%", "_", "pay_bill", "\\", "c:\\t", "nothing-here"]
)
def test_status_and_search_filters(
    client: ListingClient, filter_user: FilterUser, status: str | None, search: str | None
) -> None:
    token, tasks = filter_user
    expected = {i for i, t in tasks.items() if _matches(t, status or "ALL", search)}
    page = client.as_user(token).page(status=status, search=search, limit=100)
    assert set(page.ids) == expected
    assert len(page.ids) == len(expected)
    assert page.total == len(expected)


def test_search_literals_are_not_wildcards(client: ListingClient, filter_user: FilterUser) -> None:
    """Spelled out: `%` and `_` match only themselves."""
    token, tasks = filter_user
    titles = {i: t[0] for i, t in tasks.items()}
    listing = client.as_user(token)
    assert {titles[i] for i in listing.list(search="pay_bill")} == {"pay_bill"}
    assert {titles[i] for i in listing.list(search="50%")} == {"call mom"}
    assert {titles[i] for i in listing.list(search="%")} == {"call mom", "100% done"}


def test_search_folds_case_beyond_ascii_in_title_and_description(
    client: ListingClient, database: DatabaseURL
) -> None:
    [folding] = db_fetch(database, "SELECT lower('ÄÖÜÉ') = 'äöüé' AS unicode")
    if not folding["unicode"]:
        pytest.skip("the test database's locale folds only ASCII case")
    title = client.create(title="Ärger im Büro")
    description = client.create(title="plain", description="Über den Fluss")
    client.create(title="Other", description="nothing")
    for search, expected in [
        ("ärger", {title}),
        ("ÄRGER IM BÜRO", {title}),
        ("büro", {title}),
        ("über", {description}),
        ("ÜBER DEN", {description}),
        ("ü", {title, description}),
    ]:
        page = client.page(search=search)
        assert set(page.ids) == expected, search
        assert page.total == len(expected), search
