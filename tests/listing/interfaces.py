"""The task list through either interface, in the contract's names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.graphql.operations import create, ids_of, list_page
from tests.support import LiveServer


@dataclass
class Page:
    """One page of a listing, whichever interface answered."""

    ids: list[int]
    total: int  # GraphQL totalCount, REST X-Total-Count
    has_next: bool  # GraphQL pageInfo.hasNextPage, REST a Link rel="next"


class ListingClient:
    """The task list through one interface, as one user."""

    def __init__(self, interface: str, server: LiveServer, token: str) -> None:
        self.interface = interface
        self._server = server
        self._http = server.client(token)
        self._others: list[ListingClient] = []

    def as_user(self, token: str) -> ListingClient:
        other = ListingClient(self.interface, self._server, token)
        self._others.append(other)
        return other

    def close(self) -> None:
        self._http.close()
        for other in self._others:
            other.close()

    def create(self, **fields: Any) -> int:
        """A task with these fields (title, description, ...); its id."""
        if self.interface == "rest":
            r = self._http.post("/api/tasks", json=fields)
            assert r.status_code == 201, r.text
            return int(r.json()["id"])
        return int(create(self._http, **fields)["id"])

    def page(
        self,
        *,
        status: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> Page:
        """The first page; a parameter left None is not sent at all."""
        if self.interface == "rest":
            given = {"status": status, "sort": sort, "order": order, "search": search, "limit": limit}
            params = {
                k: (v.lower() if isinstance(v, str) and k != "search" else v)
                for k, v in given.items()
                if v is not None
            }
            r = self._http.get("/api/tasks", params=params)
            assert r.status_code == 200, r.text
            return Page(
                ids=[t["id"] for t in r.json()],
                total=int(r.headers["X-Total-Count"]),
                has_next="Link" in r.headers,
            )
        page = list_page(self._http, status=status, sort=sort, order=order, search=search, first=limit)
        return Page(ids=ids_of(page), total=page["totalCount"], has_next=page["pageInfo"]["hasNextPage"])

    def list(self, **params: Any) -> list[int]:
        """The ids on the first page."""
        return self.page(**params).ids
