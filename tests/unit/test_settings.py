"""Settings: the original's flags and env names, precedence flag > env > file > default, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc_admin.settings import SPECS, ConfigError, Settings, load_settings

# Flags and env vars of the original Go CLI that must keep their names.
ORIGINAL = {
    "http.port": "AIGC_ADMIN_HTTP_PORT", "db.drive": "AIGC_DB_DRIVE", "db.mysql.host": "AIGC_MYSQL_HOST",
    "db.mysql.port": "AIGC_MYSQL_PORT", "db.mysql.user": "AIGC_MYSQL_USER",
    "db.mysql.password": "AIGC_MYSQL_PASSWORD", "db.mysql.database": "AIGC_MYSQL_DATABASE",
    "cors.enable": "AIGC_ENABLE_CORS", "cors.allow.origins": "AIGC_CORS_ALLOW_ORIGINS",
    "tracer.enable": "AIGC_TRACER_ENABLE", "tracer.jaeger.host": "AIGC_TRACER_JAEGER_HOST",
    "service.local.ai.host": "AIGC_SERVICE_CHAT_API_HOST", "service.openai.token": "AIGC_SERVICE_OPENAI_TOKEN",
    "service.fschat.controller.host": "AIGC_FSCHAT_CONTROLLER_ADDRESS",
    "ldap.host": "AIGC_LDAP_HOST", "ldap.base.dn": "AIGC_LDAP_BASE_DN", "ldap.bind.pass": "AIGC_LDAP_BIND_PASS",
    "ldap.user.filter": "AIGC_LDAP_USER_FILTER", "ldap.user.attr": "AIGC_LDAP_USER_ATTR",
    "server.name": "AIGC_ADMIN_SERVER_NAME", "server.key": "AIGC_ADMIN_SERVER_KEY",
    "server.admin.user": "AIGC_ADMIN_SERVER_ADMIN_USER", "server.admin.pass": "AIGC_ADMIN_SERVER_ADMIN_PASS",
    "server.storage.path": "AIGC_ADMIN_SERVER_STORAGE_PATH", "server.log.level": "AIGC_ADMIN_SERVER_LOG_LEVEL",
    "server.aigc.channel.key": "AIGC_ADMIN_SERVER_AIGC_CHANNEL_KEY", "runtime.gpu.num": "AIGC_RUNTIME_GPU_NUM",
    "runtime.k8s.namespace": "AIGC_RUNTIME_K8S_NAMESPACE", "runtime.docker.workspace": "AIGC_RUNTIME_DOCKER_WORKSPACE",
    "cronjob.auto": "AIGC_CRONJOB_AUTO", "redis.hosts": "AIGC_REDIS_HOSTS", "runtime.backend": "AIGC_RUNTIME_BACKEND",
}


def test_original_flags_and_env_names_exist() -> None:
    by_flag = {spec.flag: spec for spec in SPECS.values()}
    for flag, env in ORIGINAL.items():
        assert flag in by_flag, flag
        assert env in by_flag[flag].envs, (flag, by_flag[flag].envs)
    assert "AIGC_RUNTIME_PLATFORM" in by_flag["runtime.backend"].envs  # the original's name still works
    assert set(SPECS) == set(Settings.model_fields)


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = tmp_path / "aigc.toml"
    cfg.write_text('"server.name" = "file-name"\n[db.mysql]\nhost = "from-file"\nport = 3307\n[redis]\ndb = 4\n')
    env = {"AIGC_MYSQL_HOST": "from-env", "AIGC_MYSQL_PORT": "3308"}
    s = load_settings({"db.mysql.host": "from-flag"}, config_path=str(cfg), environ=env)
    assert s.db_mysql_host == "from-flag"  # flag wins
    assert s.db_mysql_port == 3308  # env beats file
    assert s.server_name == "file-name"  # file beats default
    assert s.redis_db == 4
    assert s.db_mysql_user == "aigc"  # default


def test_config_file_from_env_and_json(tmp_path: Path) -> None:
    cfg = tmp_path / "aigc.json"
    cfg.write_text(json.dumps({"db": {"drive": "mysql"}, "cronjob.auto": False}))
    s = load_settings(environ={"AIGC_CONFIG_PATH": str(cfg)})
    assert s.db_drive == "mysql" and s.cronjob_auto is False


def test_empty_env_value_does_not_override() -> None:
    assert load_settings(environ={"AIGC_MYSQL_HOST": ""}).db_mysql_host == "127.0.0.1"


@pytest.mark.parametrize(("flags", "env", "needle"), [
    ({"db.drive": "oracle"}, {}, "db.drive (AIGC_DB_DRIVE)"),
    ({}, {"AIGC_MYSQL_PORT": "abc"}, "db.mysql.port (AIGC_MYSQL_PORT)"),
    ({"http.port": ":99999"}, {}, "http.port"),
    ({"ldap.group.mapping": "{not json"}, {}, "ldap.group.mapping"),
    ({"ldap.group.mapping": '{"g": 1}'}, {}, "ldap.group.mapping"),
])
def test_bad_values_name_the_setting(flags: dict, env: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(flags, environ=env)
    assert needle in str(e.value)


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_path=str(bad), environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('no_such = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'no_such'"):
        load_settings(config_path=str(unknown), environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(config_path=str(tmp_path / "missing.toml"), environ={})


def test_no_dangerous_defaults(tmp_path: Path) -> None:
    s = load_settings({"server.storage.path": str(tmp_path)}, environ={})
    assert s.server_key == "" and s.server_admin_pass == "" and s.server_aigc_channel_key == ""
    key = s.jwt_secret()
    assert len(key) >= 40 and key == s.jwt_secret()  # generated once, then reused
    assert (tmp_path / "jwt.key").stat().st_mode & 0o777 == 0o600
    other = load_settings({"server.storage.path": str(tmp_path / "other")}, environ={}).jwt_secret()
    assert other != key
    prod = load_settings({"server.storage.path": str(tmp_path), "server.env": "production"}, environ={})
    with pytest.raises(ConfigError, match=r"server\.key"):
        prod.jwt_secret()


def test_derived_values(tmp_path: Path) -> None:
    s = load_settings({"http.port": "127.0.0.1:9000", "server.storage.path": str(tmp_path),
                       "redis.hosts": "cache:6380", "redis.auth": "p@ss"}, environ={})
    assert s.listen == ("127.0.0.1", 9000)
    assert s.public_url == "http://127.0.0.1:9000"
    assert s.sqlite_path == tmp_path / "database" / "aigc.db"
    from aigc_admin.adapters.redis_conn import redis_url

    assert redis_url(s) == "redis://:p%40ss@cache:6380/0"
    assert load_settings({"http.port": ":8080"}, environ={}).listen == ("0.0.0.0", 8080)
    assert "p@ss" in s.secret_values()
