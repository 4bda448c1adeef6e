"""Settings from the environment and the optional TOML file (bot.config), read with an explicit env and cwd."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import helpdesk_limits, load_settings
from bot.errors import ConfigError
from bot.policy.triggers import DEFAULT_HIGH_RISK_TOPICS

FULL_SERVE_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1",
    "SLACK_SIGNING_SECRET": "sig",
    "ESCALATION_CHANNEL": "C1",
    "ZENDESK_SUBDOMAIN": "acme",
    "ZENDESK_EMAIL": "bot@example.com",
    "ZENDESK_API_TOKEN": "tok",
    "ZENDESK_WEBHOOK_SECRET": "whsec",
}


def write_toml(tmp_path: Path, text: str, *, name: str = "custom.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def settings_from_toml(tmp_path: Path, text: str):
    return load_settings(env={"SEAM_CONFIG": str(write_toml(tmp_path, text))}, cwd=tmp_path)


def assert_one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


# -- environment -------------------------------------------------------------------------------------------


def test_an_empty_environment_gives_the_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.port == 3000
    assert settings.host == "0.0.0.0"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_path == "./seam.db"
    assert settings.policy.thresholds.auto == pytest.approx(0.9)
    assert settings.policy.thresholds.draft == pytest.approx(0.5)
    assert settings.helpdesk == "zendesk"
    assert settings.manager_user_ids == ()
    assert settings.knowledge_path is None
    assert settings.config_path is None
    assert settings.policy.triggers.high_risk.topics == DEFAULT_HIGH_RISK_TOPICS


def test_environment_values_override_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(env={"PORT": "8080", "HOST": "127.0.0.1", "SLACK_API_URL": "http://localhost:9/api/",
                                  "DATABASE_PATH": "/data/x.db"}, cwd=tmp_path)
    assert (settings.port, settings.host) == (8080, "127.0.0.1")
    assert settings.slack_api_url == "http://localhost:9/api/"
    assert settings.database_path == "/data/x.db"


def test_blank_variables_count_as_unset(tmp_path: Path) -> None:
    settings = load_settings(env={"PORT": "  ", "HOST": "", "SLACK_BOT_TOKEN": "   "}, cwd=tmp_path)
    assert settings.port == 3000
    assert settings.host == "0.0.0.0"
    assert settings.slack_bot_token is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("U1,U2", ("U1", "U2")),
    (" U1 , U2 ,, ,U3 ", ("U1", "U2", "U3")),
    (",,,", ()),
    ("U9", ("U9",)),
])
def test_manager_user_ids_are_split_on_commas_ignoring_spaces_and_empties(tmp_path: Path, raw: str,
                                                                          expected: tuple) -> None:
    assert load_settings(env={"MANAGER_USER_IDS": raw}, cwd=tmp_path).manager_user_ids == expected


@pytest.mark.parametrize("raw", ["abc", "80.5", "0", "65536", "-1"])
def test_an_unusable_port_is_a_one_line_config_error_naming_port(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env={"PORT": raw}, cwd=tmp_path)
    assert "PORT" in assert_one_line(error)


def test_an_unsupported_helpdesk_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(env={"HELPDESK": "kayako"}, cwd=tmp_path)
    assert "kayako" in assert_one_line(error) and "freshdesk" in assert_one_line(error)


def test_the_helpdesk_name_is_case_insensitive(tmp_path: Path) -> None:
    assert load_settings(env={"HELPDESK": "Zendesk"}, cwd=tmp_path).helpdesk == "zendesk"


# -- the TOML file -----------------------------------------------------------------------------------------


def test_thresholds_come_from_the_toml_file(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, "[thresholds]\nauto = 0.9\ndraft = 0.3\n")
    assert settings.policy.thresholds.auto == pytest.approx(0.9)
    assert settings.policy.thresholds.draft == pytest.approx(0.3)


def test_a_single_threshold_in_the_file_keeps_the_other_default(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, "[thresholds]\nauto = 0.95\n")
    assert settings.policy.thresholds.auto == pytest.approx(0.95)
    assert settings.policy.thresholds.draft == pytest.approx(0.5)


@pytest.mark.parametrize("body", [
    "[thresholds]\nauto = 0.4\ndraft = 0.6\n",
    "[thresholds]\nauto = 1.5\n",
    "[thresholds]\ndraft = -0.1\n",
])
def test_thresholds_out_of_order_or_range_are_refused_naming_them(tmp_path: Path, body: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path, body)
    message = assert_one_line(error)
    assert "draft" in message and "auto" in message


@pytest.mark.parametrize("body", ['[thresholds]\nauto = "high"\n', "[thresholds]\ndraft = true\n"])
def test_a_threshold_that_is_not_a_number_is_refused(tmp_path: Path, body: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path, body)
    assert "must be a number" in assert_one_line(error)


def test_file_topics_extend_a_default_topic_and_add_a_new_one(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, """
[triggers.high_risk.topics]
refund = ["store credit"]
"shipping damage" = ["broken on arrival", "damaged*"]
""")
    topics = settings.policy.triggers.high_risk.topics
    assert "store credit" in topics["refund"]
    assert set(DEFAULT_HIGH_RISK_TOPICS["refund"]) <= set(topics["refund"])
    assert topics["shipping damage"] == ("broken on arrival", "damaged*")
    # The other defaults are still there.
    for name in DEFAULT_HIGH_RISK_TOPICS:
        assert name in topics


def test_defaults_false_drops_every_default_topic(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, """
[triggers.high_risk]
defaults = false
[triggers.high_risk.topics]
custom = ["warranty claim*"]
""")
    assert dict(settings.policy.triggers.high_risk.topics) == {"custom": ("warranty claim*",)}


def test_a_topic_that_is_not_a_list_of_strings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path, "[triggers.high_risk.topics]\nrefund = 3\n")
    assert "triggers.high_risk.topics.refund" in assert_one_line(error)


def test_asks_for_human_phrases_come_from_the_file_without_blanks(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, '[triggers.asks_for_human]\nphrases = ["necesito ayuda humana", "  "]\n')
    assert settings.policy.triggers.asks_for_human.phrases == ("necesito ayuda humana",)


@pytest.mark.parametrize(("status", "expected"), [("pending", "pending"), ("solved", "solved"), ("", None)])
def test_resolve_status_accepts_zendesk_statuses_and_empty_means_none(tmp_path: Path, status: str,
                                                                      expected: str | None) -> None:
    assert settings_from_toml(tmp_path, f'[resolve]\nstatus = "{status}"\n').resolve_status == expected


def test_resolve_status_defaults_to_solved(tmp_path: Path) -> None:
    assert load_settings(env={}, cwd=tmp_path).resolve_status == "solved"


@pytest.mark.parametrize("status", ["closed", "done", "SOLVED"])
def test_an_unknown_resolve_status_is_refused(tmp_path: Path, status: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path, f'[resolve]\nstatus = "{status}"\n')
    assert "resolve.status" in assert_one_line(error)


def test_an_invalid_toml_file_is_a_one_line_config_error_naming_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[thresholds\nauto = = 1\n")
    with pytest.raises(ConfigError) as error:
        load_settings(env={"SEAM_CONFIG": str(path)}, cwd=tmp_path)
    message = assert_one_line(error)
    assert str(path) in message and "TOML" in message


def test_a_missing_seam_config_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as error:
        load_settings(env={"SEAM_CONFIG": str(missing)}, cwd=tmp_path)
    assert str(missing) in assert_one_line(error)


def test_seam_toml_and_knowledge_in_the_working_directory_are_picked_up(tmp_path: Path) -> None:
    write_toml(tmp_path, "[thresholds]\nauto = 0.7\ndraft = 0.2\n", name="seam.toml")
    (tmp_path / "knowledge").mkdir()
    assert load_settings(env={}, cwd=tmp_path).history_path is None
    (tmp_path / "history.jsonl").write_text("")
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings.policy.thresholds.auto == pytest.approx(0.7)
    assert settings.config_path == str(tmp_path / "seam.toml")
    assert settings.knowledge_path == str(tmp_path / "knowledge")
    assert settings.history_path == str(tmp_path / "history.jsonl")


def test_explicit_paths_win_over_files_in_the_working_directory(tmp_path: Path) -> None:
    write_toml(tmp_path, "[thresholds]\nauto = 0.7\n", name="seam.toml")
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "history.jsonl").write_text("")
    other = write_toml(tmp_path, "[thresholds]\nauto = 0.6\n", name="other.toml")
    settings = load_settings(env={"SEAM_CONFIG": str(other), "KNOWLEDGE_PATH": "/srv/kb",
                                  "HISTORY_PATH": "/srv/past.jsonl"}, cwd=tmp_path)
    assert settings.policy.thresholds.auto == pytest.approx(0.6)
    assert settings.knowledge_path == "/srv/kb"
    assert settings.history_path == "/srv/past.jsonl"


def test_a_knowledge_file_in_the_working_directory_is_not_taken_for_a_folder(tmp_path: Path) -> None:
    (tmp_path / "knowledge").write_text("not a folder")
    assert load_settings(env={}, cwd=tmp_path).knowledge_path is None


# -- [helpdesk] alone, for the exports ----------------------------------------------------------------------


def test_helpdesk_limits_come_from_the_same_file_as_serves(tmp_path: Path) -> None:
    assert helpdesk_limits(env={}, cwd=tmp_path).requests_per_minute is None
    write_toml(tmp_path, "[helpdesk]\nrequests_per_minute = 700\n", name="seam.toml")
    assert helpdesk_limits(env={}, cwd=tmp_path).requests_per_minute == 700.0
    other = write_toml(tmp_path, "[helpdesk]\nrequests_per_minute = 0\n", name="other.toml")
    assert helpdesk_limits(env={"SEAM_CONFIG": str(other)}, cwd=tmp_path).requests_per_minute == 0.0
    assert load_settings(env={"SEAM_CONFIG": str(other)}, cwd=tmp_path).helpdesk_limits.requests_per_minute == 0.0


def test_helpdesk_limits_need_nothing_serve_needs_and_refuse_what_it_refuses(tmp_path: Path) -> None:
    # A Freshdesk status with HELPDESK unset (Zendesk): serve's settings refuse it, the [helpdesk] table alone not.
    path = write_toml(tmp_path, '[resolve]\nstatus = "resolved"\n\n[helpdesk]\nrequests_per_minute = 300\n')
    with pytest.raises(ConfigError):
        load_settings(env={"SEAM_CONFIG": str(path)}, cwd=tmp_path)
    assert helpdesk_limits(env={"SEAM_CONFIG": str(path), "PORT": "none"}, cwd=tmp_path).requests_per_minute == 300
    path.write_text("[helpdesk]\nrequests_per_minute = -1\n")
    with pytest.raises(ConfigError) as error:
        helpdesk_limits(env={"SEAM_CONFIG": str(path)}, cwd=tmp_path)
    assert "helpdesk.requests_per_minute" in assert_one_line(error)


# -- what serve needs --------------------------------------------------------------------------------------


def test_a_complete_environment_is_enough_for_serve(tmp_path: Path) -> None:
    load_settings(env=FULL_SERVE_ENV, cwd=tmp_path).require_for_serve()


@pytest.mark.parametrize("variable", list(FULL_SERVE_ENV))
def test_serve_names_the_missing_variable(tmp_path: Path, variable: str) -> None:
    env = {k: v for k, v in FULL_SERVE_ENV.items() if k != variable}
    with pytest.raises(ConfigError) as error:
        load_settings(env=env, cwd=tmp_path).require_for_serve()
    assert variable in assert_one_line(error)


def test_serve_names_the_first_missing_variable_first(tmp_path: Path) -> None:
    env = {k: v for k, v in FULL_SERVE_ENV.items() if k not in ("ESCALATION_CHANNEL", "ZENDESK_API_TOKEN")}
    with pytest.raises(ConfigError) as error:
        load_settings(env=env, cwd=tmp_path).require_for_serve()
    assert assert_one_line(error).startswith("missing required environment variable ESCALATION_CHANNEL")


def test_socket_mode_does_not_need_a_signing_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in FULL_SERVE_ENV.items() if k != "SLACK_SIGNING_SECRET"}
    load_settings(env={**env, "SLACK_APP_TOKEN": "xapp-1"}, cwd=tmp_path).require_for_serve()


# -- Zendesk URLs ------------------------------------------------------------------------------------------


def test_zendesk_urls_default_to_the_subdomain(tmp_path: Path) -> None:
    settings = load_settings(env={"ZENDESK_SUBDOMAIN": "acme"}, cwd=tmp_path)
    assert settings.helpdesk_settings.base_url == "https://acme.zendesk.com"
    assert settings.helpdesk_settings.agent_url == "https://acme.zendesk.com"


def test_zendesk_api_url_overrides_the_api_base_but_not_the_agent_link(tmp_path: Path) -> None:
    settings = load_settings(env={"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_API_URL": "http://127.0.0.1:9999/"},
                             cwd=tmp_path)
    assert settings.helpdesk_settings.base_url == "http://127.0.0.1:9999"
    assert settings.helpdesk_settings.agent_url == "https://acme.zendesk.com"


# -- triggers, exclusions and per-topic thresholds ---------------------------------------------------------


def test_the_new_settings_default_to_every_trigger_on_and_nothing_excluded(tmp_path: Path) -> None:
    from bot.policy.triggers import DEFAULT_SLA_HOURS, DEFAULT_TONE_THRESHOLD

    settings = load_settings(env={}, cwd=tmp_path)
    triggers = settings.policy.triggers
    assert triggers.asks_for_human.enabled and triggers.high_risk.enabled and triggers.repeat.enabled
    tone = triggers.angry_tone
    assert tone.enabled and tone.threshold == DEFAULT_TONE_THRESHOLD and tone.profanity == ()
    assert settings.policy.triggers.sla.enabled and settings.policy.triggers.sla.margin_minutes == 30
    assert dict(triggers.sla.hours) == DEFAULT_SLA_HOURS == {"urgent": 1, "high": 4, "normal": 24, "low": 48}
    assert settings.policy.triggers.repeat.limit == 2
    assert settings.policy.exclusions == ()
    assert dict(settings.policy.topic_thresholds) == {}


def test_every_trigger_section_is_read_from_the_file(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, """
[triggers.asks_for_human]
enabled = false
[triggers.high_risk]
enabled = false
[triggers.angry_tone]
enabled = false
threshold = 0.7
profanity = ["Frak*", " "]
[triggers.sla]
enabled = false
margin_minutes = 45
[triggers.sla.hours]
urgent = 0.5
P1 = 2
[triggers.repeat]
enabled = false
limit = 3
[exclusions]
rules = ["tickets tagged vip", "anything about chargebacks"]
""")
    triggers = settings.policy.triggers
    assert not (triggers.asks_for_human.enabled or triggers.high_risk.enabled or triggers.repeat.enabled)
    assert triggers.high_risk.topics == DEFAULT_HIGH_RISK_TOPICS  # turning the trigger off keeps its topics
    tone = triggers.angry_tone
    assert (tone.enabled, tone.threshold, tone.profanity) == (False, 0.7, ("frak*",))
    assert (settings.policy.triggers.sla.enabled, settings.policy.triggers.sla.margin_minutes) == (False, 45)
    assert dict(settings.policy.triggers.sla.hours) == {"urgent": 0.5, "high": 4, "normal": 24, "low": 48, "p1": 2}
    assert settings.policy.triggers.repeat.limit == 3
    assert [(r.kind, r.values) for r in settings.policy.exclusions] == [("tag", ("vip",)), ("topic", ("chargebacks",))]


def test_topic_thresholds_inherit_the_global_value_they_do_not_set(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, """
[thresholds]
auto = 0.9
draft = 0.4
[thresholds.topics."billing dispute"]
auto = 0.95
draft = 0.6
[thresholds.topics.refund]
auto = 0.97
[thresholds.topics.legal]
draft = 0.8
""")
    topics = settings.policy.topic_thresholds
    assert (topics["billing dispute"].auto, topics["billing dispute"].draft) == (0.95, 0.6)
    assert (topics["refund"].auto, topics["refund"].draft) == (0.97, 0.4)
    assert (topics["legal"].auto, topics["legal"].draft) == (0.9, 0.8)
    assert (settings.policy.thresholds.auto, settings.policy.thresholds.draft) == (0.9, 0.4)


def test_topic_thresholds_alone_keep_the_default_global_thresholds(tmp_path: Path) -> None:
    settings = settings_from_toml(tmp_path, '[thresholds.topics.refund]\nauto = 0.99\n')
    assert (settings.policy.thresholds.auto, settings.policy.thresholds.draft) == (0.9, 0.5)
    refund = settings.policy.topic_thresholds["refund"]
    assert (refund.auto, refund.draft) == (0.99, 0.5)


@pytest.mark.parametrize(("body", "named"), [
    ('[thresholds.topics.refund]\nauto = 0.3\n', 'thresholds.topics.refund'),
    ('[thresholds.topics.refund]\ndraft = 1.2\n', 'thresholds.topics.refund'),
    ('[thresholds.topics.refund]\nauto = "high"\n', 'thresholds.topics.refund.auto'),
    ('[thresholds.topics.refund]\nautp = 0.9\n', "autp"),
    ('[thresholds.topics]\nrefund = 0.9\n', 'thresholds.topics.refund'),
    ('[thresholds.topics.refund]\n', 'thresholds.topics.refund'),
    ("[triggers.asks_for_human]\nenabled = 1\n", "triggers.asks_for_human.enabled"),
    ('[triggers.high_risk]\nenabled = "yes"\n', "triggers.high_risk.enabled"),
    ("[triggers.angry_tone]\nthreshold = 0\n", "triggers.angry_tone.threshold"),
    ("[triggers.angry_tone]\nthreshold = 1.5\n", "triggers.angry_tone.threshold"),
    ('[triggers.angry_tone]\nprofanity = "damn"\n', "triggers.angry_tone.profanity"),
    ("[triggers.angry_tone]\nthreshhold = 0.5\n", "threshhold"),
    ("[triggers.sla]\nmargin_minutes = -5\n", "triggers.sla.margin_minutes"),
    ('[triggers.sla]\nmargin_minutes = "30m"\n', "triggers.sla.margin_minutes"),
    ("[triggers.sla.hours]\nurgent = 0\n", "triggers.sla.hours.urgent"),
    ('[triggers.sla.hours]\nhigh = "4h"\n', "triggers.sla.hours.high"),
    ("[triggers.sla]\nhours = 4\n", "triggers.sla.hours"),
    ("[triggers.repeat]\nlimit = 0\n", "triggers.repeat.limit"),
    ("[triggers.repeat]\nlimit = 2.5\n", "triggers.repeat.limit"),
    ("[triggers.repeat]\nlimit = true\n", "triggers.repeat.limit"),
    ('[exclusions]\nrules = "tagged vip"\n', "exclusions.rules"),
    ('[exclusions]\nrules = ["tagged vip", ""]\n', "exclusions.rules[1]"),
    ('[exclusions]\nrules = ["priority soon"]\n', "priority soon"),
    ('triggers = "all"\n', "triggers"),
])
def test_bad_trigger_and_exclusion_values_are_one_line_errors_naming_the_key(tmp_path: Path, body: str,
                                                                            named: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path, body)
    assert named in assert_one_line(error)


def test_the_configuration_reference_example_sets_every_new_key(tmp_path: Path) -> None:
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    [example] = re.findall(r"```toml\n(.*?)```", text, re.S)
    settings = settings_from_toml(tmp_path, example)
    triggers = settings.policy.triggers
    assert triggers.asks_for_human.enabled and triggers.high_risk.enabled and triggers.repeat.enabled
    billing = settings.policy.topic_thresholds["billing dispute"]
    assert (billing.auto, billing.draft) == (0.95, 0.6)
    assert triggers.angry_tone.enabled and triggers.angry_tone.threshold == 0.5
    assert "scumbag*" in triggers.angry_tone.profanity
    assert settings.policy.triggers.sla.enabled and settings.policy.triggers.sla.margin_minutes == 30
    assert dict(settings.policy.triggers.sla.hours) == {"urgent": 1, "high": 4, "normal": 24, "low": 48}
    assert settings.policy.triggers.repeat.limit == 2
    assert [r.text for r in settings.policy.exclusions] == ["anything about chargebacks", "tickets tagged vip",
                                                     "legal threats", "priority urgent"]
    assert settings.retention.erase_after == 365 * 86400


# -- unknown keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "key", "known"), [
    ("[threshold]\nauto = 0.9\n", "'threshold'", "thresholds"),
    ("[thresholds]\ndrafts = 0.5\n", "'drafts'", "auto, draft, topics"),
    ("[triggers.angry_tones]\nenabled = false\n", "'angry_tones'", "angry_tone"),
    ("[triggers.sla]\nmargin = 10\n", "'margin'", "margin_minutes"),
    ("[slack]\nmanagers = 'S1'\n", "'managers'", "manager_group"),
    ("[server]\nthreads = 4\n", "'threads'", "workers"),
    ("[resolve]\nstate = 'solved'\n", "'state'", "status"),
])
def test_an_unknown_key_anywhere_is_an_error_naming_it_and_the_known_ones(tmp_path: Path, body: str, key: str,
                                                                         known: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path, body)
    message = assert_one_line(error)
    assert f"unknown key {key}" in message and known in message


def test_a_key_with_spaces_is_named_as_toml_writes_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path, '[thresholds.topics."billing dispute"]\nauto = 0.2\ndraft = 0.5\n')
    assert 'thresholds.topics."billing dispute"' in assert_one_line(error)


def test_the_helpdesk_settings_come_from_its_own_folder(tmp_path: Path) -> None:
    from bot.helpdesk import registry
    from bot.helpdesk.zendesk.settings import ZendeskSettings

    settings = load_settings(env=FULL_SERVE_ENV, cwd=tmp_path)
    assert isinstance(settings.helpdesk_settings, ZendeskSettings)
    assert settings.helpdesk_settings.email == "bot@example.com"
    assert registry.plugin("ZENDESK").name == "zendesk" and "zendesk" in registry.names()
