"""The App on click's ``ctx.obj``: settings, ledger and clients, made when first needed.

Commands that need no config (``init``, ``sandbox``, ``demo``) never load it, and a command
that needs the ledger opens it once.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from enrich.config import (
    DEFAULT_CONFIG_PATH,
    ENV_CONFIG,
    ENV_DB,
    Secrets,
    Settings,
    load_settings,
)
from enrich.errors import ConfigError
from enrich.ledger import Ledger

if TYPE_CHECKING:
    from enrich.woo.client import WooClient


class App:
    def __init__(self, config_path: Path | None = None, db_path: Path | None = None,
                 *, settings: Settings | None = None, secrets: Secrets | None = None) -> None:
        self.config_path = config_path
        self.db_override = db_path or (Path(os.environ[ENV_DB]) if os.environ.get(ENV_DB)
                                       else None)
        self._settings = settings
        self.secrets = secrets or Secrets()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def db_path(self) -> Path:
        if self.db_override is not None:
            return self.db_override
        return self.settings.resolve(self.settings.ledger.path)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.db_path, lease_s=self.settings.ledger.lease_s)

    def woo_client(self) -> WooClient:
        """A new client for the configured store (the caller closes it).

        Without a config file there is no store to talk to: the built-in store.url is the
        sandbox's. Cron runs commands in the home folder, where ./config.toml is not."""
        from enrich.woo.client import WooClient

        if self.settings.source is None:
            raise ConfigError(
                f"no config file: {DEFAULT_CONFIG_PATH} is not in {Path.cwd()} and "
                f"${ENV_CONFIG} is not set, so enrich does not know the store's address.",
                "Run from the folder that holds config.toml, or pass --config PATH (cron "
                "starts in your home folder); `enrich init` writes a new one.")
        return WooClient.from_settings(self.settings, self.secrets)

    def close(self) -> None:
        if "ledger" in self.__dict__:
            self.ledger.close()
