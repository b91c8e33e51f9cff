"""hub.testing's standard suite, run against the example connector as a third party would."""

from __future__ import annotations

from hub.testing import ConnectorTests
from tests.plugins.example import TOKEN, ExampleAPI, ExampleConnector


class TestExampleConnector(ConnectorTests):
    connector_class = ExampleConnector
    settings = {"token": TOKEN, "page_size": 10}
    bad_settings = {"token": "not-the-token", "page_size": 10}

    def make_world(self):
        return ExampleAPI(count=45)

    def transport(self, world):
        return world.transport()

    def change(self, world):
        world.touch(5)

    def inject(self, world, kind, *, count=1, after=0, path=None):
        world.fail(int(kind), count=count, after=after)
