"""Billable settings: one file, every deployment difference comes from the environment."""

import os
import sys
import warnings
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEVELOPMENT_SECRET_KEY = "billable-development-key-not-for-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or DEVELOPMENT_SECRET_KEY
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")

if SECRET_KEY == DEVELOPMENT_SECRET_KEY and not TESTING:
    warnings.warn(
        "DJANGO_SECRET_KEY is not set: using the development key. Set it before serving real data.",
        stacklevel=1,
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "djmoney",
    "django_q",
    "clients",
    "projects",
    "approvals",
    "billing",
    "integrations",
    "reports",
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
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "projects.context_processors.portal_navigation",
            ],
        },
    },
]

# SQLite is the zero-setup default; production and CI set DATABASE_URL to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker and the web server share the file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "login"

# The firm's own time zone: work dates, schedules and "this week" are read in it.
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("FIRM_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# In development and tests WhiteNoise serves straight from the app and project static folders.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "media/"

# Money: the firm's default currency, and the currencies its clients may be billed in.
DEFAULT_CURRENCY = os.environ.get("DEFAULT_CURRENCY", "USD")
CURRENCIES = tuple(env_list("BILLABLE_CURRENCIES", "USD,EUR,GBP,CAD,AUD,CHF"))
if DEFAULT_CURRENCY not in CURRENCIES:
    CURRENCIES = (DEFAULT_CURRENCY, *CURRENCIES)
CURRENCY_CHOICES = [(code, code) for code in CURRENCIES]

FIRM_NAME = os.environ.get("FIRM_NAME", "Billable Demo Firm")
FIRM_ADDRESS = os.environ.get("FIRM_ADDRESS", "1 Market Street\nSpringfield")
FIRM_TAX_ID = os.environ.get("FIRM_TAX_ID", "")
# Bank details printed under the payment terms on every invoice.
FIRM_PAYMENT_DETAILS = os.environ.get("FIRM_PAYMENT_DETAILS", "")
# Absolute address of this installation, for links in emails (the client review link).
SITE_URL = os.environ.get("BILLABLE_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
INVOICE_NUMBER_PREFIX = os.environ.get("INVOICE_NUMBER_PREFIX", "INV-")
CREDIT_NOTE_NUMBER_PREFIX = os.environ.get("CREDIT_NOTE_NUMBER_PREFIX", "CN-")
# Days a client has to review an invoice preview when the contract does not say.
REVIEW_WINDOW_DAYS = int(os.environ.get("REVIEW_WINDOW_DAYS", "3"))

# Email: console by default, SMTP when EMAIL_HOST is set.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "billing@billable.localhost")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billable API",
    "DESCRIPTION": "Time capture, rating, approval, budgets and invoicing for professional-services firms.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# django-q2: Redis when REDIS_URL is set, else the database (ORM broker).
# retry must exceed timeout, or the ORM broker hands a slow task to a second worker.
Q_CLUSTER = {
    "name": "billable",
    "workers": int(os.environ.get("Q_WORKERS", "1" if "sqlite" in DATABASES["default"]["ENGINE"] else "2")),
    "timeout": 600,
    "retry": 720,
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 500,
    "time_zone": TIME_ZONE,
    "sync": TESTING,
}
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- INTEGRATIONS -------------------------------------------------------------------------------------
# Owned by the integrations app (integrations/connections.py reads these). A provider is enabled when its
# API token (Salesforce: its client secret) is set. Base URLs default to the real services; tests and demos
# point them at the local fakes (`python manage.py run_fake_providers`).
TOGGL_BASE_URL = os.environ.get("TOGGL_BASE_URL", "https://api.track.toggl.com").rstrip("/")
TOGGL_API_TOKEN = os.environ.get("TOGGL_API_TOKEN", "")
TOGGL_WORKSPACE_ID = os.environ.get("TOGGL_WORKSPACE_ID", "")
# The secret of the Toggl webhook subscription: every delivery is signed with it.
TOGGL_WEBHOOK_SECRET = os.environ.get("TOGGL_WEBHOOK_SECRET", "")
# The first sync reads this many days back; later ones re-read the days still open to edits.
TOGGL_BACKFILL_DAYS = int(os.environ.get("TOGGL_BACKFILL_DAYS", "60"))
TOGGL_REPULL_DAYS = int(os.environ.get("TOGGL_REPULL_DAYS", "14"))
MONDAY_BASE_URL = os.environ.get("MONDAY_BASE_URL", "https://api.monday.com").rstrip("/")
MONDAY_API_TOKEN = os.environ.get("MONDAY_API_TOKEN", "")
MONDAY_API_VERSION = os.environ.get("MONDAY_API_VERSION", "2025-10")
MONDAY_BOARD_IDS = env_list("MONDAY_BOARD_IDS")
# monday signs no webhook sent for a personal token: when set, the webhook URL must carry ?secret=<this>.
MONDAY_WEBHOOK_SECRET = os.environ.get("MONDAY_WEBHOOK_SECRET", "")
# Between full reads of the boards (which also find deleted sessions), syncs ask only for changed items.
MONDAY_FULL_SYNC_HOURS = int(os.environ.get("MONDAY_FULL_SYNC_HOURS", "24"))
# Salesforce (contract terms in, account figures out): a connected app's OAuth client credentials, against
# the org's My Domain (https://<org>.my.salesforce.com; client credentials are refused on login.salesforce.com).
# Enabled when the client secret is set.
SALESFORCE_BASE_URL = os.environ.get("SALESFORCE_BASE_URL", "").rstrip("/")
SALESFORCE_CLIENT_ID = os.environ.get("SALESFORCE_CLIENT_ID", "")
SALESFORCE_CLIENT_SECRET = os.environ.get("SALESFORCE_CLIENT_SECRET", "")
SALESFORCE_API_VERSION = os.environ.get("SALESFORCE_API_VERSION", "59.0")
# Org-specific names (defaults and meaning in integrations/salesforce/mapping.py). Fields are
# "our_name=Api_Name__c,..." overrides of the defaults; "our_name=" leaves an optional term out. An empty
# SALESFORCE_RATE_OBJECT keeps rates in Billable only.
SALESFORCE_ACCOUNT_OBJECT = os.environ.get("SALESFORCE_ACCOUNT_OBJECT", "Account")
SALESFORCE_CONTRACT_OBJECT = os.environ.get("SALESFORCE_CONTRACT_OBJECT", "Contract")
SALESFORCE_RATE_OBJECT = os.environ.get("SALESFORCE_RATE_OBJECT", "Rate_Card__c")
SALESFORCE_RATE_LINE_OBJECT = os.environ.get("SALESFORCE_RATE_LINE_OBJECT", "Rate_Card_Line__c")
SALESFORCE_RATE_LINES_RELATIONSHIP = os.environ.get("SALESFORCE_RATE_LINES_RELATIONSHIP", "Rate_Card_Lines__r")
SALESFORCE_ACCOUNT_FIELDS = os.environ.get("SALESFORCE_ACCOUNT_FIELDS", "")
SALESFORCE_CONTRACT_FIELDS = os.environ.get("SALESFORCE_CONTRACT_FIELDS", "")
SALESFORCE_RATE_FIELDS = os.environ.get("SALESFORCE_RATE_FIELDS", "")
SALESFORCE_RATE_LINE_FIELDS = os.environ.get("SALESFORCE_RATE_LINE_FIELDS", "")
# A SOQL condition choosing the accounts that are clients, e.g. "Type = 'Customer'" (default: every account).
SALESFORCE_ACCOUNT_FILTER = os.environ.get("SALESFORCE_ACCOUNT_FILTER", "")
KANTATA_BASE_URL = os.environ.get("KANTATA_BASE_URL", "https://api.mavenlink.com").rstrip("/")
KANTATA_API_TOKEN = os.environ.get("KANTATA_API_TOKEN", "")
# Optional workspace custom fields for our figures: "amount_used=123,percent_used=124,forecast_run_out=125".
KANTATA_FIGURE_FIELDS = os.environ.get("KANTATA_FIGURE_FIELDS", "")
HUBSPOT_BASE_URL = os.environ.get("HUBSPOT_BASE_URL", "https://api.hubapi.com").rstrip("/")
HUBSPOT_API_TOKEN = os.environ.get("HUBSPOT_API_TOKEN", "")
# A transactional email template id: client messages are then sent through HubSpot, not only logged there
# (set EMAIL_BACKEND to the dummy backend so that Django does not send them too).
HUBSPOT_TRANSACTIONAL_EMAIL_ID = os.environ.get("HUBSPOT_TRANSACTIONAL_EMAIL_ID", "")
HARVEST_BASE_URL = os.environ.get("HARVEST_BASE_URL", "https://api.harvestapp.com").rstrip("/")
HARVEST_API_TOKEN = os.environ.get("HARVEST_API_TOKEN", "")
HARVEST_ACCOUNT_ID = os.environ.get("HARVEST_ACCOUNT_ID", "")
# Shared HTTP behaviour (integrations/http.py): per-request timeout, attempts per call, the first backoff
# (doubling per attempt), the longest wait a provider may ask for within a run (longer ends the run; the
# next scheduled run continues from the cursor), and a cap on each actual sleep (tests and demos lower it).
INTEGRATIONS_TIMEOUT_SECONDS = float(os.environ.get("INTEGRATIONS_TIMEOUT_SECONDS", "30"))
INTEGRATIONS_MAX_ATTEMPTS = int(os.environ.get("INTEGRATIONS_MAX_ATTEMPTS", "5"))
INTEGRATIONS_BACKOFF_SECONDS = float(os.environ.get("INTEGRATIONS_BACKOFF_SECONDS", "1"))
INTEGRATIONS_MAX_WAIT_SECONDS = float(os.environ.get("INTEGRATIONS_MAX_WAIT_SECONDS", "300"))
INTEGRATIONS_WAIT_CAP_SECONDS = float(os.environ.get("INTEGRATIONS_WAIT_CAP_SECONDS",
                                                     str(INTEGRATIONS_MAX_WAIT_SECONDS)))
INTEGRATIONS_WEBHOOK_MAX_BYTES = int(os.environ.get("INTEGRATIONS_WEBHOOK_MAX_BYTES", str(1024 * 1024)))
# --- end of INTEGRATIONS --------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": "WARNING"}},
}

# Production hardening switches on whenever DEBUG is off; each switch has its own variable for the odd
# installation that needs it off (README, Deployment). The documented set-up is a TLS load balancer that
# sets X-Forwarded-Proto in front of the web processes.
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    # Trust X-Forwarded-Proto only behind a proxy that always sets it: a client could send it otherwise.
    if env_bool("DJANGO_BEHIND_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Whatever DEBUG says: no page of Billable is ever framed, and no script reads the session cookie.
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Login throttling (config/throttling.py): the portal and admin logins refuse a username after this many
# failed attempts within the window, and a client address after its own, larger number (an office behind
# one NAT address shares it). A success clears the username's count.
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_IP_FAILURE_LIMIT = int(os.environ.get("LOGIN_IP_FAILURE_LIMIT", "20"))
LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_MINUTES", "15")) * 60
# Proxies in front of the web processes that append to X-Forwarded-For (the documented load balancer: 1).
# 0 reads the client address from the connection itself.
TRUSTED_PROXY_COUNT = int(os.environ.get("DJANGO_TRUSTED_PROXY_COUNT", "0"))

# The cache holds the login attempts. Several web processes must share it for the limits to be exact:
# CACHE_URL names a Redis database for it (not the task queue's: clearing a cache empties its database).
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "billable"}
}
