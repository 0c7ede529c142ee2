"""The registry summary a backup records: every page of models and versions, all tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarmai.incontainer.registry_ops.summary import summary


class Page(list[Any]):
    def __init__(self, items: list[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token


@dataclass
class Model:
    name: str
    aliases: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Version:
    version: str
    tags: dict[str, str] = field(default_factory=dict)


class FakeClient:
    """Two pages of models, two of versions: a summary that read one page would miss some."""

    def search_registered_models(self, page_token: str | None = None) -> Page:
        if page_token is None:
            return Page([Model("b", {"production": "2"}, {"team": "x"})], "next")
        return Page([Model("a")], None)

    def search_model_versions(self, query: str, page_token: str | None = None) -> Page:
        if query == "name='a'":
            return Page([Version("1")], None)
        if page_token is None:
            return Page([Version("10", {"swarmai.content_sha256": "f"})], "more")
        return Page([Version("2")], None)


def test_every_page_of_models_and_versions_with_every_tag() -> None:
    assert summary(FakeClient()) == {"models": {
        "a": {"versions": {"1": {"tags": {}}}, "aliases": {}, "tags": {}},
        "b": {"versions": {"2": {"tags": {}}, "10": {"tags": {"swarmai.content_sha256": "f"}}},
              "aliases": {"production": "2"}, "tags": {"team": "x"}},
    }}
