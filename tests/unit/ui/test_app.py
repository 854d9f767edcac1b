"""Which API key the dashboard sends: ORCHESTRATOR_API_KEY, else the one scripts/start.sh keeps."""

from pathlib import Path

from pydantic import SecretStr

from shared.config import Settings
from ui.app import dashboard_api_key


def test_the_setting_wins_over_the_kept_key(settings: Settings, tmp_path: Path) -> None:
    kept = tmp_path / "api-key"
    kept.write_text("mats_kept\n")
    configured = settings.model_copy(update={"orchestrator_api_key": SecretStr("mats_configured")})

    assert dashboard_api_key(configured, kept) == "mats_configured"


def test_without_the_setting_the_kept_key_is_used(settings: Settings, tmp_path: Path) -> None:
    kept = tmp_path / "api-key"
    kept.write_text("mats_kept\n")
    unset = settings.model_copy(update={"orchestrator_api_key": None})

    assert dashboard_api_key(unset, kept) == "mats_kept"
    assert dashboard_api_key(unset, tmp_path / "absent") is None
