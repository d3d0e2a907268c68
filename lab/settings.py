"""Django settings for R1 Lab, all read from the environment (lab/env.py; README "Configuration")."""
from __future__ import annotations

import os
from pathlib import Path

from lab.env import (
    EnvError,
    broker_from_env,
    cache_from_env,
    database_from_env,
    env_bool,
    env_int,
    env_list,
    env_named_paths,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"

DEBUG = env_bool("DEBUG", default=False)
LAB_DATA_DIR = Path(env_str("LAB_DATA_DIR", str(BASE_DIR / ".data"))).resolve()
RUNS_DIR = LAB_DATA_DIR / "runs"
DATASETS_DIR = LAB_DATA_DIR / "datasets"
BROKER_DIR = LAB_DATA_DIR / "broker"


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        if not DEBUG and (len(key) < 50 or len(set(key)) < 5):
            raise EnvError("SECRET_KEY: must be at least 50 characters with 5 distinct ones in production")
        return key
    if not DEBUG:
        raise EnvError("SECRET_KEY: required when DEBUG is false")
    # Development: one random key per data directory, so sessions survive restarts.
    LAB_DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = LAB_DATA_DIR / ".secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise EnvError("ALLOWED_HOSTS: required when DEBUG is false (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "lab",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "lab.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "lab.urls"
WSGI_APPLICATION = "lab.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_env(str(LAB_DATA_DIR / "lab.sqlite3"))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web server read while a worker ingests events; the busy timeout makes a writer wait
    # for another's transaction to end. IMMEDIATE: every transaction takes the write lock when it begins.
    # A deferred one (SQLite's default) that read first and then writes must upgrade its read lock, and
    # if another connection committed in between SQLite refuses at once ("database is locked") — a
    # busy timeout cannot help there (Django docs, "Transactions behavior" under SQLite notes).
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE",
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = cache_from_env()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = LAB_DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
LAB_MAX_UPLOAD_BYTES = env_int("LAB_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
# folders an admin registers models from (lab_register_model --root NAME); users never type server paths
LAB_MODEL_ROOTS = env_named_paths("LAB_MODEL_ROOTS")
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Celery: the database is the source of truth for a run; messages only carry ids.
CELERY_BROKER_URL = broker_from_env()
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),  # exchange bindings (default: ./control)
        "store_processed": False,
    }
WORKER_HEARTBEAT_S = env_int("WORKER_HEARTBEAT_S", 5)
WORKER_STALE_S = env_int("WORKER_STALE_S", 30)

# Security. `manage.py check --deploy` is clean when DEBUG is false.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the cookie-less meta tag instead
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"lab": {"level": "INFO"}, "workers": {"level": "INFO"}},
}
