"""Config errors name the key, the file and the line; secrets in the file are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrich.config import Secrets, Settings, load_settings
from enrich.errors import ConfigError
from enrich.scaffold import shipped_config_example


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_matches_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, shipped_config_example()))
    assert settings.model_dump() == Settings().model_dump()


def test_every_key_of_the_example_is_documented() -> None:
    lines = shipped_config_example().splitlines()
    def is_key(line: str) -> bool:
        return "=" in line and not line.lstrip().startswith(("#", "["))

    for i, line in enumerate(lines):
        if is_key(line):
            above = i - 1
            while above >= 0 and is_key(lines[above]):
                above -= 1  # a comment may document a group of related keys
            assert above >= 0 and lines[above].lstrip().startswith("#"), f"undocumented: {line}"


def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "[store]\nurl = 'https://shop.example'\n\n[llm]\nmodel = 'x'\n"
                            "max_rmp = 60\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}:6" in err.value.message
    assert "[llm] max_rmp: unknown key" in err.value.message


def test_wrong_value_names_key_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path, "[llm]\nprovider = 'openia'\n")
    with pytest.raises(ConfigError, match=r"config.toml:2: \[llm\] provider: .*'openia'"):
        load_settings(path)


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.toml:1: .*strore: unknown key"):
        load_settings(_write(tmp_path, "[strore]\nurl = 'x'\n"))


@pytest.mark.parametrize(("key", "var"), [("consumer_secret", "WOO_CONSUMER_SECRET"),
                                          ("api_key", "OPENAI_API_KEY")])
def test_secret_in_file_is_refused_with_the_variable(tmp_path: Path, key: str, var: str) -> None:
    path = _write(tmp_path, f"[store]\nurl = 'https://s.example'\n{key} = 'cs_live_123'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}:3" in err.value.message and key in err.value.message
    assert var in err.value.hint
    assert "cs_live_123" not in err.value.message + err.value.hint


def test_missing_named_file_is_an_error_but_default_is_optional(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    assert load_settings() == Settings()  # no ./config.toml in the test's cwd


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "shop"
    sub.mkdir()
    settings = load_settings(_write(sub, "[ledger]\npath = 'data/enrich.db'\n"))
    assert settings.resolve(settings.ledger.path) == sub / "data" / "enrich.db"


def test_secrets_come_from_the_environment_only() -> None:
    secrets = Secrets({"OPENAI_API_KEY": " sk-test "})
    assert secrets.get("OPENAI_API_KEY") == "sk-test"
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set"):
        secrets.require("ANTHROPIC_API_KEY", "for the anthropic provider")
